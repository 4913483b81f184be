"""The HTML report's inline stylesheet: one readable column on screen, clean pages in print.

Colours come from :mod:`cvplatform.reports.palette`, so the HTML and the PDF agree.
"""

from __future__ import annotations

from cvplatform.reports.palette import (
    BLUE,
    GRID,
    INK,
    MUTED_INK,
    TONE_BACKGROUNDS,
    TONE_COLOURS,
    TONE_TEXT_COLOURS,
)
from cvplatform.reports.svg_primitives import FONT_STACK

_SCREEN = """
*, *::before, *::after { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0; background: #FFFFFF; color: {INK}; font-family: {FONT};
  font-size: 16px; line-height: 1.55; }
.report { max-width: 960px; margin: 0 auto; padding: 32px 40px 48px; background: #FFFFFF;
  min-height: 100vh; }
.masthead { border-bottom: 3px solid {BLUE}; padding-bottom: 14px; margin-bottom: 20px; }
h1 { font-size: 28px; line-height: 1.2; margin: 0 0 6px; letter-spacing: -0.01em; }
.subtitle { margin: 0; color: {MUTED}; font-size: 15px; }
h2 { font-size: 20px; line-height: 1.3; margin: 36px 0 12px; padding-bottom: 4px;
  border-bottom: 1px solid {GRID}; }
p { margin: 0 0 12px; }
ul, ol { margin: 0 0 14px; padding-left: 24px; }
li { margin: 3px 0; }
a { color: {BLUE}; }
.contents { font-size: 14px; margin: 0 0 8px; }
.contents ol { display: flex; flex-wrap: wrap; gap: 4px 18px; list-style: none; padding: 0;
  margin: 0; }
.contents li { margin: 0; }
.contents a { text-decoration: none; }
.contents a:hover { text-decoration: underline; }
.engine-key { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 18px;
  margin: 10px 0 4px; padding: 8px 12px; border: 1px solid {GRID}; border-radius: 6px;
  font-size: 13.5px; color: {MUTED}; }
.engine-key .key-title { font-weight: 600; color: {INK}; }
.engine-key .swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
  margin-right: 6px; vertical-align: -1px; }
.callout { border-left: 4px solid; border-radius: 4px; padding: 10px 14px; }
.badge { display: inline-block; min-width: 3.6em; padding: 1px 7px; border-radius: 10px;
  font-size: 0.72em; font-weight: 700; letter-spacing: 0.05em; text-align: center;
  vertical-align: 0.1em; color: #FFFFFF; line-height: 1.5; }
.key-values { display: grid; grid-template-columns: minmax(160px, max-content) 1fr;
  margin: 0 0 16px; border-top: 1px solid {GRID}; font-size: 15px; }
.key-values div { display: contents; }
.key-values dt, .key-values dd { margin: 0; padding: 6px 10px; border-bottom: 1px solid {GRID}; }
.key-values dt { color: {MUTED}; font-weight: 600; }
.key-values dd { overflow-wrap: anywhere; font-variant-numeric: tabular-nums; }
.table-wrap { overflow-x: auto; margin: 0 0 18px; }
table { border-collapse: collapse; width: 100%; background: #FFFFFF; font-size: 13.5px;
  font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; color: {MUTED}; padding: 0 0 6px; }
th, td { padding: 6px 9px; border-bottom: 1px solid {GRID}; vertical-align: top; }
th { background: #EEF1F4; border-bottom: 2px solid {INK}; font-weight: 600; line-height: 1.3; }
tbody tr:nth-child(even) { background: #F7F8FA; }
td.num { text-align: right; white-space: nowrap; }
th.num { text-align: right; }
td.text, th.text { text-align: left; }
/* A table too wide for the column breaks out of it, centred, up to the window's width. */
.table-wrap.wide { position: relative; left: 50%; transform: translateX(-50%);
  width: max-content; min-width: 100%; max-width: calc(100vw - 32px); }
table.wide { font-size: 12px; }
table.wide th, table.wide td { padding: 5px 6px; }
figure.chart { margin: 8px 0 22px; }
figure.chart svg { display: block; width: 100%; height: auto; }
figcaption { font-size: 13px; color: {MUTED}; margin-top: 4px; }
.colophon { margin-top: 40px; padding-top: 10px; border-top: 1px solid {GRID};
  font-size: 12.5px; color: {MUTED}; }
"""

_PRINT = """
@page { size: A4; margin: 14mm 12mm 16mm; }
@media print {
  body { background: #FFFFFF; font-size: 10.5pt; }
  .report { max-width: none; padding: 0; min-height: 0; }
  .contents { display: none; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2 { margin-top: 18pt; break-after: avoid; page-break-after: avoid; }
  figure.chart, .callout, .key-values div, tr { break-inside: avoid; page-break-inside: avoid; }
  .table-wrap, .table-wrap.wide { overflow: visible; position: static; transform: none;
    width: auto; max-width: none; }
  table { font-size: 9pt; }
  table.wide { font-size: 7.5pt; }
  th, td, table.wide th, table.wide td { padding: 3px 4px; }
  td.num { white-space: normal; }
  thead { display: table-header-group; }
  a { color: inherit; text-decoration: none; }
}
"""


def _tone_rules() -> str:
    rules = []
    for tone in ("good", "bad", "warning", "neutral"):
        rules.append(
            f".badge-{tone} {{ background: {TONE_TEXT_COLOURS[tone]}; }}\n"
            f".callout.tone-{tone} {{ background: {TONE_BACKGROUNDS[tone]}; "
            f"border-color: {TONE_COLOURS[tone]}; }}\n"
            f"td.tone-{tone} {{ background: {TONE_BACKGROUNDS[tone]}; "
            f"color: {TONE_TEXT_COLOURS[tone]}; font-weight: 600; }}"
        )
    return "\n".join(rules)


def stylesheet() -> str:
    """The whole stylesheet, screen and print, as one string."""
    screen = (
        _SCREEN.replace("{INK}", INK)
        .replace("{MUTED}", MUTED_INK)
        .replace("{BLUE}", BLUE)
        .replace("{GRID}", GRID)
        .replace("{FONT}", FONT_STACK)
    )
    return f"{screen}{_tone_rules()}\n{_PRINT}"
