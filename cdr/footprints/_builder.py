"""Build footprints: the max-p problem on England's LAs (or any areas) with the rules users ask for.

The builder turns a table of areas into independent connected subproblems (one per nesting unit
and connected group of unlocked areas), solves each with :mod:`cdr.footprints._solver` (exact
set packing over minimal feasible sets where it fits, a heuristic with a reported gap where it
does not), handles infeasible groups (error, or a documented merge), and assembles a
:class:`~cdr.footprints.FootprintDesign`.
"""
from __future__ import annotations

import time
import warnings
import zlib

import numpy as np
import pandas as pd
from scipy.special import gammaincinv

from cdr._base import Estimator, as_generator, version_stamp
from cdr.errors import CdrError, CdrWarning, InfeasibleFootprintError
from cdr.footprints._design import FootprintDesign
from cdr.footprints._solver import Subproblem, solve_subproblem

__all__ = [
    "FootprintBuilder", "build_footprints", "chance_threshold", "expected_deaths_from_records", "DEFAULT_OBJECTIVE",
]

#: Secondary objective used when ``objective=None``: standardised attributes whose within-footprint
#: sum of squares is minimised (``death_rate`` = expected deaths per child, derived), plus a
#: compactness weight on the spread of area centroids (in units of the typical area spacing).
DEFAULT_OBJECTIVE = {"attributes": ("imd_avg_rank", "death_rate"), "compactness": 0.25}


def chance_threshold(min_deaths: float, min_probability: float | None, dispersion: float = 1.0) -> float:
    """Expected deaths a footprint needs to reach ``min_deaths`` in a year with a given probability.

    Parameters
    ----------
    min_deaths : float
        Deaths a year a footprint should review (the statutory guidance says 60).
    min_probability : float or None
        Required probability in (0, 1) that a Poisson year reaches ``min_deaths``. None returns
        ``min_deaths`` (a threshold on expected deaths only).
    dispersion : float, default 1.0
        Variance-to-mean ratio of a year's count. 1 is Poisson; above 1 the count is negative
        binomial with that ratio (e.g. the posterior predictive of
        :func:`cdr.reference.expected_deaths` with ``interval=``: ``predictive_var / expected_deaths``).

    Returns
    -------
    float
        The smallest mean ``lam`` with ``P(Poisson(lam) >= min_deaths) >= min_probability``, from
        the identity ``P(Poisson(lam) >= m) = P(Gamma(m, 1) <= lam)`` (regularised incomplete gamma).

    Examples
    --------
    >>> round(chance_threshold(60, 0.9), 2)
    70.12
    >>> chance_threshold(60, None)
    60.0
    """
    if min_probability is None:
        return float(min_deaths)
    p = float(min_probability)
    if not 0 < p < 1:
        raise CdrError(f"min_probability must be a probability in (0, 1), e.g. 0.9; got {min_probability!r}")
    if min_deaths <= 0:
        return 0.0
    m = float(np.ceil(min_deaths))
    if dispersion is None or float(dispersion) <= 1.0:
        return float(gammaincinv(m, p))
    from scipy.optimize import brentq
    from scipy.stats import nbinom

    phi = float(dispersion)
    # NB with mean lam and variance phi x lam: r = lam / (phi - 1), success probability 1 / phi
    return float(brentq(lambda lam: nbinom.sf(m - 1, lam / (phi - 1), 1 / phi) - p, 1e-9, 10 * m + 100))


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
    if "la_code" not in records.columns:
        raise CdrError("expected_deaths_from_records: records need an 'la_code' column")
    if "year" in records.columns:
        year = pd.to_numeric(records["year"], errors="coerce")
    elif "date_of_death" in records.columns:
        year = pd.to_datetime(records["date_of_death"], errors="coerce").dt.year
    else:
        raise CdrError("expected_deaths_from_records: records need a 'year' or 'date_of_death' column")
    keep = year.notna()
    if years is not None:
        years = sorted(set(int(y) for y in years))
        keep &= year.isin(years)
    else:
        years = sorted(set(year[keep].astype(int)))
    if not years:
        raise CdrError("expected_deaths_from_records: no records in the chosen years")
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
        the count is negative binomial with the areas' overall variance-to-mean ratio instead.
    nest_within : str, optional
        Column (e.g. ``"region_code"``, ``"police_force_area"``) that footprints must not cross.
        Each unit is solved independently.
    max_population : float, optional
        Largest child population a footprint may have (uses ``child_population``).
    lock : Series, dict, DataFrame or FootprintDesign, optional
        Partial assignment ``la_code -> footprint_id`` kept exactly as given (existing partnerships);
        the builder designs the rest.
    contiguity : libpysal W, cdr.data.Contiguity, dict or networkx.Graph, optional
        Neighbour graph keyed by ``la_code``. Default: the England graph of
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
        ``"auto"`` enumerates minimal sets up to ``max_sets`` per subproblem (a count, not a
        clock, so the path taken never depends on machine speed) and solves the set-packing
        programme (exact path, proven bound); above the budget it switches to the fast heuristic
        (the partial enumeration costs about 0.3 s). On England at 60, 80 or 100 deaths a year,
        with or without ``min_probability``, auto is exact (1,268 to 16,227 sets); on a
        400-cell lattice (26,686 sets; the exact path takes about 3 s instead of 0.2 s) it is the
        heuristic. True always enumerates; False always uses the heuristic. ``design.path`` says
        which path ran.
    max_sets : int, default 20_000
        Enumeration budget (minimal sets per subproblem) of ``exact="auto"``.
    time_limit : float, default 60
        Seconds per subproblem (enumeration, LP, local search).
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
        t0 = time.perf_counter()
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
        design.info["seconds"] = time.perf_counter() - t0
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
    return FootprintBuilder(min_deaths, **kwargs).fit(areas, deaths, executor=executor, progress=progress)


