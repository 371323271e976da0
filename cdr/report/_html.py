"""The single self-contained HTML page: inline CSS, figures as base64 PNG, no scripts, no network."""
from __future__ import annotations

import base64
import html

import numpy as np
import pandas as pd

__all__ = ["render_html", "format_cell"]

CSS = """
body{font-family:Arial,Helvetica,sans-serif;margin:0;color:#212b32;background:#f0f4f5;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:1.5rem;background:#fff}
h1{color:#005eb8;margin-bottom:.2rem}h2{color:#005eb8;border-bottom:2px solid #005eb8;padding-bottom:.2rem;margin-top:2rem}
.banner{background:#d5281b;color:#fff;font-weight:bold;font-size:1.3rem;text-align:center;padding:.8rem;letter-spacing:.05em}
.headline{display:flex;flex-wrap:wrap;gap:1rem;margin:1rem 0}
.stat{flex:1 1 180px;border-left:6px solid #005eb8;background:#e8edee;padding:.6rem .9rem}
.stat .n{font-size:1.8rem;font-weight:bold}.stat .l{font-size:.9rem}
table.cdr{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.85rem}
table.cdr th,table.cdr td{border:1px solid #aeb7bd;padding:.25rem .5rem;text-align:right}
table.cdr th{background:#005eb8;color:#fff}table.cdr td.label{text-align:left}
table.cdr tr.total td{font-weight:bold;background:#f0f4f5}
td.c,td.x{color:#768692}th span.col{font-weight:normal;font-size:.75rem}.note{font-size:.85rem;color:#4c6272}
figure{margin:.5rem 0 1.5rem}figure img{max-width:100%;height:auto;border:1px solid #e8edee}
.pending{background:#fff9c4;border-left:6px solid #ffeb3b;padding:.5rem .9rem}
.scroll{overflow-x:auto}
footer{font-size:.8rem;color:#4c6272;margin-top:2rem;border-top:1px solid #aeb7bd;padding-top:.5rem}
"""


def format_cell(value, mark, column, decimals=1) -> str:
    if mark in ("[c]", "[x]"):
        return mark
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if "population" in column:
        return f"{value:,.0f}"
    return f"{value:,.{decimals}f}"


