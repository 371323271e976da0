"""Published national and regional child death figures (NCMD, ONS, OHID) as a tidy table.

A partnership holds only its own records, so the England and region comparators of its report
cannot be computed from them: they come from here. Every row was read in a cited source
(``cdr/_data/reference/published_figures.csv``, compiled from ``national_figures.md`` and
``national_figures_addendum.md`` beside it); each row carries its ``source``, ``source_url``
and ``source_year``. Nothing is estimated: where no figure is published there is no row, and
:func:`comparator` returns ``None``.

What exists (England, years ending 31 March): deaths notified aged 0-17 for 2019-20 to 2024-25
(``status="latest"`` is the latest revision; earlier reports are kept as ``"first release"`` or
``"other report"``); the child death rate per 100,000 aged 0-17 for 2021-22 to 2023-24; the
infant rate; reviews completed; the share of completed reviews with modifiable factors (2021-22,
2022-23, 2024-25); the sex, under-1 and neonatal shares (2019-20); rates by ethnic group and for
the most and least deprived neighbourhoods; OHID's 3-year pooled 1-17 rate.

What does not exist (so no comparator is ever shown for it): NCMD figures for named regions (the
YE March 2025 release gives only the range 21.9-39.1 per 100,000 across regions), national counts
for the 1-4, 5-9, 10-14 and 15-17 bands, the full distribution by category of death, and the
modifiable share by category.
"""
from __future__ import annotations

import functools
import re
from importlib import resources

import pandas as pd

from cdr import _validate as check
from cdr.errors import ArgumentError

__all__ = ["published_figures", "comparator", "ENGLAND", "MEASURES"]

ENGLAND = "E92000001"
#: Measures in the table, with their meaning.
MEASURES = {
    "deaths": "deaths notified to NCMD, children aged 0-17, by year of death",
    "rate_per_100000": "deaths per 100,000 children (aged 0-17 unless the breakdown says otherwise)",
    "infant_rate_per_1000": "infant deaths per 1,000 live births",
    "reviews_completed": "child death reviews completed by CDOPs in the year",
    "percent_modifiable": "percent of completed reviews with modifiable factors",
    "reviews_with_modifiable_factors": "completed reviews with modifiable factors",
    "percent_of_deaths": "percent of all child deaths in the year",
    "rate_per_100000_1_17": "deaths per 100,000 children aged 1-17 (OHID Fingertips, 3-year pooled)",
}
#: Breakdowns of the table (``"all"`` is the total).
BREAKDOWNS = ("all", "sex", "age_band", "ethnicity", "deprivation", "category")
_COLUMNS = ["geography_code", "geography_name", "period", "period_start", "convention", "measure", "breakdown",
            "level", "value", "unit", "status", "source", "source_url", "source_year", "note"]


@functools.lru_cache(maxsize=1)
def _table() -> pd.DataFrame:
    path = resources.files("cdr") / "_data" / "reference" / "published_figures.csv"
    with resources.as_file(path) as p:
        frame = pd.read_csv(p, dtype={"geography_code": str, "period": str, "level": str})
    return frame[_COLUMNS]


def published_figures(measure=None, *, period=None, geography=ENGLAND, breakdown=None,
                      latest_only: bool = True) -> pd.DataFrame:
    """Published figures as a tidy table, one row per figure with its source and year.

    Parameters
    ----------
    measure : str or list of str, optional
        Keys of :data:`MEASURES` (default: all).
    period : str or int, optional
        ``"2022-23"`` or its start year ``2022`` (years ending 31 March).
    geography : str, optional
        ONS code; default England (``"E92000001"``). ``None`` for every geography.
    breakdown : str, optional
        ``"all"``, ``"sex"``, ``"age_band"``, ``"ethnicity"``, ``"deprivation"`` or ``"category"``.
    latest_only : bool, default True
        Keep only the latest revision of each figure (``status="latest"``).

    Returns
    -------
    pandas.DataFrame
        Columns ``geography_code, geography_name, period, period_start, convention, measure,
        breakdown, level, value, unit, status, source, source_url, source_year, note``; empty
        where nothing is published.

    Raises
    ------
    cdr.errors.ArgumentError
        An unknown measure or breakdown, or an argument of the wrong type.

    Examples
    --------
    >>> t = published_figures("deaths", period="2022-23", breakdown="all")
    >>> int(t["value"].iloc[0]), int(t["source_year"].iloc[0])
    (3743, 2023)
    >>> len(published_figures("rate_per_100000", period="2019-20", breakdown="all"))
    0
    """
    caller = "published_figures"
    if measure is not None:
        wanted = [check.one_of(m, MEASURES, "measure", caller)
                  for m in check.strings(measure, "measure", caller, example="'deaths'")]
    if period is not None and not (isinstance(period, str) and re.fullmatch(r"\d{4}-\d{2}", period)
                                   or check.is_integral(period)):
        raise ArgumentError(f"{caller}: 'period' must be a year ending 31 March, '2022-23' (or a pooled period "
                            f"such as '2019-21'), or its start year 2022; got {check.describe(period)}.")
    if geography is not None and not re.fullmatch(r"[A-Z]\d{8}", check.text(geography, "geography", caller)):
        raise ArgumentError(f"{caller}: 'geography' must be an ONS code such as 'E92000001' (England) or "
                            f"'E12000007' (London), or None for all; got {geography!r}.")
    if breakdown is not None:
        check.one_of(breakdown, BREAKDOWNS, "breakdown", caller)
    check.flag(latest_only, "latest_only", caller)
    t = _table()
    if measure is not None:
        t = t[t["measure"].isin(wanted)]
    if period is not None:
        t = t[(t["period"] == str(period)) | (t["period_start"].astype(str) == str(period))]
    if geography is not None:
        t = t[t["geography_code"] == geography]
    if breakdown is not None:
        t = t[t["breakdown"] == breakdown]
    if latest_only:
        t = t[t["status"] == "latest"]
    return t.reset_index(drop=True)


def comparator(measure, period_start, *, geography=ENGLAND, breakdown="all", level="all"):
    """One published figure as a dict (value, unit, source, source_url, source_year, period, note), or None.

    Only years ending 31 March (``convention="reporting"``) are matched: a calendar-year or
    pooled figure is never used as the comparator of a CDR year.

    Parameters
    ----------
    measure : str
        A key of :data:`MEASURES`.
    period_start : int
        First year of the CDR year (``2022`` for 2022-23).
    geography, breakdown, level : str
        As in :func:`published_figures`; ``level`` is the breakdown's level (``"male"``).

    Returns
    -------
    dict or None
        ``None`` when no figure is published for that cell.

    Examples
    --------
    >>> comparator("deaths", 2022)["value"]
    3743.0
    >>> comparator("rate_per_100000", 2022, geography="E12000003") is None
    True
    """
    check.one_of(measure, MEASURES, "measure", "comparator")
    period_start = check.year(period_start, "period_start", "comparator")
    check.text(level, "level", "comparator", example="'all' or 'male'")
    t = published_figures(measure, geography=geography, breakdown=breakdown)
    t = t[(t["period_start"] == period_start) & (t["convention"] == "reporting") & (t["level"] == level)]
    if t.empty:
        return None
    row = t.iloc[0]
    return {"value": float(row["value"]), "unit": row["unit"], "source": row["source"],
            "source_url": row["source_url"], "source_year": int(row["source_year"]), "period": row["period"],
            "geography_code": row["geography_code"], "geography_name": row["geography_name"], "note": row["note"]}
