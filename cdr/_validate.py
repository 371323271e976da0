"""Argument checks shared by the whole package (private; layer 0).

The one place that validates arguments, so that every public function says the same thing the same way:

- scalars: :func:`one_of` (a choice from a fixed set), :func:`integer`, :func:`number`,
  :func:`probability`, :func:`as_positive`, :func:`flag`, :func:`timestamp`,
  :func:`seed`;
- text and collections: :func:`text` (one string), :func:`year`, :func:`years` (calendar years),
  :func:`strings` (codes, names, column names), :func:`area_codes` (a frame with ``la_code`` or a
  list of codes), :func:`mapping`;
- tables and files: :func:`frame` (a DataFrame, optionally with columns), :func:`path`, :func:`paths`;
- machinery: :func:`executor` (a ``concurrent.futures`` executor), :func:`axes` (a matplotlib Axes);
- statistics: :func:`as_levels`/:func:`as_level` (confidence levels), :func:`as_array` (numeric
  arrays: a wrong type or shape, a negative count or an infinite value raises; a NaN is allowed and
  gives a NaN row out), :func:`same_shape`, :func:`check_columns`, :func:`as_by`.

Every check raises :class:`~cdr.errors.ArgumentError` (a ``ValueError``) or
:class:`~cdr.errors.ArgumentTypeError` (also a ``TypeError``) with one line that names the function,
the argument, the value given, what is allowed and how to fix it; every check returns the value in
the form the caller needs (an ``int``, a ``Path``, a ``list``), so a function validates and
normalises in one call at its top.
"""
from __future__ import annotations

import difflib
import numbers
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from cdr.errors import ArgumentError, ArgumentTypeError

#: Calendar years outside this range are refused by :func:`years` (a typo such as 20222 or -1).
YEAR_RANGE = (1900, 2100)


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
    """A finite number above 0 (a multiplier, a population): :func:`number` with ``above=0``."""
    return number(value, name, caller, above=0, example=100_000)


def check_columns(table, columns, caller: str) -> None:
    """The rates tables' check: `table` is a DataFrame with the named columns (see :func:`frame`)."""
    frame(table, "frame", caller, columns=columns, hint="Name the columns with the arguments shown.")


def as_by(by, caller: str, name: str = "by") -> list:
    """Column names: None (none), one name, or a list of names (each once), as a list."""
    if by is None:
        return []
    by = _items(by, name, caller, one=lambda v: isinstance(v, str),
                what="a column name or a list of column names, e.g. ['region_code', 'sex']")
    if len(set(by)) != len(by):
        raise ArgumentError(f"{caller}: '{name}' lists a column twice: {by}.")
    return by


# ----------------------------------------------------------------------------------- shared checks
def _items(value, name: str, caller: str, *, one, what: str) -> list:
    """``[value]`` when `value` is a single item (``one(value)``), else the items of an iterable as a
    list; a string that is not an item, bytes, a mapping or a non-iterable raise."""
    if one(value):
        return [value]
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise ArgumentTypeError(f"{caller}: '{name}' must be {what}; got {describe(value)}.")
    return list(value)


def describe(value) -> str:
    """The value as a message shows it: its repr, cut short, with the type where the repr hides it."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    if isinstance(value, (str, bytes, numbers.Number, type(None))):
        return text
    return f"{text} (a {type(value).__name__})"


def is_integral(value) -> bool:
    """True for a whole number: an int (not a bool) or an integral float such as ``3.0``."""
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, numbers.Real) and np.isfinite(value) and float(value).is_integer()


def one_of(value, allowed, name: str, caller: str, *, hint: str = ""):
    """`value` if it is one of `allowed` (compared with ``==``); otherwise the allowed values, and the
    closest one for a misspelt string."""
    allowed = tuple(allowed)
    try:
        ok = any(value is a or (type(value) is not bool and bool(value == a)) for a in allowed)
    except (TypeError, ValueError):  # arrays and objects whose == is not a truth value
        ok = False
    if ok:
        return value
    close = difflib.get_close_matches(value, [a for a in allowed if isinstance(a, str)], n=1) if isinstance(value, str) else []
    guess = f" Did you mean {close[0]!r}?" if close else ""
    listing = ", ".join(repr(a) for a in allowed[:12]) + (f", ... ({len(allowed)} in all)" if len(allowed) > 12 else "")
    raise ArgumentError(f"{caller}: '{name}' must be one of {listing}{hint}; got {describe(value)}.{guess}")


def integer(value, name: str, caller: str, *, minimum=None, maximum=None, example=None) -> int:
    """A whole number (``3`` or ``3.0``; not ``True``, not ``"3"``) within [`minimum`, `maximum`]."""
    eg = f", e.g. {example!r}" if example is not None else ""
    if not is_integral(value):
        error = ArgumentError if isinstance(value, numbers.Real) and not isinstance(value, bool) else ArgumentTypeError
        raise error(f"{caller}: '{name}' must be a whole number{eg}; got {describe(value)}.")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = (f"between {minimum} and {maximum}" if minimum is not None and maximum is not None
                  else f">= {minimum}" if minimum is not None else f"<= {maximum}")
        raise ArgumentError(f"{caller}: '{name}' must be a whole number {bounds}{eg}; got {value!r}.")
    return value


def number(value, name: str, caller: str, *, minimum=None, maximum=None, above=None, below=None,
           example=None, unit: str = "") -> float:
    """A finite real number (not a bool, not a string) with optional bounds: ``minimum``/``maximum``
    inclusive, ``above``/``below`` exclusive."""
    eg = f", e.g. {example!r}" if example is not None else ""
    what = f"a finite number{f' of {unit}' if unit else ''}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{caller}: '{name}' must be {what}{eg}; got {describe(value)}.")
    if not np.isfinite(value):
        raise ArgumentError(f"{caller}: '{name}' must be {what}{eg}; got {describe(value)}.")
    checks = [(minimum, ">=", lambda v, b: v >= b), (maximum, "<=", lambda v, b: v <= b),
              (above, ">", lambda v, b: v > b), (below, "<", lambda v, b: v < b)]
    for bound, sign, holds in checks:
        if bound is not None and not holds(value, bound):
            limits = " and ".join(f"{s} {b!r}" for b, s, _ in checks if b is not None)
            raise ArgumentError(f"{caller}: '{name}' must be {what} {limits}{eg}; got {value!r}.")
    return float(value)


def probability(value, name: str, caller: str, *, example=0.9) -> float:
    """A probability strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{caller}: '{name}' must be a probability in (0, 1), e.g. {example}; "
                                f"got {describe(value)}.")
    if not 0 < value < 1:
        hint = f" Did you mean {value / 100:g}?" if 1 < value < 100 else ""
        raise ArgumentError(f"{caller}: '{name}' must be a probability in (0, 1), e.g. {example}; "
                            f"got {describe(value)}.{hint}")
    return float(value)


