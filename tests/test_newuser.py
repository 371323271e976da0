"""The new user's path end to end through the command line (docs/howto/own-data.md).

A partnership analyst (Wakefield, Kirklees, Calderdale) exports a messy case file - the system's own
headers, UK dates, LA names in any case, detailed ethnicity labels, blanks, free text and a few bad
rows - as CSV and as Excel, validates it and builds the annual report with ``cdr report``. The
references are independent of the code under test: every expected count is computed here from the
rows this test writes (dates parsed with ``datetime.strptime``), never from cdr's own output.
Wrong inputs a user types must each end in one error line and exit code 2, without a traceback.
"""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from cdr.cli import main

LA = {"Wakefield": "E08000036", "kirklees ": "E08000034", "CALDERDALE": "E08000033", "Kirklees": "E08000034"}
CATEGORIES = ["Perinatal/neonatal event", "Chromosomal, genetic and congenital anomalies", "Infection",
              "Sudden unexpected, unexplained death", "Malignancy", "Trauma and other external factors"]
ETHNICITY = ["White British", "Asian or Asian British - Pakistani", "White - Any other White background",
             "Black - African", "Not stated", ""]
MODIFIABLE = ["Yes - modifiable factors identified", "No - no modifiable factors identified", ""]
# bad rows: (column, value) replacing a good row's value; each one makes the record unusable
BAD = {3: ("Date of Death", "31/02/2023"),         # no such date
       8: ("Home LA", "Wakefeild"),                # not an LA (misspelt)
       13: ("DOB", "02/05/1995")}                  # 18 or over at death
PERIOD = (dt.date(2022, 4, 1), dt.date(2023, 3, 31))
TABLES = ("headline", "deaths_by_area", "deaths_by_category", "deaths_by_age_band", "deaths_by_sex",
          "deaths_by_ethnicity", "comparators", "trend")


