"""The query and path parameters many routes share, bounded where the server checks them.

SQLite's integers are 64-bit: a larger id or offset would fail inside the query (a 500). The
bounds here turn it into a 422 and tell a generated client what it may send.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Path, Query

# Far past any real table, far below SQLite's 2**63 - 1.
MAX_OFFSET = 1_000_000_000
MAX_ROW_ID = 2**63 - 1

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip (newest first)")]
Limit = Annotated[int, Query(ge=1, le=200, description="items per page")]
LogLimit = Annotated[int, Query(ge=1, le=1000, description="entries per page")]
UserId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
KeyId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
UserFilter = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID, description="only this user's")]
LastEventId = Annotated[
    int, Header(ge=0, le=MAX_ROW_ID, description="resume after this event (the SSE reconnect)")
]
