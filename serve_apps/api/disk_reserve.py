"""The free space an upload must leave on the data disk (``CVP_DISK_RESERVE_MB``): past it, an
upload is refused with 507 rather than filling the disk the database and the jobs write to.

An upload of known length (``Content-Length``, ``Upload-Length``) is checked before any byte is
read; one streamed without a length is checked as it grows (:func:`within_reserve`).
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from cvplatform.config import MIB, Settings
from cvplatform.errors import InsufficientStorage

# A stream without a length is checked each time this much more has arrived.
CHECK_EVERY_BYTES = MIB


@dataclass(frozen=True)
class DiskReserve:
    """The data disk (the folder ``folder`` is on) and the bytes it must keep free."""

    folder: Path
    reserve_bytes: int

    @classmethod
    def of(cls, settings: Settings) -> DiskReserve:
        return cls(settings.data_dir, settings.disk_reserve_mb * MIB)

    def check(self, incoming_bytes: int) -> None:
        """Refuse ``incoming_bytes`` more if the disk would then keep less than the reserve.

        Raises:
            InsufficientStorage: it would (507); the message says how much is free, no path.
        """
        free_bytes = shutil.disk_usage(self.folder).free
        if free_bytes - incoming_bytes < self.reserve_bytes:
            raise InsufficientStorage(
                f"not enough free space on the server's data disk: {incoming_bytes} more bytes "
                f"would leave {_mib(free_bytes - incoming_bytes)} MiB of the "
                f"{_mib(self.reserve_bytes)} MiB it keeps free (CVP_DISK_RESERVE_MB); "
                "free some space (delete models or datasets) or try later"
            )


def disk_full(error: OSError) -> InsufficientStorage | None:
    """The 507 for a write that found the disk full (``ENOSPC``, a quota), else None."""
    if error.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    return InsufficientStorage(
        "the server's data disk filled up while the upload was written; what this request sent "
        "was not kept: free some space (delete models or datasets) or try later"
    )


async def within_reserve(
    chunks: AsyncIterable[bytes], reserve: DiskReserve, buffered_bytes: int
) -> AsyncIterator[bytes]:
    """``chunks`` as they come, the reserve checked each :data:`CHECK_EVERY_BYTES`.

    Args:
        buffered_bytes: the most that the consumer holds before it reaches the disk (this
            chunk included); the check counts them as still to come.

    Raises:
        InsufficientStorage: the disk would keep less than the reserve.
    """
    unchecked = 0
    async for chunk in chunks:
        unchecked += len(chunk)
        if unchecked >= CHECK_EVERY_BYTES:
            reserve.check(buffered_bytes)
            unchecked = 0
        yield chunk


def _mib(size: int) -> int:
    return max(0, size) // MIB
