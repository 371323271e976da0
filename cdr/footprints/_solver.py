"""The max-p solver on one connected subproblem: plain arrays in, labels and a certificate out.

Nothing here knows about LA codes, geometry or pandas: a subproblem is ``n`` areas (indices
``0..n-1`` in a fixed order), their expected deaths ``d``, populations ``pop``, a feature matrix for
the secondary objective and the neighbour lists of a *connected* graph. The builder
(:mod:`cdr.footprints._builder`) splits the user's problem into such subproblems.

Exact path (Duque, Church & Middleton 2011 define max-p; the set-packing reformulation below is
folklore for the connected case): every footprint of a feasible design contains a *minimal* feasible
set (connected, reaches the threshold, no connected proper subset does), and disjoint minimal sets
can always be grown into a design covering every area of a connected graph by attaching the areas
left over to a neighbouring footprint. So the maximum number of footprints equals the maximum
number of disjoint minimal feasible sets: enumerate them (ESU enumeration of connected sets,
Wernicke 2006, pruned at the threshold), solve the set-packing integer programme with HiGHS, and
the optimum is both the design's size and a proof that no design has more.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Subproblem", "SubResult", "solve_subproblem", "enumerate_minimal_sets", "relaxation_bound", "anneal_budget"]

_EPS = 1e-9
#: Heuristic candidate pool: randomised growth rounds per area, and the sizes (largest first) of
#: the complete small minimal sets added to the pool when they fit the budget.
_HEURISTIC_ROUNDS = 3
_HEURISTIC_SIZES = (5, 4, 3, 2)
#: Passes of the local search (moves, then swaps when no move helps): a count, not a clock.
_MAX_PASSES = 40


@dataclass
class Subproblem:
    """One connected subproblem. ``nbrs[i]``: sorted neighbour indices of area ``i``."""

    d: np.ndarray
    pop: np.ndarray
    nbrs: list
    features: np.ndarray  # n x k, already scaled (objective = within-footprint sum of squares)
    threshold: float
    max_population: float | None = None
    seed: int = 0
    exact: object = "auto"  # "auto", True or False
    max_sets: int = 200_000
    time_limit: float = 60.0
    ilp_time_limit: float = 20.0
    local_search: bool = True
    max_footprints: int | None = None  # merge down to this many footprints (equal-count comparisons)
    anneal_iterations: int | None = None  # simulated-annealing proposals (None: anneal_budget's default)
    key: str = ""

    @property
    def n(self) -> int:
        return len(self.d)


@dataclass
class SubResult:
    labels: np.ndarray  # footprint index per area, 0..k-1
    n_footprints: int
    path: str  # "exact" or "heuristic"
    bound: int  # proven upper bound on the number of footprints
    bound_method: str  # "ilp" (proven optimum), "lp" (LP relaxation) or "relaxation" (area sums)
    lp_bound: float  # LP relaxation value (NaN when not computed)
    relaxation: float  # n_big + sum(small)/threshold
    n_sets: int  # minimal sets enumerated (exact) or candidates generated (heuristic)
    objective: float
    seconds: float
    notes: list = field(default_factory=list)
    anneal_iterations: int = 0  # simulated-annealing proposals made
    objective_descent: float = float("nan")  # objective after the descent alone (before annealing)


# --------------------------------------------------------------------------------------------
# bounds
# --------------------------------------------------------------------------------------------
def relaxation_bound(d, threshold) -> float:
    """Dual-feasible bound: y_i = min(1, d_i / T) covers every feasible set, so OPT <= sum(y)."""
    d = np.asarray(d, dtype=float)
    return float(np.minimum(1.0, d / threshold).sum())


# --------------------------------------------------------------------------------------------
# enumeration
# --------------------------------------------------------------------------------------------
class _TooMany(Exception):
    pass


def _bits(mask):
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def _connected(mask, nbr_mask) -> bool:
    if mask == 0:
        return True
    seen = front = mask & -mask
    while front:
        nxt = 0
        for k in _bits(front):
            nxt |= nbr_mask[k]
        nxt &= mask & ~seen
        seen |= nxt
        front = nxt
    return seen == mask


def _is_minimal(mask, total, d, nbr_mask, threshold) -> bool:
    # S is minimal iff no removable (non-cut) area can be dropped while staying >= threshold:
    # any connected proper subset of a connected S lies inside S minus one non-cut area.
    for v in _bits(mask):
        if total - d[v] >= threshold - _EPS and _connected(mask & ~(1 << v), nbr_mask):
            return False
    return True


def enumerate_minimal_sets(d, nbrs, threshold, *, pop=None, max_population=None, max_sets=200_000, deadline=None,
                           max_size=None):
    """All minimal feasible connected sets, as integer bitmasks, or ``None`` when over budget.

    ESU-style: each connected set is generated once, from its lowest-index area; a branch stops
    as soon as it reaches the threshold (a superset of a feasible set is never minimal) or exceeds
    ``max_population``. With ``max_size``, only minimal sets of at most that many areas (a
    candidate pool for the heuristic, not a complete family).
    """
    size_cap = np.inf if max_size is None else int(max_size)
    d = np.asarray(d, dtype=float).tolist()
    n = len(d)
    popl = None if pop is None else np.asarray(pop, dtype=float).tolist()
    cap = np.inf if max_population is None else float(max_population)
    nbr_mask = [0] * n
    for i, row in enumerate(nbrs):
        for j in row:
            nbr_mask[i] |= 1 << j
    big = [d[i] >= threshold - _EPS for i in range(n)]
    out = []
    counter = [0]

    def extend(S, closed, ext, v, s, p, size):
        ext = list(ext)
        while ext:
            w = ext.pop()
            s2, S2 = s + d[w], S | (1 << w)
            p2 = p + (popl[w] if popl is not None else 0.0)
            counter[0] += 1
            if counter[0] % 20_000 == 0 and deadline is not None and time.perf_counter() > deadline:
                raise _TooMany
            if p2 > cap:
                continue
            if s2 >= threshold - _EPS:
                if _is_minimal(S2, s2, d, nbr_mask, threshold):
                    out.append(S2)
                    if len(out) > max_sets:
                        raise _TooMany
                continue
            if size + 1 >= size_cap:
                continue
            new = nbr_mask[w] & ~closed
            add = [k for k in _bits(new) if k > v and not big[k]]
            extend(S2, closed | new, ext + add, v, s2, p2, size + 1)

    try:
        for v in range(n):
            pv = popl[v] if popl is not None else 0.0
            if pv > cap:
                continue
            if big[v]:
                out.append(1 << v)
                continue
            closed = nbr_mask[v] | (1 << v)
            extend(1 << v, closed, [u for u in nbrs[v] if u > v and not big[u]], v, d[v], pv, 1)
    except _TooMany:
        return None
    return out


# --------------------------------------------------------------------------------------------
# set packing
# --------------------------------------------------------------------------------------------
def _incidence(sets, n):
    from scipy.sparse import csr_matrix

    rows, cols = [], []
    for j, mask in enumerate(sets):
        for i in _bits(mask):
            rows.append(i)
            cols.append(j)
    return csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, len(sets)))


def _pack(sets, n, costs, *, time_limit, fix_count=None, lp_only=False):
    """Max number of disjoint sets (or, with ``fix_count``, min cost among packings of that size)."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    m = len(sets)
    A = _incidence(sets, n)
    cons = [LinearConstraint(A, -np.inf, 1.0)]
    if fix_count is None:
        c = -np.ones(m)
    else:
        c = np.asarray(costs, dtype=float)
        cons.append(LinearConstraint(np.ones((1, m)), fix_count, fix_count))
    res = milp(
        c,
        constraints=cons,
        integrality=np.zeros(m) if lp_only else np.ones(m),
        bounds=Bounds(0, 1),
        options={"time_limit": max(float(time_limit), 1.0), "mip_rel_gap": 0.0, "presolve": True, "disp": False},
    )
    return res


