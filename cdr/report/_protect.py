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

from dataclasses import dataclass, field

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
    releases: dict = field(default_factory=dict)        # cell -> earlier release that fixed its status
    joint_equations: list = field(default_factory=list)  # the equations of the whole (joint) system

    @property
    def published(self) -> dict:
        return {c: (None if np.isnan(p) else int(v)) for c, v, p in
                zip(self.cells["cell"], self.cells["value"], self.cells["published"])}


def protect(cells: pd.DataFrame, equations, *, threshold: int = 5, previous=None, cost=None) -> Protection:
    """Suppress and audit ``cells`` (columns ``cell``, ``value``, optional ``unpublished``) linked by ``equations``.

    ``previous``: ``(cells, equations)`` of everything published before (the release ledger,
    :class:`cdr.disclosure.Ledger`, recounted): ``cell``, ``value`` (the true count, recounted
    from this release's records), ``status`` (``"published"``, ``"suppressed"`` or
    ``"unpublished"``) and ``release``; cell ids must be the release-independent keys of the
    ledger (:meth:`cdr.report._bundle.Bundle.canonical`) in both. Earlier published cells are
    fixed, earlier suppressions stay suppressed and every earlier equation joins the system, so
    secondary suppression is chosen jointly with everything already published and the audit runs
    over the union (see :func:`_with_previous`). ``cost``: ``{cell: cost}`` of hiding a cell
    (default: its value, :func:`cdr.disclosure.secondary_suppression`). Unpublished parts
    (``unpublished`` True, see :meth:`cdr.report._bundle.Bundle.geography`) are never shown; they
    go to :mod:`cdr.disclosure` as cells of kind ``"unpublished"`` (the attacker knows only that
    they are >= 0; a part of 1 .. threshold-1 is protected like a primary cell, a larger one or a
    zero may be derived). The returned ``cells`` are those of this release (first ``len(cells)``
    rows); ``joint`` in the certificate counts the whole system.
    """
    from cdr import disclosure

    n_current = len(cells)
    unpublished = (cells["unpublished"].fillna(False).astype(bool).to_numpy() if "unpublished" in cells
                   else np.zeros(n_current, dtype=bool))
    frame, equations = _with_previous(cells, equations, previous, unpublished)
    frame["kind"] = np.where(frame.pop("is_part").to_numpy(dtype=bool), "unpublished", "cell")
    unpub = (frame["kind"] == "unpublished").to_numpy()
    bundle = disclosure.Bundle(cells=frame.drop(columns=["release"]), equations=equations, tables={},
                               spec={"source": "cdr.report"})
    result = disclosure.secondary_suppression(bundle, threshold=threshold, cost="value" if cost is None else cost)
    res = result.cells.set_index("cell")
    ids = frame["cell"].to_numpy()
    values = frame["value"].to_numpy()
    suppressed = res["suppressed"].reindex(ids).to_numpy(dtype=bool)
    primary = (res["suppression"].reindex(ids) == "primary").to_numpy()
    cur_unpub = np.r_[unpublished, np.zeros(len(frame) - n_current, dtype=bool)]
    out = pd.DataFrame({
        "cell": ids, "value": values,
        "published": np.where(suppressed, np.nan, values.astype(float)),
        "primary": primary & ~cur_unpub, "secondary": suppressed & ~primary & ~cur_unpub,
        "previous_release": frame["locked"].to_numpy() & ~cur_unpub,
        "unpublished": cur_unpub,
    })
    releases = dict(zip(ids, frame["release"]))
    out = out.iloc[:n_current].reset_index(drop=True)
    cert = dict(disclosure.certificate(result.audit))
    cert["result"] = "pass" if cert.get("passed") else "fail"
    cert["suppression_method"] = result.method
    # counts of cells only: the sum of the secondarily suppressed counts would narrow them
    cert["information_loss"] = {k: v for k, v in result.information_loss.items() if k != "value_secondary"}
    cert["search"] = {k: v for k, v in result.spec.items()
                      if k in ("method", "cost", "max_optimal", "time_limit", "fallback", "timings_s")}
    if isinstance(result.spec.get("search"), dict):
        cert["search"]["proven_optimal"] = result.spec["search"].get("proven_optimal")
    cert["unpublished_parts"] = {
        "n": int(unpublished.sum()),
        "model": "each unpublished part (a piece of a published LA/footprint/region/England total that is not "
                 "itself published) is an unknown of the attacked system (cdr.disclosure kind 'unpublished'): "
                 "the attacker knows only that it is a non-negative integer; a part from 1 to threshold-1 must "
                 "not be recoverable or shown to be below the threshold, like a primary cell; any other part "
                 "may be derived.",
    }
    cert["joint"] = {"n_cells": int(len(frame)), "n_cells_earlier_releases": int(len(frame) - n_current),
                     "n_equations": int(len(equations)), "n_unpublished": int(unpub.sum())}
    return Protection(out, result.audit, cert, f"cdr.disclosure ({result.method})", releases, equations)


