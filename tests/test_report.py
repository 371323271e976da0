"""End-to-end tests of the annual statistics bundle (cdr.report, `cdr report`) on synthetic records."""
from __future__ import annotations

import html.parser
import json
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

import cdr
from cdr.errors import CdrError, RecordValidationError
from cdr.report import build_report, parse_period

YEAR = "2022-23"
THRESHOLD = 5


@pytest.fixture(scope="module")
def records(synthetic_records_2019_2023):
    return synthetic_records_2019_2023


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, records, hand_made_design):
    root = tmp_path_factory.mktemp("report")
    records.to_csv(root / "records.csv", index=False)
    hand_made_design.to_csv(root / "design.csv", index=False)
    return root


@pytest.fixture(scope="module")
def footprint_report(workdir):
    from cdr.cli import main

    out = workdir / "fp"
    code = main(["report", "--records", str(workdir / "records.csv"), "--design", str(workdir / "design.csv"),
                 "--footprint", "auto", "--year", YEAR, "--out", str(out)])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def england_report(workdir, records):
    out = workdir / "england"
    report = build_report(records, design=workdir / "design.csv", level="nation", year=YEAR, out=out)
    return out, report


BUNDLE_FILES = ["report.html", "tables.xlsx", "manifest.json", "tables/headline.csv", "tables/funnel.csv",
                "tables/trend.csv", "tables/category_by_age_band.csv", "figures/map.png", "figures/funnel.png",
                "figures/trend.png"]


def _manifest(out):
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("which", ["footprint", "england"])
def test_bundle_has_every_file(which, footprint_report, england_report):
    out = footprint_report if which == "footprint" else england_report[0]
    missing = [f for f in BUNDLE_FILES if not (out / f).is_file()]
    assert missing == []
    manifest = _manifest(out)
    for name, info in manifest["tables"].items():
        assert (out / info["csv"]).is_file(), name
    for fig in manifest["figures"]:
        assert (out / fig).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("which", ["footprint", "england"])
def test_manifest_reconciles_record_counts(which, footprint_report, england_report, records):
    out = footprint_report if which == "footprint" else england_report[0]
    rec = _manifest(out)["records"]
    assert rec["input"] == len(records)
    assert rec["input"] == rec["excluded_invalid"] + rec["in_period"] + rec["earlier_periods"] + rec["later_periods"]
    # independent count of deaths in the CDR year 1 April 2022 - 31 March 2023
    dod = pd.to_datetime(records["date_of_death"])
    assert rec["in_period"] == int(((dod >= "2022-04-01") & (dod <= "2023-03-31")).sum())


def test_manifest_records_inputs_spec_version_and_certificate(footprint_report):
    m = _manifest(footprint_report)
    assert [i["role"] for i in m["inputs"]] == ["records", "design"]
    assert all(len(i["sha256"]) == 64 for i in m["inputs"])
    assert m["library"]["cdr_version"] == cdr.__version__
    assert m["disclosure"]["certificate_result"] == "pass"
    assert m["disclosure"]["threshold"] == THRESHOLD
    assert m["synthetic"] is True
    assert m["design"]["auto_rule"].startswith("with footprint='auto' the first")


def test_england_headline_agrees_with_an_independent_count(england_report, records):
    _, report = england_report
    dod = pd.to_datetime(records["date_of_death"])
    in_year = records[(dod >= "2022-04-01") & (dod <= "2023-03-31")]
    head = report.tables["headline"].iloc[0]
    assert int(head["deaths"]) == len(in_year)
    assert int(head["pending"]) == int(in_year["review_completed"].isna().sum())
    pop = cdr.data.child_population(years=[2022])["population"].sum()
    assert head["rate_per_100000"] == pytest.approx(len(in_year) / pop * 1e5, rel=1e-9)


class _Cells(html.parser.HTMLParser):
    """Text of every <td class="... count ..."> in the page."""

    def __init__(self):
        super().__init__()
        self.values, self._in = [], False

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class") or ""
        self._in = tag == "td" and "count" in cls.split()

    def handle_data(self, data):
        if self._in:
            self.values.append(data.strip())
            self._in = False


def _small(values):
    nums = pd.to_numeric(pd.Series([str(v).replace(",", "") for v in values], dtype=object), errors="coerce")
    return sorted(set(nums[(nums >= 1) & (nums < THRESHOLD)].tolist()))


@pytest.mark.parametrize("which", ["footprint", "england"])
def test_no_published_count_is_small(which, footprint_report, england_report):
    out = footprint_report if which == "footprint" else england_report[0]
    manifest = _manifest(out)
    n_counts = 0
    sheets = pd.read_excel(out / "tables.xlsx", sheet_name=None)
    for name, info in manifest["tables"].items():
        csv = pd.read_csv(out / info["csv"], dtype=str)
        sheet = sheets[name[:31]]
        for col in info["count_columns"]:
            n_counts += len(csv)
            assert _small(csv[col]) == [], f"{name}.csv column {col}"
            assert _small(sheet[col]) == [], f"tables.xlsx sheet {name} column {col}"
    parser = _Cells()
    parser.feed((out / "report.html").read_text(encoding="utf-8"))
    assert len(parser.values) == n_counts
    assert _small(parser.values) == []
    assert "[c]" in parser.values  # the fixture has small numbers, so something was suppressed


