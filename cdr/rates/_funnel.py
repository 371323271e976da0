"""Funnel-plot control limits and significance, as in the Fingertips funnel-plot method (private).

Proportions: limits by inverting the Wilson score interval about the baseline proportion
(the Fingertips "sigma adjustment"). Rates and ratios: exact Poisson limits of the count
expected at the baseline, found without iteration with the inverse Poisson distribution in the
count (``scipy.special.pdtrik``): at expected count E the lower limit is the count x with
P(X <= x | E) = alpha/2 and the upper limit the count with P(X >= x | E) = alpha/2, each divided by
the denominator. Significance compares each area's own limits (Wilson, or exact/Byar's Poisson)
with the baseline, as Fingertips' spreadsheet tools and PHStatsMethods do.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import special

from cdr.rates._core import MISSING, _check_proportion, _poisson_limits, ci_columns
from cdr.errors import CdrWarning
from cdr._validate import ArgumentError, as_array, as_levels, as_positive, number, one_of, same_shape

STATISTICS = ("proportion", "rate", "ratio")
DEFAULT_MULTIPLIER = {"proportion": 100.0, "rate": 100_000.0, "ratio": 1.0}
LABELS = ("High (0.001)", "High (0.025)", "Not significant", "Low (0.025)", "Low (0.001)")


def _check_statistic(statistic, caller):
    one_of(statistic, STATISTICS, "statistic", caller)


def _inverse_wilson(n, p0, prob, side):
    """Fingertips sigma adjustment: the proportion at which Wilson's limit at `prob` meets p0."""
    z2 = special.ndtri(prob) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        first = p0 * (n / z2 + 1)
        adj = np.sqrt((-8 * p0 * (n / z2 + 1)) ** 2
                      - 64 * (1 / z2 + 1 / n) * p0 * (n * (p0 * (n / z2 + 2) - 1) + z2 * (p0 - 1)))
        last = 1 / z2 + 1 / n
        out = (first - adj / 8) / last if side == "low" else (first + adj / 8) / last
        return out / n


def funnel_limits(statistic, denominator, baseline=None, multiplier=None, conf=(0.95, 0.998)) -> pd.DataFrame:
    """Funnel-plot control limits at each denominator, as in the Fingertips funnel-plot method.

    Parameters
    ----------
    statistic : {"proportion", "rate", "ratio"}
        ``"proportion"``: binomial limits (inverse Wilson); ``"rate"`` and ``"ratio"``: exact Poisson.
    denominator : array_like of float
        Where to evaluate the limits: the number of people (proportion), the population at risk in
        person-years (rate), or the expected count (ratio); > 0 (0 or NaN gives a NaN row).
    baseline : float
        The centre line on the raw scale: a proportion in [0, 1], a rate per person-year (e.g.
        total deaths / total person-years), or a ratio (default 1 for ``"ratio"``; required otherwise).
    multiplier : float, optional
        Output scale; default 100 (per cent) for proportions, 100,000 for rates, 1 for ratios.
    conf : float or tuple of float, default (0.95, 0.998)
        Control-limit levels; 95 % and 99.8 % are about 2 and 3 standard deviations.

    Returns
    -------
    pandas.DataFrame
        One row per denominator: ``denominator``, ``expected`` (events expected at the baseline),
        ``baseline`` (x `multiplier`), ``lower_95``, ``upper_95``, ``lower_99_8``, ``upper_99_8``
        (x `multiplier`; proportions clipped to [0, `multiplier`]) and ``method``.

    Notes
    -----
    Fingertips technical guidance, "Funnel plots"; ``calculate_funnel_limits`` in
    PHEindicatormethods and PHStatsMethods tabulate the same curves at 100 event counts found by
    bisection, which agree with these closed forms to the bisection's tolerance (about 1e-7).

    Examples
    --------
    >>> funnel_limits("rate", [10_000, 100_000], baseline=30 / 100_000)[["expected", "lower_95", "upper_95"]].round(2)
       expected  lower_95  upper_95
    0       3.0      0.00     72.94
    1      30.0     19.27     41.68
    """
    caller = "funnel_limits"
    _check_statistic(statistic, caller)
    levels = as_levels(conf, caller)
    scale = DEFAULT_MULTIPLIER[statistic] if multiplier is None else as_positive(multiplier, "multiplier", caller)
    if baseline is None:
        if statistic != "ratio":
            raise ArgumentError(f"{caller}: 'baseline' is required for statistic={statistic!r}: give the overall "
                                f"{statistic} on the raw scale, e.g. sum(deaths) / sum(population).")
        baseline = 1.0
    b = as_positive(baseline, "baseline", caller) if statistic != "proportion" else number(baseline, "baseline", caller)
    if statistic == "rate" and b >= 1:
        warnings.warn(f"{caller}: a rate 'baseline' is events per person on the raw scale (e.g. 30 / 100_000); "
                      f"got {baseline!r}, i.e. {b:g} events per person a year."
                      + (f" Did you mean {b:g} / {scale:,.0f} = {b / scale:g}?" if scale > 1 else ""),
                      CdrWarning, stacklevel=2)
    if statistic == "proportion" and not 0 < b < 1:
        raise ArgumentError(f"{caller}: 'baseline' must be a proportion in (0, 1) on the raw scale; got {baseline!r}."
                            + (f" Did you mean {b / 100:g}?" if 1 < b < 100 else ""))
    n = np.atleast_1d(as_array(denominator, "denominator", caller))
    if n.ndim != 1:
        raise ArgumentError(f"{caller}: 'denominator' must be 1-D; got shape {n.shape}.")
    bad = np.isnan(n) | (n == 0)
    safe = np.where(bad, 1.0, n)
    expected = np.where(np.isnan(n), np.nan, n * b)
    data = {"denominator": n, "expected": expected, "baseline": np.full(n.shape, b * scale)}
    names = iter(ci_columns(levels))
    for level in levels:
        tail = (1 - level) / 2
        if statistic == "proportion":
            lower = np.clip(_inverse_wilson(safe, b, 1 - tail, "low"), 0, 1)
            upper = np.clip(_inverse_wilson(safe, b, 1 - tail, "high"), 0, 1)
        else:
            e = safe * b
            lower = special.pdtrik(tail, e) / safe
            upper = (special.pdtrik(1 - tail, e) + 1) / safe
        data[next(names)] = np.where(bad, np.nan, lower * scale)
        data[next(names)] = np.where(bad, np.nan, upper * scale)
    method = np.full(n.shape, "inverse wilson" if statistic == "proportion" else "exact poisson", dtype=object)
    method[bad] = MISSING
    data["method"] = method
    return pd.DataFrame(data)