# --------------------------------------------------------------------------------------------
# heuristic candidates
# --------------------------------------------------------------------------------------------
def _minimalise(members, d, nbr_mask, threshold):
    mask = 0
    for i in members:
        mask |= 1 << i
    total = sum(d[i] for i in members)
    while True:
        best, best_d = None, -1.0
        for v in _bits(mask):
            if total - d[v] >= threshold - _EPS and d[v] > best_d and _connected(mask & ~(1 << v), nbr_mask):
                best, best_d = v, d[v]
        if best is None:
            return mask
        mask &= ~(1 << best)
        total -= best_d


def _grow(start, d, pop, cap, nbrs, nbr_mask, threshold, available, rng, noise):
    members = [start]
    inset = {start}
    total, p = d[start], pop[start]
    links = {}
    for u in nbrs[start]:
        if available[u]:
            links[u] = links.get(u, 0) + 1
    while total < threshold - _EPS:
        cands = [u for u in links if p + pop[u] <= cap]
        if not cands:
            return None
        finishing = [u for u in cands if total + d[u] >= threshold - _EPS]
        if finishing:
            # least overshoot: keeps deaths for other footprints
            u = min(finishing, key=lambda k: (total + d[k] - threshold) * (1 + noise * rng.random()) - 0.01 * links[k])
        else:
            u = max(cands, key=lambda k: links[k] + noise * rng.random() + 0.1 * d[k] / threshold)
        members.append(u)
        inset.add(u)
        total += d[u]
        p += pop[u]
        del links[u]
        for w in nbrs[u]:
            if available[w] and w not in inset:
                links[w] = links.get(w, 0) + 1
    return _minimalise(members, d, nbr_mask, threshold)


