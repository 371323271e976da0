"""The footprint problem as the user posed it: areas, deaths, threshold, graph, nesting and lock,
checked and split into independent connected subproblems for :mod:`cdr.footprints._solver`.

Shared by the builder, :func:`~cdr.footprints.upper_bound` and :func:`~cdr.footprints.check_design`
(imports only the solver's plain-array layer, so the footprints modules import one way:
``_sets/_packing/... -> _solver -> _problem -> _table -> _checks -> _design -> _builder ->
_catalog -> _evaluate``).
"""
from __future__ import annotations

import warnings
import zlib

import numpy as np
import pandas as pd
from scipy.special import gammaincinv

from cdr import _validate as check
from cdr._base import as_generator
from cdr.data._contiguity import components
from cdr.errors import ArgumentError, CdrWarning
from cdr.footprints._solver import Subproblem

__all__ = ["DEFAULT_OBJECTIVE", "chance_threshold", "default_expected_deaths", "resolve_areas", "resolve_graph",
           "resolve_lock", "prepare_problem", "check_params"]

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
    caller = "chance_threshold"
    min_deaths = check.number(min_deaths, "min_deaths", caller, minimum=0, example=60, unit="deaths a year")
    if dispersion is not None:
        check.number(dispersion, "dispersion", caller, above=0, example=1.0)
    if min_probability is None:
        return float(min_deaths)
    p = check.probability(min_probability, "min_probability", caller)
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



def _nb_threshold(m: float, p: float, extra: float) -> float:
    """Smallest mean with P(count >= m) >= p for a count of mean ``mu`` and variance ``mu + extra``."""
    if extra <= 1e-12:
        return float(gammaincinv(m, p))
    from scipy.optimize import brentq
    from scipy.stats import nbinom

    # NB with mean mu and variance mu + extra: size r = mu^2 / extra, success probability r / (r + mu)
    return float(brentq(lambda mu: nbinom.sf(m - 1, mu * mu / extra, mu / (mu + extra)) - p, 1e-9, 10 * m + 100 + 10 * extra))


def chance_weights(expected, predictive_var, min_deaths: float, min_probability: float):
    """Per-area weights that turn the posterior chance constraint into a threshold on a sum.

    A footprint ``S`` with expected deaths ``mu = sum(e_i)`` and posterior predictive variance
    ``mu + kappa`` (``kappa = sum(predictive_var_i - e_i)``, each area's extra variance from the
    uncertainty of its own expectation) reaches ``min_deaths`` with probability at least
    ``min_probability`` when ``mu >= g(kappa)``, ``g`` the negative-binomial threshold (a count
    with that mean and variance). ``g`` is concave in ``kappa`` (it grows like ``sqrt(kappa)``),
    so its tangent at ``kappa0`` lies above it, and

        ``sum(e_i - b x kappa_i) >= g(kappa0) - b x kappa0``,  ``b = g'(kappa0)``

    is sufficient for the chance constraint of *every* footprint (exact at ``kappa = kappa0``).
    ``kappa0`` is the extra variance of a footprint at the threshold with the areas' overall
    variance-to-mean ratio. The left side is additive over areas, so the builder's exact set
    packing applies unchanged to the weights ``e_i - b x kappa_i``.

    Parameters
    ----------
    expected, predictive_var : array_like of float
        Per area: expected deaths a year and the variance of one year's count
        (:func:`cdr.reference.expected_deaths` with ``interval=``); ``predictive_var >= expected``.
    min_deaths : float
    min_probability : float in (0, 1)

    Returns
    -------
    weights : numpy.ndarray
        ``e_i - b x kappa_i`` per area.
    threshold : float
        ``g(kappa0) - b x kappa0``.
    info : dict
        ``kappa0``, ``slope`` (``b``) and ``method``.

    Examples
    --------
    >>> w, t, info = chance_weights([40.0, 40.0], [40.0, 40.0], 60, 0.9)    # no extra variance: Poisson
    >>> round(t, 2), w.tolist()
    (70.12, [40.0, 40.0])
    """
    e = np.asarray(expected, dtype=float)
    v = np.asarray(predictive_var, dtype=float)
    if e.shape != v.shape or not np.all(np.isfinite(v)) or np.any(v < e - 1e-9):
        raise ArgumentError("chance_weights: predictive_var must be finite and >= expected_deaths for every area "
                            "(use cdr.reference.expected_deaths(interval=0.9))")
    m = float(np.ceil(min_deaths))
    p = float(min_probability)
    kappa = np.maximum(v - e, 0.0)
    ratio = float(kappa.sum() / e.sum()) if e.sum() > 0 else 0.0
    if ratio <= 1e-12:
        return e.copy(), float(gammaincinv(m, p)), {"method": "poisson", "kappa0": 0.0, "slope": 0.0}
    t_nat = chance_threshold(m, p, 1.0 + ratio)
    k0 = ratio * t_nat
    h = 1e-3 * k0
    b = (_nb_threshold(m, p, k0 + h) - _nb_threshold(m, p, k0 - h)) / (2 * h)
    threshold = _nb_threshold(m, p, k0) - b * k0
    return e - b * kappa, float(threshold), {"method": "per-area posterior (tangent)", "kappa0": float(k0), "slope": float(b)}


