"""What each view of a report says: the entry points the renderers and the exports call.

The technical view (:mod:`cvplatform.reports.technical`) has every number the decision rests on;
the simple view (:mod:`cvplatform.reports.simple`) says what to deploy, why, and how. Both are
pure functions of a :class:`~cvplatform.reports.inputs.ReportInput`.
"""

from __future__ import annotations

from typing import Literal, get_args

from cvplatform.reports.document import Document
from cvplatform.reports.inputs import ReportInput
from cvplatform.reports.simple import simple_view
from cvplatform.reports.technical import technical_view

View = Literal["technical", "simple"]
VIEWS: tuple[View, ...] = get_args(View)

__all__ = ["VIEWS", "View", "simple_view", "technical_view", "view_document"]


def view_document(report: ReportInput, view: View) -> Document:
    """The document of one view of ``report``.

    Raises:
        ValueError: ``view`` is neither "technical" nor "simple".
    """
    if view == "technical":
        return technical_view(report)
    if view == "simple":
        return simple_view(report)
    raise ValueError(f"unknown view {view!r}: use 'technical' or 'simple'")
