"""Tables for the PDF: data tables that break across pages with their header repeated, and
two-column key-value tables.

A cell that fits its column on one line is set as a plain string (cheap for reportlab to lay out:
the raw metrics of a large benchmark have thousands of cells); one that does not becomes a
``Paragraph`` so it wraps inside its column instead of running over its neighbours.
"""

from __future__ import annotations

from typing import Any

from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import LongTable, Spacer
from reportlab.platypus import Paragraph as PdfParagraph

from cvplatform.reports import palette
from cvplatform.reports.document import Align, KeyValues, Table, Tone
from cvplatform.reports.pdf_charts import BOLD, FONT, colour, plain_text

CELL_PADDING = 3.0
WHITE = "#FFFFFF"
ZEBRA = "#F5F7FA"
HEADER = "#E4E7EB"
# Wider than this, a table is set on a landscape page (see pdf.py).
PORTRAIT_MAX_COLUMNS = 12


def paragraph_style(
    name: str, size: float, font: str = FONT, ink: str = palette.INK, **extra: Any
) -> Any:
    """A ``ParagraphStyle`` in the report's type: leading 1.3 times the size unless given."""
    settings: dict[str, Any] = {"leading": round(size * 1.3, 1), **extra}
    return ParagraphStyle(name, fontName=font, fontSize=size, textColor=colour(ink), **settings)


def markup(text: str) -> str:
    """Plain text as Paragraph markup: escaped, its line breaks kept."""
    escaped = plain_text(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace("\n", "<br/>")


def tone_word_for(text: str, tone: Tone) -> str:
    """The tone's word for a cell, or "" when the tone is neutral or the text already says it."""
    if palette.says_tone(text, tone):
        return ""
    return palette.tone_word(tone)


def key_values_table(block: KeyValues, width: float) -> list[Any]:
    """Labels in a muted bold column (30% of the width, more for long labels), values beside."""
    size = 8.5
    key_style = paragraph_style("key", size, BOLD, ink=palette.MUTED_INK)
    value_style = paragraph_style("value", size)
    longest_key = max((_width(key, BOLD, size) for key, _ in block.rows), default=60.0)
    # Most labels fit 30% of the width: key-value tables that follow one another then line up.
    key_width = min(width * 0.4, max(width * 0.3, longest_key + 2 * CELL_PADDING + 2))
    rows = [
        [PdfParagraph(markup(key), key_style), PdfParagraph(markup(value), value_style)]
        for key, value in block.rows
    ]
    table = LongTable(rows or [["", ""]], colWidths=[key_width, width - key_width], hAlign="LEFT")
    table.setStyle(
        [
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("ROWBACKGROUNDS", (0, 0), (-1, -1), [colour(WHITE), colour(ZEBRA)]),
            ("LINEBELOW", (0, 0), (-1, -1), 0.25, colour(palette.GRID)),
            *_padding(),
        ]
    )
    return [table, Spacer(1, 8)]


def font_size(columns: int) -> float:
    """Smaller type for more columns, never under 7 pt."""
    return 8.5 if columns <= 5 else 8.0 if columns <= 8 else 7.5 if columns <= 10 else 7.0


def data_table(block: Table, width: float) -> list[Any]:
    """The caption, then the table: header row repeated on each page, zebra rows, numbers
    right-aligned, tone cells tinted and in bold tone colour with the tone's word.

    Args:
        block: the table.
        width: the frame's width in points; the table is never wider.

    Returns:
        Flowables for the story.
    """
    size = font_size(len(block.columns))
    aligns = _aligns(block)
    widths = column_widths(block, size, width)
    header = [
        PdfParagraph(markup(name), _cell_style(size, aligns[index], BOLD))
        for index, name in enumerate(block.columns)
    ]
    body = [
        [
            _cell(text, _tone_at(block, row, column), size, aligns[column], widths[column])
            for column, text in enumerate(cells)
        ]
        for row, cells in enumerate(block.rows)
    ]
    table = LongTable([header, *body], colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(_table_style(block, size, aligns))
    caption = paragraph_style(
        "caption", 8.5, BOLD, ink=palette.MUTED_INK, spaceBefore=2, spaceAfter=3
    )
    story: list[Any] = [PdfParagraph(markup(block.caption), caption)] if block.caption else []
    return [*story, table, Spacer(1, 10)]


def _cell_style(size: float, align: Align, font: str = FONT, ink: str = palette.INK) -> Any:
    return paragraph_style(
        f"cell-{align}-{font}-{ink}",
        size,
        font,
        ink,
        leading=round(size * 1.2, 1),
        alignment=TA_RIGHT if align == "right" else TA_LEFT,
    )


def _shown(text: str, tone: Tone) -> str:
    # The word goes in front, so the numbers of a right-aligned column still line up.
    word = tone_word_for(text, tone)
    return plain_text(f"{word} {text}" if word else text)


def _cell(text: str, tone: Tone, size: float, align: Align, column_width: float) -> Any:
    shown = _shown(text, tone)
    font = FONT if tone == "neutral" else BOLD
    if "\n" not in shown and _width(shown, font, size) <= column_width - 2 * CELL_PADDING - 0.5:
        return shown
    return PdfParagraph(
        markup(shown), _cell_style(size, align, font, palette.TONE_TEXT_COLOURS[tone])
    )


def _aligns(block: Table) -> list[Align]:
    if block.align:
        return list(block.align)
    first: list[Align] = ["left"]
    rest: list[Align] = ["right"] * (len(block.columns) - 1)
    return first + rest


def _tone_at(block: Table, row: int, column: int) -> Tone:
    if row < len(block.tones) and column < len(block.tones[row]):
        return block.tones[row][column]
    return "neutral"


def _padding() -> list[tuple[Any, ...]]:
    return [
        ("LEFTPADDING", (0, 0), (-1, -1), CELL_PADDING),
        ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PADDING),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]


def _table_style(block: Table, size: float, aligns: list[Align]) -> list[tuple[Any, ...]]:
    commands: list[tuple[Any, ...]] = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("FONT", (0, 1), (-1, -1), FONT, size, round(size * 1.2, 1)),
        ("TEXTCOLOR", (0, 1), (-1, -1), colour(palette.INK)),
        ("BACKGROUND", (0, 0), (-1, 0), colour(HEADER)),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, colour(palette.INK)),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colour(WHITE), colour(ZEBRA)]),
        ("LINEBELOW", (0, -1), (-1, -1), 0.6, colour(palette.GRID)),
        *_padding(),
    ]
    for column, align in enumerate(aligns):
        if align == "right":
            commands.append(("ALIGN", (column, 1), (column, -1), "RIGHT"))
    for row in range(len(block.rows)):
        for column in range(len(block.columns)):
            tone = _tone_at(block, row, column)
            if tone != "neutral":
                cell = (column, row + 1)
                commands += [
                    ("BACKGROUND", cell, cell, colour(palette.TONE_BACKGROUNDS[tone])),
                    ("TEXTCOLOR", cell, cell, colour(palette.TONE_TEXT_COLOURS[tone])),
                    ("FONTNAME", cell, cell, BOLD),
                ]
    return commands


