"""The independent attacker: tightest intervals for suppressed cells of a published bundle.

The attacker knows every published number, every additivity equation (total = sum of parts) and
every published rate, and that counts are non-negative integers with every suppressed cell at
least 1 (zeros are published). Cells of kind ``"unpublished"`` (parts of published totals that no
table shows, e.g. the LAs of a region outside the partnership) are unknowns that may be 0; only
those flagged ``primary`` (a true count from 1 to threshold - 1) must be protected. For each suppressed cell it solves min and max linear programs
(HiGHS: one warm-started model per component, see ``_lp.py``), switching to an integer program
only where the LP optimum is fractional, so every reported bound is the tightest integer bound.
The system is first reduced to the suppressed cells (published values substituted) and split
into connected components, which are solved independently (optionally on an executor).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import linprog

from cdr.disclosure._lp import Model
from cdr.disclosure._primary import _threshold
from cdr.errors import ArgumentError, ArgumentTypeError

__all__ = ["audit", "explain", "certificate"]

_TOL = 1e-7
_STATUS = ("exact", "narrow", "protected", "derivable")
_PASSING = ("protected", "derivable")
KINDS = ("cell", "unpublished")   # a table cell (suppressed: >= 1) or an unpublished part (>= 0)
_SPLIT = 400   # components with at least this many cells are split between executor workers


@dataclass
class _Row:
    """One linear constraint on suppressed cells: lo <= sum(coef * x) <= hi."""

    coef: dict
    lo: float
    hi: float
    source: str      # "equation" or "rate"
    index: int       # position in the caller's equations / rates


def _check_cells(cells, caller):
    if isinstance(cells, pd.DataFrame):
        frame = cells
    else:
        try:
            frame = pd.DataFrame(cells)
        except (TypeError, ValueError):
            raise ArgumentTypeError(f"{caller}: 'cells' must be a DataFrame (or a dict of columns) with columns "
                                    f"'cell', 'value' and 'primary'; got {type(cells).__name__}.") from None
    missing = [c for c in ("cell", "value") if c not in frame.columns]
    if missing:
        raise ArgumentError(
            f"{caller}: 'cells' needs columns 'cell', 'value' and 'primary'; missing {missing}. "
            "Pass one row per published cell with value NaN where suppressed."
        )
    frame = frame.copy()
    if "primary" not in frame.columns:
        frame["primary"] = False
    frame["cell"] = frame["cell"].astype(str)
    dup = frame["cell"][frame["cell"].duplicated()]
    if len(dup):
        raise ArgumentError(f"{caller}: cell ids must be unique; repeated: {sorted(set(dup))[:5]}")
    values = pd.to_numeric(frame["value"], errors="coerce").to_numpy(dtype=float)
    bad = np.isfinite(values) & ((values < 0) | (np.abs(values - np.round(values)) > 1e-9))
    if bad.any():
        rows = frame.loc[bad, ["cell", "value"]].head(5).to_dict("records")
        raise ArgumentError(f"{caller}: published counts must be non-negative integers; got {rows}")
    frame["value"] = values
    frame["primary"] = frame["primary"].fillna(False).astype(bool)
    if "kind" not in frame.columns:
        frame["kind"] = "cell"
    frame["kind"] = frame["kind"].fillna("cell").astype(str)
    bad = ~frame["kind"].isin(KINDS)
    if bad.any():
        rows = frame.loc[bad, ["cell", "kind"]].head(5).to_dict("records")
        raise ArgumentError(f"{caller}: 'kind' must be 'cell' (a table cell; suppressed ones are >= 1) or "
                         f"'unpublished' (a part of a published total that is never shown; >= 0); got {rows}")
    return frame


def _floor(cells):
    """The attacker's lower bound of each cell: 1 for a (suppressed) table cell, 0 for an unpublished part."""
    return dict(zip(cells["cell"], np.where(cells["kind"].to_numpy() == "unpublished", 0.0, 1.0)))


def _required(primary, floor):
    """Cells the audit must protect: every table cell, and unpublished parts flagged primary (small)."""
    return np.asarray(primary, bool) | (np.asarray(floor, float) >= 1)


