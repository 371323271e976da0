"""The annual-report content of issue 15: optional fields, their synthetic values and the tables built on them.

Expected values come from the records themselves, counted here with pandas (not by cdr.report), from
published figures (ONS live births, the 15 % of children known to social care), from closed
forms (exact Poisson limits, weighted least squares for the SII) or from definitions (WHO birth
weight bands, IMD quintiles hold a fifth of England's neighbourhoods each).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import cdr
from cdr import fields
from cdr.report import _content, build_report
from cdr.report._bundle import TableSpec

YEAR = "2022-23"
START, END = pd.Timestamp("2022-04-01"), pd.Timestamp("2023-03-31")
CONTENT = ["deaths_by_expectedness", "joint_agency_response", "deaths_by_place_of_death", "deaths_by_ethnicity",
           "deaths_by_deprivation", "time_to_review", "infant_mortality", "learning_themes", "deaths_by_gestation",
           "deaths_by_birth_weight", "safeguarding", "inquest"]


@pytest.fixture(scope="module")
def records():
    return cdr.synthetic.generate_records(years=range(2020, 2024), seed=3)


@pytest.fixture(scope="module")
def report(records, tmp_path_factory):
    out = tmp_path_factory.mktemp("content") / "fp"
    rep = build_report(records, design="england_min60", footprint="auto", level="footprint", year=YEAR, out=out)
    return out, rep


@pytest.fixture(scope="module")
def focus(report, records):
    """The records of the footprint's deaths in the year, selected here by LA code and date."""
    _, rep = report
    las = rep.tables["deaths_by_area"]["area_code"].iloc[:-1].tolist()
    rec = records[records["la_code"].isin(las)]
    in_year = rec[(rec["date_of_death"] >= START) & (rec["date_of_death"] <= END)]
    return las, rec, in_year


# ---------------------------------------------------------------------------------------------- fields


def test_common_spellings_are_read_and_bad_values_become_not_recorded_without_dropping_the_death():
    raw = pd.DataFrame({"case_id": ["A1", "A2", "A3", "A4"], "date_of_death": ["2022-05-02"] * 4, "age_days": [3] * 4,
                        "sex": ["F"] * 4, "la_code": ["E06000001"] * 4, "category": ["Perinatal/neonatal event"] * 4,
                        "Expected death": ["Unexpected", "E", "", "perhaps"], "Place of death": ["NICU", "A&E", "own home", "moon"],
                        "gestation": ["23", "24-27", "41", "19"], "birth weight": ["650", "1499", "2500", "x"],
                        "JAR": ["Y", "no", "", "2"], "factor_themes": ["unsafe sleep;Smoking", "", "road_safety", "kites"]})
    with pytest.warns(fields.FieldValueWarning, match="not_recorded"):
        result = cdr.schema.validate_records(raw, mode="strict")
    rec, excl = result
    assert len(rec) == 4 and len(excl) == 0
    assert rec["death_expected"].tolist() == ["unexpected", "expected", "not_recorded", "not_recorded"]
    assert rec["place_of_death"].tolist() == ["neonatal_unit", "emergency_department", "home", "not_recorded"]
    assert rec["gestation_band"].tolist() == ["under_24", "24_27", "37_plus", "not_recorded"]
    assert rec["birth_weight_band"].tolist() == ["under_1000", "1000_1499", "2500_plus", "not_recorded"]
    assert rec["jar"].tolist() == ["yes", "no", "not_recorded", "not_recorded"]
    assert rec["factor_themes"].tolist() == ["smoking_in_pregnancy;unsafe_sleep", "", "road_safety", ""]
    issues = result.issues
    assert set(issues["case_id"]) == {"A4"}
    assert sorted(issues["field"]) == ["birth_weight_band", "death_expected", "factor_themes", "gestation_band", "jar",
                                       "place_of_death"]


def test_band_edges_follow_the_who_and_gestation_definitions():
    # WHO: low birth weight < 2,500 g, very low < 1,500 g, extremely low < 1,000 g; preterm < 37 weeks.
    assert fields.birth_weight_band([999, 1000, 1499, 1500, 2499, 2500]).tolist() == [
        "under_1000", "1000_1499", "1000_1499", "1500_2499", "1500_2499", "2500_plus"]
    assert fields.gestation_band([23.9, 24, 27.9, 28, 36.9, 37]).tolist() == [
        "under_24", "24_27", "24_27", "28_31", "32_36", "37_plus"]