def funnel_significance(numerator, denominator, statistic="proportion", baseline=None, multiplier=100) -> np.ndarray:
    """Each area's position on the funnel plot, in Fingertips' wording.

    Parameters
    ----------
    numerator : array_like of float
        Events per area (deaths, or the count with the characteristic); >= 0.
    denominator : array_like of float
        People (proportion), person-years (rate) or expected events (ratio), same shape.
    statistic : {"proportion", "rate", "ratio"}, default "proportion"
    baseline : float, optional
        Raw-scale centre line; default sum(numerator) / sum(denominator) over complete rows for
        proportions and rates, and 1 for ratios (observed = expected).
    multiplier : float, default 100
        Display scale of the funnel; the labels do not depend on it.

    Returns
    -------
    numpy.ndarray of str
        ``"High (0.001)"``, ``"High (0.025)"``, ``"Not significant"``, ``"Low (0.025)"`` or
        ``"Low (0.001)"`` (outside the 99.8 % / 95 % limits); for a row with a missing or zero
        denominator, why it was not computed.

    Notes
    -----
    Proportions: the area's proportion against the inverse-Wilson limits at the baseline. Rates
    and ratios: the area's exact (< 10 events) or Byar's limits against the baseline. Same as
    ``assign_funnel_significance`` in PHEindicatormethods and PHStatsMethods.

    Examples
    --------
    >>> funnel_significance([2, 30, 140], [10_000, 100_000, 150_000], statistic="rate", baseline=50 / 100_000).tolist()
    ['Not significant', 'Low (0.025)', 'High (0.001)']
    """
    caller = "funnel_significance"
    _check_statistic(statistic, caller)
    as_positive(multiplier, "multiplier", caller)
    x = as_array(numerator, "numerator", caller)
    n = as_array(denominator, "denominator", caller)
    x, n = same_shape(caller, numerator=x, denominator=n)
    x, n = np.atleast_1d(x), np.atleast_1d(n)
    bad = np.isnan(x) | np.isnan(n) | (n == 0)
    if baseline is None:   # the overall value, NaN when no row is usable
        baseline = 1.0 if statistic == "ratio" else x[~bad].sum() / n[~bad].sum() if (~bad).any() else np.nan
        b = float(baseline)
    else:
        b = number(baseline, "baseline", caller)
    safe = np.where(bad, 1.0, n)
    xs = np.where(bad, 0.0, x)
    out = np.full(x.shape, LABELS[2], dtype=object)
    if statistic == "proportion":
        _check_proportion(x, n, caller, "numerator", "denominator")
        if not 0 < b < 1:
            raise ArgumentError(f"{caller}: 'baseline' must be a proportion in (0, 1); got {baseline!r}.")
        p = xs / safe
        for level, high, low in ((0.95, LABELS[1], LABELS[3]), (0.998, LABELS[0], LABELS[4])):
            prob = level + (1 - level) / 2
            out = np.where(p < _inverse_wilson(safe, b, prob, "low"), low, out)
            out = np.where(p > _inverse_wilson(safe, b, prob, "high"), high, out)
    else:
        if not b > 0:
            raise ArgumentError(f"{caller}: 'baseline' must be positive; got {baseline!r}.")
        for level, high, low in ((0.95, LABELS[1], LABELS[3]), (0.998, LABELS[0], LABELS[4])):
            lower, upper = _poisson_limits(xs, level)
            out = np.where(b < lower / safe, high, out)
            out = np.where(b > upper / safe, low, out)
    out = out.astype(object)
    out[bad] = np.where(np.isnan(x[bad]) | np.isnan(n[bad]), MISSING, "not computed: denominator is zero")
    return out
