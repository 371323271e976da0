"""Evaluate, compare, simulate and check footprint designs, and bound the number of footprints."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cdr import _validate as check
from cdr._base import as_generator
from cdr.errors import ArgumentError, ArgumentTypeError, CdrError
from cdr.footprints._builder import FootprintBuilder
from cdr.footprints._catalog import load_design
from cdr.footprints._checks import rules_of, violations
from cdr.footprints._design import FootprintDesign
from cdr.footprints._packing import pack
from cdr.footprints._problem import prepare_problem
from cdr.footprints._sets import enumerate_minimal_sets, relaxation_bound
from cdr.footprints._table import EVAL_PROBABILITY, footprint_table, p_reach

__all__ = ["evaluate", "compare", "simulate", "upper_bound", "check_design", "UpperBound", "footprint_table"]


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _as_design(design, areas=None, *, caller: str) -> FootprintDesign:
    if areas is not None:
        check.frame(areas, "areas", caller, columns=["la_code"])
    if isinstance(design, FootprintDesign):
        if areas is not None:
            return FootprintDesign(design.labels, _with_deaths(areas, design), params=design.params, info=design.info,
                                   notes=design.notes, neighbors=design.neighbors, meta=design.meta,
                                   locked=design.locked, columns=design.columns)
        return design
    if isinstance(design, (str,)) or hasattr(design, "__fspath__"):
        return load_design(design, areas=areas)
    if isinstance(design, (pd.Series, dict, pd.DataFrame)):
        return FootprintDesign(design, areas)
    raise ArgumentTypeError(f"{caller}: 'design' must be a FootprintDesign, a design file path or catalog name, or a "
                            f"Series la_code -> footprint_id; got {check.describe(design)}.")


def _with_deaths(areas, design):
    if "expected_deaths" in areas.columns:
        return areas
    return areas.assign(expected_deaths=areas["la_code"].astype(str).map(design.areas().set_index("la_code")["expected_deaths"]))


def _constraints(rules) -> str:
    parts = [f"min_deaths={rules['min_deaths']:g}"]
    for key in ("min_probability", "nest_within", "max_population"):
        if rules.get(key) is not None:
            parts.append(f"{key}={rules[key]!r}" if isinstance(rules[key], str) else f"{key}={rules[key]:g}")
    return "; ".join(parts)


def _label(design, fallback):
    """A design's label: its metadata name (from ``cdr footprints build --name`` or the catalog), else ``fallback``."""
    return str(design.meta.get("name") or fallback)


