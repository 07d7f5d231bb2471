"""The HTML report's stylesheet: system fonts only, no external resources, readable on screen and on paper.

Example:
    >>> "font-family" in STYLESHEET and "http" not in STYLESHEET
    True
"""

from __future__ import annotations

__all__ = ["STYLESHEET"]

STYLESHEET = """
:root {
  --ink: #1e293b; --muted: #64748b; --line: #e2e8f0; --band: #f8fafc; --accent: #2563eb;
  --good: #047857; --bad: #b45309; --card: #ffffff; --page: #f1f5f9;
}
* { box-sizing: border-box; }
html { background: var(--page); }
body {
  margin: 0; color: var(--ink); line-height: 1.45; font-size: 15px;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Noto Sans", "DejaVu Sans",
    Arial, sans-serif;
}
main { max-width: 1160px; margin: 0 auto; padding: 28px 28px 40px; }
header { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 22px 26px 18px; }
.eyebrow { margin: 0; color: var(--accent); font-size: 12px; font-weight: 700; letter-spacing: .08em;
  text-transform: uppercase; }
h1 { margin: 4px 0 14px; font-size: 26px; line-height: 1.2; overflow-wrap: anywhere; }
h1 .task { color: var(--muted); font-weight: 500; }
h2 { font-size: 18px; margin: 0 0 4px; }
h3.sub { font-size: 15.5px; margin: 22px 0 8px; }
.lead { margin: 0 0 14px; color: var(--muted); font-size: 13.5px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 0; font-size: 14px; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 14px; margin: 18px 0; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 14px 18px; }
.card .label { color: var(--muted); font-size: 12.5px; font-weight: 600; text-transform: uppercase;
  letter-spacing: .05em; }
.card .value { font-size: 26px; font-weight: 700; margin: 2px 0; font-variant-numeric: tabular-nums; }
.card .detail { color: var(--muted); font-size: 13px; font-variant-numeric: tabular-nums; }
.good { color: var(--good); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 20px 24px;
  margin: 18px 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; font-variant-numeric: tabular-nums; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--band); color: var(--muted); font-weight: 600; font-size: 12.5px; white-space: nowrap;
  position: sticky; top: 0; }
td.num, th.num { text-align: right; white-space: nowrap; }
td.name { font-weight: 600; min-width: 9em; overflow-wrap: break-word; }
td.layer { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace;
  font-size: 12.5px; overflow-wrap: break-word; }
tbody tr:nth-child(even) td { background: #fbfdff; }
tbody tr:hover td { background: #eff6ff; }
.bar { display: inline-block; width: 60px; height: 8px; background: var(--line); border-radius: 4px;
  vertical-align: middle; margin-left: 8px; overflow: hidden; }
.bar > span { display: block; height: 100%; background: var(--accent); }
figure { margin: 8px 0 0; }
figure img { display: block; width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 6px; }
.stage-notes { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 12px; }
.stage-notes article { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.stage-notes h3 { margin: 0 0 6px; font-size: 14.5px; overflow-wrap: anywhere; }
.stage-notes dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0;
  font-size: 13px; }
.stage-notes dt { color: var(--muted); }
.stage-notes dd { margin: 0; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.empty { color: var(--muted); margin: 0; }
footer { color: var(--muted); font-size: 12.5px; text-align: center; margin-top: 10px; }
@media print {
  html { background: #fff; }
  section, header, .card { break-inside: avoid; border-color: #ccc; }
  th { position: static; }
}
"""
