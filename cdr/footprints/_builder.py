"""Build footprints: the max-p problem on England's LAs (or any areas) with the rules users ask for.

The builder turns a table of areas into independent connected subproblems (one per nesting unit
and connected group of unlocked areas), solves each with :mod:`cdr.footprints._solver` (exact
set packing over minimal feasible sets where it fits, a heuristic with a reported gap where it
does not), handles infeasible groups (error, or a documented merge), and assembles a
:class:`~cdr.footprints.FootprintDesign`.
"""
from __future__ import annotations

import inspect
import warnings

import numpy as np
import pandas as pd

from cdr import _validate as check
from cdr._base import Estimator, version_stamp
from cdr.errors import ArgumentError, ArgumentTypeError, CdrWarning, DataError, InfeasibleFootprintError
from cdr.footprints._checks import violations
from cdr.footprints._design import FootprintDesign
from cdr.footprints._limits import now
from cdr.footprints._problem import (
    DEFAULT_OBJECTIVE,
    _describe,
    _infeasible_frame,
    _infeasible_message,
    chance_threshold,
    check_params,
    prepare_problem,
)
from cdr.footprints._solver import solve_subproblem

__all__ = [
    "FootprintBuilder", "build_footprints", "chance_threshold", "expected_deaths_from_records", "DEFAULT_OBJECTIVE",
]


def expected_deaths_from_records(records, areas=None, *, years=None) -> pd.DataFrame:
    """Deaths per year per LA observed in child death records, as a ``deaths`` input for the builder.

    Parameters
    ----------
    records : pandas.DataFrame
        One row per death with ``la_code`` and ``year`` (or ``date_of_death``).
    areas : DataFrame, optional
        Areas whose codes to report (areas without a death get 0); default: England 2023.
    years : iterable of int, optional
        Calendar years to use; default every year in the records. Deaths are divided by the
        number of years.

    Returns
    -------
    pandas.DataFrame
        ``la_code``, ``expected_deaths`` (deaths per year), ``n_years``.

    Examples
    --------
    >>> rec = pd.DataFrame({"la_code": ["E06000001", "E06000001"], "year": [2020, 2021]})
    >>> expected_deaths_from_records(rec).set_index("la_code").loc["E06000001", "expected_deaths"]
    np.float64(1.0)
    """
    caller = "expected_deaths_from_records"
    check.frame(records, "records", caller, columns=["la_code"])
    if areas is not None:
        check.frame(areas, "areas", caller, columns=["la_code"])
    if years is not None:
        years = check.years(years, "years", caller)
    if "year" in records.columns:
        year = pd.to_numeric(records["year"], errors="coerce")
    elif "date_of_death" in records.columns:
        year = pd.to_datetime(records["date_of_death"], errors="coerce").dt.year
    else:
        raise ArgumentError("expected_deaths_from_records: 'records' need a 'year' or 'date_of_death' column; "
                            f"they have {list(records.columns)[:15]}")
    keep = year.notna()
    if years is not None:
        keep &= year.isin(years)
    else:
        years = sorted(set(year[keep].astype(int)))
    if not years:
        raise DataError("expected_deaths_from_records: no records in the chosen years"
                        + (f" {years[0]}-{years[-1]}" if years else "") + "; choose years the records cover")
    if areas is None:
        from cdr.data import la_codes

        codes = la_codes(2023)
    else:
        codes = sorted(areas["la_code"].astype(str))
    counts = records.loc[keep, "la_code"].astype(str).value_counts()
    return pd.DataFrame(
        {"la_code": codes, "expected_deaths": [counts.get(c, 0) / len(years) for c in codes], "n_years": len(years)}
    )