# ----------------------------------------------------------------------------------------------
# preparing the problem
# ----------------------------------------------------------------------------------------------
def _default_expected_deaths(areas):
    try:
        from cdr.reference import expected_deaths
    except ImportError as exc:  # pragma: no cover - only in a partial development checkout
        raise CdrError(
            "no 'expected_deaths' column in areas and cdr.reference.expected_deaths is not available; "
            "pass deaths= a column, a Series indexed by la_code, or a frame with la_code and expected_deaths"
        ) from exc
    table = expected_deaths(areas) if areas is not None else expected_deaths()
    return table.set_index("la_code")["expected_deaths"]


def resolve_areas(areas, deaths, *, caller):
    """Areas sorted by ``la_code`` with a float ``expected_deaths`` column (input not modified)."""
    if areas is None:
        from cdr.data import england_areas

        areas = england_areas()
    if not isinstance(areas, pd.DataFrame):
        raise CdrError(f"{caller}: areas must be a DataFrame or GeoDataFrame with 'la_code'; got {type(areas).__name__}")
    if "la_code" not in areas.columns:
        raise CdrError(f"{caller}: areas have no 'la_code' column (columns: {list(areas.columns)[:12]})")
    out = areas.copy()
    out["la_code"] = out["la_code"].astype(str)
    dup = out["la_code"][out["la_code"].duplicated()]
    if len(dup):
        raise CdrError(f"{caller}: duplicate la_code values {sorted(set(dup))[:10]}; give one row per area")
    out = out.sort_values("la_code", kind="stable", ignore_index=True)
    if isinstance(deaths, str):
        if deaths in out.columns:
            values = pd.to_numeric(out[deaths], errors="coerce")
        elif deaths == "expected_deaths":
            values = out["la_code"].map(_default_expected_deaths(areas))
        else:
            raise CdrError(f"{caller}: deaths={deaths!r} is not a column of areas (columns: {list(out.columns)[:12]})")
        source = deaths
    elif isinstance(deaths, pd.Series):
        values = out["la_code"].map(deaths.rename(index=str))
        source = deaths.name or "Series"
    elif isinstance(deaths, pd.DataFrame):
        col = "expected_deaths" if "expected_deaths" in deaths.columns else deaths.columns[-1]
        values = out["la_code"].map(deaths.assign(la_code=deaths["la_code"].astype(str)).set_index("la_code")[col])
        source = f"frame[{col!r}]"
    else:
        raise CdrError(f"{caller}: deaths must be a column name, a Series or a DataFrame; got {type(deaths).__name__}")
    values = pd.to_numeric(values, errors="coerce")
    bad = out.loc[values.isna() | (values < 0), "la_code"]
    if len(bad):
        show = ", ".join(f"{c}={values[i]!r}" for i, c in bad.head(8).items())
        raise CdrError(f"{caller}: expected deaths must be numbers >= 0 for every area; {len(bad)} are not: {show}")
    out["expected_deaths"] = values.astype(float).to_numpy()
    return out, source


