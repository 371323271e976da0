"""Partnership-only records (issue 12): comparators from published figures, optional analyses.

A synthetic partnership (Wakefield, Kirklees, Calderdale) holds only its own records. References
are independent of the code under test: the published figures are checked against the sourced
notes (``cdr/_data/reference/*.md``), counts against a direct count of the records, funnel limits
against the normal approximation, and the trend against a statsmodels GLM fitted here.
"""
from __future__ import annotations

import json
import pathlib
import re

import numpy as np
import pandas as pd
import pytest

from cdr import published
from cdr.errors import CdrError
from cdr.report import build_report
from cdr.report._coverage import NEGLIGIBLE_SHARE, resolve_coverage
from cdr.synthetic import generate_records

WKC = ["E08000036", "E08000034", "E08000033"]   # Wakefield, Kirklees, Calderdale
REF = pathlib.Path(published.__file__).parent / "_data" / "reference"


@pytest.fixture(scope="module")
def all_records():
    return generate_records(years=range(2019, 2024), seed=0)


@pytest.fixture(scope="module")
def wkc(all_records):
    return all_records[all_records["la_code"].isin(WKC)].reset_index(drop=True)


@pytest.fixture(scope="module")
def design():
    return pd.DataFrame({"la_code": WKC, "footprint_id": "WKC"})


@pytest.fixture(scope="module")
def report(wkc, design, tmp_path_factory):
    out = tmp_path_factory.mktemp("wkc")
    return build_report(wkc, design=design, footprint="WKC", year="2022-23", out=out)


# ---------------------------------------------------------------- cdr.published

def _notes_text():
    text = (REF / "national_figures.md").read_text(encoding="utf-8") + \
        (REF / "national_figures_addendum.md").read_text(encoding="utf-8")
    return text.replace("**", "")


def test_every_published_figure_is_in_the_sourced_notes():
    """No figure invented: each value appears in the compiled notes, with its source URL."""
    text = _notes_text()
    table = published.published_figures(geography=None, latest_only=False)
    assert len(table) >= 40
    for r in table.itertuples():
        v = float(r.value)
        forms = {f"{v:,.0f}", f"{v:.0f}"} if v == int(v) else {f"{v:.1f}"}
        assert any(re.search(r"(?<![\d.,])" + re.escape(f) + r"(?![\d])", text) for f in forms), (r.measure, r.period, v)
        host = re.sub(r"^https?://(www\.)?", "", r.source_url).split("/")[0]
        assert host in text, r.source_url
        assert r.source and int(r.source_year) >= 2021


def test_published_england_deaths_by_year_match_the_notes():
    # the latest figures of the addendum's headline table (section 2.1)
    expect = {2019: 3414, 2020: 3056, 2021: 3454, 2022: 3743, 2023: 3577, 2024: 3492}
    got = {y: published.comparator("deaths", y)["value"] for y in expect}
    assert got == expect
    assert published.comparator("rate_per_100000", 2022)["value"] == 31.8
    assert published.comparator("rate_per_100000", 2019) is None      # not published: no comparator


def test_no_region_figures_are_published():
    assert published.published_figures(geography=None).query("geography_code != 'E92000001'").empty
    assert published.comparator("deaths", 2022, geography="E12000003") is None


def test_unknown_measure_is_a_clear_error():
    with pytest.raises(CdrError, match=r"'measure' must be one of 'deaths', .*got 'death'\. Did you mean 'deaths'\?"):
        published.published_figures("death")


# ---------------------------------------------------------------- coverage

def test_coverage_auto_partial_and_full(all_records):
    from cdr.data import england_areas

    areas = pd.DataFrame(england_areas(2023)[["la_code", "la_name", "child_population"]])
    part = resolve_coverage("auto", pd.Series(WKC), areas)
    assert part.partial and part.las == frozenset(WKC)
    full = resolve_coverage("auto", all_records["la_code"], areas)
    missing = areas[~areas["la_code"].isin(set(all_records["la_code"]))]
    assert missing["child_population"].sum() / areas["child_population"].sum() <= NEGLIGIBLE_SHARE
    assert not full.partial
    named = resolve_coverage("wakefield , Kirklees,E08000033", pd.Series(WKC), areas)
    assert named.las == frozenset(WKC)
    with pytest.raises(CdrError, match="did you mean 'Wakefield'"):
        resolve_coverage(["Wakefeld"], pd.Series(WKC), areas)


