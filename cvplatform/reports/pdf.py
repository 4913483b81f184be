"""A :class:`~cvplatform.reports.document.Document` as a PDF, with reportlab.

A4 pages in Helvetica (a built-in font, so no font file travels with the code), a title block,
tables whose header row repeats on every page they cross, charts as vector drawings, and
"page N of M" beside the document's footer on every page. A section holding a table too wide for
a portrait page (the raw metrics) is set on landscape pages.

Determinism: reportlab's invariant mode fixes the creation date and the file identifier, and
everything else is computed from the document alone, so the same document gives the same bytes
in any process at any time.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Frame,
    HRFlowable,
    KeepTogether,
    ListFlowable,
    ListItem,
    NextPageTemplate,
    PageBreak,
    PageTemplate,
    Spacer,
)
from reportlab.platypus import Paragraph as PdfParagraph
from reportlab.platypus import Table as PdfTable

from cvplatform.reports import palette
from cvplatform.reports.document import (
    BarChart,
    Block,
    BulletList,
    Document,
    KeyValues,
    Paragraph,
    ScatterChart,
    Section,
    Table,
)
from cvplatform.reports.pdf_charts import (
    BOLD,
    FONT,
    bar_chart_drawing,
    colour,
    engine_key_drawing,
    plain_text,
)
from cvplatform.reports.pdf_scatter import scatter_chart_drawing
from cvplatform.reports.pdf_tables import (
    PORTRAIT_MAX_COLUMNS,
    data_table,
    key_values_table,
    markup,
    paragraph_style,
)

MARGIN = 18 * mm
# Points left on a page below which a table (with its heading or caption) starts on the next.
TABLE_ROOM = 150.0
Orientation = Literal["portrait", "landscape"]


_TITLE = paragraph_style("title", 20, BOLD, spaceAfter=4, leading=24)
_SUBTITLE = paragraph_style("subtitle", 10.5, ink=palette.MUTED_INK, spaceAfter=6)
_HEADING = paragraph_style("heading", 13.5, BOLD, spaceBefore=14, spaceAfter=6)
_BODY = paragraph_style("body", 9.5, spaceAfter=6)
_CHART_TITLE = paragraph_style("chart-title", 10, BOLD, spaceBefore=6, spaceAfter=2)
_NOTE = paragraph_style(
    "note", 7.5, "Helvetica-Oblique", ink=palette.MUTED_INK, spaceBefore=3, spaceAfter=8
)


def render_pdf(document: Document) -> bytes:
    """The document as PDF bytes: A4, page numbers, repeated table headers, vector charts.

    Args:
        document: the view to render (technical or simple).

    Returns:
        The PDF; the same document always gives the same bytes.
    """
    # The total page count is only known once laid out, so lay out twice: the second pass
    # writes "page N of M" with the M the first one counted (the footer takes no frame space).
    first = _Pass(document, total_pages=0)
    first.build()
    final = _Pass(document, total_pages=first.pages_seen)
    return final.build()


@dataclass
class _Pass:
    document: Document
    total_pages: int
    pages_seen: int = 0
    orientation: Orientation = "portrait"

    def build(self) -> bytes:
        buffer = io.BytesIO()
        template = BaseDocTemplate(
            buffer,
            pagesize=A4,
            leftMargin=MARGIN,
            rightMargin=MARGIN,
            topMargin=MARGIN,
            bottomMargin=MARGIN,
            title=plain_text(self.document.title),
            subject=plain_text(self.document.subtitle),
            author="cv-platform",
            creator="cv-platform reports",
            invariant=1,
        )
        template.addPageTemplates(
            [self._page("portrait", A4), self._page("landscape", landscape(A4))]
        )
        template.build(self._story())
        return buffer.getvalue()

    def _page(self, name: str, size: tuple[float, float]) -> Any:
        frame = Frame(
            MARGIN,
            MARGIN + 2 * mm,
            size[0] - 2 * MARGIN,
            size[1] - 2 * MARGIN - 2 * mm,
            id=name,
            leftPadding=0,
            rightPadding=0,
            topPadding=0,
            bottomPadding=0,
        )
        return PageTemplate(id=name, frames=[frame], onPage=self._decorate, pagesize=size)

    def _decorate(self, canvas: Any, doc: Any) -> None:
        """The running header (after the first page) and the footer: text and page number."""
        page = int(canvas.getPageNumber())
        self.pages_seen = max(self.pages_seen, page)
        width, height = doc.pageTemplate.pagesize
        canvas.saveState()
        canvas.setStrokeColor(colour(palette.GRID))
        canvas.setLineWidth(0.6)
        canvas.line(MARGIN, MARGIN - 1 * mm, width - MARGIN, MARGIN - 1 * mm)
        canvas.setFont(FONT, 7.5)
        canvas.setFillColor(colour(palette.MUTED_INK))
        number = f"page {page} of {self.total_pages}" if self.total_pages else f"page {page}"
        canvas.drawRightString(width - MARGIN, MARGIN - 5 * mm, number)
        room = width - 2 * MARGIN - stringWidth(number, FONT, 7.5) - 12
        canvas.drawString(MARGIN, MARGIN - 5 * mm, _fit(self.document.footer, room, 7.5))
        if page > 1:
            canvas.drawString(
                MARGIN, height - MARGIN + 4 * mm, _fit(self.document.title, room, 7.5)
            )
        canvas.restoreState()

    def _story(self) -> list[Any]:
        story = _title_block(self.document, self._frame_width())
        for section in self.document.sections:
            story += self._turn_for(section)
            story += _section(section, self._frame_width())
        return story

    def _turn_for(self, section: Section) -> list[Any]:
        wide = any(_too_wide(block) for block in section.blocks)
        wanted: Orientation = "landscape" if wide else "portrait"
        if wanted == self.orientation:
            return []
        self.orientation = wanted
        return [NextPageTemplate(wanted), PageBreak()]

    def _frame_width(self) -> float:
        size = landscape(A4) if self.orientation == "landscape" else A4
        return float(size[0] - 2 * MARGIN)


def _fit(text: str, room: float, size: float) -> str:
    """``text`` cut with an ellipsis to fit ``room`` points of one line."""
    text = plain_text(" ".join(text.split()))
    if stringWidth(text, FONT, size) <= room:
        return text
    while text and stringWidth(text + "...", FONT, size) > room:
        text = text[:-1]
    return text.rstrip() + "..."


def _too_wide(block: Block) -> bool:
    return isinstance(block, Table) and len(block.columns) > PORTRAIT_MAX_COLUMNS


def _title_block(document: Document, width: float) -> list[Any]:
    story: list[Any] = [PdfParagraph(markup(document.title), _TITLE)]
    if document.subtitle:
        story.append(PdfParagraph(markup(document.subtitle), _SUBTITLE))
    story.append(HRFlowable(width="100%", thickness=2, color=colour(palette.BLUE), spaceAfter=6))
    if document.legend:
        story.append(engine_key_drawing(document.legend, width))
    return story


def _section(section: Section, width: float) -> list[Any]:
    heading = PdfParagraph(markup(section.heading), _HEADING)
    story: list[Any] = [] if section.blocks else [heading]
    for index, block in enumerate(section.blocks):
        flowables = [heading, *_block(block, width)] if index == 0 else _block(block, width)
        story += _kept(block, flowables, index == 0)
    return story


def _kept(block: Block, flowables: list[Any], opens_section: bool) -> list[Any]:
    """The block's flowables, held together as far as the block allows.

    A heading never ends a page (it travels with its first block); charts and verdicts are never
    cut in two; a table (or list) starts on the next page only when under :data:`TABLE_ROOM`
    is left there, and otherwise breaks across pages with its header repeated. (Not reportlab's
    ``keepWithNext``: the ``KeepTogether`` it makes pushes any table longer than what is left
    of the page to the next one.)
    """
    if isinstance(block, Table | KeyValues | BulletList):
        if opens_section or (isinstance(block, Table) and block.caption):
            return [CondPageBreak(TABLE_ROOM), *flowables]
        return flowables
    if opens_section or not (isinstance(block, Paragraph) and block.tone == "neutral"):
        return [KeepTogether(flowables)]
    return flowables


def _block(block: Block, width: float) -> list[Any]:
    if isinstance(block, Paragraph):
        return _paragraph(block, width)
    if isinstance(block, KeyValues):
        return key_values_table(block, width)
    if isinstance(block, BulletList):
        return [_bullets(block), Spacer(1, 4)]
    if isinstance(block, Table):
        return data_table(block, width)
    return _chart(block, width)


def _paragraph(block: Paragraph, width: float) -> list[Any]:
    if block.tone == "neutral":
        return [PdfParagraph(markup(block.text), _BODY)]
    # A verdict: a tinted box with a bar of the tone's colour and its word in front.
    word, ink = palette.tone_word(block.tone), palette.TONE_TEXT_COLOURS[block.tone]
    text = f'<font color="{ink}"><b>{word}</b></font>&nbsp;&nbsp;{markup(block.text)}'
    box = PdfTable([[PdfParagraph(text, paragraph_style("verdict", 9.5))]], colWidths=[width])
    box.setStyle(
        [
            ("BACKGROUND", (0, 0), (-1, -1), colour(palette.TONE_BACKGROUNDS[block.tone])),
            ("LINEBEFORE", (0, 0), (0, -1), 3, colour(palette.TONE_COLOURS[block.tone])),
            ("LEFTPADDING", (0, 0), (-1, -1), 8),
            ("TOPPADDING", (0, 0), (-1, -1), 5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
        ]
    )
    return [box, Spacer(1, 8)]


def _bullets(block: BulletList) -> Any:
    items = [ListItem(PdfParagraph(markup(item), _BODY)) for item in block.items]
    return ListFlowable(
        items,
        bulletType="1" if block.ordered else "bullet",
        start=None if block.ordered else "\u2022",
        bulletFontName=FONT,
        bulletFontSize=9,
        bulletFormat="%s." if block.ordered else None,
        leftIndent=14,
    )


def _chart(chart: BarChart | ScatterChart, width: float) -> list[Any]:
    drawing: Callable[..., Any] = (
        bar_chart_drawing if isinstance(chart, BarChart) else scatter_chart_drawing
    )
    parts: list[Any] = [PdfParagraph(markup(chart.title), _CHART_TITLE), drawing(chart, width)]
    if chart.note:
        parts.append(PdfParagraph(markup(chart.note), _NOTE))
    else:
        parts.append(Spacer(1, 8))
    return parts
