"""Which file of a dataset a path written in a CSV (or a YOLO label's image) means.

Exports write paths their own way: relative to the CSV, relative to the archive's top, or a bare
file name with the file somewhere in a subfolder. A listed path is tried in that order; a bare
name counts only when one file of the dataset has it. Nothing resolves outside the dataset.
"""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Problem = Literal["missing", "ambiguous", "outside"]
MATCHES_SHOWN = 3

_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:/")


@dataclass(frozen=True)
class Resolution:
    """A listed path's file (relative to the files root), or why there is none."""

    file: str | None = None
    problem: Problem | None = None
    matches: tuple[str, ...] = ()  # the files an ambiguous name could mean

    def why_not(self, missing: str) -> str:
        """Why there is no file: ``missing`` (say "not in the dataset") unless the name was
        ambiguous or pointed outside, which say how to fix it."""
        if self.problem == "ambiguous":
            return (
                f"{len(self.matches)} files have that name ({listing(self.matches)}); "
                "write the path with its folder"
            )
        if self.problem == "outside":
            return "it points outside the dataset; write it relative to the CSV's folder"
        return missing


class PathResolver:
    """Answers for one dataset's file list (POSIX paths relative to its files root).

    ``by_name`` off: only paths as written count (a directory the dataset does not own, where
    a bare name may mean a file nobody listed).
    """

    def __init__(self, files: Iterable[str], by_name: bool = True) -> None:
        self.files = frozenset(files)
        self.by_name = by_name
        self._named: dict[str, list[str]] = defaultdict(list)
        for file in sorted(self.files):
            self._named[posixpath.basename(file)].append(file)

    def resolve(self, listed: str, folder: str = "", prefix: str = "") -> Resolution:
        """``listed`` as written relative to ``folder`` (the CSV's own folder), then relative to
        the root (read without ``prefix``, the top folder the root looked through), then by its
        unique file name anywhere. An absolute path or one that climbs out is refused."""
        text = listed.strip().replace("\\", "/")
        if not text or text.startswith("/") or _WINDOWS_DRIVE.match(text):
            return Resolution(problem="outside" if text else "missing")
        tries = [posixpath.join(folder, text)] if folder else []
        if prefix and text.startswith(prefix + "/"):
            tries.append(text[len(prefix) + 1 :])
        tries.append(text)
        inside = [path for path in map(_inside, tries) if path is not None]
        if not inside:
            return Resolution(problem="outside")
        for path in inside:
            if path in self.files:
                return Resolution(path)
        if not self.by_name:
            return Resolution(problem="missing")
        return self.named(posixpath.basename(text))

    def named(self, name: str) -> Resolution:
        """The one file called ``name``, in whichever folder."""
        matches = self._named.get(name, [])
        if len(matches) > 1:
            return Resolution(problem="ambiguous", matches=tuple(matches))
        return Resolution(matches[0]) if matches else Resolution(problem="missing")


def _inside(path: str) -> str | None:
    normal = posixpath.normpath(path)
    if normal in (".", "..") or normal.startswith("../"):
        return None
    return normal


def listing(files: tuple[str, ...]) -> str:
    """``a, b, c and 4 more``."""
    more = len(files) - MATCHES_SHOWN
    return ", ".join(files[:MATCHES_SHOWN]) + (f" and {more} more" if more > 0 else "")


def row_span(numbers: Iterable[int]) -> str:
    """``row 7`` or ``rows 2-41, 50``: CSV line numbers, runs compacted."""
    ordered = sorted(set(numbers))
    runs: list[list[int]] = []
    for number in ordered:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    spans = [str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs]
    return f"{'row' if len(ordered) == 1 else 'rows'} {', '.join(spans)}"


@dataclass
class UnusableListings:
    """Rows of one CSV that list a file the dataset cannot give, grouped: one reject per listed
    name and problem, naming its rows (a missing video is reported once, not once per box)."""

    table: str
    rows: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def add(self, listed: str, why: str, row: int) -> None:
        self.rows.setdefault((listed, why), []).append(row)

    def rejects(self) -> list[dict[str, str]]:
        return [
            {"file": listed, "reason": f"listed in {self.table} {row_span(rows)} but {why}"}
            for (listed, why), rows in self.rows.items()
        ]