def test_an_extra_theme_is_accepted_when_declared():
    raw = pd.DataFrame({"case_id": ["A"], "factor_themes": ["kites; Road safety"]})
    out, issues = fields.normalise_fields(raw, themes={"kites": "Kite flying"}, warn=False)
    assert out["factor_themes"].tolist() == ["road_safety;kites"] and issues.empty


# ------------------------------------------------------------------------------------------- synthetic


def test_synthetic_fields_are_valid_and_match_the_published_shares(records):
    with warnings.catch_warnings():
        warnings.simplefilter("error", fields.FieldValueWarning)
        back = cdr.schema.validate_records(records)
    assert back.issues.empty
    # published: 15 % of children who died were known to social care (NCMD, YE Mar 2023)
    share = (records["known_to_social_care"] == "yes").mean()
    assert 0.12 <= share <= 0.18
    # published CDOP reports: 24-33 % of deaths unexpected
    assert 0.24 <= (records["death_expected"] == "unexpected").mean() <= 0.33
    # a JAR only follows an unexpected death; themes only on completed reviews with modifiable factors
    assert not ((records["jar"] == "yes") & (records["death_expected"] == "expected")).any()
    themed = records["factor_themes"] != ""
    assert (records.loc[themed, "modifiable"] == "yes").all() and records.loc[themed, "reviewed"].all()
    assert (records.loc[~records["age_band"].isin(["neonatal", "postneonatal"]), "gestation_band"] == "not_recorded").all()


def test_synthetic_fields_are_seeded_and_a_year_does_not_depend_on_the_others(records):
    alone = cdr.synthetic.generate_records(years=range(2022, 2024), seed=3)   # same end, so the same as_of
    same = records[records["reporting_year_start"] == 2022].reset_index(drop=True)
    cols = ["case_id", "death_expected", "jar", "place_of_death", "factor_themes", "inquest"]
    alone = alone[alone["reporting_year_start"] == 2022].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone[cols], same[cols])


# ---------------------------------------------------------------------------------------------- report


def test_every_content_table_is_written(report):
    out, rep = report
    for name in CONTENT:
        assert (out / "tables" / f"{name}.csv").is_file(), name
        assert {"area_code", "area_name"} <= set(rep.tables[name].columns), name


def _shown(rep, name, col):
    t, m = rep.tables[name], rep.marks[name]
    return pd.to_numeric(t[col], errors="coerce").astype(float).where(m[col] == "")


def test_one_way_tables_agree_with_counts_of_the_records(report, focus):
    _, rep = report
    _, _, year = focus
    for name, field_name in (("deaths_by_place_of_death", "place_of_death"), ("inquest", "inquest")):
        t = rep.tables[name].set_index(field_name)
        shown = _shown(rep, name, "deaths").set_axis(t.index)
        truth = year[field_name].value_counts()
        assert shown["total"] == len(year)
        for level, v in shown.drop("total").dropna().items():
            assert v == truth.get(level, 0), (name, level)
    dep = rep.tables["deaths_by_deprivation"].set_index("imd_quintile")
    quint = np.ceil(year["imd_decile"].astype(float) / 2).astype("Int64").astype(str)
    for q, v in _shown(rep, "deaths_by_deprivation", "deaths").set_axis(dep.index).dropna().items():
        expected = len(year) if q == "total" else int((quint == q).sum()) if q != "unknown" else int(year["imd_decile"].isna().sum())
        assert v == expected, q
    sg = rep.tables["safeguarding"]
    for (f, lev), v in zip(sg[["field", "value"]].itertuples(index=False), _shown(rep, "safeguarding", "deaths")):
        if np.isfinite(v):
            assert v == (len(year) if f == "total" else int((year[f] == lev).sum()))


def test_expectedness_and_jar_cells_agree_with_the_records(report, focus):
    _, rep = report
    _, _, year = focus
    t = rep.tables["deaths_by_expectedness"]
    for i, group in enumerate(t["age_band"]):
        rows = year if group == "total" else year[year["age_band"].isin(group.split("+"))]
        for e in ("expected", "unexpected", "not_recorded"):
            v = _shown(rep, "deaths_by_expectedness", e).iloc[i]
            if np.isfinite(v):
                assert v == int((rows["death_expected"] == e).sum()), (group, e)
    unexp = year[year["death_expected"] == "unexpected"]
    j = rep.tables["joint_agency_response"]
    total = j[j["breakdown"] == "total"].index[0]
    shown = _shown(rep, "joint_agency_response", "unexpected_deaths")
    assert not np.isfinite(shown[total]) or shown[total] == len(unexp)
    jar_yes = _shown(rep, "joint_agency_response", "jar_yes")
    for i, (b, g) in enumerate(j[["breakdown", "group"]].itertuples(index=False)):
        if np.isfinite(jar_yes.iloc[i]) and b == "age_band":
            assert jar_yes.iloc[i] == int(((unexp["age_band"].isin(g.split("+"))) & (unexp["jar"] == "yes")).sum())