def flag(value, name: str, caller: str) -> bool:
    """``True`` or ``False`` (numpy booleans too); anything else, e.g. the string ``"no"``, raises."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"{caller}: '{name}' must be True or False; got {describe(value)}.")
    return bool(value)


def years(value, name: str, caller: str, *, allow_empty: bool = False) -> list:
    """Calendar years as a sorted list of distinct ints, from one year or an iterable of years
    (``range(2019, 2024)``, a list, an array or Series). Strings are refused (``"2019"`` would be read
    digit by digit), and so are years outside :data:`YEAR_RANGE`."""
    eg = "e.g. range(2019, 2024) or [2022]"
    items = _items(value, name, caller, one=is_integral, what=f"a year or an iterable of years, {eg}")
    bad = [v for v in items if not is_integral(v) or not YEAR_RANGE[0] <= v <= YEAR_RANGE[1]]
    if bad:
        raise ArgumentError(f"{caller}: '{name}' must hold calendar years between {YEAR_RANGE[0]} and "
                            f"{YEAR_RANGE[1]}, {eg}; got {_show(bad)}.")
    if not items and not allow_empty:
        raise ArgumentError(f"{caller}: '{name}' is empty; give at least one year, {eg}.")
    return sorted({int(v) for v in items})


def year(value, name: str, caller: str) -> int:
    """One calendar year (an int within :data:`YEAR_RANGE`), e.g. 2022."""
    return integer(value, name, caller, minimum=YEAR_RANGE[0], maximum=YEAR_RANGE[1], example=2022)


def area_codes(value, name: str, caller: str, *, optional: bool = True):
    """`value` if it names areas: a DataFrame with an ``la_code`` column, or one code or an iterable
    of codes (``None`` too when `optional`). Whether the codes exist is the caller's check."""
    if value is None and optional:
        return None
    if isinstance(value, pd.DataFrame):
        return frame(value, name, caller, columns=["la_code"])
    if isinstance(value, str):
        raise ArgumentError(f"{caller}: '{name}' must be a list of LA codes or a DataFrame with 'la_code'; got the "
                            f"string {value!r}. Put one code in a list: [{value!r}].")
    strings(value.tolist() if isinstance(value, pd.Series) else value, name, caller,
            example="['E08000025', 'E08000029'] or a DataFrame with 'la_code'")
    return value


def seed(value, name: str, caller: str):
    """A random seed: ``None``, a whole number >= 0 or a :class:`numpy.random.Generator` (returned as given)."""
    if value is None or isinstance(value, np.random.Generator):
        return value
    if not is_integral(value) or value < 0:
        raise ArgumentError(f"{caller}: '{name}' must be a whole number >= 0, None or a numpy.random.Generator, "
                            f"e.g. seed=0; got {describe(value)}.")
    return int(value)


def text(value, name: str, caller: str, *, example: str = "'la_code'") -> str:
    """One non-empty string (a column name, a label)."""
    if not isinstance(value, str) or not value:
        error = ArgumentError if isinstance(value, str) else ArgumentTypeError
        raise error(f"{caller}: '{name}' must be a non-empty string, e.g. {example}; got {describe(value)}.")
    return value


