"""Primary suppression of small counts and the ONS rules for rates built on few deaths.

Counts from 1 to ``threshold - 1`` are suppressed (default: counts below 5); zeros are published.
Rates follow ONS mortality practice: no crude rate from fewer than 3 deaths, no age-standardised
rate from fewer than 10, and rates from fewer than 20 deaths flagged ``u`` (low reliability). See
``docs/methods/disclosure.md`` for the published sources.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cdr.errors import ArgumentError, ArgumentTypeError

__all__ = ["primary_suppression", "rate_rules", "RATE_RULES", "DEFAULT_THRESHOLD"]

DEFAULT_THRESHOLD = 5

#: ONS: minimum deaths for a rate to be calculated, and below which it is flagged unreliable.
RATE_RULES = {
    "crude": {"min_count": 3, "low_reliability_below": 20},
    "standardised": {"min_count": 10, "low_reliability_below": 20},
    "percentage": {"min_count": 3, "low_reliability_below": 20},
}


def _threshold(threshold, caller):
    if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)) or threshold < 1:
        raise ArgumentError(f"{caller}: 'threshold' must be a positive integer (counts 1 .. threshold-1 are "
                         f"suppressed; the default 5 suppresses counts below 5); got {threshold!r}")
    return int(threshold)


def _as_counts(counts, caller):
    try:
        np.asarray(counts, dtype=float)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"{caller}: 'counts' must be numbers (an array, list or Series of counts); got "
                                f"{type(counts).__name__}.") from None
    return counts


def primary_suppression(counts, *, threshold=DEFAULT_THRESHOLD):
    """Flag small counts for primary suppression: 1 <= count < `threshold`; zeros stay published.

    Parameters
    ----------
    counts : array_like of int or pandas.Series
        Counts of deaths (or children, reviews); >= 0. NaN gives False (nothing to suppress).
    threshold : int, default 5
        Counts from 1 to ``threshold - 1`` are suppressed ("counts below 5").

    Returns
    -------
    numpy.ndarray of bool
        True where the count must be suppressed (same order as `counts`).

    Examples
    --------
    >>> primary_suppression([0, 1, 4, 5, 12]).tolist()
    [False, True, True, False, False]
    >>> primary_suppression([2, 3], threshold=3).tolist()
    [True, False]
    """
    counts = _as_counts(counts, "primary_suppression")
    threshold = _threshold(threshold, "primary_suppression")
    values = np.asarray(pd.to_numeric(pd.Series(np.asarray(counts, dtype=float).ravel()), errors="coerce"),
                        dtype=float)
    if np.any(values[np.isfinite(values)] < 0):
        raise ArgumentError("primary_suppression: counts must be >= 0; got a negative count")
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (values >= 1) & (values < threshold)


def rate_rules(counts, *, kind="crude", suppressed=None):
    """Whether a rate may be published from its count, by ONS rules, and its reliability flag.

    Parameters
    ----------
    counts : array_like of int
        The deaths the rate is computed from.
    kind : {"crude", "standardised", "percentage"}, default "crude"
        Crude rates need >= 3 deaths, standardised rates >= 10 (ONS); percentages follow the crude rule.
    suppressed : array_like of bool, optional
        True where the count itself is suppressed (primary or secondary); its rate is then suppressed too.

    Returns
    -------
    pandas.DataFrame
        One row per count: ``publish`` (bool), ``flag`` (``"u"`` for low reliability, below 20
        deaths, else ``""``) and ``reason`` (why a rate is withheld, else ``""``).

    Examples
    --------
    >>> rate_rules([2, 5, 25], kind="crude")
       publish flag                 reason
    0    False       fewer than 3 deaths
    1     True    u
    2     True
    >>> rate_rules([5, 12], kind="standardised", suppressed=[False, True])["reason"].tolist()
    ['fewer than 10 deaths', 'count suppressed']
    """
    counts = _as_counts(counts, "rate_rules")
    if kind not in RATE_RULES:
        raise ArgumentError(f"rate_rules: 'kind' must be one of {sorted(RATE_RULES)}; got {kind!r}")
    rule = RATE_RULES[kind]
    values = np.asarray(counts, dtype=float).ravel()
    sup = np.zeros(len(values), bool) if suppressed is None else np.asarray(suppressed, bool).ravel()
    few = ~(values >= rule["min_count"])
    publish = ~few & ~sup
    reason = np.where(sup, "count suppressed", np.where(few, f"fewer than {rule['min_count']} deaths", ""))
    flag = np.where(publish & (values < rule["low_reliability_below"]), "u", "")
    return pd.DataFrame({"publish": publish, "flag": flag, "reason": reason})