def test_time_to_review_agrees_with_the_dates(report, focus):
    _, rep = report
    las, rec, _ = focus
    done = rec[(rec["review_completed"] >= START) & (rec["review_completed"] <= END)]
    months = (done["review_completed"] - done["date_of_death"]).dt.days / (365.25 / 12)
    t = rep.tables["time_to_review"].set_index(["part", "group"])
    shown = _shown(rep, "time_to_review", "reviews").set_axis(t.index)
    expect = {"under_6_months": (months <= 6).sum(), "6_to_12_months": ((months > 6) & (months <= 12)).sum(),
              "over_12_months": (months > 12).sum(), "total": len(done)}
    for g, v in expect.items():
        if np.isfinite(shown[("completed", g)]):
            assert shown[("completed", g)] == v, g
    assert t.loc[("completed", "total"), "median_months"] == pytest.approx(np.median(months), abs=0.05)
    within12 = t.loc[("completed", "6_to_12_months"), "cumulative_percent"]
    if np.isfinite(within12):
        assert within12 == pytest.approx(100 * (months <= 12).mean(), abs=0.01)
    # the open backlog: reviews of deaths in the trend years up to the end of the period still pending
    pending = rec[(rec["date_of_death"] <= END) & rec["review_completed"].isna()]
    v = shown[("open_backlog", "total")]
    assert not np.isfinite(v) or v == len(pending)


def test_infant_mortality_uses_ons_births_and_exact_limits(report, focus):
    _, rep = report
    las, _, year = focus
    # ONS live births, calendar 2022, read here from the embedded file (2021 codes; the footprint's LAs)
    births = pd.read_csv("cdr/_data/ons_infant_deaths_registered_births_utla2021_2013_2022.csv", dtype={"la_code": str})
    t = rep.tables["infant_mortality"].set_index("age_band")
    b22 = births[(births["year"] == 2022) & births["la_code"].isin(las)]["live_births"].sum()
    if not set(las) & {"E06000063", "E06000064"}:   # Cumbria's split is apportioned, not a plain sum
        assert t.loc["infant", "live_births"] == pytest.approx(b22)
    n = int(year["age_band"].isin(["neonatal", "postneonatal"]).sum())
    assert t.loc["infant", "deaths"] == n
    assert t.loc["infant", "rate_per_1000"] == pytest.approx(1000 * n / t.loc["infant", "live_births"])
    if n < 10:   # Garwood exact limits
        lo, hi = stats.chi2.ppf(0.025, 2 * n) / 2, stats.chi2.ppf(0.975, 2 * n + 2) / 2
    else:        # Byar's approximation
        z = stats.norm.ppf(0.975)
        lo = n * (1 - 1 / (9 * n) - z / (3 * np.sqrt(n))) ** 3
        hi = (n + 1) * (1 - 1 / (9 * (n + 1)) + z / (3 * np.sqrt(n + 1))) ** 3
    scale = 1000 / t.loc["infant", "live_births"]
    assert t.loc["infant", "rate_per_1000_lower_95"] == pytest.approx(lo * scale, rel=1e-6)
    assert t.loc["infant", "rate_per_1000_upper_95"] == pytest.approx(hi * scale, rel=1e-6)
    e = t.loc["infant"]
    verdict = "better" if e["rate_per_1000_upper_95"] < e["england_rate_per_1000"] else (
        "worse" if e["rate_per_1000_lower_95"] > e["england_rate_per_1000"] else "similar")
    assert e["compared_with_england"] == verdict


def test_learning_themes_count_reviews_with_each_theme(report, focus):
    _, rep = report
    _, rec, _ = focus
    done = rec[(rec["review_completed"] >= START) & (rec["review_completed"] <= END)]
    t = rep.tables["learning_themes"]
    shown = _shown(rep, "learning_themes", "with_theme")
    for i, theme in enumerate(t["theme"]):
        if np.isfinite(shown.iloc[i]):
            assert shown.iloc[i] == done["factor_themes"].str.split(";").map(lambda s, k=theme: k in s).sum(), theme
    assert (t["reviews"] == len(done)).all()


