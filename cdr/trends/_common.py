"""Shared helpers for cdr.trends (private): argument checks, CI column names, exact Poisson limits."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["ci_names", "check_conf", "check_frame", "group_keys", "exact_rate_ci"]


def ci_names(conf: float) -> tuple[str, str]:
    """Names of the lower/upper limit columns for a level, e.g. 0.95 -> ('lower_95', 'upper_95')."""
    try:  # one helper writes the names (cdr.rates), once it exists
        from cdr.rates import ci_columns

        names = list(ci_columns(conf))
        return names[0], names[1]
    except Exception:  # pragma: no cover - cdr.rates not yet available in a development checkout
        tag = f"{100 * conf:.10g}".replace(".", "_")
        return f"lower_{tag}", f"upper_{tag}"


def check_conf(conf, caller: str) -> float:
    if not isinstance(conf, (int, float)) or isinstance(conf, bool) or not 0 < conf < 1:
        hint = f" Did you mean {conf / 100:g}?" if isinstance(conf, (int, float)) and 1 < conf < 100 else ""
        raise ValueError(f"{caller}: 'conf' must be a level in (0, 1), e.g. 0.95; got {conf!r}.{hint}")
    return float(conf)


def as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def check_frame(data, columns, caller: str) -> pd.DataFrame:
    """A copy of ``data`` as a DataFrame, with every named column present."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"{caller}: 'data' must be a pandas DataFrame; got {type(data).__name__}.")
    missing = [c for c in columns if c is not None and c not in data.columns]
    if missing:
        raise ValueError(
            f"{caller}: column(s) {missing} not in data; columns are {list(data.columns)}. "
            "Name the right columns with count=, population=, time= (and by=)."
        )
    return data.copy()


def check_counts(frame, count, population, caller):
    y = pd.to_numeric(frame[count], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(y) | (y < 0))
    if len(bad):
        i = bad[0]
        raise ValueError(
            f"{caller}: {len(bad)} row(s) have a missing or negative '{count}'; first at row "
            f"{frame.index[i]!r} (value {frame[count].iloc[i]!r}). Counts must be >= 0."
        )
    if population is not None:
        pop = pd.to_numeric(frame[population], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(pop) | (pop <= 0))
        if len(bad):
            i = bad[0]
            raise ValueError(
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
    """Exact (Garwood) Poisson limits for count/population x multiplier."""
    count = np.asarray(count, dtype=float)
    population = np.asarray(population, dtype=float)
    a = 1 - conf
    lower = np.where(count > 0, stats.chi2.ppf(a / 2, 2 * count) / 2, 0.0)
    upper = stats.chi2.ppf(1 - a / 2, 2 * count + 2) / 2
    return lower / population * multiplier, upper / population * multiplier


def apc(slope):
    """Annual percent change from a log-linear slope: 100 (e^b - 1)."""
    return 100.0 * np.expm1(slope)
