"""Reporting periods: CDR years (1 April - 31 March, "2022-23") or calendar years."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cdr.errors import ArgumentError

__all__ = ["Period", "parse_period", "period_keys", "period_label"]

_REPORTING = re.compile(r"^\s*(\d{4})\s*[-/]\s*(\d{2}|\d{4})\s*$")
_CALENDAR = re.compile(r"^\s*(\d{4})\s*$")


@dataclass(frozen=True)
class Period:
    """One reporting period.

    ``key`` is the first calendar year (2022 for "2022-23" and for calendar 2022); ``start`` and
    ``end`` are inclusive dates; ``calendar`` says which convention is used.

    Attributes
    ----------
    key : int
        First calendar year of the period.
    calendar : bool
        True for a calendar year (1 January - 31 December), False for a CDR reporting year
        (1 April - 31 March).

    Examples
    --------
    >>> p = Period(2022, calendar=False)
    >>> p.label, str(p.start.date()), str(p.end.date())
    ('2022-23', '2022-04-01', '2023-03-31')
    >>> Period(2022, calendar=True).label
    '2022'
    """

    key: int
    calendar: bool

    @property
    def label(self) -> str:
        return period_label(self.key, calendar=self.calendar)

    @property
    def start(self) -> pd.Timestamp:
        return pd.Timestamp(self.key, 1, 1) if self.calendar else pd.Timestamp(self.key, 4, 1)

    @property
    def end(self) -> pd.Timestamp:
        return pd.Timestamp(self.key, 12, 31) if self.calendar else pd.Timestamp(self.key + 1, 3, 31)

    @property
    def convention(self) -> str:
        return "calendar year (1 January - 31 December)" if self.calendar else "CDR reporting year (1 April - 31 March)"


def period_label(key: int, *, calendar: bool) -> str:
    """``"2022-23"`` for the CDR year starting 1 April 2022, ``"2022"`` for a calendar year."""
    key = int(key)
    return str(key) if calendar else f"{key}-{(key + 1) % 100:02d}"


def parse_period(year, *, calendar: bool = False) -> Period:
    """Parse ``"2022-23"`` (CDR year 1 April 2022 - 31 March 2023) or ``"2022"``.

    With ``calendar=False`` (the CDR convention) ``"2022"`` and ``2022`` mean the year starting
    1 April 2022, i.e. ``"2022-23"``. With ``calendar=True`` only a single year is accepted.

    Parameters
    ----------
    year : str or int
        ``"2022-23"`` (also ``"2022/23"`` or ``"2022-2023"``), ``"2022"`` or ``2022``.
    calendar : bool, default False
        Read a single year as a calendar year rather than the CDR year starting 1 April.

    Returns
    -------
    Period

    Raises
    ------
    cdr.errors.ArgumentError
        An unreadable year, a second year that does not follow the first, or a CDR year with
        ``calendar=True``.

    Examples
    --------
    >>> parse_period("2022-23").label, parse_period(2022, calendar=True).label
    ('2022-23', '2022')
    >>> parse_period("2022") == parse_period("2022/23") == Period(2022, calendar=False)
    True
    """
    text = str(year)
    m = _REPORTING.match(text)
    if m:
        if calendar:
            raise ArgumentError(
                f"year {text!r} is a CDR reporting year (1 April - 31 March) but calendar years were "
                f"requested; give a single year such as '{m.group(1)}', or drop the calendar option."
            )
        start, end = int(m.group(1)), m.group(2)
        expected = (start + 1) % 100 if len(end) == 2 else start + 1
        if int(end) != expected:
            raise ArgumentError(
                f"year {text!r} is not a CDR reporting year: the second part must be the following year, "
                f"e.g. '{period_label(start, calendar=False)}'."
            )
        return Period(start, calendar=False)
    m = _CALENDAR.match(text)
    if m:
        return Period(int(m.group(1)), calendar=bool(calendar))
    raise ArgumentError(
        f"year must look like '2022-23' (CDR year 1 April - 31 March) or '2022' (with the calendar "
        f"option, a calendar year); got {text!r}."
    )


def period_keys(dates, *, calendar: bool) -> np.ndarray:
    """First calendar year of the period containing each date (vectorised)."""
    dates = pd.to_datetime(pd.Series(dates))
    years = dates.dt.year.to_numpy()
    if calendar:
        return years
    return np.where(dates.dt.month.to_numpy() >= 4, years, years - 1)
