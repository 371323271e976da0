"""Per-footprint tables of a design (what ``FootprintDesign.table()`` shows), and the chance rule.

Works on any object with ``labels``, ``areas()``, ``neighbors``, ``info``, ``params``, ``locked`` and
``geometry()`` (a :class:`~cdr.footprints.FootprintDesign`), so it sits below ``_design`` and
imports no other footprints module than the problem's helpers.

The chance constraint is judged here by the rule the builder and :func:`cdr.footprints.upper_bound`
apply (:func:`chance_rule`): Poisson when the areas carry only ``expected_deaths``; each footprint's
own posterior predictive variance when they also carry ``predictive_var``
(:func:`cdr.reference.expected_deaths` with ``interval=``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import nbinom, poisson

from cdr import _validate as check
from cdr.data._contiguity import is_connected
from cdr.errors import ArgumentError, CdrError
from cdr.footprints._objective import within_ss
from cdr.footprints._problem import chance_threshold, chance_weights

__all__ = ["footprint_table", "p_reach", "chance_rule", "design_neighbors", "EVAL_PROBABILITY"]

#: Level of the chance criterion used when neither the caller nor the design gives one.
EVAL_PROBABILITY = 0.9


def p_reach(expected, min_deaths, extra_var=0.0):
    """P(a year's count >= min_deaths), vectorised.

    Poisson(expected) when ``extra_var`` is 0; otherwise the negative binomial with mean ``expected``
    and variance ``expected + extra_var`` (a footprint's posterior predictive: ``extra_var`` is the sum
    of its areas' ``predictive_var - expected_deaths``), the count the builder's chance rule assumes.
    """
    expected, extra = np.broadcast_arrays(np.asarray(expected, dtype=float), np.asarray(extra_var, dtype=float))
    m = np.ceil(min_deaths) - 1
    out = np.asarray(poisson.sf(m, expected), dtype=float)
    nb = extra > 1e-12
    if np.any(nb):
        mu, k = expected[nb], extra[nb]
        out = out.copy()
        out[nb] = nbinom.sf(m, mu * mu / k, mu / (mu + k))
    return out if out.ndim else float(out)


def chance_rule(areas, min_deaths, min_probability, *, caller="table"):
    """The chance rule for these areas, as the builder applies it.

    Returns
    -------
    weights : pandas.Series
        Per ``la_code``: ``expected_deaths`` (Poisson), or the builder's per-area weights
        ``e_i - b x kappa_i`` from :func:`~cdr.footprints._problem.chance_weights` when the areas
        have a ``predictive_var`` column.
    threshold : float
        A footprint meets the chance constraint when the sum of its weights is at least this.
    extra_var : pandas.Series
        Per ``la_code``: ``predictive_var - expected_deaths`` (0 without ``predictive_var``).
    """
    e = pd.to_numeric(areas["expected_deaths"], errors="coerce").to_numpy(float)
    codes = areas["la_code"].astype(str).to_numpy()
    if "predictive_var" not in areas.columns:
        return (pd.Series(e, index=codes), chance_threshold(min_deaths, min_probability),
                pd.Series(0.0, index=codes))
    pv = pd.to_numeric(areas["predictive_var"], errors="coerce").to_numpy(float)
    bad = codes[~(pv >= e - 1e-9)].tolist()
    if bad:
        raise ArgumentError(f"{caller}: predictive_var must be a number >= expected_deaths (the variance of a year's "
                            f"count); {len(bad)} areas are not: {bad[:10]}. Take both columns from "
                            "cdr.reference.expected_deaths(interval=0.9), or drop predictive_var for a Poisson chance constraint")
    w, threshold, _ = chance_weights(e, pv, min_deaths, min_probability)
    return pd.Series(w, index=codes), threshold, pd.Series(np.maximum(pv - e, 0.0), index=codes)


def design_neighbors(design):
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
    if min_deaths is not None:
        check.number(min_deaths, "min_deaths", "FootprintDesign.table", above=0, example=60, unit="deaths a year")
    if min_probability is not None:
        check.probability(min_probability, "min_probability", "FootprintDesign.table")
    if attributes is not None:
        check.strings(attributes, "attributes", "FootprintDesign.table", example="['imd_avg_rank']", allow_empty=True)
    md = float(design.min_deaths if min_deaths is None else min_deaths)
    mp = min_probability if min_probability is not None else (design.params.get("min_probability") or EVAL_PROBABILITY)
    areas = design.areas()
    covered = areas[areas["footprint_id"].notna()].copy()
    if attributes is None:
        attributes = tuple(design.info.get("objective", {}).get("attributes", ("imd_avg_rank", "death_rate")))
    weights, chance_at, extra = chance_rule(areas, md, mp, caller="table")
    z = _standardised(areas, attributes)
    zdf = pd.DataFrame(z, index=areas.index)
    neighbors = design_neighbors(design)
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
        kappa = float(extra.loc[members].sum())
        note = "; ".join(f"{c} merged in (below threshold alone)" for c in members if c in merged_codes)
        rows.append({
            "footprint_id": fid,
            "n_areas": len(members),
            "la_codes": ";".join(members),
            "la_names": ";".join(grp["la_name"].astype(str)) if "la_name" in grp.columns else ";".join(members),
            "child_population": float(grp["child_population"].sum()) if "child_population" in grp.columns else np.nan,
            "expected_deaths": expected,
            "p_reach_threshold": float(p_reach(expected, md, kappa)),
            "meets_threshold": bool(expected >= md - 1e-9),
            "meets_chance": bool(float(weights.loc[members].sum()) >= chance_at - 1e-9),
            "contiguous": bool(is_connected(members, neighbors)) if neighbors is not None else True,
            "compactness": compact.get(fid, np.nan),
            "pfa_majority_share": float(pfa.get(fid, np.nan)),
            "icb_majority_share": float(icb.get(fid, np.nan)),
            "heterogeneity": within_ss(f) if f.shape[1] else 0.0,
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

