"""Search for a secondary suppression pattern: the deviation-LP heuristic and the optimal ILP.

Both work on the bundle as one linear system ``E x = 0`` (one row per equation: parts minus total)
over the cells that may be hidden (``V``: positive, not locked published); every other cell is
fixed at its value. A pattern ``S`` (hidden cells) protects a primary cell ``p`` from above when
a table ``x = a + d`` exists with ``E d = 0``, ``d_i = 0`` outside ``S``, ``x_i >= 1`` on ``S``
and ``x_p >= threshold`` -- exactly the audit's question.

- Heuristic (after Kelly, Golden & Assad 1992 and Fischetti & Salazar 1999, section 5): primary
  cells one at a time, each gets the cheapest *deviation* ``d`` that lifts it to the threshold (one
  LP; cells already hidden cost almost nothing, others their cost per unit moved); every cell
  that moves is hidden. One HiGHS model for the whole bundle, re-solved from the last basis. Then
  the full audit; a failing cell (an LP deviation that was fractional) gets an integer deviation
  from a small integer program on its neighbourhood; repeat to a fixed point. Finally secondary
  cells are tried for removal, most costly first, keeping each removal the audit allows.
  Deterministic: no randomness and no time-dependent branch.
- Optimal (Fischetti & Salazar 2001, Operations Research 49:1): binary ``y`` per cell, minimise
  the hidden cost; master constraints are necessary conditions; each master pattern is audited,
  and each failing cell adds a *capacity cut* from the dual of the attacker's LP (``sum w_i y_i
  >= threshold - a_p``), or, where only integrality fails, a cut "one more hidden cell among the
  equations touching its component". Valid cuts only, so the first pattern that passes is optimal.

Unpublished parts (``cells["part"]``: pieces of published totals that are never shown) are hidden
for free in both searches: always hidden, attacker bound 0 instead of 1, and a requirement only
where small (``cells["small"]``), exactly like a primary cell that is already hidden.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from cdr.disclosure._audit import _PASSING, _classify, _components, _reduce, _required, _solve_component
from cdr.disclosure._lp import Model

_EPS = 1e-3        # cost per unit of moving a cell that is already hidden


class _Attacker:
    """Audit of a suppression pattern, re-solving only components that changed."""

    def __init__(self, cells, equations, threshold):
        self.cells = cells
        self.equations = equations
        self.threshold = threshold
        self.cache = {}
        self.primary = dict(zip(cells["cell"], cells["small"]))
        part = cells["part"] if "part" in cells else pd.Series(False, index=cells.index)
        self.part = part.to_numpy(bool)
        self.floor = dict(zip(cells["cell"], np.where(self.part, 0.0, 1.0)))
        self.calls = 0

    def failing(self, suppressed):
        self.calls += 1
        hidden = self.cells["cell"].isin(suppressed).to_numpy() | self.part
        frame = pd.DataFrame({"cell": self.cells["cell"], "primary": self.cells["small"],
                              "value": np.where(hidden, np.nan, self.cells["value"].astype(float))})
        sup, rows = _reduce(frame, self.equations, None)
        out = []
        for names, idx in _components(sup, rows):
            comp_rows = [rows[i] for i in idx]
            key = (tuple(names), tuple((tuple(r.coef.items()), r.lo, r.hi) for r in comp_rows))
            if key not in self.cache:
                task = (names, comp_rows, [self.primary[c] for c in names], self.threshold, None, True,
                        [self.floor[c] for c in names])
                _, lower, upper, _ = _solve_component(task)
                self.cache[key] = [(c, lo, up) for c, lo, up in zip(names, lower, upper)]
            for c, lo, up in self.cache[key]:
                required = bool(_required([self.primary[c]], [self.floor[c]])[0])
                status = _classify(lo, up, self.primary[c], self.threshold, required, self.floor[c])
                if status not in _PASSING:
                    out.append((c, status, names))
        return out


class _System:
    """The bundle's equations as a sparse matrix restricted to the cells that may be hidden."""

    def __init__(self, cells, equations):
        self.ids = cells["cell"].tolist()
        pos = {c: i for i, c in enumerate(self.ids)}
        r, k, v = [], [], []
        for i, (t, parts) in enumerate(equations):
            r.append(i), k.append(pos[t]), v.append(-1.0)
            for p in parts:
                r.append(i), k.append(pos[p]), v.append(1.0)
        e = sparse.csr_matrix((v, (r, k)), shape=(len(equations), len(self.ids)))
        e.sum_duplicates()
        self.value = cells["value"].to_numpy(float)
        free = (cells["eligible"] | cells["must"]).to_numpy()
        self.V = np.flatnonzero(free)
        self.vpos = {self.ids[i]: j for j, i in enumerate(self.V)}
        self.a = self.value[self.V]
        self.must = cells["must"].to_numpy()[self.V]
        self.small = cells["small"].to_numpy()[self.V]
        part = cells["part"].to_numpy(bool) if "part" in cells else np.zeros(len(cells), bool)
        self.part = part[self.V]                         # unpublished parts: always hidden, >= 0
        self.floor = np.where(self.part, 0.0, 1.0)
        self.room = self.a - self.floor                  # how far each hidden cell can go down
        self.required = self.small | ~self.part          # cells with a protection requirement
        self.E = e[:, self.V].tocsr()
        self.const = -(e[:, ~free] @ self.value[~free])   # E_V x_V = const
        self.Ec = self.E.tocsc()
        self.G = float(self.value.sum()) + 10.0

    def rows_of(self, cols):
        return np.unique(self.Ec[:, cols].indices)

    def cols_of(self, rows):
        return np.unique(self.E[rows].indices)


