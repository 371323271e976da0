"""The command line end to end, in-process: help texts and the trends/factors commands on synthetic records."""
import json

import pandas as pd
import pytest

from cdr import schema, synthetic
from cdr.cli import GROUPS, build_parser, main


@pytest.fixture(scope="module")
def record_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("records") / "records.csv"
    schema.to_file(synthetic.generate_records(years=range(2019, 2024), seed=11), path)
    return path


def test_every_command_group_is_registered_and_has_help(capsys):
    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices
    assert set(GROUPS) <= set(choices), f"missing command groups: {set(GROUPS) - set(choices)}"
    for group in GROUPS:
        with pytest.raises(SystemExit) as stop:
            main([group, "--help"])
        assert stop.value.code == 0
        text = capsys.readouterr().out
        assert text.startswith(f"usage: cdr {group}") and len(text.splitlines()) > 5


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: cdr" in capsys.readouterr().out


def test_trends_at_region_level_writes_one_apc_row_per_region(record_file, tmp_path):
    out = tmp_path / "trends"
    assert main(["trends", "--records", str(record_file), "--level", "region", "--out", str(out)]) == 0
    apc = pd.read_csv(out / "apc.csv")
    assert apc["region_code"].nunique() == 9 and len(apc) == 9
    assert (apc["apc_lower_95"] <= apc["apc"]).all() and (apc["apc"] <= apc["apc_upper_95"]).all()
    assert list(out.glob("*.png")), "no figure written"


def test_factors_at_nation_level_reconciles_pending_reviews(record_file, tmp_path):
    out = tmp_path / "factors"
    assert main(["factors", "--records", str(record_file), "--level", "nation", "--cluster", "none",
                 "--out", str(out)]) == 0
    records = pd.read_csv(record_file)
    tables = {p.stem: pd.read_csv(p) for p in (out / "tables").glob("*.csv")}
    assert tables, "no prevalence table written"
    overall = next(t for t in tables.values() if {"n_total", "n_pending", "n_reviewed"} <= set(t.columns))
    row = overall.iloc[0]
    assert row["n_total"] == row["n_reviewed"] + row["n_pending"]
    settings = json.loads((out / "settings.json").read_text())
    assert settings, "settings.json is empty"
    assert int(records["review_completed"].isna().sum()) > 0  # the synthetic file has pending reviews to report