def default_expected_deaths(areas):
    from cdr.reference import expected_deaths

    table = expected_deaths(areas) if areas is not None else expected_deaths()
    return table.set_index("la_code")["expected_deaths"]


def resolve_areas(areas, deaths, *, caller):
    """Areas sorted by ``la_code`` with a float ``expected_deaths`` column (input not modified)."""
    if areas is None:
        from cdr.data import england_areas

        areas = england_areas()
    check.frame(areas, "areas", caller, columns=["la_code"], hint="Give one row per area keyed by its ONS code.")
    out = areas.copy()
    out["la_code"] = out["la_code"].astype(str)
    dup = out["la_code"][out["la_code"].duplicated()]
    if len(dup):
        raise ArgumentError(f"{caller}: duplicate la_code values {sorted(set(dup))[:10]}; give one row per area")
    out = out.sort_values("la_code", kind="stable", ignore_index=True)
    if isinstance(deaths, str):
        if deaths in out.columns:
            values = pd.to_numeric(out[deaths], errors="coerce")
        elif deaths == "expected_deaths":
            values = out["la_code"].map(default_expected_deaths(areas))
        else:
            raise ArgumentError(f"{caller}: deaths={deaths!r} is not a column of areas (columns: {list(out.columns)[:12]})")
        source = deaths
    elif isinstance(deaths, pd.Series):
        values = out["la_code"].map(deaths.rename(index=str))
        source = deaths.name or "Series"
    elif isinstance(deaths, pd.DataFrame):
        col = "expected_deaths" if "expected_deaths" in deaths.columns else deaths.columns[-1]
        values = out["la_code"].map(deaths.assign(la_code=deaths["la_code"].astype(str)).set_index("la_code")[col])
        source = f"frame[{col!r}]"
    else:
        raise ArgumentError(f"{caller}: deaths must be a column name, a Series or a DataFrame; got {type(deaths).__name__}")
    values = pd.to_numeric(values, errors="coerce")
    bad = out.loc[values.isna() | (values < 0), "la_code"]
    if len(bad):
        show = ", ".join(f"{c}={values[i]!r}" for i, c in bad.head(8).items())
        raise ArgumentError(f"{caller}: expected deaths must be numbers >= 0 for every area; {len(bad)} are not: {show}")
    out["expected_deaths"] = values.astype(float).to_numpy()
    return out, source


def _graph_neighbours(contiguity, *, caller):
    """(neighbour lists, kind) from any accepted graph form (none of them imported here)."""
    if hasattr(contiguity, "w") and hasattr(contiguity.w, "neighbors"):
        return contiguity.w.neighbors, "cdr.data.Contiguity"
    if hasattr(contiguity, "adjacency") and hasattr(contiguity, "unique_ids"):  # libpysal.graph.Graph
        neigh = {k: [] for k in contiguity.unique_ids}
        for (focal, other), weight in contiguity.adjacency.items():
            if focal != other and weight != 0:  # isolates are stored as a zero-weight self-loop
                neigh[focal].append(other)
        return neigh, "libpysal.graph.Graph"
    if hasattr(contiguity, "neighbors") and not callable(contiguity.neighbors):
        return contiguity.neighbors, "libpysal.weights.W"
    if isinstance(contiguity, dict):
        return contiguity, "dict"
    if hasattr(contiguity, "adj"):
        return {k: list(v) for k, v in contiguity.adj.items()}, "networkx graph"
    raise ArgumentError(f"{caller}: contiguity must be a libpysal W or Graph, cdr.data.Contiguity, dict of neighbour "
                        f"lists or networkx graph; got {type(contiguity).__name__}")


