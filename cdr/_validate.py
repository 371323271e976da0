"""Argument checks shared by the whole package (private; layer 0).

The one place that validates confidence levels (:func:`as_levels`, :func:`as_level`), numeric arrays
(:func:`as_array`) and frame columns (:func:`check_columns`). Arrays in: a wrong type or shape, a negative count or an infinite value raises; a NaN is allowed and
gives a NaN row out. Every message names the function, the argument, the offending value and the fix.
"""
from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from cdr.errors import ArgumentError, ArgumentTypeError


def _show(values, limit=5) -> str:
    values = list(values)
    text = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values[:limit])
    return text + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def as_array(x, name: str, caller: str, *, allow_negative: bool = False) -> np.ndarray:
    """A float array from a scalar, list, ndarray or Series; NaN allowed, inf and negatives not."""
    if isinstance(x, pd.DataFrame):
        raise ArgumentError(f"{caller}: '{name}' must be a 1-D array, list or Series, not a DataFrame; "
                            f"pass one column, e.g. frame['{name}'], or use the *_table function for frames.")
    if isinstance(x, (str, bytes)):
        raise ArgumentError(f"{caller}: '{name}' must be numeric; got the string {x!r}.")
    if isinstance(x, pd.Series):
        x = x.to_numpy(dtype=float, na_value=np.nan) if _numeric_series(x) else x.to_numpy()
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged nested lists and the like
        raise ArgumentError(f"{caller}: '{name}' could not be read as an array ({exc}).") from None
    if arr.dtype.kind in "USO":
        try:
            arr = pd.to_numeric(pd.Series(arr.ravel()), errors="raise").to_numpy(dtype=float, na_value=np.nan).reshape(arr.shape)
        except (ValueError, TypeError):
            bad = [v for v in arr.ravel() if _not_a_number(v)]
            raise ArgumentError(f"{caller}: '{name}' must hold numbers; found non-numeric value(s) {_show(bad)}. "
                                f"Convert the column with pandas.to_numeric first.") from None
    if arr.dtype.kind == "b":
        raise ArgumentError(f"{caller}: '{name}' must hold numbers, not booleans.")
    if arr.dtype.kind not in "iuf":
        raise ArgumentError(f"{caller}: '{name}' must hold numbers; got dtype {arr.dtype}.")
    arr = arr.astype(float, copy=False)
    if np.isinf(arr).any():
        where = np.flatnonzero(np.isinf(arr.ravel()))
        raise ArgumentError(f"{caller}: '{name}' must be finite; infinite value(s) at position(s) {_show(where)}. "
                            f"Use NaN for a missing value.")
    if not allow_negative and (arr < 0).any():
        where = np.flatnonzero(arr.ravel() < 0)
        raise ArgumentError(f"{caller}: '{name}' must be >= 0; got {_show(arr.ravel()[where])} at position(s) "
                            f"{_show(where)}. Counts and populations cannot be negative; use NaN for a missing value.")
    return arr


def _not_a_number(v) -> bool:
    try:
        return bool(pd.isna(pd.to_numeric(v, errors="coerce")) and not pd.isna(v))
    except (TypeError, ValueError):
        return True


def _numeric_series(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def same_shape(caller: str, **arrays) -> tuple:
    """Broadcast scalars against arrays; arrays of different shapes raise."""
    shapes = {k: v.shape for k, v in arrays.items() if v.ndim > 0}
    if len(set(shapes.values())) > 1:
        listing = ", ".join(f"'{k}' {s}" for k, s in shapes.items())
        raise ArgumentError(f"{caller}: arguments must have the same shape (one value per area or group); got {listing}.")
    try:
        return tuple(np.broadcast_arrays(*arrays.values()))
    except ValueError as exc:  # pragma: no cover - shapes already checked
        raise ArgumentError(f"{caller}: {exc}") from None


def as_levels(conf, caller: str) -> tuple:
    """Confidence levels as a tuple of floats in (0, 1)."""
    try:
        levels = (conf,) if isinstance(conf, (numbers.Number, str)) else tuple(conf) if conf is not None else ()
    except TypeError:
        levels = (conf,)
    if not levels:
        raise ArgumentError(f"{caller}: 'conf' must be a level in (0, 1) or a tuple of levels, e.g. (0.95, 0.998); got {conf!r}.")
    out = []
    for level in levels:
        if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 1:
            hint = f" Did you mean {level / 100:g}?" if isinstance(level, numbers.Real) and 1 < level < 100 else ""
            raise ArgumentError(f"{caller}: 'conf' must be a level in (0, 1), e.g. 0.95 or (0.95, 0.998); got {level!r}.{hint}")
        out.append(float(level))
    if len(set(out)) != len(out):
        raise ArgumentError(f"{caller}: 'conf' lists a level twice: {conf!r}.")
    return tuple(out)


def as_level(conf, caller: str) -> float:
    """One confidence level in (0, 1), e.g. 0.95; a tuple of several levels raises."""
    levels = as_levels(conf, caller)
    if len(levels) != 1:
        raise ArgumentError(f"{caller}: 'conf' must be one level here, e.g. 0.95; got {conf!r}. "
                            f"Call once per level.")
    return levels[0]


def as_positive(value, name: str, caller: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
        raise ArgumentError(f"{caller}: '{name}' must be a positive number, e.g. 100_000; got {value!r}.")
    return float(value)


def check_columns(frame, columns, caller: str, what: str = "column") -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ArgumentTypeError(f"{caller}: 'frame' must be a pandas DataFrame; got {type(frame).__name__}.")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ArgumentError(f"{caller}: {what}(s) {missing} not in the frame; it has {list(frame.columns)}. "
                            f"Name the columns with the count=, population=/n= and by= arguments.")


def as_by(by, caller: str) -> list:
    if by is None:
        return []
    if isinstance(by, str):
        return [by]
    by = list(by)
    if len(set(by)) != len(by):
        raise ArgumentError(f"{caller}: 'by' lists a column twice: {by}.")
    return by