def resolve_graph(contiguity, areas, *, caller):
    """Neighbour lists (sorted la_codes) for every area, from any accepted graph form."""
    ids = list(areas["la_code"])
    idset = set(ids)
    if contiguity is None:
        from cdr.data import contiguity as england_graph, la_codes

        for vintage in (2023, 2021):
            if idset <= set(la_codes(vintage)):
                neigh = england_graph(vintage=vintage).neighbors
                break
        else:
            if "geometry" not in areas.columns:
                raise CdrError(
                    f"{caller}: the areas are not English LAs and have no geometry; pass contiguity= a libpysal W "
                    "(or dict of neighbour lists) keyed by la_code"
                )
            import geopandas as gpd

            geo = areas if isinstance(areas, gpd.GeoDataFrame) else gpd.GeoDataFrame(areas, geometry="geometry")
            neigh = england_graph(geo, links=()).neighbors
    elif hasattr(contiguity, "w") and hasattr(contiguity.w, "neighbors"):
        neigh = contiguity.w.neighbors
    elif hasattr(contiguity, "neighbors") and not callable(contiguity.neighbors):
        neigh = contiguity.neighbors  # libpysal W
    elif isinstance(contiguity, dict):
        neigh = contiguity
    elif hasattr(contiguity, "adj"):  # networkx
        neigh = {k: list(v) for k, v in contiguity.adj.items()}
    else:
        raise CdrError(f"{caller}: contiguity must be a libpysal W, cdr.data.Contiguity, dict or networkx graph")
    neigh = {str(k): [str(x) for x in v] for k, v in neigh.items()}
    missing = [c for c in ids if c not in neigh]
    if missing:
        raise CdrError(f"{caller}: {len(missing)} areas are not in the contiguity graph: {missing[:10]}")
    out = {c: set() for c in ids}
    for c in ids:
        for x in neigh[c]:
            if x in idset and x != c:
                out[c].add(x)
                out[x].add(c)  # symmetrise
    return {c: sorted(v) for c, v in out.items()}


def resolve_lock(lock, areas, *, caller):
    if lock is None:
        return {}
    if isinstance(lock, FootprintDesign):
        lock = lock.labels
    if isinstance(lock, pd.DataFrame):
        if not {"la_code", "footprint_id"} <= set(lock.columns):
            raise CdrError(f"{caller}: lock frame needs 'la_code' and 'footprint_id' columns")
        lock = dict(zip(lock["la_code"].astype(str), lock["footprint_id"]))
    elif isinstance(lock, pd.Series):
        lock = dict(zip(lock.index.astype(str), lock.to_numpy()))
    elif not isinstance(lock, dict):
        raise CdrError(f"{caller}: lock must be a dict, Series or DataFrame la_code -> footprint_id")
    lock = {str(k): str(v) for k, v in lock.items() if v is not None and not (isinstance(v, float) and np.isnan(v))}
    unknown = sorted(set(lock) - set(areas["la_code"]))
    if unknown:
        raise CdrError(f"{caller}: lock names {len(unknown)} areas not in areas: {unknown[:10]}")
    return lock


def _objective(builder, areas, deaths_col="expected_deaths"):
    spec = dict(DEFAULT_OBJECTIVE)
    if builder.objective is not None:
        if isinstance(builder.objective, dict):
            unknown = set(builder.objective) - {"attributes", "compactness"}
            if unknown:
                raise CdrError(f"objective: unknown keys {sorted(unknown)}; allowed 'attributes', 'compactness'")
            spec.update(builder.objective)
        else:
            spec["attributes"] = tuple(builder.objective)
    cols, used = [], []
    for name in spec["attributes"]:
        if name == "death_rate" and "death_rate" not in areas.columns:
            if "child_population" in areas.columns:
                pop = areas["child_population"].astype(float).replace(0, np.nan)
                cols.append((areas[deaths_col] / pop).fillna(0.0).to_numpy())
                used.append("death_rate")
            continue  # no population: the rate is undefined; skipped and stated in used
        if name not in areas.columns:
            if builder.objective is None:
                continue  # a default attribute your areas lack: left out, stated in design.info["objective"]
            raise CdrError(f"objective: attribute {name!r} is not a column of areas (columns: {list(areas.columns)[:12]})")
        cols.append(pd.to_numeric(areas[name], errors="coerce").fillna(areas[name].median()).to_numpy(float))
        used.append(name)
    parts = []
    for v in cols:
        sd = v.std()
        parts.append((v - v.mean()) / sd if sd > 0 else np.zeros_like(v))
    attrs = np.column_stack(parts) if parts else np.zeros((len(areas), 0))
    weight = float(spec.get("compactness", 0) or 0)
    coords = np.zeros((len(areas), 0))
    if weight > 0 and "geometry" in areas.columns:
        import geopandas as gpd

        geo = areas if isinstance(areas, gpd.GeoDataFrame) else gpd.GeoDataFrame(areas, geometry="geometry")
        if geo.crs is not None and geo.crs.is_geographic:
            geo = geo.to_crs("EPSG:27700")
        c = geo.geometry.representative_point()
        xy = np.column_stack([c.x.to_numpy(), c.y.to_numpy()])
        spacing = np.sqrt(max(geo.geometry.area.sum(), 1e-9) / len(geo))
        coords = (xy - xy.mean(axis=0)) / spacing * np.sqrt(weight)
    elif weight > 0:
        weight = 0.0  # no geometry: compactness cannot be measured (stated in the design's info)
    return attrs, np.column_stack([attrs, coords]), {"attributes": tuple(used), "compactness": weight}


