"""A report :class:`~cvplatform.reports.document.Document` as one self-contained HTML5 file.

No external asset of any kind: the stylesheet is inline and the charts are inline SVG, so the
file opens the same offline, attached to an e-mail, or printed. The markup is also well-formed
XML (every element closed, every text escaped), which the tests use to check it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape

from cvplatform.reports.document import (
    Align,
    BarChart,
    Block,
    BulletList,
    Document,
    KeyValues,
    Paragraph,
    ScatterChart,
    Section,
    Table,
    Tone,
)
from cvplatform.reports.html_style import stylesheet
from cvplatform.reports.palette import TONE_WORDS, says_tone, series_colours
from cvplatform.reports.svg_charts import chart_svg

_WIDE_TABLE = 8  # columns; wider tables are set smaller so that they fit the column


def render_html(document: Document) -> bytes:
    """The document as a UTF-8 HTML5 file: a header, a table of contents, its sections, a footer.

    Args:
        document: the view to render; every text in it is escaped.

    Returns:
        The file's bytes, the same for the same document.
    """
    anchors = _anchors(document.sections)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8"/>',
        '<meta name="viewport" content="width=device-width, initial-scale=1"/>',
        f"<title>{escape(document.title)}</title>",
        f"<style>{stylesheet()}</style>",
        "</head>",
        "<body>",
        '<main class="report">',
        _header(document),
        _contents(document.sections, anchors),
        _legend(document.legend),
        *(
            _section(section, anchor)
            for section, anchor in zip(document.sections, anchors, strict=True)
        ),
        _footer(document.footer),
        "</main>",
        "</body>",
        "</html>",
    ]
    return ("\n".join(part for part in parts if part) + "\n").encode("utf-8")


def _anchors(sections: Sequence[Section]) -> list[str]:
    """An id per section from its heading, numbered so that two equal headings stay apart."""
    slugs = [re.sub(r"[^a-z0-9]+", "-", section.heading.lower()).strip("-") for section in sections]
    return [f"s{index + 1}-{slug}" if slug else f"s{index + 1}" for index, slug in enumerate(slugs)]


def _header(document: Document) -> str:
    subtitle = f'<p class="subtitle">{escape(document.subtitle)}</p>' if document.subtitle else ""
    return f'<header class="masthead"><h1>{escape(document.title)}</h1>{subtitle}</header>'


def _contents(sections: Sequence[Section], anchors: Sequence[str]) -> str:
    if len(sections) < 3:  # a short document needs no table of contents
        return ""
    links = "".join(
        f'<li><a href="#{anchor}">{escape(section.heading)}</a></li>'
        for section, anchor in zip(sections, anchors, strict=True)
    )
    return f'<nav class="contents" aria-label="Contents"><ol>{links}</ol></nav>'


def _legend(engines: Sequence[str]) -> str:
    """The engines the charts draw, each with its colour: the key to every chart at once."""
    if not engines:
        return ""
    items = "".join(
        f'<span class="key-item"><span class="swatch" style="background: {colour}"></span>'
        f"{escape(label)}</span>"
        for label, colour in series_colours(engines).items()
    )
    return (
        f'<aside class="engine-key" aria-label="Engines in the charts">'
        f'<span class="key-title">Engines</span>{items}</aside>'
    )


def _footer(text: str) -> str:
    return f'<footer class="colophon"><p>{escape(text)}</p></footer>' if text else ""


def _section(section: Section, anchor: str) -> str:
    blocks = "\n".join(_block(block) for block in section.blocks)
    return f'<section id="{anchor}">\n<h2>{escape(section.heading)}</h2>\n{blocks}\n</section>'


def _block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return _paragraph(block)
    if isinstance(block, KeyValues):
        return _key_values(block)
    if isinstance(block, BulletList):
        return _bullets(block)
    if isinstance(block, Table):
        return _table(block)
    return _chart(block)


def badge(tone: Tone) -> str:
    """The tone's word in a coloured pill ("" for neutral): colour and word together."""
    word = TONE_WORDS[tone]
    return f'<span class="badge badge-{tone}">{word}</span>' if word else ""


def _paragraph(paragraph: Paragraph) -> str:
    if paragraph.tone == "neutral":
        return f"<p>{escape(paragraph.text)}</p>"
    return (
        f'<p class="callout tone-{paragraph.tone}">{badge(paragraph.tone)} '
        f"{escape(paragraph.text)}</p>"
    )


def _key_values(block: KeyValues) -> str:
    rows = "".join(
        f"<div><dt>{escape(key)}</dt><dd>{escape(value)}</dd></div>" for key, value in block.rows
    )
    return f'<dl class="key-values">{rows}</dl>'


def _bullets(block: BulletList) -> str:
    tag = "ol" if block.ordered else "ul"
    items = "".join(f"<li>{escape(item)}</li>" for item in block.items)
    return f"<{tag}>{items}</{tag}>"


def _alignments(table: Table) -> list[Align]:
    if table.align:
        return list(table.align)
    numbers: list[Align] = ["right"] * (len(table.columns) - 1)
    return ["left", *numbers]


def _cell(tag: str, text: str, align: Align, tone: Tone) -> str:
    classes = ["num" if align == "right" else "text"]
    content = escape(text)
    if tone != "neutral":
        classes.append(f"tone-{tone}")
        if not says_tone(text, tone):
            content = f"{badge(tone)} {content}"
    return f'<{tag} class="{" ".join(classes)}">{content}</{tag}>'


def _table(table: Table) -> str:
    align = _alignments(table)
    head = "".join(
        _cell("th", column, align[index] if index < len(align) else "left", "neutral")
        for index, column in enumerate(table.columns)
    )
    body = []
    for row_index, row in enumerate(table.rows):
        tones: Sequence[Tone] = table.tones[row_index] if row_index < len(table.tones) else ()
        cells = "".join(
            _cell(
                "td",
                text,
                align[index] if index < len(align) else "left",
                tones[index] if index < len(tones) else "neutral",
            )
            for index, text in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    caption = f"<caption>{escape(table.caption)}</caption>" if table.caption else ""
    wide = " wide" if len(table.columns) > _WIDE_TABLE else ""
    return (
        f'<div class="table-wrap{wide}"><table class="data{wide}">{caption}'
        f"<thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _chart(chart: BarChart | ScatterChart) -> str:
    note = f"<figcaption>{escape(chart.note)}</figcaption>" if chart.note else ""
    return f'<figure class="chart">{chart_svg(chart)}{note}</figure>'
