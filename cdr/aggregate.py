"""The LA -> footprint -> region -> nation roll-up of child death records into counts and rates.

:func:`aggregate` counts deaths per unit (upper-tier LA, footprint, region or England), group and
period; joins the child population at risk; zero-fills every unit, group and period that had no
deaths; pools years into rolling windows; and computes crude or age-standardised rates with the
methods of :mod:`cdr.rates`. Counts are additive: for every grouping and period, the LA counts
sum to the footprint, region and national counts. :func:`deprivation_gradient` gives rates by
deprivation quintile with the slope index of inequality.

Records whose ``la_code`` has no population (or no footprint in the design) are never dropped
silently: by default they raise; with ``unmatched="exclude"`` they come back in
``result.attrs["exclusions"]``, with a warning.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cdr._base import Summary, version_stamp
from cdr import _validate as check
from cdr._validate import as_by
from cdr.errors import AggregateError, CdrWarning
from cdr.rates import CHILD_STANDARD, RECORD_TO_CHILD_BAND, ci_columns, crude_rate, dsr_table, sii
from cdr.schema import CATEGORIES

#: Record columns that are the time axis; aggregate's output carries time as period_start/period_end.
_TIME_COLUMNS = ("year", "reporting_year", "reporting_year_start", "period_start", "period_end", "date_of_death")

__all__ = ["aggregate", "deprivation_gradient", "DeprivationResult", "LEVELS", "KEYS", "NATION_CODE", "AGE_BANDS"]

LEVELS = ("la", "footprint", "region", "nation")
#: Key column of each level.
KEYS = {"la": "la_code", "footprint": "footprint_id", "region": "region_code", "nation": "nation_code"}
#: ONS code for England.
NATION_CODE = "E92000001"
#: Record age bands (``cdr.schema``), youngest first.
AGE_BANDS = ("neonatal", "postneonatal", "1-4", "5-9", "10-14", "15-17")
_SEXES = ("female", "male")
_POP_BAND = "_pband"  # internal: the child standard band of a record or population row




# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------
def _age_band_from_days(days: pd.Series) -> pd.Series:
    d = pd.to_numeric(days, errors="coerce").to_numpy(dtype=float)
    years = np.floor(d / 365.25)
    idx = np.select([d < 28, d < 365, years < 5, years < 10, years < 15, years < 18], range(6), default=-1)
    idx = np.where(np.isnan(d), -1, idx)
    return pd.Series(np.asarray(AGE_BANDS + (None,), dtype=object)[idx], index=days.index)


def _period_year(records: pd.DataFrame, year_type: str) -> pd.Series:
    if year_type == "reporting":
        if "reporting_year_start" in records:
            return pd.to_numeric(records["reporting_year_start"], errors="coerce")
        if "date_of_death" in records:
            d = pd.to_datetime(records["date_of_death"], errors="coerce")
            return (d.dt.year - (d.dt.month < 4)).astype("Float64")
    else:
        if "year" in records:
            return pd.to_numeric(records["year"], errors="coerce")
        if "date_of_death" in records:
            return pd.to_datetime(records["date_of_death"], errors="coerce").dt.year.astype("Float64")
    need = "reporting_year_start" if year_type == "reporting" else "year"
    raise AggregateError(f"aggregate: records need '{need}' or 'date_of_death' to place deaths in {year_type} years; "
                         f"they have {list(records.columns)}. Read them with cdr.read_records, which derives both.")


def _prepare_records(records, by, year_type):
    if not isinstance(records, pd.DataFrame):
        raise AggregateError(f"aggregate: 'records' must be a pandas DataFrame of child death records; got {type(records).__name__}.")
    if "la_code" not in records:
        raise AggregateError(f"aggregate: records need an 'la_code' column (UTLA of residence); they have {list(records.columns)}.")
    out = pd.DataFrame({"la_code": records["la_code"].astype(object).to_numpy()}, index=pd.RangeIndex(len(records)))
    year = _period_year(records, year_type)
    out["_year"] = year.to_numpy(dtype=float, na_value=np.nan)
    for col in by:
        if col in records:
            values = records[col]
            if col == "age_band" and values.isna().any() and "age_days" in records:
                values = values.fillna(_age_band_from_days(records["age_days"]))
            out[col] = values.to_numpy() if not isinstance(values.dtype, pd.CategoricalDtype) else values.array
        elif col == "age_band" and "age_days" in records:
            out[col] = _age_band_from_days(records["age_days"]).to_numpy()
        elif col == "imd_quintile" and "imd_decile" in records:
            dec = pd.to_numeric(records["imd_decile"], errors="coerce")
            out[col] = ((dec + 1) // 2).astype("Int64").to_numpy()
        else:
            raise AggregateError(f"aggregate: by={by} names {col!r}, which the records do not have "
                                 f"(columns: {list(records.columns)}).")
    return out


def _levels(col, values: pd.Series, records_col=None):
    if isinstance(values.dtype, pd.CategoricalDtype):
        return list(values.cat.categories)
    seen = [v for v in pd.unique(values.dropna())]
    if col == "age_band":
        return list(AGE_BANDS) + sorted(set(map(str, seen)) - set(AGE_BANDS))
    if col == "sex":
        return list(_SEXES) + sorted(set(map(str, seen)) - set(_SEXES))
    if col == "category":
        known = list(CATEGORIES)  # cdr.schema (layer 1): the canonical list, in NCMD order
        return known + sorted(set(map(str, seen)) - set(known))
    if col in ("imd_quintile", "imd_decile"):
        top = 5 if col == "imd_quintile" else 10
        return list(range(1, top + 1)) + sorted({int(v) for v in seen} - set(range(1, top + 1)))
    try:
        return sorted(seen)
    except TypeError:
        return sorted(seen, key=str)


def _prepare_population(population, years, need_sex, need_band, vintage, extra_cols):
    if population is None:
        from cdr.data import population_for_years

        by = tuple(c for c, need in (("sex", need_sex), ("age", need_band)) if need)
        pop = population_for_years(years, vintage=vintage, by=by)
        if extra_cols:
            raise AggregateError(f"aggregate: rates by {extra_cols} need a population with those column(s); the embedded "
                                 f"populations are by LA, year, sex and age only. Pass population= with columns la_code, year, "
                                 f"{', '.join(extra_cols)}, population (or use deprivation_gradient(source='la')).")
    else:
        if not isinstance(population, pd.DataFrame):
            raise AggregateError(f"aggregate: 'population' must be a DataFrame (la_code, year, population, ...); got {type(population).__name__}.")
        pop = population
        need = ["la_code", "year", "population", *extra_cols]
        if need_sex:
            need.append("sex")
        missing = [c for c in need if c not in pop]
        if need_band and "age" not in pop and "age_band" not in pop:
            missing.append("age or age_band")
        if missing:
            raise AggregateError(f"aggregate: the population table lacks {missing} (it has {list(pop.columns)}); these are "
                                 f"needed for the requested breakdown.")
        pop_values = pd.to_numeric(pop["population"], errors="coerce")
        if (pop_values < 0).any():
            raise AggregateError("aggregate: the population table has negative populations; fix or drop those rows.")
    keep = ["la_code", "year"] + (["sex"] if need_sex else []) + list(extra_cols)
    out = pop[keep].copy()
    out["la_code"] = out["la_code"].astype(object)
    out["year"] = pd.to_numeric(out["year"]).astype(int)
    out["population"] = pd.to_numeric(pop["population"], errors="coerce").astype(float)
    out["carried_forward"] = pop["carried_forward"].astype(bool) if "carried_forward" in pop else False
    if need_band:
        if "age" in pop:
            age = pd.to_numeric(pop["age"], errors="coerce").to_numpy()
            band = np.select([age < 1, age < 5, age < 10, age < 15, age < 18], list(CHILD_STANDARD.index), default="")
        else:
            band = pop["age_band"].astype(str).map(RECORD_TO_CHILD_BAND).fillna("").to_numpy()
        out[_POP_BAND] = band
        out = out[out[_POP_BAND] != ""]
        keep = keep + [_POP_BAND]
    grouped = out.groupby(keep, sort=False, dropna=False)
    return grouped.agg(population=("population", "sum"), carried_forward=("carried_forward", "any")).reset_index()


def _design_map(design, level, vintage):
    if level == "la":
        return None
    if level == "nation":
        return None
    if level == "region":
        from cdr.data import lookup

        lk = lookup(vintage)
        return pd.Series(lk["region_code"].to_numpy(), index=lk["la_code"].to_numpy(), name="region_code")
    if design is None:
        raise AggregateError("aggregate: level='footprint' needs design= (a FootprintDesign, or a Series/DataFrame mapping "
                             "la_code to footprint_id).")
    labels = getattr(design, "labels", design)
    if isinstance(labels, pd.DataFrame):
        if not {"la_code", "footprint_id"} <= set(labels.columns):
            raise AggregateError(f"aggregate: a design DataFrame needs columns 'la_code' and 'footprint_id'; it has {list(labels.columns)}.")
        labels = pd.Series(labels["footprint_id"].to_numpy(), index=labels["la_code"].to_numpy())
    if not isinstance(labels, pd.Series):
        raise AggregateError(f"aggregate: 'design' must be a FootprintDesign, Series or DataFrame; got {type(design).__name__}.")
    if labels.index.has_duplicates:
        dup = labels.index[labels.index.duplicated()].unique().tolist()
        raise AggregateError(f"aggregate: the design assigns LA(s) {dup[:5]} more than once; each la_code needs one footprint_id.")
    return pd.Series(labels.to_numpy(), index=labels.index.astype(object), name="footprint_id")


def _period_label(start, end, year_type):
    start, end = np.asarray(start, dtype=int), np.asarray(end, dtype=int)
    if year_type == "reporting":
        lab = lambda y: pd.Series(y).astype(str) + "-" + pd.Series((y + 1) % 100).astype(str).str.zfill(2)  # noqa: E731
        first, last = lab(start), lab(end)
    else:
        first, last = pd.Series(start).astype(str), pd.Series(end).astype(str)
    return np.where(start == end, first, first + (" to " if year_type == "reporting" else "-") + last)


# --------------------------------------------------------------------------------------------
# aggregate
# --------------------------------------------------------------------------------------------
def aggregate(records, population=None, design=None, level="la", by=(), years=None, year_type="reporting", pool=1, *,
              standardise=False, multiplier=100_000, conf=(0.95, 0.998), vintage=2023, unmatched="raise") -> pd.DataFrame:
    """Deaths, population and rates per unit, group and period: the LA -> footprint -> region -> nation roll-up.

    Parameters
    ----------
    records : pandas.DataFrame
        One row per child death (``cdr.schema``): ``la_code`` and ``date_of_death`` (or
        ``reporting_year_start`` / ``year``), plus the `by` columns (``age_band`` is derived from
        ``age_days`` and ``imd_quintile`` from ``imd_decile`` when absent). ``synthetic`` is carried.
    population : pandas.DataFrame, optional
        Child population: ``la_code``, ``year`` (mid-year), ``population`` (persons), and ``sex`` /
        ``age`` (0-17) or ``age_band`` when the breakdown needs them; an optional
        ``carried_forward`` flag is passed through. Default :func:`cdr.data.population_for_years`
        (years without an estimate use the nearest one, flagged and warned about).
    design : FootprintDesign, pandas.Series or pandas.DataFrame, optional
        For ``level="footprint"``: la_code -> footprint_id (anything with a ``.labels`` Series works).
    level : {"la", "footprint", "region", "nation"}, default "la"
    by : sequence of str, default ()
        Group columns of the records, e.g. ``["sex"]``, ``["age_band"]``, ``["category"]``. Sex
        and age band also split the population; other columns (e.g. category) are rates per all
        children of the unit.
    years : iterable of int, optional
        Annual years to use (first calendar year of a reporting year); default every year from the
        earliest to the latest death. Deaths outside them are left out (counted in
        ``attrs["n_outside_years"]``).
    year_type : {"reporting", "calendar"}, default "reporting"
        CDR reporting years (1 April - 31 March, population of the mid-year inside it) or calendar years.
    pool : int, default 1
        Years per rolling window (e.g. 3 for the Fingertips 3-year child mortality rates); the
        denominator is the sum of the annual populations (person-years).
    standardise : bool, default False
        Directly age-standardise to :data:`cdr.rates.CHILD_STANDARD` (Dobson limits) instead of crude rates.
    multiplier : float, default 100_000
        Rates per this many children per year.
    conf : float or tuple of float, default (0.95, 0.998)
    vintage : {2023, 2021}, default 2023
        Geography of ``la_code`` (for the default population and the region lookup).
    unmatched : {"raise", "exclude"}, default "raise"
        What to do with records whose ``la_code`` has no population (or no footprint), or no date:
        raise, or leave them out and report them in ``attrs["exclusions"]`` with a warning.

    Returns
    -------
    pandas.DataFrame
        One row per unit x group x period, zero-filled: the key column (``la_code``,
        ``footprint_id``, ``region_code`` or ``nation_code``), the `by` columns, ``period`` (e.g.
        ``"2019-20 to 2021-22"``), ``deaths``, ``population`` (person-years), ``value`` (per
        `multiplier` per year; a DSR when `standardise`), ``lower_95``, ``upper_95``,
        ``lower_99_8``, ``upper_99_8``, ``method``, ``period_start``, ``period_end`` and
        ``carried_forward`` (any population year carried forward). ``attrs``: ``synthetic``,
        ``exclusions`` (a list of records with ``la_code``, ``n_records``, ``reason``; ``pandas.DataFrame(attrs['exclusions'])`` tabulates it), ``n_outside_years`` and ``spec``.

    Notes
    -----
    The Fingertips child mortality indicators pool three years and divide by the sum of the
    annual mid-year populations; crude rates use exact limits below 10 deaths and Byar's above.
    R equivalent: ``dplyr::count`` + ``tidyr::complete`` + ``PHEindicatormethods::phe_rate``.

    Examples
    --------
    >>> records = pd.DataFrame({"la_code": ["E06000001", "E06000001", "E06000002"],
    ...                         "reporting_year_start": [2019, 2020, 2020]})
    >>> pop = pd.DataFrame({"la_code": ["E06000001", "E06000002"] * 2, "year": [2019, 2019, 2020, 2020],
    ...                     "population": [20_000, 30_000, 20_000, 30_000]})
    >>> aggregate(records, pop, pool=2)[["la_code", "period", "deaths", "population", "value"]]
         la_code              period  deaths  population  value
    0  E06000001  2019-20 to 2020-21       2     40000.0    5.0
    1  E06000002  2019-20 to 2020-21       1     60000.0    1.666667
    """
    caller = "aggregate"
    check.one_of(level, LEVELS, "level", caller)
    check.one_of(year_type, ("reporting", "calendar"), "year_type", caller)
    check.one_of(unmatched, ("raise", "exclude"), "unmatched", caller)
    pool = check.integer(pool, "pool", caller, minimum=1, example=3)
    if years is not None:
        years = check.years(years, "years", caller)
    by = as_by(by, caller)
    reserved = {"la_code", "footprint_id", "region_code", "nation_code", "period", "deaths", "population", _POP_BAND}
    timey = [c for c in by if c in _TIME_COLUMNS]
    if timey:
        raise AggregateError(f"{caller}: by={timey} would cross each period with itself (a meaningless year-by-period "
                             f"table): time is already the output's period, in 'period_start'/'period_end'. Drop "
                             f"{timey[0]!r} from by and use pool=1 (one row per year; year_type='calendar' for calendar years).")
    if set(by) & reserved or len(set(by)) != len(by):
        raise AggregateError(f"{caller}: 'by' must list distinct record columns other than {sorted(reserved - {_POP_BAND})}; got {by}.")
    if standardise and "age_band" in by:
        raise AggregateError(f"{caller}: standardise=True removes the age structure, so 'age_band' cannot also be in by; "
                             f"use by=['age_band'] without standardise for age-specific rates.")

    rec = _prepare_records(records, by + (["age_band"] if standardise else []), year_type)
    synthetic = bool(records["synthetic"].fillna(False).astype(bool).any()) if "synthetic" in records else False
    need_band = standardise or "age_band" in by
    if need_band:
        rec[_POP_BAND] = rec["age_band"].astype(object).map(RECORD_TO_CHILD_BAND)
    if standardise:
        rec = rec.drop(columns="age_band")

    # --- years -------------------------------------------------------------------------------
    problems = []
    no_date = rec["_year"].isna()
    if no_date.any():
        problems.append(pd.DataFrame({"la_code": rec.loc[no_date, "la_code"], "reason": "no date of death or year"}))
    if years is None:
        if (~no_date).sum() == 0:
            raise AggregateError(f"{caller}: no record has a usable date, so years cannot be inferred; pass years=.")
        years = range(int(rec.loc[~no_date, "_year"].min()), int(rec.loc[~no_date, "_year"].max()) + 1)
    years = sorted({int(y) for y in years})
    if len(years) < pool:
        raise AggregateError(f"{caller}: pool={pool} needs at least {pool} years; got years={years}.")
    outside = ~no_date & ~rec["_year"].isin(years)
    n_outside = int(outside.sum())
    rec = rec[~no_date & ~outside]
    rec = rec.assign(_year=rec["_year"].astype(int))

    # --- population --------------------------------------------------------------------------
    need_sex = "sex" in by
    extra = [c for c in by if c not in ("sex", "age_band") and population is not None and c in population]
    dep_cols = [c for c in by if c in ("imd_quintile", "imd_decile")]
    missing_dep = [c for c in dep_cols if population is None or c not in population]
    if missing_dep:
        raise AggregateError(f"{caller}: rates by {missing_dep} need population by {missing_dep} (the embedded populations "
                             f"are by LA, year, sex and age). Pass population= with column(s) {missing_dep}, or use "
                             f"cdr.aggregate.deprivation_gradient(records, source='la') for LA-level deprivation quintiles.")
    pop = _prepare_population(population, years, need_sex, need_band, vintage, extra)
    pop = pop[pop["year"].isin(years)]

    # --- units and unmatched records ---------------------------------------------------------
    mapping = _design_map(design, level, vintage)
    universe = pd.Index(sorted(pop["la_code"].unique()), dtype=object)
    if mapping is not None:
        not_mapped = universe.difference(mapping.index)
        if level == "region" and len(not_mapped):
            raise AggregateError(f"{caller}: population LA code(s) {list(not_mapped[:5])} are not upper-tier LAs of the {vintage} "
                                 f"vintage, so they have no region; pass vintage= or translate them with cdr.data.translate_codes.")
        universe = universe.intersection(mapping.index)
    bad_la = ~rec["la_code"].isin(universe)
    if bad_la.any():
        in_pop = rec.loc[bad_la, "la_code"].isin(pop["la_code"])
        reason = np.where(in_pop, "la_code not in the footprint design", "la_code has no population")
        problems.append(pd.DataFrame({"la_code": rec.loc[bad_la, "la_code"].to_numpy(), "reason": reason}))
    rec = rec[~bad_la]
    exclusions = (pd.concat(problems, ignore_index=True).groupby(["la_code", "reason"], dropna=False).size()
                  .rename("n_records").reset_index()[["la_code", "n_records", "reason"]]
                  if problems else pd.DataFrame({"la_code": pd.Series(dtype=object), "n_records": pd.Series(dtype=int),
                                                  "reason": pd.Series(dtype=object)}))
    if len(exclusions):
        listing = "\n".join(f"  la_code={r.la_code!r}: {r.n_records} record(s), {r.reason}" for r in exclusions.head(10).itertuples())
        more = f"\n  ... {len(exclusions) - 10} more" if len(exclusions) > 10 else ""
        msg = (f"{int(exclusions['n_records'].sum())} of {len(records)} records cannot be placed:\n{listing}{more}\n")
        if unmatched == "raise":
            raise AggregateError(f"{caller}: {msg}Translate old codes with cdr.data.translate_codes, add the missing LAs to the "
                                 f"population/design, or pass unmatched='exclude' to leave them out (they are then listed "
                                 f"in result.attrs['exclusions']).")
        warnings.warn(f"{caller}: {msg}They are left out; see result.attrs['exclusions'].", CdrWarning, stacklevel=2)

    # --- zero-filled LA x group x year grid ---------------------------------------------------
    group_cols = by + ([_POP_BAND] if standardise else [])
    level_lists = [list(universe)]
    for col in group_cols:
        if col == _POP_BAND:
            level_lists.append(list(CHILD_STANDARD.index))
        else:
            level_lists.append(_levels(col, rec[col] if len(rec) else pd.Series(dtype=object)))
    level_lists.append(years)
    grid = pd.MultiIndex.from_product(level_lists, names=["la_code", *group_cols, "_year"])
    if len(rec):
        counts = rec.groupby(["la_code", *group_cols, "_year"], dropna=False, observed=True).size()
        outside_levels = counts.index.difference(grid)
        if len(outside_levels):  # a missing group value (e.g. age_band NaN) has no cell
            raise AggregateError(f"{caller}: {int(counts.loc[outside_levels].sum())} record(s) have a missing or unexpected value "
                                 f"in {group_cols}, e.g. {list(outside_levels[:3])}; fill or recode them before aggregating.")
        counts = counts.reindex(grid, fill_value=0)
    else:
        counts = pd.Series(0, index=grid)
    cells = counts.rename("deaths").reset_index()

    # --- denominators --------------------------------------------------------------------------
    pop_keys = ["la_code", "year"] + (["sex"] if need_sex else []) + extra + ([_POP_BAND] if need_band else [])
    pop = pop.rename(columns={"year": "_year"})
    join = ["la_code", "_year"] + [k for k in pop_keys[2:]]
    if "age_band" in by:
        cells[_POP_BAND] = cells["age_band"].astype(object).map(RECORD_TO_CHILD_BAND)
    cells = cells.merge(pop[[*join, "population", "carried_forward"]], on=join, how="left", validate="many_to_one")
    if "age_band" in by:
        cells = cells.drop(columns=_POP_BAND)
    cells["carried_forward"] = cells["carried_forward"].astype("boolean").fillna(False).astype(bool)

    # --- roll up LA -> level ------------------------------------------------------------------
    key = KEYS[level]
    if level == "nation":
        cells[key] = NATION_CODE
    elif level != "la":
        cells[key] = cells["la_code"].map(mapping)
    keys = [key, *group_cols, "_year"]
    cells["_pop_nan"] = cells["population"].isna()
    rolled = cells.groupby(keys, sort=True, dropna=False, observed=True).agg(
        deaths=("deaths", "sum"), population=("population", "sum"), _pop_nan=("_pop_nan", "any"),
        carried_forward=("carried_forward", "any"))

    # --- pool into rolling windows (a loop over the window length, not over rows) ------------
    shifted = []
    for k in range(pool):
        part = rolled.reset_index()
        part["period_end"] = part["_year"] + k
        shifted.append(part)
    stacked = pd.concat(shifted, ignore_index=True)
    pooled = stacked.groupby([key, *group_cols, "period_end"], sort=True, dropna=False, observed=True).agg(
        deaths=("deaths", "sum"), population=("population", "sum"), _pop_nan=("_pop_nan", "any"),
        carried_forward=("carried_forward", "any"), _n=("_year", "size")).reset_index()
    pooled["period_start"] = pooled["period_end"] - (pool - 1)
    valid_ends = {y for y in years if all((y - j) in years for j in range(pool))}
    pooled = pooled[(pooled["_n"] == pool) & pooled["period_end"].isin(valid_ends)].reset_index(drop=True)
    pooled["population"] = pooled["population"].where(~pooled["_pop_nan"])
    pooled["period"] = _period_label(pooled["period_start"], pooled["period_end"], year_type)

    # --- rates ---------------------------------------------------------------------------------
    out_by = [key, *by]
    if standardise:
        pooled["deaths"] = pooled["deaths"].astype(float)
        table = dsr_table(pooled, count="deaths", population="population", age_band=_POP_BAND, standard=CHILD_STANDARD,
                          by=[*out_by, "period_end"], multiplier=multiplier, conf=conf)
        extra_info = pooled.groupby([*out_by, "period_end"], sort=True, dropna=False, observed=True).agg(
            period=("period", "first"), period_start=("period_start", "first"),
            carried_forward=("carried_forward", "any")).reset_index()
        table = table.merge(extra_info, on=[*out_by, "period_end"], how="left")
        table["deaths"] = table["deaths"].round().astype(np.int64)
    else:
        stats = crude_rate(pooled["deaths"].to_numpy(dtype=float), pooled["population"].to_numpy(dtype=float),
                           multiplier=multiplier, conf=conf)
        table = pd.concat([pooled, stats], axis=1)
        table["deaths"] = table["deaths"].astype(np.int64)
        table["method"] = np.where(pooled["_pop_nan"], "not computed: no population for this unit and period",
                                   table["method"])
    columns = [*out_by, "period", "deaths", "population", "value", *ci_columns(conf), "method", "period_start",
               "period_end", "carried_forward"]
    order = {col: lv for col, lv in zip(group_cols, level_lists[1:]) if col in by}
    sort_key = lambda col: (pd.Series(pd.Categorical(col, categories=order[col.name]).codes, index=col.index)  # noqa: E731
                            if col.name in order else col)
    table = table[columns].sort_values([*out_by, "period_end"], key=sort_key, kind="stable").reset_index(drop=True)
    table["period_start"] = table["period_start"].astype(np.int64)
    table["period_end"] = table["period_end"].astype(np.int64)
    table.attrs = {
        "synthetic": synthetic,
        # plain records, not a DataFrame: pandas compares attrs when frames are merged or concatenated
        "exclusions": exclusions.to_dict("records"),
        "n_outside_years": n_outside,
        "spec": {"level": level, "by": by, "years": years, "year_type": year_type, "pool": pool,
                 "standardise": standardise, "standard": "CHILD_STANDARD (ESP2013)" if standardise else None,
                 "multiplier": multiplier, "conf": conf, "vintage": vintage,
                 "population": "cdr.data.population_for_years" if population is None else "user", **version_stamp()},
    }
    return table


# --------------------------------------------------------------------------------------------
# deprivation
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class DeprivationResult:
    """Rates by deprivation quintile and the slope/relative index of inequality.

    Returned by :func:`deprivation_gradient`; not usually built by hand.

    Attributes
    ----------
    rates : pandas.DataFrame
        One row per quintile x group x period (columns of :func:`aggregate`, key ``imd_quintile``,
        1 = most deprived; ``value`` per `multiplier` children per year).
    sii : pandas.DataFrame
        Per group x period: ``statistic`` (``"sii"``: rate difference, most minus least deprived,
        in units of ``value``; ``"rii"``: SII / mean rate, unitless), ``value``, ``lower_95``,
        ``upper_95``, ``lower_99_8``, ``upper_99_8`` and ``method``.
    spec : dict
        Arguments used (``source``, ``by``, ``multiplier``, ``reps``, ``seed``, ...).

    Examples
    --------
    >>> from cdr.data import la_codes
    >>> records = pd.DataFrame({"la_code": la_codes(), "reporting_year_start": 2022})
    >>> result = deprivation_gradient(records, reps=200)
    >>> result.spec["source"], result.to_frame()["statistic"].tolist()
    ('la', ['sii', 'rii'])
    >>> result.rates["imd_quintile"].tolist(), int(result.rates["deaths"].sum())
    ([1, 2, 3, 4, 5], 153)
    """

    rates: pd.DataFrame
    sii: pd.DataFrame
    spec: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The SII/RII table (tidy, stable columns)."""
        return self.sii

    def summary(self) -> Summary:
        lines = [f"Quintiles from {self.spec.get('source')} deprivation; 1 = most deprived.",
                 "SII: modelled rate in the most deprived minus the least deprived (per "
                 f"{self.spec.get('multiplier', 100_000):,g} per year); RII: SII / mean rate."]
        if self.rates.attrs.get("synthetic"):
            lines.insert(0, "SYNTHETIC DATA")
        return Summary("Deaths by deprivation quintile", lines, {"rates": self.rates, "sii": self.sii})

    def __repr__(self) -> str:
        return f"DeprivationResult(source={self.spec.get('source')!r}, {len(self.rates)} rate rows, {len(self.sii)} SII rows)"

    def plot(self, ax=None):
        """Rates by quintile with 95 % limits (first period and group)."""
        import matplotlib.pyplot as plt

        first = self.rates[self.rates["period"] == self.rates["period"].iloc[0]]
        group_cols = [c for c in self.spec.get("by", [])]
        if group_cols:
            first = first.merge(first[group_cols].head(1), on=group_cols)
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        err = np.vstack([first["value"] - first["lower_95"], first["upper_95"] - first["value"]])
        ax.bar(first["imd_quintile"].astype(str), first["value"], yerr=err, capsize=3, color="#6baed6",
               label="Rate with 95 % limits")
        ax.set_xlabel("IMD quintile (1 = most deprived)")
        ax.set_ylabel(f"Deaths per {self.spec.get('multiplier', 100_000):,g} children per year")
        title = f"Child deaths by deprivation quintile, {first['period'].iloc[0]}"
        ax.set_title(("SYNTHETIC DATA - " if self.rates.attrs.get("synthetic") else "") + title)
        ax.legend(frameon=False)
        return ax


