"""Writing a protected bundle: report.html, tables.xlsx, tables/*.csv, figures/*.png, manifest.json.

The files are built in memory (escaped, byte-reproducible) and written by :func:`cdr.report._safeio.write_folder`,
which swaps the whole folder into place and never deletes or overwrites a file cdr did not write.
Record-level details go to the private folder (:mod:`cdr.report._private`), never into the bundle.
"""
from __future__ import annotations

import pathlib

import pandas as pd

from cdr.report._bundle import MARK_LOW, MARK_NA, MARK_SUPPRESSED
from cdr.report._private import PRIVATE_WARNING, private_files, private_folder
from cdr.report._safeio import BUNDLE_FORMAT, PRIVATE_FORMAT, csv_bytes, json_bytes, write_folder, xlsx_bytes

__all__ = ["write_bundle"]

MARKERS = pd.DataFrame({
    "marker": [MARK_SUPPRESSED, MARK_NA, MARK_LOW],
    "meaning": ["suppressed to protect confidentiality (a count from 1 to threshold-1, or a cell that would reveal one)",
                "not applicable / cannot be computed (e.g. no completed reviews)",
                "low reliability: rate from fewer than 20 deaths"],
})


def write_bundle(report, out: pathlib.Path, *, private=None, force: bool = False) -> dict:
    """Write every file of the bundle to ``out`` (and record-level details to the private folder).

    ``out`` must be new, empty or an earlier cdr bundle (verified by its manifest's format and file
    hashes); with ``force`` a folder holding other files is accepted and those files are left alone.
    The private folder (``private``, default ``<out>.private``) is written only when there is something
    private (excluded records, a full error message), before the bundle. Returns relative name -> path
    of every bundle file.
    """
    out = pathlib.Path(out)
    secret = private_files(report)
    if secret:
        where = private_folder(out, private)
        if where.absolute() == out.absolute() or out.absolute() in where.absolute().parents:
            from cdr.errors import CdrError

            raise CdrError(f"--private {where} is inside --out {out}; the private folder must be outside the "
                           "published bundle, e.g. beside it.")
        write_folder(where, secret, {"warning": PRIVATE_WARNING, "bundle": out.name, "title": report.title},
                     fmt=PRIVATE_FORMAT, force=force, what="private folder")
    files = {}
    published = {name: report.published(name) for name in report.tables}
    for name, table in published.items():
        files[f"tables/{name}.csv"] = csv_bytes(table)
    for name, png in report.figures.items():
        files[f"figures/{name}.png"] = png
    files["tables.xlsx"] = xlsx_bytes([("notes", _notes(report))] + [(name[:31], t) for name, t in published.items()])
    files["report.html"] = report.html.encode("utf-8")
    if getattr(report, "ledger", None) is not None:   # the release ledger (helper A, issue 11 item 1), if any
        files["ledger.json"] = json_bytes(report.ledger)
    return write_folder(out, files, report.manifest, fmt=BUNDLE_FORMAT, force=force)


def _notes(report) -> pd.DataFrame:
    rows = [("title", report.title)]
    if report.synthetic:
        rows.append(("WARNING", "SYNTHETIC DATA - generated records, not real child deaths"))
    rows.append(("period", report.context["period_long"]))
    for i, text in enumerate(report.methods, 1):
        rows.append((f"method {i}", text))
    for marker, meaning in MARKERS.itertuples(index=False):
        rows.append((f"marker {marker}", meaning))
    d = report.manifest["disclosure"]
    rows.append(("disclosure audit", f"{d['certificate_result']}: {d['n_cells']} cells, {d['n_equations']} equations, "
                 f"{d['n_suppressed_primary']} primary and {d['n_suppressed_secondary']} secondary suppressions"))
    for name, info in report.table_info.items():
        rows.append((f"sheet {name[:31]}", info["title"] + ". " + " ".join(info["notes"])))
    rows.append(("attribution", report.context["attribution"]))
    return pd.DataFrame(rows, columns=["item", "note"])