def test_suppressed_cells_reach_every_output(footprint_report):
    manifest = _manifest(footprint_report)
    sup = {c["cell"] for c in manifest["disclosure"]["suppressed_cells"]}
    assert {c["reason"] for c in manifest["disclosure"]["suppressed_cells"]} <= {"primary", "secondary"}
    headline = pd.read_csv(footprint_report / "tables" / "deaths_by_area.csv", dtype=str)
    hidden = headline["deaths"].eq("[c]").sum()
    assert hidden == sum(c.startswith("deaths|la:") and c.endswith(f"|{YEAR}|") for c in sup)


def test_pending_reviews_are_shown(footprint_report):
    head = pd.read_csv(footprint_report / "tables" / "headline.csv", dtype=str)
    assert "pending" in head.columns
    page = (footprint_report / "report.html").read_text(encoding="utf-8")
    assert "reviews pending" in page


@pytest.mark.parametrize("which", ["footprint", "england"])
def test_synthetic_banner_and_attribution(which, footprint_report, england_report):
    out = footprint_report if which == "footprint" else england_report[0]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="synthetic-banner"' in page and "SYNTHETIC DATA" in page
    assert "Open Government Licence" in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from the network
    notes = pd.read_excel(out / "tables.xlsx", sheet_name="notes")
    assert notes["note"].str.contains("SYNTHETIC DATA").any()


def test_reporting_and_calendar_years():
    assert parse_period("2022-23").start == pd.Timestamp("2022-04-01")
    assert parse_period("2022-23").end == pd.Timestamp("2023-03-31")
    assert parse_period("2022", calendar=True).end == pd.Timestamp("2022-12-31")
    with pytest.raises(CdrError, match="following year"):
        parse_period("2022-24")
    with pytest.raises(CdrError, match="calendar"):
        parse_period("2022-23", calendar=True)


def test_unknown_footprint_is_a_clear_error(records, workdir):
    with pytest.raises(CdrError, match=r"unknown footprint 'NOPE'.*footprint_id"):
        build_report(records, design=workdir / "design.csv", footprint="NOPE", year=YEAR)


def test_year_without_data_is_a_clear_error(records, workdir):
    with pytest.raises(CdrError, match=r"no records with a date of death in 2012-13.*cover 2019-20"):
        build_report(records, design=workdir / "design.csv", footprint="auto", year="2012-13")


def test_invalid_records_are_refused_and_nothing_written(records, workdir, tmp_path):
    bad = records.head(50).copy()
    bad.loc[bad.index[3], "la_code"] = "E06999999"
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(RecordValidationError, match="E06999999"):
        build_report(path, design=workdir / "design.csv", footprint="auto", year=YEAR, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_reports_errors_without_traceback(workdir, capsys):
    from cdr.cli import main

    code = main(["report", "--records", str(workdir / "missing.csv"), "--design", str(workdir / "design.csv"),
                 "--footprint", "auto", "--year", YEAR, "--out", str(workdir / "never")])
    assert code == 2
    assert "records file not found" in capsys.readouterr().err


def test_unknown_region_is_a_clear_error(records):
    with pytest.raises(CdrError, match="unknown region 'E12999999'"):
        build_report(records, level="region", region="E12999999", year=YEAR)


# ------------------------------------------------------------------------- browser
_CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)

_PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = document.images, out = [];
  for (var i = 0; i < imgs.length; i++) {
    out.push(imgs[i].id + ':' + (imgs[i].complete ? imgs[i].naturalWidth : -1));
  }
  var p = document.createElement('pre'); p.id = 'probe'; p.textContent = out.join(';');
  document.body.appendChild(p);
});
</script></body>"""


@pytest.mark.browser
@pytest.mark.skipif(_CHROMIUM is None, reason="no Chromium binary found (install the 'chromium' system package)")
def test_report_opens_in_headless_chromium_and_every_figure_renders(footprint_report, tmp_path):
    page = (footprint_report / "report.html").read_text(encoding="utf-8")
    n_images = page.count("<img ")
    probed = tmp_path / "probe.html"
    probed.write_text(page.replace("</body>", _PROBE), encoding="utf-8")
    cmd = [_CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--no-first-run", "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
           "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    assert 'id="probe"' in dom, "page did not finish loading"
    probe = dom.split('id="probe">', 1)[1].split("</pre>", 1)[0]
    widths = dict(item.rsplit(":", 1) for item in probe.split(";") if item)
    assert len(widths) == n_images >= 9
    assert all(int(w) > 100 for w in widths.values()), widths


def _rebuild_and_audit(out, report):
    # Re-read what was written (CSV), map every count back to its cell, add the unpublished parts
    # (pieces of published totals that no table shows: unknowns >= 0, kind "unpublished"), and
    # attack it with cdr.disclosure.audit using the bundle's equations.
    from cdr.disclosure import audit

    published = {}
    for name, info in report.table_info.items():
        csv = pd.read_csv(out / "tables" / f"{name}.csv", dtype=str)
        for col, ids in info["cells"].items():
            for text, cid in zip(csv[col], ids):
                value = np.nan if text == "[c]" else float(text)
                assert published.setdefault(cid, value) is value or np.isnan(value) == np.isnan(published[cid])
    truth = report.cells.set_index("cell")
    parts = {c["cell"]: c["published"] for c in _manifest(out)["disclosure"]["cells"] if c.get("unpublished")}
    assert set(parts) == set(truth.index[truth["unpublished"]])
    assert all(v is None for v in parts.values())   # never shown, zeros included (no previous release here)
    published.update({c: (np.nan if v is None else float(v)) for c, v in parts.items()})
    cells = pd.DataFrame({"cell": list(published), "value": list(published.values())})
    cells["kind"] = np.where(cells["cell"].isin(parts), "unpublished", "cell")
    cells["primary"] = truth.loc[cells["cell"], "primary"].to_numpy() | truth.loc[cells["cell"], "value"].between(
        1, THRESHOLD - 1).to_numpy()
    # every published count is the true count
    shown = cells["value"].notna()
    assert (cells.loc[shown, "value"].to_numpy() == truth.loc[cells.loc[shown, "cell"], "value"].to_numpy()).all()
    eqs = [(t, p) for t, p in report.equations if t in published and all(x in published for x in p)]
    assert len(eqs) == len(report.equations)
    result = audit(cells, eqs, threshold=THRESHOLD)
    # an unpublished part of 5 or more may be derivable (e.g. England minus the partnership): not a small count
    large_part = result["cell"].isin(parts) & ~result["primary"]
    assert (result.loc[~large_part, "status"] == "protected").all(), result[(result["status"] != "protected") & ~large_part]
    assert result.attrs["group_sums"].empty and result.attrs["passed"]


def test_published_tables_rebuild_a_bundle_that_an_independent_audit_passes(england_report):
    _rebuild_and_audit(*england_report)


def test_a_footprint_bundle_with_unpublished_parts_passes_an_independent_audit(crossing):
    root, report, _ = crossing
    _rebuild_and_audit(root / "out", report)


@pytest.mark.parametrize("calendar,year", [(False, "2021-22")])   # calendar: the CLI test below
def test_region_report_in_reporting_and_calendar_years(records, calendar, year):
    report = build_report(records, level="region", region="E12000007", year=year, calendar=calendar)
    dod = pd.to_datetime(records["date_of_death"])
    start, end = ("2021-01-01", "2021-12-31") if calendar else ("2021-04-01", "2022-03-31")
    in_year = records[(dod >= start) & (dod <= end)]
    london = set(cdr.data.england_areas().query("region_code == 'E12000007'")["la_code"])
    head = report.tables["headline"]
    assert int(head["deaths"].iloc[0]) == int(in_year["la_code"].isin(london).sum())
    assert int(head["deaths"].iloc[1]) == len(in_year)  # England beside London
    assert report.manifest["period"]["convention"] == ("calendar" if calendar else "reporting")
    assert report.manifest["disclosure"]["certificate_result"] == "pass"


def test_spec_threshold_is_used_and_recorded(records, workdir):
    # A stricter rule (counts below 10 suppressed) from the spec: no published count is 1-9.
    report = build_report(records, level="nation", year=YEAR, spec={"suppression": {"threshold": 10}})
    assert report.manifest["spec"]["threshold"] == 10
    assert report.manifest["spec"]["content"]["suppression"]["threshold"] == 10
    for name, info in report.table_info.items():
        for col in info["count_columns"]:
            values = pd.to_numeric(report.tables[name][col], errors="coerce")
            assert not values.between(1, 9).any(), (name, col)
    assert report.manifest["disclosure"]["certificate_result"] == "pass"


def test_footprint_id_alone_uses_the_catalog_design(records):
    report = build_report(records, footprint="auto", year=YEAR)
    assert report.manifest["design"]["source"].startswith("catalog design 'england_min60'")
    first = sorted(cdr.footprints.load_design("england_min60").labels.unique())[0]
    assert report.unit == first


def test_lenient_mode_lists_excluded_records_privately_and_reconciles(records, workdir):
    bad = records.copy()
    bad.loc[bad.index[:3], "la_code"] = "E99999999"   # an unusable core field excludes a record (a bad category would not)
    report = build_report(bad, design=workdir / "design.csv", footprint="auto", year=YEAR, mode="lenient")
    rec = report.manifest["records"]
    # 3 < threshold: not published, nor any total that would give it away by subtraction
    assert rec["excluded_invalid"] == "[c]" and rec["input"] in (len(records), "[c]")
    assert not (isinstance(rec["input"], int) and isinstance(rec["valid"], int))
    assert rec["reconciles"] and rec["excluded_by_field"] == {"la_code": "[c]"}
    exact = report.private["record_counts"]                              # exact, for the user, never published
    assert exact["excluded"] == 3 and sum(exact.values()) == len(records)
    assert report.private["exclusions"]["case_id"].tolist() == records["case_id"].iloc[:3].tolist()


def test_a_bundle_failing_the_audit_is_refused_naming_the_cells(records, workdir, tmp_path, monkeypatch):
    import cdr.report._build as build
    from cdr.errors import DisclosureError
    from cdr.report._protect import Protection

    def leaky(cells, equations, **kwargs):  # publish everything: every small count is exposed
        out = cells.assign(published=cells["value"].astype(float), primary=False, secondary=False)
        small = cells.loc[cells["value"].between(1, THRESHOLD - 1), "cell"]
        audit = pd.DataFrame({"cell": small, "lower": 1.0, "upper": 1.0, "status": "exact"})
        return Protection(out, audit, {"result": "fail"}, "test")

    monkeypatch.setattr(build, "protect", leaky)
    with pytest.raises(DisclosureError, match=r"fails the disclosure audit(.|\n)*deaths\|"):
        build_report(records, design=workdir / "design.csv", footprint="auto", year=YEAR, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_previous_release_keeps_its_decisions_and_refuses_revisions(records, workdir, tmp_path):
    design = workdir / "design.csv"
    first = build_report(records, design=design, footprint="auto", year="2021-22", out=tmp_path / "2021-22")
    second = build_report(records, design=design, footprint="auto", year=YEAR, previous=tmp_path / "2021-22")
    before = {c["cell"]: c["published"] for c in first.manifest["disclosure"]["cells"]}
    after = {c["cell"]: c["published"] for c in second.manifest["disclosure"]["cells"]}
    shared = sorted(set(before) & set(after))
    assert shared, "the trend table shares earlier years with the previous release"
    assert [before[c] is None for c in shared] == [after[c] is None for c in shared]
    assert second.manifest["disclosure"]["certificate_result"] == "pass"
    assert "previous release" in [i["role"] for i in second.manifest["inputs"]]
    # one 2021-22 death removed (a revision): publishing both totals would disclose it
    dod = pd.to_datetime(records["date_of_death"])
    fp_las = set(pd.read_csv(design, dtype=str).query(f"footprint_id == '{first.unit}'")["la_code"])
    drop = records.index[(dod >= "2021-04-01") & (dod <= "2022-03-31") & records["la_code"].isin(fp_las)][0]
    from cdr.errors import DisclosureError

    with pytest.raises(DisclosureError, match=r"new values(.|\n)*published as"):
        build_report(records.drop(index=drop), design=design, footprint="auto", year=YEAR, previous=tmp_path / "2021-22")


# ------------------------------------------------------------------ levels, calendar years, rewriting
def test_cli_region_report_in_calendar_years_writes_the_bundle(workdir, records):
    from cdr.cli import main

    out = workdir / "north_east_2021"
    code = main(["report", "--records", str(workdir / "records.csv"), "--level", "region", "--region", "E12000001",
                 "--calendar", "--year", "2021", "--out", str(out)])
    assert code == 0
    assert [f for f in BUNDLE_FILES if not (out / f).is_file()] == []
    m = _manifest(out)
    assert (m["level"], m["unit"], m["period"]["convention"]) == ("region", "E12000001", "calendar")
    assert (m["period"]["start"], m["period"]["end"]) == ("2021-01-01", "2021-12-31")
    # independent count: deaths in calendar 2021 of children resident in the North East
    ne = set(cdr.data.england_areas().query("region_code == 'E12000001'")["la_code"])
    dod = pd.to_datetime(records["date_of_death"])
    head = pd.read_csv(out / "tables" / "headline.csv", dtype=str)
    assert int(head["deaths"].iloc[0]) == int(((dod.dt.year == 2021) & records["la_code"].isin(ne)).sum())


def test_england_report_covers_every_region_and_local_authority(england_report):
    out, report = england_report
    assert report.level == "nation" and report.unit == "E92000001"
    by_area = pd.read_csv(out / "tables" / "deaths_by_area.csv", dtype=str)
    assert len(by_area) == 9 + 1   # the nine English regions and England
    by_la = pd.read_csv(out / "tables" / "deaths_by_local_authority.csv", dtype=str)
    assert set(by_la["area_code"]) == set(cdr.data.la_codes(2023))


def test_rewriting_a_bundle_removes_only_files_an_earlier_run_wrote(england_report, tmp_path):
    import hashlib

    _, report = england_report
    out = tmp_path / "bundle"
    report.write(out)
    # an earlier run wrote a table this one does not; a user's own file sits beside the bundle
    (out / "tables" / "old_table.csv").write_text("x\n1\n")
    (out / "my_notes.txt").write_text("keep me")
    (out / "tables" / "unlisted.csv").write_text("x\n")
    manifest = _manifest(out)
    manifest["outputs"]["tables/old_table.csv"] = hashlib.sha256(b"x\n1\n").hexdigest()
    (out / "manifest.json").write_text(json.dumps(manifest))
    files = report.write(out)
    assert not (out / "tables" / "old_table.csv").exists()
    assert (out / "my_notes.txt").is_file() and (out / "tables" / "unlisted.csv").is_file()
    assert all(p.is_file() for p in files.values())
    assert _manifest(out)["removed_from_earlier_run"] == ["tables/old_table.csv"]
    # a listed path outside the directory (or a wrong hash) makes it no cdr bundle: refused, nothing touched
    manifest = _manifest(out)
    manifest["outputs"]["../outside.txt"] = "0" * 64
    (tmp_path / "outside.txt").write_text("keep me too")
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CdrError, match="did not write"):
        report.write(out)
    assert (tmp_path / "outside.txt").read_text() == "keep me too" and (out / "tables" / "headline.csv").is_file()


# ------------------------------------------------------------------ over-suppression: aggregation
def test_cross_table_is_merged_where_a_small_cell_would_hide_the_age_table():
    # Footprint F001 of the demo design, 2022-23 (66 deaths): perinatal deaths are all neonatal, so
    # the small cell other x neonatal = 4 has zeros beside it in its column's other row; hiding
    # it costs the neonatal and postneonatal margins of the one-way age table (4 of 6 bands hidden
    # before this change). Merging neonatal + postneonatal in the cross table leaves no small cell.
    from cdr.report._merge import refine_cross

    ages = ["neonatal", "postneonatal", "1-4", "5-9", "10-14", "15-17"]
    other = dict(zip(ages, [4, 18, 6, 2, 7, 7]))
    cross = {("perinatal_neonatal", a): (22 if a == "neonatal" else 0) for a in ages}
    cross.update({("abuse_neglect", a): v for a, v in other.items()})   # one category stands for "other"
    older = "1-4+5-9+10-14+15-17"
    rows, _, cols, col_merges, options = refine_cross(
        cross, ["perinatal_neonatal", "abuse_neglect"], {}, ["neonatal", "postneonatal", older],
        {older: ["1-4", "5-9", "10-14", "15-17"]}, threshold=5)
    assert cols == ["neonatal+postneonatal", older]
    chosen, first = options[options["chosen"]].iloc[0], options.iloc[0]
    assert chosen["small_interior"] == 0 and first["small_interior"] == 1
    # one-way cells: 6 age bands + 2 categories + total; only 5-9 (2) and one partner need hiding after
    assert chosen["published_one_way"] == first["published_one_way"] + 2


def test_cross_table_is_not_merged_when_suppression_costs_less():
    from cdr.report._merge import refine_cross

    cross = {("a", "x"): 30, ("a", "y"): 3, ("b", "x"): 30, ("b", "y"): 40, ("c", "x"): 25, ("c", "y"): 35}
    rows, _, cols, _, options = refine_cross(cross, ["a", "b", "c"], {}, ["x", "y"], {}, threshold=5)
    # merging x and y would leave one column, i.e. no breakdown: suppression (a 2x2 rectangle) is kept
    assert cols == ["x", "y"] and len(options) == 1 and options["chosen"].iloc[0]


# ------------------------------------------------------------------ factor model
def test_factor_model_table_reaches_every_output(footprint_report):
    m = _manifest(footprint_report)
    fm = m["factor_model"]
    assert fm["level"] == "nation" and fm["cluster"] == "footprint" and fm["periods"][-1] == YEAR
    csv = pd.read_csv(footprint_report / "tables" / "factor_model.csv", dtype=str)
    assert {"variable", "level", "reference", "odds_ratio", "odds_ratio_lower_95", "odds_ratio_upper_95", "p_value"} <= set(csv.columns)
    assert "factor_model" in pd.read_excel(footprint_report / "tables.xlsx", sheet_name=None)
    page = (footprint_report / "report.html").read_text(encoding="utf-8")
    assert 'id="table-factor_model"' in page and 'id="figure-factor_model"' in page
    assert "figures/factor_model.png" in m["figures"] and "tables/factor_model.csv" in m["outputs"]
    shown = pd.to_numeric(csv["odds_ratio"], errors="coerce").notna()
    lo, hi, orr = (pd.to_numeric(csv.loc[shown, c]) for c in ("odds_ratio_lower_95", "odds_ratio_upper_95", "odds_ratio"))
    assert ((lo <= orr) & (orr <= hi)).all()


def test_factor_model_withholds_terms_with_few_events(records):
    # Make malignancy reviews almost never modifiable (3 events): its odds ratio rests on 3 children,
    # so it is withheld; every other term keeps >= 5 events and non-events and is shown.
    from cdr.report._factors import factor_model_table
    from cdr.report._periods import period_keys

    recs = records.copy()
    mal = recs.index[(recs["category"] == "malignancy") & (recs["modifiable"] == "yes")]
    recs.loc[mal[3:], "modifiable"] = "no"
    keys = period_keys(recs["date_of_death"], calendar=False)
    table, hide, info = factor_model_table(recs, keys=keys, pooled=[2019, 2020, 2021, 2022],
                                           period_labels={k: f"{k}-{(k + 1) % 100:02d}" for k in range(2019, 2023)},
                                           labels=None, threshold=THRESHOLD, spec={"cluster": "la"})
    levels = table.labels["level"].tolist()
    assert hide[levels.index("malignancy")]
    assert hide.sum() == 1 and info["n_withheld"] == 1
    assert np.isnan(table.values["odds_ratio"][levels.index("malignancy")])


# ------------------------------------------------------------------ region and England totals as sums of parts
NE = "E12000001"
TEES = ["E06000002", "E06000003", "E06000004", "E06000005"]
HARTLEPOOL = "E06000001"


@pytest.fixture(scope="module")
def crossing(tmp_path_factory, records):
    """A footprint report whose region total leaves one LA outside every published part.

    Design: the focus TEES (4 North East LAs), NORTH (the other North East LAs but Hartlepool),
    CROSS (Hartlepool with every Yorkshire and the Humber LA: it crosses the region boundary) and
    one footprint per other region. The report publishes the North East total, every footprint
    (funnel) and TEES's LAs, so North East - TEES - NORTH = Hartlepool, made 3 deaths here.
    """
    root = tmp_path_factory.mktemp("crossing")
    areas = cdr.data.england_areas()[["la_code", "region_code"]]
    fp = "R" + areas["region_code"].str[-2:]
    fp = fp.where(areas["region_code"] != NE, "NORTH")
    fp = fp.where(~areas["la_code"].isin(TEES), "TEES")
    fp = fp.where(~((areas["la_code"] == HARTLEPOOL) | (areas["region_code"] == "E12000003")), "CROSS")
    design = pd.DataFrame({"la_code": areas["la_code"], "footprint_id": fp})
    design.to_csv(root / "design.csv", index=False)
    dod = pd.to_datetime(records["date_of_death"])
    in_year = (dod >= "2022-04-01") & (dod <= "2023-03-31")
    hart = records.index[(records["la_code"] == HARTLEPOOL) & in_year]
    recs = records.drop(index=hart[3:])           # Hartlepool: exactly 3 deaths in 2022-23
    if len(hart) < 3:                             # too few drawn: move deaths of a NORTH LA to Hartlepool
        north = areas.loc[(areas["region_code"] == NE) & ~areas["la_code"].isin([*TEES, HARTLEPOOL]), "la_code"]
        donors = records.index[records["la_code"].isin(north) & in_year][: 3 - len(hart)]
        recs = recs.copy()
        recs.loc[donors, "la_code"] = HARTLEPOOL
    report = build_report(recs, design=root / "design.csv", footprint="TEES", year=YEAR, out=root / "out")
    return root, report, design


def _las_of(cell, design, report):
    unit = cell.split("|")[1]
    kind, code = unit.split(":", 1)
    if kind == "la":
        return {code}
    if kind == "fp":
        return set(design.loc[design["footprint_id"] == code, "la_code"])
    if kind == "rgn":
        return set(cdr.data.england_areas().query(f"region_code == '{code}'")["la_code"])
    if kind == "nat":
        return set(design["la_code"])
    parts = {p["cell"]: p["las"] for p in report.manifest["disclosure"]["unpublished_parts"]["parts"]}
    return set(parts[cell])


def test_region_and_england_totals_are_sums_of_their_parts_in_the_equations(crossing):
    _, report, design = crossing
    for total in (f"deaths|rgn:{NE}|{YEAR}|", f"deaths|nat:E92000001|{YEAR}|"):
        eqs = [p for t, p in report.equations                      # the geography equation, not a margin
               if t == total and all(x.startswith("deaths|") and x.endswith(f"|{YEAR}|") for x in p)]
        assert eqs, total
        parts = [_las_of(c, design, report) for c in eqs[0]]
        assert sum(len(p) for p in parts) == len(set().union(*parts)) == len(_las_of(total, design, report))
    # the North East remainder outside the published parts is Hartlepool, an unpublished part of 3
    part = f"deaths|la:{HARTLEPOOL}|{YEAR}|"
    ne = next(p for t, p in report.equations if t == f"deaths|rgn:{NE}|{YEAR}|" and part in p)
    assert f"deaths|fp:NORTH|{YEAR}|" in ne
    cells = report.cells.set_index("cell")
    assert cells.at[part, "value"] == 3 and cells.at[part, "unpublished"] and np.isnan(cells.at[part, "published"])


def test_a_small_remainder_of_a_region_cannot_be_derived_by_an_independent_attacker(crossing):
    # Independent attacker: one non-negative integer unknown per LA (deaths in the year), the
    # published deaths of every unit in the written CSVs (headline, funnel, LAs of the focus) as
    # equations on them, suppressed ones >= 1; min and max of Hartlepool by integer programming.
    from scipy.optimize import Bounds, LinearConstraint, milp

    root, report, design = crossing
    assert (root / "out" / "report.html").is_file() and _manifest(root / "out")["disclosure"]["certificate_result"] == "pass"
    las = sorted(design["la_code"])
    pos = {la: i for i, la in enumerate(las)}
    rows, lo, hi = [], [], []
    for name, kind in (("headline", None), ("funnel", "fp"), ("deaths_by_area", None)):
        csv = pd.read_csv(root / "out" / "tables" / f"{name}.csv", dtype=str)
        for code, atype, text in zip(csv["area_code"], csv["area_type"], csv["deaths"]):
            prefix = {"Local authority": "la", "Footprint": "fp", "Region": "rgn", "Nation": "nat"}[atype]
            a = np.zeros(len(las))
            a[[pos[x] for x in _las_of(f"deaths|{prefix}:{code}|", design, report)]] = 1
            rows.append(a)
            lo.append(1 if text == "[c]" else float(text))
            hi.append(np.inf if text == "[c]" else float(text))
    c = np.zeros(len(las))
    bounds = []
    for sense in (1, -1):
        c[pos[HARTLEPOOL]] = sense
        r = milp(c, constraints=[LinearConstraint(np.array(rows), lo, hi)], integrality=np.ones(len(las)),
                 bounds=Bounds(0, np.inf))
        assert r.status == 0
        bounds.append(sense * r.fun)
    lower, upper = bounds
    assert lower <= 3 <= upper
    assert lower < upper and upper >= THRESHOLD, (lower, upper)


# ------------------------------------------------------------------ overlapping publications, console, figures
def test_cli_names_the_catalog_design_and_flags_an_overlapping_bundle_beside_it(footprint_report, workdir, tmp_path,
                                                                                capsys):
    from cdr.cli import main
    from cdr.report._build import overlapping_reports

    shutil.copytree(footprint_report, tmp_path / "earlier")
    capsys.readouterr()
    code = main(["report", "--records", str(workdir / "records.csv"), "--footprint", "auto", "--year", YEAR,
                 "--out", str(tmp_path / "later")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "design: catalog design 'england_min60'" in printed and "not the real CDR partnerships" in printed
    assert f"NOTE: {tmp_path / 'earlier'} holds another cdr report sharing" in printed and "--previous" in printed
    m = _manifest(tmp_path / "later")
    assert [o["path"] for o in m["overlapping_reports"]] == ["earlier"]   # a relative name, never absolute
    page = (tmp_path / "later" / "report.html").read_text(encoding="utf-8")
    assert "Overlapping publications" in page and "Found beside this bundle and not given as previous: earlier (" in page
    assert str(tmp_path) not in page
    # given as previous, the earlier bundle is no longer flagged
    assert overlapping_reports(tmp_path / "later", [YEAR], previous=tmp_path / "earlier") == []
    assert overlapping_reports(tmp_path / "later", ["2012-13"]) == []


def test_merged_levels_have_short_labels_and_a_note():
    from cdr.report._inputs import CATEGORY_LABELS
    from cdr.report._tables import _age_column, _age_group_label, _level_label, _other_note

    merged = {"other_reviewed": list(CATEGORY_LABELS)[2:10]}
    assert _level_label("other_reviewed", merged, CATEGORY_LABELS) == "Other categories (8)"
    assert _other_note(merged, CATEGORY_LABELS).startswith("Other categories (8): " + CATEGORY_LABELS[list(CATEGORY_LABELS)[2]])
    assert (_age_column("1-4+5-9+10-14"), _age_group_label("1-4+5-9+10-14")) == ("age_1_14", "1-14 years")
    assert _age_group_label("neonatal+postneonatal") == "Under 1 year"
    assert _age_group_label("neonatal+postneonatal+1-4") == "Under 5 years"


def test_bar_charts_label_zeros_and_the_trend_has_an_x_axis_label():
    from cdr.report._figures import deaths_by_sex, trend

    ctx = {"focus_name": "F", "period": YEAR, "synthetic": True, "year_axis": "Reporting year of death"}
    table = pd.DataFrame({"sex": ["male", "female", "unknown", "total"], "label": ["M", "F", "?", "Total"],
                          "deaths": [30, 20, 0, 50], "percent": [60.0, 40.0, 0.0, 100.0]})
    marks = pd.DataFrame("", index=table.index, columns=table.columns)
    texts = [t.get_text() for t in deaths_by_sex(table, marks, ctx).axes[0].texts]
    assert texts == ["0"]
    body = pd.DataFrame({"period": ["2021-22", "2022-23"], "period_start": [2021, 2022],
                         "rate_per_100000": [25.0, 26.0], "rate_per_100000_lower_95": [20.0, 21.0],
                         "rate_per_100000_upper_95": [30.0, 31.0]})
    assert trend(body, None, ctx).axes[0].get_xlabel() == "Reporting year of death"


def test_the_category_figure_stays_a_readable_size(footprint_report):
    import struct

    for name in ("modifiable_by_category", "category_by_age_band", "deaths_by_category"):
        png = footprint_report / "figures" / f"{name}.png"
        if png.is_file():
            width, height = struct.unpack(">II", png.read_bytes()[16:24])
            assert width < 1200, (name, width, height)


# ------------------------------------------------------------------------------------------------
# the stages of build_report, called one by one (issue 14, "Shape of the code")


@pytest.fixture(scope="module")
def region_stages(records):
    from cdr.report._build import declare_report_tables, protect_tables, read_inputs, select_units

    inputs = read_inputs(records, year=YEAR, level="region")
    selection = select_units(inputs, level="region", region="E12000001")
    tables = declare_report_tables(inputs, selection)
    return inputs, selection, tables, protect_tables(inputs, selection, tables)


def test_read_inputs_takes_the_spec_threshold_and_accounts_for_every_record(records):
    import pathlib
    import tomllib

    from cdr.report._build import read_inputs

    spec = tomllib.loads((pathlib.Path(__file__).parents[1] / "models" / "annual.toml").read_text(encoding="utf-8"))
    bad = records.copy()
    bad.loc[bad.index[0], "la_code"] = "E06000999"       # a core field: the record is excluded (cdr.schema)
    with pytest.warns(cdr.errors.CdrWarning):
        inputs = read_inputs(bad, year=YEAR, level="nation", mode="lenient")
    assert inputs.threshold == spec["suppression"]["threshold"] == 5
    assert inputs.n_input == len(bad) and len(inputs.exclusions) == 1
    assert len(inputs.records) + len(inputs.exclusions) == len(bad)
    assert (inputs.period.label, str(inputs.period.start.date()), str(inputs.period.end.date())) == \
        (YEAR, "2022-04-01", "2023-03-31")
    assert inputs.inputs[0] == {"role": "records", "description": "in-memory DataFrame"}
    with pytest.raises(ValueError, match="threshold must be an integer >= 2"):
        read_inputs(records, year=YEAR, level="nation", threshold=1)
    with pytest.raises(ValueError, match="level must be one of"):
        read_inputs(records, year=YEAR, level="county")


def test_select_units_counts_the_period_and_the_units_from_the_dates(region_stages, records):
    inputs, selection, _, _ = region_stages
    dod = pd.to_datetime(records["date_of_death"])
    in_year = (dod >= "2022-04-01") & (dod <= "2023-03-31")
    assert int(selection.in_period.sum()) == int(in_year.sum())
    assert int(selection.later.sum()) == int((dod > "2023-03-31").sum())
    areas = cdr.data.england_areas()
    north_east = sorted(areas.loc[areas["region_code"] == "E12000001", "la_code"])
    assert selection.geo.children == [f"la:{c}" for c in north_east]
    assert selection.geo.focus == "rgn:E12000001" and selection.geo.comparators == ["nat:E92000001"]
    # reporting years (1 April - 31 March) from the first death's to 2022-23, read off the dates
    first = dod.min()
    start = first.year if first.month >= 4 else first.year - 1
    assert first - pd.Timestamp(f"{start}-04-01") < pd.Timedelta(days=31)     # the first year is fully covered
    assert [selection.period_labels[k] for k in selection.trend_keys] == \
        [f"{y}-{(y + 1) % 100:02d}" for y in range(start, 2023)]
    assert selection.partial == []


def test_protect_tables_publishes_the_region_total_and_no_small_count(region_stages, records):
    inputs, selection, tables, protected = region_stages
    areas = cdr.data.england_areas()
    las = set(areas.loc[areas["region_code"] == "E12000001", "la_code"])
    dod = pd.to_datetime(records["date_of_death"])
    expected = int((records["la_code"].isin(las) & (dod >= "2022-04-01") & (dod <= "2023-03-31")).sum())
    assert expected >= THRESHOLD
    assert protected.tables["headline"]["deaths"].iloc[0] == expected
    assert protected.protection.certificate["passed"]
    for name, info in protected.info.items():
        for col in info["count_columns"]:
            values = pd.to_numeric(protected.tables[name][col], errors="coerce").dropna()
            assert not ((values > 0) & (values < THRESHOLD)).any(), (name, col)
    assert {t.name for t in tables.specs} >= {"headline", "deaths_by_area", "trend"}


def test_draw_figures_lets_a_figure_warning_through(region_stages, monkeypatch):
    # build_report used to draw under simplefilter("ignore", UserWarning), hiding cdr's own warnings too
    from cdr.report import _figures
    from cdr.report._build import draw_figures

    inputs, selection, _, protected = region_stages
    original = _figures.FIGURES["deaths_by_sex"]

    def warning_figure(table, marks, context):
        import warnings

        warnings.warn("a figure could not show every label", cdr.errors.CdrWarning)
        return original(table, marks, context)

    monkeypatch.setitem(_figures.FIGURES, "deaths_by_sex", warning_figure)
    with pytest.warns(cdr.errors.CdrWarning, match="could not show every label"):
        drawn = draw_figures(inputs, selection, protected)
    assert drawn.figures["deaths_by_sex"][:8] == b"\x89PNG\r\n\x1a\n" and "map" in drawn.figures


def test_assemble_report_states_warnings_and_keeps_record_warnings_private(region_stages):
    from cdr.report._build import assemble_report, draw_figures

    inputs, selection, tables, protected = region_stages
    warned = [("figures", "CdrWarning", "a figure could not show every label"),
              ("read", "CdrWarning", "9 of 10 records counted; 1 excluded"),
              ("protect", "CdrWarning", "row 17 case_id=C0412 has a value that could not be read")]
    report = assemble_report(inputs, selection, tables, protected, draw_figures(inputs, selection, protected),
                             warned=warned)
    page = "\n".join(report.methods)
    assert "a figure could not show every label" in page and "a figure could not show every label" in report.html
    assert report.manifest["warnings"]["raised"] == ["CdrWarning: a figure could not show every label"]
    assert report.manifest["warnings"]["in_private_folder"] == 2
    for secret in ("1 excluded", "C0412"):
        assert secret not in report.html and secret not in json.dumps(report.manifest)
        assert any(secret in str(v) for v in report.private["notes"].values())


def test_build_report_is_the_chain_of_its_stages_and_emits_stage_warnings(records, monkeypatch):
    from cdr.report import _build, _figures

    assert [f.__name__ for f in _build.STAGES] == ["read_inputs", "select_units", "declare_report_tables",
                                                   "protect_tables", "draw_figures", "assemble_report", "write_report"]
    original = _figures.FIGURES["deaths_by_sex"]

    def warning_figure(table, marks, context):
        import warnings

        warnings.warn("a figure could not show every label", UserWarning)
        return original(table, marks, context)

    monkeypatch.setitem(_figures.FIGURES, "deaths_by_sex", warning_figure)
    with pytest.warns(UserWarning, match="could not show every label"):
        report = build_report(records, level="region", region="E12000001", year=YEAR)
    assert "UserWarning: a figure could not show every label" in report.manifest["warnings"]["raised"]
    assert any("a figure could not show every label" in m for m in report.methods)


def test_a_stage_given_the_wrong_input_says_which_stage_comes_first(region_stages):
    from cdr.report._build import draw_figures, protect_tables, select_units

    inputs, selection, tables, _ = region_stages
    with pytest.raises(TypeError, match="select_units: inputs must be the ReportInputs"):
        select_units(pd.DataFrame(), level="region", region="E12000001")
    with pytest.raises(TypeError, match="protect_tables: tables must be the Tables"):
        protect_tables(inputs, selection, tables.specs)
    with pytest.raises(CdrError, match="draw_figures: protected must be the Protected"):
        draw_figures(inputs, selection, tables)


def test_a_misspelt_footprint_id_gets_a_did_you_mean(records):
    # Found by a new user: '--footprint tees_cdp' listed the first 8 ids in sorted order, not 'tees_cdop'.
    from cdr.errors import ArgumentError

    with pytest.raises(ArgumentError, match=r"unknown footprint 'tees_cdp': did you mean 'tees_cdop'"):
        build_report(records, design="cdop_2019_real", footprint="tees_cdp", year=YEAR)
