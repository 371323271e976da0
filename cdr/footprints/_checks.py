"""Every way a design breaks the rules: the logic behind :func:`cdr.footprints.check_design`.

Rules not given by the caller default to the ones the design was built (or written) with, read
from ``design.params`` (``min_deaths``, ``min_probability``, ``nest_within``, ``max_population``), so
a design checked with no arguments is checked against every rule its user set.
"""
from __future__ import annotations

import pandas as pd

from cdr import _validate as check
from cdr.data._contiguity import is_connected
from cdr.errors import ArgumentError
from cdr.footprints._problem import resolve_graph, resolve_lock
from cdr.footprints._table import chance_rule, design_neighbors, p_reach

__all__ = ["violations", "CHECK_COLUMNS", "rules_of"]

CHECK_COLUMNS = ["check", "footprint_id", "la_code", "value", "detail"]


def rules_of(design, *, min_deaths=None, min_probability=None, nest_within=None, max_population=None,
             caller: str = "check_design") -> dict:
    """The rules to check: each argument (validated), or else the design's own parameter."""
    if min_deaths is not None:
        check.number(min_deaths, "min_deaths", caller, above=0, example=60, unit="deaths a year")
    if min_probability is not None:
        check.probability(min_probability, "min_probability", caller)
    if nest_within is not None:
        check.text(nest_within, "nest_within", caller, example="'police_force_area'")
    if max_population is not None:
        check.number(max_population, "max_population", caller, above=0, example=500_000, unit="children")
    params = design.params or {}
    return {
        "min_deaths": float(design.min_deaths if min_deaths is None else min_deaths),
        "min_probability": min_probability if min_probability is not None else params.get("min_probability"),
        "nest_within": nest_within if nest_within is not None else params.get("nest_within"),
        "max_population": max_population if max_population is not None else params.get("max_population"),
    }


def violations(design, areas=None, *, min_deaths=None, min_probability=None, nest_within=None, contiguity=None,
               lock=None, max_population=None) -> pd.DataFrame:
    """One row per problem (``check``, ``footprint_id``, ``la_code``, ``value``, ``detail``)."""
    rules = rules_of(design, min_deaths=min_deaths, min_probability=min_probability, nest_within=nest_within,
                     max_population=max_population)
    md, mp, nest, cap = rules["min_deaths"], rules["min_probability"], rules["nest_within"], rules["max_population"]
    if areas is None:
        a = design.areas()
    else:
        a = areas.copy()
        if "expected_deaths" not in a.columns:
            own = design.areas().set_index("la_code")["expected_deaths"]
            a["expected_deaths"] = a["la_code"].astype(str).map(own)
        a["la_code"] = a["la_code"].astype(str)
        a["footprint_id"] = a["la_code"].map(design.labels)
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
        neighbors = design_neighbors(design)
    if nest is not None and nest not in a.columns:
        raise ArgumentError(f"check_design: nest_within={nest!r} is not a column of the areas; pass areas= with that column")
    if cap is not None and "child_population" not in a.columns:
        raise ArgumentError(f"check_design: max_population={cap!r} needs a 'child_population' column in the areas")
    if mp is not None:
        # the builder's rule: Poisson, or each footprint's posterior predictive variance (predictive_var)
        weights, lam, extra = chance_rule(a, md, mp, caller="check_design")
    assigned = a[a["footprint_id"].notna()]
    for fid, grp in assigned.groupby("footprint_id", sort=True):
        members = grp["la_code"].tolist()
        if neighbors is not None and not is_connected(members, neighbors):
            problems.append(("contiguity", fid, None, len(members), "footprint is not connected in the contiguity graph"))
        total = float(grp["expected_deaths"].sum())
        if total < md - 1e-9:
            problems.append(("threshold", fid, None, total, f"{total:.2f} expected deaths a year < min_deaths={md:g}"))
        if mp is not None:
            kappa = float(extra.loc[members].sum())
            score = float(weights.loc[members].sum())
            if score < lam - 1e-9:
                need = (f"needs {lam:.2f} expected deaths" if kappa <= 1e-12 else
                        f"with its posterior predictive variance {total + kappa:.1f}, needs a weighted total of "
                        f"{lam:.2f}, has {score:.2f}")
                problems.append(("chance", fid, None, total,
                                 f"P(reach {md:g}) = {float(p_reach(total, md, kappa)):.3f} vs {mp} ({need})"))
        if nest is not None:
            units = sorted(grp[nest].astype(str).unique())
            if len(units) > 1:
                problems.append(("nesting", fid, None, len(units), f"crosses {nest}: {', '.join(units)}"))
        if cap is not None:
            pop = float(grp["child_population"].sum())
            if pop > float(cap) + 1e-9:
                problems.append(("max_population", fid, None, pop,
                                 f"child population {pop:,.0f} > max_population={float(cap):,.0f}"))
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
    return pd.DataFrame(problems, columns=CHECK_COLUMNS)
