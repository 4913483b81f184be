"""The data directory's lock: whoever writes the database holds it, so there is only ever one.

The store actor holds it for its whole life; the CLI takes it to write while the platform is
stopped. The operating system drops it when its holder dies, so a crash never leaves it stale.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from cvplatform.errors import PlatformRunning


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "writer.lock"
        self._fd: int | None = None

    def acquire(self, wait_s: float = 0.0) -> DataDirLock:
        """Take the lock, waiting up to ``wait_s`` for a dying holder to let go.

        Raises:
            PlatformRunning: another live process holds it.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise PlatformRunning(
                        f"the platform is running on {self.path.parent} (its store holds "
                        f"{self.path.name}); stop it with `cvp down` first"
                    ) from None
                time.sleep(0.1)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def is_held_elsewhere(self) -> bool:
        try:
            self.acquire()
        except PlatformRunning:
            return True
        self.release()
        return False

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
