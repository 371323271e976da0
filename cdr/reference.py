"""Published national child death figures and the calibrated national rate model.

Every calibration target is one row of ``cdr/_data/calibration.csv`` (:func:`targets`) with its
value, unit, period and source. Each row is marked ``kind="published"`` (read in a cited source;
the compiled notes are in ``cdr/_data/reference/``) or ``kind="assumption"`` (a modelling choice
where no published figure was found - e.g. the split of deaths at ages 1-17 across bands; never
to be quoted as a published figure).

The rate model
--------------
1. **All-ages rate.** The published NCMD child death rate for the year ending March 2022, 29.3 per
   100,000 aged 0-17, times England's mid-2022 population (11,886,906) gives 3,483 deaths a year
   (published NCMD counts 2019-20 to 2024-25: 3,056-3,743).
2. **Age.** 42 % of deaths are neonatal (< 28 days) and 63 % are under 1 (published, so 21 %
   post-neonatal); the remaining 37 % is split 11/6/8/12 % across 1-4, 5-9, 10-14 and 15-17
   (assumption). Neonatal and post-neonatal rates are per child-year aged 0.
3. **Sex.** 56.5 % of deaths are male (published), applied in every age band (assumption):
   ``rate[band, sex] = deaths[band] x share[sex] / population[band, sex]``.
4. **Deprivation.** Risk rises by RR = 1.08 per IMD decile of increasing deprivation (Odd et al.,
   published). An LA's children are spread over the national IMD deciles by the maximum-entropy
   distribution whose mean decile is ``10.5 - 10 x imd_avg_rank / 32,844`` (the LA's IMD 2019
   population-weighted average rank on the decile scale; assumption: ``P(d)`` proportional to
   ``exp(-beta x d)``, beta solved per LA). Summed over England this puts 8.6-12.6 % of children in
   each decile (truth: 10 % by construction of deciles). The LA multiplier
   is the mean of ``RR ** (10 - decile)`` over its children, rescaled so that England's expected
   total equals the national rates applied to England's population (the national rates are averages
   over deprivation).
"""
from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import pandas as pd

from cdr.errors import CdrError

__all__ = [
    "plot_expected_deaths",
    "targets",
    "target_value",
    "national_rates",
    "imd_decile_distribution",
    "expected_deaths",
    "expected_deaths_detail",
    "expected_deaths_table",
    "AGE_BAND_SHARES",
    "RR_PER_IMD_DECILE",
]

#: Share of all deaths in each age band (neonatal, post-neonatal: published; 1-17 split: assumption).
AGE_BAND_SHARES = {"neonatal": 0.42, "postneonatal": 0.21, "1-4": 0.11, "5-9": 0.06, "10-14": 0.08, "15-17": 0.12}
#: Rate ratio per IMD decile of increasing deprivation (Odd et al., BMJ Open; published).
RR_PER_IMD_DECILE = 1.08
_RATE_ANCHOR_PER_100K = 29.3   # NCMD, YE Mar 2022 (published)
_MALE_SHARE = 0.565            # NCMD 2019-20 (published)
_ANCHOR_YEAR = 2022
_N_LSOA = 32844                # LSOAs in England, IMD 2019 (imd_avg_rank is a mean of 32,845 - rank)
_BAND_OF_AGE = {0: ("neonatal", "postneonatal"), **{a: ("1-4",) for a in range(1, 5)},
                **{a: ("5-9",) for a in range(5, 10)}, **{a: ("10-14",) for a in range(10, 15)},
                **{a: ("15-17",) for a in range(15, 18)}}


@functools.lru_cache(maxsize=1)
def _targets() -> pd.DataFrame:
    with resources.files("cdr").joinpath("_data", "calibration.csv").open("rb") as fh:
        return pd.read_csv(fh, dtype={"target": str, "unit": str, "period": str, "kind": str,
                                      "source_url": str, "note": str})


