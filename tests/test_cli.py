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
