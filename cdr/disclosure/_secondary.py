"""Secondary suppression: choose further cells so that the audit passes, losing little information.

Two methods share one audit (:func:`cdr.disclosure.audit`):

- ``"optimal"``: an integer program (scipy ``milp``/HiGHS) over suppress/publish decisions with
  constraint generation. The master problem minimises the suppressed cost subject to necessary
  conditions (every suppressed cell needs another suppressed cell in each of its equations; a small
  cell needs enough *capacity* in each equation to move between 1 and the threshold). Each master
  solution is audited; every failing cell adds a cut "suppress at least one more cell among the
  cells of the equations touching its component" (valid because widening a pattern only widens
  intervals). The first pattern that passes is optimal for the cost.
- ``"heuristic"``: deterministic greedy repair. Audit; for each failing cell, suppress the cheapest
  eligible cell of its tightest equation; repeat (re-solving only components that changed); then
  drop secondary suppressions that the audit shows are not needed, largest first.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from cdr.disclosure._audit import _components, _reduce, _solve_component, _classify, audit, certificate, explain
from cdr.disclosure._bundle import Bundle
from cdr.disclosure._primary import DEFAULT_THRESHOLD, _threshold, primary_suppression, rate_rules
from cdr.errors import DisclosureError

__all__ = ["secondary_suppression", "protect", "SuppressionResult", "compare_aggregations"]


class _Attacker:
    """Audit of a suppression pattern, re-solving only components that changed."""

    def __init__(self, cells, equations, threshold):
        self.cells = cells
        self.equations = equations
        self.threshold = threshold
        self.cache = {}
        self.primary = dict(zip(cells["cell"], cells["small"]))

    def failing(self, suppressed):
        frame = pd.DataFrame({"cell": self.cells["cell"], "primary": self.cells["small"],
                              "value": np.where(self.cells["cell"].isin(suppressed), np.nan,
                                                self.cells["value"].astype(float))})
        sup, rows = _reduce(frame, self.equations, None)
        out = []
        for names, idx in _components(sup, rows):
            key = tuple(names)
            if key not in self.cache:
                task = (names, [rows[i] for i in idx], [self.primary[c] for c in names], self.threshold)
                _, lower, upper, _ = _solve_component(task)
                self.cache[key] = [(c, lo, up) for c, lo, up in zip(names, lower, upper)]
            for c, lo, up in self.cache[key]:
                status = _classify(lo, up, self.primary[c], self.threshold)
                if status != "protected":
                    out.append((c, status, names))
        return out


def _prepare(bundle, threshold):
    cells = bundle.cells.copy()
    cells["small"] = primary_suppression(cells["value"], threshold=threshold)
    cells["primary"] = cells["small"] & ~cells["locked"]
    must = cells["primary"] | (cells["locked"] & cells["previously_suppressed"])
    cells["must"] = must
    cells["eligible"] = ~cells["locked"] & (cells["value"] > 0)
    return cells


def _structural(suppressed, equations, eligible, value, small, cost, threshold):
    """Greedy pass enforcing, equation by equation, the necessary conditions without any LP."""
    changed = True
    while changed:
        changed = False
        for t, parts in equations:
            members = [t, *parts]
            sup = [m for m in members if m in suppressed]
            if not sup:
                continue
            for p in sup:
                others = [m for m in sup if m != p]
                if small[p]:
                    same = [m for m in others if m != t and p != t]
                    opposite = [m for m in others if not (m != t and p != t)]
                    up = threshold if opposite else sum(value[m] - 1 for m in same)
                    down = threshold if same else sum(value[m] - 1 for m in opposite)
                    ok = up >= threshold - value[p] and down >= value[p] - 1
                else:
                    ok = bool(others)
                if ok:
                    continue
                cands = [m for m in members if m not in suppressed and m in eligible]
                if not cands:
                    continue
                need = threshold - value[p] + 1 if small[p] else 1
                pick = min(cands, key=lambda m: (m == t, value[m] < need, cost[m], m))
                suppressed.add(pick)
                changed = True
    return suppressed


def _heuristic(cells, equations, attacker, cost, deadline):
    suppressed = set(cells.loc[cells["must"], "cell"])
    eligible = set(cells.loc[cells["eligible"], "cell"])
    value = dict(zip(cells["cell"], cells["value"]))
    eqs_of = {}
    for k, (t, parts) in enumerate(equations):
        for c in [t, *parts]:
            eqs_of.setdefault(c, []).append(k)
    threshold = attacker.threshold
    suppressed = _structural(suppressed, equations, eligible, value, attacker.primary, cost, threshold)
    for _ in range(10_000):
        failing = attacker.failing(suppressed)
        if not failing or time.monotonic() > deadline:
            break
        added = set()
        for c, status, _names in sorted(failing):
            best = None
            for k in eqs_of.get(c, []):
                t, parts = equations[k]
                members = [t, *parts]
                others = [m for m in members if m != c and m in suppressed]
                cands = [m for m in members if m not in suppressed and m in eligible]
                if not cands:
                    continue
                need = threshold - value[c] + 1 if attacker.primary[c] else 1
                cand = min(cands, key=lambda m: (m == t, value[m] < need, cost[m], m))
                score = (len(others), sum(value[m] for m in others), value[cand] < need, cost[cand], cand)
                if best is None or score < best[0]:
                    best = (score, cand)
            if best is not None:
                added.add(best[1])
                continue
            # no free cell in its own equations: widen through the equations touching its component
            names = set(_names)
            touching = {m for t, parts in equations for m in [t, *parts]
                        if any(x in names for x in [t, *parts])}
            cands = sorted((m for m in touching if m not in suppressed and m in eligible),
                           key=lambda m: (cost[m], m))
            if cands:
                added.add(cands[0])
        if not added:
            break
        suppressed |= added
        suppressed = _structural(suppressed, equations, eligible, value, attacker.primary, cost, threshold)
    # drop unneeded secondary suppressions, most costly first
    secondary = sorted(suppressed - set(cells.loc[cells["must"], "cell"]), key=lambda m: (-cost[m], m))
    for m in secondary:
        if time.monotonic() > deadline:
            break
        trial = suppressed - {m}
        if not attacker.failing(trial):
            suppressed = trial
    return suppressed


def _optimal(cells, equations, attacker, cost, deadline, max_iter):
    ids = cells["cell"].tolist()
    pos = {c: i for i, c in enumerate(ids)}
    n = len(ids)
    value = cells["value"].to_numpy(float)
    lb = np.where(cells["must"], 1.0, 0.0)
    ub = np.where(cells["must"] | cells["eligible"], 1.0, 0.0)
    small = cells["small"].to_numpy()
    threshold = attacker.threshold
    rows, lo = [], []

    def add(coefs, bound):
        rows.append(coefs)
        lo.append(bound)

    for t, parts in equations:
        members = [t, *parts]
        for p in members:
            # any suppressed cell needs another suppressed cell in each of its equations
            add({**{pos[m]: 1.0 for m in members if m != p}, pos[p]: -1.0}, 0.0)
            if small[pos[p]] and cells["must"].iat[pos[p]]:
                up, down = {}, {}
                for m in members:
                    if m == p:
                        continue
                    same = m != t and p != t
                    up[pos[m]] = (value[pos[m]] - 1) if same else threshold
                    down[pos[m]] = threshold if same else (value[pos[m]] - 1)
                add(up, threshold - value[pos[p]])
                add(down, value[pos[p]] - 1)
    c = np.array([cost[i] for i in ids], float)
    for _ in range(max_iter):
        if time.monotonic() > deadline:
            return None
        r, k, v = [], [], []
        for i, coefs in enumerate(rows):
            for j, a in coefs.items():
                r.append(i), k.append(j), v.append(a)
        a = sparse.csr_matrix((v, (r, k)), shape=(len(rows), n))
        res = milp(c, constraints=[LinearConstraint(a, np.array(lo), np.inf)], integrality=np.ones(n),
                   bounds=Bounds(lb, ub),
                   options={"time_limit": max(1.0, deadline - time.monotonic()), "disp": False})
        if res.status != 0 or res.x is None:
            return None
        suppressed = {ids[i] for i in np.flatnonzero(res.x > 0.5)}
        failing = attacker.failing(suppressed)
        if not failing:
            return suppressed
        for cell, _status, names in failing:
            touching = set()
            for t, parts in equations:
                members = [t, *parts]
                if any(m in names for m in members):
                    touching.update(members)
            free = [m for m in touching if m not in suppressed and ub[pos[m]] > 0]
            if not free and cells["must"].iat[pos[cell]]:
                return None   # no pattern can protect this cell (locked neighbours)
            add({**{pos[m]: 1.0 for m in free}, pos[cell]: -1.0}, 0.0)
    return None


@dataclass(frozen=True, repr=False)
class SuppressionResult:
    """A protected bundle: what to publish, why each cell is hidden, and the audit certificate.

    Attributes
    ----------
    cells : pandas.DataFrame
        ``cell``, ``value`` (true), ``published`` (NaN where suppressed), ``suppressed`` (bool),
        ``suppression`` (``"primary"``, ``"secondary"``, ``"previous_release"`` or ``""``), ``locked``.
    audit : pandas.DataFrame
        :func:`cdr.disclosure.audit` of the published bundle (``.attrs["passed"]``).
    bundle : Bundle
    method : str
        ``"optimal"`` or ``"heuristic"`` (the one actually used), with ``spec["fallback"]`` saying why
        an optimal run fell back.
    information_loss : dict
        ``n_cells``, ``n_suppressed``, ``n_primary``, ``n_secondary``, ``value_secondary`` (sum of
        secondarily suppressed counts), ``share_cells_suppressed``.
    spec : dict
        Arguments, timings (s) and the cdr version.
    """

    cells: pd.DataFrame
    audit: pd.DataFrame
    bundle: Bundle
    method: str
    information_loss: dict
    spec: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.audit.attrs.get("passed", False))

    def to_frame(self) -> pd.DataFrame:
        return self.cells.copy()

    def tables(self) -> dict:
        """Each input table with ``published``, ``suppressed`` and ``suppression`` columns added."""
        info = self.cells.set_index("cell")[["published", "suppressed", "suppression"]]
        return {name: frame.join(info, on="cell") for name, frame in self.bundle.tables.items()}

    def rates(self) -> pd.DataFrame:
        """Declared rates with ``publish``, ``flag`` (``"u"``), ``reason`` and ``published_rate``."""
        rates = self.bundle.rates
        if len(rates) == 0:
            return rates.assign(publish=[], flag=[], reason=[], published_rate=[])
        info = self.cells.set_index("cell")
        counts = info.loc[rates["count_cell"], "value"].to_numpy()
        sup = info.loc[rates["count_cell"], "suppressed"].to_numpy()
        parts = []
        for kind, idx in rates.groupby("kind").groups.items():
            loc = rates.index.get_indexer(idx)
            rules = rate_rules(counts[loc], kind=kind, suppressed=sup[loc])
            rules.index = idx
            parts.append(rules)
        out = rates.join(pd.concat(parts))
        rounded = [round(r, int(d)) for r, d in zip(out["rate"], out["decimals"])]
        out["published_rate"] = np.where(out["publish"], rounded, np.nan)
        return out

    def audit_rates(self) -> pd.DataFrame:
        """The published rates in the form :func:`audit` takes."""
        r = self.rates()
        return pd.DataFrame({"count_cell": r["count_cell"], "population": r["population"],
                             "rate": r["published_rate"], "multiplier": r["multiplier"],
                             "decimals": r["decimals"]})

    def certificate(self) -> dict:
        """JSON-serialisable audit certificate for the release manifest."""
        return {**certificate(self.audit), "method": self.method, "information_loss": self.information_loss,
                "timings_s": self.spec.get("timings_s", {})}

    def explain(self, cell) -> pd.DataFrame:
        """Which published cells/equations pin a suppressed cell (see :func:`cdr.disclosure.explain`)."""
        cells = pd.DataFrame({"cell": self.cells["cell"], "value": self.cells["published"],
                              "primary": self.cells["suppression"] == "primary"})
        return explain(cells, self.bundle.equations, cell, rates=self.audit_rates())

    def summary(self):
        from cdr._base import Summary

        loss = self.information_loss
        lines = [
            f"method: {self.method}; threshold: counts 1..{self.spec.get('threshold', 5) - 1} suppressed",
            f"cells: {loss['n_cells']}; suppressed {loss['n_suppressed']} ({loss['n_primary']} primary, "
            f"{loss['n_secondary']} secondary, {loss['value_secondary']} deaths hidden by secondary suppression)",
            f"audit: {'PASSED' if self.passed else 'FAILED'}",
        ]
        counts = self.audit["status"].value_counts().rename_axis("status").reset_index(name="cells")
        return Summary("Disclosure control", lines, {"audit status": counts})

    def __repr__(self):
        loss = self.information_loss
        return (f"SuppressionResult(method={self.method!r}, cells={loss['n_cells']}, "
                f"suppressed={loss['n_suppressed']}, secondary={loss['n_secondary']}, passed={self.passed})")


def secondary_suppression(bundle, *, threshold=DEFAULT_THRESHOLD, method="auto", cost="value",
                          max_optimal=300, time_limit=30.0, executor=None):
    """Primary and secondary suppression of a bundle so that the independent audit passes.

    Parameters
    ----------
    bundle : Bundle
        All tables of the release with their equations (:meth:`Bundle.from_tables`).
    threshold : int, default 5
        Counts 1 .. ``threshold - 1`` are suppressed (primary).
    method : {"auto", "optimal", "heuristic"}, default "auto"
        ``"auto"`` uses the integer program when at most `max_optimal` cells could be chosen,
        otherwise the heuristic. An optimal run that hits `time_limit` falls back to the heuristic
        (said in ``result.spec["fallback"]``).
    cost : {"value", "cells"} or dict, default "value"
        Information loss to minimise: the suppressed total count (cells with larger counts cost
        more, so margins are kept), the number of cells, or a ``{cell: cost}`` mapping.
    max_optimal : int, default 300
    time_limit : float, default 30.0
        Seconds for the search (the final audit always runs).
    executor : concurrent.futures.Executor, optional
        Used by the final audit.

    Returns
    -------
    SuppressionResult

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"sex": ["male", "female", "unknown", "all"], "deaths": [3, 9, 14, 26]})
    >>> r = secondary_suppression(Bundle.from_tables({"by_sex": t}, dims=["sex"]))
    >>> r.cells[["cell", "suppression"]].to_dict("records")
    [{'cell': 'sex=male', 'suppression': 'primary'}, {'cell': 'sex=female', 'suppression': 'secondary'}, {'cell': 'sex=unknown', 'suppression': ''}, {'cell': 'total', 'suppression': ''}]
    >>> r.passed
    True
    """
    threshold = _threshold(threshold, "secondary_suppression")
    if method not in ("auto", "optimal", "heuristic"):
        raise ValueError(f"secondary_suppression: 'method' must be 'auto', 'optimal' or 'heuristic'; got {method!r}")
    start = time.monotonic()
    deadline = start + float(time_limit)
    cells = _prepare(bundle, threshold)
    if isinstance(cost, dict):
        costs = {c: float(cost.get(c, v)) for c, v in zip(cells["cell"], cells["value"])}
    elif cost == "value":
        costs = {c: float(v) + 1e-3 for c, v in zip(cells["cell"], cells["value"])}
    elif cost == "cells":
        costs = {c: 1.0 for c in cells["cell"]}
    else:
        raise ValueError(f"secondary_suppression: 'cost' must be 'value', 'cells' or a dict; got {cost!r}")
    attacker = _Attacker(cells, bundle.equations, threshold)
    n_free = int((cells["eligible"] & ~cells["must"]).sum())
    use = method if method != "auto" else ("optimal" if n_free <= max_optimal else "heuristic")
    spec = {"threshold": threshold, "method": method, "cost": cost if not isinstance(cost, dict) else "custom",
            "max_optimal": max_optimal, "time_limit": time_limit}
    suppressed = None
    if use == "optimal":
        suppressed = _optimal(cells, bundle.equations, attacker, costs, deadline, max_iter=200)
        if suppressed is None:
            spec["fallback"] = "integer program did not finish within time_limit/iterations; heuristic used"
            use = "heuristic"
    t_search = time.monotonic()
    if suppressed is None:
        suppressed = _heuristic(cells, bundle.equations, attacker, costs, max(deadline, time.monotonic() + 10.0))
    t_search = time.monotonic() - start
    cells["suppressed"] = cells["cell"].isin(suppressed)
    cells["published"] = np.where(cells["suppressed"], np.nan, cells["value"].astype(float))
    cells["suppression"] = np.select(
        [cells["suppressed"] & cells["locked"], cells["suppressed"] & cells["primary"], cells["suppressed"]],
        ["previous_release", "primary", "secondary"], "")
    t0 = time.monotonic()
    result_cells = cells[["cell", "value", "published", "suppressed", "suppression", "locked", "tables"]]
    tmp = SuppressionResult(result_cells, pd.DataFrame(), bundle, use, {}, spec)
    audit_rates = tmp.audit_rates() if len(bundle.rates) else None
    aud = audit(pd.DataFrame({"cell": cells["cell"], "value": cells["published"], "primary": cells["small"]}),
                bundle.equations, threshold=threshold, rates=audit_rates, executor=executor)
    secondary = cells["suppression"] == "secondary"
    loss = {
        "n_cells": int(len(cells)), "n_suppressed": int(cells["suppressed"].sum()),
        "n_primary": int((cells["suppression"] == "primary").sum()), "n_secondary": int(secondary.sum()),
        "value_secondary": int(cells.loc[secondary, "value"].sum()),
        "share_cells_suppressed": float(cells["suppressed"].mean()) if len(cells) else 0.0,
    }
    from cdr._base import version_stamp

    spec["timings_s"] = {"search": round(t_search, 3), "audit": round(time.monotonic() - t0, 3)}
    spec.update(version_stamp())
    return SuppressionResult(result_cells, aud, bundle, use, loss, spec)


def protect(bundle, *, threshold=DEFAULT_THRESHOLD, method="auto", strict=True, **kwargs):
    """Suppress a bundle and refuse (raise) if the independent audit fails.

    The one call ``cdr report`` makes: tables in (as a :class:`Bundle`), protected tables and an
    audit certificate out (``result.tables()``, ``result.rates()``, ``result.certificate()``).

    Parameters
    ----------
    bundle : Bundle
    threshold, method
        As for :func:`secondary_suppression`; other keyword arguments are passed on.
    strict : bool, default True
        Raise :class:`cdr.errors.DisclosureError` (with the audit and an explanation of the
        failing cells) when the audit fails, e.g. because a previous release locks cells.

    Returns
    -------
    SuppressionResult

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"sex": ["male", "female", "all"], "deaths": [3, 9, 12]})
    >>> protect(Bundle.from_tables({"by_sex": t}, dims=["sex"])).certificate()["passed"]
    True
    """
    result = secondary_suppression(bundle, threshold=threshold, method=method, **kwargs)
    if strict and not result.passed:
        failing = result.audit[result.audit["status"] != "protected"]
        lines = []
        for r in failing.head(10).itertuples():
            why = result.explain(r.cell)
            pins = "; ".join(f"{e.source} {e.index} (published {e.published})" for e in why.itertuples())
            lines.append(f"  {r.cell}: [{r.lower:g}, {r.upper:g}] {r.status} - pinned by {pins or 'bounds'}")
        raise DisclosureError(
            f"protect: the bundle fails the disclosure audit: {len(failing)} suppressed cells can be "
            "recovered or shown to be small.\n" + "\n".join(lines) +
            "\nCells locked by a previous release cannot be re-suppressed; merge categories or years "
            "(Bundle.merge) or drop a table.", audit=result.audit)
    return result


def compare_aggregations(bundle, options, *, threshold=DEFAULT_THRESHOLD, method="auto", **kwargs):
    """Information loss of suppression versus merging levels (categories, years).

    Parameters
    ----------
    bundle : Bundle
    options : dict of str -> (str, dict)
        ``{name: (dim, {old_level: new_level})}``; ``"as is"`` (no merge) is always included.

    Returns
    -------
    pandas.DataFrame
        One row per option: ``option``, ``n_cells``, ``n_suppressed``, ``n_primary``,
        ``n_secondary``, ``value_secondary``, ``share_cells_suppressed``, ``passed``, ``method``.
    """
    rows = []
    for name, b in [("as is", bundle)] + [(k, bundle.merge(d, m)) for k, (d, m) in options.items()]:
        r = secondary_suppression(b, threshold=threshold, method=method, **kwargs)
        rows.append({"option": name, **r.information_loss, "passed": r.passed, "method": r.method})
    return pd.DataFrame(rows)
