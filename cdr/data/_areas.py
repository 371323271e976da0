"""Areas, lookups, child populations and code translation for England's upper-tier LAs."""
from __future__ import annotations

import functools
import warnings
from importlib import resources

import numpy as np
import pandas as pd

from cdr import _validate as check
from cdr.errors import ArgumentError, DataError, DataVintageWarning

__all__ = [
    "england_areas",
    "child_population",
    "population_for_years",
    "lookup",
    "la_codes",
    "translate_codes",
    "provenance",
    "ATTRIBUTION",
    "VINTAGES",
    "POPULATION_YEARS",
    "LATEST_POPULATION_YEAR",
]

VINTAGES = (2021, 2023)
POPULATION_YEARS = (2018, 2019, 2020, 2021, 2022)
LATEST_POPULATION_YEAR = 2022
BNG = "EPSG:27700"

ATTRIBUTION = (
    "Source: Office for National Statistics licensed under the Open Government Licence v.3.0. "
    "Contains OS data © Crown copyright and database right 2021-2024. "
    "Contains data from the Ministry of Housing, Communities and Local Government "
    "(English Indices of Deprivation 2019), OGL v3."
)

# ONS code changes before the 2021 vintage that the shipped 2021->2023 crosswalk does not cover
# (ONS Code History Database): Buckinghamshire county became a unitary authority on 1 April 2020
# with a new code; Northamptonshire was split into two unitary authorities on 1 April 2021.
_PRE_2021_CHANGES = pd.DataFrame(
    {
        "from_code": ["E10000002", "E10000021", "E10000021"],
        "from_name": ["Buckinghamshire", "Northamptonshire", "Northamptonshire"],
        "to_code": ["E06000060", "E06000061", "E06000062"],
        "to_name": ["Buckinghamshire", "North Northamptonshire", "West Northamptonshire"],
        "relationship": ["recoded", "split", "split"],
    }
)


def _data_file(name: str):
    return resources.files("cdr").joinpath("_data", name)


@functools.lru_cache(maxsize=None)
def _csv(name: str) -> pd.DataFrame:
    with _data_file(name).open("rb") as fh:
        return pd.read_csv(fh, dtype={"la_code": str})


def _check_vintage(vintage, caller: str = "cdr.data", name: str = "vintage") -> int:
    return int(check.one_of(vintage, VINTAGES, name, caller,
                            hint=" (upper-tier LA geography of April 2021 or April 2023)"))


def provenance() -> str:
    """The full provenance note of the embedded data (sources, transformations, checks, known gaps).

    Returns
    -------
    str
        The Markdown text of ``cdr/_data/PROVENANCE.md`` shipped with the package.

    Examples
    --------
    >>> note = provenance()
    >>> note.splitlines()[0]
    '# Reference data for England upper-tier local authorities: provenance'
    """
    return _data_file("PROVENANCE.md").read_text(encoding="utf-8")


def lookup(vintage: int = 2023) -> pd.DataFrame:
    """One row per upper-tier LA: names, type, region, police force area and main ICB.

    Parameters
    ----------
    vintage : {2023, 2021}
        Geography vintage (153 LAs in 2023, 152 in 2021).

    Returns
    -------
    pandas.DataFrame
        ``la_code``, ``la_name``, ``la_type``, ``region_code``, ``region_name``,
        ``police_force_area`` (PFA code, E23…), ``pfa_name``, ``icb_code`` / ``icb_name`` (main
        Integrated Care Board, April 2024), ``icb_share`` (share of the LA's 2021 LSOAs in it),
        ``icb22_code`` and ``icb22_child_pop_share`` (July 2022 ICBs, child-population share).

    Examples
    --------
    >>> lookup(2023).shape[0]
    153
    """
    vintage = _check_vintage(vintage, "lookup")
    raw = _csv(f"utla{vintage}_lookup.csv")
    out = pd.DataFrame(
        {
            "la_code": raw["la_code"].astype(str),
            "la_name": raw["la_name"].astype(str),
            "la_type": raw["la_type"].astype(str),
            "region_code": raw["region_code"].astype(str),
            "region_name": raw["region_name"].astype(str),
            "police_force_area": raw["pfa_code"].astype(str),
            "pfa_name": raw["pfa_name"].astype(str),
            "icb_code": raw["icb24_code"].astype(str),
            "icb_name": raw["icb24_name"].astype(str),
            "icb_share": raw["icb24_lsoa_share"].astype(float),
            "icb22_code": raw["icb22_code"].astype(str),
            "icb22_child_pop_share": raw["icb22_child_pop_share"].astype(float),
        }
    )
    return out.sort_values("la_code", ignore_index=True)


