"""Minimal feasible sets: bitmask helpers, the ESU enumeration and the area-sum bound.

A set of areas is an integer bitmask (bit ``i`` = area ``i``). Every footprint of a feasible design
contains a *minimal* feasible set (connected, reaches the threshold, no connected proper subset
does); enumerating them (ESU enumeration of connected sets, Wernicke 2006, pruned at the threshold)
gives the family the set-packing programme of :mod:`cdr.footprints._packing` works on.

Connectivity of a bitmask set (:func:`connected`) is the solver's hot-path check (called hundreds of
thousands of times by the enumeration, the descent and the annealing); everywhere else cdr asks
:func:`cdr.data._contiguity.components` (``scipy.sparse.csgraph``), and the tests check the two agree.
"""
from __future__ import annotations

import numpy as np

__all__ = ["EPS", "bits", "connected", "neighbour_masks", "enumerate_minimal_sets", "relaxation_bound"]

EPS = 1e-9


def relaxation_bound(d, threshold) -> float:
    """Dual-feasible bound: y_i = min(1, d_i / T) covers every feasible set, so OPT <= sum(y)."""
    d = np.asarray(d, dtype=float)
    return float(np.minimum(1.0, d / threshold).sum())


class _TooMany(Exception):
    pass


def bits(mask):
    """Indices of the set bits of ``mask``, lowest first."""
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def neighbour_masks(nbrs):
    """Bitmask of each area's neighbours, from neighbour lists."""
    out = [0] * len(nbrs)
    for i, row in enumerate(nbrs):
        for j in row:
            out[i] |= 1 << j
    return out


def connected(mask, nbr_mask) -> bool:
    """Is the area set ``mask`` connected (breadth-first search on bitmasks)? The empty set is."""
    if mask == 0:
        return True
    seen = front = mask & -mask
    while front:
        nxt = 0
        for k in bits(front):
            nxt |= nbr_mask[k]
        nxt &= mask & ~seen
        seen |= nxt
        front = nxt
    return seen == mask


def _is_minimal(mask, total, d, nbr_mask, threshold) -> bool:
    # S is minimal iff no removable (non-cut) area can be dropped while staying >= threshold:
    # any connected proper subset of a connected S lies inside S minus one non-cut area.
    for v in bits(mask):
        if total - d[v] >= threshold - EPS and connected(mask & ~(1 << v), nbr_mask):
            return False
    return True


def enumerate_minimal_sets(d, nbrs, threshold, *, pop=None, max_population=None, max_sets=200_000, max_steps=None,
                           budget=None, max_size=None):
    """All minimal feasible connected sets, as integer bitmasks, or ``None`` when over budget.

    ESU-style: each connected set is generated once, from its lowest-index area; a branch stops
    as soon as it reaches the threshold (a superset of a feasible set is never minimal) or exceeds
    ``max_population``. With ``max_size``, only minimal sets of at most that many areas (a
    candidate pool for the heuristic, not a complete family). The budget is a count: more than
    ``max_sets`` sets or ``max_steps`` extension steps returns None. ``budget`` (a
    :class:`~cdr.footprints._limits.Budget`) adds a clock safety net, recorded when it fires.
    """
    size_cap = np.inf if max_size is None else int(max_size)
    step_cap = np.inf if max_steps is None else int(max_steps)
    d = np.asarray(d, dtype=float).tolist()
    n = len(d)
    popl = None if pop is None else np.asarray(pop, dtype=float).tolist()
    cap = np.inf if max_population is None else float(max_population)
    nbr_mask = neighbour_masks(nbrs)
    big = [d[i] >= threshold - EPS for i in range(n)]
    out = []
    counter = [0]

    def extend(S, closed, ext, v, s, p, size):
        ext = list(ext)
        while ext:
            w = ext.pop()
            s2, S2 = s + d[w], S | (1 << w)
            p2 = p + (popl[w] if popl is not None else 0.0)
            counter[0] += 1
            if counter[0] > step_cap:
                raise _TooMany
            if counter[0] % 20_000 == 0 and budget is not None and budget.expired("enumeration of minimal sets"):
                raise _TooMany
            if p2 > cap:
                continue
            if s2 >= threshold - EPS:
                if _is_minimal(S2, s2, d, nbr_mask, threshold):
                    out.append(S2)
                    if len(out) > max_sets:
                        raise _TooMany
                continue
            if size + 1 >= size_cap:
                continue
            new = nbr_mask[w] & ~closed
            add = [k for k in bits(new) if k > v and not big[k]]
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
