"""cdr.aggregate: zero-filling, additivity LA -> footprint -> region -> nation, pooling, denominators,
unmatched records, standardisation and the deprivation gradient, against hand computations."""
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import cdr.data
from cdr.aggregate import KEYS, LEVELS, NATION_CODE, aggregate, deprivation_gradient
from cdr.errors import CdrError, DataVintageWarning
from cdr.rates import CHILD_STANDARD, dsr

LAS = cdr.data.la_codes(2023)
CATS = ["infection", "malignancy", "trauma_external"]


def make_records(n=2500, seed=0, years=(2019, 2022)):
    """Random records over reporting years 2019-20 .. 2021-22 (SYNTHETIC test fixture)."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(f"{years[0]}-04-01")
    span = (pd.Timestamp(f"{years[1]}-04-01") - start).days
    return pd.DataFrame({
        "case_id": [f"C{i:05d}" for i in range(n)],
        "la_code": rng.choice(LAS, n),
        "date_of_death": start + pd.to_timedelta(rng.integers(0, span, n), unit="D"),
        "age_days": rng.integers(0, 6574, n),
        "sex": rng.choice(["male", "female"], n),
        "category": rng.choice(CATS, n),
        "imd_decile": rng.integers(1, 11, n),
        "synthetic": True,
    })


@pytest.fixture(scope="module")
def records():
    return make_records()


@pytest.fixture(scope="module")
def design():
    # 153 LAs into footprints of about five consecutive codes (an arbitrary but complete design).
    return pd.Series([f"FP{i // 5:02d}" for i in range(len(LAS))], index=LAS)


def tiny():
    recs = pd.DataFrame({"la_code": ["E06000001", "E06000001", "E06000002"], "reporting_year_start": [2019, 2020, 2020]})
    pop = pd.DataFrame({"la_code": ["E06000001", "E06000002", "E06000003"] * 2, "year": [2019] * 3 + [2020] * 3,
                        "population": [20_000, 30_000, 10_000, 21_000, 31_000, 11_000]})
    return recs, pop


def test_units_without_deaths_appear_with_zero(records):
    recs, pop = tiny()
    out = aggregate(recs, pop)
    row = out[(out.la_code == "E06000003") & (out.period_end == 2019)].iloc[0]
    assert row.deaths == 0 and row.value == 0 and row.lower_95 == 0 and row.upper_95 > 0
    assert len(out) == 3 * 2  # every LA x year


@pytest.mark.parametrize("by", [[], ["sex"], ["age_band"], ["category"], ["sex", "age_band"]])
def test_counts_add_up_from_la_to_footprint_to_region_to_nation(records, design, by):
    totals = {}
    for level in LEVELS:
        out = aggregate(records, design=design if level == "footprint" else None, level=level, by=by)
        totals[level] = out.groupby([*by, "period"], observed=True)["deaths"].sum()
        assert out[KEYS[level]].notna().all()
    for level in LEVELS[1:]:
        pd.testing.assert_series_equal(totals["la"], totals[level])
    assert totals["nation"].sum() == len(records)


def test_national_row_is_england(records):
    out = aggregate(records, level="nation")
    assert set(out["nation_code"]) == {NATION_CODE}


def test_pooled_denominator_is_the_sum_of_annual_populations():
    recs, pop = tiny()
    out = aggregate(recs, pop, pool=2)
    row = out.set_index("la_code").loc["E06000002"]
    assert row["population"] == 30_000 + 31_000 and row["deaths"] == 1
    assert row["period"] == "2019-20 to 2020-21"
    assert row["value"] == pytest.approx(1 / 61_000 * 1e5, rel=1e-12)
    assert row["upper_95"] == pytest.approx(stats.chi2.ppf(0.975, 4) / 2 / 61_000 * 1e5, rel=1e-9)


def test_rolling_three_year_windows_match_hand_sums(records):
    annual = aggregate(records, level="region", pool=1)
    pooled = aggregate(records, level="region", pool=3)
    assert pooled["period"].unique().tolist() == ["2019-20 to 2021-22"]
    hand = annual.groupby("region_code")[["deaths", "population"]].sum()
    got = pooled.set_index("region_code")[["deaths", "population"]]
    pd.testing.assert_frame_equal(got.sort_index(), hand.sort_index(), check_dtype=False)


def test_default_population_matches_embedded_estimates(records):
    out = aggregate(records, level="la", by=["sex"])
    pop = cdr.data.child_population(years=[2020])
    hand = pop[(pop.la_code == LAS[0]) & (pop.sex == "female")]["population"].sum()
    row = out[(out.la_code == LAS[0]) & (out.sex == "female") & (out.period_end == 2020)].iloc[0]
    assert row["population"] == hand


def test_age_specific_rates_use_age_zero_population_for_infants(records):
    out = aggregate(records, level="nation", by=["age_band"])
    pop = cdr.data.child_population(years=[2019])
    age0 = pop[pop.age == 0]["population"].sum()
    rows = out[out.period_end == 2019].set_index("age_band")
    assert rows.loc["neonatal", "population"] == age0 == rows.loc["postneonatal", "population"]
    assert rows.loc["1-4", "population"] == pop[pop.age.between(1, 4)]["population"].sum()
    assert list(rows.index) == ["neonatal", "postneonatal", "1-4", "5-9", "10-14", "15-17"]


def test_age_standardised_rates_match_dobson_by_hand(records):
    out = aggregate(records, level="nation", standardise=True, pool=3)
    recs = records.copy()
    days = recs["age_days"]
    band = np.select([days < 365, days / 365.25 < 5, days / 365.25 < 10, days / 365.25 < 15], ["0", "1-4", "5-9", "10-14"], "15-17")
    o = pd.Series(band).value_counts().reindex(CHILD_STANDARD.index).to_numpy()
    pop = cdr.data.child_population(years=[2019, 2020, 2021])
    age_band = np.select([pop.age < 1, pop.age < 5, pop.age < 10, pop.age < 15], ["0", "1-4", "5-9", "10-14"], "15-17")
    n = pop.groupby(age_band)["population"].sum().reindex(CHILD_STANDARD.index).to_numpy()
    ref = dsr(o, n, standard=CHILD_STANDARD)
    assert out.loc[0, "value"] == pytest.approx(ref["value"], rel=1e-9)
    assert out.loc[0, "upper_99_8"] == pytest.approx(ref["upper_99_8"], rel=1e-9)
    assert out.loc[0, "deaths"] == len(records) and out.loc[0, "method"] == "dobson"


def test_unknown_la_code_raises_naming_it(records):
    bad = pd.concat([records, records.head(2).assign(la_code="E06999999")], ignore_index=True)
    with pytest.raises(CdrError, match="E06999999"):
        aggregate(bad)


def test_unknown_la_code_can_be_excluded_and_is_reported(records):
    bad = pd.concat([records, records.head(2).assign(la_code="E06999999")], ignore_index=True)
    with pytest.warns(UserWarning, match="cannot be placed"):
        out = aggregate(bad, level="nation", unmatched="exclude")
    ex = out.attrs["exclusions"]
    assert ex == [{"la_code": "E06999999", "n_records": 2, "reason": "la_code has no population"}]
    assert out["deaths"].sum() == len(records)


def test_la_missing_from_the_design_is_reported(records, design):
    with pytest.raises(CdrError, match="not in the footprint design"):
        aggregate(records, design=design.iloc[1:], level="footprint")


def test_design_object_with_labels_is_accepted(records, design):
    class Design:
        labels = design

    a = aggregate(records, design=Design(), level="footprint")
    b = aggregate(records, design=design.rename_axis("la_code").reset_index(name="footprint_id"), level="footprint")
    pd.testing.assert_frame_equal(a, b)


def test_synthetic_flag_is_carried(records):
    assert aggregate(records, level="nation").attrs["synthetic"] is True
    recs, pop = tiny()
    assert aggregate(recs, pop).attrs["synthetic"] is False


def test_carried_forward_population_is_flagged():
    recs = make_records(200, years=(2022, 2024))
    with pytest.warns(DataVintageWarning):
        out = aggregate(recs, level="nation")
    assert out.set_index("period_end")["carried_forward"].to_dict() == {2022: False, 2023: True}


def test_calendar_years(records):
    out = aggregate(records, level="nation", year_type="calendar")
    assert out["period"].tolist() == ["2019", "2020", "2021", "2022"]
    assert out["deaths"].sum() == len(records)


def test_rates_by_record_deprivation_need_a_population_by_quintile(records):
    with pytest.raises(CdrError, match="imd_quintile"):
        aggregate(records, by=["imd_quintile"])


def test_deprivation_gradient_by_la_quintile(records):
    res = deprivation_gradient(records, pool=3, reps=500)
    assert res.rates["imd_quintile"].tolist() == [1, 2, 3, 4, 5]
    assert res.rates["deaths"].sum() == len(records)
    assert res.sii["statistic"].tolist() == ["sii", "rii"] and res.rates.attrs["synthetic"]
    assert "SYNTHETIC" in str(res.summary())


def test_deprivation_gradient_from_record_quintiles_with_user_population():
    rng = np.random.default_rng(3)
    q = rng.choice([1, 2, 3, 4, 5], 900, p=[0.3, 0.25, 0.2, 0.15, 0.1])
    recs = pd.DataFrame({"la_code": "E06000001", "reporting_year_start": 2020, "imd_decile": 2 * q})
    pop = pd.DataFrame({"la_code": "E06000001", "year": 2020, "imd_quintile": [1, 2, 3, 4, 5], "population": [1e5] * 5})
    res = deprivation_gradient(recs, pop, source="record", reps=500)
    rates = res.rates.set_index("imd_quintile")["value"]
    assert rates.loc[1] == pytest.approx((q == 1).sum() / 1e5 * 1e5)
    assert res.sii.set_index("statistic").loc["sii", "value"] > 0  # more deaths in more deprived


def test_input_records_are_not_modified(records):
    before = records.copy()
    aggregate(records, by=["age_band"])
    pd.testing.assert_frame_equal(records, before)


def test_generated_synthetic_records_add_up_if_available(design):
    synthetic = pytest.importorskip("cdr.synthetic", reason="cdr.synthetic not written yet")
    if not hasattr(synthetic, "generate_records"):
        pytest.skip("cdr.synthetic.generate_records not available yet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recs = synthetic.generate_records(years=range(2019, 2022), seed=0)
        la = aggregate(recs, by=["category"], unmatched="exclude")
        nation = aggregate(recs, level="nation", by=["category"], unmatched="exclude")
    assert la.groupby(["category", "period"])["deaths"].sum().tolist() == \
        nation.groupby(["category", "period"])["deaths"].sum().tolist()
    assert nation.attrs["synthetic"] is True


def test_aggregate_outputs_can_be_concatenated_and_merged(records):
    # pandas compares attrs when combining frames; a DataFrame in attrs used to make this raise
    regions = aggregate(records, level="region")
    nation = aggregate(records, level="nation")
    both = pd.concat([regions, nation], ignore_index=True)
    assert len(both) == len(regions) + len(nation)
    merged = regions.merge(nation[["period", "deaths"]], on="period", suffixes=("", "_nation"))
    assert (merged.groupby("period")["deaths"].sum() == merged.groupby("period")["deaths_nation"].first()).all()


@pytest.mark.parametrize("column", ["year", "reporting_year_start"])
def test_time_columns_are_refused_in_by(records, column):
    # Issue 14: by=["year"] gave a year-by-period cross; time is the output's period_start/period_end.
    with pytest.raises(CdrError, match=r"period_start.*pool=1") as info:
        aggregate(records, level="nation", by=[column])
    assert isinstance(info.value, ValueError)
