"""Shared helpers for cdr.trends (private): argument checks, CI column names, exact Poisson limits."""
from __future__ import annotations

import numpy as np
import pandas as pd

from cdr import rates
from cdr._validate import as_level
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


def as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def check_frame(data, columns, caller: str) -> pd.DataFrame:
    """A copy of ``data`` as a DataFrame, with every named column present."""
    if not isinstance(data, pd.DataFrame):
        raise ArgumentTypeError(f"{caller}: 'data' must be a pandas DataFrame; got {type(data).__name__}.")
    missing = [c for c in columns if c is not None and c not in data.columns]
    if missing:
        raise ArgumentError(
            f"{caller}: column(s) {missing} not in data; columns are {list(data.columns)}. "
            "Name the right columns with count=, population=, time= (and by=)."
        )
    return data.copy()


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