def deprivation_gradient(records, population=None, *, source="la", by=(), years=None, year_type="reporting", pool=1,
                         multiplier=100_000, conf=(0.95, 0.998), vintage=2023, unmatched="raise", reps=10_000,
                         seed=0) -> DeprivationResult:
    """Death rates by deprivation quintile with the slope index of inequality (SII).

    Parameters
    ----------
    records, population, by, years, year_type, pool, multiplier, conf, vintage, unmatched
        As for :func:`aggregate`.
    source : {"la", "record"}, default "la"
        ``"la"``: quintiles of upper-tier LAs ranked by IMD 2019 average rank
        (``imd_rank_of_avg_rank``, equal numbers of LAs per quintile; the embedded populations
        suffice). ``"record"``: the child's own ``imd_quintile`` (or ``imd_decile``), which needs
        `population` by ``imd_quintile`` (not embedded).
    reps, seed
        Simulations and seed for the SII confidence limits (:func:`cdr.rates.sii`).

    Returns
    -------
    DeprivationResult
        ``.rates`` (per quintile) and ``.sii`` (SII and RII per group x period, with ``period``
        and the `by` columns).

    Examples
    --------
    One death in each of the 153 LAs in 2022-23: LA quintiles hold 30 or 31 LAs each, and each
    rate is deaths / embedded mid-2022 child population x 100,000:

    >>> from cdr.data import la_codes
    >>> records = pd.DataFrame({"la_code": la_codes(), "reporting_year_start": 2022})
    >>> result = deprivation_gradient(records, reps=200)
    >>> result.rates["deaths"].tolist()
    [30, 31, 30, 31, 31]
    >>> r = result.rates
    >>> bool(((r["deaths"] / r["population"] * 1e5 - r["value"]).abs() < 1e-9).all())
    True
    >>> result.sii[["period", "statistic"]].values.tolist()
    [['2022-23', 'sii'], ['2022-23', 'rii']]
    """
    by = as_by(by, "deprivation_gradient")
    if source == "la":
        from cdr.data import england_areas

        areas = england_areas(vintage)
        rank = pd.to_numeric(areas["imd_rank_of_avg_rank"]).rank(method="first").to_numpy()
        quint = np.ceil(rank * 5 / len(rank)).astype(int)
        design = pd.Series(quint, index=areas["la_code"].astype(object).to_numpy())
        rates = aggregate(records, population, design=design, level="footprint", by=by, years=years, year_type=year_type,
                          pool=pool, multiplier=multiplier, conf=conf, vintage=vintage, unmatched=unmatched)
        rates = rates.rename(columns={"footprint_id": "imd_quintile"})
    elif source == "record":
        rates = aggregate(records, population, level="nation", by=[*by, "imd_quintile"], years=years, year_type=year_type,
                          pool=pool, multiplier=multiplier, conf=conf, vintage=vintage, unmatched=unmatched)
        rates = rates.drop(columns="nation_code")
        rates = rates[["imd_quintile", *[c for c in rates.columns if c != "imd_quintile"]]]
    else:
        raise AggregateError(f"deprivation_gradient: 'source' must be 'la' or 'record'; got {source!r}.")
    rates = rates.sort_values([*by, "period_end", "imd_quintile"], kind="stable").reset_index(drop=True)
    groups = rates[[*by, "period_end", "period"]].drop_duplicates().reset_index(drop=True)
    nq = rates["imd_quintile"].nunique()
    shape = (len(groups), nq)
    block = lambda col: rates[col].to_numpy(dtype=float).reshape(shape)  # noqa: E731
    result = sii(block("imd_quintile"), block("value"), block("population"), value_type="rate", multiplier=multiplier,
                 reps=reps, seed=seed, conf=conf)
    table = pd.concat([groups.iloc[result["group"].to_numpy()].reset_index(drop=True), result.drop(columns="group")], axis=1)
    table.attrs = {"synthetic": rates.attrs.get("synthetic", False)}
    spec = {"source": source, "by": by, "multiplier": multiplier, "reps": reps, "seed": seed, **rates.attrs.get("spec", {})}
    spec["level"] = "imd_quintile"
    return DeprivationResult(rates=rates, sii=table, spec=spec)