def _heuristic_sets(prob, rng, *, per_area, available=None):
    n = prob.n
    d = prob.d.tolist()
    pop = prob.pop.tolist()
    cap = np.inf if prob.max_population is None else prob.max_population
    nbr_mask = [0] * n
    for i, row in enumerate(prob.nbrs):
        for j in row:
            nbr_mask[i] |= 1 << j
    if available is None:
        available = [True] * n
    sets = set()
    for r in range(per_area):
        noise = 0.0 if r == 0 else 0.5 * r
        for start in rng.permutation(n).tolist():
            if not available[start] or pop[start] > cap:
                continue
            if d[start] >= prob.threshold - _EPS:
                sets.add(1 << start)
                continue
            s = _grow(start, d, pop, cap, prob.nbrs, nbr_mask, prob.threshold, available, rng, noise)
            if s is not None:
                sets.add(s)
    return sorted(sets), nbr_mask


def _greedy_pack(sets, d, threshold):
    # fewest areas and least overshoot first
    order = sorted(range(len(sets)), key=lambda j: (bin(sets[j]).count("1"), sum(d[i] for i in _bits(sets[j]))))
    used, chosen = 0, []
    for j in order:
        if sets[j] & used == 0:
            chosen.append(j)
            used |= sets[j]
    return chosen


# --------------------------------------------------------------------------------------------
# completing and improving a packing
# --------------------------------------------------------------------------------------------
class _State:
    """Labels plus per-footprint sums for O(k) objective deltas."""

    def __init__(self, prob, labels):
        self.prob = prob
        self.labels = labels
        k = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
        f = prob.features
        self.cnt = np.zeros(k)
        self.sum = np.zeros((k, f.shape[1]))
        self.sq = np.zeros(k)
        self.d = np.zeros(k)
        self.pop = np.zeros(k)
        for i, lab in enumerate(labels):
            if lab >= 0:
                self._add(i, lab)

    def _add(self, i, lab, sign=1.0):
        f = self.prob.features[i]
        self.cnt[lab] += sign
        self.sum[lab] += sign * f
        self.sq[lab] += sign * float(f @ f)
        self.d[lab] += sign * self.prob.d[i]
        self.pop[lab] += sign * self.prob.pop[i]

    def cost_of(self, cnt, s, sq):
        return sq - (float(s @ s) / cnt if cnt > 0 else 0.0)

    def cost(self, lab):
        return self.cost_of(self.cnt[lab], self.sum[lab], self.sq[lab])

    def delta_add(self, i, lab):
        f = self.prob.features[i]
        return self.cost_of(self.cnt[lab] + 1, self.sum[lab] + f, self.sq[lab] + f @ f) - self.cost(lab)

    def delta_remove(self, i, lab):
        f = self.prob.features[i]
        return self.cost_of(self.cnt[lab] - 1, self.sum[lab] - f, self.sq[lab] - f @ f) - self.cost(lab)

    def move(self, i, to):
        frm = self.labels[i]
        if frm >= 0:
            self._add(i, frm, -1.0)
        self.labels[i] = to
        self._add(i, to)

    def total(self):
        return float(sum(self.cost(k) for k in range(len(self.cnt))))


def _attach_leftovers(prob, state):
    """Attach unassigned areas to a neighbouring footprint, wave by wave (keeps contiguity).

    In each wave every unassigned area next to a footprint joins the neighbour whose objective
    rises least, within ``max_population``. Returns the areas that could not be attached.
    """
    cap = np.inf if prob.max_population is None else prob.max_population
    labels = state.labels
    while True:
        pending = np.flatnonzero(labels < 0)
        if len(pending) == 0:
            return []
        wave = []
        for i in pending.tolist():
            options = sorted({labels[j] for j in prob.nbrs[i] if labels[j] >= 0})
            scored = [(state.delta_add(i, lab), lab) for lab in options if state.pop[lab] + prob.pop[i] <= cap]
            if scored:
                wave.append((min(scored), i))
        moved = False
        for (delta, lab), i in sorted(wave):
            if state.pop[lab] + prob.pop[i] <= cap:
                state.move(i, lab)
                moved = True
        if not moved:
            return pending.tolist()