def prepare_problem(builder, areas, deaths):
    caller = "FootprintBuilder.fit"
    if builder.on_infeasible not in ("raise", "merge"):
        raise CdrError(f"{caller}: on_infeasible must be 'raise' or 'merge'; got {builder.on_infeasible!r}")
    if builder.exact not in ("auto", True, False):
        raise CdrError(f"{caller}: exact must be 'auto', True or False; got {builder.exact!r}")
    try:
        min_deaths = float(builder.min_deaths)
    except (TypeError, ValueError):
        raise CdrError(f"{caller}: min_deaths must be a number of deaths a year, e.g. 60; got {builder.min_deaths!r}")
    if not min_deaths > 0:
        raise CdrError(f"{caller}: min_deaths must be > 0 deaths a year; got {builder.min_deaths!r}")
    areas, source = resolve_areas(areas, deaths, caller=caller)
    dispersion = 1.0
    if builder.min_probability is not None and "predictive_var" in areas.columns:
        # posterior predictive (cdr.reference.expected_deaths(interval=...)): England's variance-to-mean ratio
        dispersion = max(1.0, float(areas["predictive_var"].sum() / areas["expected_deaths"].sum()))
    threshold = chance_threshold(min_deaths, builder.min_probability, dispersion)
    graph = resolve_graph(builder.contiguity, areas, caller=caller)
    lock = resolve_lock(builder.lock, areas, caller=caller)
    nest = builder.nest_within
    if nest is not None:
        if nest not in areas.columns:
            raise CdrError(f"{caller}: nest_within={nest!r} is not a column of areas (e.g. 'region_code', 'police_force_area')")
        missing = areas.loc[areas[nest].isna(), "la_code"].tolist()
        if missing:
            raise CdrError(f"{caller}: nest_within={nest!r} is missing for {len(missing)} areas: {missing[:10]}")
    if builder.max_population is not None and "child_population" not in areas.columns:
        raise CdrError(f"{caller}: max_population needs a 'child_population' column in areas")
    pop = areas["child_population"].astype(float).to_numpy() if "child_population" in areas.columns else np.zeros(len(areas))
    attrs, features, objective = _objective(builder, areas)
    seed = builder.seed
    base = int(seed) if isinstance(seed, (int, np.integer)) else int(as_generator(seed).integers(2**63 - 1))

    codes = areas["la_code"].tolist()
    pos = {c: i for i, c in enumerate(codes)}
    d = areas["expected_deaths"].to_numpy(float)
    unit = areas[nest].astype(str).to_numpy() if nest is not None else np.array(["all"] * len(areas))
    free = np.array([c not in lock for c in codes])
    seen = np.zeros(len(codes), bool)
    subs, infeasible = [], []
    cap = np.inf if builder.max_population is None else float(builder.max_population)
    for i in range(len(codes)):
        if seen[i] or not free[i]:
            continue
        comp, stack = [], [i]
        seen[i] = True
        while stack:
            k = stack.pop()
            comp.append(k)
            for c in graph[codes[k]]:
                j = pos[c]
                if not seen[j] and free[j] and unit[j] == unit[k]:
                    seen[j] = True
                    stack.append(j)
        comp.sort()
        total = float(d[comp].sum())
        too_big = [k for k in comp if pop[k] > cap]
        if total < threshold - 1e-9 or too_big:
            infeasible.append({"members": comp, "total": total, "unit": unit[i], "too_big": too_big})
            continue
        local = {k: j for j, k in enumerate(comp)}
        nbrs = [sorted(local[pos[c]] for c in graph[codes[k]] if pos[c] in local) for k in comp]
        key = codes[comp[0]]
        sub_seed = int(np.random.SeedSequence([base % 2**63, zlib.crc32(key.encode())]).generate_state(1)[0])
        subs.append((comp, Subproblem(
            d=d[comp], pop=pop[comp], nbrs=nbrs, features=features[comp], threshold=threshold,
            max_population=builder.max_population, seed=sub_seed, exact=builder.exact, max_sets=builder.max_sets,
            time_limit=builder.time_limit, ilp_time_limit=builder.ilp_time_limit, key=key,
            max_footprints=builder.max_footprints, anneal_iterations=builder.anneal_iterations,
        )))
    ai = builder.anneal_iterations
    if ai is not None and (not isinstance(ai, (int, np.integer)) or isinstance(ai, bool) or ai < 0):
        raise CdrError(f"{caller}: anneal_iterations must be a whole number of proposals >= 0 (0 switches annealing "
                       f"off), or None for the default; got {ai!r}")
    if builder.max_footprints is not None:
        k = builder.max_footprints
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise CdrError(f"{caller}: max_footprints must be a whole number >= 1, e.g. 42; got {k!r}")
        if len(subs) != 1 or lock or infeasible:
            raise CdrError(
                f"{caller}: max_footprints needs a single subproblem, but there are {len(subs)} independent "
                f"subproblems{', locked areas' if lock else ''}{', infeasible groups' if infeasible else ''} "
                "(from nest_within, lock or a disconnected graph); build without max_footprints, or without nesting/lock"
            )
    return {
        "areas": areas, "source": source, "graph": graph, "lock": lock, "threshold": threshold, "min_deaths": min_deaths,
        "codes": codes, "pos": pos, "unit": unit, "pop": pop, "features": features, "attrs": attrs,
        "objective": objective, "subproblems": subs, "infeasible": infeasible, "seed": base, "nest": nest,
    }


