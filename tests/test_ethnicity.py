"""Children by ethnic group per LA, ethnicity of synthetic deaths by area, and the report's rates by ethnic group.

References, all from outside the code under test: ONS 2011 Census published totals (QS201EW/DC2101EW
England figures, Cumbria's population, Tower Hamlets' and Newham's mix), the approximation formula
re-implemented here with pandas from the embedded source files, the national shares the synthetic
generator is calibrated to (cdr.synthetic.ETHNICITY_SHARES: 62 % White published by NCMD), binomial
sampling error, and Garwood/Byar confidence limits in closed form.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import cdr
from cdr.errors import CdrError

GROUPS = ["white", "mixed", "asian", "black", "other"]
RAW = "cdr/_data/census2011_ethnic_group_lad2011.csv"
AGE = "cdr/_data/census2011_ethnic_group_by_age_region.csv"
YEAR = "2022-23"
START, END = pd.Timestamp("2022-04-01"), pd.Timestamp("2023-03-31")
# DC2101EW, England, 2011 (published): all ages and children 0-17 (sum of 0-4, 5-7, 8-9, 10-14, 15, 16-17)
ENGLAND_ALL = {"white": 45_281_142, "mixed": 1_192_879, "asian": 4_143_403, "black": 1_846_614, "other": 548_418}
ENGLAND_CHILD = {"white": 8_903_313, "mixed": 590_017, "asian": 1_136_293, "black": 562_333, "other": 145_004}


def _expected_child_shares(code_col="utla23_code", vintage=2023):
    """The documented formula, re-implemented from the raw files (region ratios from DC2101EW)."""
    raw = pd.read_csv(RAW)
    by = raw.groupby(code_col)[["all_usual_residents", *GROUPS]].sum()
    age = pd.read_csv(AGE)
    allages = age[age["age_band"] == "all_ages"].set_index("area_code")[GROUPS]
    child = age[age["age_band"] != "all_ages"].groupby("area_code")[GROUPS].sum()
    ratio = (child.T / child.sum(axis=1)).T / (allages.T / allages.sum(axis=1)).T
    region = pd.read_csv(f"cdr/_data/utla{vintage}_lookup.csv").set_index("la_code")["region_code"]
    w = by[GROUPS].div(by["all_usual_residents"], axis=0) * ratio.loc[region.reindex(by.index)].to_numpy()
    return w.div(w.sum(axis=1), axis=0)


# ---------------------------------------------------------------------------------------------- data


def test_embedded_districts_add_up_to_the_published_england_totals():
    # The 326 districts (QS201EW) against DC2101EW's England row: two separately published tables.
    raw = pd.read_csv(RAW)
    assert len(raw) == 326 and raw["lad11_code"].is_unique
    assert raw["all_usual_residents"].sum() == 53_012_456
    for g, v in ENGLAND_ALL.items():
        assert raw[g].sum() == v, g
    assert (raw[GROUPS].sum(axis=1) == raw["all_usual_residents"]).all()


def test_published_local_figures_are_reproduced():
    s = cdr.data.ethnic_group_shares().set_index(["la_code", "ethnicity"])
    # ONS 2011 Census key statistics: Tower Hamlets 41.1 % Asian, 45.2 % White; Newham 29.0 % White
    assert s.loc[("E09000030", "asian"), "share_all_ages"] == pytest.approx(0.411, abs=0.0005)
    assert s.loc[("E09000030", "white"), "share_all_ages"] == pytest.approx(0.452, abs=0.0005)
    assert s.loc[("E09000025", "white"), "share_all_ages"] == pytest.approx(0.290, abs=0.0005)
    # Cumbria, 2011 Census usual residents 499,858: Cumberland + Westmorland and Furness in 2023
    r23 = s.xs("white", level="ethnicity")["residents_2011"]
    r21 = cdr.data.ethnic_group_shares(2021).set_index(["la_code", "ethnicity"]).xs("white", level="ethnicity")["residents_2011"]
    assert r23["E06000063"] + r23["E06000064"] == r21["E10000006"] == 499_858


def test_regions_add_up_to_england_and_to_their_districts():
    # DC2101EW regions against DC2101EW England (every age band) and against QS201EW districts (all ages)
    age = pd.read_csv(AGE)
    cols = ["all_usual_residents", *GROUPS]
    eng = age[age["area_code"] == "E92000001"].set_index("age_band")[cols]
    reg = age[age["area_code"] != "E92000001"]
    assert reg["area_code"].nunique() == 9
    pd.testing.assert_frame_equal(reg.groupby("age_band")[cols].sum().loc[eng.index], eng)
    assert eng.loc["all_ages", GROUPS].to_dict() == ENGLAND_ALL
    assert eng.drop(index="all_ages")[GROUPS].sum().to_dict() == ENGLAND_CHILD
    raw = pd.read_csv(RAW)
    region = pd.read_csv("cdr/_data/utla2023_lookup.csv").set_index("la_code")["region_code"]
    districts = raw.groupby(raw["utla23_code"].map(region))[cols].sum()
    pd.testing.assert_frame_equal(districts, reg[reg["age_band"] == "all_ages"].set_index("area_code")[cols],
                                  check_names=False)
    assert (age[GROUPS].sum(axis=1) == age["all_usual_residents"]).all()


@pytest.mark.parametrize("vintage, col", [(2023, "utla23_code"), (2021, "utla21_code")])
def test_child_shares_follow_the_documented_formula_and_cover_every_la(vintage, col):
    s = cdr.data.ethnic_group_shares(vintage).pivot(index="la_code", columns="ethnicity", values="child_share")
    assert sorted(s.index) == sorted(cdr.data.la_codes(vintage))
    expected = _expected_child_shares(col, vintage).reindex(s.index)
    np.testing.assert_allclose(s[GROUPS].to_numpy(), expected[GROUPS].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(s[GROUPS].sum(axis=1), 1.0, rtol=1e-12)


def test_child_population_by_ethnicity_splits_each_las_children_exactly():
    pop = cdr.data.child_population_by_ethnicity(year=2022)
    mye = cdr.data.child_population(years=[2022]).groupby("la_code")["population"].sum()
    per_la = pop.groupby("la_code")["population"].sum()
    np.testing.assert_allclose(per_la.reindex(mye.index), mye, rtol=1e-12)
    assert per_la.sum() == pytest.approx(11_886_906)      # ONS mid-2022, England 0-17
    assert set(pop["method"]) == {"census2011_share_x_mye"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cdr.errors.DataVintageWarning)
        late = cdr.data.child_population_by_ethnicity(year=2024)
    assert set(late["population_year"]) == {2022} and set(late["year"]) == {2024}


@pytest.mark.parametrize("kwargs", [{"year": "2022"}, {"year": 2022.5}, {"vintage": 2019}])
def test_bad_arguments_raise_one_clear_error(kwargs):
    with pytest.raises(CdrError) as err:
        cdr.data.child_population_by_ethnicity(**kwargs)
    assert isinstance(err.value, ValueError)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------- synthetic


def test_ethnicity_probabilities_keep_the_national_mix_and_the_la_odds():
    p = cdr.synthetic.ethnicity_probabilities()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    w = cdr.reference.expected_deaths().set_index("la_code")["expected_deaths"].reindex(p.index)
    national = (p.mul(w, axis=0).sum() / w.sum())
    for g, v in cdr.synthetic.ETHNICITY_SHARES.items():
        assert national[g] == pytest.approx(v, abs=1e-9), g
    # model structure: odds of a group against White = LA child odds x one ratio per group
    s = _expected_child_shares().reindex(p.index)
    for g in ["mixed", "asian", "black", "other"]:
        ratio = (p[g] / p["white"]) / (s[g] / s["white"])
        assert ratio.std() / ratio.mean() < 1e-9, g


@pytest.fixture(scope="module")
def records():
    return cdr.synthetic.generate_records(years=range(2019, 2024), seed=0)


def test_synthetic_national_mix_is_within_sampling_error(records):
    n = len(records)
    share = records["ethnicity"].value_counts(normalize=True)
    for g, v in cdr.synthetic.ETHNICITY_SHARES.items():
        se = np.sqrt(v * (1 - v) / n)
        assert abs(share.get(g, 0.0) - v) < 4 * se, (g, share.get(g), v)


def test_london_deaths_are_far_less_white_than_england_and_areas_follow_the_census(records):
    london = cdr.data.lookup().query("region_code == 'E12000007'")["la_code"]
    lon = records[records["la_code"].isin(london)]
    white = (lon["ethnicity"] == "white").mean()
    # Census 2011 (DC2101EW): London's children 46.6 % White (all ages 59.8 %); deaths more diverse still
    raw = pd.read_csv(RAW)
    census_white = raw.loc[raw["utla23_code"].isin(london), "white"].sum() / raw.loc[raw["utla23_code"].isin(london),
                                                                                       "all_usual_residents"].sum()
    assert census_white == pytest.approx(0.598, abs=0.001)
    age = pd.read_csv(AGE).query("area_code == 'E12000007' and age_band != 'all_ages'")
    assert age["white"].sum() / age["all_usual_residents"].sum() == pytest.approx(0.466, abs=0.001)
    assert white < 0.40 < 0.62 and white < 0.466 < census_white
    # across LAs, the share of White deaths ranks like the Census share of White residents
    by_la = records.groupby("la_code")["ethnicity"].agg(lambda e: (e == "white").mean())
    big = records["la_code"].value_counts()
    big = big[big >= 60].index
    census = raw.groupby("utla23_code")[["white", "all_usual_residents"]].sum()
    census = (census["white"] / census["all_usual_residents"]).reindex(big)
    rho = stats.spearmanr(by_la.reindex(big), census).statistic
    assert rho > 0.8, rho


# ---------------------------------------------------------------------------------------------- report


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    recs = cdr.synthetic.generate_records(years=range(2020, 2024), seed=3)
    out = tmp_path_factory.mktemp("eth") / "fp"
    rep = cdr.report.build_report(recs, design="england_min60", footprint="F032", level="footprint", year=YEAR, out=out)
    return recs, out, rep


def _hand_population(las, year=2022):
    mye = cdr.data.child_population(years=[year]).groupby("la_code")["population"].sum()
    share = _expected_child_shares()
    return {g: float((share.loc[list(las), g] * mye.reindex(list(las))).sum()) for g in GROUPS}


def test_ethnicity_table_counts_agree_with_the_records(report):
    recs, _, rep = report
    las = rep.tables["deaths_by_area"]["area_code"].iloc[:-1].tolist()
    year = recs[recs["la_code"].isin(las) & recs["date_of_death"].between(START, END)]
    t, m = rep.tables["deaths_by_ethnicity"].set_index("ethnicity"), rep.marks["deaths_by_ethnicity"]
    shown = pd.to_numeric(t["deaths"], errors="coerce").where((m["deaths"] == "").to_numpy())
    truth = year["ethnicity"].value_counts()
    assert shown["total"] == len(year)
    for g, v in shown.drop("total").dropna().items():
        assert v == truth.get(g, 0), g
    assert shown.drop("total").notna().sum() >= 3


def test_ethnicity_rates_agree_with_a_hand_computation(report):
    _, out, rep = report
    t = rep.tables["deaths_by_ethnicity"].set_index("ethnicity")
    m = rep.marks["deaths_by_ethnicity"].set_axis(t.index)
    las = rep.tables["deaths_by_area"]["area_code"].iloc[:-1].tolist()
    pop = _hand_population(las)
    eng = _hand_population(cdr.data.la_codes())
    z = stats.norm.ppf(0.975)
    checked = 0
    for g in GROUPS:
        assert t.loc[g, "population"] == pytest.approx(pop[g], rel=1e-9)
        assert t.loc[g, "england_population"] == pytest.approx(eng[g], rel=1e-9)
        if m.loc[g, "rate_per_100000"] != "":
            continue
        n = float(t.loc[g, "deaths"])
        assert n >= 3
        if n < 10:   # Garwood exact limits
            lo, hi = stats.chi2.ppf(0.025, 2 * n) / 2, stats.chi2.ppf(0.975, 2 * n + 2) / 2
        else:        # Byar's approximation
            lo = n * (1 - 1 / (9 * n) - z / (3 * np.sqrt(n))) ** 3
            hi = (n + 1) * (1 - 1 / (9 * (n + 1)) + z / (3 * np.sqrt(n + 1))) ** 3
        scale = 100_000 / pop[g]
        assert t.loc[g, "rate_per_100000"] == pytest.approx(n * scale, rel=1e-9)
        assert t.loc[g, "rate_per_100000_lower_95"] == pytest.approx(lo * scale, rel=1e-6)
        assert t.loc[g, "rate_per_100000_upper_95"] == pytest.approx(hi * scale, rel=1e-6)
        assert t.loc[g, "rate_per_100000_flag"] == ("[u]" if n < 20 else "")
        e = 100_000 * float(t.loc[g, "england_deaths"]) / eng[g]
        assert t.loc[g, "england_rate_per_100000"] == pytest.approx(e, rel=1e-9)
        verdict = ("better" if t.loc[g, "rate_per_100000_upper_95"] < e else
                   "worse" if t.loc[g, "rate_per_100000_lower_95"] > e else "similar")
        assert t.loc[g, "compared_with_england"] == verdict
        checked += 1
    assert checked >= 2
    # no rate for "not known" (no denominator); the written CSV carries the same rows
    assert m.loc["unknown", "rate_per_100000"] in ("[x]", "[c]")
    written = pd.read_csv(out / "tables" / "deaths_by_ethnicity.csv", dtype=str)
    assert written["ethnicity"].tolist() == [*GROUPS, "unknown", "total"]


def test_ethnicity_table_states_the_approximation_and_is_audited(report):
    _, out, rep = report
    notes = " ".join(rep.table_info["deaths_by_ethnicity"]["notes"])
    assert "APPROXIMATED" in notes and "2011 Census" in notes and "Rules for rates" in notes
    assert rep.manifest["disclosure"]["certificate"]["passed"]
    audited = {c["cell"] for c in rep.manifest["disclosure"]["cells"]}
    ids = [i for col in rep.table_info["deaths_by_ethnicity"]["cells"].values() for i in col if i is not None]
    assert ids and set(ids) <= audited
    assert (out / "figures" / "ethnicity_rates.png").is_file()