class FootprintBuilder(Estimator):
    """Build child death review footprints: as many as possible, each reaching the threshold.

    Solves the max-p regionalisation problem: partition contiguous areas into the largest number of
    connected footprints whose expected deaths a year reach ``min_deaths`` (or, with
    ``min_probability``, reach it in a Poisson year with that probability), then, among designs with
    that number, lower the within-footprint dissimilarity (``objective``).

    Parameters
    ----------
    min_deaths : float, default 60
        Deaths a year each footprint should review (statutory guidance: "at least 60").
    min_probability : float, optional
        Chance constraint: each footprint's expected deaths must reach the ``lam`` at which
        ``P(Poisson(lam) >= min_deaths) >= min_probability`` (:func:`chance_threshold`). If ``areas``
        has a ``predictive_var`` column (:func:`cdr.reference.expected_deaths` with ``interval=``),
        each footprint's count is instead negative binomial with its own areas' posterior
        predictive variance: the constraint is applied as a sufficient linear rule on per-area
        weights (``chance_weights`` in ``cdr.footprints._problem``), recorded in
        ``design.info["chance"]``.
    nest_within : str, optional
        Column (e.g. ``"region_code"``, ``"police_force_area"``) that footprints must not cross.
        Each unit is solved independently.
    max_population : float, optional
        Largest child population a footprint may have (uses ``child_population``).
    lock : Series, dict, DataFrame or FootprintDesign, optional
        Partial assignment ``la_code -> footprint_id`` kept exactly as given (existing partnerships);
        the builder designs the rest.
    contiguity : libpysal W or Graph, cdr.data.Contiguity, dict or networkx.Graph, optional
        Neighbour graph whose ids are the areas' ``la_code``, the frame's index (as
        ``libpysal.weights.Queen.from_dataframe(areas, use_index=True)`` or
        ``libpysal.graph.Graph.build_contiguity(areas)`` give) or row positions 0..n-1; tried in
        that order and stated in ``design.info["contiguity"]["keys"]``. A graph with more than
        one connected component is warned about. Default: the England graph of
        :func:`cdr.data.contiguity` (gap tolerance plus named crossings and island links), or the
        graph of the areas' own polygons when they are not English LAs.
    objective : dict, optional
        ``{"attributes": [...], "compactness": w}``; default :data:`DEFAULT_OBJECTIVE`
        (IMD average rank and death rate, standardised; compactness weight 0.25).
    on_infeasible : {"raise", "merge"}, default "raise"
        What to do when a group of areas cannot reach the threshold (an area alone in its nesting
        unit, a small island): raise :class:`~cdr.errors.InfeasibleFootprintError` naming the
        areas, or merge the group with the neighbouring footprint that fits best (the merge is
        listed in ``design.notes`` and ``design.table()``, and warned about).
    exact : {"auto", True, False}, default "auto"
        ``"auto"`` enumerates minimal sets up to ``max_sets`` per subproblem (and at most
        ``STEPS_PER_SET * max_sets`` enumeration steps: counts, not a clock) and solves the
        set-packing programme (exact path, proven bound); above the budget it switches to the fast
        heuristic. On England at 60, 80 or 100 deaths a year, with or without ``min_probability``,
        auto is exact (1,268 to 16,227 sets); on a 400-cell lattice (26,686 sets) it is the
        heuristic. True always enumerates; False always uses the heuristic. ``design.path`` says
        which path ran. A clock can change the result only when ``time_limit`` (a safety net) or
        ``ilp_time_limit`` fires or an LP stops unsolved; each such event is listed in
        ``design.info["clock_events"]`` (empty: the design depends on counts and the seed only).
    max_sets : int, default 20_000
        Enumeration budget (minimal sets per subproblem) of ``exact="auto"``.
    time_limit : float, default 60
        Safety net in seconds per subproblem (LP, packing search; the descent gets ten times
        this). Recorded in ``info["clock_events"]`` if it ever fires.
    ilp_time_limit : float, default 20
        Seconds HiGHS may spend proving the packing optimal when the LP bound is not tight. An
        unproven solution is never used (it would depend on machine speed): the LP-guided packing
        is kept and its gap to the LP bound reported.
    max_footprints : int, optional
        Build at most this many footprints: after maximising the count, neighbouring footprints
        are merged, the pair whose merge raises heterogeneity least first (Ward's criterion), and
        the local search then runs at that count. For comparisons at equal count (e.g. with another
        method's design); a merge of two valid footprints is valid, so every rule still holds.
        Needs a single subproblem (no ``nest_within``, no ``lock``, a connected graph). The merge
        is stated in ``design.notes``; ``proven_optimal`` is then False.

    Notes
    -----
    ``design.info["proven_optimal"]`` is True only when the count equals a bound proven by a
    programme solved to optimality and the design keeps every rule set here;
    ``info["optimal_for"]`` names the problem the count is optimal for (``"the problem as
    posed"``, or the merged problem after ``on_infeasible="merge"``), and
    ``info["rule_violations"]`` lists every rule the design breaks (:func:`check_design`).
    anneal_iterations : int, optional
        Budget of the simulated-annealing phase that lowers the secondary objective after the
        descent (area moves and swaps between neighbouring footprints; a worse design is accepted
        with the Metropolis probability, so the search escapes the descent's local optima). Every
        proposal keeps every rule: contiguity, the threshold (or the chance threshold), the
        population cap and the number of footprints. The budget is a count of proposals, never a
        clock, so the design depends on ``seed`` only. Default ``min(4000 n, 1_000_000)`` on the
        exact path and ``min(25 n, 1_000_000)`` on the heuristic path for a subproblem of ``n``
        areas (England: 612,000 proposals, about 0.7 s); 0 switches it off. The best design of
        the descent and of the annealing is kept, so annealing never makes the objective worse;
        ``design.info["subproblems"]`` reports ``objective_descent`` and ``objective``.
    seed : int or numpy.random.Generator, default 0

    Examples
    --------
    >>> import libpysal
    >>> w = libpysal.weights.lat2W(4, 4, rook=True, id_type="string")
    >>> ids = [str(i) for i in w.id_order]
    >>> areas = pd.DataFrame({"la_code": ids, "expected_deaths": 20.0})
    >>> design = FootprintBuilder(min_deaths=60, contiguity=w, objective={"attributes": []}).fit(areas)
    >>> design.n_footprints, design.upper_bound, design.path
    (5, 5, 'exact')
    """

    def __init__(self, min_deaths=60, *, min_probability=None, nest_within=None, max_population=None, lock=None,
                 contiguity=None, objective=None, on_infeasible="raise", exact="auto", max_sets=20_000,
                 time_limit=60.0, ilp_time_limit=20.0, max_footprints=None, anneal_iterations=None, seed=0):
        self.min_deaths = min_deaths
        self.min_probability = min_probability
        self.nest_within = nest_within
        self.max_population = max_population
        self.lock = lock
        self.contiguity = contiguity
        self.objective = objective
        self.on_infeasible = on_infeasible
        self.exact = exact
        self.max_sets = max_sets
        self.time_limit = time_limit
        self.ilp_time_limit = ilp_time_limit
        self.max_footprints = max_footprints
        self.anneal_iterations = anneal_iterations
        self.seed = seed
        check_params(self, "FootprintBuilder")

    # ------------------------------------------------------------------------------------
    def fit(self, areas=None, deaths="expected_deaths", *, executor=None, progress=False) -> FootprintDesign:
        """Build the design.

        Parameters
        ----------
        areas : DataFrame or GeoDataFrame, optional
            One row per area with ``la_code``; default :func:`cdr.data.england_areas`. Row order
            never changes the result.
        deaths : str, Series or DataFrame, default "expected_deaths"
            Expected deaths a year per area: a column of ``areas``, a Series indexed by
            ``la_code`` or a frame with ``la_code`` and ``expected_deaths``. If the column is
            missing, :func:`cdr.reference.expected_deaths` supplies it (England LAs).
        executor : concurrent.futures.Executor, optional
            Solves independent subproblems (nesting units) in parallel.
        progress : bool, default False
            Show a progress bar over subproblems.

        Returns
        -------
        FootprintDesign
        """
        check.executor(executor, "executor", "FootprintBuilder.fit")
        check.flag(progress, "progress", "FootprintBuilder.fit")
        t0 = now()
        prep = prepare_problem(self, areas, deaths)
        self.threshold_ = prep["threshold"]
        subs, infeasible = prep["subproblems"], prep["infeasible"]
        if infeasible and self.on_infeasible == "raise":
            raise InfeasibleFootprintError(_infeasible_message(infeasible, prep), areas=_infeasible_frame(infeasible, prep))
        from tqdm.std import tqdm  # plain text bar: no ipywidgets needed in notebooks

        mapper = executor.map if executor is not None else map
        results = list(tqdm(mapper(solve_subproblem, [s[1] for s in subs]), total=len(subs),
                            disable=not progress, desc="footprints", unit="subproblem"))
        design = _assemble(self, prep, subs, results, infeasible, seconds=None)
        design.info["seconds"] = now() - t0
        self.design_ = design
        return design