def _describe(prep, k):
    areas = prep["areas"]
    name = areas["la_name"].iat[k] if "la_name" in areas.columns else prep["codes"][k]
    return f"{name} ({prep['codes'][k]})" if name != prep["codes"][k] else prep["codes"][k]


def _infeasible_message(infeasible, prep):
    areas_n = sum(len(g["members"]) for g in infeasible)
    nest = prep.get("nest")
    where = f"inside its nest_within={nest!r} unit" if nest else "in its connected group of (unlocked) areas"
    lines = []
    for g in infeasible:
        mem = g["members"]
        if g["too_big"]:
            for k in g["too_big"]:
                lines.append(f"  {_describe(prep, k)}: child population {prep['pop'][k]:,.0f} exceeds max_population")
            continue
        unit = f" in {nest}={g['unit']}" if g["unit"] != "all" else ""
        if len(mem) == 1:
            lines.append(f"  {_describe(prep, mem[0])}: {g['total']:.1f} expected deaths a year, alone{unit}")
            continue
        desc = ", ".join(f"{_describe(prep, k)} {prep['areas']['expected_deaths'].iat[k]:.1f}" for k in mem[:8])
        more = f" and {len(mem) - 8} more" if len(mem) > 8 else ""
        lines.append(f"  {desc}{more}: {g['total']:.1f} expected deaths a year, {len(mem)} areas together{unit}")
    head = (
        f"{areas_n} area{'s' if areas_n != 1 else ''} cannot reach the threshold of {prep['threshold']:.1f} expected "
        f"deaths a year (min_deaths={prep['min_deaths']:g}) {where}:"
    )
    return "\n".join([head, *lines,
                      "Choose another nest_within or lock, or let the builder merge each group with its best neighbouring "
                      "footprint (on_infeasible='merge'; merges are shown in design.table() and design.notes)."])