def _check_rates(rates, caller):
    if rates is None:
        return None
    frame = rates if isinstance(rates, pd.DataFrame) else pd.DataFrame(list(rates))
    if len(frame) == 0:
        return None
    need = ["count_cell", "rate", "multiplier", "decimals"]
    missing = [c for c in need if c not in frame.columns]
    if "population" not in frame.columns and "population_cell" not in frame.columns:
        missing.append("population (or population_cell)")
    if missing:
        raise ArgumentError(f"{caller}: 'rates' is missing columns {missing}; each rate needs count_cell, "
                         "population (number) or population_cell (a cell id), rate, multiplier, decimals")
    frame = frame.copy()
    if "population" not in frame.columns:
        frame["population"] = np.nan
    if "population_cell" not in frame.columns:
        frame["population_cell"] = None
    frame["count_cell"] = frame["count_cell"].astype(str)
    return frame


def _reduce(cells, equations, rates):
    """Substitute published values; return suppressed ids and constraint rows on them."""
    known = dict(zip(cells["cell"], cells["value"]))
    suppressed = [c for c, v in known.items() if not np.isfinite(v)]
    rows = []
    for k, (total, parts) in enumerate(equations):
        total = str(total)
        coef, const = {}, 0.0
        for cell, sign in [(total, -1.0)] + [(str(p), 1.0) for p in parts]:
            if cell not in known:
                raise ArgumentError(f"audit: equation {k} refers to cell {cell!r}, which is not in 'cells'; "
                                 "every cell of every equation must be listed (published or NaN).")
            v = known[cell]
            if np.isfinite(v):
                const -= sign * v
            else:
                coef[cell] = coef.get(cell, 0.0) + sign
        coef = {c: a for c, a in coef.items() if a != 0.0}
        if coef:
            rows.append(_Row(coef, const, const, "equation", k))
    if rates is not None:
        for k, r in enumerate(rates.itertuples(index=False)):
            rate = float(r.rate) if r.rate is not None else np.nan
            if not np.isfinite(rate):
                continue
            if r.count_cell not in known:
                raise ArgumentError(f"audit: rate {k} refers to count_cell {r.count_cell!r}, not in 'cells'")
            half = 0.5 * 10.0 ** (-int(r.decimals))
            lo_r, hi_r = (rate - half) / r.multiplier, (rate + half) / r.multiplier
            pop_cell = r.population_cell if isinstance(r.population_cell, str) else None
            count = known[r.count_cell]
            if pop_cell is None:
                pop = float(r.population)
                if np.isfinite(count) or not pop > 0:
                    continue
                rows.append(_Row({r.count_cell: 1.0}, lo_r * pop - 1e-9, hi_r * pop + 1e-9, "rate", k))
            else:  # percentage of a (possibly suppressed) denominator: linear in (count, denominator)
                pop = known.get(pop_cell, np.nan)
                if np.isfinite(count) and np.isfinite(pop):
                    continue
                for bound, is_upper in ((hi_r, True), (lo_r, False)):
                    coef, const = {}, 0.0   # count - bound * pop  (<= 0 for upper, >= 0 for lower)
                    for cell, a in ((r.count_cell, 1.0), (pop_cell, -bound)):
                        v = known[cell]
                        if np.isfinite(v):
                            const -= a * v
                        else:
                            coef[cell] = coef.get(cell, 0.0) + a
                    if is_upper:
                        rows.append(_Row(coef, -np.inf, const + 1e-9, "rate", k))
                    else:
                        rows.append(_Row(coef, const - 1e-9, np.inf, "rate", k))
    return suppressed, rows


def _components(suppressed, rows):
    parent = {c: c for c in suppressed}

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for row in rows:
        cs = list(row.coef)
        for c in cs[1:]:
            ra, rb = find(cs[0]), find(c)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    groups = {}
    for c in suppressed:
        groups.setdefault(find(c), []).append(c)
    row_groups = {}
    for i, row in enumerate(rows):
        row_groups.setdefault(find(next(iter(row.coef))), []).append(i)
    return [(sorted(g), row_groups.get(root, [])) for root, g in sorted(groups.items())]