def _uk(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """The export as the case-management system writes it, and what the test knows about each row."""
    rng = np.random.default_rng(2024)
    n = 240                                              # about 60 deaths a year over 2020-21 to 2023-24
    first = dt.date(2020, 4, 2)
    deaths = [first + dt.timedelta(days=int(d)) for d in rng.integers(0, 4 * 365 - 3, n)]
    ages = rng.choice([3, 40, 200, 900, 3000, 5500], n)      # days: neonatal to 15 years
    births = [d - dt.timedelta(days=int(a)) for d, a in zip(deaths, ages)]
    frame = pd.DataFrame({
        "CDOP Ref": [f"WKC-{7000 + i}" for i in range(n)],
        "Date of Death": [_uk(d) for d in deaths],
        "DOB": [_uk(b) for b in births],
        "Gender": rng.choice(["Male", "Female", "F", "M", ""], n, p=[0.4, 0.4, 0.08, 0.08, 0.04]),
        "Home LA": rng.choice(list(LA), n),
        "Cat. of death": rng.choice(CATEGORIES, n),
        "Ethnic Origin": rng.choice(ETHNICITY, n),
        "Date CDOP Review Completed": [_uk(d + dt.timedelta(days=200)) if i % 3 else "" for i, d in enumerate(deaths)],
        "Modifiable Factors": rng.choice(MODIFIABLE, n),
        "Panel notes": [f"Seen at clinic {i} by keyworker Smith" if i % 7 == 0 else "" for i in range(n)],
    })
    frame.loc[frame["Date CDOP Review Completed"] == "", "Modifiable Factors"] = ""
    frame.loc[5, "Cat. of death"] = "Perinatal/neonatel event"          # misspelt optional value: kept, flagged
    frame.loc[6, "Panel notes"] = "=SUM(A1:A9)"
    for row, (column, value) in BAD.items():
        frame.loc[row, column] = value
    folder = tmp_path_factory.mktemp("newuser")
    frame.to_csv(folder / "wkc_export.csv", index=False)
    frame.to_excel(folder / "wkc_export.xlsx", index=False, sheet_name="CDOP cases")
    (folder / "columns.toml").write_text('[columns]\n"Home LA" = "la_code"\n"Cat. of death" = "category"\n'
                                         '"Ethnic Origin" = "ethnicity"\n"Panel notes" = "ignore"\n', encoding="utf-8")
    pd.DataFrame({"la_code": sorted(set(LA.values())), "footprint_id": "WKC"}).to_csv(folder / "wkc.csv", index=False)
    pd.DataFrame({"la_code": ["Wakefield", "Kirklees", "Calderdale"], "footprint_id": "WKC"}).to_csv(
        folder / "wkc_names.csv", index=False)                             # names where the design wants codes
    return folder, frame


def _expected(frame):
    good = frame.drop(index=list(BAD))
    dod = [dt.datetime.strptime(x, "%d/%m/%Y").date() for x in good["Date of Death"]]
    in_period = sum(PERIOD[0] <= d <= PERIOD[1] for d in dod)
    later = sum(d > PERIOD[1] for d in dod)
    by_la = good.assign(la=good["Home LA"].map(LA), dod=dod)
    by_la = by_la[(by_la["dod"] >= PERIOD[0]) & (by_la["dod"] <= PERIOD[1])].groupby("la").size()
    return {"input": len(frame), "excluded": len(BAD), "in_period": in_period, "later": later, "by_la": by_la}


def _report(folder, records, out):
    return main(["report", "--records", str(folder / records), "--columns", str(folder / "columns.toml"),
                 "--lenient", "--design", str(folder / "wkc.csv"), "--footprint", "WKC", "--year", "2022-23",
                 "--out", str(folder / out)])


@pytest.fixture(scope="module")
def bundles(export):
    folder, _ = export
    assert _report(folder, "wkc_export.xlsx", "bundle_xlsx") == 0
    assert _report(folder, "wkc_export.csv", "bundle_csv") == 0
    return folder / "bundle_xlsx", folder / "bundle_csv"


def test_validate_names_each_bad_row_and_lenient_counts_the_rest(export, capsys):
    folder, frame = export
    code = main(["data", "validate", str(folder / "wkc_export.xlsx"), "--columns", str(folder / "columns.toml")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "--lenient" in err
    for row, (_, value) in BAD.items():
        assert f"row {row + 1} " in err and frame.loc[row, "CDOP Ref"] in err    # 1-based data rows
    assert "did you mean 'Wakefield'" in err and "did you mean 'Perinatal/neonatal event'" in err
    code = main(["data", "validate", str(folder / "wkc_export.csv"), "--columns", str(folder / "columns.toml"),
                 "--lenient", "--exclusions", str(folder / "excluded.csv")])
    assert code == 0
    excluded = pd.read_csv(folder / "excluded.csv")
    assert sorted(excluded["case_id"]) == sorted(frame.loc[list(BAD), "CDOP Ref"])


def test_report_counts_reconcile_with_the_rows_written(export, bundles, capsys):
    _, frame = export
    want = _expected(frame)
    for bundle in bundles:
        records = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))["records"]
        # published where no count from 1 to 4 can be worked out from them; "[c]" otherwise
        for key, true in (("input", want["input"]), ("excluded_invalid", want["excluded"]),
                          ("in_period", want["in_period"]), ("later_periods", want["later"])):
            assert records[key] in (true, "[c]"), key
        if 1 <= want["excluded"] < 5:
            assert records["excluded_invalid"] == "[c]"
        if "[c]" not in (records["valid"], records["excluded_invalid"], records["input"]):
            assert records["valid"] + records["excluded_invalid"] == records["input"]
        assert records["reconciles"] is True
        headline = pd.read_csv(bundle / "tables" / "headline.csv", dtype=str).set_index("area_code")
        assert int(headline.loc["WKC", "deaths"]) == want["in_period"]
        area = pd.read_csv(bundle / "tables" / "deaths_by_area.csv", dtype=str).set_index("area_code")
        for code, deaths in want["by_la"].items():
            assert area.loc[code, "deaths"] in (str(deaths), "[c]")
        private = bundle.parent / f"{bundle.name}.private"
        assert len(pd.read_csv(private / "exclusions.csv")) == want["excluded"]    # kept, outside the bundle


def test_bundle_has_the_named_tables_and_csv_and_excel_give_the_same_tables(bundles):
    xlsx, csv = bundles
    for name in TABLES:
        assert (xlsx / "tables" / f"{name}.csv").is_file(), name
    for name in ("report.html", "tables.xlsx", "manifest.json"):
        assert (xlsx / name).is_file()
    for table in sorted((xlsx / "tables").glob("*.csv")):
        assert table.read_bytes() == (csv / "tables" / table.name).read_bytes(), table.name


def test_no_record_level_value_in_any_bundle_file(export, bundles):
    from openpyxl import load_workbook

    _, frame = export
    secrets = set(frame["CDOP Ref"]) | {v for _, v in BAD.values()} | {"keyworker Smith", "=SUM(A1:A9)"}
    for column in ("Date of Death", "DOB", "Date CDOP Review Completed"):
        for text in frame[column]:
            if not text:
                continue
            secrets.add(text)
            day = dt.datetime.strptime(text, "%d/%m/%Y").date() if text != "31/02/2023" else None
            if day is not None and (day.month, day.day) not in ((4, 1), (3, 31)):   # bounds of reporting years
                secrets.add(day.isoformat())                                        # are published, rightly
    for bundle in bundles:
        files = [p for p in bundle.rglob("*") if p.is_file()]
        assert files
        for path in files:
            text = path.read_bytes().decode("latin-1")
            found = [s for s in secrets if s in text]
            assert not found, f"{path.name} holds record-level values {found[:3]}"
        book = load_workbook(bundle / "tables.xlsx", read_only=True)
        cells = " ".join(str(v) for ws in book.worksheets for row in ws.iter_rows(values_only=True) for v in row
                         if v is not None)
        assert not [s for s in secrets if s in cells]


@pytest.mark.parametrize("argv, words", [
    (["report", "--recrods", "x.csv", "--year", "2022-23", "--out", "o"], "did you mean --records?"),
    (["report", "--records", "x.csv", "--year", "2022-23", "--out", "o", "--desing", "d.csv"], "did you mean --design?"),
    (["trends", "--records", "x.csv", "--level", "regoin", "--out", "t"], "invalid choice: 'regoin'"),
    (["data", "synth", "--years", "2023-2019", "--out", "s.csv"], "the last year comes before the first"),
    (["report", "--records", "{folder}/wkc_export.csv", "--columns", "{folder}/columns.toml", "--lenient",
      "--level", "region", "--year", "2022-23", "--out", "{folder}/o"], "--level region needs --region CODE"),
    (["report", "--records", "{folder}/wkc_export.csv", "--columns", "{folder}/columns.toml", "--lenient",
      "--design", "{folder}/wkc_names.csv", "--footprint", "WKC", "--year", "2022-23", "--out", "{folder}/o"],
     "Wakefield = E08000036"),                           # Wakefield's real ONS code
    (["report", "--records", "{folder}/missing.csv", "--level", "nation", "--year", "2022-23", "--out", "{folder}/o"],
     "not found"),
    (["report", "--records", "{folder}", "--level", "nation", "--year", "2022-23", "--out", "{folder}/o"], "is a folder"),
    (["report", "--records", "{folder}/wkc_export.csv", "--columns", "{folder}/columns.toml", "--lenient",
      "--design", "cdop_2019_rea", "--footprint", "auto", "--year", "2022-23", "--out", "{folder}/o"],
     "Did you mean 'cdop_2019_real'?"),
    (["report", "--records", "{folder}/wkc_export.csv", "--columns", "{folder}/columns.toml", "--lenient",
      "--design", "{folder}/wkc.csv", "--footprint", "WKX", "--year", "2022-23", "--out", "{folder}/o"],
     "unknown footprint 'WKX'"),
    (["report", "--records", "{folder}/wkc_export.csv", "--columns", "{folder}/columns.toml", "--lenient",
      "--design", "{folder}/wkc.csv", "--footprint", "WKC", "--year", "22-23", "--out", "{folder}/o"],
     "year must look like '2022-23'"),
])
def test_a_wrong_input_is_one_error_line_and_exit_code_2(export, argv, words, capsys):
    folder, _ = export
    argv = [a.format(folder=folder) for a in argv]
    try:
        code = main(argv)
    except SystemExit as stop:                          # argparse's own checks exit
        code = stop.code
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert code == 2 and "Traceback" not in err and "usage:" not in err
    assert len(errors) == 1 and words in errors[0], err
    assert not (folder / "o").exists()                  # nothing written after an error


def test_short_year_range_is_read_as_written(tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert main(["data", "synth", "--years", "2021-23", "--seed", "1", "--out", str(out)]) == 0
    years = pd.to_datetime(pd.read_csv(out)["date_of_death"]).dt.to_period("Q-MAR").dt.qyear - 1
    assert sorted(set(years)) == [2021, 2022, 2023]   # reporting years 2021-22 to 2023-24


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_title_lines_above_the_header_are_skipped_in_csv_as_in_excel(export, suffix, capsys):
    folder, frame = export
    path = folder / f"titled.{suffix}"
    if suffix == "csv":
        path.write_text("CDOP case export,run 03/04/2024\n\n" + frame.to_csv(index=False), encoding="utf-8")
    else:
        with pd.ExcelWriter(path) as book:
            pd.DataFrame([["CDOP case export", "run 03/04/2024"]]).to_excel(book, index=False, header=False)
            frame.to_excel(book, index=False, startrow=2)
    code = main(["data", "validate", str(path), "--columns", str(folder / "columns.toml"), "--lenient",
                 "--exclusions", str(folder / f"titled_{suffix}.csv")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"{len(frame)} records read" in captured.out and "rows above it are titles" in captured.err
    excluded = pd.read_csv(folder / f"titled_{suffix}.csv")
    assert sorted(excluded["row"]) == [r + 1 for r in sorted(BAD)]      # rows count from after the header