def la_codes(vintage: int = 2023) -> list[str]:
    """Sorted upper-tier LA codes of a vintage.

    Parameters
    ----------
    vintage : {2023, 2021}
        Geography vintage (153 LAs in 2023, 152 in 2021).

    Returns
    -------
    list of str
        ONS GSS codes (``E06…``, ``E08…``, ``E09…``, ``E10…``), sorted ascending.

    Examples
    --------
    >>> codes = la_codes()
    >>> len(codes), len(la_codes(2021)), codes == sorted(codes), codes[0]
    (153, 152, True, 'E06000001')
    """
    return lookup(_check_vintage(vintage, "la_codes"))["la_code"].tolist()


@functools.lru_cache(maxsize=None)
def _population_long(vintage: int) -> pd.DataFrame:
    raw = _csv(f"mye_population_utla{vintage}_2018_2022.csv")
    raw = raw[raw["sex"].isin(["male", "female"])]
    age_cols = [f"pop_age_{a}" for a in range(18)]
    long = raw.melt(id_vars=["la_code", "year", "sex"], value_vars=age_cols, var_name="age", value_name="population")
    long["age"] = long["age"].str.removeprefix("pop_age_").astype(int)
    long["year"] = long["year"].astype(int)
    long["population"] = long["population"].astype(np.int64)
    return long.sort_values(["la_code", "year", "sex", "age"], ignore_index=True)


def child_population(vintage: int = 2023, years=None) -> pd.DataFrame:
    """ONS mid-year child population estimates, ages 0-17, by LA, year, sex and single year of age.

    Parameters
    ----------
    vintage : {2023, 2021}
        Geography vintage of ``la_code``.
    years : iterable of int, optional
        Mid-years to return (2018-2022 are available). Years outside that range raise; use
        :func:`population_for_years` to carry the latest estimate forward explicitly.

    Returns
    -------
    pandas.DataFrame
        Long table with ``la_code``, ``year``, ``sex`` (``"male"``/``"female"``), ``age`` (0-17)
        and ``population`` (persons at 30 June).

    Notes
    -----
    **The series breaks at 2021.** Mid-2018 to mid-2020 were rolled forward from the 2011 Census;
    mid-2021 and mid-2022 are based on the 2021 Census. England's 0-17 population falls by about
    332,000 between 2020 and 2021, mostly because of this rebasing, not real change. ONS's revised
    2012-2020 back series is not embedded. Trend models in :mod:`cdr.trends` can include a level
    shift at 2021 (``covariates``) for this reason.

    Examples
    --------
    >>> pop = child_population()
    >>> int(pop.query("year == 2022")["population"].sum())
    11886906
    """
    vintage = _check_vintage(vintage, "child_population")
    pop = _population_long(vintage)
    if years is not None:
        years = check.years(years, "years", "child_population")
        missing = [y for y in years if y not in POPULATION_YEARS]
        if missing:
            raise ArgumentError(
                f"child_population: no embedded estimates for mid-year(s) {missing}; available: "
                f"{POPULATION_YEARS[0]}-{POPULATION_YEARS[-1]}. Use cdr.data.population_for_years(...) to carry "
                f"the latest year forward (flagged), or supply your own population table."
            )
        pop = pop[pop["year"].isin(years)]
    return pop.reset_index(drop=True).copy()


def population_for_years(years, vintage: int = 2023, *, by=("sex", "age")) -> pd.DataFrame:
    """Child population for any analysis years, carrying the nearest estimate where there is none.

    Years after the last embedded estimate (mid-2022) use the mid-2022 figures and years before
    2018 use mid-2018; such rows are flagged (``carried_forward`` True, ``population_year`` the
    estimate used) and a :class:`~cdr.errors.DataVintageWarning` says so. Nothing is silent.

    Parameters
    ----------
    years : iterable of int
        Analysis years (calendar years, or the first calendar year of a reporting year).
    vintage : {2023, 2021}
        Geography vintage of ``la_code`` (153 LAs in 2023, 152 in 2021).
    by : tuple of str, default ("sex", "age")
        Breakdown to keep: any of ``"sex"``, ``"age"`` (single years 0-17); ``()`` gives LA totals.

    Returns
    -------
    pandas.DataFrame
        ``la_code``, ``year``, the ``by`` columns, ``population`` (persons aged 0-17 at 30 June),
        ``population_year`` (the mid-year estimate used) and ``carried_forward`` (bool).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DataVintageWarning)
    ...     pop = population_for_years([2022, 2023], by=())
    >>> pop.columns.tolist()
    ['la_code', 'year', 'population', 'population_year', 'carried_forward']
    >>> late = pop[pop["year"] == 2023]
    >>> len(late), bool(late["carried_forward"].all()), set(late["population_year"])
    (153, True, {2022})
    >>> bool((late["population"].to_numpy() == pop[pop["year"] == 2022]["population"].to_numpy()).all())
    True
    """
    caller = "population_for_years"
    years = check.years(years, "years", caller)
    by = [check.one_of(b, ("sex", "age"), "by", caller) for b in check.strings(by, "by", caller, example="('sex', 'age')",
                                                                               allow_empty=True)]
    pop = _population_long(_check_vintage(vintage, caller))
    pop = pop.groupby(["la_code", "year", *by], as_index=False)["population"].sum()
    first, last = POPULATION_YEARS[0], POPULATION_YEARS[-1]
    pieces = []
    for year in years:
        source = min(max(year, first), last)
        part = pop[pop["year"] == source].copy()
        part["population_year"] = source
        part["carried_forward"] = source != year
        part["year"] = year
        pieces.append(part)
    out = pd.concat(pieces, ignore_index=True)
    carried = sorted({y for y in years if y < first or y > last})
    if carried:
        warnings.warn(
            f"No population estimates for {carried}: used the nearest embedded mid-year estimate "
            f"({first}-{last}); rows are flagged carried_forward=True.",
            DataVintageWarning,
            stacklevel=2,
        )
    return out[["la_code", "year", *by, "population", "population_year", "carried_forward"]]


