"""Writing a protected bundle: report.html, tables.xlsx, tables/*.csv, figures/*.png, manifest.json."""
from __future__ import annotations

import json
import pathlib

import pandas as pd

from cdr.report._bundle import MARK_LOW, MARK_NA, MARK_SUPPRESSED

__all__ = ["write_bundle"]

MARKERS = pd.DataFrame({
    "marker": [MARK_SUPPRESSED, MARK_NA, MARK_LOW],
    "meaning": ["suppressed to protect confidentiality (a count from 1 to threshold-1, or a cell that would reveal one)",
                "not applicable / cannot be computed (e.g. no completed reviews)",
                "low reliability: rate from fewer than 20 deaths"],
})


def write_bundle(report, out: pathlib.Path) -> dict:
    """Write every file of the bundle to ``out``; files an earlier bundle wrote there and this one does not are removed.

    Only files listed in the ``outputs`` of an earlier ``out/manifest.json`` (written by this
    function) are candidates for removal, and only inside ``out``; anything else in the directory is
    left alone.
    """
    from cdr.report._inputs import file_sha256

    out.mkdir(parents=True, exist_ok=True)
    owned = _previous_outputs(out)
    (out / "tables").mkdir(exist_ok=True)
    (out / "figures").mkdir(exist_ok=True)
    files = {}
    published = {name: report.published(name) for name in report.tables}
    for name, table in published.items():
        path = out / "tables" / f"{name}.csv"
        table.to_csv(path, index=False)
        files[f"tables/{name}.csv"] = path
    for name, png in report.figures.items():
        path = out / "figures" / f"{name}.png"
        path.write_bytes(png)
        files[f"figures/{name}.png"] = path
    xlsx = out / "tables.xlsx"
    notes = _notes(report)
    with pd.ExcelWriter(xlsx, engine="openpyxl") as writer:
        notes.to_excel(writer, sheet_name="notes", index=False)
        for name, table in published.items():
            table.to_excel(writer, sheet_name=name[:31], index=False)
    files["tables.xlsx"] = xlsx
    html = out / "report.html"
    html.write_text(report.html, encoding="utf-8")
    files["report.html"] = html
    if getattr(report, "ledger", None) is not None:   # the release ledger (cdr.report._build, cdr.disclosure.Ledger)
        path = out / "ledger.json"
        path.write_text(json.dumps(report.ledger, indent=1, ensure_ascii=False), encoding="utf-8")
        files["ledger.json"] = path
    manifest = dict(report.manifest)
    manifest["outputs"] = {k: file_sha256(p) for k, p in sorted(files.items())}
    stale = sorted(owned - set(files) - {"manifest.json"})
    for rel in stale:
        (out / rel).unlink(missing_ok=True)
    if stale:
        manifest["removed_from_earlier_run"] = stale
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    files["manifest.json"] = path
    return files


def _previous_outputs(out: pathlib.Path) -> set:
    """Relative paths of the files an earlier bundle in ``out`` wrote (its manifest's ``outputs``), inside ``out``."""
    path = out / "manifest.json"
    if not path.is_file():
        return set()
    try:
        listed = json.loads(path.read_text(encoding="utf-8")).get("outputs") or {}
    except (ValueError, AttributeError):
        return set()   # not a manifest of ours: remove nothing
    root = out.resolve()
    owned = set()
    for rel in listed:
        target = (out / str(rel)).resolve()
        if root in target.parents and target.is_file():
            owned.add(pathlib.PurePosixPath(target.relative_to(root)).as_posix())
    return owned


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
