"""The ``factor_model`` table: odds ratios of modifiable factors, fitted for England on pooled years.

One footprint has about 60 deaths a year and fewer completed reviews with a yes/no judgement, and
a region can have as few as 3 footprints (clusters); a logistic model with 15 terms and a cluster-
robust variance is unstable on either. So the model is always fitted on every record in England
(deaths in the pooled periods of the report's trend, completed reviews only) with
:func:`cdr.factors.factor_model`, clustered by footprint as the spec says (by LA when the report
has no footprint design), and the same table appears in every report, whatever its level.

Disclosure rule: an odds ratio compares the level's cases with the reference level's cases, so a
term is published only when both its level and the reference level have at least ``threshold``
events (modifiable) and ``threshold`` non-events; otherwise the whole row is ``[c]``. The counts
behind the odds ratios (pooled over years, by date of death) are not part of the audited bundle,
so they are not published; the model's totals (national, large) are given in the notes.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from cdr.report._bundle import MARK_SUPPRESSED, TableSpec

__all__ = ["factor_model_table", "DECIMALS"]

_FITS: dict = {}   # the same records, years and model give the same fit: England and its footprints share one
DECIMALS = {"odds_ratio": 3, "lower_95": 3, "upper_95": 3, "p_value": 3}   # with the spec's conf: lower_<level>


def decimals(table) -> dict:
    """Decimals of the value columns of a factor_model table (limits named by the spec's level)."""
    return {c: 3 for c in table.columns if c in ("odds_ratio", "p_value") or c.startswith(("lower_", "upper_"))}


#: Defaults of the run-time checks (spec ``[factors] min_events_per_parameter`` and ``min_clusters``).
MIN_EVENTS_PER_PARAMETER = 10
MIN_CLUSTERS = 10
MAX_CI_RATIO = 10_000   # upper / lower limit above which a term is withheld as uninformative
_VARIABLE_SOURCE = {"imd_quintile": "imd_decile", "imd_decile": "imd_decile"}


def _formula_variables(formula: str) -> list:
    import re

    rhs = formula.split("~", 1)[1]
    rhs = re.sub(r"(['\"]).*?\1", "", rhs)
    skip = {"C", "I", "Q", "np", "log", "center", "standardize", "scale", "Treatment", "levels", "reference"}
    return [m.group(1) for m in re.finditer(r"\b([A-Za-z_][A-Za-z0-9_]*)\b(\s*\()?", rhs)
            if not m.group(2) and m.group(1) not in skip]


def _precheck(use: pd.DataFrame, formula: str, outcome: str, cluster, labels, min_clusters: int):
    """The reason the model cannot be fitted on these records, or None."""
    for var in _formula_variables(formula):
        col = _VARIABLE_SOURCE.get(var, var)
        if col in ("footprint_id", "region_code", "year", "reporting_year_start"):
            continue
        if col not in use.columns or use[col].isna().all() or (use[col].astype("string") == "unknown").all():
            return (f"the records have no {col} values, and the formula uses {var}; remove the term from "
                    "[factors] formula, or add the column")
    if outcome not in use.columns:
        return f"the records have no {outcome} column (the panel's judgement)"
    reviewed = use["review_completed"].notna() if "review_completed" in use else pd.Series(False, index=use.index)
    judged = reviewed & use[outcome].astype("string").isin(["yes", "no"] if outcome == "modifiable" else
                                                           ["yes", "no"]).fillna(False)
    if outcome == "modifiable":
        n_judged = int(judged.sum())
        if n_judged == 0:
            return "no completed reviews with a modifiable-factor judgement in the pooled years"
        n_yes = int((use.loc[judged, outcome] == "yes").sum())
        if n_yes in (0, n_judged):
            return (f"all {n_judged:,} judged reviews have the same judgement "
                    f"({'with' if n_yes else 'without'} modifiable factors)")
    if cluster is not None:
        key = {"la": "la_code", "footprint": None, "region": "region_code"}[cluster]
        if cluster == "footprint":
            groups = use["la_code"].map(labels) if labels is not None else use["la_code"]
        elif key in use:
            groups = use[key]
        else:
            groups = None
        n = int(pd.Series(groups).dropna().nunique()) if groups is not None else 0
        if groups is not None and n < min_clusters:
            return (f"{n} {cluster} cluster(s) in the records, fewer than the minimum of {min_clusters} for a "
                    "cluster-robust model ([factors] min_clusters); set [factors] cluster = \"none\" to fit "
                    "without clustering")
    return None


def _degenerate(res, ors, lo_col, up_col, min_epv: int):
    """The reason a fitted model must not be published, or None."""
    info = res.info
    if info.get("converged") is False:
        return "the fit did not converge"
    if info.get("problems") and not info.get("remedy_applied"):
        return ("separation or sparse cells with remedy = \"none\" (" + "; ".join(info["problems"])
                + "); use [factors] remedy = \"firth\" or merge sparse levels")
    n_obs, n_events = int(info["n_obs"]), int(info["n_events"])
    n_par = max(len(ors), 1)
    epv = min(n_events, n_obs - n_events) / n_par
    if epv < min_epv:
        return (f"{min(n_events, n_obs - n_events):,} reviews in the smaller outcome group for {n_par} parameters: "
                f"{epv:.1f} events per parameter, fewer than the minimum of {min_epv} ([factors] "
                "min_events_per_parameter)")
    orv, lo, up = (ors[c].to_numpy(float) for c in ("odds_ratio", lo_col, up_col))
    bad = ~np.isfinite(orv) | ~np.isfinite(lo) | ~np.isfinite(up) | (orv <= 0)
    flat = np.isclose(lo, up, rtol=0, atol=5e-4) | np.isclose(np.log(np.clip(up, 1e-300, None)),
                                                             np.log(np.clip(lo, 1e-300, None)), atol=1e-6)
    if (bad | flat).any():
        terms = ors.loc[bad | flat, "term"].astype(str).tolist()
        return ("degenerate estimates (zero-width or infinite confidence intervals, a sign of a broken variance "
                "such as a single cluster) for "
                + ", ".join(terms[:5]) + (" ..." if len(terms) > 5 else ""))
    return None


def factor_model_table(records: pd.DataFrame, *, keys: np.ndarray, pooled: list, period_labels: dict, labels,
                       threshold: int, spec: dict, data_name: str = "England"):
    """(TableSpec, withheld mask, info dict) for the pooled factor model, or (None, None, info).

    ``records``: validated records; ``keys``: their period keys; ``pooled``: period keys pooled;
    ``labels``: la_code -> footprint_id (or None); ``spec``: the ``[factors]`` section;
    ``data_name``: what the records cover (``"England"``, or the partnership's LAs), used in titles.

    The model is optional: when its inputs are missing or too thin (a formula variable absent, no
    judged reviews, one outcome value, fewer than ``min_clusters`` clusters, fewer than
    ``min_events_per_parameter``) or the fit is degenerate (not converged, zero-width or infinite
    intervals), no table is returned and ``info["error"]`` says why.
    """
    from cdr.factors import factor_model
    from cdr.errors import CdrError

    formula = spec.get("formula", "modifiable ~ C(category) + C(age_band) + imd_quintile + C(sex)")
    cluster = spec.get("cluster", "footprint")
    remedy = spec.get("remedy", "firth")
    conf = float(spec.get("conf", 0.95))
    min_epv = int(spec.get("min_events_per_parameter", MIN_EVENTS_PER_PARAMETER))
    min_clusters = int(spec.get("min_clusters", MIN_CLUSTERS))
    if cluster == "footprint" and labels is None:
        cluster = "la"
    if cluster in (None, "none"):
        cluster = None
    use = records.loc[np.isin(keys, pooled)]
    years = [period_labels[k] for k in pooled]
    info = {"level": "nation" if data_name == "England" else "records", "unit": data_name, "fitted_on": data_name,
            "formula": formula, "cluster": cluster, "remedy": remedy,
            "conf": conf, "periods": years, "threshold": int(threshold),
            "min_events_per_parameter": min_epv, "min_clusters": min_clusters}
    reason = _precheck(use, formula, formula.split("~")[0].strip(), cluster, labels, min_clusters)
    if reason is not None:
        info["error"] = reason
        return None, None, info
    key = (int(pd.util.hash_pandas_object(use, index=False).sum()), formula, cluster, remedy, conf,
           None if labels is None or cluster != "footprint" else tuple(pd.Series(labels).items()))
    if key not in _FITS:
        caught = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                fit = factor_model(use, formula, cluster=cluster, design=labels if cluster == "footprint" else None,
                                   remedy=remedy, conf=conf)
        except (CdrError, ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            fit = exc     # an optional analysis: left out with the reason, the rest of the report is written
        if len(_FITS) >= 4:
            _FITS.pop(next(iter(_FITS)))
        _FITS[key] = (fit, [str(w.message) for w in caught])
    res, messages = _FITS[key]
    if isinstance(res, Exception):
        info["error"] = f"the model could not be fitted: {res}"
        return None, None, info
    ors = res.odds_ratios.reset_index(drop=True)
    from cdr.rates import ci_columns

    reason = _degenerate(res, ors, *ci_columns(conf), min_epv)
    if reason is not None:
        info.update({k: res.info.get(k) for k in ("n_obs", "n_events", "n_clusters", "converged")})
        info["error"] = reason
        return None, None, info
    n_obs, n_events = int(res.info["n_obs"]), int(res.info["n_events"])
    info.update({k: res.info.get(k) for k in ("n_obs", "n_events", "n_clusters", "method", "cov_type", "converged",
                                               "remedy_applied")})
    info["warnings"] = list(messages)
    # the rule: the level and its reference each have >= threshold events and non-events
    n = pd.to_numeric(ors["n"], errors="coerce")
    ev = pd.to_numeric(ors["events"], errors="coerce")
    ok_level = (ev >= threshold) & (n - ev >= threshold)
    ref_n = n_obs - n.groupby(ors["variable"]).transform("sum")
    ref_ev = n_events - ev.groupby(ors["variable"]).transform("sum")
    ok_ref = (ref_ev >= threshold) & (ref_n - ref_ev >= threshold)
    numeric = n.isna()   # a numeric covariate (imd_quintile): the rule applies to the whole model
    ok_numeric = (n_events >= threshold) & (n_obs - n_events >= threshold)
    publish = np.where(numeric, ok_numeric, ok_level & ok_ref)
    reason = np.where(publish, "", np.where(~ok_level.fillna(True), "level has fewer than "
                                            f"{threshold} events or non-events",
                                            "reference level has fewer than " f"{threshold} events or non-events"))
    lo_c, up_c = ci_columns(conf)
    wide = (ors[up_c].to_numpy(float) / np.clip(ors[lo_c].to_numpy(float), 1e-300, None)) > MAX_CI_RATIO
    reason = np.where(publish & wide, f"confidence interval wider than a factor of {MAX_CI_RATIO:,} "
                      "(not informative)", reason)
    publish = np.asarray(publish, dtype=bool) & ~wide
    lab = pd.DataFrame({
        "term": ors["term"].astype(str), "variable": ors["variable"].astype(str),
        "level": ors["level"].fillna("").astype(str).replace("", "per quintile step (less deprived)"),
        "reference": ors["reference"].fillna("").astype(str),
        "method": ors["method"].astype(str), "withheld": reason,
    })
    hide = ~np.asarray(publish, dtype=bool)
    from cdr.rates import ci_columns

    lo_col, up_col = ci_columns(conf)    # lower_95, upper_95 (the level of the spec's conf)
    values = {
        "odds_ratio": np.where(hide, np.nan, ors["odds_ratio"].to_numpy(float)),
        lo_col: np.where(hide, np.nan, ors[lo_col].to_numpy(float)),
        up_col: np.where(hide, np.nan, ors[up_col].to_numpy(float)),
        "p_value": np.where(hide, np.nan, ors["p_value"].to_numpy(float)),
    }
    how = {"gee_exchangeable": "GEE, exchangeable working correlation, cluster-robust (sandwich) variance",
           "firth": "Firth penalised likelihood"}.get(info.get("method"), str(info.get("method")))
    notes = [
        f"Logistic model of the panel's judgement that a death had modifiable factors ({formula}), fitted on "
        f"the records of {data_name}: deaths in {years[0]} to {years[-1]} (by date of death) whose review was completed when the records "
        f"were extracted: {n_obs:,} reviews, {n_events:,} with modifiable factors"
        + (f", {info.get('n_clusters')} {cluster} clusters" if cluster else "") + f"; {how}.",
        "Odds ratios compare each level with the reference level, adjusted for the other terms; imd_quintile is "
        f"per quintile step towards less deprived. {conf:.1%}".replace(".0%", "%") + " confidence intervals; "
        "p = 0.000 means p < 0.0005.",
        f"Disclosure: a term is shown only when its level and the reference level each have at least {threshold} "
        "reviews with and without modifiable factors; otherwise the row is [c]. The counts behind each odds ratio are "
        "not repeated here (they are pooled over years, outside the audited tables).",
    ]
    if data_name == "England":
        notes.append("Fitted for England, not for the reported area: one partnership's or region's reviews are too few "
                     "(and a region has too few footprints as clusters) for a stable model with these terms. See the "
                     "methods section.")
    else:
        notes.append(f"Fitted on the records supplied ({data_name}), not on England: the records cover only these "
                     "local authorities.")
    if info["warnings"]:
        notes.append("Model messages: " + " ".join(dict.fromkeys(info["warnings"])))
    table = TableSpec("factor_model", f"Odds ratios for modifiable factors, {data_name}, {years[0]} to {years[-1]} pooled",
                      lab, counts={}, values=values, notes=notes, figure="factor_model")
    info["n_terms"], info["n_withheld"] = int(len(lab)), int(hide.sum())
    return table, hide, info


def mark_withheld(table: pd.DataFrame, marks: pd.DataFrame, hide) -> None:
    """``[c]`` in the value columns of withheld terms (in place)."""
    for col in decimals(table):
        marks[col] = np.where(hide, MARK_SUPPRESSED, "")
