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

The observed model (default, ``model="observed"``)
-------------------------------------------------
Expected deaths in LA ``i`` (per year) are ``c x (infant_i + older_i)``:

* **Infants** (neonatal + post-neonatal bands): population aged 0 x the national infant rates x
  ``g_i x theta_i``. ``g_i`` is the mean of ``RR_inf ** (10 - decile)`` over the LA's modelled
  decile distribution, with ``RR_inf`` fitted by Poisson maximum likelihood to the ONS infant deaths
  registered by LA (``cdr/_data/ons_infant_deaths_registered_births_utla2021_2013_2022.csv``,
  Nomis), expected counts ``births[i, t] x England infant rate[t] x g_i``. ``theta_i`` is the
  empirical-Bayes (Poisson-gamma) posterior mean of the LA's relative risk: prior
  ``Gamma(alpha, alpha)`` (mean 1), ``alpha`` by maximum marginal (negative-binomial) likelihood,
  posterior ``Gamma(alpha + O_i, alpha + E_i)`` with ``O_i`` observed and ``E_i`` expected infant
  deaths over 2013-2022. An LA with few births (small ``E_i``) shrinks to ``g_i``; a large one
  follows its data (``theta_i`` near ``O_i / E_i``).
* **Ages 1-17**: population x national age/sex rates x the LA deprivation multiplier with the
  published gradient 1.08 per decile (Odd et al.; no LA counts of deaths at 1-17 are public).
* **Calibration** ``c``: England's total in mid-2022 equals the mean of NCMD's notified deaths for
  the years ending 31 March 2020-2024 (latest published figures: 3,414, 3,056, 3,454, 3,743, 3,577;
  mean 3,448.8). Other population years use the same rates.