def _key_map(keys, codes, raw):
    """How the graph's ids name the areas: ``(id -> la_code, description)`` or ``(None, reason)``.

    Tried in order: ``la_code``; the frame's index (what ``libpysal`` uses by default, e.g.
    ``Queen.from_dataframe(frame)``); the row position (0 .. n-1).
    """
    if set(codes) <= keys:
        return {c: c for c in codes}, "la_code"
    tried = []
    if raw is not None and len(raw) == len(codes):
        by_index = {str(k): str(c) for k, c in zip(raw.index, raw["la_code"])}
        if len(by_index) == len(codes) and set(by_index) <= keys:
            return by_index, "the areas' index"
        tried.append("the areas' index")
        by_pos = {str(i): str(c) for i, c in enumerate(raw["la_code"])}
        if set(by_pos) <= keys:
            return by_pos, "row position (0 .. n-1) of the areas"
        tried.append("row position")
    return None, ", ".join(["la_code", *tried])


def resolve_graph(contiguity, areas, *, caller, raw=None, report=None):
    """Neighbour lists (sorted la_codes) for every area, from any accepted graph form.

    ``raw`` is the areas frame as the user gave it (its index and row order), so a graph keyed by
    the frame's index or by row position can be matched; ``report`` (a dict) receives the graph's
    ``source``, the ``keys`` used and ``n_components``. A custom graph with more than one
    connected component is warned about (footprints cannot cross components).
    """
    ids = list(areas["la_code"])
    idset = set(ids)
    kind, keys_used = "default (cdr.data.contiguity)", "la_code"
    if contiguity is None:
        from cdr.data import contiguity as england_graph, la_codes

        for vintage in (2023, 2021):
            if idset <= set(la_codes(vintage)):
                neigh = england_graph(vintage=vintage).neighbors
                break
        else:
            if "geometry" not in areas.columns:
                raise ArgumentError(
                    f"{caller}: the areas are not English LAs and have no geometry; pass contiguity= a libpysal W "
                    "or Graph (or dict of neighbour lists) keyed by la_code, the frame's index or row position"
                )
            import geopandas as gpd

            geo = areas if isinstance(areas, gpd.GeoDataFrame) else gpd.GeoDataFrame(areas, geometry="geometry")
            neigh = england_graph(geo, links=()).neighbors
            kind = "queen contiguity of the areas' polygons (cdr.data.contiguity, no links)"
    else:
        neigh, kind = _graph_neighbours(contiguity, caller=caller)
        neigh = {str(k): [str(x) for x in v] for k, v in neigh.items()}
        mapping, keys_used = _key_map(set(neigh), ids, raw)
        if mapping is None:
            sample = sorted(neigh, key=str)[:5]
            missing = [c for c in ids if c not in neigh][:10]
            raise ArgumentError(
                f"{caller}: the contiguity graph ({kind}, ids e.g. {sample}) does not name every area by any of "
                f"{keys_used}; areas not in the graph by la_code: {missing}. Build the graph from the same frame "
                "(e.g. libpysal.weights.Queen.from_dataframe(areas)) or key it by la_code"
            )
        neigh = {mapping[k]: [mapping[x] for x in v if x in mapping] for k, v in neigh.items() if k in mapping}
    neigh = {str(k): [str(x) for x in v] for k, v in neigh.items()}
    missing = [c for c in ids if c not in neigh]
    if missing:
        raise ArgumentError(f"{caller}: {len(missing)} areas are not in the contiguity graph: {missing[:10]}")
    out = {c: set() for c in ids}
    for c in ids:
        for x in neigh[c]:
            if x in idset and x != c:
                out[c].add(x)
                out[x].add(c)  # symmetrise
    graph = {c: sorted(v) for c, v in out.items()}
    n_comp, labels = components(graph)
    if report is not None:
        report.update({"source": kind, "keys": keys_used, "n_components": n_comp})
    if contiguity is not None and n_comp > 1:
        sizes = pd.Series(labels).value_counts()
        small = sorted(c for c, k in labels.items() if sizes[k] == sizes.min())[:5]
        warnings.warn(
            f"{caller}: the contiguity graph you passed has {n_comp} connected components (sizes "
            f"{sorted(sizes.tolist(), reverse=True)[:8]}); footprints cannot cross from one to another, so each is "
            f"built separately (smallest e.g. {small}). Add links (islands, crossings) if they should join",
            CdrWarning, stacklevel=4,
        )
    return graph


