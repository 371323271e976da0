"""Improving a design at a fixed count: attaching leftover areas, the descent (area moves and
pairwise swaps), and merging footprints down to a requested count (Ward's criterion).

Every step keeps every rule: footprints stay connected, at or above the threshold and within
``max_population``. All work on the one objective bookkeeping, :class:`~cdr.footprints._objective.State`.
"""
from __future__ import annotations

import numpy as np

from cdr.footprints._sets import EPS, connected, neighbour_masks

__all__ = ["MAX_PASSES", "attach_leftovers", "move_pass", "swap_pass", "local_search", "merge_down"]

#: Passes of the local search (moves, then swaps when no move helps): a count, not a clock.
MAX_PASSES = 40


def attach_leftovers(prob, state):
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




def move_pass(prob, state, members, nbr_mask, order, cap):
    """One pass of single-area moves (donor stays connected and >= threshold). True if any."""
    labels = state.labels
    improved = False
    for i in order:
        a = labels[i]
        if state.cnt[a] <= 1 or state.d[a] - prob.d[i] < prob.threshold - EPS:
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
        if best is None or not connected(members[a] & ~(1 << i), nbr_mask):
            continue
        b = best[1]
        members[a] &= ~(1 << i)
        members[b] |= 1 << i
        state.move(i, b)
        improved = True
    return improved


def swap_pass(prob, state, members, cap, nbr_mask=None):
    """One pass of swaps: a boundary area of footprint ``a`` exchanged with one of footprint ``b``.

    For each pair of neighbouring footprints, the swap that lowers the objective most while both
    footprints stay connected, at or above the threshold and within ``max_population`` is made.
    The number of footprints and their sizes never change. Footprint sizes stay equal, so the
    change in ``a``'s within sum of squares is ``f_j.f_j - f_i.f_i - (2 s_a.g + g.g) / n_a`` with
    ``g = f_j - f_i`` (and the mirror for ``b``).
    """
    if nbr_mask is None:
        nbr_mask = neighbour_masks(prob.nbrs)
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
        ok = (state.d[a] + dd >= T - EPS) & (state.d[b] - dd >= T - EPS) & (delta < -1e-9)
        if np.isfinite(cap):
            dp = prob.pop[jb][None, :] - prob.pop[ia][:, None]
            ok &= (state.pop[a] + dp <= cap) & (state.pop[b] - dp <= cap)
        if not ok.any():
            continue
        cand = np.argwhere(ok)
        for r, c in cand[np.argsort(delta[ok], kind="stable")].tolist():
            i, j = side_a[r], side_b[c]
            mask_a = (members[a] & ~(1 << i)) | (1 << j)
            mask_b = (members[b] & ~(1 << j)) | (1 << i)
            if connected(mask_a, nbr_mask) and connected(mask_b, nbr_mask):
                members[a] = (members[a] & ~(1 << i)) | (1 << j)
                members[b] = (members[b] & ~(1 << j)) | (1 << i)
                state.move(i, b)
                state.move(j, a)
                improved = True
                break
    return improved


def local_search(prob, state, nbr_mask, *, rng, budget=None):
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
    while passes < MAX_PASSES and not (budget is not None and budget.expired("the descent")):
        passes += 1
        moved = move_pass(prob, state, members, nbr_mask, order, cap)
        if moved:
            continue
        if not swap_pass(prob, state, members, cap, nbr_mask):
            break



def merge_down(prob, state, target):
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
    state.reset(new)
    return k