2023 LAs take ``theta`` of their 2021 parent (Cumberland and Westmorland and Furness: Cumbria's).
``expected_deaths(..., interval=0.9)`` adds the central posterior interval of the expectation (the
infant part's gamma posterior; the 1-17 part is taken as known). :func:`reach_probability` gives
the posterior predictive probability that a group of LAs has at least ``m`` deaths in a year.
"""
from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import pandas as pd

from cdr import _validate as check
from cdr.data._areas import _check_vintage
from cdr.errors import ArgumentError, DataError

__all__ = [
    "plot_expected_deaths",
    "targets",
    "target_value",
    "national_rates",
    "imd_decile_distribution",
    "imd_quintile_population",
    "expected_deaths",
    "expected_deaths_detail",
    "expected_deaths_table",
    "infant_model",
    "reach_probability",
    "AGE_BAND_SHARES",
    "RR_PER_IMD_DECILE",
    "RR_PER_IMD_DECILE_1_17",
    "CALIBRATION_PERIODS",
    "INFANT_FIT_YEARS",
    "MODELS",
    "MIN_LSOA_IN_DECILE",
]

#: Share of all deaths in each age band (neonatal, post-neonatal: published; 1-17 split: assumption).
AGE_BAND_SHARES = {"neonatal": 0.42, "postneonatal": 0.21, "1-4": 0.11, "5-9": 0.06, "10-14": 0.08, "15-17": 0.12}
#: Rate ratio per IMD decile of increasing deprivation (Odd et al., BMJ Open; published).
RR_PER_IMD_DECILE = 1.08
#: Rate ratio per IMD decile at ages 1-17 in the observed model: the published all-ages 1.08 (Odd
#: et al.; NCMD's report rounds it to "about 10 %"). With the fitted infant gradient (about 1.12) the
#: most vs least deprived fifth differ 2.4-fold (published 2.41-2.49).
RR_PER_IMD_DECILE_1_17 = 1.08
#: NCMD years whose notified deaths (``deaths_0_17`` in :func:`targets`) calibrate the observed model.
CALIBRATION_PERIODS = tuple(f"YE 31 Mar {y}" for y in range(2020, 2025))
#: Registration years of ONS infant deaths by LA used by the observed model.
INFANT_FIT_YEARS = tuple(range(2013, 2023))
#: Expected-death models: ``"observed"`` (default; empirical Bayes on ONS infant deaths by LA,
#: calibrated to NCMD) and ``"national"`` (national rates x deprivation multiplier).
MODELS = ("observed", "national")
_INFANT_FILE = "ons_infant_deaths_registered_births_utla2021_2013_2022.csv"
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
    check.one_of(check.text(name, "name", "target_value", example="'share_neonatal'"), sorted(t["target"].unique()),
                 "name", "target_value", hint=" (cdr.reference.targets() lists them)")
    if period is not None:
        check.one_of(period, t.loc[t["target"] == name, "period"].tolist(), "period", "target_value")
    rows = t[t["target"] == name]
    if period is not None:
        rows = rows[rows["period"] == period]
    if rows.empty:
        raise ArgumentError(f"target_value: no calibration target {name!r}"
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
    return _national_rates(_check_vintage(vintage, "national_rates")).copy()


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


#: An LA is given no children in a national IMD decile where the model expects fewer than this many
#: of its LSOAs (see :func:`imd_decile_distribution`).
MIN_LSOA_IN_DECILE = 0.5


@functools.lru_cache(maxsize=4)
def _lsoa_decile_shares(vintage: int) -> pd.DataFrame:
    """la_code x decile (1 = most deprived) share of the LA's LSOAs; see :func:`imd_decile_distribution`."""
    with resources.files("cdr").joinpath("_data", f"imd2019_utla{vintage}.csv").open("rb") as fh:
        imd = pd.read_csv(fh, dtype={"la_code": str})
    n = imd["n_lsoa11"].to_numpy(float)
    m = imd["imd_avg_rank"].to_numpy(float) / _N_LSOA                    # mean national percentile, 1 = most deprived
    p10 = imd["imd_prop_lsoa_most_deprived_10pct"].to_numpy(float)      # share of LSOAs in decile 1 (published)
    x = 1 - (np.arange(1, 11) - 0.5) / 10                              # decile mid-percentiles, decile 1 = 0.95
    # 1. Deciles 2-10 hold 1 - p10 with the mean that makes the LA's overall mean m, spread by the
    #    maximum-entropy law P(d) ~ exp(b x_d) (b read off a fine grid, vectorised over LAs).
    m_rest = np.clip((m - p10 * x[0]) / np.maximum(1 - p10, 1e-12), x[-1] + 1e-3, x[1] - 1e-3)
    grid = np.linspace(-80.0, 80.0, 16001)
    table = np.exp(grid[:, None] * (x[None, 1:] - 0.5))
    table /= table.sum(axis=1, keepdims=True)
    b = np.interp(m_rest, table @ x[1:], grid)
    rest = np.exp(b[:, None] * (x[None, 1:] - 0.5))
    rest /= rest.sum(axis=1, keepdims=True)
    # 2. Deciles where the LA would have fewer than MIN_LSOA_IN_DECILE LSOAs are empty (never its modal
    #    decile: the Isles of Scilly is one LSOA).
    small = rest * ((1 - p10) * n)[:, None] < MIN_LSOA_IN_DECILE
    small[np.arange(len(rest)), rest.argmax(axis=1)] = False
    rest = np.where(small, 0.0, rest)
    # 3. Raking (iterative proportional fitting on LSOA counts): each national decile holds a tenth of
    #    England's LSOAs; each LA keeps p10 in decile 1 and 1 - p10 in deciles 2-10; empty cells stay empty.
    lsoa = rest / rest.sum(axis=1, keepdims=True) * ((1 - p10) * n)[:, None]
    col_target, row_target = n.sum() / 10, (1 - p10) * n
    for _ in range(1000):
        lsoa *= col_target / lsoa.sum(axis=0)
        lsoa *= (row_target / lsoa.sum(axis=1))[:, None]
        if np.abs(lsoa.sum(axis=0) / col_target - 1).max() < 1e-9:
            break
    out = np.column_stack([p10 * n, lsoa]) / n[:, None]
    one = n == 1                                   # a single LSOA (Isles of Scilly): its decile is known
    out[one] = np.arange(1, 11)[None, :] == np.clip(np.ceil((1 - m[one]) * 10), 1, 10)[:, None]
    return pd.DataFrame(out / out.sum(axis=1, keepdims=True), index=imd["la_code"].to_numpy(), columns=np.arange(1, 11))


def imd_decile_distribution(vintage: int = 2023) -> pd.DataFrame:
    """Estimated spread of each LA's children, and of its deaths, over national IMD 2019 deciles.

    The one source of the LA x decile population split: the synthetic generator draws
    ``imd_decile`` from it and the annual report's rates by quintile use it as denominators
    (:func:`imd_quintile_population`).

    Parameters
    ----------
    vintage : {2023, 2021}, default 2023
        Geography vintage of ``la_code`` (153 LAs in 2023, 152 in 2021).

    Returns
    -------
    pandas.DataFrame
        ``la_code``, ``imd_decile`` (1 = most deprived), ``population_share`` (estimated share of
        the LA's children in the decile, see Notes; 0 where the LA is taken to have no LSOA in it)
        and ``death_share`` (share of the LA's deaths: population share x ``RR ** (10 - decile)``
        with the published ``RR = 1.08``, renormalised).

    Raises
    ------
    ArgumentError
        `vintage` is not 2023 or 2021.

    Notes
    -----
    What is published, per LA (IMD 2019, ``cdr/_data/imd2019_utla<vintage>.csv``): the number of
    LSOAs ``n``, the share of them in national decile 1 (``p10``, exact) and their
    population-weighted mean national rank (``imd_avg_rank``; as a percentile ``m``, 1 = most
    deprived). The LSOA-level deciles are not embedded, so the split is **approximated**:

    1. decile 1 holds ``p10``; deciles 2-10 hold ``1 - p10`` spread by the maximum-entropy law
       ``P(d) ~ exp(b x_d)`` (``x_d`` the decile's mid-percentile), ``b`` such that the LA's mean
       percentile is ``m``;
    2. a decile in which the LA would have fewer than ``MIN_LSOA_IN_DECILE`` (0.5) LSOAs is empty;
    3. raking (iterative proportional fitting on LSOA counts) makes every national decile hold a
       tenth of England's LSOAs, as it does by definition, keeping each LA's ``p10`` and empty cells.
    4. children are spread over an LA's LSOAs evenly (LSOA populations are not embedded): the
       share of LSOAs is used as the share of children.

    An LA of one LSOA (Isles of Scilly) sits wholly in the decile of its rank. The mean percentile
    is reproduced to within 0.01 in the median LA. Expected deaths
    (:func:`expected_deaths`) still use the one-parameter distribution of the module docstring.

    Examples
    --------
    >>> t = imd_decile_distribution()
    >>> bool(abs(t.groupby("la_code")["population_share"].sum() - 1).max() < 1e-12)
    True
    >>> hackney = t[t["la_code"] == "E09000012"].set_index("imd_decile")["population_share"]
    >>> round(float(hackney[1]), 3), float(hackney[10])       # published 11.1 % in decile 1; none in 10
    (0.111, 0.0)
    """
    vintage = _check_vintage(vintage, "imd_decile_distribution")
    pi = _lsoa_decile_shares(vintage)
    g = RR_PER_IMD_DECILE ** (10 - pi.columns.to_numpy())
    death = pi * g
    death = death.div(death.sum(axis=1), axis=0)
    codes = pi.index.to_numpy()
    return pd.DataFrame({
        "la_code": np.repeat(codes, 10), "imd_decile": np.tile(np.arange(1, 11), len(codes)),
        "population_share": pi.to_numpy().ravel(), "death_share": death.to_numpy().ravel(),
    })


def imd_quintile_population(population: pd.DataFrame) -> pd.DataFrame:
    """Children of each LA split over national IMD 2019 quintiles (by :func:`imd_decile_distribution`).

    Parameters
    ----------
    population : pandas.DataFrame
        ``la_code`` (2023 or 2021 codes) and ``population`` (children); other columns are group
        columns, kept (e.g. ``year``).

    Returns
    -------
    pandas.DataFrame
        The input's columns with ``imd_quintile`` (1 = most deprived fifth: deciles 1-2) and
        ``population`` (children of the LA in that quintile; approximated, see
        :func:`imd_decile_distribution`), five rows per input row, in input order.

    Raises
    ------
    ArgumentError
        A missing column, or an ``la_code`` of neither vintage (named).
    ArgumentTypeError
        `population` is not a DataFrame.

    Examples
    --------
    >>> pop = pd.DataFrame({"la_code": ["E09000012"], "population": [60_000.0]})
    >>> q = imd_quintile_population(pop)
    >>> q["population"].round().tolist()
    [30342.0, 21526.0, 6289.0, 1597.0, 245.0]
    """
    from cdr.errors import ArgumentError, ArgumentTypeError

    if not isinstance(population, pd.DataFrame):
        raise ArgumentTypeError("imd_quintile_population: 'population' must be a pandas DataFrame with la_code and "
                                f"population columns; got {type(population).__name__}.")
    missing = {"la_code", "population"} - set(population.columns)
    if missing:
        raise ArgumentError(f"imd_quintile_population: 'population' needs the columns {sorted(missing)}; "
                            "pass a frame with la_code and population (children).")
    shares = _quintile_shares()
    codes = population["la_code"].astype(str)
    unknown = sorted(set(codes) - set(shares.index))
    if unknown:
        raise ArgumentError(f"imd_quintile_population: {len(unknown)} la_code(s) are not upper-tier LAs of the "
                            f"2023 or 2021 vintage, e.g. {unknown[:3]}; use cdr.data.la_codes() codes.")
    s = shares.loc[codes].to_numpy()
    out = population.loc[population.index.repeat(5)].reset_index(drop=True)
    out["imd_quintile"] = np.tile(np.arange(1, 6), len(population))
    out["population"] = np.repeat(population["population"].to_numpy(float), 5) * s.ravel()
    return out


@functools.lru_cache(maxsize=1)
def _quintile_shares() -> pd.DataFrame:
    """la_code (2023 codes, then 2021 codes not in 2023) x quintile 1-5 share of children."""
    parts = []
    for v in (2023, 2021):
        d = _lsoa_decile_shares(v)
        parts.append(pd.DataFrame(d.to_numpy().reshape(len(d), 5, 2).sum(axis=2), index=d.index, columns=range(1, 6)))
    both = pd.concat(parts)
    return both[~both.index.duplicated()]


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
        raise ArgumentError(f"unknown LA code(s) for the {vintage} vintage: {unknown[:10]}"
                            f"{' ...' if len(unknown) > 10 else ''}; use cdr.data.translate_codes first")
    return sorted(set(codes))


def _check_args(caller: str, areas, vintage, year, model, *, areas_optional: bool = True) -> None:
    """The arguments the expected-deaths functions share: areas, vintage, year and model."""
    check.area_codes(areas, "areas", caller, optional=areas_optional)
    _check_vintage(vintage, caller)
    check.year(year, "year", caller)
    check.one_of(model, MODELS, "model", caller)


@functools.lru_cache(maxsize=1)
def _infant_counts() -> pd.DataFrame:
    with resources.files("cdr").joinpath("_data", _INFANT_FILE).open("rb") as fh:
        frame = pd.read_csv(fh, dtype={"la_code": str})
    cols = ["live_births", "infant_deaths_registered"]
    bad = frame[frame[cols].isna().any(axis=1) | (frame[cols] < 0).any(axis=1)]
    if len(bad):  # pragma: no cover - the embedded file is checked by tests
        raise DataError(f"{_INFANT_FILE}: missing or negative counts in rows {bad.index[:10].tolist()}")
    return frame


def _poisson_gamma_fit(observed: np.ndarray, base: np.ndarray, pi: np.ndarray):
    """RR per decile (Poisson ML), gamma shape (negative-binomial ML) and expected counts."""
    from scipy import optimize, special

    d = np.arange(1, 11)
    n_obs = observed.sum()

    def expected(log_rr):
        e = base * (pi @ np.exp(log_rr) ** (10 - d))
        return e * n_obs / e.sum()

    def nll_poisson(log_rr):
        e = expected(log_rr)
        return float(-(observed * np.log(e) - e).sum())

    log_rr = optimize.minimize_scalar(nll_poisson, bounds=(0.0, 0.5), method="bounded",
                                      options={"xatol": 1e-8}).x
    e = expected(log_rr)

    def nll_nb(log_a):
        a = np.exp(log_a)
        return float(-(special.gammaln(a + observed) - special.gammaln(a) + a * np.log(a / (a + e))
                       + observed * np.log(e / (a + e))).sum())

    alpha = float(np.exp(optimize.minimize_scalar(nll_nb, bounds=(-3.0, 12.0), method="bounded",
                                                  options={"xatol": 1e-8}).x))
    return float(np.exp(log_rr)), alpha, e


@functools.lru_cache(maxsize=8)
def _infant_fit(fit_years: tuple) -> pd.DataFrame:
    counts = _infant_counts()
    missing = sorted(set(fit_years) - set(counts["year"]))
    if missing or not fit_years:
        raise ArgumentError(f"infant_model: fit_years must be within {INFANT_FIT_YEARS[0]}-{INFANT_FIT_YEARS[-1]} "
                            f"(ONS infant deaths registered by LA); missing: {missing or 'none given'}")
    f = counts[counts["year"].isin(fit_years)]
    rate_t = f.groupby("year")["infant_deaths_registered"].sum() / f.groupby("year")["live_births"].sum()
    base = (f["live_births"] * f["year"].map(rate_t)).groupby(f["la_code"]).sum()
    observed = f.groupby("la_code")["infant_deaths_registered"].sum().loc[base.index]
    births = f.groupby("la_code")["live_births"].sum().loc[base.index]
    codes, pi, _, _ = _decile_tables(2021)
    pi = pd.DataFrame(pi, index=codes).loc[base.index].to_numpy()
    rr, alpha, e = _poisson_gamma_fit(observed.to_numpy(float), base.to_numpy(float), pi)
    out = pd.DataFrame({"la_code": base.index, "live_births": births.to_numpy(), "observed": observed.to_numpy(),
                        "expected": e})
    out["posterior_shape"] = alpha + out["observed"]
    out["posterior_rate"] = alpha + out["expected"]
    out["theta"] = out["posterior_shape"] / out["posterior_rate"]
    out.attrs.update({"alpha": alpha, "rr_per_imd_decile": rr, "fit_years": list(fit_years)})
    return out


def infant_model(fit_years=INFANT_FIT_YEARS) -> pd.DataFrame:
    """Empirical-Bayes (Poisson-gamma) fit to ONS infant deaths registered by LA (2021 LAs).

    Parameters
    ----------
    fit_years : iterable of int, default 2013-2022
        Registration years to fit on (within 2013-2022), e.g. ``range(2013, 2018)`` to hold back
        2018-2022 for validation.

    Returns
    -------
    pandas.DataFrame
        One row per 2021 LA: ``la_code``, ``live_births`` and ``observed`` infant deaths over the
        fit years, ``expected`` (births x England's infant rate of each year x deprivation factor
        ``g_i``, scaled to the observed total), ``posterior_shape`` (``alpha + observed``),
        ``posterior_rate`` (``alpha + expected``) and ``theta`` (posterior mean relative risk).
        ``.attrs``: ``alpha`` (gamma shape), ``rr_per_imd_decile`` (fitted infant gradient) and
        ``fit_years``.

    Raises
    ------
    CdrError
        A fit year outside the embedded 2013-2022.

    Examples
    --------
    Birmingham (many births) follows its data; the City of London (few) stays near the model:

    >>> m = infant_model().set_index("la_code")
    >>> round(float(m.loc["E08000025", "theta"]), 2), round(float(m.loc["E09000001", "theta"]), 2)
    (1.43, 0.94)
    """
    fit_years = [check.one_of(y, INFANT_FIT_YEARS, "fit_years", "infant_model", hint=" (ONS registrations embedded)")
                 for y in check.years(fit_years, "fit_years", "infant_model")]
    return _infant_fit(tuple(fit_years)).copy()


def _parent_2021(vintage: int) -> pd.Series:
    """la_code of ``vintage`` -> the 2021 LA containing it."""
    from cdr import data

    if vintage == 2021:
        codes = data.la_codes(2021)
        return pd.Series(codes, index=codes)
    with resources.files("cdr").joinpath("_data", "utla2021_to_utla2023.csv").open("rb") as fh:
        cw = pd.read_csv(fh, dtype=str)
    return cw.set_index("utla23_code")["utla21_code"]


@functools.lru_cache(maxsize=4)
def _observed_factors(vintage: int) -> pd.DataFrame:
    """Per LA: infant and 1-17 multipliers (before calibration), posterior of theta, parent code."""
    fit = _infant_fit(INFANT_FIT_YEARS).set_index("la_code")
    codes, pi, _, _ = _decile_tables(vintage)
    d = np.arange(1, 11)
    parent = _parent_2021(vintage).reindex(codes)
    out = pd.DataFrame({
        "infant_prior": pi @ fit.attrs["rr_per_imd_decile"] ** (10 - d),
        "older": pi @ RR_PER_IMD_DECILE_1_17 ** (10 - d),
        "parent": parent.to_numpy(),
    }, index=codes)
    out["theta"] = out["parent"].map(fit["theta"])
    out["posterior_shape"] = out["parent"].map(fit["posterior_shape"])
    out["posterior_rate"] = out["parent"].map(fit["posterior_rate"])
    if out[["theta"]].isna().any().any():  # pragma: no cover - guarded by the crosswalk
        raise DataError(f"observed model: no infant data for {out.index[out['theta'].isna()].tolist()}")
    return out


@functools.lru_cache(maxsize=4)
def _observed_scales(vintage: int) -> tuple[float, float, float]:
    """(infant scale, 1-17 scale, calibration c) fixed at the mid-2022 population."""
    f = _observed_factors(vintage)
    pop = _band_population(vintage, _ANCHOR_YEAR)
    base = pop["population"] * pop.merge(_national_rates(vintage), on=["age_band", "sex"], how="left")["rate"].to_numpy()
    infant = pop["age_band"].isin(["neonatal", "postneonatal"]).to_numpy()
    m_inf = pop["la_code"].map(f["infant_prior"] * f["theta"]).to_numpy()
    m_old = pop["la_code"].map(f["older"]).to_numpy()
    s_inf = base[infant].sum() / (base[infant] * m_inf[infant]).sum()
    s_old = base[~infant].sum() / (base[~infant] * m_old[~infant]).sum()
    target = np.mean([target_value("deaths_0_17", period=p) for p in CALIBRATION_PERIODS])
    return float(s_inf), float(s_old), float(target / base.sum())


def expected_deaths_detail(areas=None, *, vintage: int = 2023, year: int = 2022, model: str = "observed") -> pd.DataFrame:
    """Expected deaths per year by LA, sex and age band.

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
    model : {"observed", "national"}, default "observed"
        ``"observed"``: empirical Bayes on ONS infant deaths by LA and calibrated to NCMD;
        ``"national"``: national rates x deprivation multiplier (module docstring).

    Returns
    -------
    pandas.DataFrame
        ``la_code``, ``sex``, ``age_band``, ``population`` (child-years), ``rate`` (national, per
        child-year; calibrated to NCMD in the observed model), ``deprivation_multiplier`` (the
        deprivation part of the LA multiplier), ``area_multiplier`` (the multiplier applied:
        deprivation x the LA's posterior infant relative risk in infant bands of the observed model;
        equal to ``deprivation_multiplier`` otherwise) and ``expected_deaths`` (per year), sorted by
        ``la_code``, ``sex``, ``age_band``.

    Examples
    --------
    One LA has 2 sexes x 6 age bands, with the same numbers as in the table for all of England:

    >>> d = expected_deaths_detail(["E06000001"])
    >>> d.shape
    (12, 8)
    >>> full = expected_deaths_detail()
    >>> bool(abs(full.loc[full["la_code"] == "E06000001", "expected_deaths"].sum()
    ...          - d["expected_deaths"].sum()) < 1e-12)
    True
    >>> round(float(full["expected_deaths"].sum())), round(float(expected_deaths_detail(model="national")["expected_deaths"].sum()))
    (3449, 3483)
    """
    _check_args("expected_deaths_detail", areas, vintage, year, model)
    vintage = _area_vintage(areas, int(vintage))
    pop = _band_population(vintage, int(year))
    rates = _national_rates(vintage)[["age_band", "sex", "rate"]]
    out = pop.merge(rates, on=["age_band", "sex"], how="left", validate="many_to_one")
    base = out["population"] * out["rate"]
    if model == "national":
        raw = out["la_code"].map(_la_multiplier(vintage))
        scale = base.sum() / (base * raw).sum()
        out["deprivation_multiplier"] = raw * scale
        out["area_multiplier"] = out["deprivation_multiplier"]
    else:
        f = _observed_factors(vintage)
        s_inf, s_old, c = _observed_scales(vintage)
        infant = out["age_band"].isin(["neonatal", "postneonatal"])
        out["rate"] = out["rate"] * c
        dep = np.where(infant, out["la_code"].map(f["infant_prior"]) * s_inf, out["la_code"].map(f["older"]) * s_old)
        out["deprivation_multiplier"] = dep
        out["area_multiplier"] = np.where(infant, dep * out["la_code"].map(f["theta"]), dep)
    out["expected_deaths"] = out["population"] * out["rate"] * out["area_multiplier"]
    keep = _select_areas(areas, vintage)
    if keep is not None:
        out = out[out["la_code"].isin(keep)]
    order = {b: i for i, b in enumerate(AGE_BAND_SHARES)}
    out = out.sort_values(["la_code", "sex", "age_band"], key=lambda s: s.map(order) if s.name == "age_band" else s,
                          ignore_index=True)
    return out[["la_code", "sex", "age_band", "population", "rate", "deprivation_multiplier", "area_multiplier",
                "expected_deaths"]]


def _posterior_parts(areas, vintage: int, year: int) -> pd.DataFrame:
    """Per LA: the 1-17 expectation (known), the infant expectation per unit theta, and theta's posterior."""
    detail = expected_deaths_detail(areas, vintage=vintage, year=year, model="observed")
    vintage = _area_vintage(areas, int(vintage))
    f = _observed_factors(vintage)
    infant = detail["age_band"].isin(["neonatal", "postneonatal"])
    per_theta = (detail["expected_deaths"] / detail["la_code"].map(f["theta"])).where(infant, 0.0)
    out = pd.DataFrame({"older": detail["expected_deaths"].where(~infant, 0.0), "infant_unit": per_theta,
                        "la_code": detail["la_code"]}).groupby("la_code", sort=True).sum()
    return out.join(f[["parent", "posterior_shape", "posterior_rate"]])


def expected_deaths(areas=None, *, vintage: int = 2023, year: int = 2022, model: str = "observed",
                    interval: float | None = None) -> pd.DataFrame:
    """Expected child deaths (ages 0-17) per year in each LA.

    ``model="observed"`` (default): empirical-Bayes estimate combining ONS infant deaths registered by
    LA 2013-2022 (Poisson-gamma shrinkage towards a deprivation model), national age/sex rates at
    ages 1-17 with the NCMD deprivation gradient, calibrated to NCMD's notified deaths 2019-20 to
    2023-24. ``model="national"``: child population x national rates x the LA's deprivation
    multiplier. See the module docstring for formulas and :func:`targets` for sources.

    Parameters
    ----------
    areas, vintage, year, model
        As in :func:`expected_deaths_detail`.
    interval : float in (0, 1), optional
        Add ``lower`` and ``upper``, the central posterior interval of the expectation with this
        probability, and ``predictive_var``, the variance of one year's count (Poisson plus the
        posterior variance of the infant part). Observed model only.

    Returns
    -------
    pandas.DataFrame
        ``la_code`` and ``expected_deaths`` (deaths per year, full precision), sorted by ``la_code``;
        with ``interval``, also ``lower``, ``upper`` and ``predictive_var``. ``.attrs["model"]``
        names the model.

    Raises
    ------
    CdrError
        Unknown model, an interval outside (0, 1), or an interval with ``model="national"``.

    Examples
    --------
    >>> e = expected_deaths()
    >>> len(e), round(float(e["expected_deaths"].sum()))
    (153, 3449)
    >>> b = expected_deaths(["E08000025"], interval=0.9).iloc[0]
    >>> bool(b["lower"] < b["expected_deaths"] < b["upper"])
    True
    """
    _check_args("expected_deaths", areas, vintage, year, model)
    if interval is not None:
        check.probability(interval, "interval", "expected_deaths")
    detail = expected_deaths_detail(areas, vintage=vintage, year=year, model=model)
    out = detail.groupby("la_code", as_index=False, sort=True)["expected_deaths"].sum()
    if interval is not None:
        from scipy import stats

        if model != "observed":
            raise ArgumentError("expected_deaths: interval= needs model='observed' (the national model has no posterior)")
        q = float(interval)
        if not 0 < q < 1:
            raise ArgumentError(f"expected_deaths: interval must be a probability in (0, 1), e.g. 0.9; got {interval!r}")
        parts = _posterior_parts(areas, vintage, year).loc[out["la_code"]]
        shape, scale = parts["posterior_shape"].to_numpy(), 1 / parts["posterior_rate"].to_numpy()
        lo, hi = stats.gamma.ppf([(1 - q) / 2, (1 + q) / 2], shape[:, None], scale=scale[:, None]).T
        out["lower"] = parts["older"].to_numpy() + parts["infant_unit"].to_numpy() * lo
        out["upper"] = parts["older"].to_numpy() + parts["infant_unit"].to_numpy() * hi
        out["predictive_var"] = out["expected_deaths"].to_numpy() + parts["infant_unit"].to_numpy() ** 2 * shape * scale ** 2
    out.attrs["model"] = model
    return out


def reach_probability(areas, min_deaths: float = 60, *, vintage: int = 2023, year: int = 2022,
                      model: str = "observed") -> float:
    """Probability that the LAs of ``areas`` together have at least ``min_deaths`` deaths in a year.

    Under ``model="observed"`` the count is Poisson given the expectation, whose infant part carries
    the gamma posterior of each LA's relative risk (LAs with the same 2021 parent share it); the
    sum is approximated by a negative binomial with the same mean and variance. Under
    ``"national"`` it is Poisson.

    Parameters
    ----------
    areas : DataFrame with ``la_code``, or iterable of codes
        The LAs of one footprint.
    min_deaths : float, default 60
    vintage, year, model
        As in :func:`expected_deaths_detail`.

    Returns
    -------
    float
        P(deaths in a year >= ``min_deaths``).

    Examples
    --------
    >>> p_obs = reach_probability(["E08000025", "E08000029"])      # Birmingham and Solihull
    >>> p_nat = reach_probability(["E08000025", "E08000029"], model="national")
    >>> bool(p_obs > 0.99), bool(p_nat > 0.99)
    (True, True)
    """
    from scipy import stats

    _check_args("reach_probability", areas, vintage, year, model, areas_optional=False)
    check.number(min_deaths, "min_deaths", "reach_probability", above=0, example=60, unit="deaths a year")
    m = float(np.ceil(min_deaths))
    if model == "national":
        mu = float(expected_deaths(areas, vintage=vintage, year=year, model=model)["expected_deaths"].sum())
        return float(stats.poisson.sf(m - 1, mu))
    parts = _posterior_parts(areas, vintage, year)
    by_parent = parts.groupby("parent").agg(unit=("infant_unit", "sum"), shape=("posterior_shape", "first"),
                                            rate=("posterior_rate", "first"))
    mu = float(parts["older"].sum() + (by_parent["unit"] * by_parent["shape"] / by_parent["rate"]).sum())
    extra = float((by_parent["unit"] ** 2 * by_parent["shape"] / by_parent["rate"] ** 2).sum())
    if extra <= 0:
        return float(stats.poisson.sf(m - 1, mu))
    r = mu ** 2 / extra
    return float(stats.nbinom.sf(m - 1, r, r / (r + mu)))


def expected_deaths_table(*, vintage: int = 2023, year: int = 2022, level: str = "la",
                          model: str = "observed") -> pd.DataFrame:
    """Child population and expected deaths per LA or per region, with names (for reports and the CLI).

    Parameters
    ----------
    vintage : {2023, 2021}
    year : int, default 2022
    level : {"la", "region"}
    model : {"observed", "national"}, default "observed"

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

    _check_args("expected_deaths_table", None, vintage, year, model)
    check.one_of(level, ("la", "region"), "level", "expected_deaths_table")
    detail = expected_deaths_detail(vintage=vintage, year=year, model=model)
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


def plot_expected_deaths(*, vintage: int = 2023, year: int = 2022, ax=None, model: str = "observed"):
    """Map of expected child deaths a year per LA, with region boundaries.

    Parameters
    ----------
    vintage : {2023, 2021}
        Geography vintage (153 LAs in 2023, 152 in 2021).
    year : int, default 2022
        Population mid-year (2018-2022 embedded; others carried forward with a warning).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; default: a new 8 x 9 inch figure.
    model : {"observed", "national"}, default "observed"
        Expected-death model (:func:`expected_deaths`).

    Returns
    -------
    matplotlib.axes.Axes
        Choropleth of expected deaths per year (colour bar in deaths a year), regions outlined,
        titled with the model, year and the OGL source.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> ax = plot_expected_deaths(year=2022)
    >>> "3,449 in all" in ax.get_title(), "mid-2022" in ax.get_title()
    (True, True)
    >>> plt.close(ax.figure)
    """
    import matplotlib.pyplot as plt

    from cdr import data

    _check_args("plot_expected_deaths", None, vintage, year, model)
    check.axes(ax, "ax", "plot_expected_deaths")
    areas = data.england_areas(vintage)
    table = expected_deaths_table(vintage=vintage, year=year, level="la", model=model)
    areas = areas.merge(table[["la_code", "expected_deaths"]], on="la_code", validate="one_to_one")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 9))
    from cdr.data._maps import add_london_inset

    def draw(a, legend):   # the map, and again on the zoomed "London (inset)" panel (same colour scale)
        areas.plot(column="expected_deaths", cmap="viridis", linewidth=0.2, edgecolor="white", ax=a, legend=legend,
                   vmin=areas["expected_deaths"].min(), vmax=areas["expected_deaths"].max(),
                   legend_kwds={"label": "expected child deaths (0-17) per year", "shrink": 0.6})
        areas.dissolve(by="region_code").boundary.plot(ax=a, color="black", linewidth=0.6)

    draw(ax, True)
    ax.set_aspect("equal")
    add_london_inset(ax, lambda a: draw(a, False))
    total = float(areas["expected_deaths"].sum())
    ax.set_title(
        f"Expected child deaths a year by upper-tier LA, England ({total:,.0f} in all)\n"
        + ("ONS infant deaths by LA (empirical Bayes) + national 1-17 rates x deprivation, calibrated to NCMD"
           if model == "observed" else "national age/sex rates x LA deprivation")
        + f", population mid-{year}; regions outlined",
        fontsize=10,
    )
    ax.set_axis_off()
    ax.annotate("Source: ONS mid-year estimates, boundaries and IMD 2019 (OGL v3); rates: cdr.reference",
                xy=(0.0, -0.02), xycoords="axes fraction", fontsize=7)
    return ax