def test_sii_agrees_with_a_weighted_least_squares_fit(report):
    _, rep = report
    t = rep.tables["deaths_by_deprivation"]
    body = t[t["imd_quintile"].isin(list("12345"))]
    total = t[t["imd_quintile"] == "total"].iloc[0]
    if not np.isfinite(total["sii"]):
        pytest.skip("a quintile rate is not published in this fixture")
    pop = body["population"].to_numpy(float)
    rank = (np.cumsum(pop) - pop / 2) / pop.sum()    # 0 = most deprived
    slope = np.polyfit(rank, body["rate_per_100000"].to_numpy(float), 1, w=np.sqrt(pop))[0]
    assert total["sii"] == pytest.approx(-slope, rel=1e-6)


def test_quintile_populations_put_a_fifth_of_england_in_each_quintile():
    # By construction each national IMD quintile holds a fifth of England's LSOAs; the approximation,
    # fitted LA by LA, should come back close to that when summed over England.
    pop = cdr.data.population_for_years([2022], by=()).rename(columns={"year": "period_key"})
    q = _content.quintile_populations(pop, pop["la_code"].unique(), 2022)
    shares = np.array(list(q.values())) / sum(q.values())
    assert sum(q.values()) == pytest.approx(pop["population"].sum())
    assert np.all(np.abs(shares - 0.2) < 0.03), shares   # measured: 19.7-20.5 % (LSOAs raked to exact fifths)


def test_no_rate_is_published_for_fewer_than_three_deaths(report):
    _, rep = report
    checked = 0
    for name, t in rep.tables.items():
        for col in [c for c in t.columns if (c.startswith("rate_per") or c.startswith("england_rate_per"))
                    and not c.endswith(("_lower_95", "_upper_95", "_flag"))]:
            count = "england_deaths" if col.startswith("england") else "deaths"
            shown = t[col].notna() & (rep.marks[name][col] == "")
            n = pd.to_numeric(t.loc[shown, count], errors="coerce")
            assert (n >= 3).all(), (name, col)
            checked += int(shown.sum())
    assert checked > 20


def test_a_zero_count_publishes_no_rate():
    spec = TableSpec("t", "t", pd.DataFrame({"area": ["a", "b", "c"]}), counts={"deaths": ["x", "y", "z"]},
                     values={"population": [1e5] * 3}, derived=[("rate", "rate", "deaths", "population")])
    table, marks = spec.render({"x": 0, "y": 2, "z": 5}, rate_fn=lambda c, p: (c / p * 1e5, c, c))
    assert table["rate"].isna().tolist() == [True, True, False] and marks["rate"].tolist() == ["[x]", "[x]", ""]


def test_the_html_states_the_rate_rules_and_the_audit_passes_with_the_new_tables(report):
    out, rep = report
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "no rate is calculated from fewer than 3 deaths" in html
    assert html.index("Rules for rates") < html.index("Infant, neonatal and post-neonatal deaths per 1,000")
    assert rep.manifest["disclosure"]["certificate"]["passed"]
    audited = {c["cell"] for c in rep.manifest["disclosure"]["cells"]}
    for name in CONTENT:
        ids = [i for col in rep.table_info[name]["cells"].values() for i in col if i is not None]
        assert ids and set(ids) <= audited, name


def test_an_independent_audit_of_the_written_tables_passes(report):
    from test_report import _rebuild_and_audit

    _rebuild_and_audit(*report)


def test_compare_with_england_follows_fingertips():
    got = _content.compare_with_england([10, 30, 18, np.nan], [19, 40, 31, 5], [20, 20, 20, 20])
    assert got.tolist() == ["better", "worse", "similar", "not compared"]


def test_records_without_the_optional_fields_still_report_and_skip_their_tables(records):
    core = records.drop(columns=list(fields.FIELDS))
    rep = build_report(core, level="region", region="E12000001", year=YEAR)
    assert rep.manifest["disclosure"]["certificate"]["passed"]
    for name in ("deaths_by_deprivation", "time_to_review", "infant_mortality"):   # need core fields only
        assert name in rep.tables
    for name in ("deaths_by_expectedness", "joint_agency_response", "learning_themes", "safeguarding", "inquest"):
        assert name not in rep.tables