def _deviation_model(sysm, cost, suppressed, *, cols=None, integer=False, time_limit=None):
    """min sum cost_i |d_i| s.t. E d = 0, d_i >= floor_i - a_i; columns d+ then d- (restricted to `cols`)."""
    cols = np.arange(len(sysm.V)) if cols is None else np.asarray(cols)
    e = sysm.E[:, cols]
    keep = np.flatnonzero(np.diff(e.tocsr().indptr) > 0)
    e = e[keep]
    room = sysm.room[cols]
    c = np.where(suppressed[cols], _EPS, cost[cols])
    model = Model(sparse.hstack([e, -e]), 0.0, 0.0, 0.0, np.r_[np.full(len(cols), np.inf), room],
                  np.r_[c, c], integer=integer, time_limit=time_limit)
    return model, cols


def _needs(sysm, j, status, threshold):
    """Deviation requirements for cell j: list of (direction, amount), any one suffices."""
    if sysm.small[j]:
        return [(1, threshold - sysm.a[j])]
    return [(1, 1.0)] + ([(-1, 1.0)] if sysm.room[j] >= 1 else [])


def _solve_need(model, room, j_local, need, n):
    """Solve with cell j_local's deviation forced by `need`; room: how far each model cell can go down."""
    direction, amount = need
    col = j_local if direction > 0 else n + j_local
    hi = np.inf if direction > 0 else room[j_local]
    if amount > hi:
        return None, np.inf
    other = n + j_local if direction > 0 else j_local       # the net deviation must move: the
    other_hi = room[j_local] if direction > 0 else np.inf   # opposite column is held at zero
    model.set_bounds([col], amount, hi)
    model.set_bounds([other], 0.0, 0.0)
    status, x, obj = model.solve()
    model.set_bounds([col], 0.0, hi)
    model.set_bounds([other], 0.0, other_hi)
    if status not in ("optimal", "other") or x is None:
        return None, np.inf
    d = x[:n] - x[n:]
    return d, obj


