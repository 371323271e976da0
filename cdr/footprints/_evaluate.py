"""Evaluate, compare, simulate and check footprint designs, and bound the number of footprints."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cdr._base import as_generator
from cdr.errors import CdrError
from cdr.footprints._design import FootprintDesign, p_reach

__all__ = ["evaluate", "compare", "simulate", "upper_bound", "check_design", "UpperBound", "footprint_table"]

_EVAL_PROBABILITY = 0.9


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _as_design(design, areas=None) -> FootprintDesign:
    if isinstance(design, FootprintDesign):
        if areas is not None:
            return FootprintDesign(design.labels, _with_deaths(areas, design), params=design.params, info=design.info,
                                   notes=design.notes, neighbors=design.neighbors, meta=design.meta,
                                   locked=design.locked, columns=design.columns)
        return design
    if isinstance(design, (str,)) or hasattr(design, "__fspath__"):
        from cdr.footprints._catalog import load_design

        return load_design(design, areas=areas)
    if isinstance(design, (pd.Series, dict, pd.DataFrame)):
        return FootprintDesign(design, areas)
    raise CdrError(f"expected a FootprintDesign, a file path or a Series la_code -> footprint_id; got {type(design).__name__}")


def _with_deaths(areas, design):
    if "expected_deaths" in areas.columns:
        return areas
    return areas.assign(expected_deaths=areas["la_code"].astype(str).map(design.areas().set_index("la_code")["expected_deaths"]))


def _neighbors(design):
    if design.neighbors is not None:
        return design.neighbors
    from cdr.data import contiguity, la_codes

    codes = set(design.labels.index)
    for vintage in (2023, 2021):
        if codes <= set(la_codes(vintage)):
            return contiguity(vintage=vintage).neighbors
    areas = design.areas()
    if "geometry" in areas.columns:
        import geopandas as gpd

        return contiguity(gpd.GeoDataFrame(areas, geometry="geometry"), links=()).neighbors
    return None


def _connected(members, neighbors) -> bool:
    members = set(members)
    if len(members) <= 1:
        return True
    start = next(iter(sorted(members)))
    seen, stack = {start}, [start]
    while stack:
        k = stack.pop()
        for j in neighbors.get(k, ()):
            if j in members and j not in seen:
                seen.add(j)
                stack.append(j)
    return seen == members


def _standardised(areas, attributes):
    cols = []
    for name in attributes:
        if name == "death_rate" and "death_rate" not in areas.columns:
            if "child_population" not in areas.columns:
                continue
            v = (areas["expected_deaths"] / areas["child_population"].astype(float).replace(0, np.nan)).fillna(0.0)
        elif name in areas.columns:
            v = pd.to_numeric(areas[name], errors="coerce")
            v = v.fillna(v.median())
        else:
            continue
        v = v.to_numpy(float)
        sd = v.std()
        cols.append((v - v.mean()) / sd if sd > 0 else np.zeros_like(v))
    return np.column_stack(cols) if cols else np.zeros((len(areas), 0))


def _majority_share(frame, column):
    if column not in frame.columns:
        return pd.Series(dtype=float)
    w = frame["child_population"].astype(float) if "child_population" in frame.columns else pd.Series(1.0, index=frame.index)
    g = frame.assign(_w=w).groupby(["footprint_id", column])["_w"].sum()
    tot = g.groupby(level=0).sum()
    return (g.groupby(level=0).max() / tot.replace(0, np.nan)).fillna(1.0)


def footprint_table(design, *, min_deaths=None, min_probability=None, attributes=None):
    """Per-footprint table behind :meth:`FootprintDesign.table`."""
    md = float(design.min_deaths if min_deaths is None else min_deaths)
    mp = min_probability if min_probability is not None else (design.params.get("min_probability") or _EVAL_PROBABILITY)
    areas = design.areas()
    covered = areas[areas["footprint_id"].notna()].copy()
    if attributes is None:
        attributes = tuple(design.info.get("objective", {}).get("attributes", ("imd_avg_rank", "death_rate")))
    z = _standardised(areas, attributes)
    zdf = pd.DataFrame(z, index=areas.index)
    neighbors = _neighbors(design)
    rows = []
    compact = _compactness(design) if "geometry" in areas.columns else {}
    pfa = _majority_share(covered, "police_force_area")
    icb = _majority_share(covered, "icb_code")
    locked = set(design.locked)
    merged_codes = {}
    for key, target in design.info.get("merged", {}).items():
        for code in key.split("+"):
            merged_codes[code] = target
    for fid, grp in covered.groupby("footprint_id", sort=True):
        members = grp["la_code"].tolist()
        f = zdf.loc[grp.index].to_numpy()
        expected = float(grp["expected_deaths"].sum()) if "expected_deaths" in grp.columns else np.nan
        note = "; ".join(f"{c} merged in (below threshold alone)" for c in members if c in merged_codes)
        rows.append({
            "footprint_id": fid,
            "n_areas": len(members),
            "la_codes": ";".join(members),
            "la_names": ";".join(grp["la_name"].astype(str)) if "la_name" in grp.columns else ";".join(members),
            "child_population": float(grp["child_population"].sum()) if "child_population" in grp.columns else np.nan,
            "expected_deaths": expected,
            "p_reach_threshold": float(p_reach(expected, md)),
            "meets_threshold": bool(expected >= md - 1e-9),
            "meets_chance": bool(p_reach(expected, md) >= mp - 1e-12),
            "contiguous": bool(_connected(members, neighbors)) if neighbors is not None else True,
            "compactness": compact.get(fid, np.nan),
            "pfa_majority_share": float(pfa.get(fid, np.nan)),
            "icb_majority_share": float(icb.get(fid, np.nan)),
            "heterogeneity": float(((f - f.mean(axis=0)) ** 2).sum()) if f.shape[1] else 0.0,
            "locked": bool(set(members) & locked),
            "note": note,
        })
    return pd.DataFrame(rows)


def _compactness(design):
    try:
        fp = design.geometry()
    except CdrError:
        return {}
    geom = fp.geometry
    if fp.crs is not None and fp.crs.is_geographic:
        geom = geom.to_crs("EPSG:27700")
    # close the generalisation gaps (< 250 m) so they do not count as perimeter
    closed = geom.buffer(125).buffer(-125)
    pp = 4 * np.pi * closed.area / closed.length.replace(0, np.nan) ** 2
    return dict(zip(fp["footprint_id"], pp.to_numpy()))


# ----------------------------------------------------------------------------------------------
# evaluate / compare / simulate
# ----------------------------------------------------------------------------------------------
def evaluate(design, areas=None, *, min_deaths=None, min_probability=_EVAL_PROBABILITY, name=None, bound=True):
    """Headline metrics of any design (built, hand-made or from the ``footprints/`` catalog).

    Parameters
    ----------
    design : FootprintDesign, path or Series la_code -> footprint_id
    areas : DataFrame, optional
        Areas with ``expected_deaths`` (default: the design's own, or England's).
    min_deaths : float, optional
        Threshold in deaths a year; default the design's (60).
    min_probability : float, default 0.9
        Level of the chance criterion: a footprint meets it when P(Poisson(expected) >= min_deaths)
        is at least this.
    name : str, optional
        Label for the row (default: the design's file name or "design").
    bound : bool, default True
        Compute the proven upper bound on the number of footprints for the same areas and
        threshold (about a second on England) and the design's gap to it.

    Returns
    -------
    pandas.DataFrame
        One row: ``design``, ``n_footprints``, ``n_areas``, ``n_uncovered_areas``, ``min_deaths``,
        ``n_footprints_meeting`` (footprints that are contiguous and reach ``min_deaths`` expected
        deaths a year: the footprints that count towards the bound), ``upper_bound`` (the most
        such footprints any design of these areas can have; NaN with ``bound=False``),
        ``gap_to_bound`` (``upper_bound - n_footprints_meeting``: never negative; 0 means no design
        has more footprints that meet the threshold), ``gap_note`` (why the gap is NaN, or which
        footprints it leaves out; empty otherwise), ``n_below_threshold`` (expected deaths < min_deaths),
        ``n_below_chance`` (P(reach) < min_probability), ``expected_years_below`` (sum over
        footprints of P(Poisson year < min_deaths)), ``min_expected_deaths``,
        ``median_expected_deaths``, ``max_expected_deaths``, ``n_noncontiguous``,
        ``n_crossing_pfa``, ``mean_pfa_majority_share``, ``n_crossing_icb``,
        ``mean_icb_majority_share``, ``mean_compactness``, ``heterogeneity`` (total
        within-footprint sum of squares of standardised IMD rank and death rate), ``partial``.

    Notes
    -----
    The bound counts footprints that are valid on their own: connected and at or above the
    threshold. A design can have more footprints than the bound only by including footprints
    below the threshold (the real CDOP design has 54 footprints against a bound of 48, 29 of them
    below 60 expected deaths), so the gap is measured on ``n_footprints_meeting``, not on
    ``n_footprints``: ``gap_to_bound = upper_bound - n_footprints_meeting >= 0``, because disjoint
    valid footprints are disjoint feasible sets, which the bound counts.

    Examples
    --------
    >>> from cdr.footprints import FootprintDesign
    >>> line = {"0": ["1"], "1": ["0", "2"], "2": ["1"]}
    >>> areas = pd.DataFrame({"la_code": ["0", "1", "2"], "expected_deaths": [30.0, 40.0, 70.0]})
    >>> d = FootprintDesign({"0": "A", "1": "A", "2": "B"}, areas, neighbors=line)
    >>> evaluate(d, bound=False)[["n_footprints", "n_below_threshold", "n_noncontiguous"]].iloc[0].tolist()
    [2, 0, 0]
    >>> split = FootprintDesign({"0": "A", "1": "B", "2": "C"}, areas, neighbors=line)  # A and B below 60
    >>> evaluate(split)[["n_footprints", "n_footprints_meeting", "upper_bound", "gap_to_bound"]].iloc[0].tolist()
    [3, 1, 2, 1]
    """
    design = _as_design(design, areas)
    md = float(design.min_deaths if min_deaths is None else min_deaths)
    t = footprint_table(design, min_deaths=md, min_probability=min_probability,
                        attributes=("imd_avg_rank", "death_rate"))
    ub = np.nan
    if bound:
        a = design.areas()  # all areas, covered or not: the same problem for every design
        try:
            ub = upper_bound(a.drop(columns="footprint_id"), min_deaths=md, contiguity=design.neighbors).value
        except CdrError:
            ub = np.nan
    p = t["p_reach_threshold"].to_numpy() if len(t) else np.zeros(0)
    valid = (t["meets_threshold"] & t["contiguous"]) if len(t) else pd.Series(dtype=bool)
    n_meeting = int(valid.sum())
    if not bound:
        gap_note = "upper bound not computed (bound=False)"
    elif not np.isfinite(ub):
        gap_note = "upper bound not available for these areas (no contiguity graph or no feasible footprint)"
    elif n_meeting < design.n_footprints:
        gap_note = (f"gap counts the {n_meeting} of {design.n_footprints} footprints that are contiguous and reach "
                    f"{md:g} expected deaths a year")
    else:
        gap_note = ""
    row = {
        "design": name or design.meta.get("name") or "design",
        "n_footprints": design.n_footprints,
        "n_areas": int(design.labels.notna().sum()),
        "n_uncovered_areas": int(design.labels.isna().sum()),
        "min_deaths": md,
        "n_footprints_meeting": n_meeting,
        "upper_bound": ub,
        "gap_to_bound": ub - n_meeting if np.isfinite(ub) else np.nan,
        "gap_note": gap_note,
        "n_below_threshold": int((~t["meets_threshold"]).sum()) if len(t) else 0,
        "n_below_chance": int((~t["meets_chance"]).sum()) if len(t) else 0,
        "expected_years_below": float((1 - p).sum()),
        "min_expected_deaths": float(t["expected_deaths"].min()) if len(t) else np.nan,
        "median_expected_deaths": float(t["expected_deaths"].median()) if len(t) else np.nan,
        "max_expected_deaths": float(t["expected_deaths"].max()) if len(t) else np.nan,
        "n_noncontiguous": int((~t["contiguous"]).sum()) if len(t) else 0,
        "n_crossing_pfa": int((t["pfa_majority_share"] < 1 - 1e-9).sum()) if len(t) else 0,
        "mean_pfa_majority_share": float(t["pfa_majority_share"].mean()) if len(t) else np.nan,
        "n_crossing_icb": int((t["icb_majority_share"] < 1 - 1e-9).sum()) if len(t) else 0,
        "mean_icb_majority_share": float(t["icb_majority_share"].mean()) if len(t) else np.nan,
        "mean_compactness": float(t["compactness"].mean()) if len(t) else np.nan,
        "heterogeneity": float(t["heterogeneity"].sum()) if len(t) else 0.0,
        "partial": design.partial,
    }
    return pd.DataFrame([row])


def compare(designs, areas=None, *, min_deaths=None, min_probability=_EVAL_PROBABILITY, bound=True):
    """:func:`evaluate` several designs on the same areas: one row per design.

    Parameters
    ----------
    designs : dict name -> design, or list of designs / paths
        Designs (:class:`FootprintDesign`, design CSV paths or Series ``la_code -> footprint_id``);
        a list is labelled by each design's ``meta["name"]`` or ``design_1``, ``design_2``, ...
    areas, min_deaths, min_probability, bound
        As for :func:`evaluate`; the upper bound is computed once per distinct set of areas.

    Returns
    -------
    pandas.DataFrame
        The rows of :func:`evaluate`, in the order given.

    Examples
    --------
    Three areas in a line with 30, 40 and 70 expected deaths a year (threshold 60):

    >>> from cdr.footprints import FootprintDesign
    >>> line = {"0": ["1"], "1": ["0", "2"], "2": ["1"]}
    >>> areas = pd.DataFrame({"la_code": ["0", "1", "2"], "expected_deaths": [30.0, 40.0, 70.0]})
    >>> split = FootprintDesign({"0": "A", "1": "A", "2": "B"}, areas, neighbors=line)
    >>> merged = FootprintDesign({"0": "A", "1": "A", "2": "A"}, areas, neighbors=line)
    >>> table = compare({"split": split, "merged": merged})
    >>> table[["design", "n_footprints", "upper_bound", "gap_to_bound"]].values.tolist()
    [['split', 2, 2, 0], ['merged', 1, 2, 1]]
    """
    if isinstance(designs, dict):
        items = list(designs.items())
    else:
        items = []
        for d in designs:
            dd = _as_design(d, areas)
            items.append((dd.meta.get("name") or f"design_{len(items) + 1}", dd))
    if not items:
        raise CdrError("compare: give at least one design")
    rows = [evaluate(d, areas, min_deaths=min_deaths, min_probability=min_probability, name=str(n), bound=bound)
            for n, d in items]
    return pd.concat(rows, ignore_index=True)


def simulate(design, years=1, n=1000, *, min_deaths=None, seed=0, areas=None):
    """How often each footprint would fall below the threshold in Poisson years.

    Parameters
    ----------
    design : FootprintDesign or path
    years : int, default 1
        Years per simulated run (e.g. 5 for a five-year review period).
    n : int, default 1000
        Number of simulated runs.
    min_deaths : float, optional
        Threshold (deaths a year); default the design's.
    seed : int or numpy.random.Generator

    Returns
    -------
    pandas.DataFrame
        One row per footprint: ``footprint_id``, ``expected_deaths``, ``p_below_exact``
        (P(Poisson(expected) < min_deaths)), ``share_years_below`` (simulated), ``share_runs_with_year_below``
        (runs of ``years`` years with at least one year below), ``mean_deaths``, ``p05``, ``p95``
        (simulated deaths in a year), ``n_runs``, ``years``.

    Examples
    --------
    >>> from cdr.footprints import FootprintDesign
    >>> areas = pd.DataFrame({"la_code": ["a", "b"], "expected_deaths": [60.0, 90.0]})
    >>> d = FootprintDesign({"a": "A", "b": "B"}, areas)
    >>> s = simulate(d, n=4000, seed=1)
    >>> s["p_below_exact"].round(3).tolist()
    [0.483, 0.0]
    """
    design = _as_design(design, areas)
    md = float(design.min_deaths if min_deaths is None else min_deaths)
    if int(years) < 1 or int(n) < 1:
        raise CdrError(f"simulate: years and n must be >= 1; got years={years!r}, n={n!r}")
    rng = as_generator(seed)
    areas = design.areas()
    lam = areas[areas["footprint_id"].notna()].groupby("footprint_id")["expected_deaths"].sum().sort_index()
    draws = rng.poisson(lam.to_numpy()[None, None, :], size=(int(n), int(years), len(lam)))
    below = draws < md
    return pd.DataFrame({
        "footprint_id": lam.index,
        "expected_deaths": lam.to_numpy(),
        "p_below_exact": 1 - p_reach(lam.to_numpy(), md),
        "share_years_below": below.mean(axis=(0, 1)),
        "share_runs_with_year_below": below.any(axis=1).mean(axis=0),
        "mean_deaths": draws.mean(axis=(0, 1)),
        "p05": np.quantile(draws.reshape(-1, len(lam)), 0.05, axis=0),
        "p95": np.quantile(draws.reshape(-1, len(lam)), 0.95, axis=0),
        "n_runs": int(n),
        "years": int(years),
    })


# ----------------------------------------------------------------------------------------------
# upper bound
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UpperBound:
    """A proven upper bound on the number of footprints.

    Returned by :func:`upper_bound`; ``int(bound)`` gives ``value``.

    Attributes
    ----------
    value : int
        The bound (footprints).
    method : {"ilp", "lp", "relaxation"}
        ``"ilp"``: the set-packing optimum over all minimal feasible sets, equal to the maximum;
        ``"lp"``: its LP relaxation, rounded down; ``"relaxation"``: n areas at or above the
        threshold + the rest's deaths / threshold, per subproblem.
    lp : float
        The LP relaxation value (footprints).
    relaxation : float
        The area-sum bound (footprints).
    trivial : float
        Total expected deaths a year / threshold (footprints).
    subproblems : pandas.DataFrame
        One row per independent subproblem (``subproblem``, ``n_areas``, ``expected_deaths``,
        ..., ``lp_bound``, ``relaxation_bound``, ``n_sets``).

    Examples
    --------
    Nine areas of 25 expected deaths a year: 225 / 60 = 3.75, and no footprint of two areas
    reaches 60, so at most 3:

    >>> import libpysal
    >>> w = libpysal.weights.lat2W(3, 3, rook=True, id_type="string")
    >>> areas = pd.DataFrame({"la_code": [str(i) for i in w.id_order], "expected_deaths": 25.0})
    >>> b = upper_bound(areas, min_deaths=60, contiguity=w)
    >>> int(b), b.method, b.trivial, len(b.subproblems)
    (3, 'ilp', 3.75, 1)
    """

    value: int
    method: str
    lp: float
    relaxation: float
    trivial: float
    subproblems: pd.DataFrame = field(repr=False)

    def __int__(self):
        return int(self.value)


def upper_bound(areas=None, deaths="expected_deaths", min_deaths=60, *, min_probability=None, nest_within=None,
                contiguity=None, max_population=None, lock=None, max_sets=200_000) -> UpperBound:
    """A proven upper bound on how many footprints any valid design can have.

    Every footprint contains a minimal feasible set (connected, reaching the threshold, with no
    connected proper subset that does), and footprints are disjoint, so the largest number of
    disjoint minimal sets bounds the number of footprints. Where the sets can be enumerated
    (England: about 1,800 at 60 deaths) the set-packing integer programme is solved exactly with
    HiGHS and the bound equals the maximum; otherwise the bound is the area-sum relaxation.

    Parameters
    ----------
    areas, deaths, min_deaths, min_probability, nest_within, contiguity, max_population, lock
        As for :class:`~cdr.footprints.FootprintBuilder`. Groups that cannot reach the threshold
        (they would have to merge) add nothing.
    max_sets : int, default 200_000
        Enumeration budget per subproblem.

    Returns
    -------
    UpperBound

    Examples
    --------
    >>> import libpysal
    >>> w = libpysal.weights.lat2W(3, 3, rook=True, id_type="string")
    >>> areas = pd.DataFrame({"la_code": [str(i) for i in w.id_order], "expected_deaths": 25.0})
    >>> b = upper_bound(areas, min_deaths=60, contiguity=w)
    >>> b.value, b.method, round(b.trivial, 2)
    (3, 'ilp', 3.75)
    """
    from cdr.footprints._builder import FootprintBuilder, prepare_problem
    from cdr.footprints._solver import _pack, enumerate_minimal_sets, relaxation_bound

    builder = FootprintBuilder(min_deaths, min_probability=min_probability, nest_within=nest_within,
                               max_population=max_population, lock=lock, contiguity=contiguity,
                               objective={"attributes": [], "compactness": 0}, max_sets=max_sets)
    prep = prepare_problem(builder, areas, deaths)
    rows, value, lp_total, relax_total, methods = [], 0, 0.0, 0.0, set()
    for comp, sub in prep["subproblems"]:
        relax = relaxation_bound(sub.d, sub.threshold)
        sets = enumerate_minimal_sets(sub.d, sub.nbrs, sub.threshold, pop=sub.pop, max_population=sub.max_population,
                                      max_sets=max_sets)
        lp_v = np.nan
        if sets:
            res = _pack(sets, sub.n, None, time_limit=60)
            lp = _pack(sets, sub.n, None, time_limit=60, lp_only=True)
            lp_v = float(-lp.fun) if lp.x is not None else np.nan
            if res.status == 0:
                b, m = int(round(-res.fun)), "ilp"
            else:
                b, m = int(np.floor(min(lp_v, relax) + 1e-6)), "lp"
        else:
            b, m = int(np.floor(relax + 1e-6)), "relaxation"
        methods.add(m)
        value += b
        lp_total += lp_v if np.isfinite(lp_v) else relax
        relax_total += relax
        rows.append({"subproblem": sub.key, "n_areas": sub.n, "expected_deaths": float(sub.d.sum()), "upper_bound": b,
                     "method": m, "lp_bound": lp_v, "relaxation_bound": relax, "n_sets": len(sets) if sets else np.nan})
    n_locked = len(set(prep["lock"].values()))
    method = "ilp" if methods <= {"ilp"} else ("lp" if "relaxation" not in methods else "relaxation")
    trivial = float(prep["areas"]["expected_deaths"].sum() / prep["threshold"])
    return UpperBound(value=value + n_locked, method=method, lp=lp_total + n_locked, relaxation=relax_total + n_locked,
                      trivial=trivial, subproblems=pd.DataFrame(rows))


# ----------------------------------------------------------------------------------------------
# the public validity checker
# ----------------------------------------------------------------------------------------------
def check_design(design, areas=None, *, min_deaths=None, min_probability=None, nest_within=None, contiguity=None,
                 lock=None) -> pd.DataFrame:
    """Every way a design breaks the rules; an empty table means it is valid.

    Works on any design, built here or by hand: every area assigned exactly once, every footprint
    contiguous, every footprint at or above the threshold (and the chance constraint), no
    footprint crossing ``nest_within``, locked areas kept together and alone.

    Parameters
    ----------
    design : FootprintDesign, path or Series la_code -> footprint_id
    areas : DataFrame, optional
        The areas the design must cover (with ``expected_deaths``); default the design's own.
    min_deaths : float, optional
        Default the design's (60).
    min_probability : float, optional
        When given, footprints must reach ``min_deaths`` in a Poisson year with this probability.
    nest_within : str, optional
        Column of ``areas`` footprints must not cross.
    contiguity : graph, optional
        As for the builder; default the design's graph or England's.
    lock : dict or Series, optional
        ``la_code -> footprint_id`` that must be kept.

    Returns
    -------
    pandas.DataFrame
        One row per problem: ``check`` (``"coverage"``, ``"contiguity"``, ``"threshold"``,
        ``"chance"``, ``"nesting"``, ``"lock"``), ``footprint_id``, ``la_code``, ``value``, ``detail``.

    Examples
    --------
    >>> from cdr.footprints import FootprintDesign
    >>> line = {"0": ["1"], "1": ["0", "2"], "2": ["1"]}
    >>> areas = pd.DataFrame({"la_code": ["0", "1", "2"], "expected_deaths": [40.0, 40.0, 40.0]})
    >>> bad = FootprintDesign({"0": "A", "2": "A", "1": "B"}, areas, neighbors=line)
    >>> check_design(bad)["check"].tolist()
    ['contiguity', 'threshold']
    """
    design = _as_design(design, areas)
    from cdr.footprints._builder import chance_threshold, resolve_graph, resolve_lock

    a = design.areas() if areas is None else _with_deaths(areas, design).assign(
        la_code=lambda f: f["la_code"].astype(str), footprint_id=lambda f: f["la_code"].astype(str).map(design.labels))
    md = float(design.min_deaths if min_deaths is None else min_deaths)
    problems = []
    labels = design.labels
    codes = set(a["la_code"])
    for c in sorted(codes - set(labels.index)):
        problems.append(("coverage", None, c, None, "area not assigned to any footprint"))
    for c in sorted(set(labels.index) - codes):
        problems.append(("coverage", labels[c], c, None, "design names an area not in areas"))
    for c in labels.index[labels.isna()]:
        if c in codes:
            problems.append(("coverage", None, c, None, "area has no footprint (partial design)"))
    if contiguity is not None:
        neighbors = resolve_graph(contiguity, a[["la_code"]], caller="check_design")
    else:
        neighbors = _neighbors(design)
    assigned = a[a["footprint_id"].notna()]
    for fid, grp in assigned.groupby("footprint_id", sort=True):
        members = grp["la_code"].tolist()
        if neighbors is not None and not _connected(members, neighbors):
            problems.append(("contiguity", fid, None, len(members), "footprint is not connected in the contiguity graph"))
        total = float(grp["expected_deaths"].sum())
        if total < md - 1e-9:
            problems.append(("threshold", fid, None, total, f"{total:.2f} expected deaths a year < min_deaths={md:g}"))
        if min_probability is not None:
            lam = chance_threshold(md, min_probability)
            if total < lam - 1e-9:
                problems.append(("chance", fid, None, total,
                                 f"P(reach {md:g}) = {float(p_reach(total, md)):.3f} < {min_probability} "
                                 f"(needs {lam:.2f} expected deaths)"))
        if nest_within is not None:
            if nest_within not in grp.columns:
                raise CdrError(f"check_design: nest_within={nest_within!r} is not a column of the areas")
            units = sorted(grp[nest_within].astype(str).unique())
            if len(units) > 1:
                problems.append(("nesting", fid, None, len(units), f"crosses {nest_within}: {', '.join(units)}"))
    if lock is not None:
        lock = resolve_lock(lock, a, caller="check_design")
        by_lock = {}
        for code, lab in lock.items():
            by_lock.setdefault(lab, set()).add(code)
        for lab, members in sorted(by_lock.items()):
            fids = {labels.get(c) for c in members}
            if len(fids) != 1:
                problems.append(("lock", None, ";".join(sorted(members)), None, f"locked footprint {lab} was split"))
                continue
            fid = fids.pop()
            actual = set(labels.index[labels == fid])
            if actual != members:
                extra = sorted(actual - members)
                problems.append(("lock", fid, ";".join(extra), None, f"locked footprint {lab} gained areas"))
    return pd.DataFrame(problems, columns=["check", "footprint_id", "la_code", "value", "detail"])
