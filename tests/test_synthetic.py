"""cdr.synthetic against published national figures (cdr/_data/reference), within sampling error."""
import numpy as np
import pandas as pd
import pytest

from cdr import data, schema
from cdr.synthetic import generate_records, simulate_area_counts

# NCMD deaths notified 0-17 by reporting year, as first published (cdr/_data/reference/national_figures*.md)
NCMD_DEATHS = {2019: 3347, 2020: 3068, 2021: 3452, 2022: 3743, 2023: 3577}


@pytest.fixture(scope="module")
def records():
    return generate_records(years=range(2019, 2024), seed=0)


def _within(observed, expected, sd, k=4):
    return abs(observed - expected) <= k * sd


def test_annual_totals_track_the_published_ncmd_series(records):
    counts = records.groupby("reporting_year_start").size()
    assert sorted(counts.index) == sorted(NCMD_DEATHS)
    for year, n in counts.items():
        # England's total is conditioned on the published count (acceptance: within 4 %)
        assert n == NCMD_DEATHS[year], (year, n)
    # the series falls in 2020-21 and peaks in 2022-23, as published
    assert counts[2020] < counts[2019] < counts[2021] < counts[2022]


def test_calendar_years_take_the_overlapping_reporting_years():
    counts = simulate_area_counts(years=[2021], year_type="calendar", seed=0)
    assert counts["expected_deaths"].sum() == pytest.approx(0.25 * 3068 + 0.75 * 3452)
    early = simulate_area_counts(years=[2016], seed=0)     # no NCMD figure: the model's level (3,449 in mid-2022)
    assert 3_300 < early["expected_deaths"].sum() < 3_600


@pytest.mark.parametrize("share, expected", [
    ("infant", 0.63),     # NCMD deprivation report 2019-20
    ("neonatal", 0.42),   # NCMD 2nd annual report
    ("male", 0.565),      # NCMD deprivation report 2019-20
])
def test_age_and_sex_shares_match_published_shares(records, share, expected):
    mask = {"infant": records["age_band"].isin(["neonatal", "postneonatal"]),
            "neonatal": records["age_band"] == "neonatal", "male": records["sex"] == "male"}[share]
    sd = np.sqrt(expected * (1 - expected) / len(records))
    assert _within(mask.mean(), expected, sd)


def test_white_share_matches_published_share(records):
    sd = np.sqrt(0.62 * 0.38 / len(records))
    assert _within((records["ethnicity"] == "white").mean(), 0.62, sd)


def test_modifiable_shares(records):
    reviewed = records[records["reviewed"]]
    judged = reviewed[reviewed["modifiable"] != "insufficient_information"]
    review_year = judged["review_completed"].dt.year - (judged["review_completed"].dt.month < 4)
    yes = judged["modifiable"] == "yes"
    # published share of completed reviews: 36 % YE Mar 2022, 39 % YE Mar 2023 (NCMD, secondary reports)
    for year, expected in {2021: 0.36, 2022: 0.39}.items():
        sub = yes[review_year == year]
        assert _within(sub.mean(), expected, np.sqrt(expected * (1 - expected) / len(sub))), (year, sub.mean())
    # acceptance: deaths of 2022-23 with a completed review, between 34 % and 44 %
    share_2022 = yes[judged["reporting_year_start"] == 2022].mean()
    assert 0.34 <= share_2022 <= 0.44
    # 48 % of reviews completed in 2024-25 (University of Bristol, Nov 2025)
    late = generate_records(years=[2023], seed=3, review_lag=False, as_of="2025-03-31")
    late = late[late["modifiable"] != "insufficient_information"]
    late_year = late["review_completed"].dt.year - (late["review_completed"].dt.month < 4)
    sub = late.loc[late_year == 2024, "modifiable"] == "yes"
    assert _within(sub.mean(), 0.48, np.sqrt(0.48 * 0.52 / len(sub)))
    p = 55 / 3595                                       # NHS Digital 2017-18
    assert _within((reviewed["modifiable"] == "insufficient_information").mean(), p, np.sqrt(p * (1 - p) / len(reviewed)))
    # published ordering of categories: abuse/neglect (65 %) and SUDI (two-thirds) high, malignancy (2 %) lowest
    by_cat = yes.groupby(judged["category"]).mean()
    assert by_cat.idxmin() == "malignancy" and by_cat["malignancy"] < 0.1
    assert by_cat["abuse_neglect"] > 0.6 and by_cat["sudden_unexpected_unexplained"] > 0.6


def test_deprivation_gradient_matches_ncmd(records):
    from cdr import reference
    dist = reference.imd_decile_distribution()
    pop = data.england_areas().set_index("la_code")["child_population"]
    people = (dist["population_share"] * dist["la_code"].map(pop)).groupby(dist["imd_decile"]).sum()
    deaths = records.groupby("imd_decile").size()
    rate = lambda ds: deaths.loc[ds].sum() / people.loc[ds].sum()    # noqa: E731
    # most vs least deprived fifth: 2.49 (YE Mar 2024) and 2.41 (YE Mar 2025), NCMD via RCPCH
    assert 2.2 <= rate([1, 2]) / rate([9, 10]) <= 2.7
    slope = np.polyfit(np.arange(1, 11), np.log(deaths.to_numpy() / people.to_numpy()), 1)[0]
    assert 1.07 <= np.exp(-slope) <= 1.13            # published 1.08 (1.07-1.10); infants steeper


