"""Log-linear (Poisson / negative binomial / quasi-Poisson) trends and comparisons (private)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from cdr._base import version_stamp
from cdr._validate import as_positive, one_of
from cdr.errors import ArgumentError, OverdispersionWarning, SmallNumbersWarning
from cdr.trends._common import (as_list, check_conf, check_counts, check_frame, check_unique, ci_names, exact_rate_ci,
                                group_keys, resolve_time)
from cdr.trends._results import CompareResult, TrendResult

__all__ = ["fit_trend", "compare_to", "population_break"]

_FAMILIES = ("poisson", "negbin", "auto")
OVERDISPERSION_P = 0.05
#: Fewer deaths than this in a series, or a fitted rate changing more than MAX_FOLD-fold over the
#: series, and the APC is flagged (SmallNumbersWarning and the ``note`` column).
SMALL_DEATHS = 10
MAX_FOLD = 100.0


def _span(t):
    return f"{int(t.min()) if float(t.min()).is_integer() else t.min()}-{int(t.max()) if float(t.max()).is_integer() else t.max()}"


def population_break(year, at=2021):
    """Level-shift indicator for the break in the population series: 1 from `at` onwards, else 0.

    ONS mid-year population estimates from 2021 are based on Census 2021, while earlier years
    were rolled forward from Census 2011, so child populations (and hence rates) can step at 2021.
    Adding this indicator as a covariate lets a trend model absorb that step instead of reading it
    as a change in the death rate.

    Parameters
    ----------
    year : array_like or pandas.Series of int
        Calendar years (or reporting-year starts).
    at : int, default 2021
        First year of the new series.

    Returns
    -------
    pandas.Series or numpy.ndarray of int
        1 where ``year >= at``, else 0; a Series (same index, named ``break_<at>``) for Series input.

    Examples
    --------
    >>> population_break([2019, 2020, 2021, 2022]).tolist()
    [0, 0, 1, 1]
    """
    try:
        if isinstance(year, pd.Series):
            return (pd.to_numeric(year) >= at).astype(int).rename(f"break_{at}")
        return (np.asarray(year, dtype=float) >= at).astype(int)
    except (TypeError, ValueError):
        raise ArgumentError(f"population_break: 'year' must be numeric years, e.g. [2019, 2020, 2021] or "
                            f"frame['period_start'], and 'at' a year; got year={year!r}, at={at!r}.") from None


def _collapse(frame, by, time, count, population, covariates, caller):
    """The columns a fit uses, sorted by group and time (rows are unique there: see check_unique)."""
    keys = [*by, time]
    return frame[[*keys, count, population, *covariates]].sort_values(keys, kind="stable").reset_index(drop=True)


def _pearson(y, mu, df):
    chi2 = float(np.sum((y - mu) ** 2 / mu))
    p = float(stats.chi2.sf(chi2, df)) if df > 0 else np.nan
    return chi2, (chi2 / df if df > 0 else np.nan), p


def _poisson(y, X, offset, scale=None):
    """statsmodels Poisson GLM; an exactly fitting series is fine here, so its separation warning is dropped."""
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PerfectSeparationWarning)
        return sm.GLM(y, X, family=sm.families.Poisson(), offset=offset).fit(scale=scale)


def nb2_fit(y, X, offset, start=None):
    """Negative binomial (NB2) maximum-likelihood fit by statsmodels: ``(params, cov, alpha)`` or None.

    The one estimate of the NB dispersion in ``cdr.trends`` (``fit_trend`` and ``joinpoint`` both use
    it), as ``MASS::glm.nb`` in R. None when the fit does not converge or alpha is not finite.
    """
    import statsmodels.api as sm

    X = np.asarray(X, dtype=float)
    p = X.shape[1]
    start = np.append(np.zeros(p) if start is None else np.asarray(start, dtype=float), 0.1)
    model = sm.NegativeBinomial(np.asarray(y, dtype=float), X, loglike_method="nb2", offset=offset)
    # BFGS from the Poisson fit; if it stops on precision loss, Nelder-Mead from where it stopped.
    for method, maxiter in (("bfgs", 500), ("nm", 5000)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                nb = model.fit(start_params=start, disp=0, maxiter=maxiter, method=method)
                params = np.asarray(nb.params)
                cov = np.asarray(nb.cov_params())[:p, :p]
        except (np.linalg.LinAlgError, ValueError, OverflowError, FloatingPointError):  # numerical failure
            return None
        alpha = float(params[-1])
        if nb.mle_retvals.get("converged", True) and np.isfinite(alpha) and np.all(np.isfinite(cov)):
            break
        start = params if np.all(np.isfinite(params)) else start
    else:
        return None
    return params[:p], cov, alpha


def _fit_one(y, X, offset, family, conf):
    """Fit one series; returns dict with params, cov, mu, family, dispersion, alpha, df, note."""
    n, p = X.shape
    pois = _poisson(y, X, offset)
    mu = np.asarray(pois.fittedvalues)
    chi2, disp, pval = _pearson(y, mu, n - p)
    over = bool(np.isfinite(pval) and pval < OVERDISPERSION_P and disp > 1)
    out = dict(params=np.asarray(pois.params), cov=np.asarray(pois.cov_params()), mu=mu, family="poisson",
               dispersion=disp, overdispersion_p=pval, alpha=np.nan, df=np.inf, note="")
    if family == "poisson":
        out["note"] = ("Poisson requested; counts look overdispersed (limits too narrow): consider family='auto'"
                       if over else "Poisson requested")
        return out
    if family == "auto" and not over:
        out["note"] = ("Poisson: Pearson chi-square test of overdispersion not significant"
                       if np.isfinite(pval) else "Poisson: no residual df to test overdispersion")
        return out
    reason = "negative binomial requested" if family == "negbin" else (
        f"overdispersed (Pearson chi2/df = {disp:.2f}, p = {pval:.3g}): negative binomial")
    nb = nb2_fit(y, X, offset, start=np.asarray(pois.params))
    ok = nb is not None
    if ok:
        params, cov, alpha = nb
        out.update(params=params, cov=cov, mu=np.exp(X @ params + offset), family="negbin",
                   alpha=alpha, note=f"{reason} (estimated alpha = {alpha:.4g})")
        return out
    scale = max(disp, 1.0) if np.isfinite(disp) else 1.0
    out.update(cov=out["cov"] * scale, family="quasipoisson", df=float(n - p),
               note=f"{reason} did not converge: quasi-Poisson (dispersion {scale:.2f})")
    return out


def fit_trend(data, *, count="deaths", population="population", time=None, family="auto", by=None,
              covariates=None, conf=0.95, multiplier=100_000):
    """Log-linear trend in death rates: annual percent change (APC) per group.

    One GLM per group of ``count`` on ``time`` (and `covariates`) with a ln(`population`) offset.
    Under ``family="auto"`` the Poisson fit is tested for overdispersion (Pearson chi-square
    goodness-of-fit test, p < 0.05); if it is overdispersed the model switches to a negative
    binomial (NB2, alpha estimated by maximum likelihood) — or to quasi-Poisson if that fit fails —
    with an :class:`~cdr.errors.OverdispersionWarning`, and the ``family`` and ``note`` columns say so.

    Parameters
    ----------
    data : pandas.DataFrame
        Counts and populations, one row per time (per group with `by`): e.g. the output of
        ``cdr.aggregate.aggregate(..., pool=1)`` as it is. Rows that share a group and time are refused
        (with the columns that tell them apart, to pass as `by`), as are overlapping pooled periods.
    count : str, default "deaths"
        Column of death counts (>= 0).
    population : str, default "population"
        Column of person-years at risk (> 0).
    time : str, optional
        Numeric time column (years); the APC is per unit of this column. Default: ``period_start``
        (the roll-up's time column) if present, else ``year``.
    family : {"auto", "poisson", "negbin"}, default "auto"
        Error family; see above.
    by : str or list of str, optional
        Group columns (e.g. ``"region_code"``); one fit per group.
    covariates : str or list of str, optional
        Numeric columns added to the model, constant within group and time — e.g. a level shift
        ``population_break(year)`` for the 2021 population series break. Their rate ratios are in
        ``result.covariates``.
    conf : float, default 0.95
        Confidence level of the limits.
    multiplier : float, default 100_000
        Rates in ``result.fitted`` are per this many population.

    Returns
    -------
    TrendResult
        ``.apc`` (one row per group: ``apc``, ``apc_lower_95``, ``apc_upper_95``, ``p_value``, ``family``,
        ...), ``.fitted`` (per group and time: ``rate``, ``rate_lower_95``, ``rate_upper_95`` exact
        limits, ``fitted_rate``), ``.covariates`` (``rate_ratio``, ``rate_ratio_lower_95``, ...),
        ``.spec``; ``.summary()``, ``.to_frame()``, ``.plot()``.

    Warns
    -----
    SmallNumbersWarning
        When a group has fewer than 10 deaths, or its fitted rate changes more than 100-fold over the
        series (e.g. no deaths until the last year): the APC is then an artefact of small numbers.

    Notes
    -----
    APC = 100 (e^b - 1), b the time coefficient; limits are Wald limits on b (normal quantile; t with
    n - p df for quasi-Poisson). R equivalent: ``glm(deaths ~ year + offset(log(population)),
    family = poisson)`` and ``MASS::glm.nb``.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"year": [2019, 2020, 2021, 2022, 2023],
    ...                    "deaths": [100, 98, 96, 94, 92], "population": [1e6] * 5})
    >>> res = fit_trend(df, family="poisson")
    >>> round(float(res.apc.loc[0, "apc"]), 2)
    -2.06
    """
    caller = "fit_trend"
    one_of(family, _FAMILIES, "family", caller)
    conf = check_conf(conf, caller)
    multiplier = as_positive(multiplier, "multiplier", caller)
    by, covariates = as_list(by, "by", caller), as_list(covariates, "covariates", caller)
    time = resolve_time(data, time, caller)
    frame = check_frame(data, {"count": count, "population": population, "time": time, "by": by,
                               "covariates": covariates}, caller)
    check_counts(frame, count, population, caller)
    for c in [time, *covariates]:
        if not pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c]):
            raise ArgumentError(f"{caller}: column '{c}' must be numeric; got dtype {frame[c].dtype}.")
    check_unique(frame, by, time, caller, skip=[count, population, *covariates])
    frame = _collapse(frame, by, time, count, population, covariates, caller)
    lo_name, hi_name = ci_names(conf, "rate")
    apc_lo, apc_hi = ci_names(conf, "apc")
    rr_lo, rr_hi = ci_names(conf, "rate_ratio")
    z = stats.norm.ppf(0.5 + conf / 2)
    apc_rows, fitted_frames, cov_rows = [], [], []
    for key, sub in group_keys(frame, by):
        y = sub[count].to_numpy(dtype=float)
        pop = sub[population].to_numpy(dtype=float)
        t = sub[time].to_numpy(dtype=float)
        where = "" if not key else " in group " + ", ".join(f"{k}={v!r}" for k, v in key.items())
        n_par = 2 + len(covariates)
        if len(y) < n_par + 1:
            raise ArgumentError(f"{caller}: {len(y)} time point(s){where}; at least {n_par + 1} are needed "
                             f"for a trend with {len(covariates)} covariate(s).")
        X = np.column_stack([np.ones_like(t), t - t.mean()] +
                            [sub[c].to_numpy(dtype=float) for c in covariates])
        if np.linalg.matrix_rank(X) < X.shape[1]:
            raise ArgumentError(f"{caller}: the covariates {covariates} are collinear with time{where} "
                             "(e.g. a 2021 break with no years on one side); drop them for this group.")
        if y.sum() == 0:
            raise ArgumentError(f"{caller}: no deaths at all{where}; a trend cannot be estimated.")
        fit = _fit_one(y, X, np.log(pop), family, conf)
        if family == "auto" and fit["family"] != "poisson":
            warnings.warn(f"{caller}: {fit['note']}{where}.", OverdispersionWarning, stacklevel=2)
        fold = float(np.exp(abs(fit["params"][1]) * (t.max() - t.min())))
        if y.sum() < SMALL_DEATHS or fold > MAX_FOLD:
            small = (f"only {int(y.sum())} deaths" if y.sum() < SMALL_DEATHS else
                     f"the fitted rate changes {fold:.3g}-fold over {_span(t)}")
            fit["note"] += f"; unreliable: {small}"
            warnings.warn(f"{caller}: the annual change{where} rests on small numbers ({small}; deaths by "
                          f"{time}: {[int(v) if float(v).is_integer() else v for v in y]}), so an APC of "
                          f"{100 * np.expm1(fit['params'][1]):.3g} % is not a meaningful trend. Pool years or "
                          "areas (aggregate with a larger level or pool=) before fitting.",
                          SmallNumbersWarning, stacklevel=2)
        q = z if not np.isfinite(fit["df"]) else stats.t.ppf(0.5 + conf / 2, fit["df"])
        se = np.sqrt(np.diag(fit["cov"]))
        b, sb = fit["params"][1], se[1]
        pdist = (lambda s: 2 * stats.norm.sf(abs(s))) if not np.isfinite(fit["df"]) else (
            lambda s: 2 * stats.t.sf(abs(s), fit["df"]))
        apc_rows.append({**key, "apc": 100 * np.expm1(b), apc_lo: 100 * np.expm1(b - q * sb),
                         apc_hi: 100 * np.expm1(b + q * sb), "p_value": pdist(b / sb),
                         "family": fit["family"], "dispersion": fit["dispersion"], "alpha": fit["alpha"],
                         "overdispersion_p": fit["overdispersion_p"], "n_years": len(y),
                         count: y.sum(), "note": fit["note"]})
        for j, c in enumerate(covariates, start=2):
            cov_rows.append({**key, "covariate": c, "rate_ratio": np.exp(fit["params"][j]),
                             rr_lo: np.exp(fit["params"][j] - q * se[j]),
                             rr_hi: np.exp(fit["params"][j] + q * se[j]), "p_value": pdist(fit["params"][j] / se[j])})
        lo, hi = exact_rate_ci(y, pop, conf, multiplier)
        f = pd.DataFrame({time: sub[time].to_numpy(), count: y, population: pop, "rate": y / pop * multiplier,
                          lo_name: lo, hi_name: hi, "expected": fit["mu"],
                          "fitted_rate": fit["mu"] / pop * multiplier})
        for i, (k, v) in enumerate(key.items()):
            f.insert(i, k, v)
        fitted_frames.append(f)
    apc = pd.DataFrame(apc_rows)
    covs = pd.DataFrame(cov_rows, columns=[*by, "covariate", "rate_ratio", rr_lo, rr_hi, "p_value"])
    spec = dict(function="cdr.trends.fit_trend", count=count, population=population, time=time, family=family,
                by=by, covariates=covariates, conf=conf, multiplier=multiplier, ci_names=(lo_name, hi_name),
                overdispersion_p=OVERDISPERSION_P, synthetic=_is_synthetic(data), **version_stamp())
    return TrendResult(apc=apc, fitted=pd.concat(fitted_frames, ignore_index=True), covariates=covs, spec=spec)


def _is_synthetic(data) -> bool:
    return bool(getattr(data, "attrs", {}).get("synthetic", False)
                or ("synthetic" in data.columns and bool(data["synthetic"].astype(bool).any())))


def compare_to(data, reference, *, count="deaths", population="population", time=None, by=None,
               family="auto", conf=0.95):
    """Compare each group's trend with a reference trend (e.g. each region's with England's).

    For each group, the group's rows and the reference's rows (matched on `time`) are fitted together:
    ``ln E[deaths] = a + b t + c g + d g t + ln(population)`` with g = 1 for the group. The rate ratio of
    group to reference at time t is exp(c + d t); exp(d) is its yearly change, and the Wald test of
    d = 0 is the test that the two slopes differ.

    Parameters
    ----------
    data : pandas.DataFrame or TrendResult
        Group series (counts and populations by `by` and `time`), or a ``fit_trend`` result (its
        data, columns and `by` are reused).
    reference : pandas.DataFrame or TrendResult
        The reference series, one row per time (rows sharing a time are refused), e.g. the national series.
    count, population, time : str
        Column names, as in :func:`fit_trend` (`time` defaults to ``period_start``, else ``year``).
    by : str or list of str, optional
        Group columns of `data`.
    family : {"auto", "poisson"}, default "auto"
        ``"auto"`` uses a quasi-Poisson dispersion when the Pearson chi-square test rejects (p < 0.05).
    conf : float, default 0.95

    Returns
    -------
    CompareResult
        ``.slopes`` (one row per group) and ``.ratios`` (per group and time); ``.summary()``,
        ``.to_frame()``, ``.plot()``.

    Examples
    --------
    >>> import pandas as pd
    >>> nat = pd.DataFrame({"year": [2019, 2020, 2021], "deaths": [1000, 1000, 1000],
    ...                     "population": [1e7] * 3})
    >>> reg = pd.DataFrame({"region": "A", "year": [2019, 2020, 2021], "deaths": [100, 110, 121],
    ...                     "population": [1e6] * 3})
    >>> out = compare_to(reg, nat, by="region", family="poisson")
    >>> round(float(out.slopes.loc[0, "slope_ratio"]), 3)
    1.1
    """
    caller = "compare_to"
    conf = check_conf(conf, caller)
    one_of(family, ("auto", "poisson"), "family", caller)
    if isinstance(data, TrendResult):
        s = data.spec
        count, population, time, by = s["count"], s["population"], s["time"], s["by"]
        data = data.fitted
    if isinstance(reference, TrendResult):
        if reference.spec["by"]:
            raise ArgumentError(f"{caller}: the reference must be a single series; it was fitted by "
                             f"{reference.spec['by']}.")
        reference = reference.fitted.rename(columns={reference.spec["count"]: count,
                                                     reference.spec["population"]: population,
                                                     reference.spec["time"]: time})
    by = as_list(by, "by", caller)
    time = resolve_time(data, time, caller)
    frame = check_frame(data, {"count": count, "population": population, "time": time, "by": by}, caller)
    ref = check_frame(reference, {"count": count, "population": population, "time": time}, caller, name="reference")
    check_unique(frame, by, time, caller, skip=[count, population])
    check_unique(ref, [], time, caller, skip=[count, population])
    check_counts(frame, count, population, caller)
    check_counts(ref, count, population, caller)
    frame = _collapse(frame, by, time, count, population, [], caller)
    ref = ref.groupby(time, sort=True)[[count, population]].sum().reset_index()
    lo_name, hi_name = ci_names(conf, "rate_ratio")
    (apc_lo, apc_hi), (ref_lo, ref_hi) = ci_names(conf, "apc"), ci_names(conf, "reference_apc")
    sr_lo, sr_hi = ci_names(conf, "slope_ratio")
    slopes, ratios = [], []
    import statsmodels.api as sm

    for key, sub in group_keys(frame, by):
        m = sub.merge(ref, on=time, suffixes=("", "_ref"))
        where = "" if not key else " for group " + ", ".join(f"{k}={v!r}" for k, v in key.items())
        if len(m) < 3:
            raise ArgumentError(f"{caller}: fewer than 3 times shared with the reference{where}.")
        t = m[time].to_numpy(dtype=float)
        tc = t - t.mean()
        y = np.concatenate([m[count].to_numpy(float), m[f"{count}_ref"].to_numpy(float)])
        pop = np.concatenate([m[population].to_numpy(float), m[f"{population}_ref"].to_numpy(float)])
        g = np.repeat([1.0, 0.0], len(m))
        tt = np.concatenate([tc, tc])
        X = np.column_stack([np.ones_like(tt), tt, g, g * tt])
        res = _poisson(y, X, np.log(pop))
        df = len(y) - 4
        chi2, disp, pval = _pearson(y, np.asarray(res.fittedvalues), df)
        fam, dfq, cov = "poisson", np.inf, np.asarray(res.cov_params())
        if family == "auto" and np.isfinite(pval) and pval < OVERDISPERSION_P and disp > 1:
            fam, dfq, cov = "quasipoisson", float(df), cov * disp
        q = stats.norm.ppf(0.5 + conf / 2) if not np.isfinite(dfq) else stats.t.ppf(0.5 + conf / 2, dfq)
        pfun = (lambda s: 2 * stats.norm.sf(abs(s))) if not np.isfinite(dfq) else (
            lambda s: 2 * stats.t.sf(abs(s), dfq))
        b = np.asarray(res.params)
        sd = np.sqrt(cov[3, 3])
        b_ref, b_grp = b[1], b[1] + b[3]
        se_ref = np.sqrt(cov[1, 1])
        se_grp = np.sqrt(cov[1, 1] + cov[3, 3] + 2 * cov[1, 3])
        slopes.append({**key, "apc": 100 * np.expm1(b_grp), apc_lo: 100 * np.expm1(b_grp - q * se_grp),
                       apc_hi: 100 * np.expm1(b_grp + q * se_grp), "reference_apc": 100 * np.expm1(b_ref),
                       ref_lo: 100 * np.expm1(b_ref - q * se_ref),
                       ref_hi: 100 * np.expm1(b_ref + q * se_ref),
                       "apc_difference": 100 * (np.expm1(b_grp) - np.expm1(b_ref)),
                       "slope_ratio": np.exp(b[3]), sr_lo: np.exp(b[3] - q * sd),
                       sr_hi: np.exp(b[3] + q * sd), "p_value": pfun(b[3] / sd),
                       "family": fam, "dispersion": disp, "n_years": len(m)})
        C = np.column_stack([np.zeros_like(tc), np.zeros_like(tc), np.ones_like(tc), tc])
        eta = C @ b
        se = np.sqrt(np.einsum("ij,jk,ik->i", C, cov, C))
        r = pd.DataFrame({time: m[time].to_numpy(), "rate_ratio": np.exp(eta), lo_name: np.exp(eta - q * se),
                          hi_name: np.exp(eta + q * se),
                          "rate": m[count].to_numpy(float) / m[population].to_numpy(float),
                          "reference_rate": m[f"{count}_ref"].to_numpy(float) / m[f"{population}_ref"].to_numpy(float)})
        for i, (k, v) in enumerate(key.items()):
            r.insert(i, k, v)
        ratios.append(r)
    spec = dict(function="cdr.trends.compare_to", count=count, population=population, time=time, by=by,
                family=family, conf=conf, ci_names=(lo_name, hi_name),
                synthetic=_is_synthetic(frame) or _is_synthetic(ref), **version_stamp())
    return CompareResult(slopes=pd.DataFrame(slopes), ratios=pd.concat(ratios, ignore_index=True), spec=spec)
