"""Simulated annealing over area moves and swaps: escaping the descent's local optima at a fixed count."""
from __future__ import annotations

import math

import numpy as np

from cdr.footprints._objective import sse
from cdr.footprints._sets import bits, connected, EPS

__all__ = ["anneal_budget", "anneal"]

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


def anneal(prob, state, nbr_mask, rng, iterations):
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
    T = prob.threshold - EPS
    cap = np.inf if prob.max_population is None else prob.max_population
    lab = state.labels.tolist()
    K = max(lab) + 1
    if K < 2:
        return
    cnt, s, sq, dsum, psum = state.as_lists()  # fast list mirrors of the one bookkeeping (State)
    mem = [0] * K
    for i, a in enumerate(lab):
        mem[a] |= 1 << i

    cost = sse  # the one objective formula (cdr.footprints._objective)

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
        cand = [j for j in bits(mem[b]) if nbr_mask[j] & mem[a]]
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
            return connected(mem[a] & ~(1 << i), nbr_mask)
        ma = (mem[a] & ~(1 << i)) | (1 << j)
        mb = (mem[b] & ~(1 << j)) | (1 << i)
        return connected(ma, nbr_mask) and connected(mb, nbr_mask)

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
    state.reset(best_lab)