def _connected_set(mset, nbrs) -> bool:
    """Is the area set ``mset`` (a Python set) connected in the neighbour lists ``nbrs``?"""
    if not mset:
        return True
    start = next(iter(mset))
    seen, stack = {start}, [start]
    while stack:
        for j in nbrs[stack.pop()]:
            if j in mset and j not in seen:
                seen.add(j)
                stack.append(j)
    return len(seen) == len(mset)


def _move_pass(prob, state, members, nbr_mask, order, cap):
    """One pass of single-area moves (donor stays connected and >= threshold). True if any."""
    labels = state.labels
    improved = False
    for i in order:
        a = labels[i]
        if state.cnt[a] <= 1 or state.d[a] - prob.d[i] < prob.threshold - _EPS:
            continue
        targets = sorted({labels[j] for j in prob.nbrs[i]} - {a})
        if not targets:
            continue
        base = state.delta_remove(i, a)
        best = None
        for b in targets:
            if state.pop[b] + prob.pop[i] > cap:
                continue
            delta = base + state.delta_add(i, b)
            if delta < -1e-9 and (best is None or delta < best[0]):
                best = (delta, b)
        if best is None or not _connected(members[a] & ~(1 << i), nbr_mask):
            continue
        b = best[1]
        members[a] &= ~(1 << i)
        members[b] |= 1 << i
        state.move(i, b)
        improved = True
    return improved


def _swap_pass(prob, state, members, cap):
    """One pass of swaps: a boundary area of footprint ``a`` exchanged with one of footprint ``b``.

    For each pair of neighbouring footprints, the swap that lowers the objective most while both
    footprints stay connected, at or above the threshold and within ``max_population`` is made.
    The number of footprints and their sizes never change. Footprint sizes stay equal, so the
    change in ``a``'s within sum of squares is ``f_j.f_j - f_i.f_i - (2 s_a.g + g.g) / n_a`` with
    ``g = f_j - f_i`` (and the mirror for ``b``).
    """
    labels = state.labels
    F = prob.features
    T = prob.threshold
    sq = np.einsum("ij,ij->i", F, F) if F.shape[1] else np.zeros(prob.n)
    border = {}
    for i in range(prob.n):
        a = labels[i]
        for j in prob.nbrs[i]:
            b = labels[j]
            if b != a:
                border.setdefault((a, b), set()).add(i)
    improved = False
    for (a, b) in sorted(border):
        if a > b or (b, a) not in border:
            continue
        side_a, side_b = sorted(border[(a, b)]), sorted(border[(b, a)])
        # only areas still in a / b (an earlier swap this pass may have moved them)
        side_a = [i for i in side_a if labels[i] == a]
        side_b = [j for j in side_b if labels[j] == b]
        if not side_a or not side_b or F.shape[1] == 0:
            continue
        ia, jb = np.array(side_a), np.array(side_b)
        g = F[jb][None, :, :] - F[ia][:, None, :]  # |a| x |b| x k
        gg = np.einsum("ijk,ijk->ij", g, g)
        sa, sb = state.sum[a], state.sum[b]
        na, nb = state.cnt[a], state.cnt[b]
        delta = (-(2 * np.einsum("ijk,k->ij", g, sa) + gg) / na - (-2 * np.einsum("ijk,k->ij", g, sb) + gg) / nb)
        dd = prob.d[jb][None, :] - prob.d[ia][:, None]  # a gains d_j - d_i
        ok = (state.d[a] + dd >= T - _EPS) & (state.d[b] - dd >= T - _EPS) & (delta < -1e-9)
        if np.isfinite(cap):
            dp = prob.pop[jb][None, :] - prob.pop[ia][:, None]
            ok &= (state.pop[a] + dp <= cap) & (state.pop[b] - dp <= cap)
        if not ok.any():
            continue
        cand = np.argwhere(ok)
        for r, c in cand[np.argsort(delta[ok], kind="stable")].tolist():
            i, j = side_a[r], side_b[c]
            mem_a = {x for x in _bits(members[a])} - {i} | {j}
            mem_b = {x for x in _bits(members[b])} - {j} | {i}
            if _connected_set(mem_a, prob.nbrs) and _connected_set(mem_b, prob.nbrs):
                members[a] = (members[a] & ~(1 << i)) | (1 << j)
                members[b] = (members[b] & ~(1 << j)) | (1 << i)
                state.move(i, b)
                state.move(j, a)
                improved = True
                break
    return improved


