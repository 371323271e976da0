"""One call for the trend tables and figures of a level (what ``cdr trends`` and reports run)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field


from cdr._base import Summary
from cdr.errors import ArgumentError
from cdr.trends._glm import compare_to, fit_trend, population_break
from cdr.trends._joinpoint import joinpoint

__all__ = ["analyse", "TrendAnalysis", "LEVEL_KEYS"]

#: Key column of each level of the roll-up (:func:`cdr.aggregate.aggregate`).
LEVEL_KEYS = {"la": "la_code", "footprint": "footprint_id", "region": "region_code", "nation": "nation_code"}
_MAX_LINES = 10  # figures with more groups than this are unreadable; their tables are still written


@dataclass(repr=False)
class TrendAnalysis:
    """Trend, comparison and joinpoint results of one level, ready to write.

    Attributes
    ----------
    tables : dict of str to pandas.DataFrame
        ``apc``, ``fitted`` and, where they apply, ``covariates``, ``compare_slopes``,
        ``compare_ratios``, ``joinpoint_segments``, ``joinpoint_aapc``, ``joinpoint_selection``,
        ``joinpoint_tests``, ``joinpoint_families`` (glm) and ``joinpoint_covariates`` (glm with the
        2021 break).
    trend, comparison, joinpoints
        The :class:`~cdr.trends.TrendResult`, :class:`~cdr.trends.CompareResult` (None at nation
        level) and :class:`~cdr.trends.JoinpointResult` (None unless asked for).
    settings : dict
        Every argument used.
    figures : dict of str to matplotlib.figure.Figure
        Filled by :meth:`plot` (``apc``, ``trend``, ``compare``, ``joinpoints``); empty until then.

    Examples
    --------
    >>> from cdr.synthetic import generate_records
    >>> recs = generate_records(years=[2019, 2020, 2021], seed=0)
    >>> res = analyse(recs, level="region", family="poisson")
    >>> sorted(res.tables)
    ['apc', 'compare_ratios', 'compare_slopes', 'fitted']
    >>> len(res.comparison.slopes), res.joinpoints is None   # 9 regions against England
    (9, True)
    """

    tables: dict
    trend: object
    comparison: object
    joinpoints: object
    settings: dict
    figures: dict = field(default_factory=dict)

    def summary(self) -> Summary:
        lines = [f"Level: {self.settings['level']}; tables: {', '.join(self.tables)}"]
        return Summary("Trends in child death rates", lines=lines, tables={"Annual percent change": self.tables["apc"]})

    def __repr__(self) -> str:
        return str(self.summary())

    def plot(self) -> dict:
        """Build the figures: ``{name: matplotlib.figure.Figure}`` (kept in ``.figures``)."""
        figs = {"apc": self.trend.plot_apc().figure}
        if len(self.tables["apc"]) <= _MAX_LINES:
            figs["trend"] = self.trend.plot().figure
        if self.comparison is not None and len(self.comparison.slopes) <= _MAX_LINES:
            figs["compare"] = self.comparison.plot().figure
        if self.joinpoints is not None and len(self.joinpoints.fits) <= _MAX_LINES:
            figs["joinpoints"] = self.joinpoints.plot().figure
        self.figures = figs
        return figs

    def to_dir(self, out) -> list:
        """Write every table as ``out/NAME.csv`` and every figure as ``out/NAME.png``; returns the paths."""
        import matplotlib.pyplot as plt

        os.makedirs(out, exist_ok=True)
        written = []
        for name, table in self.tables.items():
            path = os.path.join(out, f"{name}.csv")
            table.to_csv(path, index=False)
            written.append(path)
        for name, fig in (self.figures or self.plot()).items():
            path = os.path.join(out, f"{name}.png")
            fig.tight_layout()
            fig.savefig(path, dpi=150)
            plt.close(fig)
            written.append(path)
        return written


def _check_years_covered(records, years, year_type):
    """A clear error when the requested years hold no records (rather than a model failing on zeros)."""
    column = "reporting_year_start" if year_type == "reporting" else "year"
    if years is None or column not in records.columns:
        return
    present = sorted({int(y) for y in records[column].dropna().unique()})
    wanted = sorted({int(y) for y in years})
    missing = [y for y in wanted if y not in present]
    if missing:
        kind = "reporting years (April-March, by first year)" if year_type == "reporting" else "calendar years"
        span = f"{present[0]}-{present[-1]}" if present else "none"
        head = (f"no records in the requested {kind} {wanted[0]}-{wanted[-1]}" if len(missing) == len(wanted) else
                f"{len(missing)} of the requested {kind} {wanted[0]}-{wanted[-1]} have no records ({_years(missing)})")
        raise ArgumentError(f"trends: {head}; the records cover {span}. A year without records would be read as "
                            f"a year without deaths: choose years within {span}.")


def _years(values) -> str:
    return ", ".join(map(str, values[:6])) + (f" and {len(values) - 6} more" if len(values) > 6 else "")


def analyse(records, *, level="nation", design=None, years=None, year_type="reporting", vintage=2023,
            family="auto", population_break_2021=False, joinpoints=False, joinpoint_method="glm",
            selection="bic", max_joinpoints=3, seed=0) -> TrendAnalysis:
    """Aggregate records to a level, fit trends, compare each unit with England, optionally joinpoints.

    Parameters
    ----------
    records : pandas.DataFrame
        Validated records (:func:`cdr.read_records`).
    level : {"la", "footprint", "region", "nation"}, default "nation"
        Level of the roll-up: one trend per unit of this level (one series for ``"nation"``).
    design : FootprintDesign, pandas.Series or DataFrame, optional
        LA → footprint; needed for ``level="footprint"``.
    years : iterable of int, optional
        Reporting (or calendar) years to use, by first calendar year (e.g. ``2019`` for 2019-20);
        default all in the records.
    year_type : {"reporting", "calendar"}, default "reporting"
        Reporting years run 1 April - 31 March; calendar years 1 January - 31 December.
    vintage : {2023, 2021}, default 2023
        Geography vintage of ``la_code`` (and of the populations).
    family : {"auto", "poisson", "negbin"}, default "auto"
        Trend family (:func:`fit_trend`).
    population_break_2021 : bool, default False
        Add a level shift at 2021 for the break in the population series (:func:`population_break`),
        to the trend model and, with ``joinpoint_method="glm"``, to the joinpoint models.
    joinpoints : bool, default False
        Also fit joinpoint models (:func:`joinpoint`) with ``joinpoint_method``, ``selection``,
        ``max_joinpoints`` and ``seed``.
    joinpoint_method : {"glm", "nci"}, default "glm"
        Joinpoint model (see :func:`joinpoint`).
    selection : {"bic", "bic3", "wbic", "permutation"}, default "bic"
        How the number of joinpoints is chosen (``"wbic"`` with ``"nci"`` only).
    max_joinpoints : int, default 3
        Largest number of joinpoints tried (lowered automatically for short series).
    seed : int, default 0
        Random seed of the permutation tests.

    Returns
    -------
    TrendAnalysis
        ``.tables`` (``apc``, ``fitted`` and, below nation level, ``compare_slopes`` and
        ``compare_ratios``; joinpoint tables when asked for), ``.trend``, ``.comparison``,
        ``.joinpoints``, ``.settings``; ``.plot()`` and ``.to_dir(out)``.

    Examples
    --------
    >>> from cdr.synthetic import generate_records
    >>> recs = generate_records(years=[2019, 2020, 2021], seed=0)
    >>> res = analyse(recs, level="nation", family="poisson")
    >>> sorted(res.tables), res.comparison is None
    (['apc', 'fitted'], True)
    >>> res.tables["apc"][["n_years", "family"]].values.tolist()
    [[3, 'poisson']]
    """
    from cdr.aggregate import aggregate

    key = LEVEL_KEYS[level] if level in LEVEL_KEYS else None
    common = dict(years=years, year_type=year_type, vintage=vintage)
    _check_years_covered(records, years, year_type)
    data = aggregate(records, design=design, level=level, **common)
    by = None if level == "nation" else key
    covariates = None
    if population_break_2021:
        data = data.assign(break_2021=population_break(data["period_start"]))
        covariates = ["break_2021"]
    trend = fit_trend(data, time="period_start", by=by, family=family, covariates=covariates)
    tables = {"apc": trend.apc, "fitted": trend.fitted}
    if covariates:
        tables["covariates"] = trend.covariates
    comparison = None
    if by is not None:
        nation = aggregate(records, level="nation", **common)
        comparison = compare_to(trend, nation, time="period_start")
        tables["compare_slopes"] = comparison.slopes
        tables["compare_ratios"] = comparison.ratios
    jp = None
    if joinpoints:
        jp_cov = covariates if joinpoint_method == "glm" else None   # NCI's WLS model takes no covariates
        jp = joinpoint(data, time="period_start", method=joinpoint_method, by=by, max_joinpoints=max_joinpoints,
                       selection=selection, seed=seed, covariates=jp_cov)
        tables["joinpoint_segments"] = jp.segments
        tables["joinpoint_aapc"] = jp.aapc()
        tables["joinpoint_selection"] = jp.selection
        if len(jp.tests):
            tables["joinpoint_tests"] = jp.tests
        if joinpoint_method == "glm":
            tables["joinpoint_families"] = jp.families
            if jp_cov:
                tables["joinpoint_covariates"] = jp.covariates
    settings = {"level": level, "years": None if years is None else list(years), "year_type": year_type,
                "vintage": vintage, "family": family, "population_break_2021": population_break_2021,
                "joinpoints": joinpoints, "joinpoint_method": joinpoint_method, "selection": selection,
                "max_joinpoints": max_joinpoints, "seed": seed}
    return TrendAnalysis(tables=tables, trend=trend, comparison=comparison, joinpoints=jp, settings=settings)