def _matrices(names, rows):
    pos = {c: i for i, c in enumerate(names)}
    eq_r, eq_c, eq_v, b_eq = [], [], [], []
    ub_r, ub_c, ub_v, b_ub = [], [], [], []
    for row in rows:
        if row.lo == row.hi:
            k = len(b_eq)
            for c, a in row.coef.items():
                eq_r.append(k), eq_c.append(pos[c]), eq_v.append(a)
            b_eq.append(row.lo)
            continue
        if np.isfinite(row.hi):
            k = len(b_ub)
            for c, a in row.coef.items():
                ub_r.append(k), ub_c.append(pos[c]), ub_v.append(a)
            b_ub.append(row.hi)
        if np.isfinite(row.lo):
            k = len(b_ub)
            for c, a in row.coef.items():
                ub_r.append(k), ub_c.append(pos[c]), ub_v.append(-a)
            b_ub.append(-row.lo)
    n = len(names)
    a_eq = sparse.csr_matrix((eq_v, (eq_r, eq_c)), shape=(len(b_eq), n)) if b_eq else None
    a_ub = sparse.csr_matrix((ub_v, (ub_r, ub_c)), shape=(len(b_ub), n)) if b_ub else None
    return a_eq, np.array(b_eq) if b_eq else None, a_ub, np.array(b_ub) if b_ub else None


def _ranged(names, rows):
    """Rows as one sparse matrix with lower and upper row bounds (HiGHS's ranged-row form)."""
    pos = {c: i for i, c in enumerate(names)}
    r, k, v = [], [], []
    for i, row in enumerate(rows):
        for c, a in row.coef.items():
            r.append(i), k.append(pos[c]), v.append(a)
    a = sparse.csr_matrix((v, (r, k)), shape=(len(rows), len(names)))
    return a, np.array([row.lo for row in rows], float), np.array([row.hi for row in rows], float)


def _integral(x):
    return x is not None and bool(np.all(np.abs(x - np.round(x)) < 1e-6))


def _integer_bound(names, rows, j, sense, floor=1.0):
    """Integer optimum of min sense * x_j over one component (HiGHS branch and bound)."""
    a, lo, hi = _ranged(names, rows)
    cost = np.zeros(len(names))
    cost[j] = sense
    status, x, obj = Model(a, lo, hi, floor, np.inf, cost, integer=True).solve()
    if status == "unbounded":
        return np.inf, None
    if status != "optimal":
        raise RuntimeError(f"audit: the integer program for cell {names[j]!r} did not solve ({status})")
    return float(round(sense * obj)), x