def targets() -> pd.DataFrame:
    """The calibration targets, one row each.

    Returns
    -------
    pandas.DataFrame
        ``target`` (name), ``value`` (float; NaN for a table held in code), ``unit``, ``period``,
        ``kind`` (``"published"`` - read in the source at ``source_url`` - or ``"assumption"`` - a
        modelling choice where no published figure exists, with no source), ``source_url``, ``note``.

    Examples
    --------
    >>> t = targets()
    >>> row = t[t["target"] == "share_male"].iloc[0]
    >>> float(row["value"]), row["kind"]
    (56.5, 'published')
    >>> sorted(t["kind"].unique())
    ['assumption', 'published']
    """
    return _targets().copy()


def target_value(name: str, period: str | None = None) -> float:
    """The value of one target (the first row of that name, or of that name and ``period``).

    Parameters
    ----------
    name : str
        A ``target`` name of :func:`targets`, e.g. ``"deaths_0_17"`` or ``"share_neonatal"``.
    period : str, optional
        A ``period`` of that target, e.g. ``"YE 31 Mar 2021"``; default: the first row of the name.

    Returns
    -------
    float
        The value in the target's ``unit`` (e.g. deaths, percent, rate per 100,000); NaN for a
        target whose table is held in code.

    Raises
    ------
    CdrError
        No target of that name (and period).

    Examples
    --------
    >>> target_value("share_neonatal")
    42.0
    >>> target_value("deaths_0_17", period="YE 31 Mar 2021")
    3056.0
    """
    t = _targets()
    rows = t[t["target"] == name]
    if period is not None:
        rows = rows[rows["period"] == period]
    if rows.empty:
        raise CdrError(f"target_value: no calibration target {name!r}"
                       + (f" for period {period!r}" if period else "") + f"; names: {sorted(t['target'].unique())}")
    return float(rows["value"].iloc[0])


def _band_population(vintage: int, year: int) -> pd.DataFrame:
    """la_code, sex, age_band, population (age 0 counted in both infant bands)."""
    from cdr import data

    if year in data.POPULATION_YEARS:
        pop = data.child_population(vintage, years=[year])
    else:
        pop = data.population_for_years([year], vintage, by=("sex", "age"))  # warns: carried forward
    rows = [(age, band) for age, bands in _BAND_OF_AGE.items() for band in bands]
    bands = pd.DataFrame(rows, columns=["age", "age_band"])
    out = pop.merge(bands, on="age").groupby(["la_code", "sex", "age_band"], as_index=False, sort=False)["population"].sum()
    return out


@functools.lru_cache(maxsize=4)
def _national_rates(vintage: int) -> pd.DataFrame:
    pop = _band_population(vintage, _ANCHOR_YEAR).groupby(["age_band", "sex"], as_index=False)["population"].sum()
    total_pop = pop[pop["age_band"] != "postneonatal"]["population"].sum()
    total_deaths = _RATE_ANCHOR_PER_100K / 1e5 * total_pop
    pop["deaths"] = (pop["age_band"].map(AGE_BAND_SHARES) * total_deaths
                     * np.where(pop["sex"] == "male", _MALE_SHARE, 1 - _MALE_SHARE))
    pop["rate"] = pop["deaths"] / pop["population"]
    pop["rate_per_100000"] = pop["rate"] * 1e5
    pop["rr_per_imd_decile"] = RR_PER_IMD_DECILE
    order = {b: i for i, b in enumerate(AGE_BAND_SHARES)}
    pop = pop.sort_values(["age_band", "sex"], key=lambda s: s.map(order) if s.name == "age_band" else s, ignore_index=True)
    return pop[["age_band", "sex", "rate", "rate_per_100000", "population", "deaths", "rr_per_imd_decile"]]