def _with_previous(cells, equations, previous, unpublished=None):
    """Cells and equations of this release joined with everything published before.

    Every cell of the earlier releases enters the system: a cell published before is locked
    published (known to everybody), one suppressed before stays suppressed (locked suppressed,
    audited as a primary cell when its count is small), an unpublished part of an earlier release
    is an unknown >= 0 like this release's parts. Every earlier equation joins. A cell whose
    published value has changed (a revision) is an error: publishing both values would disclose
    the difference. Returns ``(frame, equations)``; ``frame`` has ``cell``, ``value``,
    ``tables``, ``locked``, ``previously_suppressed``, ``is_part`` and ``release`` (the earlier
    release that fixed the cell's status, "" for none).
    """
    unpublished = np.zeros(len(cells), dtype=bool) if unpublished is None else np.asarray(unpublished, dtype=bool)
    frame = pd.DataFrame({"cell": cells["cell"].to_numpy(), "value": cells["value"].astype(int).to_numpy()})
    frame["tables"] = [["report"]] * len(frame)
    frame["locked"] = False
    frame["previously_suppressed"] = False
    frame["is_part"] = unpublished
    frame["release"] = ""
    eqs = [(t, list(p)) for t, p in equations]
    if previous is not None:
        prev_cells, prev_eqs = previous
        prev = prev_cells.set_index("cell")
        here = frame["cell"].isin(prev.index).to_numpy()
        status = prev["status"].reindex(frame["cell"]).to_numpy(dtype=object)
        old = pd.to_numeric(prev["published"], errors="coerce").reindex(frame["cell"]).to_numpy(dtype=float)
        revised = here & (status == "published") & (old != frame["value"].to_numpy())
        if revised.any():
            rows = frame.loc[revised, ["cell", "value"]].assign(previous=old[revised],
                                                                 release=prev["release"].reindex(frame.loc[revised, "cell"]).to_numpy()).head(10)
            lines = "\n".join(f"  {r.cell}: published as {r.previous:g} by release {r.release}, now {r.value}"
                              for r in rows.itertuples())
            raise DisclosureError(
                f"{int(revised.sum())} cell(s) published in an earlier release have new values (revised records):\n"
                f"{lines}\nPublishing both values would disclose the difference. Report the revision separately, or "
                "build this release without --previous/--ledger and publish a revision note.")
        pub = here & (status == "published")
        sup = here & (status == "suppressed")
        frame.loc[pub | sup, "locked"] = True
        frame.loc[sup, "previously_suppressed"] = True
        frame.loc[pub | sup, "is_part"] = False      # a count an earlier release showed or hid is a cell
        frame.loc[pub | sup, "release"] = prev["release"].reindex(frame.loc[pub | sup, "cell"]).to_numpy()
        extra = prev_cells[~prev_cells["cell"].isin(frame["cell"])]
        if len(extra):
            st = extra["status"].to_numpy(dtype=object)
            frame = pd.concat([frame, pd.DataFrame({
                "cell": extra["cell"].to_numpy(), "value": extra["value"].astype(int).to_numpy(),
                "tables": [["previous"]] * len(extra), "locked": st != "unpublished",
                "previously_suppressed": st == "suppressed", "is_part": st == "unpublished",
                "release": np.where(st != "unpublished", extra["release"].to_numpy(dtype=object), "")})],
                ignore_index=True)
        eqs += [(t, list(p)) for t, p in prev_eqs]
    seen, unique = set(), []
    for t, p in eqs:
        if list(p) == [t] or (t, tuple(p)) in seen:
            continue
        seen.add((t, tuple(p)))
        unique.append((t, p))
    return frame, unique


def explain_failure(audit: pd.DataFrame, equations, limit: int = 10, releases=None) -> str:
    bad = audit[~audit["status"].isin(("protected", "derivable"))]
    releases = releases or {}
    lines = []
    for row in bad.head(limit).itertuples(index=False):
        pins = [t for t, parts in equations if row.cell == t or row.cell in parts][:3]
        earlier = sorted({releases[c] for t, parts in equations if row.cell == t or row.cell in parts
                          for c in (t, *parts) if releases.get(c)} | ({releases[row.cell]} if releases.get(row.cell) else set()))
        lines.append(f"  {row.cell}: {row.status}, an attacker finds it in [{row.lower:g}, {row.upper:g}]"
                     + (f"; pinned through the totals {pins}" if pins else "")
                     + (f"; fixed by earlier release(s) {', '.join(earlier)}" if earlier else ""))
    more = len(bad) - limit
    return "\n".join(lines) + (f"\n  ... and {more} more" if more > 0 else "")


def check_passed(protection: Protection, equations, describe=None) -> None:
    """Raise DisclosureError naming the failing cells (and the earlier releases that pin them)."""
    if protection.certificate.get("result") != "pass":
        rel = getattr(protection, "releases", {}) or {}
        if describe is not None:
            rel = {c: describe(r) for c, r in rel.items() if r}
        eqs = getattr(protection, "joint_equations", None) or equations
        tail = ("\nNo suppression pattern keeps every earlier release's published values and suppressions while "
                "protecting this one." if rel else "")
        raise DisclosureError(
            "the report bundle fails the disclosure audit, so nothing was written. Cells an attacker "
            "could recover or narrow down (keys: measure|LAs|period|breakdown):\n"
            + explain_failure(protection.audit, eqs, releases=rel) + tail
            + "\nAggregate categories or years (or raise the footprint size) and run again.",
            audit=protection.audit)
