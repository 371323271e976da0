"""Tidy wrappers: a frame with group columns in, one row per group out (private)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from cdr.rates._core import crude_rate, isr, proportion
from cdr.rates._dsr import CHILD_STANDARD, RECORD_TO_CHILD_BAND, _dsr_core, _standard_array
from cdr._validate import ArgumentError, as_array, as_by, as_levels, as_positive, check_columns


def _group_sums(frame, columns, by, caller):
    """Sum `columns` (argument -> column) within groups of `by`; a NaN anywhere in a group gives NaN."""
    keys = list(by)
    check_columns(frame, {"by": keys, **columns}, caller)
    columns = list(columns.values())
    values = {c: as_array(frame[c], c, caller) for c in columns}
    if not keys:
        return pd.DataFrame({c: [v.sum()] for c, v in values.items()})  # NaN propagates
    code, groups = _group_codes(frame, keys)  # group columns keep their dtype (categoricals their order)
    sums = groups.reset_index(drop=True)
    for c, v in values.items():
        sums[c] = _cell_sums(code, v, len(groups))
    return sums


def _cell_sums(code, values, size):
    """Sums of `values` within cells ``code`` (0 .. size-1), vectorised; NaN where a cell holds a NaN."""
    total = np.bincount(code, weights=np.nan_to_num(values), minlength=size)
    has_nan = np.bincount(code, weights=np.isnan(values), minlength=size) > 0
    return np.where(has_nan, np.nan, total)


def _per_group(frame, columns, by, caller, stat):
    """The tidy table of the simple statistics: `columns` (argument -> column) summed within groups of
    `by`, then ``stat(*sums)`` (an array function of :mod:`cdr.rates._core`) on the sums."""
    sums = _group_sums(frame, columns, as_by(by, caller), caller)
    return _finish(sums, stat(*(sums[c].to_numpy() for c in columns.values())), frame)


def _group_codes(frame, by):
    """Group number of every row (groups in the sorted order ``groupby(by, sort=True)`` uses) and the groups.

    One hash pass per key column (``pandas.factorize``) instead of a ``groupby``; NaN keys form their
    own group, last, as with ``dropna=False``.
    """
    codes, uniques = [], []
    for column in by:
        c, u = pd.factorize(frame[column], sort=True, use_na_sentinel=False)
        codes.append(c)
        uniques.append(u)
    if len(by) == 1:
        return codes[0], pd.DataFrame({by[0]: uniques[0]})
    flat = np.ravel_multi_index(codes, [len(u) for u in uniques])
    present, code = np.unique(flat, return_inverse=True)
    parts = np.unravel_index(present, [len(u) for u in uniques])
    groups = pd.DataFrame({column: u.take(p) for column, u, p in zip(by, uniques, parts)})
    return code.reshape(-1), groups


def _finish(sums, stats, frame):
    out = pd.concat([sums.reset_index(drop=True), stats.reset_index(drop=True)], axis=1)
    out.attrs = {k: v for k, v in frame.attrs.items() if k == "synthetic"}
    return out


def rate_table(frame, count="deaths", population="population", by=None, multiplier=100_000, conf=(0.95, 0.998)) -> pd.DataFrame:
    """Crude rates per group of a tidy frame (sums counts and populations within groups first).

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per cell (e.g. area x year x sex), never modified.
    count, population : str, default "deaths", "population"
        Columns holding events and population at risk (person-years).
    by : str or list of str, optional
        Group columns; one output row per observed combination, sorted. None: one overall row.
    multiplier : float, default 100_000
    conf : float or tuple of float, default (0.95, 0.998)

    Returns
    -------
    pandas.DataFrame
        The `by` columns, `count` and `population` (sums used), then the columns of
        :func:`crude_rate` (``value``, ``lower_95``, ``upper_95``, ``lower_99_8``, ``upper_99_8``,
        ``method``). ``.attrs["synthetic"]`` is carried over from `frame`.

    Notes
    -----
    R: ``df |> group_by(...) |> phe_rate(x, n)`` in PHEindicatormethods.

    Examples
    --------
    >>> df = pd.DataFrame({"la_code": ["E1", "E1", "E2"], "deaths": [3, 1, 120], "population": [10_000, 10_000, 400_000]})
    >>> rate_table(df, by="la_code")[["la_code", "deaths", "value", "lower_95", "method"]].round(2)
      la_code  deaths  value  lower_95 method
    0      E1     4.0   20.0      5.45  exact
    1      E2   120.0   30.0     24.87  byars
    """
    return _per_group(frame, {"count": count, "population": population}, by, "rate_table",
                      lambda x, n: crude_rate(x, n, multiplier=multiplier, conf=conf))


def proportion_table(frame, count, n, by=None, multiplier=1, conf=(0.95, 0.998)) -> pd.DataFrame:
    """Proportions with Wilson limits per group of a tidy frame.

    Parameters
    ----------
    frame : pandas.DataFrame
    count, n : str
        Columns holding the numerator (e.g. ``modifiable`` deaths) and denominator (e.g. reviewed deaths).
    by : str or list of str, optional
    multiplier : float, default 1
        100 for percentages.
    conf : float or tuple of float, default (0.95, 0.998)

    Returns
    -------
    pandas.DataFrame
        The `by` columns, `count`, `n`, then the columns of :func:`proportion`.

    Notes
    -----
    R: ``phe_proportion`` in PHEindicatormethods.

    Examples
    --------
    >>> df = pd.DataFrame({"region": ["N", "N", "S"], "modifiable": [3, 5, 0], "reviewed": [20, 30, 25]})
    >>> proportion_table(df, "modifiable", "reviewed", by="region", multiplier=100)[["region", "value", "upper_95"]].round(2)
      region  value  upper_95
    0      N   16.0     28.51
    1      S    0.0     13.32
    """
    return _per_group(frame, {"count": count, "n": n}, by, "proportion_table",
                      lambda x, m: proportion(x, m, multiplier=multiplier, conf=conf))


def isr_table(frame, observed="deaths", expected="expected_deaths", by=None, multiplier=1, conf=(0.95, 0.998)) -> pd.DataFrame:
    """Indirectly standardised ratios per group: sums observed and expected events, then :func:`isr`.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per cell (e.g. area x year x sex), never modified.
    observed, expected : str, default "deaths", "expected_deaths"
        Columns holding observed events (counts, >= 0) and expected events (e.g. from
        :func:`cdr.reference.expected_deaths`; > 0) per row.
    by : str or list of str, optional
        Group columns; one output row per observed combination, sorted. None: one overall row.
    multiplier : float, default 1
        Scale of the ratio: 1 gives observed/expected, 100 a ratio in percent (an SMR).
    conf : float or tuple of float, default (0.95, 0.998)
        Confidence levels in (0, 1).

    Returns
    -------
    pandas.DataFrame
        The `by` columns, `observed` and `expected` (sums used), then ``value`` (observed /
        expected x `multiplier`), ``lower_95``, ``upper_95``, ``lower_99_8``, ``upper_99_8`` (units
        of ``value``) and ``method`` (``"exact"`` below 10 observed events, else ``"byars"``).
        ``.attrs["synthetic"]`` is carried over from `frame`.

    Notes
    -----
    R: ``df |> group_by(...) |> phe_isr(...)`` in PHEindicatormethods (``refvalue`` = `multiplier`).

    Examples
    --------
    Rows are summed per group before the ratio (E1: 12 observed / 10 expected):

    >>> df = pd.DataFrame({"la_code": ["E1", "E1", "E2"], "deaths": [5, 7, 0],
    ...                    "expected_deaths": [4.0, 6.0, 2.5]})
    >>> out = isr_table(df, by="la_code", multiplier=100)
    >>> out[["la_code", "deaths", "expected_deaths", "value", "method"]].values.tolist()
    [['E1', 12.0, 10.0, 120.0, 'byars'], ['E2', 0.0, 2.5, 0.0, 'exact']]
    """
    return _per_group(frame, {"observed": observed, "expected": expected}, by, "isr_table",
                      lambda o, e: isr(o, e, conf=conf, multiplier=multiplier))


def _band_positions(bands, standard, caller, column):
    bands = bands if isinstance(bands, pd.Series) else pd.Series(bands)
    codes, uniques = pd.factorize(bands, use_na_sentinel=False)  # a handful of distinct labels
    labels = pd.Index(standard.index.astype(str))
    text = pd.Series(uniques, dtype=object).astype(str)
    pos = labels.get_indexer(text)
    if (pos < 0).any():  # record bands (neonatal, postneonatal) map into the child bands
        mapped = labels.get_indexer(text.map(RECORD_TO_CHILD_BAND).fillna("\x00"))
        pos = np.where(pos < 0, mapped, pos)
    if (pos < 0).any():
        unknown = sorted(set(text[pos < 0]))
        raise ArgumentError(f"{caller}: {column!r} value(s) {unknown} are not bands of the standard population "
                            f"{list(labels)}. Recode the bands, or pass a standard (pandas Series indexed by band) that has them.")
    return pos[codes]


def dsr_table(frame, count="deaths", population="population", age_band="age_band", standard=CHILD_STANDARD, by=None,
              multiplier=100_000, conf=(0.95, 0.998)) -> pd.DataFrame:
    """Directly age-standardised rates per group of a tidy frame (one row per group x age band in).

    Parameters
    ----------
    frame : pandas.DataFrame
        Rows per group and age band (several rows per band are summed).
    count, population : str, default "deaths", "population"
        Events and population at risk (person-years) per row.
    age_band : str, default "age_band"
        Column of band labels matching ``standard.index``; the record bands ``neonatal`` and
        ``postneonatal`` count towards band ``0`` of :data:`CHILD_STANDARD`.
    standard : pandas.Series, default CHILD_STANDARD
        Standard population weights indexed by band label (e.g. :data:`ESP2013`).
    by : str or list of str, optional
    multiplier : float, default 100_000
    conf : float or tuple of float, default (0.95, 0.998)

    Returns
    -------
    pandas.DataFrame
        The `by` columns, `count` and `population` (totals over bands), then ``value``,
        ``lower_95``, ``upper_95``, ``lower_99_8``, ``upper_99_8`` and ``method`` (``"dobson"``, or
        why not computed: fewer than 10 events, a band with no row, or a missing value).

    Notes
    -----
    R: ``df |> group_by(area) |> phe_dsr(x, n, stdpop = ...)`` in PHEindicatormethods.

    Examples
    --------
    >>> df = pd.DataFrame({"age_band": ["0", "1-4", "5-9", "10-14", "15-17"], "deaths": [30, 12, 9, 11, 25],
    ...                    "population": [60_000, 240_000, 310_000, 300_000, 180_000]})
    >>> dsr_table(df)[["deaths", "population", "value", "method"]].round(2)
       deaths  population  value  method
    0    87.0   1090000.0   7.87  dobson
    """
    caller = "dsr_table"
    by = as_by(by, caller)
    levels = as_levels(conf, caller)
    scale = as_positive(multiplier, "multiplier", caller)
    if not isinstance(standard, pd.Series):
        raise ArgumentError(f"{caller}: 'standard' must be a pandas Series indexed by age band (e.g. CHILD_STANDARD or ESP2013), "
                            f"so that rows can be matched to weights; got {type(standard).__name__}.")
    check_columns(frame, {"by": by, "age_band": age_band, "count": count, "population": population}, caller)
    w = _standard_array(standard, len(standard), caller)
    band = _band_positions(frame[age_band], standard, caller, age_band)
    if by:
        code, groups = _group_codes(frame, by)
    else:
        code = np.zeros(len(frame), dtype=np.int64)
        groups = pd.DataFrame(index=pd.RangeIndex(1))
    n_groups, n_bands = len(groups), len(w)
    cell = code * n_bands + band
    size = n_groups * n_bands
    shape = (n_groups, n_bands)
    present = (np.bincount(cell, minlength=size) > 0).reshape(shape)
    sums = []
    for column in (count, population):  # two columns: sum within group x band cells; NaN anywhere -> NaN
        v = as_array(frame[column], column, caller)
        sums.append(np.where(~present.ravel(), np.nan, _cell_sums(cell, v, size)).reshape(shape))
    o, n = sums
    stats, total, pop = _dsr_core(o, n, w, scale, levels)
    absent = ~present.all(axis=1)
    stats.loc[absent, "method"] = "not computed: no row for an age band of the standard"
    totals = pd.DataFrame({count: np.where(absent, np.nansum(o, axis=1), total), population: np.where(absent, np.nan, pop)})
    out = pd.concat([groups.reset_index(drop=True), totals, stats], axis=1)
    out.attrs = {k: v for k, v in frame.attrs.items() if k == "synthetic"}
    return out
