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

Modules, one algorithm each: :mod:`~cdr.footprints._sets` (enumeration, bitmask connectivity),
:mod:`~cdr.footprints._packing` (LP/ILP and the certificate), :mod:`~cdr.footprints._greedy` (the
heuristic candidates), :mod:`~cdr.footprints._descent` (moves, swaps, merges),
:mod:`~cdr.footprints._anneal` (simulated annealing), all over one objective bookkeeping
(:mod:`~cdr.footprints._objective`). This module only runs them in order.

Every loop is bounded by a count, so the design depends on the data, the options and the seed;
``exact="auto"`` chooses its path by a count (``max_sets`` minimal sets, and at most
``STEPS_PER_SET * max_sets`` enumeration steps). Clocks are safety nets and HiGHS time limits;
whenever one changes the course it is listed in ``SubResult.clock_events``
(:mod:`~cdr.footprints._limits`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cdr.footprints._anneal import anneal, anneal_budget
from cdr.footprints._descent import attach_leftovers, local_search, merge_down
from cdr.footprints._greedy import HEURISTIC_ROUNDS, HEURISTIC_SIZES, greedy_pack, heuristic_sets
from cdr.footprints._limits import Budget, now
from cdr.footprints._objective import State
from cdr.footprints._packing import certify, improve, lp_round, lp_values, members_of
from cdr.footprints._sets import bits, enumerate_minimal_sets, neighbour_masks, relaxation_bound

__all__ = ["Subproblem", "SubResult", "solve_subproblem", "enumerate_minimal_sets", "relaxation_bound", "anneal_budget",
           "STEPS_PER_SET"]

#: Enumeration steps allowed per set of the ``max_sets`` budget under ``exact="auto"`` (a count:
#: England at 60 takes about 40 steps per minimal set, a 400-cell lattice about 60).
STEPS_PER_SET = 500


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
    lp_bound: float  # LP relaxation value (NaN when not computed or not solved to optimality)
    relaxation: float  # n_big + sum(small)/threshold
    n_sets: int  # minimal sets enumerated (exact) or candidates generated (heuristic)
    objective: float
    seconds: float
    notes: list = field(default_factory=list)
    anneal_iterations: int = 0  # simulated-annealing proposals made
    objective_descent: float = float("nan")  # objective after the descent alone (before annealing)
    proven: bool = False  # the count equals a bound proven by a programme solved to optimality
    clock_events: list = field(default_factory=list)  # where a clock changed the course (empty: counts only)


def solve_subproblem(prob: Subproblem) -> SubResult:
    """Solve one connected subproblem (total deaths >= threshold) exactly or heuristically."""
    t0 = now()
    budget = Budget(prob.time_limit)
    rng = np.random.default_rng(prob.seed)
    n, T = prob.n, prob.threshold
    relax = relaxation_bound(prob.d, T)
    notes = []
    sets = None
    if prob.exact in ("auto", True):
        auto = prob.exact == "auto"
        sets = enumerate_minimal_sets(
            prob.d, prob.nbrs, T, pop=prob.pop, max_population=prob.max_population,
            max_sets=prob.max_sets if auto else 10**12, max_steps=STEPS_PER_SET * prob.max_sets if auto else None,
        )
        if sets is None:
            notes.append(f"enumeration stopped above {prob.max_sets:,} minimal sets (or {STEPS_PER_SET * prob.max_sets:,} "
                         "enumeration steps): heuristic path")
    nbr_mask = neighbour_masks(prob.nbrs)
    lp_value = np.nan
    dl = prob.d.tolist()
    proven = False
    if sets is not None:
        path = "exact"
        if not sets:
            raise ValueError("subproblem has no feasible set")  # the builder checks totals first
        n_sets = len(sets)
        cert = certify(sets, n, dl, relax, budget=budget, ilp_time_limit=prob.ilp_time_limit)
        notes += cert.notes
        bound, method, lp_value, proven = cert.bound, cert.bound_method, cert.lp_value, cert.proven
        chosen = [sets[j] for j in cert.chosen]
    else:
        path = "heuristic"
        cand, _ = heuristic_sets(prob, rng, per_area=HEURISTIC_ROUNDS)
        for size in HEURISTIC_SIZES:  # all small minimal sets that fit a budget join the pool
            small = enumerate_minimal_sets(prob.d, prob.nbrs, T, pop=prob.pop, max_population=prob.max_population,
                                           max_sets=max(2 * n, 20_000), max_size=size)
            if small is not None:
                cand = sorted(set(cand) | set(small))
                break
        n_sets = len(cand)
        x = np.zeros(len(cand))
        if len(cand):
            x = lp_values(cand, n, time_limit=max(min(budget.remaining(), 30.0), 2.0), budget=budget)
        mem = members_of(cand)
        chosen_idx = improve(cand, lp_round(cand, x, dl, mem), n, mem, budget=budget)
        chosen = [cand[j] for j in chosen_idx]
        # grow extra footprints from what is left over
        used = 0
        for m in chosen:
            used |= m
        avail = [not (used >> i) & 1 for i in range(n)]
        if any(avail):
            extra, _ = heuristic_sets(prob, rng, per_area=2, available=avail)
            for j in greedy_pack(extra, dl, T):
                if extra[j] & used == 0:
                    chosen.append(extra[j])
                    used |= extra[j]
        bound, method = int(np.floor(relax + 1e-6)), "relaxation"
        proven = len(chosen) >= bound

    iterations, descent_total = 0, float("nan")
    labels = np.full(n, -1, dtype=np.int64)
    for k, s in enumerate(sorted(chosen, key=lambda m: (m & -m))):
        for i in bits(s):
            labels[i] = k
    state = State(prob, labels)
    stuck = attach_leftovers(prob, state)
    if stuck:
        notes.append(f"{len(stuck)} areas could not be attached without breaking max_population")
    k = len(chosen)
    if prob.max_footprints is not None and k > prob.max_footprints and not stuck:
        k = merge_down(prob, state, int(prob.max_footprints))
        proven = False
        notes.append(f"{len(chosen)} footprints merged down to {k} (max_footprints={prob.max_footprints}): "
                     "neighbouring footprints merged, cheapest rise in heterogeneity first")
    if prob.local_search and not stuck:
        # the descent's safety clock: generous, and recorded if it ever fires
        local_search(prob, state, nbr_mask, rng=rng, budget=Budget(10 * prob.time_limit, budget.events))
        iterations = anneal_budget(n, prob.anneal_iterations, path)
        descent_total = state.total()
        if iterations > 0 and k > 1:
            descent_labels = state.labels.copy()
            anneal(prob, state, nbr_mask, rng, iterations)
            local_search(prob, state, nbr_mask, rng=rng, budget=Budget(10 * prob.time_limit, budget.events))
            if state.total() >= descent_total - 1e-9:  # never worse than the descent alone
                state.reset(descent_labels)
    return SubResult(
        labels=state.labels, n_footprints=k, path=path, bound=bound,
        bound_method=method, lp_bound=lp_value, relaxation=relax, n_sets=n_sets,
        objective=state.total(), seconds=now() - t0, notes=notes,
        anneal_iterations=iterations if prob.local_search and not stuck and k > 1 else 0, objective_descent=descent_total,
        proven=bool(proven and not stuck), clock_events=list(budget.events),
    )
