"""Set packing over minimal feasible sets: the LP and the integer programme (HiGHS), LP-guided
rounding, the packing local search, and the certificate.

The maximum number of footprints of a connected subproblem equals the maximum number of disjoint
minimal feasible sets (:mod:`cdr.footprints._sets`). A bound certifies a packing only when the
programme that gave it was solved to optimality: a timed-out or otherwise unsolved LP or integer
programme never certifies anything (its objective is a feasible point, not a bound); the always
valid area-sum relaxation is used instead.
"""
from __future__ import annotations

import numpy as np

from cdr.footprints._sets import bits

__all__ = ["incidence", "pack", "lp_values", "lp_round", "improve", "members_of", "certify", "Certificate"]

#: A wide LP gap on a large family: HiGHS rarely closes it, so the integer programme is skipped.
_WIDE_GAP, _LARGE_FAMILY = 3, 5_000


def incidence(sets, n):
    """Area x set incidence matrix (scipy CSR) of bitmask sets."""
    from scipy.sparse import csr_matrix

    rows, cols = [], []
    for j, mask in enumerate(sets):
        for i in bits(mask):
            rows.append(i)
            cols.append(j)
    return csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, len(sets)))


def pack(sets, n, *, time_limit, lp_only=False):
    """HiGHS on max sum(x) s.t. each area in at most one chosen set (``scipy.optimize.milp``).

    Returns the scipy result; ``status == 0`` means solved to optimality, anything else (time or
    iteration limit, numerical trouble) means ``fun`` is not a bound.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    m = len(sets)
    return milp(
        -np.ones(m),
        constraints=[LinearConstraint(incidence(sets, n), -np.inf, 1.0)],
        integrality=np.zeros(m) if lp_only else np.ones(m),
        bounds=Bounds(0, 1),
        options={"time_limit": max(float(time_limit), 1.0), "mip_rel_gap": 0.0, "presolve": True, "disp": False},
    )


def lp_values(sets, n, *, time_limit, budget=None):
    """LP relaxation of set packing by HiGHS' interior-point method (guidance for the heuristic only)."""
    from scipy.optimize import linprog

    A = incidence(sets, n)
    res = linprog(-np.ones(len(sets)), A_ub=A, b_ub=np.ones(n), bounds=(0, 1), method="highs-ipm",
                  options={"time_limit": max(float(time_limit), 1.0)})
    if res.status != 0 and budget is not None:
        budget.record(f"heuristic path: the guiding LP stopped unsolved (HiGHS status {res.status}: {res.message}); "
                      "the candidate order may depend on machine speed")
    return res.x if res.x is not None else np.zeros(len(sets))


def members_of(sets):
    """Member lists (ascending area indices) of bitmask sets: the hot loops work on these."""
    return [list(bits(m)) for m in sets]


def lp_round(sets, x, d, members=None):
    """LP-guided greedy: sets by LP value, then fewest areas and least overshoot."""
    members = members_of(sets) if members is None else members
    darr = np.asarray(d, dtype=float)
    key = [(-round(float(x[j]), 6), len(mem), round(float(darr[mem].sum()), 9), sets[j])
           for j, mem in enumerate(members)]
    order = sorted(range(len(sets)), key=key.__getitem__)
    used = np.zeros(len(darr), dtype=bool)
    chosen = []
    for j in order:
        mem = members[j]
        if not used[mem].any():
            chosen.append(j)
            used[mem] = True
    return chosen