def _local_search(prob, state, nbr_mask, *, deadline, rng):
    """Area moves and swaps between neighbouring footprints that lower the objective.

    Alternates passes of single-area moves and of pairwise swaps (one boundary area of each of
    two neighbouring footprints exchanged) until neither improves. Every step keeps every rule:
    both footprints stay connected and at or above the threshold, within ``max_population``;
    the number of footprints never changes.
    """
    cap = np.inf if prob.max_population is None else prob.max_population
    labels = state.labels
    members = {}
    for i, lab in enumerate(labels.tolist()):
        members.setdefault(lab, 0)
        members[lab] |= 1 << i
    order = rng.permutation(prob.n).tolist()
    # a pass limit, not the clock, ends the search (the clock is only a safety net), so the
    # result does not depend on machine speed
    passes = 0
    while passes < _MAX_PASSES and time.perf_counter() < deadline:
        passes += 1
        moved = _move_pass(prob, state, members, nbr_mask, order, cap)
        if moved:
            continue
        if not _swap_pass(prob, state, members, cap):
            break


# --------------------------------------------------------------------------------------------
# simulated annealing: escaping the local optima of the descent
# --------------------------------------------------------------------------------------------
#: Default annealing budget (a count of proposals, never a clock): per area and capped, larger on
#: the exact path (the count is proven optimal, so the secondary objective is what is left to
#: improve, and the instance is small) than on the heuristic path (large instances, where the time
#: goes to the count).
_ANNEAL_PER_AREA = {"exact": 4000, "heuristic": 25}
_ANNEAL_CAP = 1_000_000
#: Temperature: a typical worsening proposal is accepted with probability 1/2 at the start, and the
#: temperature falls geometrically to this fraction of its start over the budget.
_ANNEAL_FINAL = 1e-2
#: Share of proposals that are swaps (the rest are single-area moves).
_ANNEAL_SWAP_SHARE = 0.4


def anneal_budget(n: int, anneal_iterations=None, path: str = "exact") -> int:
    """Number of annealing proposals for a subproblem of ``n`` areas.

    ``anneal_iterations=None`` gives the default, ``min(4000 n, 1_000_000)`` on the exact path and
    ``min(25 n, 1_000_000)`` on the heuristic path; an integer is used as given (0 switches
    annealing off).
    """
    if anneal_iterations is None:
        return int(min(_ANNEAL_PER_AREA[path] * n, _ANNEAL_CAP))
    return max(int(anneal_iterations), 0)


