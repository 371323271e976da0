"""Importing a partnership's own case-management export: headers, values, dates, encodings, broken files.

The acceptance fixture ``tests/data/cdop_export_wkc.xlsx`` (with ``cdop_export_wkc_columns.toml``) is a
hand-made export for Wakefield, Kirklees and Calderdale written by :func:`make_export` below (run this
file as a script to rewrite it). Every row is a death in 2022-23, so the expected count is the number
of rows, known without cdr.
"""
import datetime as dt
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cdr import schema
from cdr.cli import main
from cdr.errors import CdrError, CdrWarning, RecordValidationError
from cdr.schema import read_records, validate_records

DATA = Path(__file__).parent / "data"
EXPORT = DATA / "cdop_export_wkc.xlsx"
COLUMNS = DATA / "cdop_export_wkc_columns.toml"
N_EXPORT = 60
TODAY = "2024-06-30"
LA = {"Wakefield": "E08000036", "Kirklees": "E08000034", "Calderdale": "E08000033"}

COLUMNS_TOML = """# Columns file for the Wakefield, Kirklees and Calderdale test export (cdr read_records / --columns)
[columns]
"Home LA" = "la_code"
"Cat. of death" = "category"
"Ethnic Origin (ONS 2021)" = "ethnicity"
"Panel notes" = "ignore"

[values.modifiable]
"Yes - modifiable factors identified" = "yes"
"No - no modifiable factors identified" = "no"
"""


def make_export(path: Path = EXPORT, columns: Path = COLUMNS, seed: int = 12) -> pd.DataFrame:
    """Write the test export: own headers, LA names, UK text dates and date cells, detailed ethnicity,
    no IMD column, one misspelt category (row 7), one blank sex (row 11), one missing date of birth (row 15),
    free text with a comma and a formula-like value (row 3)."""
    from openpyxl import Workbook

    rng = np.random.default_rng(seed)
    start = dt.date(2022, 4, 1)
    las = ["Wakefield", "kirklees ", "CALDERDALE", "Kirklees", "wakefield", "Calderdale "]
    cats = ["Perinatal/neonatal event", "Chromosomal, genetic and congenital anomalies", "Infection",
            "Sudden unexpected, unexplained death", "Malignancy", "Acute medical or surgical condition",
            "Trauma and other external factors", "Chronic medical condition"]
    eth = ["White: English, Welsh, Scottish, Northern Irish or British", "Asian or Asian British - Pakistani",
           "Asian, Asian British or Asian Welsh: Indian", "Black or Black British - African",
           "Mixed - White and Black Caribbean", "White - Any other White background", "Other ethnic group: Arab",
           "Not stated", "Bangladeshi", "Gypsy or Irish Traveller"]
    rows = []
    for i in range(N_EXPORT):
        dod = start + dt.timedelta(days=int(rng.integers(0, 365)))
        age = int(rng.choice([0, 3, 20, 100, 400, 2000, 4000, 6000]) + rng.integers(0, 20))
        dob = dod - dt.timedelta(days=age)
        form = i % 6
        fmt = {0: lambda d: d.strftime("%d/%m/%Y"), 1: lambda d: f"{d.day}/{d.month}/{d.strftime('%y')}",
               2: lambda d: d.strftime("%d-%m-%Y"), 3: lambda d: d.strftime("%d.%m.%Y"),
               4: lambda d: f"{d.day} {d.strftime('%B %Y')}", 5: lambda d: d}[form]   # 5: a real date cell
        reviewed = i % 3 != 0
        review = dod + dt.timedelta(days=int(rng.integers(60, 300))) if reviewed else None
        if review is not None and review > dt.date(2024, 6, 1):
            review = None
            reviewed = False
        rows.append({
            "CDOP Ref": f"WKC-{2200 + i}",
            "Child DOB": fmt(dob),
            "Date of Death": fmt(dod),
            "Gender": ["Male", "Female", "M", "F"][i % 4],
            "Home LA": las[i % len(las)],
            "Cat. of death": cats[i % len(cats)],
            "Ethnic Origin (ONS 2021)": eth[i % len(eth)],
            "Modifiable Factors": (["Yes - modifiable factors identified", "No - no modifiable factors identified",
                                    "No - no modifiable factors identified"][i % 4 % 3] if reviewed else None),
            "Date CDOP Review Completed": review.strftime("%d/%m/%Y") if review else None,
            "Panel notes": "Seen by GP, then A&E" if i % 5 == 0 else None,
        })
    rows[7]["Cat. of death"] = "Perinatal/neonatel event"
    rows[11]["Gender"] = None
    rows[15]["Child DOB"] = None
    rows[3]["Panel notes"] = "=SUM(A1:A9)"
    frame = pd.DataFrame(rows)
    wb = Workbook()
    ws = wb.active
    ws.title = "Deaths 2022-23"
    ws.append(list(frame.columns))
    for r in rows:
        ws.append([r[c] for c in frame.columns])
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"           # text that looks like a formula stays text
            if isinstance(cell.value, dt.date):
                cell.number_format = "DD/MM/YYYY"
    wb.create_sheet("Notes").append(["Exported from the case-management system (test data, not real)"])
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    columns.write_text(COLUMNS_TOML, encoding="utf-8")
    return frame


