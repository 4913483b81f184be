"""The query and path parameters many routes share, bounded where the server checks them.

SQLite's integers are 64-bit: a larger id or offset would fail inside the query (a 500). The
bounds here turn it into a 422 and tell a generated client what it may send.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header, Path, Query

from cvplatform.errors import MalformedHeader

# Far past any real table, far below SQLite's 2**63 - 1.
MAX_OFFSET = 1_000_000_000
MAX_ROW_ID = 2**63 - 1
_DECIMAL = re.compile(r"^[0-9]{1,19}$")

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip (newest first)")]
Limit = Annotated[int, Query(ge=1, le=200, description="items per page")]
LogLimit = Annotated[int, Query(ge=1, le=1000, description="entries per page")]
UserId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
KeyId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
UserFilter = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID, description="only this user's")]


def _last_event_id(
    last_event_id: Annotated[
        str | None,
        Header(
            description="resume after this event (the SSE reconnect): the id of the last event "
            f"received, a whole number from 0 to {MAX_ROW_ID}"
        ),
    ] = None,
) -> int:
    """The ``Last-Event-ID`` header as an event id (0: from the start).

    A browser's ``EventSource`` sends it back as it got it, so a bad one is a malformed header
    (400), like the tus headers, not a form field (422).

    Raises:
        MalformedHeader: not a whole number from 0 to 2**63 - 1.
    """
    if last_event_id is None or last_event_id.strip() == "":
        return 0
    text = last_event_id.strip()
    if not _DECIMAL.match(text) or int(text) > MAX_ROW_ID:
        raise MalformedHeader(
            f"Last-Event-ID must be the id of an event received (a whole number from 0 to "
            f"{MAX_ROW_ID}), not {last_event_id[:40]!r}"
        )
    return int(text)


LastEventId = Annotated[int, Depends(_last_event_id)]