def build_footprints(areas=None, deaths="expected_deaths", *, min_deaths=60, executor=None, progress=False, **kwargs):
    """One-call form of :class:`FootprintBuilder` (same arguments); returns the ``FootprintDesign``.

    ``build_footprints(areas, deaths, min_deaths=m, **kwargs)`` is
    ``FootprintBuilder(m, **kwargs).fit(areas, deaths)``.

    Parameters
    ----------
    areas : DataFrame or GeoDataFrame, optional
        One row per area with ``la_code``; default :func:`cdr.data.england_areas`.
    deaths : str, Series or DataFrame, default "expected_deaths"
        Expected deaths a year per area, as in :meth:`FootprintBuilder.fit`.
    min_deaths : float, default 60
        Deaths a year each footprint should review (statutory guidance: "at least 60").
    executor : concurrent.futures.Executor, optional
        Solves independent subproblems (nesting units) in parallel.
    progress : bool, default False
        Show a progress bar over subproblems.
    **kwargs
        Any other keyword argument of :class:`FootprintBuilder` (``contiguity``, ``nest_within``,
        ``min_probability``, ``seed``, ...).

    Returns
    -------
    FootprintDesign
        The built design (``n_footprints``, ``upper_bound``, ``path``, ``table()``, ...).

    Examples
    --------
    A 3 x 3 lattice of areas with 30 expected deaths a year each (270 in all, so at most 4
    footprints of 60):

    >>> import libpysal
    >>> w = libpysal.weights.lat2W(3, 3, rook=True, id_type="string")
    >>> areas = pd.DataFrame({"la_code": [str(i) for i in w.id_order], "expected_deaths": 30.0})
    >>> design = build_footprints(areas, min_deaths=60, contiguity=w)
    >>> design.n_footprints, design.upper_bound
    (4, 4)
    >>> bool((design.table()["expected_deaths"] >= 60).all())
    True
    """
    allowed = [p for p in inspect.signature(FootprintBuilder).parameters if p != "min_deaths"]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ArgumentTypeError(f"build_footprints: unknown argument(s) {unknown}; FootprintBuilder takes {allowed}.")
    return FootprintBuilder(min_deaths, **kwargs).fit(areas, deaths, executor=executor, progress=progress)