@functools.lru_cache(maxsize=None)
def _areas_cached(vintage: int):
    import geopandas as gpd

    with _data_file(f"england_utla_{vintage}_buc.geojson").open("rb") as fh:
        geo = gpd.read_file(fh)
    geo = geo[["la_code", "geometry"]].to_crs(BNG)
    geo["geometry"] = geo.geometry.make_valid()
    table = lookup(vintage)
    imd = _csv(f"imd2019_utla{vintage}.csv")[
        ["la_code", "imd_avg_rank", "imd_rank_of_avg_rank", "imd_prop_lsoa_most_deprived_10pct",
         "idaci_avg_rank", "idaci_rank_of_avg_rank"]
    ]
    pop = _population_long(vintage)
    latest = pop[pop["year"] == LATEST_POPULATION_YEAR].groupby("la_code")["population"].sum()
    infants = pop[(pop["year"] == LATEST_POPULATION_YEAR) & (pop["age"] == 0)].groupby("la_code")["population"].sum()
    table = table.merge(imd, on="la_code", how="left", validate="one_to_one")
    table["child_population"] = table["la_code"].map(latest).astype(np.int64)
    table["infant_population"] = table["la_code"].map(infants).astype(np.int64)
    table["population_year"] = LATEST_POPULATION_YEAR
    out = gpd.GeoDataFrame(table.merge(geo, on="la_code", how="left", validate="one_to_one"), geometry="geometry", crs=BNG)
    out["imd_decile_rank"] = np.ceil(out["imd_rank_of_avg_rank"] / len(out) * 10).astype(int)
    if out.geometry.isna().any() or out[["imd_avg_rank", "child_population"]].isna().any().any():
        raise DataError("embedded data are inconsistent: an LA lacks a boundary, IMD or population (package damaged?)")
    return out.sort_values("la_code", ignore_index=True)


def england_areas(vintage: int = 2023):
    """England's upper-tier local authorities with lookups, deprivation, child population and boundaries.

    Parameters
    ----------
    vintage : {2023, 2021}
        2023: 153 LAs (after Cumbria split and North Yorkshire/Somerset recoded); 2021: 152 LAs.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per LA, sorted by ``la_code``, geometry in EPSG:27700 (British National Grid, metres),
        with ``la_code``, ``la_name``, ``la_type``, ``region_code``, ``region_name``,
        ``police_force_area``, ``pfa_name``, ``icb_code``, ``icb_name``, ``icb_share``,
        ``icb22_code``, ``icb22_child_pop_share``, ``imd_avg_rank`` (IMD 2019 population-weighted
        average rank; higher = more deprived), ``imd_rank_of_avg_rank`` (1 = most deprived),
        ``imd_prop_lsoa_most_deprived_10pct``, ``idaci_avg_rank``, ``idaci_rank_of_avg_rank``,
        ``imd_decile_rank`` (LA decile of ``imd_rank_of_avg_rank``, 1 = most deprived tenth of LAs),
        ``child_population`` (ages 0-17, mid-2022), ``infant_population`` (age 0, mid-2022),
        ``population_year`` and ``geometry``.

    Notes
    -----
    Boundaries are ONS ultra-generalised (500 m) and clipped to the coastline: use
    :func:`contiguity` rather than plain queen contiguity. Licence: OGL v3 (:data:`ATTRIBUTION`).

    Examples
    --------
    >>> areas = england_areas()
    >>> len(areas), areas.crs.to_epsg()
    (153, 27700)
    """
    return _areas_cached(_check_vintage(vintage, "england_areas")).copy()