def _anneal(prob, state, nbr_mask, rng, iterations):
    """Seeded simulated annealing over area moves and swaps; leaves ``state`` at the best design seen.

    A proposal is either a *move* (a random area ``i`` joins the footprint of a random neighbour
    in another footprint) or a *swap* (``i`` and an area ``j`` of a neighbouring footprint that
    touches ``i``'s footprint change places). A proposal is considered only if every rule still
    holds: both footprints connected, at or above the threshold (the chance threshold when
    ``min_probability`` is set: it is ``prob.threshold``), within ``max_population``, and no
    footprint emptied, so the number of footprints never changes. It is accepted if it lowers the
    objective, or else with probability ``exp(-delta / temperature)`` (Metropolis; Kirkpatrick,
    Gelatt & Vecchi 1983). The temperature starts where the median worsening of a sample of
    proposals is accepted with probability 1/2 and falls geometrically to ``_ANNEAL_FINAL`` times
    that over ``iterations`` proposals. The budget is a count and every random number comes from
    ``rng``, so the result depends on the seed only, never on machine speed. Areas are indexed in
    ``la_code`` order, so the input's row order does not matter either.
    """
    n = prob.n
    F = prob.features
    kdim = F.shape[1]
    if iterations <= 0 or n < 2 or kdim == 0:
        return
    f = F.tolist()
    ff = [sum(x * x for x in row) for row in f]
    d = prob.d.tolist()
    pop = prob.pop.tolist()
    nbrs = prob.nbrs
    T = prob.threshold - _EPS
    cap = np.inf if prob.max_population is None else prob.max_population
    lab = state.labels.tolist()
    K = max(lab) + 1
    if K < 2:
        return
    cnt = [0] * K
    s = [[0.0] * kdim for _ in range(K)]
    sq = [0.0] * K
    dsum = [0.0] * K
    psum = [0.0] * K
    mem = [0] * K
    for i, a in enumerate(lab):
        cnt[a] += 1
        sa = s[a]
        for t in range(kdim):
            sa[t] += f[i][t]
        sq[a] += ff[i]
        dsum[a] += d[i]
        psum[a] += pop[i]
        mem[a] |= 1 << i

    def cost(c, sv, q):
        return q - sum(x * x for x in sv) / c if c > 0 else 0.0

    cur = [cost(cnt[a], s[a], sq[a]) for a in range(K)]

    def propose(i, r_nb, r_kind, r_j):
        """(delta, kind, i, j, a, b, new sums) for a feasible proposal, or None."""
        a = lab[i]
        nb = nbrs[i]
        if not nb:
            return None
        b = lab[nb[int(r_nb * len(nb))]]
        if b == a:
            return None
        fi = f[i]
        if r_kind >= _ANNEAL_SWAP_SHARE:  # move i from a to b
            if cnt[a] <= 1 or dsum[a] - d[i] < T or psum[b] + pop[i] > cap:
                return None
            sa = [x - y for x, y in zip(s[a], fi)]
            sb = [x + y for x, y in zip(s[b], fi)]
            ca = cost(cnt[a] - 1, sa, sq[a] - ff[i])
            cb = cost(cnt[b] + 1, sb, sq[b] + ff[i])
            return (ca + cb - cur[a] - cur[b], 0, i, -1, a, b, sa, sb, ca, cb)
        # swap i (in a) with an area j of b that touches a
        cand = [j for j in _bits(mem[b]) if nbr_mask[j] & mem[a]]
        j = cand[int(r_j * len(cand))]
        if j == i:
            return None
        dd = d[j] - d[i]
        if dsum[a] + dd < T or dsum[b] - dd < T:
            return None
        dp = pop[j] - pop[i]
        if psum[a] + dp > cap or psum[b] - dp > cap:
            return None
        fj = f[j]
        sa = [x - y + z for x, y, z in zip(s[a], fi, fj)]
        sb = [x - z + y for x, y, z in zip(s[b], fi, fj)]
        ca = cost(cnt[a], sa, sq[a] - ff[i] + ff[j])
        cb = cost(cnt[b], sb, sq[b] - ff[j] + ff[i])
        return (ca + cb - cur[a] - cur[b], 1, i, j, a, b, sa, sb, ca, cb)

    def feasible(p):
        _, kind, i, j, a, b = p[:6]
        if kind == 0:
            return _connected(mem[a] & ~(1 << i), nbr_mask)
        ma = (mem[a] & ~(1 << i)) | (1 << j)
        mb = (mem[b] & ~(1 << j)) | (1 << i)
        return _connected(ma, nbr_mask) and _connected(mb, nbr_mask)

    def apply(p):
        _, kind, i, j, a, b, sa, sb, ca, cb = p
        s[a], s[b], cur[a], cur[b] = sa, sb, ca, cb
        if kind == 0:
            cnt[a] -= 1
            cnt[b] += 1
            sq[a] -= ff[i]
            sq[b] += ff[i]
            dsum[a] -= d[i]
            dsum[b] += d[i]
            psum[a] -= pop[i]
            psum[b] += pop[i]
            mem[a] &= ~(1 << i)
            mem[b] |= 1 << i
            lab[i] = b
        else:
            sq[a] += ff[j] - ff[i]
            sq[b] += ff[i] - ff[j]
            dsum[a] += d[j] - d[i]
            dsum[b] += d[i] - d[j]
            psum[a] += pop[j] - pop[i]
            psum[b] += pop[i] - pop[j]
            mem[a] = (mem[a] & ~(1 << i)) | (1 << j)
            mem[b] = (mem[b] & ~(1 << j)) | (1 << i)
            lab[i], lab[j] = b, a

    # random numbers drawn up front from the seeded generator
    areas = rng.integers(0, n, size=iterations).tolist()
    r_nb, r_kind, r_j, r_acc = (rng.random(iterations).tolist() for _ in range(4))

    # starting temperature from a sample of feasible worsening proposals (not applied)
    worse = []
    for it in range(min(iterations, 2000)):
        p = propose(areas[it], r_nb[it], r_kind[it], r_j[it])
        if p is not None and p[0] > 1e-12:
            worse.append(p[0])
    if not worse:
        return
    t0 = float(np.median(worse)) / np.log(2.0)
    decay = _ANNEAL_FINAL ** (1.0 / iterations)

    total = sum(cur)
    best_total, best_lab = total, list(lab)
    block = max(iterations // 200, 1)
    temp = t0
    for it in range(iterations):
        p = propose(areas[it], r_nb[it], r_kind[it], r_j[it])
        temp *= decay
        if p is not None:
            delta = p[0]
            if (delta < 0 or r_acc[it] < math.exp(-delta / temp)) and feasible(p):
                apply(p)
                total += delta
        if (it + 1) % block == 0 and total < best_total - 1e-9:
            best_total, best_lab = total, list(lab)
    if total < best_total - 1e-9:
        best_lab = list(lab)
    fresh = _State(prob, np.array(best_lab, dtype=np.int64))
    state.__dict__.update(fresh.__dict__)


def _merge_down(prob, state, target):
    """Merge neighbouring footprints, cheapest first, until ``target`` remain.

    The cost of merging ``a`` and ``b`` is the rise in the within sum of squares (Ward's
    criterion, ``n_a n_b / (n_a + n_b) |mean_a - mean_b|^2``); a merge of two connected
    neighbouring footprints is connected and reaches the threshold. Merges that would exceed
    ``max_population`` are skipped. Returns the number of footprints left.
    """
    cap = np.inf if prob.max_population is None else prob.max_population
    labels = state.labels
    k = len(np.unique(labels))
    while k > target:
        pairs = set()
        for i in range(prob.n):
            for j in prob.nbrs[i]:
                a, b = labels[i], labels[j]
                if a < b:
                    pairs.add((a, b))
        best = None
        for a, b in sorted(pairs):
            if state.pop[a] + state.pop[b] > cap:
                continue
            na, nb = state.cnt[a], state.cnt[b]
            diff = state.sum[a] / na - state.sum[b] / nb
            cost = na * nb / (na + nb) * float(diff @ diff)
            if best is None or cost < best[0] - 1e-12:
                best = (cost, a, b)
        if best is None:
            break
        _, a, b = best
        for i in np.flatnonzero(labels == b).tolist():
            state.move(i, a)
        k -= 1
    # relabel 0..k-1 by smallest member, and rebuild the sums
    order = {}
    for lab in labels.tolist():
        order.setdefault(lab, len(order))
    new = np.array([order[lab] for lab in labels.tolist()], dtype=np.int64)
    fresh = _State(prob, new)
    state.__dict__.update(fresh.__dict__)
    return k


# --------------------------------------------------------------------------------------------
# the subproblem solver
# --------------------------------------------------------------------------------------------
def _members(sets):
    """Member lists (ascending area indices) of bitmask sets: the hot loops work on these."""
    return [list(_bits(m)) for m in sets]


def _round(sets, x, d, members=None):
    """LP-guided greedy: sets by LP value, then fewest areas and least overshoot."""
    members = _members(sets) if members is None else members
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


def _improve(sets, chosen, n, deadline, members=None):
    """Set-packing local search: add any set that fits; swap one chosen set for two that fit.

    Works on an owner array (area -> chosen set or -1) and short member lists, never on
    n-bit masks, so each test costs the size of a set, not of the map. A pair of sets that fits
    in a chosen set plus the unassigned areas always touches that set (the packing is kept
    maximal), so only sets overlapping it are candidates.
    """
    members = _members(sets) if members is None else members
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
    while improved and time.perf_counter() < deadline:
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


def _lp_values(sets, n, *, time_limit, members=None):
    """LP relaxation of set packing by HiGHS' interior-point method (fast on large families)."""
    from scipy.optimize import linprog

    A = _incidence(sets, n)
    res = linprog(-np.ones(len(sets)), A_ub=A, b_ub=np.ones(n), bounds=(0, 1), method="highs-ipm",
                  options={"time_limit": max(float(time_limit), 1.0)})
    return res.x if res.x is not None else np.zeros(len(sets))


def solve_subproblem(prob: Subproblem) -> SubResult:
    """Solve one connected subproblem (total deaths >= threshold) exactly or heuristically."""
    t0 = time.perf_counter()
    deadline = t0 + prob.time_limit
    rng = np.random.default_rng(prob.seed)
    n, T = prob.n, prob.threshold
    relax = relaxation_bound(prob.d, T)
    notes = []
    sets = None
    if prob.exact in ("auto", True):
        budget = None if prob.exact is True else t0 + min(prob.time_limit / 3, 20.0)
        sets = enumerate_minimal_sets(
            prob.d, prob.nbrs, T, pop=prob.pop, max_population=prob.max_population,
            max_sets=prob.max_sets if prob.exact == "auto" else 10**12, deadline=budget,
        )
        if sets is None:
            notes.append(
                f"enumeration stopped above {prob.max_sets:,} minimal sets or its time budget: heuristic path"
            )
    nbr_mask = [0] * n
    for i, row in enumerate(prob.nbrs):
        for j in row:
            nbr_mask[i] |= 1 << j

    lp_value = np.nan
    dl = prob.d.tolist()
    if sets is not None:
        path = "exact"
        if not sets:
            raise ValueError("subproblem has no feasible set")  # the builder checks totals first
        n_sets = len(sets)
        lp = _pack(sets, n, None, time_limit=max(deadline - time.perf_counter(), 5.0), lp_only=True)
        lp_value = float(-lp.fun) if lp.x is not None else np.nan
        x = lp.x if lp.x is not None else np.zeros(len(sets))
        mem = _members(sets)
        chosen_idx = _improve(sets, _round(sets, x, dl, mem), n, deadline, mem)
        lp_floor = int(np.floor(lp_value + 1e-6)) if np.isfinite(lp_value) else int(np.floor(relax + 1e-6))
        if len(chosen_idx) >= lp_floor:
            bound, method = len(chosen_idx), "ilp"  # the LP bound already proves the packing optimal
        elif lp_floor - len(chosen_idx) > 3 and len(sets) > 5_000:
            # a wide LP gap on a large family: HiGHS rarely closes it within the time limit
            bound, method = lp_floor, "lp"
            notes.append(f"LP gap {lp_value - len(chosen_idx):.1f} on {len(sets):,} sets: integer programme not "
                         "attempted; LP-guided packing kept, bound from the LP relaxation")
        else:
            res = _pack(sets, n, None, time_limit=max(min(deadline - time.perf_counter(), prob.ilp_time_limit), 1.0))
            if res.status == 0:
                bound, method = int(round(-res.fun)), "ilp"
                if round(-res.fun) > len(chosen_idx):
                    chosen_idx = np.flatnonzero(res.x > 0.5).tolist()
            else:
                # an unproven incumbent depends on machine speed: keep the deterministic packing
                bound, method = lp_floor, "lp"
                notes.append(
                    f"HiGHS did not prove optimality within ilp_time_limit={prob.ilp_time_limit:g} s; the LP-guided "
                    "packing is kept and the bound is the LP relaxation"
                )
        chosen = [sets[j] for j in chosen_idx]
    else:
        path = "heuristic"
        cand, nbr_mask = _heuristic_sets(prob, rng, per_area=_HEURISTIC_ROUNDS)
        for size in _HEURISTIC_SIZES:  # all small minimal sets that fit a budget join the pool
            small = enumerate_minimal_sets(prob.d, prob.nbrs, T, pop=prob.pop, max_population=prob.max_population,
                                           max_sets=max(2 * n, 20_000), max_size=size)
            if small is not None:
                cand = sorted(set(cand) | set(small))
                break
        n_sets = len(cand)
        x = np.zeros(len(cand))
        if len(cand):
            x = _lp_values(cand, n, time_limit=max(min(deadline - time.perf_counter(), 30.0), 2.0))
        mem = _members(cand)
        chosen_idx = _improve(cand, _round(cand, x, dl, mem), n, deadline, mem)
        chosen = [cand[j] for j in chosen_idx]
        # grow extra footprints from what is left over
        used = 0
        for m in chosen:
            used |= m
        avail = [not (used >> i) & 1 for i in range(n)]
        if any(avail):
            extra, _ = _heuristic_sets(prob, rng, per_area=2, available=avail)
            for j in _greedy_pack(extra, dl, T):
                if extra[j] & used == 0:
                    chosen.append(extra[j])
                    used |= extra[j]
        bound, method = int(np.floor(relax + 1e-6)), "relaxation"

    iterations, descent_total = 0, float("nan")
    labels = np.full(n, -1, dtype=np.int64)
    for k, s in enumerate(sorted(chosen, key=lambda m: (m & -m))):
        for i in _bits(s):
            labels[i] = k
    state = _State(prob, labels)
    stuck = _attach_leftovers(prob, state)
    if stuck:
        notes.append(f"{len(stuck)} areas could not be attached without breaking max_population")
    k = len(chosen)
    if prob.max_footprints is not None and k > prob.max_footprints and not stuck:
        k = _merge_down(prob, state, int(prob.max_footprints))
        notes.append(f"{len(chosen)} footprints merged down to {k} (max_footprints={prob.max_footprints}): "
                     "neighbouring footprints merged, cheapest rise in heterogeneity first")
    if prob.local_search and not stuck:
        _local_search(prob, state, nbr_mask, deadline=time.perf_counter() + 10 * prob.time_limit, rng=rng)
        iterations = anneal_budget(n, prob.anneal_iterations, path)
        descent_total = state.total()
        if iterations > 0 and k > 1:
            descent_labels = state.labels.copy()
            _anneal(prob, state, nbr_mask, rng, iterations)
            _local_search(prob, state, nbr_mask, deadline=time.perf_counter() + 10 * prob.time_limit, rng=rng)
            if state.total() >= descent_total - 1e-9:  # never worse than the descent alone
                state.__dict__.update(_State(prob, descent_labels).__dict__)
    return SubResult(
        labels=state.labels, n_footprints=k, path=path, bound=bound,
        bound_method=method, lp_bound=lp_value, relaxation=relax, n_sets=n_sets,
        objective=state.total(), seconds=time.perf_counter() - t0, notes=notes,
        anneal_iterations=iterations if prob.local_search and not stuck and k > 1 else 0, objective_descent=descent_total,
    )


def _set_cost(features, mask):
    idx = list(_bits(mask))
    f = features[idx]
    return float(((f - f.mean(axis=0)) ** 2).sum())