def test_trends_with_an_unreadable_record_file_fails_with_a_clear_message(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("case_id,date_of_death\nA,not-a-date\n")
    assert main(["trends", "--records", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "cdr trends: error:" in err


def test_trends_at_footprint_level_with_a_catalog_design_and_joinpoints(record_file, tmp_path):
    out = tmp_path / "trends_fp"
    assert main(["trends", "--records", str(record_file), "--level", "footprint", "--design", "england_min60",
                 "--joinpoints", "--joinpoint-method", "nci", "--selection", "bic", "--max-joinpoints", "1",
                 "--out", str(out)]) == 0
    apc = pd.read_csv(out / "apc.csv")
    from cdr.footprints import load_design

    assert set(apc["footprint_id"]) == set(load_design("england_min60").labels.unique())
    slopes = pd.read_csv(out / "compare_slopes.csv")
    assert len(slopes) == len(apc)
    assert (out / "joinpoint_segments.csv").exists()


def test_trends_for_years_without_records_fails_with_a_clear_message(record_file, tmp_path, capsys):
    assert main(["trends", "--records", str(record_file), "--years", "2010-2012", "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert "no records in the requested reporting years" in err and "2010-2012" in err and "cover 2019-2023" in err
    assert "Traceback" not in err


def test_warnings_are_printed_once_as_plain_lines(record_file, tmp_path, capsys):
    assert main(["trends", "--records", str(record_file), "--level", "region", "--out", str(tmp_path / "w")]) == 0
    err_lines = capsys.readouterr().err.splitlines()
    warnings_printed = [line for line in err_lines if line.startswith("cdr trends: warning:")]
    assert warnings_printed, "the 2023 population carried forward should be reported"
    assert len(warnings_printed) == len(set(warnings_printed))
    assert not any(line.strip().startswith("pop = ") for line in err_lines)  # no source lines


def test_report_with_a_columns_file_records_both_files_by_name_and_sha256(tmp_path):
    # `cdr report --columns` used to read the records in the CLI and hand build_report an in-memory result,
    # so the manifest had no name or hash for the records file
    import hashlib
    from pathlib import Path

    data = Path(__file__).parent / "data"
    export, columns = data / "cdop_export_wkc.xlsx", data / "cdop_export_wkc_columns.toml"
    design = tmp_path / "design.csv"
    pd.DataFrame({"la_code": ["E08000033", "E08000034", "E08000036"], "footprint_id": "WKC"}).to_csv(design, index=False)
    out = tmp_path / "bundle"
    assert main(["report", "--records", str(export), "--columns", str(columns), "--lenient", "--design", str(design),
                 "--footprint", "WKC", "--year", "2022-23", "--out", str(out)]) == 0
    inputs = {i["role"]: i for i in json.loads((out / "manifest.json").read_text(encoding="utf-8"))["inputs"]}
    assert inputs["records"] == {"role": "records", "path": export.name,
                                 "sha256": hashlib.sha256(export.read_bytes()).hexdigest()}
    assert inputs["columns"] == {"role": "columns", "path": columns.name,
                                 "sha256": hashlib.sha256(columns.read_bytes()).hexdigest()}


def test_footprints_build_reads_records_like_report_and_reconciles_the_counts(tmp_path, capsys):
    import cdr

    recs = synthetic.generate_records(years=range(2020, 2023), seed=3)
    recs.loc[recs.index[0], "la_code"] = "E06000999"          # not an LA code: excluded in lenient mode
    path = tmp_path / "records.csv"
    recs.to_csv(path, index=False)
    areas = cdr.data.england_areas()
    north_east = areas.loc[areas["region_code"] == "E12000001", ["la_code", "geometry"]]
    north_east.to_file(tmp_path / "north_east.geojson", driver="GeoJSON")
    out = tmp_path / "fp"
    code = main(["footprints", "build", "--records", str(path), "--years", "2021-2022", "--lenient", "--areas",
                 str(tmp_path / "north_east.geojson"), "--min-deaths", "30", "--no-progress", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    kept = recs.iloc[1:]
    year = pd.to_datetime(kept["date_of_death"]).dt.year
    used = kept[kept["la_code"].isin(north_east["la_code"]) & year.isin([2021, 2022])]
    assert f"{len(recs):,} records read, {len(kept):,} counted, 1 excluded" in text
    assert (f"{len(used):,} of the {len(kept):,} records counted are used (2 year(s)); "
            f"{len(kept) - len(used):,} fall outside the years or the areas") in text
    assert (tmp_path / "fp.private" / "exclusions.csv").is_file() and not (out / "exclusions.csv").exists()
    design = pd.read_csv(out / "footprints.csv", comment="#", dtype={"la_code": str}).set_index("la_code")
    expected = used.groupby("la_code").size() / 2                # deaths a year over the two years
    assert design.loc[expected.index, "expected_deaths"].tolist() == pytest.approx(expected.tolist())
    help_text = _help(["footprints", "build"], capsys)
    assert all(o in help_text for o in ("--columns", "--sheet", "--lenient", "--private"))


def _help(argv, capsys):
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return capsys.readouterr().out


# ------------------------------------------------------------------------------------------------
# cdr report: a bad argument fails before the records are read (no warning about them printed first)


@pytest.fixture(scope="module")
def warning_record_file(tmp_path_factory):
    """Records whose reading warns (a column cdr does not use), as a partnership's export often does."""
    recs = synthetic.generate_records(years=range(2021, 2024), seed=11)
    recs["panel_notes"] = "see minutes"
    path = tmp_path_factory.mktemp("warn") / "records.csv"
    schema.to_file(recs, path)
    return path


def _bad_out(tmp_path, kind):
    out = tmp_path / "out"
    if kind == "file":
        out.write_text("not a folder")
    elif kind == "symlink":
        (tmp_path / "elsewhere").mkdir()
        out.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    elif kind == "holds a symlink":
        out.mkdir()
        (out / "report.html").symlink_to(tmp_path / "outside.html")
    elif kind == "holds other files":
        out.mkdir()
        (out / "thesis.docx").write_text("mine")
        (out / "manifest.json").write_text('{"outputs": {"thesis.docx": "0"}}')   # not cdr's manifest
    return out


BAD_REPORT = {   # case -> (arguments besides --records, --year and --out; kind of --out; words the error must hold)
    "catalog design misspelt": (["--design", "england_min06", "--footprint", "F001"], None, "'england_min06'"),
    "design file missing": (["--design", "{tmp}/design.csv", "--footprint", "F001"], None, "design.csv"),
    "footprint misspelt": (["--design", "england_min60", "--footprint", "F0001"], None, "did you mean 'F001'"),
    "footprint missing": (["--design", "england_min60"], None, "needs --footprint ID"),
    "region misspelt": (["--level", "region", "--region", "E1200001"], None, "unknown region 'E1200001'"),
    "region missing": (["--level", "region"], None, "needs --region CODE"),
    "out is a file": (["--level", "nation"], "file", "is a file, not a folder"),
    "out is a symlink": (["--level", "nation"], "symlink", "is a symbolic link"),
    "out holds a symlink": (["--level", "nation"], "holds a symlink", "holds symbolic links (report.html)"),
    "out holds other files": (["--level", "nation"], "holds other files", "holds files that cdr did not write"),
}


def test_reading_the_warning_record_file_warns(warning_record_file):
    # the premise of the next test: had the records been read, a warning would have been printed first
    with pytest.warns(UserWarning, match="panel_notes"):
        schema.read_records(warning_record_file)


@pytest.mark.parametrize("case", list(BAD_REPORT))
def test_report_refuses_a_bad_argument_before_reading_the_records(case, warning_record_file, tmp_path, capsys):
    args, out_kind, words = BAD_REPORT[case]
    out = _bad_out(tmp_path, out_kind)
    before = sorted(p.name for p in tmp_path.iterdir())
    snapshot = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and not p.is_symlink()} if out.is_dir() else {}
    argv = ["report", "--records", str(warning_record_file), "--year", "2022-23", "--out", str(out),
            *[a.format(tmp=tmp_path) for a in args]]
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).splitlines()
    assert len(lines) == 1, lines                                  # the error is the first and only line
    assert lines[0].startswith("cdr report: error: ") and words in lines[0], lines[0]
    assert "panel_notes" not in lines[0] and "Traceback" not in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before    # nothing written: no lock, no bundle, no .private
    assert {p: p.read_bytes() for p in snapshot} == snapshot


def test_report_says_it_added_the_release_to_the_ledger_folder(record_file, tmp_path, capsys):
    org = tmp_path / "ledger"
    lines_of_run = []
    for name, fp, design in (("a", "F001", "england_min60"), ("b", "tees_cdop", "cdop_2019_real")):
        assert main(["report", "--records", str(record_file), "--year", "2022-23", "--design", design,
                     "--footprint", fp, "--ledger", str(org), "--out", str(tmp_path / name)]) == 0
        lines_of_run.append([line for line in capsys.readouterr().out.splitlines() if "release ledger: added" in line])
    files = sorted(org.glob("*.json"))
    assert len(files) == 2 and all(len(lines) == 1 for lines in lines_of_run)
    for lines, bundle in zip(lines_of_run, ("a", "b")):
        rid = json.loads((tmp_path / bundle / "ledger.json").read_text())["releases"][-1]["release"]
        added = next(f for f in files if f.stem.endswith(rid))     # the file this run added, named on its line
        assert f"added release {rid} to {org / added.name}" in lines[0]
