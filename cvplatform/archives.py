"""Unpacking a user's ZIP without trusting it: no entry may land outside the target folder, no
links, and no more bytes than the limits allow (counted while unpacking, not read from headers).
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cvplatform.errors import InvalidInput

_COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ExtractLimits:
    max_total_bytes: int
    max_ratio: float  # unpacked bytes per byte of archive
    max_entries: int = 1_000_000


def _check_entry(entry: zipfile.ZipInfo) -> None:
    name = entry.filename
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith(("/", "\\")) or ":" in path.parts[0]:
        raise InvalidInput(f"the archive entry {name!r} is an absolute path; refused")
    if ".." in path.parts or "\\" in name:
        raise InvalidInput(f"the archive entry {name!r} climbs out of its folder; refused")
    if stat.S_ISLNK(entry.external_attr >> 16):
        raise InvalidInput(f"the archive entry {name!r} is a symbolic link; refused")


def safe_extract(archive_path: Path, destination: Path, limits: ExtractLimits) -> int:
    """Extract into ``destination`` (created); returns the bytes written.

    Raises:
        InvalidInput: not a ZIP, truncated, an unsafe entry, or past a limit (nothing is left).
    """
    archive_bytes = max(1, archive_path.stat().st_size)
    budget = min(limits.max_total_bytes, int(archive_bytes * limits.max_ratio))
    destination.mkdir(parents=True, exist_ok=True)
    root = destination.resolve()
    written = 0
    try:
        with zipfile.ZipFile(archive_path) as archive:
            entries = archive.infolist()
            if len(entries) > limits.max_entries:
                raise InvalidInput(
                    f"the archive has {len(entries)} entries; at most {limits.max_entries}"
                )
            for entry in entries:
                _check_entry(entry)
            declared = sum(entry.file_size for entry in entries)
            if declared > budget:
                raise InvalidInput(_too_big(declared, budget, limits))
            for entry in entries:
                target = (root / entry.filename).resolve()
                if not target.is_relative_to(root):
                    raise InvalidInput(f"the archive entry {entry.filename!r} leaves its folder")
                if entry.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(entry) as source, target.open("wb") as sink:
                    while chunk := source.read(_COPY_CHUNK):
                        written += len(chunk)
                        if written > budget:  # headers can lie; the bytes cannot
                            raise InvalidInput(_too_big(written, budget, limits))
                        sink.write(chunk)
    except zipfile.BadZipFile as error:
        shutil.rmtree(destination, ignore_errors=True)
        raise InvalidInput(f"not a readable ZIP archive (truncated or damaged): {error}") from error
    except (InvalidInput, EOFError, OSError) as error:
        shutil.rmtree(destination, ignore_errors=True)
        if isinstance(error, InvalidInput):
            raise
        raise InvalidInput(f"the ZIP archive could not be unpacked: {error}") from error
    return written


def _too_big(size: int, budget: int, limits: ExtractLimits) -> str:
    return (
        f"the archive unpacks to more than {budget} bytes (at least {size}); the limits are "
        f"{limits.max_total_bytes} bytes in all and {limits.max_ratio:g}x the archive's size"
    )