def test_domains_are_consistent_with_modifiable(records):
    contrib = pd.concat([schema.contributory(records[c]) for c in schema.DOMAINS], axis=1).any(axis=1)
    assert contrib[records["modifiable"] == "yes"].all()
    # a natural death usually scores the child domain, modifiable or not
    natural = records["category"].isin(["malignancy", "chromosomal_genetic_congenital", "perinatal_neonatal",
                                        "chronic_medical", "acute_medical_surgical", "infection"])
    child = schema.contributory(records["domain_child"])
    assert child[natural & (records["modifiable"] == "yes")].mean() >= 0.8
    no = child[natural & (records["modifiable"] == "no")]
    assert _within(no.mean(), 0.85, np.sqrt(0.85 * 0.15 / len(no)))   # CHILD_DOMAIN_NATURAL (assumption)
    # non-natural, non-modifiable deaths rarely have a contributory factor
    assert contrib[~natural & (records["modifiable"] == "no")].mean() < 0.4
    pending = ~records["reviewed"]
    assert records.loc[pending, ["modifiable", *schema.DOMAINS]].isna().all().all()


def test_review_lag_leaves_the_latest_year_mostly_pending(records):
    reviewed = records.groupby("reporting_year_start")["reviewed"].mean()
    assert reviewed[2019] > 0.95 and reviewed[2023] < 0.6
    # Published: 2,738 of 3,347 deaths of 2019-20 reviewed (NCMD deprivation report); extract a year later.
    one = generate_records(years=[2019], seed=5, as_of="2021-03-31")
    assert abs(one["reviewed"].mean() - 2738 / 3347) < 0.08


def test_category_mix_is_plausible(records):
    top = records.groupby("age_band")["category"].agg(lambda s: s.value_counts().index[0])
    assert top["neonatal"] == "perinatal_neonatal"
    assert top["5-9"] == "malignancy" and top["10-14"] == "malignancy"
    assert top["15-17"] in ("trauma_external", "suicide_self_harm")
    assert not ((records["category"] == "suicide_self_harm") & (records["age_days"] < 3653)).any()
    perinatal = (records["category"] == "perinatal_neonatal").mean()
    assert 0.25 <= perinatal <= 0.40     # published: just over 1,000 of 3,271 reviews (YE Mar 2023)


def test_records_are_valid_marked_and_deterministic(records):
    again = generate_records(years=range(2019, 2024), seed=0)
    pd.testing.assert_frame_equal(records, again)
    assert records["synthetic"].all() and records.attrs["synthetic"]
    valid, excluded = schema.validate_records(records.drop(columns=list(schema.DERIVED_COLUMNS)))   # with the optional fields (issue 15)
    assert excluded.empty
    pd.testing.assert_frame_equal(valid, records)
    other = generate_records(years=[2019], seed=1)
    assert not other["case_id"].equals(records[records["reporting_year_start"] == 2019]["case_id"]) or \
        not other["date_of_death"].equals(records[records["reporting_year_start"] == 2019]["date_of_death"])


def test_output_does_not_depend_on_area_row_order():
    areas = data.england_areas().iloc[:20]
    a = generate_records(years=[2020], areas=areas, seed=7)
    b = generate_records(years=[2020], areas=areas.sample(frac=1, random_state=3), seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert set(a["la_code"]) <= set(areas["la_code"])


def test_calendar_years_and_no_review_lag():
    rec = generate_records(years=[2021], seed=2, year_type="calendar", review_lag=False,
                           areas=["E08000025", "E06000001"])
    assert set(rec["year"]) == {2021} and rec["reviewed"].all()
    assert rec["review_completed"].max() <= pd.Timestamp("2021-12-31")


def test_area_counts_are_poisson_around_their_means():
    counts = simulate_area_counts(years=[2016, 2017], seed=0)       # no published total: Poisson
    mu, n = counts["expected_deaths"].sum(), counts["deaths"].sum()
    assert _within(n, mu, np.sqrt(mu)) and counts["synthetic"].all()
    # published years: LA counts vary around their means as Poisson (chi2/df near 1)
    c = simulate_area_counts(years=range(2019, 2024), seed=0).groupby("la_code")[["expected_deaths", "deaths"]].sum()
    chi2 = float(((c["deaths"] - c["expected_deaths"]) ** 2 / c["expected_deaths"]).sum()) / len(c)
    assert 0.7 < chi2 < 1.35
    # an LA's counts do not depend on the other areas asked for
    one = simulate_area_counts(years=[2020], areas=["E08000025"], seed=4)
    full = simulate_area_counts(years=[2020], seed=4)
    assert one["deaths"].tolist() == full.loc[full["la_code"] == "E08000025", "deaths"].tolist()


def test_a_year_is_the_same_whichever_other_years_are_generated():
    # each period has its own random stream keyed by (seed, year); same extract date, same pending reviews
    alone = generate_records(years=[2021], seed=5, as_of="2024-03-31")
    with_others = generate_records(years=range(2019, 2024), seed=5)
    pd.testing.assert_frame_equal(
        alone.reset_index(drop=True),
        with_others[with_others["reporting_year_start"] == 2021].reset_index(drop=True),
        check_dtype=False,
    )