def national_rates(vintage: int = 2023) -> pd.DataFrame:
    """National death rates per child-year by age band and sex (England average over deprivation).

    Parameters
    ----------
    vintage : {2023, 2021}
        Geography of the population used (England totals are the same in both).

    Returns
    -------
    pandas.DataFrame
        One row per ``age_band`` (:data:`cdr.schema.AGE_BANDS` order) and ``sex``: ``rate`` (deaths
        per child-year; neonatal and post-neonatal rates are per child-year aged 0),
        ``rate_per_100000``, ``population`` (England, mid-2022), ``deaths`` (expected per year in
        England) and ``rr_per_imd_decile`` (rate ratio per IMD decile more deprived, the same in every row).

    Notes
    -----
    The model is described in the module docstring; the targets are in :func:`targets`.

    Examples
    --------
    >>> r = national_rates()
    >>> infant = r["age_band"].isin(["neonatal", "postneonatal"])
    >>> round(float(r["deaths"].sum())), round(float(r.loc[infant, "deaths"].sum() / r["deaths"].sum()), 2)
    (3483, 0.63)
    """
    return _national_rates(int(vintage)).copy()


@functools.lru_cache(maxsize=4)
def _decile_tables(vintage: int):
    from cdr import data

    areas = data.england_areas(vintage)
    p = areas["imd_avg_rank"].to_numpy(float) / _N_LSOA          # 0 least ... 1 most deprived
    mean_decile = 10.5 - 10 * p                                    # decile 1 = most deprived
    d = np.arange(1, 11)
    # Maximum-entropy distribution on 1..10 with a given mean: P(d) ~ exp(-beta d); the mean falls
    # monotonically in beta, so beta is read off a fine grid by interpolation (vectorised).
    grid = np.linspace(-4.0, 4.0, 8001)
    table = np.exp(-grid[:, None] * d[None, :])
    table /= table.sum(axis=1, keepdims=True)
    beta = np.interp(mean_decile, (table @ d)[::-1], grid[::-1])
    pi = np.exp(-beta[:, None] * d[None, :])
    pi /= pi.sum(axis=1, keepdims=True)
    g = RR_PER_IMD_DECILE ** (10 - d)
    raw = pi @ g
    death = pi * g[None, :] / raw[:, None]
    return areas["la_code"].to_numpy(), pi, death, raw


def imd_decile_distribution(vintage: int = 2023) -> pd.DataFrame:
    """Modelled spread of each LA's children, and of its deaths, over national IMD deciles.

    Parameters
    ----------
    vintage : {2023, 2021}, default 2023
        Geography vintage of ``la_code`` (153 LAs in 2023, 152 in 2021).

    Returns
    -------
    pandas.DataFrame
        ``la_code``, ``imd_decile`` (1 = most deprived), ``population_share`` (share of the LA's
        children in the decile; assumption, see module docstring) and ``death_share`` (share of the
        LA's expected deaths: population share x ``RR ** (10 - decile)``, renormalised).

    Examples
    --------
    >>> t = imd_decile_distribution()
    >>> bool(abs(t.groupby("la_code")["death_share"].sum() - 1).max() < 1e-12)
    True
    """
    codes, pi, death, _ = _decile_tables(int(vintage))
    return pd.DataFrame({
        "la_code": np.repeat(codes, 10), "imd_decile": np.tile(np.arange(1, 11), len(codes)),
        "population_share": pi.ravel(), "death_share": death.ravel(),
    })


def _la_multiplier(vintage: int) -> pd.Series:
    codes, _, _, raw = _decile_tables(vintage)
    return pd.Series(raw, index=codes)


def _area_vintage(areas, vintage: int) -> int:
    """``vintage``, or the other vintage when every code of ``areas`` belongs to it and not to ``vintage``."""
    from cdr import data

    if areas is None:
        return vintage
    codes = set((areas["la_code"] if isinstance(areas, pd.DataFrame) else pd.Series(list(areas))).astype(str))
    other = 2021 if vintage == 2023 else 2023
    if not codes <= set(data.la_codes(vintage)) and codes <= set(data.la_codes(other)):
        return other
    return vintage


