"""Confidence limits of counts and proportions; crude rates, proportions and ratios (private).

Formulas (vectorised, one array operation per level):

- exact Poisson (Garwood 1936): lower = chi2(a/2; 2x)/2, upper = chi2(1-a/2; 2x+2)/2, computed as
  the equivalent inverse regularised gamma functions; lower = 0 when x = 0.
- Byar's (Breslow & Day 1987): lower = x(1 - 1/(9x) - z/(3 sqrt x))^3,
  upper = (x+1)(1 - 1/(9(x+1)) + z/(3 sqrt(x+1)))^3, z = Phi^-1(conf + (1-conf)/2).
- Wilson (1927; Newcombe & Altman 2000): (2x + z^2 -/+ z sqrt(z^2 + 4x(1 - x/n))) / (2(n + z^2)).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from cdr._validate import ArgumentError, as_array, as_level, as_levels, as_positive, same_shape

#: Below this many events the exact Poisson limits are used, at or above it Byar's (Fingertips).
EXACT_BELOW = 10

MISSING = "not computed: missing input"
ZERO_DENOMINATOR = "not computed: denominator is zero"


def ci_columns(conf=(0.95, 0.998), estimate=None) -> list:
    """Names of the confidence-limit columns for the given levels, in output order.

    The one rule for these names in ``cdr`` (``docs/dev/contracts.md``): ``lower_`` / ``upper_``
    followed by the level as a percentage, with the decimal point written ``_`` and no trailing
    zeros. The unprefixed names are the limits of a table's ``value`` column; the limits of any
    other estimate column ``X`` (``apc``, ``odds_ratio``, ``rate`` ...) are ``X_lower_95``, ``X_upper_95``.

    Parameters
    ----------
    conf : float or tuple of float, default (0.95, 0.998)
        Confidence levels in (0, 1).
    estimate : str, optional
        Name of the estimate column the limits belong to; None (or ``"value"``) for ``value``.

    Returns
    -------
    list of str
        ``lower_<level>, upper_<level>`` (prefixed by ``<estimate>_``) for each level in the order given.

    Examples
    --------
    >>> ci_columns((0.95, 0.998))
    ['lower_95', 'upper_95', 'lower_99_8', 'upper_99_8']
    >>> ci_columns(0.9, estimate="apc")
    ['apc_lower_90', 'apc_upper_90']
    """
    if estimate is not None and (not isinstance(estimate, str) or not estimate.isidentifier()):
        raise ArgumentError(f"ci_columns: 'estimate' must be a column name such as 'apc'; got {estimate!r}.")
    prefix = "" if estimate in (None, "value") else f"{estimate}_"
    names = []
    for level in as_levels(conf, "ci_columns"):
        tag = f"{round(level * 100, 6):.6f}".rstrip("0").rstrip(".").replace(".", "_")
        names += [f"{prefix}lower_{tag}", f"{prefix}upper_{tag}"]
    return names


def _z(level: float) -> float:
    # Same expression as the Fingertips tools: the upper (1 - alpha/2) standard normal quantile.
    return float(special.ndtri(level + (1 - level) / 2))


def _exact_lower(x, level):
    alpha = 1 - level
    with np.errstate(invalid="ignore"):
        out = special.gammaincinv(np.where(x > 0, x, 1.0), alpha / 2)
    return np.where(x == 0, 0.0, np.where(np.isnan(x), np.nan, out))


def _exact_upper(x, level):
    alpha = 1 - level
    return special.gammainccinv(x + 1, alpha / 2)


def _byars_lower(x, level):
    z = _z(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = x * (1 - 1 / (9 * x) - z / (3 * np.sqrt(x))) ** 3
    return np.where(out >= 0, out, np.nan)


def _byars_upper(x, level):
    z = _z(level)
    x1 = x + 1
    return x1 * (1 - 1 / (9 * x1) + z / (3 * np.sqrt(x1))) ** 3


def _poisson_limits(x, level):
    """Fingertips convention: exact below 10 events, Byar's from 10."""
    small = x < EXACT_BELOW  # NaN compares False
    big = np.where(small, EXACT_BELOW, x)
    lower, upper = _byars_lower(big, level), _byars_upper(big, level)
    if small.any():  # the iterative inverse gamma only where it is needed
        lower[small] = _exact_lower(x[small], level)
        upper[small] = _exact_upper(x[small], level)
    nan = np.isnan(x)
    lower[nan] = np.nan
    upper[nan] = np.nan
    return lower, upper