def _table_html(name, table, marks, count_columns, label_columns, decimals=None, column_labels=None):
    esc = html.escape
    column_labels = column_labels or {}
    head = "".join(f'<th title="{esc(c)}">{esc(column_labels[c])}<br><span class="col">{esc(c)}</span></th>'
                   if c in column_labels else f"<th>{esc(c)}</th>" for c in table.columns)
    rows = []
    for i in range(len(table)):
        first = table.iloc[i, 0]
        total = isinstance(first, str) and first in ("total",) or (
            "period_start" in table.columns and pd.isna(table["period_start"].iloc[i]))
        cells = []
        for col in table.columns:
            mark = marks[col].iloc[i] if col in marks else ""
            value = table[col].iloc[i]
            text = str(value) if col in label_columns and not pd.isna(value) else format_cell(value, mark, col, (decimals or {}).get(col, 1))
            cls = []
            if col in label_columns:
                cls.append("label")
            if col in count_columns:
                cls.append("count")
            if mark == "[c]":
                cls.append("c")
            elif mark == "[x]":
                cls.append("x")
            attr = f' class="{" ".join(cls)}"' if cls else ""
            data = f' data-column="{esc(col)}"'
            cells.append(f"<td{attr}{data}>{esc(text)}</td>")
        rows.append(f'<tr{" class=total" if total else ""}>' + "".join(cells) + "</tr>")
    return (f'<div class="scroll"><table class="cdr" id="table-{esc(name)}" data-table="{esc(name)}"><thead><tr>{head}'
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def _img(name, png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img id="figure-{html.escape(name)}" alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{data}"></figure>')


def count_text(value) -> str:
    """A published count as text: thousands separated, or the suppression mark ("[c]") as it is."""
    return f"{value:,}" if isinstance(value, (int, np.integer)) else str(value)


def render_html(report) -> str:
    """The page for a :class:`~cdr.report.Report`."""
    esc = html.escape
    m = report.manifest
    ctx = report.context
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{esc(report.title)}</title><style>{CSS}</style></head><body>"]
    if report.synthetic:
        parts.append('<div class="banner" id="synthetic-banner">SYNTHETIC DATA - generated records, not real '
                     "child deaths. Do not use for decisions.</div>")
    parts.append("<main>")
    parts.append(f"<h1>{esc(report.title)}</h1>")
    made = f" on {m['created'][:10]}" if m.get("created") else ""
    parts.append(f"<p>{esc(ctx['period_long'])}. Produced by cdr {esc(m['library']['cdr_version'])}{esc(made)}. "
                 f"Counts of 1 to {report.threshold - 1} and the cells needed to protect them are shown as [c].</p>")
    # headline numbers
    head, hmarks = report.tables["headline"], report.marks["headline"]
    stats = [("deaths", "deaths notified"), ("reviewed", "reviews completed"), ("pending", "reviews pending"),
             ("rate_per_100000", "deaths per 100,000 children")]
    parts.append('<div class="headline">')
    for col, lab in stats:
        text = format_cell(head[col].iloc[0], hmarks[col].iloc[0], col)
        if col == "rate_per_100000" and hmarks[col].iloc[0] == "":
            text += (f" ({format_cell(head[col + '_lower_95'].iloc[0], '', col)}-"
                     f"{format_cell(head[col + '_upper_95'].iloc[0], '', col)})")
        parts.append(f'<div class="stat"><div class="n">{esc(text)}</div><div class="l">{esc(lab)}</div></div>')
    parts.append("</div>")
    if ctx.get("pending_note"):
        parts.append(f'<p class="pending">{esc(ctx["pending_note"])}</p>')
    for section in report.sections:
        if not any(n in report.tables for n in section.get("tables", [])) and not section.get("show_text"):
            continue
        parts.append(f"<h2>{esc(section['title'])}</h2>")
        for text in section.get("text", []):
            parts.append(f"<p>{esc(text)}</p>")
        for fig in section.get("figures", []):
            if fig in report.figures:
                parts.append(_img(fig, report.figures[fig], section["title"]))
        for name in section.get("tables", []):
            if name not in report.tables:
                continue
            spec = report.table_info[name]
            parts.append(f"<h3>{esc(spec['title'])}</h3>")
            parts.append(_table_html(name, report.tables[name], report.marks[name], spec["count_columns"],
                                     spec["label_columns"], spec.get("decimals"), spec.get("column_labels")))
            for note in spec["notes"]:
                parts.append(f'<p class="note">{esc(note)}</p>')
    parts.append("<h2>Methods and data provenance</h2>")
    for text in report.methods:
        parts.append(f"<p>{esc(text)}</p>")
    parts.append("<h3>Inputs</h3><ul>")
    for item in m["inputs"]:
        parts.append(f"<li>{esc(item['role'])}: {esc(str(item.get('path') or item.get('description', '')))}"
                     + (f" (sha256 {esc(item['sha256'][:16])}...)" if item.get("sha256") else "") + "</li>")
    parts.append("</ul>")
    rec = m["records"]
    n = lambda v: esc(count_text(v))  # noqa: E731
    parts.append(f"<p>Records read: {n(rec['input'])}; failed validation and excluded: {n(rec['excluded_invalid'])}; "
                 f"in {esc(ctx['period'])}: {n(rec['in_period'])}; earlier years (trend only): {n(rec['earlier_periods'])}; "
                 f"later years (not used): {n(rec['later_periods'])}"
                 + (f"; in {esc(ctx['period'])} outside the reported area (comparators only): {n(rec['outside_unit'])}"
                    if rec.get("outside_unit") else "") + ". Counts from 1 to the suppression threshold are shown as "
                 "[c], with others where they would give them away.</p>")
    if rec["excluded_invalid"]:
        private = ctx.get("private_name")
        where = (f"the private folder {private} beside this bundle" if private
                 else "a private folder beside this bundle (by default <bundle folder>.private)")
        parts.append(f'<p class="note" id="private-folder">The excluded records (row numbers, case ids and values) '
                     f"are listed in {esc(where)}, not in this bundle. That folder must not be published.</p>")
    if rec.get("fields_not_recorded"):
        parts.append("<p>Counted with a value not recorded (the value was not usable; the death is in every count "
                     "that does not need it), records by field: "
                     + esc(", ".join(f"{f} {k}" for f, k in rec["fields_not_recorded"].items())) + ".</p>")
    cert = m["disclosure"]["certificate"]
    parts.append(f"<p>Disclosure audit: <strong>{esc(str(cert.get('result', 'pass' if cert.get('passed') else 'fail')))}"
                 f"</strong> ({m['disclosure']['n_cells']:,} cells, {m['disclosure']['n_equations']:,} linking "
                 f"equations, {m['disclosure']['n_suppressed_primary']:,} primary and "
                 f"{m['disclosure']['n_suppressed_secondary']:,} secondary suppressions).</p>")
    parts.append(f"<footer><p>{esc(ctx['attribution'])}</p>"
                 + (f"<p><strong>{esc(ctx['synthetic_note'])}</strong></p>" if report.synthetic else "")
                 + "</footer></main></body></html>")
    return "\n".join(parts)