def resolve_lock(lock, areas, *, caller):
    if lock is None:
        return {}
    if hasattr(lock, "labels") and isinstance(lock.labels, pd.Series):  # a FootprintDesign
        lock = lock.labels
    if isinstance(lock, pd.DataFrame):
        if not {"la_code", "footprint_id"} <= set(lock.columns):
            raise ArgumentError(f"{caller}: lock frame needs 'la_code' and 'footprint_id' columns")
        lock = dict(zip(lock["la_code"].astype(str), lock["footprint_id"]))
    elif isinstance(lock, pd.Series):
        lock = dict(zip(lock.index.astype(str), lock.to_numpy()))
    elif not isinstance(lock, dict):
        raise ArgumentError(f"{caller}: lock must be a dict, Series or DataFrame la_code -> footprint_id")
    lock = {str(k): str(v) for k, v in lock.items() if v is not None and not (isinstance(v, float) and np.isnan(v))}
    unknown = sorted(set(lock) - set(areas["la_code"]))
    if unknown:
        raise ArgumentError(f"{caller}: lock names {len(unknown)} areas not in areas: {unknown[:10]}")
    return lock


def _objective(builder, areas, deaths_col="expected_deaths"):
    spec = dict(DEFAULT_OBJECTIVE)
    if builder.objective is not None:
        if isinstance(builder.objective, dict):
            unknown = set(builder.objective) - {"attributes", "compactness"}
            if unknown:
                raise ArgumentError(f"objective: unknown keys {sorted(unknown)}; allowed 'attributes', 'compactness'")
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
            raise ArgumentError(f"objective: attribute {name!r} is not a column of areas (columns: {list(areas.columns)[:12]})")
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


def check_params(builder, caller: str) -> None:
    """The builder's configuration (its constructor arguments), checked by ``__init__`` and again by ``fit``."""
    b = builder
    check.number(b.min_deaths, "min_deaths", caller, above=0, example=60, unit="deaths a year")
    if b.min_probability is not None:
        check.probability(b.min_probability, "min_probability", caller)
    if b.nest_within is not None:
        check.text(b.nest_within, "nest_within", caller, example="'police_force_area'")
    if b.max_population is not None:
        check.number(b.max_population, "max_population", caller, above=0, example=500_000, unit="children")
    if b.lock is not None and not (isinstance(b.lock, (dict, pd.Series, pd.DataFrame)) or hasattr(b.lock, "labels")):
        raise ArgumentError(f"{caller}: 'lock' must be a dict, Series or DataFrame la_code -> footprint_id, or a "
                            f"FootprintDesign; got {check.describe(b.lock)}.")
    if b.objective is not None and not isinstance(b.objective, dict):
        check.strings(b.objective, "objective", caller, example="{'attributes': ['imd_avg_rank']}", allow_empty=True)
    check.one_of(b.on_infeasible, ("raise", "merge"), "on_infeasible", caller)
    check.one_of(b.exact, ("auto", True, False), "exact", caller)
    check.integer(b.max_sets, "max_sets", caller, minimum=1, example=20_000)
    check.number(b.time_limit, "time_limit", caller, above=0, example=60, unit="seconds")
    check.number(b.ilp_time_limit, "ilp_time_limit", caller, above=0, example=20, unit="seconds")
    if b.max_footprints is not None:
        check.integer(b.max_footprints, "max_footprints", caller, minimum=1, example=42)
    if b.anneal_iterations is not None:
        check.integer(b.anneal_iterations, "anneal_iterations", caller, minimum=0, example=20_000)
    check.seed(b.seed, "seed", caller)