def _scalar_or_array(arr, ndim):
    return float(arr) if ndim == 0 else arr


def byars_ci(count, conf=0.95):
    """Byar's approximate confidence limits of a Poisson count.

    Parameters
    ----------
    count : float or array_like
        Observed events (e.g. deaths); >= 0. NaN gives NaN limits.
    conf : float, default 0.95
        Confidence level in (0, 1).

    Returns
    -------
    lower, upper : float or numpy.ndarray
        Limits of the expected count (events). ``lower`` is NaN where Byar's formula would be
        negative (0 events, or very few events at high confidence): use :func:`exact_poisson_ci` there.

    Notes
    -----
    Breslow & Day (1987), IARC Sci Publ 82, p. 69. Same as ``byars_lower``/``byars_upper`` in the R
    package PHEindicatormethods, without their switch to exact limits below 10 events
    (:func:`crude_rate` makes that switch).

    Examples
    --------
    >>> lower, upper = byars_ci(120)
    >>> round(lower, 3), round(upper, 3)
    (99.49, 143.492)
    """
    level = as_level(conf, "byars_ci")
    x = as_array(count, "count", "byars_ci")
    return _scalar_or_array(_byars_lower(x, level), x.ndim), _scalar_or_array(_byars_upper(x, level), x.ndim)


def exact_poisson_ci(count, conf=0.95):
    """Exact (Garwood) confidence limits of a Poisson count.

    Parameters
    ----------
    count : float or array_like
        Observed events; >= 0 (non-integer counts are allowed, as for pooled or averaged data).
        NaN gives NaN limits.
    conf : float, default 0.95
        Confidence level in (0, 1).

    Returns
    -------
    lower, upper : float or numpy.ndarray
        Limits of the expected count: ``chi2.ppf((1-conf)/2, 2x)/2`` (0 when x = 0) and
        ``chi2.ppf(1-(1-conf)/2, 2x+2)/2``.

    Notes
    -----
    Garwood (1936), Biometrika 28:437; Armitage & Berry (2002). R: ``poisson.test(x)$conf.int``
    and PHEindicatormethods' exact limits.

    Examples
    --------
    >>> lower, upper = exact_poisson_ci([0, 5])
    >>> lower.round(6).tolist(), upper.round(6).tolist()
    ([0.0, 1.623486], [3.688879, 11.668332])
    """
    level = as_level(conf, "exact_poisson_ci")
    x = as_array(count, "count", "exact_poisson_ci")
    return _scalar_or_array(_exact_lower(x, level), x.ndim), _scalar_or_array(_exact_upper(x, level), x.ndim)