def _select_areas(areas, vintage: int) -> list[str] | None:
    from cdr import data

    if areas is None:
        return None
    codes = areas["la_code"] if isinstance(areas, pd.DataFrame) else pd.Series(list(areas))
    codes = codes.astype(str)
    unknown = sorted(set(codes) - set(data.la_codes(vintage)))
    if unknown:
        raise CdrError(f"unknown LA code(s) for the {vintage} vintage: {unknown[:10]}"
                       f"{' ...' if len(unknown) > 10 else ''}; use cdr.data.translate_codes first")
    return sorted(set(codes))


def expected_deaths_detail(areas=None, *, vintage: int = 2023, year: int = 2022) -> pd.DataFrame:
    """Expected deaths per year by LA, sex and age band under the national rate model.

    Parameters
    ----------
    areas : DataFrame with ``la_code``, or iterable of codes, optional
        LAs to return (default: every LA of ``vintage``). Rates are always normalised over England,
        so a subset gets the same numbers as in the full table.
    vintage : {2023, 2021}
        Geography of the codes. If every code of ``areas`` is of the other vintage (e.g. a 2021
        design passed with the default), that vintage is used: the numbers of LAs common to both
        vintages are the same either way.
    year : int, default 2022
        Mid-year of the population (2018-2022 embedded; other years carry the nearest estimate
        forward with a :class:`~cdr.errors.DataVintageWarning`).

    Returns
    -------
    pandas.DataFrame
        ``la_code``, ``sex``, ``age_band``, ``population`` (child-years), ``rate`` (national, per
        child-year), ``deprivation_multiplier`` (LA multiplier; England population-weighted mean 1)
        and ``expected_deaths`` (per year), sorted by ``la_code``, ``sex``, ``age_band``.

    Examples
    --------
    One LA has 2 sexes x 6 age bands, with the same numbers as in the table for all of England:

    >>> d = expected_deaths_detail(["E06000001"])
    >>> d.shape, d["deprivation_multiplier"].nunique()
    ((12, 7), 1)
    >>> full = expected_deaths_detail()
    >>> bool(abs(full.loc[full["la_code"] == "E06000001", "expected_deaths"].sum()
    ...          - d["expected_deaths"].sum()) < 1e-12)
    True
    >>> round(float(full["expected_deaths"].sum()))
    3483
    """
    vintage = _area_vintage(areas, int(vintage))
    pop = _band_population(vintage, int(year))
    rates = _national_rates(vintage)[["age_band", "sex", "rate"]]
    out = pop.merge(rates, on=["age_band", "sex"], how="left", validate="many_to_one")
    base = out["population"] * out["rate"]
    raw = out["la_code"].map(_la_multiplier(vintage))
    scale = base.sum() / (base * raw).sum()
    out["deprivation_multiplier"] = raw * scale
    out["expected_deaths"] = base * out["deprivation_multiplier"]
    keep = _select_areas(areas, vintage)
    if keep is not None:
        out = out[out["la_code"].isin(keep)]
    order = {b: i for i, b in enumerate(AGE_BAND_SHARES)}
    out = out.sort_values(["la_code", "sex", "age_band"], key=lambda s: s.map(order) if s.name == "age_band" else s,
                          ignore_index=True)
    return out[["la_code", "sex", "age_band", "population", "rate", "deprivation_multiplier", "expected_deaths"]]


def expected_deaths(areas=None, *, vintage: int = 2023, year: int = 2022) -> pd.DataFrame:
    """Expected child deaths (ages 0-17) per year in each LA under the national rate model.

    Child population by single year of age and sex (:func:`cdr.data.child_population`) x national
    rates by age band and sex (:func:`national_rates`) x the LA's deprivation multiplier (from its
    IMD 2019 average rank), normalised so that England's total equals the national rates applied to
    England's population. See the module docstring for the model and :func:`targets` for sources.

    Parameters
    ----------
    areas, vintage, year
        As in :func:`expected_deaths_detail`.

    Returns
    -------
    pandas.DataFrame
        ``la_code`` and ``expected_deaths`` (deaths per year, full precision), sorted by ``la_code``.

    Examples
    --------
    >>> e = expected_deaths()
    >>> len(e), round(float(e["expected_deaths"].sum()))
    (153, 3483)
    """
    detail = expected_deaths_detail(areas, vintage=vintage, year=year)
    return detail.groupby("la_code", as_index=False, sort=True)["expected_deaths"].sum()