# ----------------------------------------------------------------------------------------------
# assembling the design
# ----------------------------------------------------------------------------------------------
def _assemble(builder, prep, subs, results, infeasible, seconds):
    codes, pos = prep["codes"], prep["pos"]
    n = len(codes)
    group = np.full(n, -1, dtype=np.int64)
    gid = 0
    rows = []
    notes = []
    clock_events = []
    for (comp, sub), res in zip(subs, results):
        if res.notes:
            notes += [f"subproblem {sub.key}: {t}" for t in res.notes]
        clock_events += [f"subproblem {sub.key}: {t}" for t in res.clock_events]
        for k, lab in zip(comp, res.labels.tolist()):
            if lab < 0:
                raise InfeasibleFootprintError(
                    f"{_describe(prep, k)} could not be attached to a footprint within max_population="
                    f"{builder.max_population}; raise max_population or use nest_within/lock differently",
                    areas=pd.DataFrame({"la_code": [codes[k]]}),
                )
            group[k] = gid + lab
        gid += res.n_footprints
        rows.append({
            "subproblem": sub.key, "unit": prep["unit"][comp[0]], "n_areas": len(comp),
            "expected_deaths": float(prep["areas"]["expected_deaths"].to_numpy(float)[comp].sum()), "n_footprints": res.n_footprints, "upper_bound": res.bound,
            "bound_method": res.bound_method, "proven": res.proven, "lp_bound": res.lp_bound,
            "relaxation_bound": res.relaxation, "path": res.path, "n_sets": res.n_sets,
            "anneal_iterations": res.anneal_iterations, "objective_descent": res.objective_descent,
            "objective": res.objective, "seconds": res.seconds, "clock_events": len(res.clock_events),
        })
    locked_names = {}
    for code, lab in sorted(prep["lock"].items()):
        if lab not in locked_names:
            locked_names[lab] = gid
            gid += 1
        group[pos[code]] = locked_names[lab]
    n_locked = len(locked_names)
    locked_groups = set(locked_names.values())
    merges = _merge_infeasible(prep, group, infeasible) if infeasible else []
    # names: locked keep theirs; new footprints F001... ordered by their smallest la_code
    firsts = {}
    for k in range(n):
        firsts.setdefault(group[k], codes[k])
    new_groups = sorted((g for g in firsts if g not in locked_groups), key=lambda g: firsts[g])
    taken = set(locked_names)
    names, counter = {g: lab for lab, g in locked_names.items()}, 0
    width = max(3, len(str(len(new_groups))))
    for g in new_groups:
        while True:
            counter += 1
            name = f"F{counter:0{width}d}"
            if name not in taken:
                break
        names[g] = name
    labels = pd.Series([names[g] for g in group], index=pd.Index(codes, name="la_code"), name="footprint_id")
    merged = _merge_notes(prep, merges, names, notes)
    sub_table = pd.DataFrame(rows)
    n_fp = int(labels.nunique())
    bound_sub = int(sub_table["upper_bound"].sum()) if len(sub_table) else 0
    lp_sub = float(sub_table["lp_bound"].to_numpy(float).sum()) if len(sub_table) else 0.0  # NaN if any LP unsolved
    methods = set(sub_table["bound_method"]) if len(sub_table) else {"ilp"}
    paths = set(sub_table["path"]) if len(sub_table) else {"exact"}
    all_proven = bool(sub_table["proven"].all()) if len(sub_table) else True
    upper = bound_sub + n_locked
    info = {
        "n_footprints": n_fp,
        "upper_bound": upper,
        "bound_method": "ilp" if methods == {"ilp"} else ("lp" if "relaxation" not in methods else "relaxation"),
        "lp_bound": lp_sub + n_locked if np.isfinite(lp_sub) else float("nan"),
        "relaxation_bound": float(sub_table["relaxation_bound"].sum()) + n_locked if len(sub_table) else float(n_locked),
        "path": "exact" if paths == {"exact"} else ("heuristic" if paths == {"heuristic"} else "mixed"),
        "threshold": prep["threshold"],
        "min_deaths": prep["min_deaths"],
        "min_probability": builder.min_probability,
        "chance": dict(prep["chance"]),
        "objective": prep["objective"],
        "deaths_source": prep["source"],
        "contiguity": dict(prep["graph_report"]),
        "n_locked_footprints": n_locked,
        "merged": merged,
        "clock_events": clock_events,
        "subproblems": sub_table,
    }
    params = {k: v for k, v in builder.get_params().items() if k not in ("lock", "contiguity")}
    params["lock"] = None if not prep["lock"] else f"{len(prep['lock'])} areas in {n_locked} footprints"
    params["contiguity"] = "default (cdr.data.contiguity)" if builder.contiguity is None else type(builder.contiguity).__name__
    params["seed"] = prep["seed"] if not isinstance(builder.seed, (int, np.integer)) else int(builder.seed)
    meta = {**version_stamp(), "vintage": _vintage(codes)}
    design = FootprintDesign(
        labels, prep["areas"], params=params, info=info, notes=notes, neighbors=prep["graph"], meta=meta,
        locked=sorted(prep["lock"]),
    )
    # what was proven, and for which problem: every rule the user set is checked on the result
    broken = violations(design)
    broken = broken[broken["check"] != "coverage"]
    count_proven = bool(all_proven and upper == n_fp - _merged_footprints_without_bound(merges, names))
    design.info["rule_violations"] = [f"{r.check}: {r.footprint_id} {r.detail}" for r in broken.itertuples()]
    design.info["proven_optimal"] = bool(count_proven and broken.empty and not merges)
    if count_proven and not merges:
        design.info["optimal_for"] = "the problem as posed"
    elif count_proven:
        design.info["optimal_for"] = (
            f"the merged problem: the {bound_sub} footprints of the areas that can reach the threshold within the "
            f"rules, with {len(merges)} group(s) that cannot merged into neighbouring footprints "
            f"(on_infeasible='merge'); not a solution of the problem as posed")
    else:
        design.info["optimal_for"] = None
    if merges:
        warnings.warn(
            f"{len(merges)} group(s) of areas could not reach the threshold and were merged with a neighbouring "
            f"footprint (on_infeasible='merge'), breaking {len(broken)} rule(s) you set: "
            + "; ".join(f"{k} -> {v}" for k, v in list(merged.items())[:5]),
            CdrWarning, stacklevel=3,
        )
    return design