def _read(*args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CdrWarning)
        return read_records(*args, today=TODAY, **kw)


def _raw(**over):
    base = {"case_id": ["A1"], "date_of_death": ["2022-05-02"], "age_days": [40], "sex": ["F"],
            "la_code": ["E06000001"], "category": ["Infection"]}
    base.update({k: [v] for k, v in over.items()})
    return pd.DataFrame(base)


# ---------------------------------------------------------------------------------------------
# acceptance: the export


def test_export_fixture_is_the_documented_shape():
    frame = pd.read_excel(EXPORT, sheet_name=0, dtype=object)
    assert len(frame) == N_EXPORT and "IMD" not in " ".join(frame.columns)
    assert frame["Panel notes"].astype(str).str.contains("=SUM(A1:A9)", regex=False).any()
    assert frame["Panel notes"].astype(str).str.contains(",", regex=False).any()


def test_lenient_counts_every_death_of_the_export():
    result = _read(EXPORT, columns=COLUMNS, mode="lenient")
    records = result.records
    assert len(records) == N_EXPORT and result.exclusions.empty               # rows in = deaths counted
    assert set(records["la_code"]) == set(LA.values())
    assert set(records["reporting_year"]) == {"2022-23"}
    # the bad optional values are not recorded for that field only, and listed
    assert result.issue_counts().set_index("field")["records"].to_dict() == {"category": 1, "sex": 1, "age_days": 1}
    by_ref = records.set_index("case_id")
    assert by_ref.loc["WKC-2207", "category"] == "not_recorded"
    assert by_ref.loc["WKC-2211", "sex"] == "unknown"
    assert by_ref.loc["WKC-2215", "age_band"] == "not_recorded"
    # values mapped by the columns file and the built-in spellings
    assert by_ref.loc["WKC-2201", "ethnicity"] == "asian" and by_ref.loc["WKC-2201", "ethnicity_detailed"] == "asian_pakistani"
    assert set(records.loc[records["reviewed"], "modifiable"]) <= {"yes", "no"}
    assert records.loc[records["reviewed"], "modifiable"].notna().all()
    assert "Panel notes" not in records.columns                                # ignored by the columns file
    assert (records["imd_decile"].isna()).all()


def test_strict_mode_fails_on_the_export_and_suggests_the_category():
    with pytest.raises(RecordValidationError) as caught:
        read_records(EXPORT, columns=COLUMNS, today=TODAY)
    message = str(caught.value)
    assert "did you mean 'Perinatal/neonatal event' (perinatal_neonatal)?" in message
    assert "row 8" in message and "row 12" in message and "row 16" in message


def test_cli_reads_the_export_with_a_columns_file(tmp_path, capsys):
    issues = tmp_path / "deep" / "issues.csv"
    code = main(["data", "validate", str(EXPORT), "--columns", str(COLUMNS), "--lenient", "--issues", str(issues)])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert f"{N_EXPORT} records read" in out.out and f"{N_EXPORT} counted, 0 excluded" in out.out
    assert "'Home LA' -> la_code" in out.out
    assert len(pd.read_csv(issues)) == 3
    code = main(["data", "validate", str(EXPORT), "--columns", str(COLUMNS)])
    err = capsys.readouterr().err
    assert code == 2 and "did you mean 'Perinatal/neonatal event'" in err and "--lenient" in err
    assert 'mode="lenient"' not in err and "Traceback" not in err