# ---------------------------------------------------------------- the partnership's report

def test_partnership_counts_every_own_death(report, wkc):
    dod = pd.to_datetime(wkc["date_of_death"])
    n = int(((dod >= "2022-04-01") & (dod <= "2023-03-31")).sum())
    head = report.published("headline")
    assert head["area_code"].tolist() == ["WKC"]          # no England or region row computed from partial records
    assert int(head["deaths"].iloc[0]) == n


def test_england_comparator_is_the_published_ncmd_figure(report):
    comp = report.tables["comparators"]
    eng = comp[(comp["area_code"] == "E92000001") & (comp["breakdown"] == "all")].set_index("measure")
    assert eng.at["deaths", "value"] == 3743                   # NCMD, deaths in the year ending March 2023
    assert 1000 <= eng.at["deaths", "value"] < 10000           # England in the thousands
    assert eng.at["rate_per_100000", "value"] == 31.8
    assert eng.at["deaths", "source_year"] == "2023" and eng.at["deaths", "source_url"].startswith("https://")
    rgn = comp[comp["area_code"] == "E12000003"]
    assert len(rgn) and rgn["value"].isna().all()              # no published regional figure: left out
    assert (report.marks["comparators"].loc[rgn.index, "value"] == "[x]").all()
    assert "no figure for named regions" in rgn["note"].iloc[0]
    assert report.manifest["coverage"]["comparators_from_published_figures"] == ["Yorkshire and The Humber", "England"]
    # breakdown tables carry no England column computed from the records
    for name in ("deaths_by_age_band", "deaths_by_sex", "deaths_by_category"):
        assert not any(c.startswith("england") for c in report.tables[name].columns)


def test_trend_england_columns_are_published_figures(report):
    t = report.tables["trend"].set_index("period")
    assert t.at["2022-23", "england_deaths_published"] == 3743
    assert t.at["2019-20", "england_deaths_published"] == 3414
    assert np.isnan(t.at["2019-20", "england_rate_per_100000_published"])   # no rate published for 2019-20


def test_funnel_compares_with_the_published_national_rate(report, wkc):
    f = report.tables["funnel"]
    assert f["area_code"].tolist() == ["WKC"]                 # other footprints are not shown as 0 deaths
    assert report.manifest["coverage"]["funnel_england_rate"]["value"] == 31.8
    pop = float(f["population"].iloc[0])
    expected = 31.8e-5 * pop
    # exact Poisson limits are close to the normal approximation at ~70 expected deaths
    approx_hi = (expected + 1.959964 * np.sqrt(expected)) / pop * 1e5
    approx_lo = (expected - 1.959964 * np.sqrt(expected)) / pop * 1e5
    assert abs(float(f["funnel_upper_95"].iloc[0]) - approx_hi) < 1.0
    assert abs(float(f["funnel_lower_95"].iloc[0]) - approx_lo) < 1.0
    rate = float(f["rate_per_100000"].iloc[0])
    assert approx_lo < rate < approx_hi and f["position"].iloc[0] == "within 95% limits"


def test_bundle_on_disk_names_sources_and_left_out_analyses(report):
    out = pathlib.Path(report.files["manifest.json"]).parent
    comp = pd.read_csv(out / "tables" / "comparators.csv")
    assert {"source", "source_year", "source_url"} <= set(comp.columns)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["coverage"]["partial"] is True and manifest["coverage"]["n_las"] == 3
    assert "NCMD" in report.html and "factor model" in report.html.lower()
    # one footprint = one cluster: the model is left out, never published degenerate
    assert "factor_model" not in report.tables
    assert any("cluster" in x["reason"] for x in manifest["left_out"] if x["analysis"].startswith("factor model"))


def test_short_trend_across_2021_gets_a_rebasing_note(report):
    t = report.tables["trend"]
    years = t["period_start"].dropna().astype(int)
    assert years.min() < 2021 <= years.max() and len(years) == 4   # the spec asks for 5 years: no model
    assert "population rebasing" in report.manifest["trend"]["text"]


