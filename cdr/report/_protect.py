"""Disclosure control of a whole report bundle with :mod:`cdr.disclosure`.

Every count cell of the bundle and every equation linking them (``cdr.report._bundle``) go to
:func:`cdr.disclosure.secondary_suppression` as one :class:`cdr.disclosure.Bundle` (primary and
secondary suppression, optimal integer program when small enough, heuristic otherwise), and the
result is attacked by :func:`cdr.disclosure.audit`. Unpublished parts of published totals (the LAs
of a region outside the partnership) are cells of kind ``"unpublished"``: unknowns >= 0 for the
attacker, protected only where small (``docs/methods/disclosure.md``). A bundle that fails the audit is refused
(:func:`check_passed`); the report does not patch a failing pattern itself. (An earlier version had
its own repair loop and a 10 s search limit because the old search timed out on England bundles and
fell back to a heuristic that stopped short; the reworked search passes its audit on every report
bundle measured, see ``docs/howto/report-outputs.md``.)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cdr.errors import DisclosureError

__all__ = ["protect", "Protection"]


@dataclass
class Protection:
    cells: pd.DataFrame       # cell, value (true), published (NaN if suppressed), primary, secondary
    audit: pd.DataFrame       # cell, lower, upper, status
    certificate: dict
    method: str

    @property
    def published(self) -> dict:
        return {c: (None if np.isnan(p) else int(v)) for c, v, p in
                zip(self.cells["cell"], self.cells["value"], self.cells["published"])}


def protect(cells: pd.DataFrame, equations, *, threshold: int = 5, previous=None, cost=None) -> Protection:
    """Suppress and audit ``cells`` (columns ``cell``, ``value``, optional ``unpublished``) linked by ``equations``.

    ``previous``: ``(cells, equations)`` of an earlier release (``cell``, ``published`` with NaN where
    suppressed, optional ``unpublished``), whose decisions are kept (see :func:`_with_previous`).
    ``cost``: ``{cell: cost}`` of hiding a cell (default: its value,
    :func:`cdr.disclosure.secondary_suppression`). Unpublished parts (``unpublished`` True, see
    :meth:`cdr.report._bundle.Bundle.geography`) are never shown; they go to :mod:`cdr.disclosure`
    as cells of kind ``"unpublished"`` (the attacker knows only that they are >= 0; a part of
    1 .. threshold-1 is protected like a primary cell, a larger one or a zero may be derived). The
    search uses the defaults of :func:`cdr.disclosure.secondary_suppression`; the final audit
    always runs and its result is in the certificate.
    """
    from cdr import disclosure

    n_current = len(cells)
    unpublished = (cells["unpublished"].fillna(False).astype(bool).to_numpy() if "unpublished" in cells
                   else np.zeros(n_current, dtype=bool))
    frame, equations = _with_previous(cells, equations, previous, unpublished)
    unpub = np.r_[unpublished, np.zeros(len(frame) - n_current, dtype=bool)]
    frame["kind"] = np.where(unpub, "unpublished", "cell")
    bundle = disclosure.Bundle(cells=frame, equations=equations, tables={}, spec={"source": "cdr.report"})
    result = disclosure.secondary_suppression(bundle, threshold=threshold, cost="value" if cost is None else cost)
    res = result.cells.set_index("cell")
    ids = frame["cell"].to_numpy()
    values = frame["value"].to_numpy()
    suppressed = res["suppressed"].reindex(ids).to_numpy(dtype=bool)
    primary = (res["suppression"].reindex(ids) == "primary").to_numpy()
    # a part published by an earlier release is public knowledge (locked published): not modelled
    free = unpub & (res["suppression"].reindex(ids) == "unpublished").to_numpy()
    small = (values >= 1) & (values < threshold)
    modelled = np.where(free, np.where(small, "small", "unknown"), "")
    out = pd.DataFrame({
        "cell": ids, "value": values,
        "published": np.where(suppressed, np.nan, values.astype(float)),
        "primary": primary & ~unpub, "secondary": suppressed & ~primary & ~unpub,
        "previous_release": frame["locked"].to_numpy() & ~unpub,
        "unpublished": unpub, "modelled_as": modelled,
    }).iloc[:n_current].reset_index(drop=True)
    cert = dict(disclosure.certificate(result.audit))
    cert["result"] = "pass" if cert.get("passed") else "fail"
    cert["suppression_method"] = result.method
    cert["information_loss"] = result.information_loss
    cert["search"] = {k: v for k, v in result.spec.items()
                      if k in ("method", "cost", "max_optimal", "time_limit", "fallback", "timings_s")}
    if isinstance(result.spec.get("search"), dict):
        cert["search"]["proven_optimal"] = result.spec["search"].get("proven_optimal")
    cur = modelled[:n_current]
    cert["unpublished_parts"] = {
        "n": int(unpub[:n_current].sum()),
        "model": "each unpublished part (a piece of a published LA/footprint/region/England total that is not "
                 "itself published) is an unknown of the attacked system (cdr.disclosure kind 'unpublished'): "
                 "the attacker knows only that it is a non-negative integer; a part of 1 to threshold-1 ('small') "
                 "must not be recoverable or shown to be small, like a primary cell; any other part ('unknown', "
                 "including zeros) may be derived, as it is not a small count.",
        "counts": {k: int((cur == k).sum()) for k in ("small", "unknown")},
    }
    return Protection(out, result.audit, cert, f"cdr.disclosure ({result.method})")


def _with_previous(cells, equations, previous, unpublished=None):
    """Cells and equations of this release plus what an earlier release made public.

    A cell published before is locked published, one suppressed before stays suppressed; cells
    only in the earlier release enter when published (with the equations among known cells).
    A cell whose published value has changed (a revision) is an error: publishing both values
    would disclose the difference. An unpublished part of this release (``unpublished``) that the
    earlier release published is public knowledge (locked published); a part unpublished in either
    release and not published by the earlier one is no decision to keep (not locked).
    """
    frame = pd.DataFrame({"cell": cells["cell"].to_numpy(), "value": cells["value"].astype(int).to_numpy()})
    frame["tables"] = [["report"]] * len(frame)
    frame["locked"] = False
    frame["previously_suppressed"] = False
    if previous is None:
        return frame, [(t, list(p)) for t, p in equations]
    unpublished = np.zeros(len(frame), dtype=bool) if unpublished is None else np.asarray(unpublished, dtype=bool)
    prev_cells, prev_eqs = previous
    prev = prev_cells.set_index("cell")["published"]
    here = frame["cell"].isin(prev.index).to_numpy()
    old = prev.reindex(frame["cell"]).to_numpy(dtype=float)
    revised = here & ~np.isnan(old) & (old != frame["value"].to_numpy())
    if revised.any():
        rows = frame.loc[revised, ["cell", "value"]].assign(previous=old[revised]).head(10)
        lines = "\n".join(f"  {r.cell}: published as {r.previous:g}, now {r.value}" for r in rows.itertuples())
        raise DisclosureError(
            f"{int(revised.sum())} cell(s) published in the previous release have new values (revised records):\n"
            f"{lines}\nPublishing both values would disclose the difference. Report the revision separately, or "
            "build this release without previous= and publish a revision note.")
    was_part = (prev_cells.set_index("cell")["unpublished"].reindex(frame["cell"]).fillna(False).astype(bool).to_numpy()
                if "unpublished" in prev_cells else np.zeros(len(frame), dtype=bool))
    lock = here & ~((unpublished | was_part) & np.isnan(old))   # an unknown part is no decision to keep
    frame.loc[lock, "locked"] = True
    frame.loc[lock & np.isnan(old), "previously_suppressed"] = True
    extra = prev[~prev.index.isin(frame["cell"]) & prev.notna()]
    if len(extra):
        frame = pd.concat([frame, pd.DataFrame({
            "cell": extra.index.to_numpy(), "value": extra.to_numpy(dtype=float).astype(int),
            "tables": [["previous"]] * len(extra), "locked": True, "previously_suppressed": False})],
            ignore_index=True)
    known = set(frame["cell"])
    eqs = [(t, list(p)) for t, p in equations]
    eqs += [(t, list(p)) for t, p in prev_eqs if t in known and all(x in known for x in p)]
    seen, unique = set(), []
    for t, p in eqs:
        if (t, tuple(p)) not in seen:
            seen.add((t, tuple(p)))
            unique.append((t, p))
    return frame, unique


def explain_failure(audit: pd.DataFrame, equations, limit: int = 10) -> str:
    bad = audit[~audit["status"].isin(("protected", "derivable"))]
    lines = []
    for row in bad.head(limit).itertuples(index=False):
        pins = [t for t, parts in equations if row.cell == t or row.cell in parts][:3]
        lines.append(f"  {row.cell}: {row.status}, an attacker finds it in [{row.lower:g}, {row.upper:g}]"
                     + (f"; pinned through the totals {pins}" if pins else ""))
    more = len(bad) - limit
    return "\n".join(lines) + (f"\n  ... and {more} more" if more > 0 else "")


def check_passed(protection: Protection, equations) -> None:
    if protection.certificate.get("result") != "pass":
        raise DisclosureError(
            "the report bundle fails the disclosure audit, so nothing was written. Cells an attacker "
            "could recover or narrow down:\n" + explain_failure(protection.audit, equations)
            + "\nAggregate categories or years (or raise the footprint size) and run again.",
            audit=protection.audit)