def column_widths(block: Table, size: float, width: float) -> list[float]:
    """Widths that fit ``width``: each column gets at least its longest word and shares what is
    left in proportion to how much more its longest cell would like.

    Args:
        block: the table (its header and cells, as text).
        size: the font size of the cells.
        width: the frame's width in points.

    Returns:
        One width per column, summing to at most ``width`` (to exactly it when the table is wide).
    """
    pad = 2 * CELL_PADDING + 1
    natural: list[float] = []
    least: list[float] = []
    for column, name in enumerate(block.columns):
        shown = [
            _shown(cells[column], _tone_at(block, row, column))
            for row, cells in enumerate(block.rows)
            if column < len(cells)
        ]
        longest_line = max(
            (_width(line, BOLD, size) for t in shown for line in t.split("\n")), default=0.0
        )
        longest_word = max(_word_width(text, size) for text in [name, *shown])
        header = _width(name, BOLD, size)
        least.append(pad + longest_word)
        natural.append(pad + max(longest_line, longest_word, header))
    if sum(natural) <= width:
        # Narrow tables keep their natural width; nearly full ones are stretched to the margin.
        scale = width / sum(natural) if sum(natural) > 0.6 * width else 1.0
        return [n * scale for n in natural]
    if sum(least) >= width:
        return [lo * width / sum(least) for lo in least]
    wants = [n - lo for n, lo in zip(natural, least, strict=True)]
    level = _fill_level(wants, width - sum(least))
    return [lo + min(want, level) for lo, want in zip(least, wants, strict=True)]


def _fill_level(wants: list[float], spare: float) -> float:
    """The level L at which giving each column min(want, L) more uses exactly ``spare``.

    Short columns ("<= 80 ms", "+73.1%") so get all they want and stay on one line; only the
    columns of long text share what is left, and wrap.
    """
    remaining, open_columns = spare, len(wants)
    for want in sorted(wants):
        if want * open_columns > remaining:
            return remaining / open_columns
        remaining -= want
        open_columns -= 1
    return max(wants, default=0.0)


def _width(text: str, font: str, size: float) -> float:
    return float(stringWidth(plain_text(text), font, size))


def _word_width(text: str, size: float) -> float:
    # Bold, as the header and tone cells are: a column must hold their longest word too.
    return max((_width(word, BOLD, size) for word in text.split()), default=0.0)