def _solve_component(task):
    """Tightest integer interval of the variables of one component. Pure function (picklable).

    ``task`` is ``(names, rows, primary, threshold[, which[, decide_only[, floor]]])``; ``which``
    (indices into ``names``) restricts the cells whose bounds are computed (the others come back
    NaN), so that one large component can be split between workers. With ``decide_only`` (used
    inside the suppression search) a fractional LP bound is not refined by an integer program when
    integral feasible points already prove the cell protected, and cells that need no protection
    (unpublished parts that are not small) get their outer propagation bounds only. ``floor``
    (default all 1) is the attacker's lower bound of each cell: 0 for an unpublished part.

    One HiGHS model per component: its objective is changed from cell to cell and each LP starts
    from the previous optimal basis. A bound is certified without an LP where an integral
    feasible point already attains the outer bound given by interval propagation. An LP optimum
    at an integral vertex is the integer optimum; a fractional one is replaced by the integer
    program's optimum, so every returned bound is the tightest integer bound.
    """
    names, rows, primary, threshold = task[:4]
    n = len(names)
    which = np.arange(n) if len(task) < 5 or task[4] is None else np.asarray(task[4], int)
    decide_only = len(task) > 5 and bool(task[5])
    floor = np.ones(n) if len(task) < 7 or task[6] is None else np.asarray(task[6], float)
    lower = np.full(n, np.nan)
    upper = np.full(n, np.nan)
    method = ["lp"] * n
    if not rows:
        lower[which], upper[which] = floor[which], np.inf
        return names, lower, upper, method
    a, row_lo, row_hi = _ranged(names, rows)
    model = Model(a, row_lo, row_hi, floor, np.inf, np.ones(n))
    status, x, _ = model.solve()
    if status == "infeasible":
        raise ArgumentError("audit: the published bundle is inconsistent (no non-negative integer table "
                         f"fits it) around cells {names[:5]}; check the additivity of the inputs.")
    if status != "optimal":
        raise RuntimeError(f"audit: HiGHS could not solve the component of {names[:3]} ({status})")
    out_lo, out_hi = _propagate(names, rows, floor=floor)
    if decide_only:   # the search only needs the cells that must be protected
        free = ~_required(primary, floor)
        skip = free[which]
        lower[which[skip]], upper[which[skip]] = out_lo[which[skip]], out_hi[which[skip]]
        which = which[~skip]
    seen_min = np.full(n, np.inf)     # extreme values seen in integral feasible points
    seen_max = np.full(n, -np.inf)
    cost = np.ones(n)

    def note(x):
        if _integral(x):
            xr = np.round(x)
            np.minimum(seen_min, xr, out=seen_min)
            np.maximum(seen_max, xr, out=seen_max)

    note(x)

    def objective(new):
        changed = np.flatnonzero(new != cost)
        if len(changed):
            model.set_cost(changed, new[changed])
            cost[:] = new

    def bound(j, sense):
        c = np.zeros(n)
        c[j] = sense
        objective(c)
        status, x, obj = model.solve()
        if status == "unbounded":
            return np.inf
        if status != "optimal":
            raise RuntimeError(f"audit: HiGHS failed on cell {names[j]!r} ({status})")
        if _integral(x):
            note(x)
            return float(round(sense * obj))
        if decide_only and seen_max[j] > seen_min[j] and (not primary[j] or seen_max[j] >= threshold):
            # integral points already prove the cell protected: the rounded LP bound (an outer
            # bound) is reported instead of the integer program's
            method[j] = "lp_bound"
            return float(math.ceil(sense * obj - _TOL) if sense > 0 else math.floor(sense * obj + _TOL))
        method[j] = "ilp"
        value, xi = _integer_bound(names, rows, j, sense, floor)
        if xi is not None:
            note(xi)
        return value

    for j in which:
        lower[j] = seen_min[j] if seen_min[j] <= out_lo[j] else bound(j, 1.0)
    # inner upper bounds from a few weighted max-sum solves, then one LP per remaining cell
    rng = np.random.default_rng(0)
    for _ in range(8):
        todo = which[(seen_max[which] < out_hi[which]) & np.isfinite(out_hi[which])]
        if len(todo) < 8:
            break
        c = np.zeros(n)
        c[todo] = -rng.uniform(1.0, 2.0, len(todo))
        objective(c)
        status, x, _ = model.solve()
        before = int((seen_max >= out_hi).sum())
        if status != "optimal" or not _integral(x):
            break
        note(x)
        if int((seen_max >= out_hi).sum()) - before < max(2, len(todo) // 50):
            break
    for j in which:
        upper[j] = seen_max[j] if seen_max[j] >= out_hi[j] else bound(j, -1.0)
    return names, lower, upper, method


def _propagate(names, rows, rounds=50, floor=None):
    """Outer integer bounds by interval constraint propagation (valid: every feasible point lies
    inside); starts from ``[floor, inf)`` (floor 1 unless given)."""
    pos = {c: i for i, c in enumerate(names)}
    ineq = []   # (indices, coefficients, hi): sum a x <= hi
    for row in rows:
        idx = np.array([pos[c] for c in row.coef])
        a = np.array(list(row.coef.values()), float)
        if np.isfinite(row.hi):
            ineq.append((idx, a, row.hi))
        if np.isfinite(row.lo):
            ineq.append((idx, -a, -row.lo))
    low = np.ones(len(names)) if floor is None else np.asarray(floor, float).copy()
    up = np.full(len(names), np.inf)
    for _ in range(rounds):
        changed = False
        for idx, a, hi in ineq:
            contrib = np.where(a > 0, a * low[idx], a * up[idx])   # minimum of each term
            finite = np.isfinite(contrib)
            n_inf = int((~finite).sum())
            if n_inf > 1:
                continue
            total = contrib[finite].sum()
            for k in range(len(idx)):
                if n_inf == 1 and finite[k]:
                    continue
                rest = total - (contrib[k] if finite[k] else 0.0)
                b = (hi - rest) / a[k]
                i = idx[k]
                if a[k] > 0:
                    b = np.floor(b + _TOL)
                    if b < up[i]:
                        up[i] = b
                        changed = True
                else:
                    b = np.ceil(b - _TOL)
                    if b > low[i]:
                        low[i] = b
                        changed = True
        if not changed:
            break
    return low, up


def _classify(lower, upper, primary, threshold, required=True, floor=1.0):
    """Status of one suppressed cell from the attacker's tightest integer interval.

    A primary (small) cell is unsafe when pinned exactly or proven to lie in 1 .. threshold-1; a
    secondary cell when pinned exactly. A table cell is >= 1 for the attacker (zeros are shown),
    so an upper bound below the threshold proves it small. An unpublished part may be 0 (floor 0):
    it is proven small only when its lower bound is also >= 1 (``[0, 4]`` says "at most 4", which
    any suppression mark says too).
    """
    if not required:
        # an unpublished part that is not small: no protection of its own; it may be derived
        return "derivable" if lower == upper else "protected"
    if lower == upper:
        return "exact"
    # An attacker learns a primary cell is small when its upper bound is below the threshold. A
    # lower bound above 1 is not required to reach 1: a margin of k suppressed parts is >= k by the
    # attacker model itself, which reveals nothing.
    if primary and upper < threshold and (floor >= 1 or lower >= 1):
        return "narrow"
    return "protected"


def _group_sums(rows, intervals, threshold):
    """Derivable sums of suppressed cells that are small (1 .. threshold-1)."""
    out = []
    sets = []
    for row in rows:
        if row.source == "equation" and row.lo == row.hi:
            pos = frozenset(c for c, a in row.coef.items() if a > 0)
            neg = frozenset(c for c, a in row.coef.items() if a < 0)
            if not neg and len(pos) >= 2:
                sets.append((pos, row.lo, f"equation {row.index}"))
    seen = set()
    for members, value, source in sets:
        if members in seen:
            continue
        seen.add(members)
        if 1 <= value < threshold:
            out.append({"cells": tuple(sorted(members)), "lower": value, "upper": value, "source": source})
    # differences of nested sets (e.g. one table's margin inside another's)
    for a, va, sa in sets:
        for b, vb, sb in sets:
            if a < b:
                diff = b - a
                value = vb - va
                if len(diff) >= 2 and diff not in seen and 1 <= value < threshold:
                    seen.add(diff)
                    out.append({"cells": tuple(sorted(diff)), "lower": value, "upper": value,
                                "source": f"{sb} minus {sa}"})
    return pd.DataFrame(out, columns=["cells", "lower", "upper", "source"])


def audit(cells, equations, *, threshold=5, rates=None, executor=None):
    """Attack a published bundle: the tightest interval an outsider can derive for each suppressed cell.

    Parameters
    ----------
    cells : pandas.DataFrame
        One row per cell of the whole bundle (all tables and years together): ``cell`` (id),
        ``value`` (the published count; NaN where suppressed), ``primary`` (True where the cell
        was suppressed as a small count) and, optionally, ``kind``: ``"cell"`` (default: a table
        cell; zeros are published, so a suppressed one is >= 1) or ``"unpublished"`` (a part of a
        published total that no table shows, e.g. the LAs of a region outside the partnership:
        value NaN, >= 0 for the attacker). An unpublished part needs protection only when flagged
        ``primary`` (its true count is 1 .. ``threshold - 1``: the attacker must not learn it is
        small); otherwise it may be derived.
    equations : iterable of (str, list of str)
        ``(total_cell, [part_cells])`` meaning total = sum of parts.
    threshold : int, default 5
        Counts 1 .. ``threshold - 1`` are small. The notion of "recoverable": a primary (small)
        cell is unsafe when pinned exactly (``exact``) or proven to lie in 1 .. threshold-1
        (``narrow``: its upper bound is below ``threshold`` and its lower bound is >= 1, which a
        table cell always is since zeros are shown; a small unpublished part may be 0, so ``[0,
        4]`` does not prove it small); a secondary cell is unsafe when pinned exactly. A lower
        bound may exceed 1 only as far as the ">= 1" model itself implies for margins of
        suppressed parts (see Notes).
    rates : pandas.DataFrame or list of dict, optional
        Published rates: ``count_cell``, ``population`` (person-years; or ``population_cell``, the
        id of a denominator cell for a percentage), ``rate`` (published, rounded; NaN if
        suppressed), ``multiplier`` (e.g. 100_000 or 100) and ``decimals``. Each bounds its count
        by the rounding interval ``|count * multiplier / population - rate| <= 0.5 * 10**-decimals``.
    executor : concurrent.futures.Executor, optional
        Solve independent components in parallel (e.g. a ``ProcessPoolExecutor(2)``).

    Returns
    -------
    pandas.DataFrame
        One row per suppressed cell: ``cell``, ``lower``, ``upper`` (the tightest integer bounds;
        ``upper`` is inf when unbounded), ``width`` (``upper - lower``), ``status`` (``"exact"``,
        ``"narrow"``, ``"protected"``, or ``"derivable"`` for an unpublished part that needs no
        protection and is recovered exactly), ``primary``, ``kind``, ``component`` (index of its
        connected component) and ``method`` (``"lp"`` when the LP optimum was integral, ``"ilp"``
        when an integer program was needed). The audit passes when every status is
        ``"protected"`` or ``"derivable"`` and no small group sum is derivable.
        ``.attrs`` holds ``passed`` (bool), ``threshold``, ``n_cells``, ``n_suppressed``,
        ``n_components`` and ``group_sums`` (a DataFrame of derivable small sums of suppressed
        cells: ``cells``, ``lower``, ``upper``, ``source``).

    Notes
    -----
    Deviation from the literal "interval reaches both 1 and the threshold": a margin made of k
    suppressed parts has lower bound >= k by the attacker model, so requiring 1 would fail every
    such margin without any disclosure; only the upper bound is required to reach the threshold.
    Unlike sdcTable's ``attack`` (exact recovery only) this also fails a primary cell that is
    recovered *approximately* as small. Cells that appear in no equation with a suppressed cell
    are bounded below by 1 only (0 for unpublished parts). Use :func:`explain` for a failing cell.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> cells = pd.DataFrame({"cell": ["a", "b", "c", "t"], "value": [np.nan, np.nan, 20, 26],
    ...                       "primary": [True, False, False, False]})
    >>> audit(cells, [("t", ["a", "b", "c"])])[["cell", "lower", "upper", "status"]]
      cell  lower  upper     status
    0    a    1.0    5.0  protected
    1    b    1.0    5.0  protected

    An unpublished part ``u`` (the rest of a published total) may be 0, so the attacker cannot
    conclude ``a <= 3`` as it could if ``u`` were a suppressed cell (>= 1):

    >>> cells = pd.DataFrame({"cell": ["a", "u", "t"], "value": [np.nan, np.nan, 4],
    ...                       "primary": [True, False, False], "kind": ["cell", "unpublished", "cell"]})
    >>> audit(cells, [("t", ["a", "u"])])[["cell", "lower", "upper", "status"]]
      cell  lower  upper     status
    0    a    1.0    4.0     narrow
    1    u    0.0    3.0  protected
    """
    threshold = _threshold(threshold, "audit")
    cells = _check_cells(cells, "audit")
    rates = _check_rates(rates, "audit")
    equations = [(t, list(p)) for t, p in equations]
    suppressed, rows = _reduce(cells, equations, rates)
    primary = dict(zip(cells["cell"], cells["primary"]))
    floor = _floor(cells)
    kind = dict(zip(cells["cell"], cells["kind"]))
    comps = _components(suppressed, rows)
    workers = max(1, int(getattr(executor, "_max_workers", 2))) if executor is not None else 1
    tasks, owner = [], []
    for k, (names, idx) in enumerate(comps):
        comp_rows = [rows[i] for i in idx]
        pieces = workers if len(names) >= _SPLIT and workers > 1 else 1
        for part in np.array_split(np.arange(len(names)), pieces):
            tasks.append((names, comp_rows, [primary[c] for c in names], threshold,
                          part if pieces > 1 else None, False, [floor[c] for c in names]))
            owner.append(k)
    mapper = executor.map if executor is not None else map
    merged = {}
    for k, (names, lower, upper, method) in zip(owner, mapper(_solve_component, tasks)):
        if k not in merged:
            merged[k] = (names, lower.copy(), upper.copy(), list(method))
        else:
            _, lo, up, me = merged[k]
            done = ~np.isnan(lower)
            lo[done], up[done] = lower[done], upper[done]
            for j in np.flatnonzero(done):
                me[j] = method[j]
    records = []
    for k in sorted(merged):
        names, lower, upper, method = merged[k]
        for j, c in enumerate(names):
            required = bool(primary[c] or floor[c] >= 1)
            records.append((c, lower[j], upper[j], _classify(lower[j], upper[j], primary[c], threshold, required,
                                                                      floor[c]),
                            primary[c], kind[c], k, method[j]))
    out = pd.DataFrame(records, columns=["cell", "lower", "upper", "status", "primary", "kind", "component",
                                         "method"])
    out.insert(3, "width", out["upper"] - out["lower"])
    order = {c: i for i, c in enumerate(cells["cell"])}
    out = out.sort_values("cell", key=lambda s: s.map(order)).reset_index(drop=True)
    out["lower"] = out["lower"].astype(float)
    out["upper"] = out["upper"].astype(float)
    out["width"] = out["upper"] - out["lower"]
    groups = _group_sums(rows, out, threshold)
    out.attrs.update(
        passed=bool(out["status"].isin(_PASSING).all() and groups.empty),
        threshold=threshold, n_cells=len(cells), n_suppressed=len(suppressed),
        n_components=len(comps), group_sums=groups,
    )
    return out


def explain(cells, equations, cell, *, rates=None):
    """Which published cells and equations pin a suppressed cell (binding constraints at its bounds).

    Parameters
    ----------
    cells, equations, rates
        As for :func:`audit`.
    cell : str
        The suppressed cell to explain.

    Returns
    -------
    pandas.DataFrame
        One row per constraint binding at the cell's lower or upper bound: ``bound``
        (``"lower"``/``"upper"``), ``source`` (``"equation"``/``"rate"``), ``index`` (position in
        ``equations`` or ``rates``), ``total`` and ``parts`` (the equation's cells), ``published``
        (dict of the published cells of that constraint and their values) and ``suppressed`` (its
        other suppressed cells).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> cells = pd.DataFrame({"cell": ["a", "b", "t"], "value": [np.nan, 9, 12], "primary": [True, False, False]})
    >>> explain(cells, [("t", ["a", "b"])], "a")[["bound", "source", "index", "published"]]
       bound    source  index            published
    0  lower  equation      0  {'t': 12.0, 'b': 9.0}
    1  upper  equation      0  {'t': 12.0, 'b': 9.0}
    """
    cells = _check_cells(cells, "explain")
    rates = _check_rates(rates, "explain")
    equations = [(str(t), [str(p) for p in ps]) for t, ps in equations]
    cell = str(cell)
    suppressed, rows = _reduce(cells, equations, rates)
    if cell not in suppressed:
        raise ArgumentError(f"explain: cell {cell!r} is not suppressed (its value is published or it is unknown)")
    comps = _components(suppressed, rows)
    floor = _floor(cells)
    names, idx = next((n, i) for n, i in comps if cell in n)
    comp_rows = [rows[i] for i in idx]
    known = dict(zip(cells["cell"], cells["value"]))
    out = []
    if not comp_rows:
        return pd.DataFrame(columns=["bound", "source", "index", "total", "parts", "published", "suppressed"])
    # dual values of each constraint at each bound; rows are rebuilt one by one to keep their identity
    n = len(names)
    pos = {c: i for i, c in enumerate(names)}
    j = pos[cell]
    for label, sense in (("lower", 1.0), ("upper", -1.0)):
        c = np.zeros(n)
        c[j] = sense
        a_eq, b_eq, a_ub, b_ub = _matrices(names, comp_rows)
        res = linprog(c, A_eq=a_eq, b_eq=b_eq, A_ub=a_ub, b_ub=b_ub, bounds=[(floor[m], None) for m in names],
                      method="highs")
        if res.status != 0:
            continue
        eq_m = list(res.eqlin.marginals) if a_eq is not None else []
        ub_m = list(res.ineqlin.marginals) if a_ub is not None else []
        binding = []
        for row in comp_rows:
            if row.lo == row.hi:
                binding.append(abs(eq_m.pop(0)) > 1e-9)
            else:
                flag = False
                if np.isfinite(row.hi):
                    flag |= abs(ub_m.pop(0)) > 1e-9
                if np.isfinite(row.lo):
                    flag |= abs(ub_m.pop(0)) > 1e-9
                binding.append(flag)
        for row, flag in zip(comp_rows, binding):
            if not flag:
                continue
            if row.source == "equation":
                total, parts = equations[row.index]
                members = [total, *parts]
            else:
                r = rates.iloc[row.index]
                total, parts = r["count_cell"], []
                members = [total] + ([r["population_cell"]] if isinstance(r["population_cell"], str) else [])
            out.append({
                "bound": label, "source": row.source, "index": row.index, "total": total, "parts": parts,
                "published": {m: known[m] for m in members if np.isfinite(known[m])},
                "suppressed": [m for m in members if not np.isfinite(known[m]) and m != cell],
            })
    return pd.DataFrame(out, columns=["bound", "source", "index", "total", "parts", "published", "suppressed"])


def certificate(result):
    """A JSON-serialisable audit certificate (for a release manifest) from :func:`audit` output.

    Parameters
    ----------
    result : pandas.DataFrame
        Output of :func:`audit` (one row per suppressed cell, with its ``.attrs``).

    Returns
    -------
    dict
        ``passed`` (bool), ``attacker`` (the attacker model), ``threshold`` (count), ``n_cells``,
        ``n_suppressed``, ``n_components``, ``status_counts``, ``failing`` (cells with their
        attacker ``lower`` and ``upper`` bounds, in deaths), ``small_group_sums``,
        ``suppressed_cells`` and the cdr version stamp. Plain Python types only (``json.dumps``
        works).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> cells = pd.DataFrame({"cell": ["a", "b", "t"], "value": [np.nan, np.nan, 12], "primary": [True, True, False]})
    >>> certificate(audit(cells, [("t", ["a", "b"])]))["passed"]
    True
    """
    if not isinstance(result, pd.DataFrame) or "status" not in result.columns:
        raise ArgumentTypeError(f"certificate: 'result' must be the DataFrame returned by audit(); got "
                                f"{type(result).__name__}.")
    from cdr._base import version_stamp

    counts = result["status"].value_counts()
    groups = result.attrs.get("group_sums", pd.DataFrame())
    failing = result[~result["status"].isin(_PASSING)]
    return {
        "passed": bool(result.attrs.get("passed", False)),
        "attacker": "non-negative integers; suppressed cells >= 1, unpublished parts >= 0; additivity equations; "
                    "published rates bound counts by their rounding interval; LP (HiGHS) with integer programs "
                    "where fractional",
        "threshold": int(result.attrs.get("threshold", 5)),
        "n_cells": int(result.attrs.get("n_cells", 0)),
        "n_suppressed": int(result.attrs.get("n_suppressed", len(result))),
        "n_components": int(result.attrs.get("n_components", 0)),
        "status_counts": {s: int(counts.get(s, 0)) for s in _STATUS},
        "failing": [
            {"cell": r.cell, "lower": float(r.lower), "upper": float(r.upper), "status": r.status}
            for r in failing.itertuples()
        ],
        "small_group_sums": [
            {"cells": list(r.cells), "value": float(r.lower), "source": r.source} for r in groups.itertuples()
        ],
        "suppressed_cells": result["cell"].tolist(),
        **version_stamp(),
    }
