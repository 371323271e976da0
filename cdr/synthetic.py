"""Synthetic child death records calibrated to published national figures. SYNTHETIC DATA ONLY.

Real record-level child death data are confidential; these records are for demos, tests, notebooks
and footprint research. Every record has ``synthetic=True`` and ``case_id`` starts with ``SYN``.

How a record set is drawn (targets and sources: :func:`cdr.reference.targets`):

1. **Counts.** Deaths per LA x period x sex x age band are Poisson with mean
   :func:`cdr.reference.expected_deaths_detail` (default observed model: the LA distribution of
   the empirical-Bayes expected deaths) scaled so that England's expected total of each reporting
   year equals NCMD's published deaths for that year (:data:`ANNUAL_DEATHS`, first published
   figures for April 2019-March 2025; a calendar year takes 1/4 of the reporting year before and
   3/4 of the one it starts; years without a figure keep the model's level). In a year with a
   published count England's total equals it (multinomial draw given the total, i.e. Poisson
   conditioned on the observed count); other years are Poisson. The population of a
   period is the mid-year estimate of its first calendar year, or the nearest embedded one
   (2018-2022), as recorded in ``records.attrs``.
2. **Dates.** Date of death uniform within the period (reporting year 1 April-31 March, or calendar
   year). Age in days within the band: neonatal deaths fall geometrically by day of life (ratio 0.8 a
   day), post-neonatal deaths exponentially (mean 120 days after day 28), older ages uniformly
   (assumptions). ``date_of_birth`` = date of death - age.
3. **Deprivation.** ``imd_decile`` from the LA's estimated split of children over national deciles
   (:func:`cdr.reference.imd_decile_distribution`, the split the report's rates by quintile use as
   denominators; no death in a decile where the LA has no LSOA) weighted by ``RR ** (10 - decile)``: the infant
   gradient fitted to ONS infant deaths by LA (about 1.12 a decile) for deaths under 1, the
   published 1.08 a decile at ages 1-17 (most vs least deprived fifth about 2.4; published 2.41-2.49).
4. **Ethnicity** varies by LA (:func:`ethnicity_probabilities`): the LA's estimated child mix
   (:func:`cdr.data.ethnic_group_shares`, 2011 Census QS201EW by LA shifted to children with its
   region's DC2101EW child/all-age ratios) times one death/population ratio per group, renormalised in each
   LA; the ratios are fitted (iterative proportional fitting) so that the mix of deaths over England,
   weighted by each LA's expected deaths, equals the national shares of :data:`ETHNICITY_SHARES`
   (White 62 % published; the rest assumptions). ``unknown`` keeps its national 4 % in every LA.
5. **Category** by age band from :data:`CATEGORY_SHARES` (assumption table: no national category
   distribution was found; perinatal/neonatal events dominate neonatal deaths, congenital anomalies
   are common in infancy, trauma and suicide at 15-17, malignancy at 5-14).
6. **Review.** Completed a gamma-distributed lag after death (shape 2, mean 300 days; assumption);
   with ``review_lag=True`` reviews later than ``as_of`` are pending (NaT), so the latest year has
   many pending, as in the published 2,738 of 3,347 deaths of 2019-20 reviewed.
7. **Modifiable** (reviewed deaths): ``insufficient_information`` with probability 55/3,595
   (published), otherwise ``yes`` with the category's probability in :data:`MODIFIABLE_SHARES`
   with its odds scaled by one factor per year, so that the share of completed reviews (with
   enough information) that are modifiable equals :func:`modifiable_share` of the reporting year
   in which the review was completed (published 36 % YE Mar 2022, 39 % 2023, 48 % 2025;
   interpolated between published years).
8. **Domains** (reviewed deaths): a ``yes`` case has a main contributory domain drawn by category
   (:data:`MAIN_DOMAIN`) at ``may_have_contributed`` or ``sufficient`` and each other domain
   contributory with probability 0.2. Whatever the judgement, a natural death (malignancy, acute,
   chronic, congenital, perinatal/neonatal, infection) scores the child domain as contributory with
   probability 0.85 (:data:`CHILD_DOMAIN_NATURAL`); a ``no`` case has other domains contributory
   with probability 0.05; an ``insufficient_information`` case has mostly ``not_available``.
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from cdr import reference, schema
from cdr import _synthetic_fields
from cdr._base import SYNTHETIC_NOTE, as_generator, version_stamp
from cdr import _validate as check
from cdr.data._areas import _check_vintage
from cdr.errors import ArgumentError

__all__ = [
    "generate_records",
    "simulate_area_counts",
    "CATEGORY_SHARES",
    "MODIFIABLE_SHARES",
    "ETHNICITY_SHARES",
    "MAIN_DOMAIN",
    "INSUFFICIENT_INFORMATION_SHARE",
    "REVIEW_LAG_SHAPE",
    "REVIEW_LAG_MEAN_DAYS",
    "ANNUAL_DEATHS",
    "CHILD_DOMAIN_NATURAL",
    "modifiable_share",
    "ethnicity_probabilities",
]

_CATS = list(schema.CATEGORIES)
_BANDS = list(schema.AGE_BANDS)

#: ASSUMPTION. Share (%) of each category within each age band (rows sum to 100). Columns in
#: :data:`cdr.schema.CATEGORIES` order. No national category distribution was found; checks:
#: perinatal/neonatal about 31 % of all deaths (published: just over 1,000 of 3,271 reviews, YE Mar
#: 2023), suicides about 105 a year (published: 108 in 2019-20).
CATEGORY_SHARES = pd.DataFrame(
    [
        # abuse suicide trauma malig acute chronic congen perinatal infection sudi
        [0.2, 0.0, 0.3, 0.2, 2.0, 0.5, 26.0, 66.0, 2.8, 2.0],       # neonatal
        [2.0, 0.0, 2.0, 2.0, 10.0, 5.0, 33.0, 12.0, 12.0, 22.0],    # postneonatal
        [3.0, 0.0, 10.0, 14.0, 17.0, 11.0, 22.0, 3.0, 12.0, 8.0],   # 1-4
        [2.0, 0.0, 12.0, 26.0, 16.5, 15.0, 17.0, 1.5, 8.0, 2.0],    # 5-9
        [2.0, 8.0, 14.0, 23.0, 16.0, 14.0, 13.0, 0.5, 6.0, 3.5],    # 10-14
        [3.0, 20.0, 27.0, 13.0, 12.0, 11.0, 6.0, 0.0, 4.0, 4.0],    # 15-17
    ],
    index=pd.Index(_BANDS, name="age_band"),
    columns=_CATS,
)

#: Probability that a reviewed death with enough information has modifiable factors, by category.
#: Published: abuse_neglect 0.65 and malignancy 0.02 (DfE 2011-12), perinatal_neonatal 0.34 (NCMD
#: 2019-21), sudden_unexpected_unexplained 0.67 (NHS Digital 2017-18, "around two-thirds").
#: The others are ASSUMPTIONS chosen so that the overall share is about a third (published 28-39 %).
MODIFIABLE_SHARES = {
    "abuse_neglect": 0.65, "suicide_self_harm": 0.60, "trauma_external": 0.60, "malignancy": 0.02,
    "acute_medical_surgical": 0.30, "chronic_medical": 0.25, "chromosomal_genetic_congenital": 0.18,
    "perinatal_neonatal": 0.34, "infection": 0.35, "sudden_unexpected_unexplained": 0.67,
}

#: Main contributory domain of a modifiable death, by category (ASSUMPTION).
MAIN_DOMAIN = {
    "abuse_neglect": "domain_social", "suicide_self_harm": "domain_social", "trauma_external": "domain_physical",
    "malignancy": "domain_service", "acute_medical_surgical": "domain_service", "chronic_medical": "domain_service",
    "chromosomal_genetic_congenital": "domain_child", "perinatal_neonatal": "domain_child",
    "infection": "domain_service", "sudden_unexpected_unexplained": "domain_social",
}

#: Ethnicity of deaths: white 0.62 published (NCMD 2019-20); the rest ASSUMPTIONS.
ETHNICITY_SHARES = {"white": 0.62, "mixed": 0.06, "asian": 0.18, "black": 0.07, "other": 0.03, "unknown": 0.04}

#: Share of reviews with not enough information to judge modifiability: 55 of 3,595 (NHS Digital 2017-18).
INSUFFICIENT_INFORMATION_SHARE = 55 / 3595
REVIEW_LAG_SHAPE = 2.0
REVIEW_LAG_MEAN_DAYS = 300.0
#: NCMD deaths notified (0-17) by reporting year (first year of April-March), as first published:
#: ``deaths_0_17_first_published`` in :func:`cdr.reference.targets`.
ANNUAL_DEATHS = {
    int(row["period"][-4:]) - 1: float(row["value"])
    for _, row in reference.targets().query("target == 'deaths_0_17_first_published'").iterrows()
}
#: Probability that a natural death scores the child domain as contributory (ASSUMPTION; see targets).
CHILD_DOMAIN_NATURAL = 0.85
_NATURAL = ("malignancy", "acute_medical_surgical", "chronic_medical", "chromosomal_genetic_congenital",
            "perinatal_neonatal", "infection")
_OTHER_CONTRIBUTORY_NO = 0.05
_NEONATAL_RATIO = 0.8
_POSTNEONATAL_MEAN = 120.0
_OTHER_CONTRIBUTORY = 0.2
_SUFFICIENT_GIVEN_CONTRIBUTORY = 0.15


def modifiable_share(reporting_year: int) -> float:
    """Share of completed reviews (with enough information) that find modifiable factors, by year.

    Published NCMD/NHS Digital shares (``share_modifiable`` in :func:`cdr.reference.targets`: 28 %
    YE Mar 2018, 36 % 2022, 39 % 2023, 48 % 2025), linearly interpolated between published years
    and held constant outside them (assumption ``share_modifiable_interpolated``).

    Parameters
    ----------
    reporting_year : int
        First calendar year of the April-March year in which reviews were completed
        (``2022`` = YE 31 March 2023).

    Returns
    -------
    float
        The share as a fraction.

    Examples
    --------
    >>> modifiable_share(2022), modifiable_share(2024), round(modifiable_share(2023), 3)
    (0.39, 0.48, 0.435)
    """
    check.integer(reporting_year, "reporting_year", "modifiable_share", example=2022)
    t = reference.targets()
    rows = t[t["target"] == "share_modifiable"]
    years = rows["period"].str[-4:].astype(int).to_numpy() - 1
    order = np.argsort(years)
    return float(np.interp(int(reporting_year), years[order], rows["value"].to_numpy(float)[order] / 100))


def _odds_scale(target: float) -> float:
    """Factor on the odds of MODIFIABLE_SHARES giving an expected overall share ``target`` (national mix)."""
    from scipy.optimize import brentq

    band = pd.Series(reference.AGE_BAND_SHARES).loc[CATEGORY_SHARES.index]
    mix = (CATEGORY_SHARES.div(CATEGORY_SHARES.sum(axis=1), axis=0).mul(band, axis=0)).sum()
    p = mix.index.map(MODIFIABLE_SHARES).to_numpy(float)
    odds, w = p / (1 - p), mix.to_numpy() / mix.sum()

    def gap(log_k):
        k = np.exp(log_k)
        return float((w * k * odds / (1 + k * odds)).sum() - target)

    return float(np.exp(brentq(gap, -10, 10)))


def _annual_target(period: int, year_type: str) -> float | None:
    """NCMD deaths for a reporting year (or the overlapping share of two for a calendar year); None if unknown."""
    if year_type == "reporting":
        return ANNUAL_DEATHS.get(int(period))
    before, during = ANNUAL_DEATHS.get(int(period) - 1), ANNUAL_DEATHS.get(int(period))
    return None if before is None or during is None else 0.25 * before + 0.75 * during


def _periods(years, year_type: str) -> pd.DataFrame:
    years = sorted({int(y) for y in years})
    if not years:
        raise ArgumentError("generate_records: 'years' is empty; give e.g. range(2019, 2024)")
    if year_type == "reporting":
        start = pd.to_datetime([f"{y}-04-01" for y in years])
        end = pd.to_datetime([f"{y + 1}-03-31" for y in years])
    elif year_type == "calendar":
        start = pd.to_datetime([f"{y}-01-01" for y in years])
        end = pd.to_datetime([f"{y}-12-31" for y in years])
    else:
        raise ArgumentError(f"generate_records: year_type must be 'reporting' or 'calendar'; got {year_type!r}")
    return pd.DataFrame({"period": years, "start": start, "end": end})


def _area_codes(areas, vintage: int) -> list[str]:
    from cdr import data

    valid = data.la_codes(vintage)
    if areas is None:
        return valid
    codes = areas["la_code"] if isinstance(areas, pd.DataFrame) else pd.Series(list(areas))
    codes = sorted(set(codes.astype(str)))   # sorted: the result never depends on the order of `areas`
    unknown = sorted(set(codes) - set(valid))
    if unknown:
        raise ArgumentError(f"generate_records: unknown LA code(s) for the {vintage} vintage: {unknown[:10]}; "
                            f"see cdr.data.la_codes({vintage})")
    return codes


def _check_args(caller: str, years, areas, seed, year_type, vintage) -> None:
    """The arguments of simulate_area_counts and generate_records."""
    check.years(years, "years", caller)
    check.area_codes(areas, "areas", caller)
    check.seed(seed, "seed", caller)
    check.one_of(year_type, ("reporting", "calendar"), "year_type", caller)
    _check_vintage(vintage, caller)


def simulate_area_counts(years=range(2019, 2024), areas=None, seed=0, *, year_type: str = "reporting",
                         vintage: int = 2023) -> pd.DataFrame:
    """Synthetic death counts per LA, period, sex and age band (Poisson draws). SYNTHETIC.

    Parameters
    ----------
    years : iterable of int
        First calendar year of each period (reporting year ``2019`` = April 2019-March 2020).
    areas : DataFrame with ``la_code`` or iterable of codes, optional
        Default: every LA of ``vintage``. Row order does not matter.
    seed : int or numpy.random.Generator
    year_type : {"reporting", "calendar"}
    vintage : {2023, 2021}

    Returns
    -------
    pandas.DataFrame
        ``la_code``, ``period``, ``sex``, ``age_band``, ``expected_deaths`` (Poisson mean: the
        observed-model expectation scaled to NCMD's published deaths of the year, where published),
        ``deaths`` (the draw: for a year with a published NCMD count, England's cells are drawn
        multinomially given that total, i.e. Poisson conditioned on it, so England's synthetic total
        equals the published count; otherwise independent Poisson; always drawn for all of England
        and then restricted to ``areas``, so an LA's counts do not depend on the other areas asked for), ``population_year`` (mid-year estimate used) and ``synthetic`` (True).
        ``.attrs["synthetic"]`` is True.

    Examples
    --------
    >>> c = simulate_area_counts(years=[2019], seed=1)
    >>> int(c["deaths"].sum()), bool(c["synthetic"].all())
    (3347, True)
    """
    from cdr import data

    _check_args("simulate_area_counts", years, areas, seed, year_type, vintage)
    rng = as_generator(seed)
    periods = _periods(years, year_type)
    codes = _area_codes(areas, vintage)
    parts = []
    for period in periods["period"]:
        pop_year = min(max(period, data.POPULATION_YEARS[0]), data.POPULATION_YEARS[-1])
        england = reference.expected_deaths_detail(vintage=vintage, year=pop_year)
        target = _annual_target(period, year_type)
        mu = england["expected_deaths"].to_numpy()
        if target is None:
            deaths = rng.poisson(mu)
        else:   # England's total is the published count; cells share it multinomially (Poisson given the total)
            mu = mu * target / mu.sum()
            deaths = rng.multinomial(int(round(target)), mu / mu.sum())
        keep = england["la_code"].isin(codes).to_numpy()
        parts.append(england.loc[keep, ["la_code", "sex", "age_band"]].assign(
            expected_deaths=mu[keep], deaths=deaths[keep], period=period, population_year=pop_year))
    table = pd.concat(parts, ignore_index=True)
    table["synthetic"] = True
    out = table[["la_code", "period", "sex", "age_band", "expected_deaths", "deaths", "population_year", "synthetic"]]
    out.attrs["synthetic"] = True
    return out


def generate_records(years=range(2019, 2024), areas=None, seed=0, *, year_type: str = "reporting",
                     review_lag: bool = True, vintage: int = 2023, as_of=None) -> pd.DataFrame:
    """Synthetic child death records for every LA (or those in ``areas``). SYNTHETIC DATA.

    Parameters
    ----------
    years : iterable of int, default 2019-2023
        First calendar year of each period: reporting year ``2019`` is 1 April 2019-31 March 2020.
    areas : DataFrame with ``la_code`` or iterable of codes, optional
        Default: every upper-tier LA of ``vintage``. The result does not depend on the row order.
    seed : int or numpy.random.Generator, default 0
        Same seed, same records.
    year_type : {"reporting", "calendar"}
    review_lag : bool, default True
        True: reviews completed after ``as_of`` are pending (``review_completed`` NaT, ``modifiable``
        and domains NA). False: every death is reviewed, the review date capped at ``as_of``.
    vintage : {2023, 2021}
    as_of : date-like, optional
        Date of the extract; default the last day of the last period. Must not be in the future.

    Returns
    -------
    pandas.DataFrame
        Records as returned by :func:`cdr.schema.read_records` (canonical and derived columns,
        sorted by ``case_id``), all valid in strict mode, with ``synthetic=True``.
        ``.attrs``: ``synthetic`` (True), ``note``, ``spec`` (arguments, population years used,
        ``cdr`` version).

    Examples
    --------
    >>> rec = generate_records(years=[2019], seed=0)
    >>> bool(rec["synthetic"].all()), bool(rec["case_id"].str.startswith("SYN").all())
    (True, True)
    """
    _check_args("generate_records", years, areas, seed, year_type, vintage)
    check.flag(review_lag, "review_lag", "generate_records")
    periods = _periods(years, year_type)
    as_of = periods["end"].max() if as_of is None else check.timestamp(as_of, "as_of", "generate_records").normalize()
    today = pd.Timestamp.today().normalize()
    if periods["end"].max() > today or as_of > today:
        raise ArgumentError(f"generate_records: periods up to {periods['end'].max():%Y-%m-%d} (as_of {as_of:%Y-%m-%d}) "
                            f"reach past today ({today:%Y-%m-%d}); dates of death or review would be in the future. "
                            f"Choose earlier years.")
    if as_of < periods["end"].max():
        raise ArgumentError(f"generate_records: as_of ({as_of:%Y-%m-%d}) is before the end of the last period "
                            f"({periods['end'].max():%Y-%m-%d}); give a later as_of or earlier years.")
    if isinstance(seed, np.random.Generator):
        streams = [(list(periods["period"]), seed)]      # one stream for all periods
    else:
        # One independent stream per period, keyed by (seed, year): the records of a year do not
        # depend on which other years are generated alongside it.
        entropy = np.random.SeedSequence(seed).entropy if seed is None else int(seed)
        streams = [([y], np.random.default_rng([entropy, int(y)])) for y in periods["period"]]
    drawn = [_draw_period_records(ys, periods, areas, g, year_type=year_type, vintage=vintage, as_of=as_of,
                                  review_lag=review_lag) for ys, g in streams]
    rec = pd.concat([d[0] for d in drawn], ignore_index=True)
    population_years = sorted({y for d in drawn for y in d[1]})

    # identifiers: sorted by LA, period, date, then a random key, so ids never depend on input order
    rec = rec.sort_values(["la_code", "period", "date_of_death", "_key"], ignore_index=True)
    seq = rec.groupby(["la_code", "period"]).cumcount() + 1
    rec["case_id"] = "SYN" + rec["period"].astype(str) + "-" + rec["la_code"] + "-" + seq.astype(str).str.zfill(4)
    rec["synthetic"] = True
    rec = rec[list(schema.RECORD_COLUMNS)]
    for col in ("case_id", "sex", "la_code", "category", "ethnicity"):
        rec[col] = rec[col].astype("str")
    rec = schema._add_derived(rec).sort_values("case_id", ignore_index=True)
    rec = _synthetic_fields.add_fields(rec, seed)   # optional fields of cdr.fields (issue 15)
    rec.attrs.update({
        "synthetic": True,
        "note": SYNTHETIC_NOTE,
        "spec": {"years": list(periods["period"]), "year_type": year_type, "review_lag": review_lag,
                 "vintage": vintage, "as_of": f"{as_of:%Y-%m-%d}",
                 "seed": seed if not isinstance(seed, np.random.Generator) else "Generator",
                 "population_years": population_years, **version_stamp()},
    })
    return rec


def _draw_period_records(years, periods, areas, rng, *, year_type, vintage, as_of, review_lag):
    """Records of the given periods drawn from one random stream (see :func:`generate_records`)."""
    periods = periods[periods["period"].isin(years)]
    counts = simulate_area_counts(years, areas, rng, year_type=year_type, vintage=vintage)
    reps = counts["deaths"].to_numpy()
    n = int(reps.sum())
    rec = counts.loc[counts.index.repeat(reps), ["la_code", "period", "sex", "age_band"]].reset_index(drop=True)

    # dates of death and ages
    per = periods.set_index("period")
    start = rec["period"].map(per["start"])
    length = (rec["period"].map(per["end"]) - start).dt.days.to_numpy() + 1
    dod = start + pd.to_timedelta(np.floor(rng.random(n) * length).astype(int), unit="D")
    rec["age_days"] = _draw_age_days(rec["age_band"].to_numpy(), rng)
    rec["date_of_death"] = dod.astype("datetime64[ns]")
    rec["date_of_birth"] = (rec["date_of_death"] - pd.to_timedelta(rec["age_days"], unit="D")).astype("datetime64[ns]")

    # deprivation, ethnicity, category
    shares_infant, shares_older = _decile_death_shares(vintage)
    infant = rec["age_band"].isin(["neonatal", "postneonatal"]).to_numpy()
    prob = np.where(infant[:, None], shares_infant.loc[rec["la_code"]].to_numpy(), shares_older.loc[rec["la_code"]].to_numpy())
    rec["imd_decile"] = pd.array(_draw_rows(prob, rng) + 1, dtype="Int64")
    eth_p = ethnicity_probabilities(vintage)
    rec["ethnicity"] = eth_p.columns.to_numpy(dtype=object)[_draw_rows(eth_p.loc[rec["la_code"]].to_numpy(), rng)]
    cat_p = (CATEGORY_SHARES / CATEGORY_SHARES.sum(axis=1).to_numpy()[:, None]).loc[rec["age_band"]].to_numpy()
    rec["category"] = np.asarray(_CATS, dtype=object)[_draw_rows(cat_p, rng)]

    # review, modifiable, domains
    lag = np.ceil(rng.gamma(REVIEW_LAG_SHAPE, REVIEW_LAG_MEAN_DAYS / REVIEW_LAG_SHAPE, size=n)).astype(int)
    review = rec["date_of_death"] + pd.to_timedelta(lag, unit="D")
    if review_lag:
        review = review.where(review <= as_of)
    else:
        review = review.where(review <= as_of, as_of)
    rec["review_completed"] = review.astype("datetime64[ns]")
    reviewed = rec["review_completed"].notna().to_numpy()
    u = rng.random(n)
    review_year = (review.dt.year - (review.dt.month < 4)).fillna(0).astype(int).to_numpy()
    k = pd.Series({y: _odds_scale(modifiable_share(y)) for y in np.unique(review_year)})
    base = rec["category"].map(MODIFIABLE_SHARES).to_numpy(float)
    odds = base / (1 - base) * k.loc[review_year].to_numpy()
    p_yes = odds / (1 + odds)
    insufficient = u < INSUFFICIENT_INFORMATION_SHARE
    yes = ~insufficient & (rng.random(n) < p_yes)
    modifiable = np.where(insufficient, "insufficient_information", np.where(yes, "yes", "no")).astype(object)
    rec["modifiable"] = pd.Series(np.where(reviewed, modifiable, None), dtype="str")
    domains = _draw_domains(rec["category"].to_numpy(), yes, insufficient, rng)
    for col, values in domains.items():
        rec[col] = pd.Series(np.where(reviewed, values, None), dtype="str")

    rec["_key"] = rng.random(n)  # tie-break for identifiers, drawn from this period's stream
    return rec, set(counts["population_year"])


@functools.lru_cache(maxsize=None)
def _ethnicity_table(vintage: int) -> pd.DataFrame:
    from cdr import data

    groups = list(data.ETHNIC_GROUPS)
    table = data.ethnic_group_shares(vintage).pivot(index="la_code", columns="ethnicity", values="child_share")[groups]
    la, shares = table.index.to_numpy(), table.to_numpy()
    w = reference.expected_deaths(vintage=vintage).set_index("la_code")["expected_deaths"].reindex(la).to_numpy(float)
    w = w / w.sum()
    unknown = ETHNICITY_SHARES["unknown"]
    target = np.array([ETHNICITY_SHARES[g] for g in groups]) / (1 - unknown)
    ratio = target / (w @ shares)
    for _ in range(200):   # iterative proportional fitting of the per-group ratios
        p = shares * ratio
        p /= p.sum(axis=1, keepdims=True)
        achieved = w @ p
        if np.abs(achieved - target).max() < 1e-12:
            break
        ratio *= target / achieved
    out = pd.DataFrame(p * (1 - unknown), index=pd.Index(la, name="la_code"), columns=groups)
    out["unknown"] = unknown
    out.attrs["death_population_ratio"] = dict(zip(groups, (ratio / ratio[groups.index("white")]).round(4)))
    return out


def ethnicity_probabilities(vintage: int = 2023) -> pd.DataFrame:
    """Probability of each ethnic group for a synthetic death in each LA (rows sum to 1).

    ``p[la, g] = (1 - u) * s[la, g] * r[g] / sum_h s[la, h] * r[h]`` and ``p[la, unknown] = u``, where
    ``s`` is the LA's estimated child share of the group (:func:`cdr.data.ethnic_group_shares`), ``u``
    the national share of unknown ethnicity and ``r`` one ratio per group, fitted by iterative
    proportional fitting so that ``sum_la w[la] * p[la, g]`` equals :data:`ETHNICITY_SHARES` for every
    group, ``w`` being the LA's share of England's expected deaths
    (:func:`cdr.reference.expected_deaths`). ``attrs["death_population_ratio"]`` holds ``r``
    relative to White (the implied death rate ratios by ethnic group).

    Parameters
    ----------
    vintage : {2023, 2021}
        Geography of the LA codes (index ``la_code``).

    Returns
    -------
    pandas.DataFrame
        Index ``la_code``; columns ``white``, ``mixed``, ``asian``, ``black``, ``other``, ``unknown``.

    Examples
    --------
    >>> p = ethnicity_probabilities()
    >>> bool(p.loc["E09000030", "white"] < 0.4 < p.loc["E06000052", "white"])   # Tower Hamlets vs Cornwall
    True
    """
    if isinstance(vintage, bool) or vintage not in (2021, 2023):
        raise ArgumentError(f"ethnicity_probabilities: 'vintage' must be 2021 or 2023 (upper-tier LAs of April 2021 "
                            f"or April 2023); got {vintage!r}. Use vintage=2023 for current boundaries.")
    return _ethnicity_table(int(vintage)).copy()


def _draw_rows(prob: np.ndarray, rng) -> np.ndarray:
    """One categorical draw per row of a probability matrix (vectorised inverse CDF)."""
    if len(prob) == 0:
        return np.zeros(0, dtype=int)
    cum = np.cumsum(prob, axis=1)
    cum[:, -1] = 1.0
    return (rng.random(len(prob))[:, None] > cum).sum(axis=1)


def _draw_age_days(bands: np.ndarray, rng) -> np.ndarray:
    n = len(bands)
    u = rng.random(n)
    out = np.zeros(n, dtype=np.int64)
    # neonatal: truncated geometric on 0..27
    r = _NEONATAL_RATIO
    neo = bands == "neonatal"
    out[neo] = np.floor(np.log1p(-u[neo] * (1 - r ** 28)) / np.log(r)).astype(int)
    # post-neonatal: truncated exponential on 28..364
    post = bands == "postneonatal"
    top = 1 - np.exp(-(365 - 28) / _POSTNEONATAL_MEAN)
    out[post] = 28 + np.floor(-_POSTNEONATAL_MEAN * np.log1p(-u[post] * top)).astype(int)
    for band in ("1-4", "5-9", "10-14", "15-17"):
        lo, hi = schema.AGE_BAND_DAYS[band]
        hi = min(hi, schema.MAX_AGE_DAYS)   # keep clear of the 18th birthday whatever the leap years
        m = bands == band
        out[m] = lo + np.floor(u[m] * (hi - lo)).astype(int)
    return out


def _decile_death_shares(vintage: int):
    """Per LA, the share of infant and of 1-17 deaths in each IMD decile (population share x gradient)."""
    dist = reference.imd_decile_distribution(vintage)
    pop = dist.pivot(index="la_code", columns="imd_decile", values="population_share")
    d = pop.columns.to_numpy()
    out = []
    for rr in (reference.infant_model().attrs["rr_per_imd_decile"], reference.RR_PER_IMD_DECILE_1_17):
        w = pop * rr ** (10 - d)
        out.append(w.div(w.sum(axis=1), axis=0))
    return out


def _draw_domains(categories, yes, insufficient, rng) -> dict:
    n = len(categories)
    cols = list(schema.DOMAINS)
    main = pd.Series(categories).map(MAIN_DOMAIN).to_numpy()
    natural = np.isin(categories, _NATURAL)
    judged = ~insufficient
    contributory = np.zeros((n, len(cols)), dtype=bool)
    for j, col in enumerate(cols):
        u = rng.random(n)
        contributory[:, j] = np.where(yes, (main == col) | (u < _OTHER_CONTRIBUTORY), judged & (u < _OTHER_CONTRIBUTORY_NO))
    child = cols.index("domain_child")
    contributory[:, child] |= judged & natural & (rng.random(n) < CHILD_DOMAIN_NATURAL)
    level_contrib = np.where(rng.random((n, len(cols))) < _SUFFICIENT_GIVEN_CONTRIBUTORY, "sufficient",
                             "may_have_contributed")
    other = np.asarray(["none", "unlikely", "not_available"], dtype=object)[
        _draw_rows(np.tile([0.55, 0.35, 0.10], (n * len(cols), 1)), rng).reshape(n, len(cols))]
    mostly_na = np.where(rng.random((n, len(cols))) < 0.8, "not_available", "none")
    levels = np.where(contributory, level_contrib, np.where(insufficient[:, None], mostly_na, other))
    return {col: levels[:, j].astype(object) for j, col in enumerate(cols)}