# ----------------------------------------------------------------------------------------------
# evaluate / compare / simulate
# ----------------------------------------------------------------------------------------------
def evaluate(design, areas=None, *, min_deaths=None, min_probability=None, name=None, bound=True):
    """Headline metrics of any design (built, hand-made or from the ``footprints/`` catalog).

    Parameters
    ----------
    design : FootprintDesign, path or Series la_code -> footprint_id
    areas : DataFrame, optional
        Areas with ``expected_deaths`` (default: the design's own, or England's).
    min_deaths : float, optional
        Threshold in deaths a year; default the one the design was built for (its parameters or
        file metadata, e.g. 50 for a design built with ``--min-deaths 50``), else 60.
    min_probability : float, optional
        Chance constraint: a footprint meets it when P(a year's count >= min_deaths) is at least
        this, judged by the builder's rule: Poisson(expected), or, when the areas have a
        ``predictive_var`` column (:func:`cdr.reference.expected_deaths` with ``interval=``), each
        footprint's own posterior predictive variance (the sufficient rule of
        :func:`cdr.footprints._problem.chance_weights`, the one the builder and the upper bound use).
        Default the design's own (built with ``min_probability``); without one, footprints
        are judged on the threshold alone and ``n_below_chance`` uses 0.9.
    name : str, optional
        Label for the row (default: the design's name from its metadata, else "design").
    bound : bool, default True
        Compute the proven upper bound on the number of footprints for the same areas under the
        design's own constraints (threshold, chance constraint, ``nest_within``,
        ``max_population``; about a second on England) and the design's gap to it.

    Returns
    -------
    pandas.DataFrame
        One row: ``design``, ``n_footprints``, ``n_areas``, ``n_uncovered_areas``, ``min_deaths``,
        ``n_footprints_meeting`` (footprints that keep every rule: contiguous, reaching the
        threshold and any chance, nesting or population rule; the footprints that count towards
        the bound), ``n_rule_violations`` (rows of :func:`check_design` other than coverage), ``upper_bound`` (the most
        such footprints any design of these areas can have; NaN with ``bound=False``),
        ``gap_to_bound`` (``upper_bound - n_footprints_meeting``: never negative; 0 means no design
        has more footprints that meet the threshold), ``gap_note`` (why the gap is NaN, or which
        footprints it leaves out; empty otherwise), ``n_below_threshold`` (expected deaths < min_deaths),
        ``n_below_chance`` (footprints failing the chance rule at min_probability),
        ``expected_years_below`` (sum over footprints of P(a year < min_deaths), Poisson or with the
        posterior predictive variance), ``min_expected_deaths``,
        ``median_expected_deaths``, ``max_expected_deaths``, ``n_noncontiguous``,
        ``n_crossing_pfa``, ``mean_pfa_majority_share``, ``n_crossing_icb``,
        ``mean_icb_majority_share``, ``mean_compactness``, ``heterogeneity`` (total
        within-footprint sum of squares of standardised IMD rank and death rate), ``partial``,
        ``constraints`` (the rules the design is judged by, e.g.
        ``"min_deaths=60; nest_within='police_force_area'"``) and ``deaths_source`` (from the
        design's metadata).

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
    design = _as_design(design, areas, caller="evaluate")
    if name is not None:
        check.text(name, "name", "evaluate", example="'my_design'")
    check.flag(bound, "bound", "evaluate")
    rules = rules_of(design, min_deaths=min_deaths, min_probability=min_probability, caller="evaluate")
    md = rules["min_deaths"]
    t = footprint_table(design, min_deaths=md, min_probability=rules["min_probability"] or EVAL_PROBABILITY,
                        attributes=("imd_avg_rank", "death_rate"))
    a = design.areas()  # all areas, covered or not: the same problem for every design
    for key in ("nest_within", "max_population"):
        column = rules[key] if key == "nest_within" else "child_population"
        if rules[key] is not None and column not in a.columns:
            rules[key] = None  # the areas cannot say (stated in `constraints`)
    problems = violations(design, **{k: rules[k] for k in ("min_deaths", "min_probability", "nest_within", "max_population")})
    broken = problems[problems["check"] != "coverage"]
    ub = np.nan
    if bound:
        try:
            ub = upper_bound(a.drop(columns="footprint_id"), min_deaths=md, min_probability=rules["min_probability"],
                             nest_within=rules["nest_within"], max_population=rules["max_population"],
                             contiguity=design.neighbors).value
        except CdrError:
            ub = np.nan
    p = t["p_reach_threshold"].to_numpy() if len(t) else np.zeros(0)
    n_meeting = int(len(t) - broken["footprint_id"].dropna().nunique()) if len(t) else 0
    if not bound:
        gap_note = "upper bound not computed (bound=False)"
    elif not np.isfinite(ub):
        gap_note = "upper bound not available for these areas (no contiguity graph or no feasible footprint)"
    elif n_meeting < design.n_footprints:
        gap_note = (f"gap counts the {n_meeting} of {design.n_footprints} footprints that keep every rule "
                    f"({_constraints(rules)}; contiguous)")
    else:
        gap_note = ""
    row = {
        "design": name or _label(design, "design"),
        "n_footprints": design.n_footprints,
        "n_areas": int(design.labels.notna().sum()),
        "n_uncovered_areas": int(design.labels.isna().sum()),
        "min_deaths": md,
        "n_footprints_meeting": n_meeting,
        "n_rule_violations": int(len(broken)),
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
        "constraints": _constraints(rules),
        "deaths_source": design.info.get("deaths_source") or design.meta.get("deaths"),
    }
    return pd.DataFrame([row])



def compare(designs, areas=None, *, min_deaths=None, min_probability=None, bound=True):
    """:func:`evaluate` several designs: one row per design, each judged by its own constraints.

    Parameters
    ----------
    designs : dict name -> design, or list of designs / paths
        Designs (:class:`FootprintDesign`, design CSV paths or Series ``la_code -> footprint_id``).
        A list is labelled by each design's name from its metadata (``cdr footprints build
        --name``, the catalog name), else by its file path; labels that would repeat (five
        ``footprints.csv`` from five folders) are told apart by their folder, then by a number, so
        every design gets its own row.
    areas : DataFrame, optional
        As for :func:`evaluate`.
    min_deaths, min_probability : float, optional
        Override every design's own threshold / chance constraint (default: each design's own, so a
        50-death design is judged at 50 and measured against the bound for 50).
    bound : bool, default True
        As for :func:`evaluate`: each design's gap is to the bound for its own constraints.

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
    if isinstance(designs, (str, FootprintDesign, pd.Series)) or hasattr(designs, "__fspath__") or not (
            isinstance(designs, dict) or hasattr(designs, "__iter__")):
        raise ArgumentTypeError(f"compare: 'designs' must be a list of designs (FootprintDesign, file path or catalog "
                                f"name) or a dict name -> design; got {check.describe(designs)}. Put one design in a "
                                f"list to evaluate it alone, or call evaluate().")
    if isinstance(designs, dict):
        items = [(str(k), _as_design(d, areas, caller="compare")) for k, d in designs.items()]
    else:
        items = []
        for d in designs:
            dd = _as_design(d, areas, caller="compare")
            items.append((_label(dd, dd.meta.get("file") or f"design_{len(items) + 1}"), dd))
        items = _distinct_labels(items)
    if not items:
        raise ArgumentError("compare: 'designs' is empty; give at least one design")
    rows = [evaluate(d, areas, min_deaths=min_deaths, min_probability=min_probability, name=n, bound=bound)
            for n, d in items]
    return pd.concat(rows, ignore_index=True)


