"""Directly standardised rates with Dobson limits; the standard populations (private).

Dobson et al. (1991), Stat Med 10:457-462: with band counts O_i, populations n_i and standard
weights w_i, DSR = sum(w_i O_i / n_i) / sum(w_i) x multiplier, var = sum(O_i (w_i / n_i)^2) / sum(w_i)^2,
and the limits are DSR + sqrt(var / O) (L_O - O) x multiplier, where O = sum(O_i) and L_O is the
Byar's limit of O (exact below 10 events, though DSRs are not given below 10 events).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cdr.rates._core import EXACT_BELOW, MISSING, _frame, _poisson_limits, ci_columns
from cdr._validate import ArgumentError, as_array, as_levels, as_positive

#: The 2013 European Standard Population (Eurostat 2013, Revision of the European Standard
#: Population, Methodologies and Working papers, Table 3.1): persons per 100,000 in 19 five-year
#: bands, 0-4 ... 85-89 and 90+.
ESP2013 = pd.Series(
    [5000, 5500, 5500, 5500, 6000, 6000, 6500, 7000, 7000, 7000, 7000, 6500, 6000, 5500, 5000, 4000, 2500, 1500, 1000],
    index=pd.Index([f"{a}-{a + 4}" for a in range(0, 90, 5)] + ["90+"], name="age_band"),
    name="esp2013",
    dtype=float,
)

#: Child age bands used by ``cdr`` for standardisation, with weights derived from ESP2013:
#: ``0`` = 1/5 and ``1-4`` = 4/5 of the 0-4 weight (5000 -> 1000 and 4000; each single year of
#: age weighted equally within the band); ``5-9`` and ``10-14``
#: unchanged (5500 each); ``15-17`` = 3/5 of the 15-19 weight (5500 -> 3300, single years weighted
#: equally). Total 19,300; only the proportions matter for a DSR.
CHILD_STANDARD = pd.Series(
    [1000.0, 4000.0, 5500.0, 5500.0, 3300.0],
    index=pd.Index(["0", "1-4", "5-9", "10-14", "15-17"], name="age_band"),
    name="esp2013_child",
)

#: Record age bands (``cdr.schema``) -> the CHILD_STANDARD band that holds them.
RECORD_TO_CHILD_BAND = {"neonatal": "0", "postneonatal": "0", "0": "0", "1-4": "1-4", "5-9": "5-9",
                        "10-14": "10-14", "15-17": "15-17"}

TOO_FEW = f"not computed: total count < {EXACT_BELOW}"


def _standard_array(standard, n_bands, caller):
    w = as_array(standard, "standard", caller)
    if w.ndim != 1 or w.shape[0] != n_bands:
        raise ArgumentError(f"{caller}: 'standard' must have one weight per age band ({n_bands} bands in 'count'); "
                            f"got shape {w.shape}. Use ESP2013 for 19 five-year bands or CHILD_STANDARD for the 5 child bands.")
    if np.isnan(w).any() or not (w > 0).any():
        raise ArgumentError(f"{caller}: 'standard' weights must be non-missing and not all zero; got {w.tolist()}.")
    return w


def _dsr_core(o, n, w, scale, levels):
    """o, n: (groups, bands); w: (bands,). Returns the tidy table (one row per group)."""
    bad = np.isnan(o).any(axis=1) | np.isnan(n).any(axis=1)
    zero_pop = ~bad & ((n == 0) & (w > 0)).any(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(n > 0, w / np.where(n > 0, n, 1.0), 0.0)
        total_w = w.sum()
        value = (o * ratio).sum(axis=1) / total_w * scale
        var = (o * ratio**2).sum(axis=1) / total_w**2
        total = o.sum(axis=1)
        few = ~bad & ~zero_pop & (total < EXACT_BELOW)
        blank = bad | zero_pop | few
        root = np.sqrt(var / np.where(total > 0, total, 1.0)) * scale
        limits = []
        for level in levels:
            lower, upper = _poisson_limits(total, level)
            limits += [np.where(blank, np.nan, value + root * (lower - total)),
                       np.where(blank, np.nan, value + root * (upper - total))]
    value = np.where(blank, np.nan, value)
    method = np.full(o.shape[0], "dobson", dtype=object)
    method[few] = TOO_FEW
    method[zero_pop] = "not computed: zero population in an age band"
    method[bad] = MISSING
    return _frame(value, limits, method, levels), total, n.sum(axis=1)


def dsr(count, population, standard=ESP2013, multiplier=100_000, conf=(0.95, 0.998)):
    """Directly age-standardised rate with Dobson confidence limits.

    Parameters
    ----------
    count : array_like of float, shape (bands,) or (groups, bands)
        Events per age band (one row per area for a 2-D array); >= 0. A NaN band gives a NaN result
        (give 0 for a band with no events).
    population : array_like of float, same shape as `count`
        Population at risk per age band (person-years); >= 0.
    standard : array_like of float, shape (bands,), default ESP2013
        Standard population weights in the same band order (e.g. :data:`CHILD_STANDARD` for the
        five child bands 0, 1-4, 5-9, 10-14, 15-17). Only their proportions matter.
    multiplier : float, default 100_000
        The rate is expressed per this many persons per year.
    conf : float or tuple of float, default (0.95, 0.998)
        Confidence levels in (0, 1).

    Returns
    -------
    pandas.Series or pandas.DataFrame
        For 1-D input a float Series ``value``, ``lower_95``, ``upper_95``, ``lower_99_8``,
        ``upper_99_8`` (per `multiplier` persons per year) with ``.attrs["method"]``; for 2-D input
        a DataFrame with one row per group and a ``method`` column. All NaN when the total count is
        below 10, as Fingertips does (``method`` says so).

    Notes
    -----
    Dobson et al. (1991), Stat Med 10:457-462, with Byar's limits of the total count. Same as
    ``phe_dsr`` in PHEindicatormethods and ``ph_dsr`` in PHStatsMethods (which use ESP2013).

    Examples
    --------
    >>> deaths = [30, 12, 9, 11, 25]
    >>> children = [60_000, 240_000, 310_000, 300_000, 180_000]
    >>> dsr(deaths, children, standard=CHILD_STANDARD).round(2).tolist()
    [7.87, 6.3, 9.71, 5.52, 10.85]
    """
    caller = "dsr"
    levels = as_levels(conf, caller)
    scale = as_positive(multiplier, "multiplier", caller)
    o = as_array(count, "count", caller)
    n = as_array(population, "population", caller)
    if o.shape != n.shape or o.ndim not in (1, 2):
        raise ArgumentError(f"{caller}: 'count' and 'population' must have the same 1-D (bands) or 2-D (groups x bands) "
                            f"shape; got {o.shape} and {n.shape}.")
    w = _standard_array(standard, o.shape[-1], caller)
    table, _, _ = _dsr_core(np.atleast_2d(o), np.atleast_2d(n), w, scale, levels)
    if o.ndim == 2:
        return table
    row = table.iloc[0]
    out = pd.Series(row[["value", *ci_columns(levels)]].to_numpy(dtype=float), index=["value", *ci_columns(levels)], name="dsr")
    out.attrs["method"] = row["method"]
    return out