def _merged_footprints_without_bound(merges, names):
    """Footprints that exist only because an infeasible group was kept on its own (not in any bound)."""
    return len({names[m["group"]] for m in merges if m["own"]})


def _merge_infeasible(prep, group, infeasible):
    """Merge each infeasible group into the neighbouring footprint whose dissimilarity rises least.

    Returns one record per group: its members, total, unit, the footprint (group number) it joined,
    the members that footprint had before, and whether it was kept on its own (no neighbour).
    """
    codes, pos, graph = prep["codes"], prep["pos"], prep["graph"]
    feats = prep["features"]
    merges = []
    pending = list(infeasible)
    while pending:
        progress = False
        for g in list(pending):
            mem = g["members"]
            options = sorted({group[pos[c]] for k in mem for c in graph[codes[k]] if group[pos[c]] >= 0} - {-1})
            if not options:
                continue
            best = None
            for lab in options:
                idx = np.flatnonzero(group == lab)
                before = ((feats[idx] - feats[idx].mean(0)) ** 2).sum() if len(idx) else 0.0
                allx = np.concatenate([idx, mem])
                after = ((feats[allx] - feats[allx].mean(0)) ** 2).sum()
                if best is None or after - before < best[0] - 1e-12:
                    best = (after - before, lab)
            target_before = np.flatnonzero(group == best[1]).tolist()
            for k in mem:
                group[k] = best[1]
            merges.append({**g, "group": int(best[1]), "into": target_before, "own": False})
            pending.remove(g)
            progress = True
        if not progress:
            # isolated groups with no footprint next to them: each becomes its own (below-threshold) footprint
            start = int(group.max()) + 1
            for n, g in enumerate(pending):
                for k in g["members"]:
                    group[k] = start + n
                merges.append({**g, "group": start + n, "into": [], "own": True})
            break
    return merges


