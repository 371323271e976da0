"""Result tables of joinpoint fits (private): segments, AAPC, covariates and family, one row per group.

Kept apart from the fitting code so :mod:`cdr.trends._results` can build its tables without importing
the fitter (no import cycle inside ``cdr.trends``). Limit columns follow the package vocabulary
(``docs/dev/contracts.md``): ``apc_lower_95``, ``aapc_lower_95``, ``rate_ratio_lower_95`` ...
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from cdr._validate import number
from cdr.errors import ArgumentError
from cdr.trends._common import _py, _where

__all__ = ["covariates_table", "family_row", "segments_table", "aapc_row"]


def covariates_table(s) -> pd.DataFrame:
    """Rate ratios of the glm covariates (exp of their coefficients) with 95 % Wald limits."""
    cols = ["covariate", "rate_ratio", "rate_ratio_lower_95", "rate_ratio_upper_95", "p_value", "method"]
    if not s.covariate_names:
        return pd.DataFrame(columns=cols)
    j = np.arange(2 + s.k, 2 + s.k + len(s.covariate_names))
    b, se = s.beta[j], np.sqrt(np.diag(s.cov)[j])
    q = _quantile(s.slope_df)
    return pd.DataFrame({"covariate": s.covariate_names, "rate_ratio": np.exp(b),
                         "rate_ratio_lower_95": np.exp(b - q * se), "rate_ratio_upper_95": np.exp(b + q * se),
                         "p_value": _pvalue(b / se, s.slope_df), "method": s.family})


def family_row(s) -> dict:
    """Which likelihood a glm fit used and why (one row per group)."""
    return dict(family=s.family, alpha=s.alpha if s.family == "negbin" else np.nan,
                dispersion=s.dispersion, pearson_dispersion=s.pearson_dispersion,
                overdispersion_p=s.overdispersion_p, covariates=", ".join(s.covariate_names),
                note=next((n for n in s.notes if "Poisson" in n or "negative binomial" in n
                           or "dispersion" in n), ""))


def _quantile(df, conf=0.95):
    q = 0.5 + conf / 2
    return stats.norm.ppf(q) if not np.isfinite(df) else stats.t.ppf(q, df)


def _pvalue(tstat, df):
    return 2 * (stats.norm.sf(np.abs(tstat)) if not np.isfinite(df) else stats.t.sf(np.abs(tstat), df))


def segments_table(s) -> pd.DataFrame:
    edges = s.edges()
    q = _quantile(s.slope_df) if s.slope_df > 0 else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        tstat = s.slopes / s.slope_se
        p = _pvalue(tstat, s.slope_df) if s.slope_df > 0 else np.full_like(tstat, np.nan)
    return pd.DataFrame({
        "segment": np.arange(s.k + 1),
        "start": edges[:-1], "end": edges[1:],
        "apc": 100 * np.expm1(s.slopes),
        "apc_lower_95": 100 * np.expm1(s.slopes - q * s.slope_se),
        "apc_upper_95": 100 * np.expm1(s.slopes + q * s.slope_se),
        "p_value": p, "slope": s.slopes, "slope_se": s.slope_se,
        "df": s.slope_df,
        "method": "nci-wls" if s.method == "nci" else s.family,
    })


def aapc_row(s, start, end) -> dict:
    start = s.x[0] if start is None else number(start, "start", "aapc", example=2015)
    end = s.x[-1] if end is None else number(end, "end", "aapc", example=2022)
    if not (s.x[0] <= start < end <= s.x[-1]):
        raise ArgumentError(f"aapc: the range must satisfy {_py(s.x[0])} <= start < end <= {_py(s.x[-1])}"
                         f"{_where(s.key)}; got start={start!r}, end={end!r}.")
    edges = s.edges()
    lengths = np.clip(np.minimum(edges[1:], end) - np.maximum(edges[:-1], start), 0, None)
    wts = lengths / lengths.sum()
    b = float(wts @ s.slopes)
    used = np.flatnonzero(wts > 0)
    if s.method == "glm":
        L = np.zeros((s.k + 1, len(s.beta)))
        for j in range(s.k + 1):
            L[j, 1:2 + j] = 1.0
        c = wts @ L
        se = float(np.sqrt(c @ s.cov @ c))
        df = s.slope_df
        how = s.family
    else:
        se = float(np.sqrt(np.sum(wts[used] ** 2 * s.slope_se[used] ** 2)))
        df = s.slope_df if len(used) == 1 else np.inf   # Joinpoint: normal unless within one segment
        how = "nci-wls"
    q = _quantile(df)
    return dict(start=start, end=end, aapc=100 * np.expm1(b), aapc_lower_95=100 * np.expm1(b - q * se),
                aapc_upper_95=100 * np.expm1(b + q * se), p_value=float(_pvalue(b / se, df)) if se > 0 else np.nan,
                slope=b, slope_se=se, method=how)