def test_trend_level_shift_matches_an_independent_glm(wkc, design):
    import statsmodels.api as sm

    rep = build_report(wkc, design=design, footprint="WKC", year="2023-24")
    info = rep.manifest["trend"]
    assert info["population_break"] is True and "level shift from 2021" in info["text"]
    t = rep.tables["trend"]
    body = t[t["period_start"].notna()]
    year = body["period_start"].astype(float).to_numpy()
    X = np.column_stack([np.ones_like(year), year - year.mean(), (year >= 2021).astype(float)])
    fit = sm.GLM(body["deaths"].astype(float).to_numpy(), X, family=sm.families.Poisson(),
                 offset=np.log(body["population"].astype(float).to_numpy())).fit()
    if info["apc"]["family"] == "poisson":
        assert info["apc"]["apc"] == pytest.approx(100 * np.expm1(fit.params[1]), rel=1e-6)


# ---------------------------------------------------------------- reports build, with notes

def test_report_builds_without_imd(wkc, design):
    rep = build_report(wkc.drop(columns=["imd_decile"]), design=design, footprint="WKC", year="2022-23")
    reasons = {x["analysis"]: x["reason"] for x in rep.manifest["left_out"]}
    assert "imd_decile" in reasons["deprivation tables"]
    assert "imd_decile" in reasons["factor model (odds ratios)"]
    assert "deaths_by_deprivation" not in rep.tables and "headline" in rep.tables
    assert "Left out: deprivation tables" in rep.html


def test_report_builds_with_no_completed_reviews(wkc, design):
    pending = wkc.assign(review_completed=pd.NaT, modifiable=pd.NA, domain_child=pd.NA, domain_social=pd.NA,
                         domain_physical=pd.NA, domain_service=pd.NA)
    rep = build_report(pending, design=design, footprint="WKC", year="2022-23")
    reasons = {x["analysis"]: x["reason"] for x in rep.manifest["left_out"]}
    assert "no completed reviews" in reasons["factor model (odds ratios)"]
    assert int(rep.tables["headline"]["pending"].iloc[0]) == int(rep.tables["headline"]["deaths"].iloc[0])


def test_report_builds_for_a_single_la_partnership(all_records):
    leeds = all_records[all_records["la_code"] == "E08000035"].reset_index(drop=True)
    rep = build_report(leeds, design=pd.DataFrame({"la_code": ["E08000035"], "footprint_id": "LEEDS"}),
                       footprint="LEEDS", year="2022-23")
    assert rep.published("headline")["area_code"].tolist() == ["LEEDS"]
    eng = rep.tables["comparators"].query("area_code == 'E92000001' and measure == 'deaths'")
    assert eng["value"].iloc[0] == 3743
    assert "factor_model" not in rep.tables


def test_too_few_events_per_parameter_is_left_out(wkc, design):
    rep = build_report(wkc, design=design, footprint="WKC", year="2022-23", spec={"factors": {"cluster": "none"}})
    reasons = {x["analysis"]: x["reason"] for x in rep.manifest["left_out"]}
    judged = wkc[wkc["review_completed"].notna() & wkc["modifiable"].isin(["yes", "no"])
                 & (pd.to_datetime(wkc["date_of_death"]) < "2023-04-01")]
    smaller = int(min((judged["modifiable"] == "yes").sum(), (judged["modifiable"] == "no").sum()))
    assert smaller / 10 < 16                  # fewer than 10 events for each of the formula's ~16 parameters
    assert "events per parameter" in reasons["factor model (odds ratios)"]


