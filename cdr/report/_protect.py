"""Disclosure control of a whole report bundle with :mod:`cdr.disclosure`.

Every count cell of the bundle and every equation linking them (``cdr.report._bundle``) go to
:func:`cdr.disclosure.secondary_suppression` as one :class:`cdr.disclosure.Bundle` (primary and
secondary suppression, optimal integer program when small enough, heuristic otherwise), and the
result is attacked by :func:`cdr.disclosure.audit`. If the search stops short of a passing pattern,
:func:`_repair` finishes it; a bundle that still fails is refused (:func:`check_passed`).
"""
from __future__ import annotations

from collections import defaultdict
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
        return {c: (None if s else int(v)) for c, v, s in
                zip(self.cells["cell"], self.cells["value"], self.cells["primary"] | self.cells["secondary"])}


def protect(cells: pd.DataFrame, equations, *, threshold: int = 5, time_limit: float = 10.0,
            previous=None) -> Protection:
    """Suppress and audit ``cells`` (columns ``cell``, ``value``) linked by ``equations``.

    ``time_limit``: seconds for :func:`cdr.disclosure.secondary_suppression`'s search (the optimal
    integer program falls back to its heuristic when the limit is reached; the final audit always runs).
    ``previous``: ``(cells, equations)`` of an earlier release (``cell``, ``published`` with NaN where
    suppressed), whose decisions are kept (see :func:`_with_previous`).
    """
    from cdr import disclosure

    return _with_disclosure(disclosure, cells, equations, threshold, time_limit, previous)


def _with_previous(cells, equations, previous):
    """Cells and equations of this release plus what an earlier release made public.

    A cell published before is locked published, one suppressed before stays suppressed; cells
    only in the earlier release enter when published (with the equations among known cells).
    A cell whose published value has changed (a revision) is an error: publishing both values
    would disclose the difference.
    """
    frame = pd.DataFrame({"cell": cells["cell"].to_numpy(), "value": cells["value"].astype(int).to_numpy()})
    frame["tables"] = [["report"]] * len(frame)
    frame["locked"] = False
    frame["previously_suppressed"] = False
    if previous is None:
        return frame, [(t, list(p)) for t, p in equations]
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
    frame.loc[here, "locked"] = True
    frame.loc[here & np.isnan(old), "previously_suppressed"] = True
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


def _with_disclosure(mod, cells, equations, threshold, time_limit, previous=None):
    n_current = len(cells)
    frame, equations = _with_previous(cells, equations, previous)
    bundle = mod.Bundle(cells=frame, equations=equations, tables={}, spec={"source": "cdr.report"})
    result = mod.secondary_suppression(bundle, threshold=threshold, time_limit=time_limit)
    res = result.cells.set_index("cell").reindex(frame["cell"])
    values = frame["value"].to_numpy()
    primary = (res["suppression"] == "primary").to_numpy()
    suppressed = res["suppressed"].astype(bool).to_numpy()
    audit = result.audit
    repairs = 0
    if not result.passed:
        suppressed, audit, repairs = _repair(mod, frame["cell"].to_numpy(), values, primary, suppressed, equations,
                                             threshold, locked=frame["locked"].to_numpy())
    out = pd.DataFrame({
        "cell": frame["cell"].to_numpy(), "value": values,
        "published": np.where(suppressed, np.nan, values.astype(float)),
        "primary": primary, "secondary": suppressed & ~primary,
        "previous_release": frame["locked"].to_numpy(),
    }).iloc[:n_current].reset_index(drop=True)
    cert = dict(mod.certificate(audit))
    cert["result"] = "pass" if cert.get("passed") else "fail"
    cert["suppression_method"] = result.method
    cert["information_loss"] = result.information_loss
    cert["repair_rounds"] = repairs
    cert["search"] = {k: v for k, v in result.spec.items() if k in ("method", "max_optimal", "time_limit", "fallback")}
    return Protection(out, audit, cert, f"cdr.disclosure ({result.method})")


def _repair(mod, ids, values, primary, suppressed, equations, threshold, max_rounds=50, locked=None):
    """Finish a suppression pattern that fails the audit (a heuristic that stopped short).

    Each round: a secondary cell the attacker recovers exactly is published (its value is known
    anyway, so hiding it protects nothing); for every other failing cell, and every small derivable
    group sum, the smallest positive published cell of an equation holding it is suppressed.
    Then the whole bundle is audited again.
    """
    locked = np.zeros(len(ids), dtype=bool) if locked is None else np.asarray(locked, dtype=bool)
    index = {c: i for i, c in enumerate(ids)}
    eqs_of = defaultdict(list)
    for t, parts in equations:
        for c in (t, *parts):
            eqs_of[index[c]].append([index[t], *[index[p] for p in parts]])
    suppressed = suppressed.copy()
    audit = None
    for rounds in range(1, max_rounds + 1):
        cells = pd.DataFrame({"cell": ids, "value": np.where(suppressed, np.nan, values.astype(float)),
                              "primary": primary})
        audit = mod.audit(cells, equations, threshold=threshold)
        if audit.attrs.get("passed"):
            return suppressed, audit, rounds - 1
        failing = audit[audit["status"] != "protected"]
        targets = []
        changed = False
        for row in failing.itertuples():
            i = index[row.cell]
            if row.status == "exact" and not primary[i] and not locked[i]:
                suppressed[i] = False
                changed = True
            else:
                targets.append(i)
        groups = audit.attrs.get("group_sums")
        if groups is not None and len(groups):
            for members in groups["cells"]:
                targets.extend(index[c] for c in members)
        if changed:
            continue
        for i in dict.fromkeys(targets):
            cands = sorted({j for eq in eqs_of[i] for j in eq if not suppressed[j] and not locked[j] and values[j] > 0},
                           key=lambda j: (values[j], ids[j]))
            if cands:
                suppressed[cands[0]] = True
                changed = True
        if not changed:
            break
    return suppressed, audit, max_rounds


def explain_failure(audit: pd.DataFrame, equations, limit: int = 10) -> str:
    bad = audit[audit["status"] != "protected"]
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