def strings(value, name: str, caller: str, *, example: str = "'E06000001'", allow_empty: bool = False) -> list:
    """One string or an iterable of strings (codes, names, column names) as a list, order kept."""
    items = _items(value, name, caller, one=lambda v: isinstance(v, str),
                   what=f"a string or a list of strings, e.g. {example}")
    bad = [v for v in items if not isinstance(v, str)]
    if bad:
        raise ArgumentError(f"{caller}: '{name}' must hold strings, e.g. {example}; got {_show(bad)}.")
    if not items and not allow_empty:
        raise ArgumentError(f"{caller}: '{name}' is empty; give at least one, e.g. {example}.")
    return items


def mapping(value, name: str, caller: str, *, example: str = "{'key': 'value'}") -> Mapping:
    """A dict-like mapping (``dict``, :class:`collections.abc.Mapping`)."""
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(f"{caller}: '{name}' must be a mapping (a dict), e.g. {example}; got {describe(value)}.")
    return value


def timestamp(value, name: str, caller: str) -> pd.Timestamp:
    """A date as a :class:`pandas.Timestamp`, from a ``datetime.date``, a Timestamp or an ISO string."""
    try:
        ts = None if isinstance(value, (bool, numbers.Number)) else pd.Timestamp(value)
    except (TypeError, ValueError):
        ts = None
    if ts is None or pd.isna(ts):
        raise ArgumentError(f"{caller}: '{name}' must be a date, e.g. '2024-03-31' or datetime.date(2024, 3, 31); "
                            f"got {describe(value)}.")
    return ts


def executor(value, name: str, caller: str):
    """``None`` or a :class:`concurrent.futures.Executor`-like object (anything with a ``map`` method)."""
    if value is not None and not callable(getattr(value, "map", None)):
        raise ArgumentTypeError(f"{caller}: '{name}' must be None or a concurrent.futures Executor (e.g. "
                                f"ProcessPoolExecutor(), or a dask client's get_executor()); got {describe(value)}.")
    return value


def axes(value, name: str, caller: str):
    """``None`` or a matplotlib ``Axes`` to draw on."""
    if value is not None:
        from matplotlib.axes import Axes

        if not isinstance(value, Axes):
            raise ArgumentTypeError(f"{caller}: '{name}' must be None or a matplotlib Axes, e.g. "
                                    f"fig, ax = plt.subplots(); got {describe(value)}.")
    return value


def paths(value, name: str, caller: str) -> list:
    """One path or an iterable of paths (str or ``os.PathLike``) as a list of :class:`~pathlib.Path`."""
    items = _items(value, name, caller, one=lambda v: isinstance(v, (str, os.PathLike)),
                   what="a path or a list of paths, e.g. ['out/2023/']")
    return [path(v, name, caller) for v in items]


def frame(value, name: str, caller: str, *, columns=(), hint: str = "") -> pd.DataFrame:
    """`value` if it is a pandas DataFrame (a GeoDataFrame too) with every one of `columns`.

    `columns` lists column names, or maps the argument that named them to a name or a list of names
    (``{"count": "deaths", "by": ["region_code"]}``), so that a missing column is reported with the
    argument to change (``'deaths' (count=)``). ``None`` names are skipped.
    """
    if not isinstance(value, pd.DataFrame):
        fix = " Read a file with pandas.read_csv or cdr.schema.read_records first." if isinstance(value, (str, os.PathLike)) else ""
        raise ArgumentTypeError(f"{caller}: '{name}' must be a pandas DataFrame; got {describe(value)}.{fix}")
    named = columns.items() if isinstance(columns, Mapping) else [(None, c) for c in columns]
    missing = []
    for argument, given in named:
        for c in ([given] if isinstance(given, str) or not isinstance(given, Iterable) else list(given)):
            if c is not None and c not in value.columns:
                missing.append(f"{c!r}" + (f" ({argument}=)" if argument else ""))
    if missing:
        shown = list(value.columns)[:15]
        more = f" ... ({len(value.columns)} in all)" if len(value.columns) > 15 else ""
        raise ArgumentError(f"{caller}: '{name}' has no column(s) {', '.join(missing)}; it has {shown}{more}."
                            f"{hint and ' ' + hint}")
    return value


def path(value, name: str, caller: str, *, exists: str | None = None) -> Path:
    """A ``str`` or ``os.PathLike`` as a :class:`~pathlib.Path`; ``exists="file"`` or ``"dir"`` also
    requires a file or a folder to be there."""
    if not isinstance(value, (str, os.PathLike)) or (isinstance(value, str) and not value.strip()):
        raise ArgumentTypeError(f"{caller}: '{name}' must be a file path (a str or pathlib.Path); got {describe(value)}.")
    p = Path(value)
    if exists == "file" and not p.is_file():
        what = "is a folder, not a file" if p.is_dir() else "does not exist"
        raise ArgumentError(f"{caller}: '{name}' {str(p)!r} {what}; give the path of an existing file.")
    if exists == "dir" and not p.is_dir():
        what = "is a file, not a folder" if p.exists() else "does not exist"
        raise ArgumentError(f"{caller}: '{name}' {str(p)!r} {what}; give the path of an existing folder.")
    return p