def test_degenerate_fit_is_never_published():
    from cdr.report._factors import _degenerate

    class Fake:
        info = {"converged": True, "n_obs": 4000, "n_events": 1500}

    ors = pd.DataFrame({"term": ["a"], "odds_ratio": [0.886], "lower_95": [0.886], "upper_95": [0.886]})
    assert "zero-width" in _degenerate(Fake(), ors, "lower_95", "upper_95", 10)
    ok = ors.assign(lower_95=0.7, upper_95=1.1)
    assert _degenerate(Fake(), ok, "lower_95", "upper_95", 10) is None
    Fake.info = {"converged": False, "n_obs": 4000, "n_events": 1500}
    assert "converge" in _degenerate(Fake(), ok, "lower_95", "upper_95", 10)
    Fake.info = {"converged": True, "n_obs": 4000, "n_events": 1500, "problems": ["perfect separation"],
                 "remedy_applied": False}
    assert "separation" in _degenerate(Fake(), ok, "lower_95", "upper_95", 10)
    Fake.info = {"converged": True, "n_obs": 100, "n_events": 30}      # 30 events / 1 parameter: fine
    assert _degenerate(Fake(), ok, "lower_95", "upper_95", 10) is None
    assert "events per parameter" in _degenerate(Fake(), pd.concat([ok] * 4), "lower_95", "upper_95", 10)


def test_region_report_from_partial_records_is_a_clear_error(wkc):
    with pytest.raises(CdrError, match="cover 3 of England's 153 LAs.*--coverage all"):
        build_report(wkc, level="region", region="E12000003", year="2022-23")


def test_declared_coverage_all_keeps_records_as_england(wkc, design):
    rep = build_report(wkc, design=design, footprint="WKC", year="2022-23", coverage="all")
    assert rep.published("headline")["area_code"].tolist() == ["WKC", "E12000003", "E92000001"]
    assert "comparators" not in rep.tables


def test_cli_report_for_partnership_records(wkc, tmp_path, capsys):
    from cdr.cli import main

    src = tmp_path / "wkc.csv"
    wkc.to_csv(src, index=False)
    code = main(["report", "--records", str(src), "--design", "cdop_2019_real", "--footprint", "auto",
                 "--year", "2022-23", "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0 and "Wakefield, Kirklees and Calderdale" in out
    assert "comparators from published figures: Yorkshire and The Humber, England" in out
    comp = pd.read_csv(tmp_path / "out" / "tables" / "comparators.csv")
    assert float(comp.query("area_code == 'E92000001' and measure == 'deaths'")["value"].iloc[0]) == 3743
    code = main(["report", "--records", str(src), "--design", "cdop_2019_real", "--footprint", "auto",
                 "--year", "2022-23", "--coverage", "Wakefield,Kirklees,Calderdal", "--out", str(tmp_path / "o2")])
    err = capsys.readouterr().err
    assert code != 0 and "did you mean 'Calderdale'" in err and "Traceback" not in err


def test_model_fitted_on_partial_records_is_titled_by_its_data(all_records):
    from cdr.data import england_areas

    areas = england_areas(2023)
    yh = areas.loc[areas["region_code"] == "E12000003", "la_code"]
    recs = all_records[all_records["la_code"].isin(yh)].reset_index(drop=True)
    rep = build_report(recs, level="region", region="E12000003", year="2022-23",
                       spec={"factors": {"cluster": "la"}})
    info = rep.manifest["factor_model"]
    assert "error" not in info and info["n_clusters"] == len(yh) >= 10
    title = rep.table_info["factor_model"]["title"]
    assert title.startswith("Odds ratios for modifiable factors, the records supplied (the LAs of Yorkshire and The Humber)")
    # England is not covered: its comparator is the published figure, not the region's records
    assert rep.published("headline")["area_code"].tolist() == ["E12000003"]
    assert float(rep.tables["comparators"].query("measure == 'deaths'")["value"].iloc[0]) == 3743
    ors = rep.tables["factor_model"]
    shown = ors["odds_ratio"].notna()
    assert (ors.loc[shown, "odds_ratio_upper_95"] > ors.loc[shown, "odds_ratio_lower_95"]).all()   # no zero-width interval


def test_spec_coverage_and_model_minimums_are_validated():
    from cdr.errors import SpecError
    from cdr.models import load_spec

    spec = load_spec({"coverage": {"las": ["Wakefield", "Kirklees"]}, "factors": {"min_events_per_parameter": 20}})
    assert spec["coverage"]["las"] == ["Wakefield", "Kirklees"] and spec["factors"]["min_events_per_parameter"] == 20
    assert load_spec("annual")["coverage"]["las"] == "auto"
    assert load_spec("annual")["factors"]["min_events_per_parameter"] == 10
    with pytest.raises(SpecError, match="coverage.las"):
        load_spec({"coverage": {"las": "some"}})
