"""Joinpoint (segmented log-linear) regression: NCI Joinpoint's WLS model and a Poisson GLM (private).

See :func:`joinpoint` and ``docs/methods/trends.md``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from cdr._base import as_generator, version_stamp
from cdr._validate import integer, one_of, probability, seed as seed_value
from cdr.errors import ArgumentError, CdrWarning, OverdispersionWarning
from cdr.trends._common import _py, _where, as_list, check_counts, check_frame, exact_rate_ci, group_keys, resolve_time
from cdr.trends._glm import _poisson, nb2_fit
from cdr.trends._grid import design, max_feasible, placements, poisson_grid, wls_grid
from cdr.trends._results import JoinpointResult

__all__ = ["joinpoint"]

MULTIPLIER = 100_000
_METHODS = ("glm", "nci")
_VARIANCES = ("poisson", "se", "constant")
_SELECTIONS = ("permutation", "bic", "bic3", "wbic")
_FAMILIES = ("auto", "poisson", "negbin")
_OVERDISPERSION_P = 0.05


@dataclass
class _SeriesFit:
    """Everything fitted for one series (one group)."""

    key: dict
    method: str
    x: np.ndarray                # times
    rate: np.ndarray             # observed rate (per MULTIPLIER when built from counts)
    rate_lower: np.ndarray
    rate_upper: np.ndarray
    y: np.ndarray                # nci: ln(rate); glm: counts
    w: np.ndarray                # nci: weights; glm: population (offset = ln w)
    count: np.ndarray | None
    population: np.ndarray | None
    rate_scale: float            # rate = count / population * rate_scale (glm)
    k: int = 0
    combo: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    beta: np.ndarray | None = None       # in (x - x[0]) units
    cov: np.ndarray | None = None        # glm only
    slopes: np.ndarray | None = None
    slope_se: np.ndarray | None = None
    slope_df: float = np.inf             # inf -> normal quantile
    sse: float = np.nan
    deviance: float = np.nan
    family: str = "wls"
    dispersion: float = 1.0              # quasi-Poisson scale (1 unless the NB fallback was needed)
    alpha: float = 0.0                   # NB2 ancillary parameter (0 = Poisson)
    pearson_dispersion: float = np.nan   # Pearson chi2/df of the Poisson fit of the largest model
    overdispersion_p: float = np.nan
    Z: np.ndarray | None = None          # glm covariate columns (n, q)
    covariate_names: list = field(default_factory=list)
    selection: pd.DataFrame | None = None
    tests: pd.DataFrame | None = None
    notes: list = field(default_factory=list)

    @property
    def joinpoints(self) -> list:
        return [_py(v) for v in self.x[self.combo]]

    def covariates_at(self, xg):
        """Covariate values at times ``xg``: those of the latest observed time <= xg (a step function)."""
        if self.Z is None:
            return None
        i = np.clip(np.searchsorted(self.x, xg, side="right") - 1, 0, len(self.x) - 1)
        return self.Z[i]

    def fitted_rate(self, xgrid=None) -> np.ndarray:
        xg = self.x if xgrid is None else np.asarray(xgrid, dtype=float)
        eta = design(xg - self.x[0], self.x[self.combo] - self.x[0], self.covariates_at(xg)) @ self.beta
        if self.method == "glm":
            return np.exp(eta) * self.rate_scale
        return np.exp(eta)

    def edges(self) -> np.ndarray:
        return np.concatenate([[self.x[0]], self.x[self.combo], [self.x[-1]]])


def joinpoint(data, *, time=None, count="deaths", population="population", rate=None, se=None,
              method="glm", variance="poisson", max_joinpoints=3, n_joinpoints=None, min_obs_end=2,
              min_obs_between=2, selection="permutation", n_permutations=4499, alpha=0.05, seed=0,
              by=None, covariates=None, family="auto"):
    """Joinpoint regression: continuous segmented log-linear trends with changes at observed times.

    Two models share one exhaustive grid search over joinpoint locations at the observed times.
    ``method="glm"`` (default for death counts) is a log-linear GLM of counts with a ln(population)
    offset: Poisson, or negative binomial (NB2) when the counts are overdispersed, optionally with
    covariates such as the 2021 population-series level shift. ``method="nci"`` is the model of the
    US National Cancer Institute's Joinpoint Regression Program: weighted least squares on ln(rate),
    with Joinpoint 4.x's parametric confidence limits, and reproduces its exported results.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per time (per group with `by`): e.g. the output of ``cdr.aggregate.aggregate``.
    time : str, optional
        Column of observation times (numeric; e.g. calendar year or reporting-year start). Default:
        ``period_start`` (the roll-up's time column) if present, else ``year``.
    count : str or None, default "deaths"
        Column of event counts (>= 0). Needed for ``method="glm"`` and ``variance="poisson"``; with
        `rate` and ``variance="se"`` or ``"constant"`` it is not used (nor required).
    population : str or None, default "population"
        Column of person-years at risk (> 0); rates are per 100,000 when built from counts. Not used
        (nor required) when `rate` is given.
    rate, se : str, optional
        Columns of a ready-made rate (any units) and its standard error (same units), e.g. a
        directly standardised rate; ``method="nci"`` only. `se` is needed for ``variance="se"``.
    method : {"glm", "nci"}, default "glm"
        Model; see Notes and ``docs/methods/trends.md``.
    variance : {"poisson", "se", "constant"}, default "poisson"
        ``method="nci"``: WLS weights on ln(rate) — the count (0.5 for a zero count), rate²/SE², or 1.
    max_joinpoints : int, default 3
        Largest number of joinpoints considered (lowered, with a warning, to what the series allows).
    n_joinpoints : int, optional
        Fit exactly this many joinpoints (no model selection).
    min_obs_end, min_obs_between : int, default 2
        At least `min_obs_end` observations before the first and after the last joinpoint, and at
        least `min_obs_between` strictly between two joinpoints (observations on joinpoints not counted).
    selection : {"permutation", "bic", "bic3", "wbic"}, default "permutation"
        How the number of joinpoints is chosen: Kim et al. (2000) sequential permutation tests, or an
        information criterion (NCI's BIC, BIC3, weighted BIC); see Notes.
    n_permutations : int, default 4499
        Permutations (``nci``) or parametric-bootstrap draws (``glm``) per test.
    alpha : float, default 0.05
        Overall significance level of the sequential tests.
    seed : int or numpy.random.Generator, default 0
        Randomness of the permutation tests only; same seed, same result.
    by : str or list of str, optional
        Group columns: one independent fit per group.
    covariates : str or list of str, optional
        ``method="glm"`` only: numeric columns added to every model (constant within a group and
        time), e.g. ``"break_2021"`` from :func:`cdr.trends.population_break` for the step in the
        population series at 2021. Joinpoints, APCs and AAPCs are then net of the covariates; their
        rate ratios are in ``.covariates``.
    family : {"auto", "poisson", "negbin"}, default "auto"
        ``method="glm"`` only. ``"auto"``: Poisson unless the Pearson chi-square test of the largest
        model rejects (p < 0.05), then negative binomial NB2 with alpha estimated once by maximum
        likelihood on that model and held fixed for the grid search, selection and limits (an
        :class:`~cdr.errors.OverdispersionWarning` says so). ``"negbin"`` always does the latter.
        If the NB fit fails, quasi-Poisson (Pearson dispersion) is used instead and the result says so.

    Returns
    -------
    JoinpointResult
        ``.joinpoints`` (list of times; a dict keyed by group when `by`), ``.segments`` (group
        columns, ``segment``, ``start``, ``end``, ``apc``, ``apc_lower``, ``apc_upper``,
        ``p_value``, ``slope``, ``slope_se``, ``df``, ``method`` — for ``glm`` the family used:
        ``poisson``, ``negbin`` or ``quasipoisson``), ``.sse`` (weighted residual sum of squares; for
        ``glm`` the Pearson chi-square), ``.aapc(start, end)``, ``.selection`` (criteria per number
        of joinpoints), ``.tests`` (permutation tests), ``.families`` (family, NB alpha and the
        overdispersion test per group), ``.covariates`` (rate ratios), ``.fitted``, ``.summary()``,
        ``.to_frame()``, ``.plot()``.

    Notes
    -----
    APC = 100 (e^b - 1) for a segment's slope b; AAPC = 100 (e^{sum w_i b_i} - 1) with w_i the share
    of the range [start, end] covered by segment i. ``nci``: a segment's standard error comes from
    separate straight-line WLS fits to each segment's observations, leaving out observations on a
    joinpoint, with the residual variance pooled over segments on n - 3k - 2 degrees of freedom
    (t quantile); the AAPC variance is sum w_i^2 var(b_i) (normal quantile; the APC's own t-based
    limits when the range lies in one segment). ``glm``: Wald limits from the GLM covariance,
    conditional on the selected joinpoints and, for NB, on alpha (normal; t with n - p - k df when
    quasi-Poisson).
    The R equivalents are NCI's Joinpoint program (``nih.joinpoint``) and ``segmented``.

    Examples
    --------
    >>> import pandas as pd
    >>> years = list(range(2000, 2012))
    >>> rate = [100 * 1.05 ** i for i in range(6)] + [100 * 1.05 ** 5 * 0.97 ** i for i in range(1, 7)]
    >>> jp = joinpoint(pd.DataFrame({"year": years, "rate": rate}), rate="rate", count=None,
    ...                population=None, method="nci", variance="constant", n_joinpoints=1)
    >>> jp.joinpoints
    [2005]
    >>> jp.segments[["start", "end", "apc"]].round(3).values.tolist()
    [[2000.0, 2005.0, 5.0], [2005.0, 2011.0, -3.0]]
    """
    caller = "joinpoint"
    one_of(method, _METHODS, "method", caller)
    one_of(variance, _VARIANCES, "variance", caller)
    one_of(selection, _SELECTIONS, "selection", caller)
    if method == "glm" and selection == "wbic":
        raise ArgumentError(f"{caller}: selection='wbic' is defined for the WLS model; use method='nci', "
                         "or selection='bic'/'bic3'/'permutation' with method='glm'.")
    one_of(family, _FAMILIES, "family", caller)
    covariates = as_list(covariates, "covariates", caller)
    if method == "nci" and (covariates or family != "auto"):
        raise ArgumentError(f"{caller}: 'covariates' and 'family' apply to method='glm'; NCI's WLS model "
                         "has neither. Use method='glm' (counts and populations) to adjust for a level shift.")
    if method == "glm" and (rate is not None or se is not None or variance != "poisson"):
        raise ArgumentError(f"{caller}: method='glm' models counts with a population offset; 'rate', 'se' "
                         "and 'variance' apply to method='nci'. Pass count= and population= instead.")
    max_joinpoints = integer(max_joinpoints, "max_joinpoints", caller, minimum=0, example=3)
    min_obs_end = integer(min_obs_end, "min_obs_end", caller, minimum=1, example=2)
    min_obs_between = integer(min_obs_between, "min_obs_between", caller, minimum=0, example=2)
    n_permutations = integer(n_permutations, "n_permutations", caller, minimum=1, example=4499)
    if n_joinpoints is not None:
        n_joinpoints = integer(n_joinpoints, "n_joinpoints", caller, minimum=0, example=1)
    probability(alpha, "alpha", caller, example=0.05)
    seed_value(seed, "seed", caller)
    by = as_list(by, "by", caller)
    if method == "nci" and rate is not None:
        # A ready-made rate needs no population, and no count unless the count weights the fit.
        population = None
        if variance != "poisson":
            count = None
    if method == "nci" and rate is None and (count is None or population is None):
        raise ArgumentError(f"{caller}: give rate= (a rate column) or both count= and population=.")
    if variance == "se" and se is None:
        raise ArgumentError(f"{caller}: variance='se' needs se= (the column of the rate's standard error).")
    if variance == "poisson" and method == "nci" and count is None:
        raise ArgumentError(f"{caller}: variance='poisson' weights by the count; give count= or choose "
                         "variance='se' (with se=) or 'constant'.")
    time = resolve_time(data, time, caller)
    needed = {"time": time, "by": by, "count": count, "population": population, "rate": rate, "se": se,
              "covariates": covariates}
    frame = check_frame(data, needed, caller)
    for c in covariates:
        if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])) \
                or not np.all(np.isfinite(frame[c].to_numpy(dtype=float))):
            raise ArgumentError(f"{caller}: covariate '{c}' must be numeric with no missing values "
                             f"(e.g. population_break(data['{time}'])); got dtype {frame[c].dtype}.")
    if count is not None:
        check_counts(frame, count, population if rate is None or method == "glm" else None, caller)
    rng = as_generator(seed)

    fits = []
    for key, sub in group_keys(frame, by):
        series = _prepare(sub, key, caller, method, time, count, population, rate, se, variance,
                          covariates)
        _fit_series(series, method=method, max_joinpoints=max_joinpoints, n_joinpoints=n_joinpoints,
                    min_end=min_obs_end, min_between=min_obs_between, selection=selection,
                    n_permutations=n_permutations, alpha=alpha, rng=rng, family=family)
        fits.append(series)

    spec = dict(function="cdr.trends.joinpoint", time=time, count=count, population=population,
                rate=rate, se=se, method=method, variance=variance if method == "nci" else "poisson",
                max_joinpoints=max_joinpoints, n_joinpoints=n_joinpoints, min_obs_end=min_obs_end,
                min_obs_between=min_obs_between, selection=None if n_joinpoints is not None else selection,
                n_permutations=n_permutations, alpha=alpha, covariates=covariates,
                family=family if method == "glm" else None, overdispersion_p=_OVERDISPERSION_P,
                seed=seed if not isinstance(seed, np.random.Generator) else "Generator", by=by,
                rate_units="per 100,000 person-years" if rate is None else f"units of '{rate}'",
                synthetic=bool(getattr(data, "attrs", {}).get("synthetic", False)
                               or ("synthetic" in data.columns and bool(data["synthetic"].any()))),
                **version_stamp())
    return JoinpointResult(fits=fits, spec=spec)


# --------------------------------------------------------------------------------------------
# data preparation
# --------------------------------------------------------------------------------------------
def _prepare(sub, key, caller, method, time, count, population, rate, se, variance, covariates=()):
    sub = sub.sort_values(time, kind="stable")
    x = pd.to_numeric(sub[time], errors="coerce").to_numpy(dtype=float)
    if not np.all(np.isfinite(x)):
        raise ArgumentError(f"{caller}: '{time}' must be numeric (e.g. 2019); found a missing or "
                         f"non-numeric value{_where(key)}.")
    if len(np.unique(x)) != len(x):
        dup = pd.Series(x)[pd.Series(x).duplicated()].iloc[0]
        raise ArgumentError(f"{caller}: time {_py(dup)} appears more than once{_where(key)}; give one row "
                         "per time (sum counts and populations first, or pass by=).")
    if len(x) < 3:
        raise ArgumentError(f"{caller}: at least 3 time points are needed{_where(key)}; got {len(x)}.")
    cnt = None if count is None else sub[count].to_numpy(dtype=float)
    pop = None if population is None else sub[population].to_numpy(dtype=float)
    if cnt is not None and (method == "glm" or rate is None) and not np.any(cnt > 0):
        raise ArgumentError(f"{caller}: no deaths at all in '{count}'{_where(key)} ({len(cnt)} times, every count 0); "
                            "a trend in the rate cannot be estimated. Pool areas or years so the series has deaths, "
                            "or leave this group out.")
    z = stats.norm.ppf(0.975)
    if method == "glm":
        r = cnt / pop * MULTIPLIER
        lo, hi = exact_rate_ci(cnt, pop, 0.95, MULTIPLIER)
        Z = None
        if covariates:
            Z = sub[list(covariates)].to_numpy(dtype=float)
            X = design(x - x[0], [], Z)
            if np.linalg.matrix_rank(X) < X.shape[1]:
                raise ArgumentError(f"{caller}: the covariates {list(covariates)} are constant or collinear with "
                                 f"time{_where(key)} (e.g. a 2021 break with no years on one side); drop them "
                                 "for this group or fit it separately.")
        return _SeriesFit(key=key, method="glm", x=x, rate=r, rate_lower=lo, rate_upper=hi, y=cnt,
                          w=pop, count=cnt, population=pop, rate_scale=MULTIPLIER, family="poisson",
                          Z=Z, covariate_names=list(covariates))
    if rate is not None:
        r = pd.to_numeric(sub[rate], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(r) | (r <= 0)
        if bad.any():
            raise ArgumentError(f"{caller}: '{rate}' must be > 0 to take its logarithm; "
                             f"{int(bad.sum())} value(s) are not{_where(key)} (first at {time}="
                             f"{_py(x[bad][0])}). Drop those rows or model counts with method='glm'.")
    else:
        adj = np.where(cnt == 0, 0.5, cnt)
        r = adj / pop * MULTIPLIER
    if variance == "se":
        s = pd.to_numeric(sub[se], errors="coerce").to_numpy(dtype=float)
        if not np.all(np.isfinite(s) & (s > 0)):
            raise ArgumentError(f"{caller}: '{se}' must be > 0 for every row{_where(key)}.")
        w = (r / s) ** 2
        lo, hi = r - z * s, r + z * s
    elif variance == "poisson":
        w = np.where(cnt == 0, 0.5, cnt).astype(float)
        if rate is None:
            lo, hi = exact_rate_ci(cnt, pop, 0.95, MULTIPLIER)
        else:
            lo, hi = r * np.exp(-z / np.sqrt(w)), r * np.exp(z / np.sqrt(w))
    else:
        w = np.ones_like(r)
        if se is not None:
            s = sub[se].to_numpy(dtype=float)
            lo, hi = r - z * s, r + z * s
        elif cnt is not None and pop is not None and rate is None:
            lo, hi = exact_rate_ci(cnt, pop, 0.95, MULTIPLIER)
        else:
            lo, hi = np.full_like(r, np.nan), np.full_like(r, np.nan)
    return _SeriesFit(key=key, method="nci", x=x, rate=r, rate_lower=lo, rate_upper=hi, y=np.log(r),
                      w=w, count=cnt, population=pop, rate_scale=1.0)


# --------------------------------------------------------------------------------------------
# fitting one series
# --------------------------------------------------------------------------------------------
def _fit_series(s, *, method, max_joinpoints, n_joinpoints, min_end, min_between, selection,
                n_permutations, alpha, rng, family="auto"):
    n = len(s.x)
    kmax_data = max_feasible(n, min_end, min_between)
    if n_joinpoints is not None:
        if n_joinpoints > kmax_data:
            raise ArgumentError(
                f"joinpoint: {n_joinpoints} joinpoint(s) cannot be placed in {n} observations{_where(s.key)} "
                f"with min_obs_end={min_end} and min_obs_between={min_between}; at most {kmax_data} can. "
                "Lower n_joinpoints or the spacing rules.")
        ks = [n_joinpoints]
    else:
        K = max_joinpoints
        if K > kmax_data:
            msg = (f"max_joinpoints={max_joinpoints} lowered to {kmax_data}{_where(s.key)}: {n} observations "
                   f"allow no more with min_obs_end={min_end}, min_obs_between={min_between}.")
            warnings.warn("joinpoint: " + msg, CdrWarning, stacklevel=4)
            s.notes.append(msg)
            K = kmax_data
        ks = list(range(K + 1))
    grid = {}
    for k in ks:
        if method == "nci":
            combo, sse, _ = wls_grid(s.x, s.y, s.w, k, min_end, min_between)
        else:
            combo, sse, _ = poisson_grid(s.x, s.y, np.log(s.w), k, min_end, min_between, Z=s.Z)
        grid[k] = (combo, sse)
    if method == "glm":
        _glm_family(s, grid, max(ks), family)
        if s.family == "negbin":   # re-run the grid search under the NB likelihood (alpha fixed)
            for k in ks:
                grid[k] = poisson_grid(s.x, s.y, np.log(s.w), k, min_end, min_between, Z=s.Z,
                                       alpha=s.alpha)[:2]
    if n_joinpoints is not None:
        chosen = n_joinpoints
    elif selection == "permutation":
        chosen = _permutation(s, grid, ks, min_end, min_between, n_permutations, alpha, rng)
    else:
        chosen = None
    table = _criteria(s, grid, ks, min_end, min_between)
    if chosen is None:
        chosen = int(table.loc[table[selection].idxmin(), "k"])
    table["selected"] = table["k"] == chosen
    s.selection = table
    s.k, s.combo = chosen, grid[chosen][0]
    if method == "nci":
        _finish_nci(s, grid[chosen][1])
    else:
        _finish_glm(s)


def _glm_design(s, combo):
    return design(s.x - s.x[0], s.x[combo] - s.x[0], s.Z)


def _glm_fit(s, X, y=None):
    """statsmodels GLM of the series' family (alpha and dispersion fixed) for design X."""
    import statsmodels.api as sm

    y = s.y if y is None else y
    if s.family == "negbin":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return sm.GLM(y, X, family=sm.families.NegativeBinomial(alpha=s.alpha), offset=np.log(s.w)).fit()
    return _poisson(y, X, np.log(s.w), scale=s.dispersion if s.family == "quasipoisson" else None)


def _nb_alpha(y, X, offset, start=None):
    """ML estimate of the NB2 alpha for a fixed design (:func:`cdr.trends._glm.nb2_fit`, statsmodels,
    as ``MASS::glm.nb``); None when the fit fails or alpha is at the boundary (< 1e-8 or > 100)."""
    fit = nb2_fit(y, X, offset, start=start)
    if fit is None:
        return None
    a = fit[2]
    if not (1e-8 < a < 100.0):
        return None
    return a


def _glm_family(s, grid, kbig, family):
    """Pearson chi-square test of the most flexible Poisson model; NB2 (alpha by ML on it) when it rejects.

    ``family="negbin"`` skips the test's decision. If the NB fit fails, quasi-Poisson (dispersion
    X^2/df) is the fallback. Degrees of freedom count each joinpoint as a parameter (n - p - k).
    """
    combo = grid[kbig][0]
    X = _glm_design(s, combo)
    res = _poisson(s.y, X, np.log(s.w))
    df = len(s.x) - X.shape[1] - kbig
    if df <= 0:
        s.notes.append("dispersion not tested: no residual degrees of freedom")
        if family != "negbin":
            return
        chi2, p = np.nan, np.nan
    else:
        chi2 = float(res.pearson_chi2)
        p = float(stats.chi2.sf(chi2, df))
        s.pearson_dispersion, s.overdispersion_p = chi2 / df, p
    over = df > 0 and p < _OVERDISPERSION_P and chi2 / df > 1
    test = (f"Pearson chi2/df = {chi2 / df:.2f} on {df} df, p = {p:.3g}" if df > 0 else "not testable")
    if family == "poisson" or (family == "auto" and not over):
        s.notes.append(f"Poisson ({'requested' if family == 'poisson' else 'dispersion accepted'}; {test})"
                       + ("; counts look overdispersed: consider family='auto'" if over else ""))
        return
    why = "negative binomial requested" if family == "negbin" else f"counts are overdispersed ({test})"
    a = _nb_alpha(s.y, X, np.log(s.w), np.asarray(res.params))
    if a is not None:
        s.family, s.alpha = "negbin", a
        msg = (f"{why}{_where(s.key)}: negative binomial NB2, alpha = {a:.4g} estimated by maximum "
               f"likelihood on the {kbig}-joinpoint model and held fixed for every model.")
    elif df > 0 and chi2 / df > 1:
        s.family, s.dispersion = "quasipoisson", chi2 / df
        msg = (f"{why}{_where(s.key)}: the negative binomial fit failed, so quasi-Poisson (dispersion "
               f"{chi2 / df:.2f}) is used for standard errors, tests and criteria.")
    else:
        s.notes.append(f"{why}: the negative binomial fit failed (alpha at 0); Poisson kept ({test})")
        return
    if family == "auto":
        warnings.warn("joinpoint: " + msg, OverdispersionWarning, stacklevel=4)
    s.notes.append(msg)


def _local_r2(s, combo):
    """Max over joinpoints of the partial R^2 of the local slope change (NCI's WBIC weight)."""
    k = len(combo)
    if k == 0:
        return np.nan
    bounds = np.concatenate([[-1], combo, [len(s.x) - 1]])
    sw = np.sqrt(s.w)
    best = 0.0
    for i in range(1, k + 1):
        idx = np.arange(bounds[i - 1] + 1, bounds[i + 1] + 1)
        xs = s.x[idx]
        X0 = np.column_stack([np.ones_like(xs), xs - xs.mean()]) * sw[idx, None]
        z = np.clip(xs - s.x[combo[i - 1]], 0, None) * sw[idx]
        yv = s.y[idx] * sw[idx]
        Q, _ = np.linalg.qr(X0)
        rz, ry = z - Q @ (Q.T @ z), yv - Q @ (Q.T @ yv)
        den = (ry @ ry) * (rz @ rz)
        best = max(best, (ry @ rz) ** 2 / den if den > 0 else 0.0)
    return best


def _criteria(s, grid, ks, min_end, min_between):
    n = len(s.x)
    rows = []
    for k in ks:
        combo, crit = grid[k]
        row = dict(k=k, joinpoints=", ".join(str(_py(v)) for v in s.x[combo]))
        if s.method == "nci":
            base, lnn = np.log(crit / n) if crit > 0 else -np.inf, np.log(n) / n
            r2 = _local_r2(s, combo)
            row.update(sse=crit, bic=base + (2 * k + 2) * lnn, bic3=base + (3 * k + 2) * lnn,
                       wbic_weight=r2,
                       wbic=base + (((2 + (0 if k == 0 else r2)) * k + 2) * lnn))
        else:   # deviance (NB: at the fixed alpha), scaled by the quasi-Poisson dispersion if any
            d = crit / s.dispersion
            row.update(deviance=crit, bic=d + (2 * k + 2) * np.log(n), bic3=d + (3 * k + 2) * np.log(n))
        rows.append(row)
    return pd.DataFrame(rows)


def _permutation(s, grid, ks, min_end, min_between, N, alpha, rng):
    """Kim et al. (2000) sequential tests; returns the selected number of joinpoints."""
    K = max(ks)
    lo, hi = min(ks), K
    rows = []
    while lo < hi:
        p, stat = _perm_p(s, grid, lo, hi, min_end, min_between, N, rng)
        level = alpha / (K - lo)
        reject = p < level
        rows.append(dict(k_null=lo, k_alt=hi, statistic=stat, p_value=p, level=level, n_permutations=N,
                         selected=hi if reject else lo))
        if reject:
            lo += 1
        else:
            hi -= 1
    s.tests = pd.DataFrame(rows, columns=["k_null", "k_alt", "statistic", "p_value", "level",
                                          "n_permutations", "selected"])
    return lo


def _perm_p(s, grid, k0, k1, min_end, min_between, N, rng):
    n = len(s.x)
    combo0 = grid[k0][0]
    X0 = design(s.x - s.x[0], s.x[combo0] - s.x[0])
    if s.method == "nci":
        sw = np.sqrt(s.w)
        b, *_ = np.linalg.lstsq(X0 * sw[:, None], s.y * sw, rcond=None)
        f = X0 @ b
        r = (s.y - f) * sw
        idx = np.argsort(rng.random((N, n)), axis=1)            # N independent permutations
        Y = f[:, None] + (r[idx].T) / sw[:, None]               # (n, N) permuted series
        t_obs = (grid[k0][1] - grid[k1][1]) / grid[k1][1]
        _, _, sse0 = wls_grid(s.x, s.y, s.w, k0, min_end, min_between, Y)
        _, _, sse1 = wls_grid(s.x, s.y, s.w, k1, min_end, min_between, Y)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (sse0 - sse1) / sse1
    else:
        X0 = _glm_design(s, combo0)
        mu = np.asarray(_glm_fit(s, X0).fittedvalues)
        if s.family == "negbin":   # NB2 draws: variance mu + alpha mu^2
            size = np.full_like(mu, 1.0 / s.alpha)
            Y = rng.negative_binomial(size[None, :], (size / (size + mu))[None, :], size=(N, n)).T
        elif s.dispersion > 1:     # quasi-Poisson fallback: NB draws with variance dispersion x mean
            size = mu / (s.dispersion - 1)
            Y = rng.negative_binomial(size[None, :], (size / (size + mu))[None, :], size=(N, n)).T
        else:
            Y = rng.poisson(mu[None, :], size=(N, n)).T
        t_obs = grid[k0][1] - grid[k1][1]
        _, _, d0 = poisson_grid(s.x, s.y, np.log(s.w), k0, min_end, min_between, Y, Z=s.Z, alpha=s.alpha)
        _, _, d1 = poisson_grid(s.x, s.y, np.log(s.w), k1, min_end, min_between, Y, Z=s.Z, alpha=s.alpha)
        t = d0 - d1
    tol = 1e-9 * max(1.0, abs(t_obs))
    p = (np.sum(t >= t_obs - tol) + 1) / (N + 1)
    return float(p), float(t_obs)


def _finish_nci(s, sse):
    x0 = s.x[0]
    taus = s.x[s.combo]
    X = design(s.x - x0, taus - x0)
    sw = np.sqrt(s.w)
    beta, *_ = np.linalg.lstsq(X * sw[:, None], s.y * sw, rcond=None)
    s.beta = beta
    s.sse = float(np.sum(((s.y - X @ beta) * sw) ** 2))
    s.slopes = np.cumsum(beta[1:])
    # Joinpoint 4.x: separate unconstrained fits per segment, dropping observations on joinpoints
    edges = s.edges()
    on_jp = np.isin(np.arange(len(s.x)), s.combo)
    sse_seg, sxx, rank = 0.0, [], 0
    for i in range(s.k + 1):
        m = (s.x >= edges[i]) & (s.x <= edges[i + 1]) & ~on_jp
        xs, ys, ws = s.x[m], s.y[m], s.w[m]
        if len(xs) >= 2:
            xm = np.sum(ws * xs) / np.sum(ws)
            sx = np.sum(ws * (xs - xm) ** 2)
            b1 = np.sum(ws * (xs - xm) * ys) / sx
            b0 = np.sum(ws * ys) / np.sum(ws) - b1 * xm
            sse_seg += np.sum(ws * (ys - b0 - b1 * xs) ** 2)
            sxx.append(sx)
            rank += 2
        else:
            sxx.append(np.nan)
            rank += len(xs)
    df = int(np.sum(~on_jp)) - rank
    s.slope_df = float(df)
    if df > 0:
        s2 = sse_seg / df
        s.slope_se = np.sqrt(s2 / np.asarray(sxx))
    else:
        s.slope_se = np.full(s.k + 1, np.nan)
        s.notes.append("no degrees of freedom left for APC standard errors (n - 3k - 2 <= 0)")


def _finish_glm(s):
    X = _glm_design(s, s.combo)
    res = _glm_fit(s, X)
    s.beta = np.asarray(res.params)
    s.cov = np.asarray(res.cov_params())
    s.deviance = float(res.deviance)
    s.sse = float(res.pearson_chi2)
    L = np.zeros((s.k + 1, X.shape[1]))
    for j in range(s.k + 1):
        L[j, 1:2 + j] = 1.0
    s.slopes = L @ s.beta
    s.slope_se = np.sqrt(np.einsum("ij,jk,ik->i", L, s.cov, L))
    s.slope_df = float(len(s.x) - X.shape[1] - s.k) if s.family == "quasipoisson" else np.inf