def test_report_counts_every_death_of_the_export(tmp_path, capsys):
    design = tmp_path / "design.csv"
    pd.DataFrame({"la_code": list(LA.values()), "footprint_id": "WKC"}).to_csv(design, index=False)
    out = tmp_path / "bundle"
    code = main(["report", "--records", str(EXPORT), "--columns", str(COLUMNS), "--lenient", "--design", str(design),
                 "--footprint", "WKC", "--year", "2022-23", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert f"records: {N_EXPORT} read, 0 excluded as invalid, {N_EXPORT} in 2022-23" in captured.out
    headline = pd.read_csv(out / "tables" / "headline.csv")
    assert headline.loc[0, "deaths"] == N_EXPORT                                # every death of the year
    comparators = pd.read_csv(out / "tables" / "comparators.csv", dtype=str).set_index(["area_code", "measure"])
    assert float(comparators.loc[("E92000001", "deaths"), "value"]) > 1000     # England: a published figure
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["records"]["fields_not_recorded"] == {"age_days": "[c]", "category": "[c]", "sex": "[c]"}
    text = "".join(p.read_text(errors="ignore") for p in out.rglob("*") if p.suffix in (".csv", ".json", ".html"))
    assert "WKC-22" not in text                                                  # no case id is published


# ---------------------------------------------------------------------------------------------
# headers and columns files


def test_common_header_spellings_are_recognised_and_unused_columns_named():
    frame = pd.DataFrame({"CDOP Ref": ["K1"], "D.O.D.": ["03/04/2022"], "Date of Birth": ["01/03/2022"],
                          "GENDER": ["Female"], "LA of Residence": ["Kirklees"], "Category of Death": ["Infection"],
                          "Date review completed": ["01/10/2022"], "Modifiable Factors": ["No"],
                          "Free text": ["anything"], "Keyworker": ["x"]})
    with pytest.warns(CdrWarning, match=r"2 input column\(s\) not used: 'Free text', 'Keyworker'"):
        result = validate_records(frame, today=TODAY)
    used = dict(result.columns.values.tolist())
    assert used["D.O.D."] == "date_of_death" and used["Date review completed"] == "review_completed"
    assert used["Free text"] == "(not used)"
    row = result.records.iloc[0]
    assert (row["la_code"], row["modifiable"], row["age_days"]) == ("E08000034", "no", 33)
    assert row["Free text"] == "anything"                                        # carried along unchanged


def test_a_columns_mapping_to_a_missing_header_suggests_the_close_one(tmp_path):
    frame = _raw().rename(columns={"date_of_death": "Date Of Death"})
    with pytest.raises(RecordValidationError, match=r"'Date of Deth': no such column in the file \(did you mean 'Date Of Death'\?\)"):
        validate_records(frame, columns={"Date of Deth": "date_of_death"})
    with pytest.raises(RecordValidationError, match=r"'date_of_deth' is not a cdr field \(did you mean 'date_of_death'\?\)"):
        validate_records(frame, columns={"Date Of Death": "date_of_deth"})


def test_two_columns_for_one_field_must_be_resolved():
    frame = _raw().assign(DOD=["2022-05-02"])
    with pytest.raises(RecordValidationError, match="two or more columns give the same field: date_of_death"):
        validate_records(frame)
    records = validate_records(frame, columns={"DOD": "ignore"}).records
    assert len(records) == 1 and "DOD" not in records


def test_values_table_maps_raw_values_before_the_built_in_spellings():
    frame = _raw(sex="Boy-ish", la_code="Wakefield MDC", category="Neonatal")
    result = validate_records(frame, values={"sex": {"Boy-ish": "male"}, "la_code": {"Wakefield MDC": "E08000036"},
                                             "category": {"Neonatal": "Perinatal/neonatal event"}})
    assert result.records.loc[0, ["sex", "la_code", "category"]].tolist() == ["male", "E08000036", "perinatal_neonatal"]
    with pytest.raises(RecordValidationError, match="did you mean 'female'"):
        validate_records(frame, values={"sex": {"Boy-ish": "femal"}})


def test_columns_file_errors_name_the_file_and_the_fix(tmp_path):
    bad = tmp_path / "cols.toml"
    bad.write_text("[columns]\n\"DOD\" = date_of_death\n")
    with pytest.raises(CdrError, match=r"cols.toml: is not valid TOML"):
        read_records(_write_csv(tmp_path, _raw()), columns=bad)
    with pytest.raises(CdrError, match="no such columns file"):
        read_records(_write_csv(tmp_path, _raw()), columns=tmp_path / "missing.toml")


# ---------------------------------------------------------------------------------------------
# values


@pytest.mark.parametrize("text, expected", [
    ("3/4/22", "2022-04-03"), ("03/04/2022", "2022-04-03"), ("03-04-2022", "2022-04-03"),
    ("03.04.2022", "2022-04-03"), ("3 April 2022", "2022-04-03"), ("3 Apr 2022", "2022-04-03"),
    ("03-Apr-22", "2022-04-03"), ("3rd April 2022", "2022-04-03"), ("2022-04-03", "2022-04-03"),
    ("2022-04-03 00:00:00", "2022-04-03"), ("44654", "2022-04-03"),      # Excel serial: 1899-12-30 + 44654 days
    ("12/1/05", "2005-01-12"), ("29/2/2020", "2020-02-29"),
])
def test_dates_are_read_day_first_in_every_uk_form(text, expected):
    records = validate_records(_raw(date_of_death=text), today=TODAY).records
    assert str(records.loc[0, "date_of_death"].date()) == expected


@pytest.mark.parametrize("text", ["04/13/2022", "31/02/2022", "2022-13-01", "next Tuesday", "13 Smarch 2022"])
def test_month_first_and_impossible_dates_are_errors(text):
    with pytest.raises(RecordValidationError) as caught:
        validate_records(_raw(date_of_death=text), today=TODAY)
    assert caught.value.errors["rule"].tolist() == ["bad_date"]
    assert "never month first" in str(caught.value)


def test_excel_date_cells_and_serials_are_dates(tmp_path):
    frame = _raw(date_of_death=dt.datetime(2022, 4, 3), age_days=None, date_of_birth=44600)
    path = tmp_path / "cells.xlsx"
    frame.to_excel(path, index=False)
    records = _read(path).records
    assert str(records.loc[0, "date_of_death"].date()) == "2022-04-03"
    assert records.loc[0, "age_days"] == 54                                    # 44654 - 44600


@pytest.mark.parametrize("name, code", [
    ("Wakefield", "E08000036"), ("  kirklees ", "E08000034"), ("CALDERDALE", "E08000033"),
    ("Herefordshire", "E06000019"), ("Herefordshire, County of", "E06000019"), ("Bristol", "E06000023"),
    ("City of Bristol", "E06000023"), ("Kingston upon Hull", "E06000010"), ("Bournemouth", "E06000058"),
    ("Brighton & Hove", "E06000043"), ("St. Helens", "E08000013"), ("Harrogate", "E06000065"),
    ("North Yorkshire", "E06000065"), ("e08000036", "E08000036"),
])
def test_la_names_are_translated_to_codes_and_listed(name, code):
    result = _read(_raw(la_code=name))
    assert result.records.loc[0, "la_code"] == code
    if name.strip().upper() != code:
        assert result.translated[["la_code_original", "la_code"]].values.tolist() == [[name.strip(), code]]


def test_unknown_la_name_gets_a_suggestion_and_split_cumbria_an_error():
    with pytest.raises(RecordValidationError, match=r"did you mean 'Kirklees' \(E08000034\)\?"):
        validate_records(_raw(la_code="Kirkless"), today=TODAY)
    with pytest.raises(RecordValidationError) as caught:
        validate_records(_raw(la_code="Cumbria"), today=TODAY)
    assert caught.value.errors["rule"].tolist() == ["split_la_code"]


# ONS 2021 Census: 19 groups in 5 high-level groups (ons.gov.uk, "Ethnic group classifications: Census 2021").
ONS_19 = {
    "Bangladeshi": "asian", "Chinese": "asian", "Indian": "asian", "Pakistani": "asian", "Other Asian": "asian",
    "African": "black", "Caribbean": "black", "Other Black": "black",
    "White and Asian": "mixed", "White and Black African": "mixed", "White and Black Caribbean": "mixed",
    "Other Mixed or Multiple ethnic groups": "mixed",
    "English, Welsh, Scottish, Northern Irish or British": "white", "Irish": "white",
    "Gypsy or Irish Traveller": "white", "Roma": "white", "Other White": "white",
    "Arab": "other", "Any other ethnic group": "other",
}


def test_the_19_ons_groups_map_to_their_high_level_group_and_are_kept():
    frame = pd.concat([_raw(case_id=f"E{i}", ethnicity=g) for i, g in enumerate(ONS_19)], ignore_index=True)
    records = validate_records(frame, today=TODAY).records.set_index("case_id")
    got = {g: records.loc[f"E{i}", "ethnicity"] for i, g in enumerate(ONS_19)}
    assert got == ONS_19
    assert records["ethnicity_detailed"].nunique() == 19 and len(schema.ETHNIC_GROUPS_19) == 19


@pytest.mark.parametrize("spelling, group, detailed", [
    ("White - British", "white", "white_british"), ("Asian or Asian British - Pakistani", "asian", "asian_pakistani"),
    ("Black or Black British: Caribbean", "black", "black_caribbean"), ("Any other White background", "white", "white_other"),
    ("Mixed - Any other mixed background", "mixed", "mixed_other"), ("Not stated", "unknown", None),
    ("Black", "black", None), ("J", "asian", "asian_pakistani"),
])
def test_common_export_spellings_of_ethnicity(spelling, group, detailed):
    records = validate_records(_raw(ethnicity=spelling), today=TODAY).records
    assert records.loc[0, "ethnicity"] == group
    assert (records.loc[0, "ethnicity_detailed"] if "ethnicity_detailed" in records else None) == detailed


@pytest.mark.parametrize("raw, key", [
    ("Yes - modifiable factors identified", "yes"), ("No - no modifiable factors identified", "no"),
    ("Modifiable factors identified", "yes"), ("No modifiable factors identified", "no"),
    ("Insufficient information", "insufficient_information"), ("Y", "yes"), ("yes (see notes)", "yes"),
])
def test_modifiable_spellings(raw, key):
    records = validate_records(_raw(modifiable=raw, review_completed="01/12/2022"), today=TODAY).records
    assert records.loc[0, "modifiable"] == key


def test_unknown_values_get_did_you_mean():
    with pytest.raises(RecordValidationError) as caught:
        validate_records(_raw(category="Perinatal/neonatel event", sex="femal"), today=TODAY)
    reasons = dict(zip(caught.value.errors["field"], caught.value.errors["reason"]))
    assert reasons["category"].endswith("did you mean 'Perinatal/neonatal event' (perinatal_neonatal)?")
    assert reasons["sex"].endswith("did you mean 'female'?")


# ---------------------------------------------------------------------------------------------
# count every death


def test_bad_optional_fields_are_not_recorded_and_the_death_counted():
    frame = pd.concat([
        _raw(case_id="A1"),
        _raw(case_id="A2", ethnicity="martian", imd_decile="12", review_completed="5/5/2022", modifiable="maybe",
             domain_child="9"),
        _raw(case_id="A3", age_days=None),                    # no age, no date of birth
        _raw(case_id="A4", review_completed="not a date", modifiable="yes"),
        _raw(case_id="A5", la_code="Atlantis"),               # core field unusable: excluded
        _raw(case_id="A6", date_of_death="32/01/2022"),       # core field unusable: excluded
    ], ignore_index=True)
    result = validate_records(frame, mode="lenient", today=TODAY)
    assert len(result.records) + len(result.exclusions) == result.n_input == 6
    assert sorted(result.records["case_id"]) == ["A1", "A2", "A3", "A4"]
    assert result.exclusions["case_id"].tolist() == ["A5", "A6"]
    rec = result.records.set_index("case_id")
    assert rec.loc["A2", "ethnicity"] == "unknown" and pd.isna(rec.loc["A2", "imd_decile"])
    assert pd.isna(rec.loc["A2", "modifiable"]) and pd.isna(rec.loc["A2", "domain_child"]) and rec.loc["A2", "reviewed"]
    assert rec.loc["A3", "age_band"] == "not_recorded" and pd.isna(rec.loc["A3", "age_days"])
    assert not rec.loc["A4", "reviewed"] and pd.isna(rec.loc["A4", "modifiable"])
    fields = set(result.issues["field"])
    assert {"ethnicity", "imd_decile", "modifiable", "domain_child", "age_days", "review_completed"} <= fields
    assert set(result.issues["row"]) == {2, 3, 4}


def test_duplicates_keep_the_first_record_in_lenient_mode():
    frame = pd.concat([_raw(case_id="D1"), _raw(case_id="D1", age_days=41), _raw(case_id="D2")], ignore_index=True)
    result = validate_records(frame, mode="lenient", today=TODAY)
    assert result.records["case_id"].tolist() == ["D1", "D2"] and result.records["age_days"].tolist() == [40, 40]
    assert result.exclusions["row"].tolist() == [2]


# ---------------------------------------------------------------------------------------------
# exact calendar ages (issue 13)


@pytest.mark.parametrize("dob, dod, counted", [
    ("2002-01-10", "2020-01-09", True),     # the day before the 18th birthday: 17
    ("2002-01-10", "2020-01-10", False),    # the 18th birthday: 18, not a child death
    ("2004-02-29", "2022-02-28", True),     # born 29 February: 18 on 1 March in a common year
    ("2004-02-29", "2022-03-01", False),
    ("2001-03-01", "2019-02-28", True),     # 6573 days, four leap days
])
def test_a_child_is_under_18_until_the_day_before_their_18th_birthday(dob, dod, counted):
    result = validate_records(_raw(date_of_birth=dob, date_of_death=dod, age_days=None), mode="lenient", today=TODAY)
    assert len(result.records) == int(counted)
    if counted:
        assert result.records.loc[0, "age_band"] == "15-17"
    else:
        assert result.exclusions["reason"].str.contains("18 or over").all()


def test_age_in_days_alone_uses_the_exact_18th_birthday():
    # died 2019-03-01 aged 6575 days: born 2001-03-01 (4 leap days in between) -> 18 on 2019-03-01
    over = validate_records(_raw(date_of_death="2019-03-01", age_days=6574), mode="lenient", today=TODAY)
    assert over.records.empty and "18 or over" in over.exclusions.loc[0, "reason"]
    ok = validate_records(_raw(date_of_death="2020-03-01", age_days=6574), mode="lenient", today=TODAY)
    assert len(ok.records) == 1          # born 2002-02-29+... 6574 days before 2020-03-01 is 2002-03-02: still 17


@pytest.mark.parametrize("days, dod, band", [
    (365, "2020-03-01", "postneonatal"),   # born 2019-03-02: first birthday tomorrow
    (366, "2020-03-01", "1-4"),
    (365, "2019-03-01", "1-4"),            # born 2018-03-01: first birthday today
    (1826, "2024-01-01", "5-9"),           # born 2019-01-01 (leap 2020): 5th birthday 2024-01-01 -> 1826 days
    (1825, "2024-01-01", "1-4"),
])
def test_age_bands_use_completed_calendar_years(days, dod, band):
    assert schema.age_band([days], date_of_death=[dod]).tolist() == [band]


# ---------------------------------------------------------------------------------------------
# files: encodings, separators, sheets, broken files


def _write_csv(tmp_path, frame, name="records.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"])
def test_text_encodings_are_detected(tmp_path, encoding):
    frame = _raw(la_code="Wakefield").assign(notes=["Zoë, café"])
    path = tmp_path / "enc.csv"
    path.write_bytes(frame.to_csv(index=False).encode(encoding))
    result = _read(path)
    assert result.records.loc[0, "notes"] == "Zoë, café"
    assert result.source["encoding"] in {"utf-8": ("utf-8",), "utf-8-sig": ("utf-8-sig",), "utf-16": ("utf-16",),
                                         "cp1252": ("cp1252",), "latin-1": ("cp1252",)}[encoding]


def test_non_utf8_files_are_stated(tmp_path):
    path = tmp_path / "win.csv"
    path.write_bytes(_raw().assign(notes=["café"]).to_csv(index=False).encode("cp1252"))
    with pytest.warns(CdrWarning, match="read as cp1252"):
        read_records(path, today=TODAY)


def test_tab_separated_files(tmp_path):
    path = tmp_path / "records.tsv"
    _raw().to_csv(path, sep="\t", index=False)
    assert _read(path).records.loc[0, "la_code"] == "E06000001"
    txt = tmp_path / "records.txt"
    _raw().to_csv(txt, sep="\t", index=False)
    assert _read(txt).source["separator"] == "tab"


def test_excel_sheet_choice(tmp_path):
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"note": ["cover"]}).to_excel(writer, sheet_name="Cover", index=False)
        _raw().to_excel(writer, sheet_name="Deaths", index=False)
    assert _read(path, sheet="Deaths").records.loc[0, "case_id"] == "A1"
    assert _read(path, sheet=1).source["sheet"] == "Deaths"
    with pytest.raises(CdrError, match=r"has no sheet 'Death'.*Did you mean 'Deaths'\?"):
        read_records(path, sheet="Death")