@functools.lru_cache(maxsize=None)
def _crosswalk() -> pd.DataFrame:
    raw = _csv("utla2021_to_utla2023.csv")
    main = pd.DataFrame(
        {
            "from_code": raw["utla21_code"].astype(str),
            "from_name": raw["utla21_name"].astype(str),
            "to_code": raw["utla23_code"].astype(str),
            "to_name": raw["utla23_name"].astype(str),
            "relationship": raw["relationship"].astype(str),
        }
    )
    return pd.concat([main[main["relationship"] != "unchanged"], _PRE_2021_CHANGES], ignore_index=True)


def translate_codes(frame: pd.DataFrame, column: str = "la_code", *, to_vintage: int = 2023, split: str = "report"):
    """Translate LA codes of earlier vintages to ``to_vintage`` with the shipped ONS crosswalk.

    One-to-one changes (North Yorkshire E10000023 → E06000065 and Somerset E10000027 → E06000066
    in 2023; Buckinghamshire E10000002 → E06000060 in 2020) are translated. Splits (Cumbria
    E10000006 → Cumberland + Westmorland and Furness in 2023; Northamptonshire E10000021 in 2021)
    cannot be translated for record-level data (which successor a child lived in is unknown): with
    ``split="report"`` such rows are left out of the result and listed in ``untranslated``; with
    ``split="expand"`` (right for area-level data such as a footprint design, where both successors
    inherit the parent's value) each row is repeated once per successor.

    Parameters
    ----------
    frame : pandas.DataFrame
        Any table with LA codes in ``column``. It is not modified.
    column : str
        Name of the code column.
    to_vintage : {2023, 2021}
    split : {"report", "expand"}

    Returns
    -------
    translated : pandas.DataFrame
        Rows with codes of ``to_vintage`` (original code kept in ``{column}_original`` where changed).
    untranslated : pandas.DataFrame
        Rows that could not be translated, with a ``reason`` column. ``len(translated) +
        len(untranslated)`` equals the input rows (with ``split="expand"``, plus the extra successor rows).

    Examples
    --------
    >>> t, u = translate_codes(pd.DataFrame({"la_code": ["E10000023", "E10000006"]}))
    >>> t["la_code"].tolist(), u["reason"].str.startswith("split").tolist()
    (['E06000065'], [True])
    """
    caller = "translate_codes"
    check.one_of(split, ("report", "expand"), "split", caller)
    check.text(column, "column", caller)
    check.frame(frame, "frame", caller, columns=[column], hint="Name the code column with column=.")
    to_vintage = _check_vintage(to_vintage, caller, "to_vintage")
    target = set(la_codes(to_vintage))
    cw = _crosswalk()
    if to_vintage == 2021:
        # Only the pre-2021 changes apply; 2023 codes cannot be mapped back without losing the split.
        cw = cw[cw["to_code"].isin(target)]
    df = frame.copy()
    df["_row"] = np.arange(len(df))
    codes = df[column].astype(str)
    keep = codes.isin(target)
    out_parts = [df[keep]]
    untranslated = []
    rest = df[~keep]
    if len(rest):
        m = rest.merge(cw, left_on=column, right_on="from_code", how="left")
        # Chains (e.g. a 2019 code whose successor changed again) are not in the crosswalk; one hop suffices here.
        found = m[m["to_code"].notna()]
        one = found.groupby("_row")["to_code"].transform("size") == 1
        for sub, is_one in ((found[one], True), (found[~one], False)):
            if not len(sub):
                continue
            if is_one or split == "expand":
                t = sub.copy()
                t[f"{column}_original"] = t[column]
                t[column] = t["to_code"]
                out_parts.append(t[[*df.columns, f"{column}_original"]])
            else:
                rows = sub.groupby("_row").agg(successors=("to_code", lambda s: "+".join(sorted(s))))
                u = df.set_index("_row").loc[rows.index].reset_index()
                u["reason"] = [
                    f"split: {c} was divided into {s}; record-level data cannot be assigned to one successor"
                    for c, s in zip(u[column], rows["successors"])
                ]
                untranslated.append(u)
        unknown = rest[~rest["_row"].isin(found["_row"])].copy()
        if len(unknown):
            unknown["reason"] = f"unknown code: not an upper-tier LA code of the {to_vintage} vintage or the crosswalk"
            untranslated.append(unknown)
    translated = pd.concat(out_parts, ignore_index=True).sort_values("_row", kind="stable").drop(columns="_row")
    untranslated = (
        pd.concat(untranslated, ignore_index=True).sort_values("_row").drop(columns="_row")
        if untranslated
        else df.iloc[0:0].drop(columns="_row").assign(reason=pd.Series(dtype=str))
    )
    return translated.reset_index(drop=True), untranslated.reset_index(drop=True)