def _wilson(x, n, level):
    z = _z(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        root = z * np.sqrt(z**2 + 4 * x * (1 - x / n))
        lower = (2 * x + z**2 - root) / 2 / (n + z**2)
        upper = (2 * x + z**2 + root) / 2 / (n + z**2)
    # Rounding can put a limit a hair outside [0, 1] (x = n gives 1.0000000000000002): clip, and pin
    # the limits at the boundary exactly where the formula gives the boundary in exact arithmetic.
    lower = np.where(x == 0, 0.0, np.clip(lower, 0.0, 1.0))
    upper = np.where(x == n, 1.0, np.clip(upper, 0.0, 1.0))
    bad = np.isnan(x) | np.isnan(n) | (n == 0)
    return np.where(bad, np.nan, lower), np.where(bad, np.nan, upper)


def _check_proportion(x, n, caller, count_name="count", n_name="n"):
    over = x > n
    if over.any():
        where = np.flatnonzero(over.ravel())
        raise ArgumentError(f"{caller}: '{count_name}' must not exceed '{n_name}' for a proportion; rows {where[:5].tolist()} have "
                            f"{count_name} {x.ravel()[where][:5].tolist()} > {n_name} {n.ravel()[where][:5].tolist()}. "
                            f"Check the denominator, or use crude_rate for events per person-time.")


def wilson_ci(count, n, conf=0.95):
    """Wilson score confidence limits of a proportion, on the 0-1 scale.

    Parameters
    ----------
    count : float or array_like
        Numerator (e.g. deaths with a modifiable factor); 0 <= count <= n.
    n : float or array_like
        Denominator (e.g. reviewed deaths), same shape as `count`; n = 0 or NaN gives NaN limits.
    conf : float, default 0.95
        Confidence level in (0, 1).

    Returns
    -------
    lower, upper : float or numpy.ndarray
        Limits of the proportion (0-1).

    Notes
    -----
    Wilson (1927), JASA 22:209-212; Newcombe & Altman (2000). R: ``wilson_lower``/``wilson_upper``
    in PHEindicatormethods, ``prop.test(x, n, correct = FALSE)$conf.int``.

    Examples
    --------
    >>> lower, upper = wilson_ci(0, 20)
    >>> round(lower, 6), round(upper, 6)
    (0.0, 0.161125)
    """
    level = as_level(conf, "wilson_ci")
    x = as_array(count, "count", "wilson_ci")
    m = as_array(n, "n", "wilson_ci")
    x, m = same_shape("wilson_ci", count=x, n=m)
    _check_proportion(x, m, "wilson_ci")
    lower, upper = _wilson(x, m, level)
    return _scalar_or_array(lower, x.ndim), _scalar_or_array(upper, x.ndim)


def _frame(value, limits, method, levels, index=None) -> pd.DataFrame:
    data = {"value": value}
    for name, column in zip(ci_columns(levels), limits):
        data[name] = column
    data["method"] = method
    return pd.DataFrame(data, index=index)


def _poisson_table(x, denominator, scale, levels, zero_reason=ZERO_DENOMINATOR):
    """Rate/ratio table: x / denominator * scale with exact/Byar's limits of x."""
    bad = np.isnan(x) | np.isnan(denominator)
    zero = ~bad & (denominator == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(bad | zero, np.nan, scale / np.where(zero, 1.0, denominator))
    limits = []
    for level in levels:
        lower, upper = _poisson_limits(x, level)
        limits += [lower * factor, upper * factor]
    method = np.where(x < EXACT_BELOW, "exact", "byars").astype(object)
    method[bad] = MISSING
    method[zero] = zero_reason
    return _frame(x * factor, limits, method, levels)


def _pair(caller, conf, multiplier, **arrays):
    """Checked levels, multiplier and two same-shape 1-D float arrays (named as the caller names them)."""
    levels = as_levels(conf, caller)
    scale = as_positive(multiplier, "multiplier", caller)
    checked = {name: as_array(value, name, caller) for name, value in arrays.items()}
    x, y = same_shape(caller, **checked)
    return levels, scale, np.atleast_1d(x), np.atleast_1d(y)


def crude_rate(count, population, multiplier=100_000, conf=(0.95, 0.998)) -> pd.DataFrame:
    """Crude rate per `multiplier` population, with exact or Byar's confidence limits.

    Parameters
    ----------
    count : array_like of float
        Events (e.g. child deaths) per area or group; >= 0. NaN gives a NaN row.
    population : array_like of float
        Population at risk (person-years), same shape as `count`; >= 0. 0 or NaN gives a NaN row.
    multiplier : float, default 100_000
        The rate is expressed per this many persons per year.
    conf : float or tuple of float, default (0.95, 0.998)
        Confidence levels in (0, 1); the Fingertips defaults are 95 % and 99.8 %.

    Returns
    -------
    pandas.DataFrame
        One row per element: ``value``, ``lower_95``, ``upper_95``, ``lower_99_8``,
        ``upper_99_8`` (per `multiplier` persons per year) and ``method`` (``"exact"`` if
        count < 10, else ``"byars"``; for a NaN row, why it was not computed).

    Notes
    -----
    Fingertips technical guidance; same numbers as ``phe_rate`` in the R package
    PHEindicatormethods and ``ph_rate`` in PHStatsMethods. Zero counts are valid: rate 0,
    lower limit 0, exact upper limit.

    Examples
    --------
    >>> crude_rate([4, 120], [20_000, 400_000]).round(2)
       value  lower_95  upper_95  lower_99_8  upper_99_8 method
    0   20.0      5.45     51.21        2.14       73.97  exact
    1   30.0     24.87     35.87       22.24       39.47  byars
    """
    levels, scale, x, n = _pair("crude_rate", conf, multiplier, count=count, population=population)
    return _poisson_table(x, n, scale, levels, "not computed: population is zero")


def proportion(count, n, multiplier=1, conf=(0.95, 0.998)) -> pd.DataFrame:
    """Proportion with Wilson score confidence limits.

    Parameters
    ----------
    count : array_like of float
        Numerator per group (e.g. reviewed deaths with modifiable factors); 0 <= count <= n.
    n : array_like of float
        Denominator per group (e.g. reviewed deaths), same shape as `count`; 0 or NaN gives a NaN row.
    multiplier : float, default 1
        1 for a proportion (0-1), 100 for a percentage.
    conf : float or tuple of float, default (0.95, 0.998)
        Confidence levels in (0, 1).

    Returns
    -------
    pandas.DataFrame
        ``value``, ``lower_95``, ``upper_95``, ``lower_99_8``, ``upper_99_8`` (units of
        `multiplier`) and ``method`` (``"wilson"``, or why a NaN row was not computed).

    Notes
    -----
    Same as ``phe_proportion`` in PHEindicatormethods and ``ph_proportion`` in PHStatsMethods.

    Examples
    --------
    >>> proportion([0, 30], [40, 120], multiplier=100).round(2)
       value  lower_95  upper_95  lower_99_8  upper_99_8  method
    0    0.0      0.00      8.76        0.00       19.27  wilson
    1   25.0     18.11     33.44       14.94       38.74  wilson
    """
    levels, scale, x, m = _pair("proportion", conf, multiplier, count=count, n=n)
    _check_proportion(x, m, "proportion")
    bad = np.isnan(x) | np.isnan(m)
    zero = ~bad & (m == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(bad | zero, np.nan, x / np.where(zero, 1.0, m) * scale)
    limits = []
    for level in levels:
        lower, upper = _wilson(x, m, level)
        limits += [lower * scale, upper * scale]
    method = np.full(x.shape, "wilson", dtype=object)
    method[bad] = MISSING
    method[zero] = ZERO_DENOMINATOR
    return _frame(value, limits, method, levels)


def isr(observed, expected, conf=(0.95, 0.998), multiplier=1) -> pd.DataFrame:
    """Indirectly standardised ratio (observed / expected) with exact or Byar's limits.

    Parameters
    ----------
    observed : array_like of float
        Observed events per area; >= 0.
    expected : array_like of float
        Expected events per area (e.g. from :func:`cdr.reference.expected_deaths`), same shape;
        > 0 (0 or NaN gives a NaN row).
    conf : float or tuple of float, default (0.95, 0.998)
        Confidence levels in (0, 1).
    multiplier : float, default 1
        1 for a ratio, 100 for the SMR convention (England = 100).

    Returns
    -------
    pandas.DataFrame
        ``value``, ``lower_95``, ``upper_95``, ``lower_99_8``, ``upper_99_8`` (ratio x
        `multiplier`) and ``method`` (``"exact"`` below 10 observed events, else ``"byars"``).

    Notes
    -----
    The expected count is treated as fixed; limits are those of the observed count divided by
    it. Same as ``phe_isr``/``phe_smr`` in PHEindicatormethods (``refvalue`` = `multiplier`).

    Examples
    --------
    >>> isr([12, 0], [10.0, 2.5], multiplier=100)[["value", "lower_95", "upper_95"]].round(1)
       value  lower_95  upper_95
    0  120.0      61.9     209.6
    1    0.0       0.0     147.6
    """
    caller = "isr"
    levels = as_levels(conf, caller)
    scale = as_positive(multiplier, "multiplier", caller)
    o = as_array(observed, "observed", caller)
    e = as_array(expected, "expected", caller)
    o, e = same_shape(caller, observed=o, expected=e)
    return _poisson_table(np.atleast_1d(o), np.atleast_1d(e), scale, levels, "not computed: expected count is zero")
