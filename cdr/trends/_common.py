"""Shared helpers for cdr.trends (private): argument checks, CI column names, exact Poisson limits."""
from __future__ import annotations

import numpy as np
import pandas as pd

from cdr import rates
from cdr._validate import as_by, as_level, frame
from cdr.errors import ArgumentError, ArgumentTypeError

__all__ = ["ci_names", "check_conf", "check_frame", "group_keys", "exact_rate_ci"]


def ci_names(conf: float, estimate: str | None = None) -> tuple[str, str]:
    """Names of the lower/upper limit columns for a level (:func:`cdr.rates.ci_columns`).

    ``ci_names(0.95)`` is ``('lower_95', 'upper_95')`` (limits of the table's ``value``);
    ``ci_names(0.95, "apc")`` is ``('apc_lower_95', 'apc_upper_95')``.
    """
    lower, upper = rates.ci_columns(conf, estimate=estimate)
    return lower, upper


def check_conf(conf, caller: str) -> float:
    return as_level(conf, caller)


def _py(v):
    v = float(v)
    return int(v) if v.is_integer() else v


# --------------------------------------------------------------------------------------------
# public entry point
# --------------------------------------------------------------------------------------------
def _where(key):
    return "" if not key else " in group " + ", ".join(f"{k}={v!r}" for k, v in key.items())


def as_list(value, name: str, caller: str) -> list:
    """Column names (`by`, `covariates`) as a list: see :func:`cdr._validate.as_by`."""
    return as_by(value, caller, name)


def check_frame(data, columns, caller: str, name: str = "data") -> pd.DataFrame:
    """A copy of ``data`` as a DataFrame, with every named column present (`columns`: argument ->
    column(s), see :func:`cdr._validate.frame`)."""
    return frame(data, name, caller, columns=columns, hint="Name the right columns with the arguments shown.").copy()


#: Time columns a count table may carry, in the order they are looked for when ``time=None``:
#: ``period_start`` (what :func:`cdr.aggregate.aggregate` writes; the first year of the period) and
#: ``year`` (a calendar year, e.g. from a user's own table).
TIME_COLUMNS = ("period_start", "year")


def resolve_time(data, time, caller: str) -> str:
    """The time column of a count table: `time` if given, else the one of TIME_COLUMNS present.

    A frame with both ``period_start`` and ``year`` (that disagree) is ambiguous and raises; so does a
    frame of overlapping pooled periods (``period_end - period_start`` > 0 with windows a year apart),
    whose rows share deaths and cannot be modelled as independent counts.
    """
    if not isinstance(data, pd.DataFrame):
        raise ArgumentTypeError(f"{caller}: 'data' must be a pandas DataFrame; got {type(data).__name__}.")
    if time is None:
        present = [c for c in TIME_COLUMNS if c in data.columns]
        if not present:
            raise ArgumentError(f"{caller}: no time column: the data need 'period_start' (as written by "
                                f"cdr.aggregate.aggregate) or 'year', or name it with time=; columns are "
                                f"{list(data.columns)}.")
        if len(present) == 2 and not data["period_start"].equals(data["year"]):
            raise ArgumentError(f"{caller}: the data have both 'period_start' and 'year' and they differ, so the "
                                "time axis is ambiguous; name it with time='period_start' or time='year'.")
        time = present[0]
    if isinstance(time, str) and time in data.columns and {"period_start", "period_end"} <= set(data.columns) \
            and time in ("period_start", "period_end"):
        width = pd.to_numeric(data["period_end"], errors="coerce") - pd.to_numeric(data["period_start"], errors="coerce")
        starts = np.unique(pd.to_numeric(data[time], errors="coerce").dropna().to_numpy())
        if (width > 0).any() and len(starts) > 1 and np.min(np.diff(starts)) <= width.max():
            raise ArgumentError(f"{caller}: the periods overlap (each spans {int(width.max()) + 1} years but they "
                                f"start {_py(np.min(np.diff(starts)))} year(s) apart), so neighbouring rows share "
                                "deaths; a trend needs one row per year: aggregate with pool=1.")
    return time


_NOT_KEYS = ("value", "method", "period", "period_end", "carried_forward", "synthetic")


def check_unique(frame, by, time, caller: str, skip=()) -> None:
    """Refuse rows that share a group and time: summing them would be a guess (e.g. a population
    repeated on every category row), so the message names the columns that tell them apart."""
    keys = [*by, time]
    dup = frame.duplicated(keys, keep=False)
    if not dup.any():
        return
    rows = frame.loc[dup]
    skip = set(skip) | set(_NOT_KEYS)
    candidates = [c for c in frame.columns if c not in keys and c not in skip
                  and not pd.api.types.is_float_dtype(frame[c]) and not c.startswith(("lower_", "upper_"))]
    varying = [c for c in candidates if (rows.groupby(keys, dropna=False, observed=True)[c].nunique(dropna=False) > 1).any()]
    first = rows.iloc[0]
    where = ", ".join(f"{k}={_py(first[k]) if k == time else first[k]!r}" for k in keys)
    hint = (f"fit one trend per group with by={[*by, *varying[:2]]!r}" if varying
            else "sum the rows first (e.g. data.groupby([...]).sum())")
    raise ArgumentError(f"{caller}: {int(dup.sum())} rows share a {'/'.join(keys)} (first: {where}); one row per "
                        f"time{' and group' if by else ''} is needed. The rows differ in {varying or 'no key column'}: "
                        f"{hint}.")


def check_counts(frame, count, population, caller):
    y = pd.to_numeric(frame[count], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(y) | (y < 0))
    if len(bad):
        i = bad[0]
        raise ArgumentError(
            f"{caller}: {len(bad)} row(s) have a missing or negative '{count}'; first at row "
            f"{frame.index[i]!r} (value {frame[count].iloc[i]!r}). Counts must be >= 0."
        )
    if population is not None:
        pop = pd.to_numeric(frame[population], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(pop) | (pop <= 0))
        if len(bad):
            i = bad[0]
            raise ArgumentError(
                f"{caller}: {len(bad)} row(s) have a missing or non-positive '{population}'; first at "
                f"row {frame.index[i]!r} (value {frame[population].iloc[i]!r}). Populations must be > 0."
            )


def group_keys(frame: pd.DataFrame, by: list):
    """Iterate (key_dict, sub_frame) over groups in sorted key order (one item when ``by`` is empty)."""
    if not by:
        yield {}, frame
        return
    for key, sub in frame.groupby(by, sort=True, dropna=False, observed=True):
        key = key if isinstance(key, tuple) else (key,)
        yield dict(zip(by, key)), sub


def exact_rate_ci(count, population, conf, multiplier):
    """Exact (Garwood) Poisson limits for count/population x multiplier (:func:`cdr.rates.exact_poisson_ci`)."""
    lower, upper = rates.exact_poisson_ci(np.asarray(count, dtype=float), conf)
    population = np.asarray(population, dtype=float)
    return lower / population * multiplier, upper / population * multiplier


def apc(slope):
    """Annual percent change from a log-linear slope: 100 (e^b - 1)."""
    return 100.0 * np.expm1(slope)