def _heuristic(cells, equations, attacker, cost, *, cleanup=True, cleanup_tries=8, max_rounds=30):
    threshold = attacker.threshold
    sysm = _System(cells, equations)
    nv = len(sysm.V)
    c = np.array([cost[sysm.ids[i]] for i in sysm.V], float)
    hidden = sysm.must.copy()
    info = {"lp_solves": 0, "repair_rounds": 0, "ilp_repairs": 0, "removed": 0}
    if nv == 0:
        return set(cells.loc[cells["must"], "cell"]), info
    model, _ = _deviation_model(sysm, c, hidden)
    order = sorted(np.flatnonzero(sysm.must & sysm.required), key=lambda j: (sysm.a[j], sysm.ids[sysm.V[j]]))
    for j in order:
        needs = _needs(sysm, j, None, threshold)
        best = None
        for need in needs[:1]:
            d, obj = _solve_need(model, sysm.room, j, need, nv)
            info["lp_solves"] += 1
            if d is not None and (best is None or obj < best[1]):
                best = (d, obj)
        if best is None:
            continue
        new = np.flatnonzero((np.abs(best[0]) > 1e-7) & ~hidden)
        if len(new):
            hidden[new] = True
            model.set_cost(new, _EPS)
            model.set_cost(new + nv, _EPS)

    def pattern():
        return {sysm.ids[sysm.V[j]] for j in np.flatnonzero(hidden)}

    # audit and repair with integer deviations on a neighbourhood of each failing cell
    for _ in range(max_rounds):
        failing = attacker.failing(pattern())
        if not failing:
            break
        info["repair_rounds"] += 1
        added = False
        for cell, status, names in sorted(failing):
            j = sysm.vpos.get(cell)
            if j is None:
                continue
            d = _integer_deviation(sysm, c, hidden, j, status, threshold,
                                   [sysm.vpos[n] for n in names if n in sysm.vpos])
            info["ilp_repairs"] += 1
            if d is None:
                continue
            new = np.flatnonzero((np.abs(d) > 1e-7) & ~hidden)
            if len(new):
                hidden[new] = True
                model.set_cost(new, _EPS)
                model.set_cost(new + nv, _EPS)
                added = True
        if not added:
            break
    if cleanup and not attacker.failing(pattern()):
        tries = 0
        for j in sorted(np.flatnonzero(hidden & ~sysm.must), key=lambda j: (-c[j], sysm.ids[sysm.V[j]])):
            if tries >= cleanup_tries:
                break
            hidden[j] = False
            # cheap necessary check first: no equation of j may be left with one hidden cell
            rows = sysm.rows_of([j])
            lone = any(np.count_nonzero(hidden[sysm.E.indices[sysm.E.indptr[r]:sysm.E.indptr[r + 1]]]) == 1
                       for r in rows)
            if lone:
                hidden[j] = True
                continue
            tries += 1
            if attacker.failing(pattern()):
                hidden[j] = True
            else:
                info["removed"] += 1
    return pattern(), info


def _integer_deviation(sysm, c, hidden, j, status, threshold, comp):
    """Cheapest integral deviation meeting cell j's requirement, on a growing neighbourhood."""
    cols = np.unique(np.r_[comp, j]).astype(int)
    for hops in range(4):
        cols = sysm.cols_of(sysm.rows_of(cols))
        model, cols = _deviation_model(sysm, c, hidden, cols=cols, integer=True, time_limit=20.0)
        local = int(np.searchsorted(cols, j))
        best = None
        for need in _needs(sysm, j, status, threshold):
            d, obj = _solve_need(model, sysm.room[cols], local, need, len(cols))
            if d is not None and np.isfinite(obj) and (best is None or obj < best[1]):
                best = (d, obj)
        if best is not None:
            full = np.zeros(len(sysm.V))
            full[cols] = best[0]
            return full
    return None


