"""cdr.reference: targets table and the national rate model against published figures."""
import numpy as np
import pandas as pd
import pytest

from cdr import data, reference


def test_targets_are_sourced_or_marked_as_assumptions():
    t = reference.targets()
    assert set(t["kind"]) == {"published", "assumption"}
    published = t[t["kind"] == "published"]
    assert published["source_url"].str.startswith("http").all() and published["value"].notna().all()
    assumed = t[t["kind"] == "assumption"]
    assert assumed["source_url"].isna().all() and assumed["note"].str.startswith("ASSUMPTION").all()
    # Published values as read in cdr/_data/reference/national_figures*.md
    row = t.set_index(["target", "period"])["value"]
    assert row[("share_male", "YE 31 Mar 2020")] == 56.5
    assert row[("deaths_reviewed", "YE 31 Mar 2020")] == 2738
    assert row[("rr_per_imd_decile", "Apr 2019-Mar 2020")] == 1.08
    assert row[("deaths_0_17", "YE 31 Mar 2023")] == 3743


def test_national_rates_reproduce_the_published_shares():
    r = reference.national_rates()
    total = r["deaths"].sum()
    assert total == pytest.approx(29.3e-5 * 11_886_906, rel=1e-9)   # NCMD rate x ONS mid-2022 population
    assert r.loc[r["age_band"] == "neonatal", "deaths"].sum() / total == pytest.approx(0.42)
    assert r.loc[r["age_band"].isin(["neonatal", "postneonatal"]), "deaths"].sum() / total == pytest.approx(0.63)
    assert r.loc[r["sex"] == "male", "deaths"].sum() / total == pytest.approx(0.565)
    assert np.allclose(r["rate"] * r["population"], r["deaths"])
    older = r[~r["age_band"].isin(["neonatal", "postneonatal"])]
    rate_1_17 = older["deaths"].sum() / older["population"].sum() * 1e5
    assert abs(rate_1_17 - 11.2) < 1.5     # OHID Fingertips 1-17, 2021-23 (published check of the split)


def test_expected_deaths_total_and_gradient():
    e = reference.expected_deaths()
    assert len(e) == 153 and e["la_code"].is_unique
    assert e["expected_deaths"].sum() == pytest.approx(29.3e-5 * 11_886_906, rel=1e-9)
    detail = reference.expected_deaths_detail()
    mult = detail.groupby("la_code")["deprivation_multiplier"].first()
    areas = data.england_areas().set_index("la_code")
    ranks = areas.loc[mult.index, "imd_avg_rank"]
    assert (np.argsort(np.argsort(mult.to_numpy())) == np.argsort(np.argsort(ranks.to_numpy()))).all()
    assert 0.6 < mult.min() < mult.max() < 1.4


def test_subset_gets_the_same_numbers_as_england():
    full = reference.expected_deaths().set_index("la_code")["expected_deaths"]
    part = reference.expected_deaths(["E09000001", "E06000053"]).set_index("la_code")["expected_deaths"]
    pd.testing.assert_series_equal(part, full.loc[part.index])


def test_decile_distribution_is_nearly_uniform_nationally():
    # IMD deciles are tenths of England's LSOAs, so about 10 % of children live in each.
    t = reference.imd_decile_distribution()
    pop = data.england_areas().set_index("la_code")["child_population"]
    w = t["population_share"] * t["la_code"].map(pop)
    shares = w.groupby(t["imd_decile"]).sum() / w.sum()
    assert (abs(shares - 0.1) < 0.03).all()


def test_tables_by_la_and_region():
    la = reference.expected_deaths_table(level="la")
    region = reference.expected_deaths_table(level="region")
    assert len(la) == 153 and len(region) == 9
    assert region["child_population"].sum() == 11_886_906
    assert region["expected_deaths"].sum() == pytest.approx(la["expected_deaths"].sum())


def test_areas_of_the_2021_vintage_are_recognised():
    e21 = reference.expected_deaths(data.england_areas(2021))
    assert len(e21) == 152 and "E10000006" in set(e21["la_code"])     # Cumbria (2021)
    assert e21["expected_deaths"].sum() == pytest.approx(29.3e-5 * 11_886_906, rel=1e-9)
