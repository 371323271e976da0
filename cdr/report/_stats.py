"""The statistics the report publishes, from :mod:`cdr.rates` (Fingertips methods).

Crude rates: exact Poisson limits below 10 events, Byar's from 10 (:func:`cdr.rates.crude_rate`);
proportions: Wilson score limits (:func:`cdr.rates.proportion`); funnel limits: exact Poisson
around the England rate (:func:`cdr.rates.funnel_limits`).
"""
from __future__ import annotations

import numpy as np

from cdr import rates

__all__ = ["rate_ci", "wilson_ci", "funnel_limits"]


def rate_ci(count, population, *, multiplier=100_000, conf=0.95):
    """(rate, lower, upper, method) arrays per `multiplier`; NaN rows where count or population is missing."""
    count = np.asarray(count, dtype=float)
    population = np.asarray(population, dtype=float)
    if count.size == 0:
        empty = np.array([], dtype=float)
        return empty, empty, empty, np.array([], dtype=object)
    t = rates.crude_rate(count, population, multiplier=multiplier, conf=conf)
    lo, hi = rates.ci_columns(conf)
    return t["value"].to_numpy(float), t[lo].to_numpy(float), t[hi].to_numpy(float), t["method"].to_numpy()


def wilson_ci(count, n, *, conf=0.95):
    """(proportion, lower, upper) in 0-1 with Wilson score limits; NaN where `n` is 0 or missing."""
    count = np.asarray(count, dtype=float)
    n = np.asarray(n, dtype=float)
    if count.size == 0:
        empty = np.array([], dtype=float)
        return empty, empty, empty
    t = rates.proportion(count, n, multiplier=1, conf=conf)
    lo, hi = rates.ci_columns(conf)
    return t["value"].to_numpy(float), t[lo].to_numpy(float), t[hi].to_numpy(float)


def funnel_limits(target_rate, population, *, conf=0.95, multiplier=100_000):
    """(lower, upper) exact Poisson control limits per `multiplier` around `target_rate` (per `multiplier`)."""
    t = rates.funnel_limits("rate", np.asarray(population, dtype=float), baseline=target_rate / multiplier,
                            multiplier=multiplier, conf=(conf,))
    lo, hi = rates.ci_columns(conf)
    return t[lo].to_numpy(float), t[hi].to_numpy(float)