def improve(sets, chosen, n, members=None, budget=None):
    """Set-packing local search: add any set that fits; swap one chosen set for two that fit.

    Works on an owner array (area -> chosen set or -1) and short member lists, never on
    n-bit masks, so each test costs the size of a set, not of the map. A pair of sets that fits
    in a chosen set plus the unassigned areas always touches that set (the packing is kept
    maximal), so only sets overlapping it are candidates. Each round that improves adds a set, so
    at most ``n`` rounds run: a count; the ``budget`` clock is only a safety net.
    """
    members = members_of(sets) if members is None else members
    cover = [[] for _ in range(n)]
    for j, mem in enumerate(members):
        for i in mem:
            cover[i].append(j)
    owner = [-1] * n
    chosen = list(chosen)
    in_chosen = set(chosen)
    for j in chosen:
        for i in members[j]:
            owner[i] = j

    def take(k):
        chosen.append(k)
        in_chosen.add(k)
        for i in members[k]:
            owner[i] = k

    def add_free(region=None):
        added = False
        for i in (range(n) if region is None else region):
            if owner[i] >= 0:
                continue
            for k in cover[i]:
                if all(owner[x] < 0 for x in members[k]):
                    take(k)
                    added = True
                    break
        return added

    add_free()
    improved = True
    while improved and not (budget is not None and budget.expired("the packing local search")):
        improved = False
        for j in sorted(chosen, key=lambda q: sets[q]):
            if j not in in_chosen:
                continue
            cands = sorted({k for i in members[j] for k in cover[i]
                            if k != j and all(owner[x] < 0 or owner[x] == j for x in members[k])},
                           key=lambda q: (len(members[q]), sets[q]))
            pair = None
            for a_i, a in enumerate(cands):
                mem_a = set(members[a])
                for b in cands[a_i + 1:]:
                    if mem_a.isdisjoint(members[b]):
                        pair = (a, b)
                        break
                if pair:
                    break
            if pair:
                chosen.remove(j)
                in_chosen.discard(j)
                for i in members[j]:
                    owner[i] = -1
                for q in pair:
                    take(q)
                add_free(members[j])
                improved = True
    return sorted(chosen)



class Certificate:
    """What a packing is proven to be: the chosen sets, the bound, and how the bound was obtained.

    ``bound_method`` is ``"ilp"`` when the count is proven optimal (by the integer programme, or
    because the packing reaches a proven bound), ``"lp"`` (LP relaxation solved to optimality,
    rounded down) or ``"relaxation"`` (area sums). ``lp_value`` is NaN unless the LP was solved to
    optimality.
    """

    def __init__(self, chosen, bound, bound_method, lp_value, notes):
        self.chosen, self.bound, self.bound_method, self.lp_value, self.notes = chosen, bound, bound_method, lp_value, notes

    @property
    def proven(self) -> bool:
        return self.bound_method == "ilp" and len(self.chosen) == self.bound


def certify(sets, n, d, relax, *, budget, ilp_time_limit) -> Certificate:
    """Pack ``sets`` (LP, rounding, local search, integer programme if needed) and certify the count."""
    notes = []
    lp = pack(sets, n, time_limit=max(budget.remaining(), 5.0), lp_only=True)
    lp_ok = lp.status == 0 and lp.x is not None
    lp_value = float(-lp.fun) if lp_ok else np.nan
    if not lp_ok:
        budget.record(f"LP relaxation not solved to optimality (HiGHS status {lp.status}: {lp.message}); "
                      "its value is not used as a bound")
        notes.append("LP relaxation not solved to optimality: bound from the area sums")
    x = lp.x if lp.x is not None else np.zeros(len(sets))
    mem = members_of(sets)
    chosen = improve(sets, lp_round(sets, x, d, mem), n, mem, budget=budget)
    proven_floor = int(np.floor(lp_value + 1e-6)) if lp_ok else int(np.floor(relax + 1e-6))
    floor_method = "lp" if lp_ok else "relaxation"
    if len(chosen) >= proven_floor:
        return Certificate(chosen, len(chosen), "ilp", lp_value, notes)  # a proven bound is reached
    if lp_ok and proven_floor - len(chosen) > _WIDE_GAP and len(sets) > _LARGE_FAMILY:
        notes.append(f"LP gap {lp_value - len(chosen):.1f} on {len(sets):,} sets: integer programme not "
                     "attempted; LP-guided packing kept, bound from the LP relaxation")
        return Certificate(chosen, proven_floor, floor_method, lp_value, notes)
    res = pack(sets, n, time_limit=max(min(budget.remaining(), ilp_time_limit), 1.0))
    if res.status == 0 and res.x is not None:
        best = int(round(-res.fun))
        if best > len(chosen):
            chosen = np.flatnonzero(res.x > 0.5).tolist()
        return Certificate(chosen, best, "ilp", lp_value, notes)
    # an unproven incumbent depends on machine speed: keep the deterministic packing, and say so
    budget.record(f"HiGHS did not prove the integer optimum within ilp_time_limit={ilp_time_limit:g} s "
                  f"(status {res.status}); on a faster machine it might have, and the count could differ")
    notes.append(f"HiGHS did not prove optimality within ilp_time_limit={ilp_time_limit:g} s; the LP-guided "
                 f"packing is kept and the bound is the {'LP relaxation' if lp_ok else 'area-sum relaxation'}")
    return Certificate(chosen, proven_floor, floor_method, lp_value, notes)