def prepare_problem(builder, areas, deaths):
    caller = "FootprintBuilder.fit"
    check_params(builder, caller)
    min_deaths = float(builder.min_deaths)
    raw = areas
    areas, source = resolve_areas(areas, deaths, caller=caller)
    chance = {"method": "poisson" if builder.min_probability is not None else None}
    weights = areas["expected_deaths"].to_numpy(float)
    if builder.min_probability is not None and "predictive_var" in areas.columns:
        # posterior predictive (cdr.reference.expected_deaths(interval=...)): each area's own uncertainty
        chance_threshold(min_deaths, builder.min_probability)            # validates min_probability
        pv = pd.to_numeric(areas["predictive_var"], errors="coerce")
        bad = areas.loc[~(pv >= areas["expected_deaths"] - 1e-9), "la_code"].tolist()
        if bad:
            raise ArgumentError(f"{caller}: predictive_var must be a number >= expected_deaths (the variance of a year's "
                                f"count); {len(bad)} areas are not: {bad[:10]}. Take both columns from "
                                "cdr.reference.expected_deaths(interval=0.9), or drop predictive_var for a Poisson chance constraint")
        weights, threshold, chance = chance_weights(weights, pd.to_numeric(areas["predictive_var"], errors="coerce"),
                                                    min_deaths, builder.min_probability)
    else:
        threshold = chance_threshold(min_deaths, builder.min_probability)
    graph_report = {}
    graph = resolve_graph(builder.contiguity, areas, caller=caller, raw=raw, report=graph_report)
    lock = resolve_lock(builder.lock, areas, caller=caller)
    nest = builder.nest_within
    if nest is not None:
        if nest not in areas.columns:
            raise ArgumentError(f"{caller}: nest_within={nest!r} is not a column of areas (e.g. 'region_code', 'police_force_area')")
        missing = areas.loc[areas[nest].isna(), "la_code"].tolist()
        if missing:
            raise ArgumentError(f"{caller}: nest_within={nest!r} is missing for {len(missing)} areas: {missing[:10]}")
    if builder.max_population is not None and "child_population" not in areas.columns:
        raise ArgumentError(f"{caller}: max_population needs a 'child_population' column in areas")
    pop = areas["child_population"].astype(float).to_numpy() if "child_population" in areas.columns else np.zeros(len(areas))
    attrs, features, objective = _objective(builder, areas)
    seed = builder.seed
    base = int(seed) if isinstance(seed, (int, np.integer)) else int(as_generator(seed).integers(2**63 - 1))

    codes = areas["la_code"].tolist()
    pos = {c: i for i, c in enumerate(codes)}
    d = weights     # expected deaths, or the chance-constraint weights (chance_weights)
    unit = areas[nest].astype(str).to_numpy() if nest is not None else np.array(["all"] * len(areas))
    subs, infeasible = [], []
    cap = np.inf if builder.max_population is None else float(builder.max_population)
    # independent subproblems: connected components of the unlocked areas, links inside a nesting unit only
    free_codes = [c for c in codes if c not in lock]
    _, comp_of = components(graph, free_codes, within=dict(zip(codes, unit)))
    groups = {}
    for c in free_codes:
        groups.setdefault(comp_of[c], []).append(pos[c])
    for comp in groups.values():
        i = comp[0]
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
    if builder.max_footprints is not None:
        if len(subs) != 1 or lock or infeasible:
            raise ArgumentError(
                f"{caller}: max_footprints needs a single subproblem, but there are {len(subs)} independent "
                f"subproblems{', locked areas' if lock else ''}{', infeasible groups' if infeasible else ''} "
                "(from nest_within, lock or a disconnected graph); build without max_footprints, or without nesting/lock"
            )
    return {
        "areas": areas, "source": source, "graph": graph, "lock": lock, "threshold": threshold, "min_deaths": min_deaths,
        "codes": codes, "pos": pos, "unit": unit, "pop": pop, "features": features, "attrs": attrs,
        "objective": objective, "subproblems": subs, "infeasible": infeasible, "seed": base, "nest": nest,
        "graph_report": graph_report, "chance": chance,
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
