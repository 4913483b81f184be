"""Server paths taken out of the messages users read: failure reasons and API errors.

Libraries name files by their full path (``Load model from /srv/cvp/artifacts/models/<id>/
source.onnx failed``); a user knows the file by its name in the upload or dataset, and the rest
says where the platform keeps its secrets. Each known folder is cut from the message together
with the components below it that are the platform's own (a model's ``models/<id>``, a
conversion's temporary folder), leaving the upload- or dataset-relative name; a path with nothing
of the user's left becomes :data:`PLACEHOLDER`.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cvplatform.config import Settings

PLACEHOLDER = "<server path>"
# What ends a path in running text: whitespace, quotes, and the punctuation that libraries put
# around a path. A colon ends it too ("/x/model.onnx: bad magic").
_ENDS_PATH = r"\s'\"`:,;()\[\]{}<>"
_EVERYTHING = -1


@dataclass(frozen=True)
class ServerPath:
    """A folder to cut from messages.

    Args:
        path: the folder, absolute.
        hidden_depth: components below it that are the platform's own and are cut too (2 for
            ``artifacts``: ``models/<id>``); -1 cuts everything below it.
    """

    path: str
    hidden_depth: int = 0


class PathScrubber:
    """Replaces every occurrence of the given folders, and the paths below them, in a text."""

    def __init__(self, server_paths: Iterable[ServerPath]) -> None:
        self._entries: dict[str, ServerPath] = {}
        for entry in server_paths:
            folder = _trimmed(entry.path)
            if folder:  # the first entry for a folder wins
                self._entries.setdefault(folder, entry)
        # The longest first, so that a folder inside another is matched as itself.
        folders = sorted(self._entries, key=len, reverse=True)
        alternatives = "|".join(re.escape(folder) for folder in folders)
        # A folder is matched as a whole component (/data must not match inside /database),
        # then whatever path continues below it.
        whole = rf"(?![^/{_ENDS_PATH}])"
        below = rf"((?:/[^{_ENDS_PATH}]*)?)"
        self._pattern = re.compile(f"({alternatives}){whole}{below}") if alternatives else None

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(self._replace, text)

    def _replace(self, match: re.Match[str]) -> str:
        entry = self._entries[match.group(1)]
        below = [part for part in match.group(2).split("/") if part]
        kept = [] if entry.hidden_depth == _EVERYTHING else below[entry.hidden_depth :]
        return "/".join(kept) or PLACEHOLDER


def scrub_paths(text: str, server_paths: Iterable[ServerPath]) -> str:
    """``text`` without the given folders (see :class:`PathScrubber`)."""
    return PathScrubber(server_paths)(text)


def platform_paths(settings: Settings, temp_dir: str | None = None) -> list[ServerPath]:
    """The folders of a running platform that no message may name.

    Args:
        settings: where the data directory is (staging and artifacts lie inside it).
        temp_dir: the system's temporary folder (default: ``tempfile.gettempdir()``).
    """
    temporary = temp_dir if temp_dir is not None else tempfile.gettempdir()
    folders = [
        # Uploads stream to a temporary file here, and a conversion works in a temporary
        # folder here: what is below that folder is the upload's own.
        ServerPath(str(settings.staging_dir), hidden_depth=1),
        ServerPath(str(settings.staging_dir / "resumable"), hidden_depth=_EVERYTHING),
        # models/<id>/source.onnx, datasets/<id>/images/a.png: the rest is the user's.
        ServerPath(str(settings.artifacts_dir), hidden_depth=2),
        ServerPath(str(settings.data_dir), hidden_depth=_EVERYTHING),
        ServerPath(temporary, hidden_depth=1),
        # A library's own files (a traceback's site-packages path) say where the server runs.
        ServerPath(sys.prefix, hidden_depth=_EVERYTHING),
        ServerPath(sys.base_prefix, hidden_depth=_EVERYTHING),
    ]
    return _with_real_paths(folders)


def platform_scrubber(settings: Settings) -> PathScrubber:
    """The scrubber for the platform's messages: every folder of :func:`platform_paths`."""
    return PathScrubber(platform_paths(settings))


def _with_real_paths(folders: list[ServerPath]) -> list[ServerPath]:
    # A library may report a path through a symbolic link resolved (/tmp -> /private/tmp).
    resolved = [ServerPath(os.path.realpath(entry.path), entry.hidden_depth) for entry in folders]
    return folders + resolved


def _trimmed(path: str) -> str:
    text = str(Path(path)) if path else ""
    return "" if text in ("", ".", "/") else text
