"""The heuristic path: candidate minimal sets grown greedily from every area, and a greedy packing.

Used when the minimal sets are too many to enumerate (``exact="auto"`` above ``max_sets``, or
``exact=False``): randomised growth from each area (seeded), minimalised, plus every small minimal
set that fits a count budget; the LP-guided packing of :mod:`cdr.footprints._packing` then picks
disjoint sets, and what is left over seeds further footprints.
"""
from __future__ import annotations

import numpy as np

from cdr.footprints._sets import EPS, bits, connected, neighbour_masks

__all__ = ["HEURISTIC_ROUNDS", "HEURISTIC_SIZES", "heuristic_sets", "greedy_pack"]

#: Heuristic candidate pool: randomised growth rounds per area, and the sizes (largest first) of
#: the complete small minimal sets added to the pool when they fit the budget.
HEURISTIC_ROUNDS = 3
HEURISTIC_SIZES = (5, 4, 3, 2)


def _minimalise(members, d, nbr_mask, threshold):
    mask = 0
    for i in members:
        mask |= 1 << i
    total = sum(d[i] for i in members)
    while True:
        best, best_d = None, -1.0
        for v in bits(mask):
            if total - d[v] >= threshold - EPS and d[v] > best_d and connected(mask & ~(1 << v), nbr_mask):
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
    while total < threshold - EPS:
        cands = [u for u in links if p + pop[u] <= cap]
        if not cands:
            return None
        finishing = [u for u in cands if total + d[u] >= threshold - EPS]
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


def heuristic_sets(prob, rng, *, per_area, available=None):
    n = prob.n
    d = prob.d.tolist()
    pop = prob.pop.tolist()
    cap = np.inf if prob.max_population is None else prob.max_population
    nbr_mask = neighbour_masks(prob.nbrs)
    if available is None:
        available = [True] * n
    sets = set()
    for r in range(per_area):
        noise = 0.0 if r == 0 else 0.5 * r
        for start in rng.permutation(n).tolist():
            if not available[start] or pop[start] > cap:
                continue
            if d[start] >= prob.threshold - EPS:
                sets.add(1 << start)
                continue
            s = _grow(start, d, pop, cap, prob.nbrs, nbr_mask, prob.threshold, available, rng, noise)
            if s is not None:
                sets.add(s)
    return sorted(sets), nbr_mask


def greedy_pack(sets, d, threshold):
    # fewest areas and least overshoot first
    order = sorted(range(len(sets)), key=lambda j: (bin(sets[j]).count("1"), sum(d[i] for i in bits(sets[j]))))
    used, chosen = 0, []
    for j in order:
        if sets[j] & used == 0:
            chosen.append(j)
            used |= sets[j]
    return chosen