def _distinct_labels(items):
    """Tell repeated labels apart by the shortest distinguishing end of their file paths, then a number."""
    import pathlib

    labels = [n for n, _ in items]
    for name in {n for n in labels if labels.count(n) > 1}:
        idx = [i for i, n in enumerate(labels) if n == name]
        parts = [pathlib.Path(items[i][1].meta.get("file") or "").parts for i in idx]
        for depth in range(2, max(len(p) for p in parts) + 1):
            tails = ["/".join(p[-depth:]) for p in parts]
            if len(set(tails)) == len(tails):
                for i, tail in zip(idx, tails):
                    labels[i] = f"{name} ({tail})"
                break
        else:
            for k, i in enumerate(idx, start=1):
                labels[i] = f"{name} #{k}"
    return [(lab, d) for lab, (_, d) in zip(labels, items)]


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
    design = _as_design(design, areas, caller="simulate")
    years = check.integer(years, "years", "simulate", minimum=1, example=5)
    n = check.integer(n, "n", "simulate", minimum=1, example=1000)
    rng = as_generator(check.seed(seed, "seed", "simulate"))
    md = float(design.min_deaths) if min_deaths is None else check.number(
        min_deaths, "min_deaths", "simulate", above=0, example=60, unit="deaths a year")
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
            res = pack(sets, sub.n, time_limit=60)
            lp = pack(sets, sub.n, time_limit=60, lp_only=True)
            # only a programme solved to optimality gives a bound (a timed-out one gives a feasible point)
            lp_v = float(-lp.fun) if lp.status == 0 and lp.x is not None else np.nan
            if res.status == 0 and res.x is not None:
                b, m = int(round(-res.fun)), "ilp"
            elif np.isfinite(lp_v):
                b, m = int(np.floor(min(lp_v, relax) + 1e-6)), "lp"
            else:
                b, m = int(np.floor(relax + 1e-6)), "relaxation"
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
                 lock=None, max_population=None) -> pd.DataFrame:
    """Every way a design breaks the rules; an empty table means it is valid.

    Works on any design, built here or by hand: every area assigned exactly once, every footprint
    contiguous, every footprint at or above the threshold (and the chance constraint), no
    footprint crossing ``nest_within``, none above ``max_population``, locked areas kept together
    and alone. Rules not given default to the ones the design was built with (its parameters or
    file metadata), so ``check_design(design)`` reports every rule its user set that the design
    breaks, including the nesting broken by ``on_infeasible="merge"``.

    Parameters
    ----------
    design : FootprintDesign, path or Series la_code -> footprint_id
    areas : DataFrame, optional
        The areas the design must cover (with ``expected_deaths``); default the design's own.
    min_deaths : float, optional
        Default the design's (60).
    min_probability : float, optional
        Footprints must reach ``min_deaths`` in a year with this probability (Poisson, or each
        footprint's posterior predictive variance when the areas have ``predictive_var``: the
        builder's rule); default the design's own (none for a hand-made design).
    nest_within : str, optional
        Column of ``areas`` footprints must not cross; default the design's own.
    max_population : float, optional
        Largest child population of a footprint; default the design's own.
    contiguity : graph, optional
        As for the builder; default the design's graph or England's.
    lock : dict or Series, optional
        ``la_code -> footprint_id`` that must be kept.

    Returns
    -------
    pandas.DataFrame
        One row per problem: ``check`` (``"coverage"``, ``"contiguity"``, ``"threshold"``,
        ``"chance"``, ``"nesting"``, ``"max_population"``, ``"lock"``), ``footprint_id``, ``la_code``, ``value``, ``detail``.

    Examples
    --------
    >>> from cdr.footprints import FootprintDesign
    >>> line = {"0": ["1"], "1": ["0", "2"], "2": ["1"]}
    >>> areas = pd.DataFrame({"la_code": ["0", "1", "2"], "expected_deaths": [40.0, 40.0, 40.0]})
    >>> bad = FootprintDesign({"0": "A", "2": "A", "1": "B"}, areas, neighbors=line)
    >>> check_design(bad)["check"].tolist()
    ['contiguity', 'threshold']
    """
    design = _as_design(design, areas, caller="check_design")
    return violations(design, areas, min_deaths=min_deaths, min_probability=min_probability, nest_within=nest_within,
                      contiguity=contiguity, lock=lock, max_population=max_population)
