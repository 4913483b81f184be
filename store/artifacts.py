"""Artifact files under ``<data dir>/artifacts``: written to a temporary name, hashed while written,
then renamed into place, so a reader never sees half a file and a crash leaves no stray one.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cvplatform.errors import InvalidInput, PayloadTooLarge

CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class StoredFile:
    relative_path: str
    sha256: str
    size_bytes: int


def resolve_inside(root: Path, relative_path: str) -> Path:
    """``root / relative_path``, refusing anything that would land outside ``root``.

    Raises:
        InvalidInput: an absolute path, a ``..`` that climbs out, or a path through a link outside.
    """
    if not relative_path or Path(relative_path).is_absolute():
        raise InvalidInput(f"artifact path {relative_path!r} must be relative and not empty")
    root = root.resolve()
    target = (root / relative_path).resolve()
    if not target.is_relative_to(root) or target == root:
        raise InvalidInput(f"artifact path {relative_path!r} points outside the artifact folder")
    return target


def write_artifact(
    root: Path, relative_path: str, chunks: Iterable[bytes], max_bytes: int | None = None
) -> StoredFile:
    """Stream ``chunks`` to ``root/relative_path`` atomically and return its SHA-256 and size.

    Raises:
        PayloadTooLarge: more than ``max_bytes`` arrived; nothing is left on disk.
        FileExistsError: the target exists already (artifacts are never overwritten).
    """
    target = resolve_inside(root, relative_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        raise FileExistsError(f"artifact {relative_path} exists already")
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as sink:
            for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise PayloadTooLarge(f"the file passes the limit of {max_bytes} bytes")
                digest.update(chunk)
                sink.write(chunk)
            sink.flush()
            os.fsync(sink.fileno())
        os.link(temporary, target)  # unlike a rename, fails if another writer got there first
    finally:
        Path(temporary).unlink()
    return StoredFile(relative_path, digest.hexdigest(), size)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