def _optimal(cells, equations, attacker, cost, deadline, max_iter):
    """Fischetti-Salazar branch-and-cut, as a cutting-plane loop over scipy's MILP (HiGHS).

    Returns (pattern or None, info).
    """
    threshold = attacker.threshold
    sysm = _System(cells, equations)
    nv = len(sysm.V)
    info = {"iterations": 0, "capacity_cuts": 0, "cover_cuts": 0, "proven_optimal": False}
    c = np.array([cost[sysm.ids[i]] for i in sysm.V], float)
    lb = sysm.must.astype(float)
    rows, lo = [], []
    e = sysm.E
    for r in range(e.shape[0]):
        members = e.indices[e.indptr[r]:e.indptr[r + 1]]
        sign = e.data[e.indptr[r]:e.indptr[r + 1]]
        full_members = len(members)
        for k, p in enumerate(members):
            # a hidden cell needs another hidden cell in each of its equations (else it is exact),
            # unless a cell fixed at zero... fixed cells are constants, so the row holds for V only;
            # an unpublished part that is not small may be exact
            if not sysm.required[p]:
                continue
            if full_members > 1:
                rows.append({**{int(m): 1.0 for m in members if m != p}, int(p): -1.0})
                lo.append(0.0)
            else:
                rows.append({int(p): -1.0})
                lo.append(0.0)
            if sysm.small[p] and sysm.must[p]:
                # upward capacity: raise p by threshold - a_p through cells on the same side going
                # down (at most a_m - 1 each) or the other side going up (unbounded)
                up = {}
                for m, s in zip(members, sign):
                    if m == p:
                        continue
                    up[int(m)] = min(threshold, sysm.room[m] if s == sign[k] else threshold)
                rows.append(up)
                lo.append(threshold - sysm.a[p])
    # the attacker's LP in x-space over V, bounds set per pattern
    attack = Model(sysm.E, sysm.const, sysm.const, sysm.a, sysm.a, np.zeros(nv))
    prev_cost = np.zeros(nv)
    while info["iterations"] < max_iter:
        if time.monotonic() > deadline:
            return None, {**info, "stopped": "time_limit"}
        info["iterations"] += 1
        r, k, v = [], [], []
        for i, coefs in enumerate(rows):
            for jj, aa in coefs.items():
                r.append(i), k.append(jj), v.append(aa)
        a = sparse.csr_matrix((v, (r, k)), shape=(len(rows), nv))
        res = milp(c, constraints=[LinearConstraint(a, np.array(lo), np.inf)], integrality=np.ones(nv),
                   bounds=Bounds(lb, np.ones(nv)),
                   options={"time_limit": max(1.0, deadline - time.monotonic()), "disp": False})
        if res.status == 2:
            return None, {**info, "stopped": "no protecting pattern exists"}
        if res.status != 0 or res.x is None:
            return None, {**info, "stopped": "time_limit"}
        y = res.x > 0.5
        pattern = {sysm.ids[sysm.V[j]] for j in np.flatnonzero(y)}
        failing = attacker.failing(pattern)
        if not failing:
            info["proven_optimal"] = True
            return pattern, info
        attack.set_bounds(np.arange(nv), np.where(y, sysm.floor, sysm.a), np.where(y, sysm.a + sysm.G, sysm.a))
        for cell, status, names in failing:
            j = sysm.vpos.get(cell)
            if j is None:
                continue
            cut = None
            needs = _needs(sysm, j, status, threshold)
            weights = np.zeros(nv)
            ok = True
            for direction, amount in needs:
                new = np.zeros(nv)
                new[j] = -float(direction)              # minimise -direction * x_j
                changed = np.flatnonzero(new != prev_cost)
                attack.set_cost(changed, new[changed])
                prev_cost = new
                st, x, obj = attack.solve()
                if st != "optimal":
                    ok = False
                    break
                reach = -obj - direction * sysm.a[j]     # how far x_j can move in the LP
                if reach >= amount - 1e-6:
                    ok = False                           # LP moves it: only integrality fails
                    break
                dual = attack.col_duals()
                w = np.where(dual > 1e-9, dual * sysm.room, np.where(dual < -1e-9, -dual * sysm.G, 0.0))
                weights += np.minimum(w, amount) / amount
            own = min(weights[j], 1.0)        # y_j = 1 wherever the cut matters: move it right
            if ok and own < 1.0 - 1e-9:
                weights[j] = 0.0
                weights = np.minimum(weights, 1.0 - own)
                keep = np.flatnonzero(weights > 1e-9)
                cut = {int(m): float(weights[m]) for m in keep}
                cut[j] = -(1.0 - own)
                info["capacity_cuts"] += 1
            else:
                touching = set()
                for n in names:
                    if n in sysm.vpos:
                        touching.update(sysm.cols_of(sysm.rows_of([sysm.vpos[n]])).tolist())
                free = [m for m in touching if not y[m]]
                cut = {int(m): 1.0 for m in free}
                cut[j] = cut.get(j, 0.0) - 1.0
                info["cover_cuts"] += 1
            rows.append(cut)
            lo.append(0.0)
    return None, {**info, "stopped": "max_iter"}