def expected_deaths_table(*, vintage: int = 2023, year: int = 2022, level: str = "la") -> pd.DataFrame:
    """Child population and expected deaths per LA or per region, with names (for reports and the CLI).

    Parameters
    ----------
    vintage : {2023, 2021}
    year : int, default 2022
    level : {"la", "region"}

    Returns
    -------
    pandas.DataFrame
        ``level="la"``: ``la_code``, ``la_name``, ``region_code``, ``region_name``,
        ``child_population`` (0-17 in ``year``), ``expected_deaths`` (per year) and
        ``expected_rate_per_100000``; ``level="region"``: the same keyed by ``region_code`` with
        ``n_las``. Sorted by the key.

    Examples
    --------
    >>> expected_deaths_table(level="region").shape
    (9, 6)
    """
    from cdr import data

    if level not in ("la", "region"):
        raise CdrError(f"expected_deaths_table: level must be 'la' or 'region'; got {level!r}")
    detail = expected_deaths_detail(vintage=vintage, year=year)
    pop = detail[detail["age_band"] != "postneonatal"].groupby("la_code")["population"].sum()
    table = data.lookup(vintage)[["la_code", "la_name", "region_code", "region_name"]].copy()
    table["child_population"] = table["la_code"].map(pop).astype("int64")
    table["expected_deaths"] = table["la_code"].map(detail.groupby("la_code")["expected_deaths"].sum())
    if level == "region":
        table = table.groupby(["region_code", "region_name"], as_index=False).agg(
            n_las=("la_code", "size"), child_population=("child_population", "sum"),
            expected_deaths=("expected_deaths", "sum"))
    table["expected_rate_per_100000"] = table["expected_deaths"] / table["child_population"] * 1e5
    return table.sort_values("la_code" if level == "la" else "region_code", ignore_index=True)


def plot_expected_deaths(*, vintage: int = 2023, year: int = 2022, ax=None):
    """Map of expected child deaths a year per LA, with region boundaries.

    Parameters
    ----------
    vintage : {2023, 2021}
        Geography vintage (153 LAs in 2023, 152 in 2021).
    year : int, default 2022
        Population mid-year (2018-2022 embedded; others carried forward with a warning).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; default: a new 8 x 9 inch figure.

    Returns
    -------
    matplotlib.axes.Axes
        Choropleth of expected deaths per year (colour bar in deaths a year), regions outlined,
        titled with the model, year and the OGL source.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> ax = plot_expected_deaths(year=2022)
    >>> "3,483 in all" in ax.get_title(), "mid-2022" in ax.get_title()
    (True, True)
    >>> plt.close(ax.figure)
    """
    import matplotlib.pyplot as plt

    from cdr import data

    areas = data.england_areas(vintage)
    table = expected_deaths_table(vintage=vintage, year=year, level="la")
    areas = areas.merge(table[["la_code", "expected_deaths"]], on="la_code", validate="one_to_one")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 9))
    areas.plot(column="expected_deaths", cmap="viridis", linewidth=0.2, edgecolor="white", ax=ax, legend=True,
               legend_kwds={"label": "expected child deaths (0-17) per year", "shrink": 0.6})
    areas.dissolve(by="region_code").boundary.plot(ax=ax, color="black", linewidth=0.6)
    total = float(areas["expected_deaths"].sum())
    ax.set_title(
        f"Expected child deaths a year by upper-tier LA, England ({total:,.0f} in all)\n"
        f"national age/sex rates x LA deprivation, population mid-{year}; regions outlined",
        fontsize=10,
    )
    ax.set_axis_off()
    ax.annotate("Source: ONS mid-year estimates, boundaries and IMD 2019 (OGL v3); rates: cdr.reference",
                xy=(0.0, -0.02), xycoords="axes fraction", fontsize=7)
    return ax