def _merge_notes(prep, merges, names, notes):
    """Notes and the ``merged`` map, naming each group's real target: the final footprint id and
    the areas it had before the group joined (never the group's own areas)."""
    codes = prep["codes"]
    merged = {}
    for m in merges:
        mem = m["members"]
        label = "+".join(codes[k] for k in mem)
        fid = names[m["group"]]
        if m["own"]:
            merged[label] = f"{fid}: own footprint (below threshold)"
            notes.append(f"{', '.join(_describe(prep, k) for k in mem)}: no neighbouring footprint; kept as its own "
                         f"footprint {fid} BELOW the threshold ({m['total']:.1f} expected deaths a year)")
            continue
        shown = ", ".join(_describe(prep, k) for k in m["into"][:4]) + (
            f" and {len(m['into']) - 4} more" if len(m["into"]) > 4 else "")
        merged[label] = f"{fid} ({', '.join(codes[k] for k in m['into'][:4])}{', ...' if len(m['into']) > 4 else ''})"
        unit = f", {prep['nest']}={m['unit']}" if m["unit"] != "all" and prep.get("nest") else ""
        notes.append(
            f"merged {', '.join(_describe(prep, k) for k in mem)} ({m['total']:.1f} expected deaths a year{unit}) "
            f"into footprint {fid} ({shown}) (on_infeasible='merge')"
        )
    return merged


def _vintage(codes):
    from cdr.data import la_codes

    s = set(codes)
    for v in (2023, 2021):
        if s <= set(la_codes(v)):
            return v
    return None