def test_title_rows_above_the_header_of_a_sheet_are_skipped(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["Child deaths notified, 2022-23"])
    ws.append([])
    ws.append(list(_raw().columns))
    ws.append(_raw().iloc[0].tolist())
    path = tmp_path / "titled.xlsx"
    wb.save(path)
    with pytest.warns(CdrWarning, match="the header is on sheet row 3"):
        result = read_records(path, today=TODAY)
    assert result.records["case_id"].tolist() == ["A1"] and result.n_input == 1


BROKEN = {
    "empty": (b"", "is empty"),
    "newlines": (b"\n\n\r\n\n", "only blank lines"),
    "ragged": (b"case_id,date_of_death,age_days,sex,la_code,category\nA1,2022-01-01,3,F,E06000001,Infection\n"
               b"A2,2022-01-01,3,F,E06000001,Infection,extra,more\n", "line 3 has 8 fields but the header has 6"),
    "quote": (b'case_id,date_of_death,age_days,sex,la_code,category\nA1,2022-01-01,3,F,E06000001,"Infection\n'
              b"A2,2022-01-01,3,F,E06000001,Infection\n", "never closed"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_files_give_one_clear_error(tmp_path, kind):
    content, phrase = BROKEN[kind]
    path = tmp_path / f"{kind}.csv"
    path.write_bytes(content)
    with pytest.raises(schema.RecordFileError, match=phrase):
        read_records(path)


@pytest.mark.parametrize("kind", [*sorted(BROKEN), "folder", "missing", "binary", "undecodable_utf16"])
@pytest.mark.parametrize("command", ["validate", "trends", "factors", "report"])
def test_every_command_ends_broken_input_in_one_line_and_exit_2(tmp_path, capsys, kind, command):
    if kind == "folder":
        path = tmp_path / "a_folder"
        path.mkdir()
    elif kind == "missing":
        path = tmp_path / "missing.csv"
    elif kind == "binary":
        path = tmp_path / "records.xlsx"
        path.write_bytes(b"\x00\x01 not a workbook")
    elif kind == "undecodable_utf16":
        path = tmp_path / "records.csv"
        path.write_bytes(b"\xff\xfe" + b"\x00\xd8" + b"a\x00")     # BOM then a lone surrogate
    else:
        path = tmp_path / f"{kind}.csv"
        path.write_bytes(BROKEN[kind][0])
    out = tmp_path / "out"
    argv = {"validate": ["data", "validate", str(path)],
            "trends": ["trends", "--records", str(path), "--out", str(out)],
            "factors": ["factors", "--records", str(path), "--out", str(out)],
            "report": ["report", "--records", str(path), "--year", "2022-23", "--level", "nation", "--out", str(out)]}
    assert main(argv[command]) == 2
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("cdr ") and ": error: " in lines[0], err
    assert "Traceback" not in err and str(path.name) in err


def test_cdr_debug_shows_the_traceback(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    cmd = [sys.executable, "-m", "cdr", "data", "validate", str(path)]
    root = Path(__file__).resolve().parents[1]
    quiet = subprocess.run(cmd, capture_output=True, text=True, cwd=root)
    loud = subprocess.run(cmd, capture_output=True, text=True, cwd=root, env={**_env(), "CDR_DEBUG": "1"})
    assert quiet.returncode == loud.returncode == 2
    assert "Traceback" not in quiet.stderr and "Traceback" in loud.stderr


def _env():
    import os

    return dict(os.environ)


# ---------------------------------------------------------------------------------------------
# one CLI vocabulary, templates


def test_every_record_command_has_lenient_columns_and_the_same_help(capsys):
    for argv in (["report", "--help"], ["trends", "--help"], ["factors", "--help"], ["data", "validate", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = " ".join(capsys.readouterr().out.split())
        assert "--lenient" in text and "--columns" in text and "--sheet" in text, argv
        assert "--mode" not in text, argv
        assert "CSV, TSV, Excel" in text, argv


def test_mode_is_kept_as_a_hidden_alias(tmp_path, capsys):
    path = _write_csv(tmp_path, pd.concat([_raw(case_id="A1"), _raw(case_id="A2", la_code="E99999999")]))
    assert main(["trends", "--records", str(path), "--mode", "lenient", "--out", str(tmp_path / "t")]) in (0, 2)
    assert "1 excluded" in capsys.readouterr().out


def test_synth_creates_output_folders(tmp_path, capsys):
    out = tmp_path / "new" / "deeper" / "records.csv"
    assert main(["data", "synth", "--years", "2019", "--out", str(out)]) == 0
    assert out.is_file()


def test_template_and_columns_commands(tmp_path, capsys):
    assert main(["data", "template", "--out", str(tmp_path / "tpl")]) == 0
    csv = pd.read_csv(tmp_path / "tpl" / "records_template.csv")
    assert list(csv.columns)[:3] == ["case_id", "date_of_birth", "date_of_death"] and csv.empty
    allowed = pd.read_excel(tmp_path / "tpl" / "records_template.xlsx", sheet_name="allowed values")
    assert "Perinatal/neonatal event" in allowed.set_index("field").loc["category", "values"]
    cols, values = schema.load_columns_file(tmp_path / "tpl" / "columns.toml")
    assert cols == {} and values == {"modifiable": {}, "la_code": {}}
    capsys.readouterr()
    assert main(["data", "columns"]) == 0
    out = capsys.readouterr().out
    assert "date_of_death  [core, date]" in out and "DOD" in out and "LA of residence" in out


def test_an_optional_categorical_field_is_one_declarative_entry(monkeypatch):
    # a field cdr.fields does not define (cdr.fields' own report fields are tested in test_content)
    place = schema.Field("place_of_review", "category", "where the review took place", headers=("place of review",),
                         values={"hospital": "Hospital", "home": "Home"}, rule="bad_place")
    monkeypatch.setitem(schema.FIELDS, "place_of_review", place)
    frame = pd.concat([_raw(case_id="P1").assign(**{"Place of Review": "HOSPITAL"}),
                       _raw(case_id="P2").assign(**{"Place of Review": "Hopsital"})], ignore_index=True)
    with pytest.raises(RecordValidationError, match="did you mean 'Hospital' \\(hospital\\)\\?"):
        validate_records(frame, today=TODAY)
    result = validate_records(frame, mode="lenient", today=TODAY)
    assert result.records["place_of_review"].tolist() == ["hospital", None]        # not recorded, death counted
    assert result.issues[["row", "field"]].values.tolist() == [[2, "place_of_review"]]


if __name__ == "__main__":   # rewrite the committed fixture
    make_export()
    print(f"wrote {EXPORT} and {COLUMNS}")
