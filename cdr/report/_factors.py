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
DECIMALS = {"odds_ratio": 3, "odds_ratio_lower_95": 3, "odds_ratio_upper_95": 3, "p_value": 3}   # spec's conf level


def decimals(table) -> dict:
    """Decimals of the value columns of a factor_model table (limits named by the spec's level)."""
    return {c: 3 for c in table.columns if c in ("odds_ratio", "p_value") or c.startswith(("odds_ratio_lower_", "odds_ratio_upper_"))}


def factor_model_table(records: pd.DataFrame, *, keys: np.ndarray, pooled: list, period_labels: dict, labels,
                       threshold: int, spec: dict):
    """(TableSpec, withheld mask, info dict) for the pooled England factor model.

    ``records``: validated records; ``keys``: their period keys; ``pooled``: period keys pooled;
    ``labels``: la_code -> footprint_id (or None); ``spec``: the ``[factors]`` section.
    """
    from cdr.factors import factor_model
    from cdr.errors import CdrError

    formula = spec.get("formula", "modifiable ~ C(category) + C(age_band) + imd_quintile + C(sex)")
    cluster = spec.get("cluster", "footprint")
    remedy = spec.get("remedy", "firth")
    conf = float(spec.get("conf", 0.95))
    if cluster == "footprint" and labels is None:
        cluster = "la"
    if cluster in (None, "none"):
        cluster = None
    use = records.loc[np.isin(keys, pooled)]
    years = [period_labels[k] for k in pooled]
    info = {"level": "nation", "unit": "England", "formula": formula, "cluster": cluster, "remedy": remedy,
            "conf": conf, "periods": years, "threshold": int(threshold)}
    key = (int(pd.util.hash_pandas_object(use, index=False).sum()), formula, cluster, remedy, conf,
           None if labels is None or cluster != "footprint" else tuple(pd.Series(labels).items()))
    if key not in _FITS:
        caught = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                fit = factor_model(use, formula, cluster=cluster, design=labels if cluster == "footprint" else None,
                                   remedy=remedy, conf=conf)
        except CdrError as exc:
            fit = exc
        if len(_FITS) >= 4:
            _FITS.pop(next(iter(_FITS)))
        _FITS[key] = (fit, [str(w.message) for w in caught])
    res, messages = _FITS[key]
    if isinstance(res, Exception):
        info["error"] = str(res)
        return None, None, info
    ors = res.odds_ratios.reset_index(drop=True)
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
    lab = pd.DataFrame({
        "term": ors["term"].astype(str), "variable": ors["variable"].astype(str),
        "level": ors["level"].fillna("").astype(str).replace("", "per quintile step (less deprived)"),
        "reference": ors["reference"].fillna("").astype(str),
        "method": ors["method"].astype(str), "withheld": reason,
    })
    hide = ~np.asarray(publish, dtype=bool)
    from cdr.rates import ci_columns

    lo_col, up_col = ci_columns(conf, estimate="odds_ratio")    # odds_ratio_lower_95 ... (the spec's conf)
    values = {
        "odds_ratio": np.where(hide, np.nan, ors["odds_ratio"].to_numpy(float)),
        lo_col: np.where(hide, np.nan, ors[lo_col].to_numpy(float)),
        up_col: np.where(hide, np.nan, ors[up_col].to_numpy(float)),
        "p_value": np.where(hide, np.nan, ors["p_value"].to_numpy(float)),
    }
    how = {"gee_exchangeable": "GEE, exchangeable working correlation, cluster-robust (sandwich) variance",
           "firth": "Firth penalised likelihood"}.get(info.get("method"), str(info.get("method")))
    notes = [
        f"Logistic model of the panel's judgement that a death had modifiable factors ({formula}), fitted for "
        f"England on deaths in {years[0]} to {years[-1]} (by date of death) whose review was completed when the records "
        f"were extracted: {n_obs:,} reviews, {n_events:,} with modifiable factors"
        + (f", {info.get('n_clusters')} {cluster} clusters" if cluster else "") + f"; {how}.",
        "Odds ratios compare each level with the reference level, adjusted for the other terms; imd_quintile is "
        f"per quintile step towards less deprived. {conf:.1%}".replace(".0%", "%") + " confidence intervals; "
        "p = 0.000 means p < 0.0005.",
        f"Disclosure: a term is shown only when its level and the reference level each have at least {threshold} "
        "reviews with and without modifiable factors; otherwise the row is [c]. The counts behind each odds ratio are "
        "not repeated here (they are pooled over years, outside the audited tables).",
        "Fitted for England, not for the reported area: one partnership's or region's reviews are too few (and a region "
        "has too few footprints as clusters) for a stable model with these terms. See the methods section.",
    ]
    if info["warnings"]:
        notes.append("Model messages: " + " ".join(dict.fromkeys(info["warnings"])))
    table = TableSpec("factor_model", f"Odds ratios for modifiable factors, England, {years[0]} to {years[-1]} pooled",
                      lab, counts={}, values=values, notes=notes, figure="factor_model")
    info["n_terms"], info["n_withheld"] = int(len(lab)), int(hide.sum())
    return table, hide, info


def mark_withheld(table: pd.DataFrame, marks: pd.DataFrame, hide) -> None:
    """``[c]`` in the value columns of withheld terms (in place)."""
    for col in decimals(table):
        marks[col] = np.where(hide, MARK_SUPPRESSED, "")
