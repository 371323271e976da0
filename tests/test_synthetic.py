"""cdr.synthetic against published national figures (cdr/_data/reference), within sampling error."""
import numpy as np
import pandas as pd
import pytest

from cdr import data, schema
from cdr.synthetic import generate_records, simulate_area_counts

# ONS mid-year England 0-17 totals (PROVENANCE.md); years after 2022 use mid-2022.
ONS_0_17 = {2019: 12_023_568, 2020: 12_093_288, 2021: 11_761_656, 2022: 11_886_906, 2023: 11_886_906}
RATE = 29.3e-5        # NCMD child death rate, YE Mar 2022 (RCPCH), per child-year


@pytest.fixture(scope="module")
def records():
    return generate_records(years=range(2019, 2024), seed=0)


def _within(observed, expected, sd, k=4):
    return abs(observed - expected) <= k * sd


def test_annual_totals_match_the_published_rate_within_poisson_error(records):
    counts = records.groupby("reporting_year_start").size()
    for year, n in counts.items():
        mu = RATE * ONS_0_17[year]
        assert _within(n, mu, np.sqrt(mu)), (year, n, mu)
        assert 3_000 <= n <= 3_800   # published NCMD range 3,056-3,743 (2019-20 to 2024-25)
    rate = len(records) / sum(ONS_0_17.values()) * 1e5
    assert _within(rate, 29.3, np.sqrt(len(records)) / sum(ONS_0_17.values()) * 1e5)


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
    overall = (judged["modifiable"] == "yes").mean()
    assert 0.28 <= overall <= 0.39                      # published 28 % (2017-18) to 39 % (2022-23)
    p = 55 / 3595                                       # NHS Digital 2017-18
    assert _within((reviewed["modifiable"] == "insufficient_information").mean(), p, np.sqrt(p * (1 - p) / len(reviewed)))
    for category, expected in {"abuse_neglect": 0.65, "malignancy": 0.02, "perinatal_neonatal": 0.34,
                               "sudden_unexpected_unexplained": 2 / 3}.items():
        sub = judged[judged["category"] == category]
        sd = np.sqrt(expected * (1 - expected) / len(sub))
        assert _within((sub["modifiable"] == "yes").mean(), expected, sd), category


def test_domains_are_consistent_with_modifiable(records):
    contrib = pd.concat([schema.contributory(records[c]) for c in schema.DOMAINS], axis=1).any(axis=1)
    assert contrib[records["modifiable"] == "yes"].all()
    assert not contrib[records["modifiable"] == "no"].any()
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
    counts = simulate_area_counts(years=[2019, 2020, 2021], seed=0)
    mu, n = counts["expected_deaths"].sum(), counts["deaths"].sum()
    assert _within(n, mu, np.sqrt(mu)) and counts["synthetic"].all()


def test_a_year_is_the_same_whichever_other_years_are_generated():
    # each period has its own random stream keyed by (seed, year); same extract date, same pending reviews
    alone = generate_records(years=[2021], seed=5, as_of="2024-03-31")
    with_others = generate_records(years=range(2019, 2024), seed=5)
    pd.testing.assert_frame_equal(
        alone.reset_index(drop=True),
        with_others[with_others["reporting_year_start"] == 2021].reset_index(drop=True),
        check_dtype=False,
    )