def _infeasible_frame(infeasible, prep):
    rows = []
    for n, g in enumerate(infeasible):
        for k in g["members"]:
            rows.append({"group": n, "la_code": prep["codes"][k], "expected_deaths": float(prep["areas"]["expected_deaths"].iat[k]),
                         "group_expected_deaths": g["total"], "unit": g["unit"], "exceeds_max_population": k in g["too_big"]})
    return pd.DataFrame(rows)


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
    for (comp, sub), res in zip(subs, results):
        if res.notes:
            notes += [f"subproblem {sub.key}: {t}" for t in res.notes]
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
            "expected_deaths": float(sub.d.sum()), "n_footprints": res.n_footprints, "upper_bound": res.bound,
            "bound_method": res.bound_method, "lp_bound": res.lp_bound, "relaxation_bound": res.relaxation,
            "path": res.path, "n_sets": res.n_sets, "anneal_iterations": res.anneal_iterations,
            "objective_descent": res.objective_descent, "objective": res.objective, "seconds": res.seconds,
        })
    locked_names = {}
    for code, lab in sorted(prep["lock"].items()):
        if lab not in locked_names:
            locked_names[lab] = gid
            gid += 1
        group[pos[code]] = locked_names[lab]
    n_locked = len(locked_names)
    locked_groups = set(locked_names.values())
    merged = {}
    if infeasible:
        merged = _merge_infeasible(prep, group, infeasible, notes)
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
    sub_table = pd.DataFrame(rows)
    n_fp = int(labels.nunique())
    bound_sub = int(sub_table["upper_bound"].sum()) if len(sub_table) else 0
    lp_sub = float(sub_table["lp_bound"].sum()) if len(sub_table) else 0.0
    methods = set(sub_table["bound_method"]) if len(sub_table) else {"ilp"}
    paths = set(sub_table["path"]) if len(sub_table) else {"exact"}
    upper = bound_sub + n_locked
    info = {
        "n_footprints": n_fp,
        "upper_bound": upper,
        "proven_optimal": methods == {"ilp"} and upper == n_fp,
        "bound_method": "ilp" if methods == {"ilp"} else ("lp" if "relaxation" not in methods else "relaxation"),
        "lp_bound": lp_sub + n_locked if np.isfinite(lp_sub) else float("nan"),
        "relaxation_bound": float(sub_table["relaxation_bound"].sum()) + n_locked if len(sub_table) else float(n_locked),
        "path": "exact" if paths == {"exact"} else ("heuristic" if paths == {"heuristic"} else "mixed"),
        "threshold": prep["threshold"],
        "objective": prep["objective"],
        "deaths_source": prep["source"],
        "n_locked_footprints": n_locked,
        "merged": merged,
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
    if merged:
        warnings.warn(
            f"{len(merged)} group(s) of areas could not reach the threshold and were merged with a neighbouring "
            f"footprint (on_infeasible='merge'): " + "; ".join(f"{k} -> {v}" for k, v in list(merged.items())[:5]),
            CdrWarning, stacklevel=3,
        )
    return design


def _merge_infeasible(prep, group, infeasible, notes):
    """Merge each infeasible group into the neighbouring footprint whose dissimilarity rises least."""
    codes, pos, graph = prep["codes"], prep["pos"], prep["graph"]
    feats = prep["features"]
    merged = {}
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
            for k in mem:
                group[k] = best[1]
            target = codes[int(np.flatnonzero(group == best[1]).min())]
            label = "+".join(codes[k] for k in mem)
            merged[label] = f"footprint containing {target}"
            notes.append(
                f"merged {', '.join(_describe(prep, k) for k in mem)} ({g['total']:.1f} expected deaths a year"
                f"{', unit ' + g['unit'] if g['unit'] != 'all' else ''}) into the footprint containing {target} "
                "(on_infeasible='merge')"
            )
            pending.remove(g)
            progress = True
        if not progress:
            # isolated groups with no footprint next to them: each becomes its own (below-threshold) footprint
            start = int(group.max()) + 1
            for n, g in enumerate(pending):
                for k in g["members"]:
                    group[k] = start + n
                notes.append(f"{', '.join(_describe(prep, k) for k in g['members'])}: no neighbouring footprint; kept as "
                             f"its own footprint BELOW the threshold ({g['total']:.1f} expected deaths a year)")
                merged["+".join(codes[k] for k in g["members"])] = "own footprint (below threshold)"
            break
    return merged


def _vintage(codes):
    try:
        from cdr.data import la_codes

        s = set(codes)
        for v in (2023, 2021):
            if s <= set(la_codes(v)):
                return v
    except Exception:  # pragma: no cover
        pass
    return None
