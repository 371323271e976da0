"""cdr.schema: every validation rule on a crafted bad CSV file, modes, round trips."""
import warnings

import pandas as pd
import pytest

from cdr import schema
from cdr.errors import CdrWarning, DataVintageWarning, RecordValidationError
from cdr.schema import read_records
from cdr.synthetic import generate_records

TODAY = "2024-06-30"
GOOD = {
    "case_id": "C1", "date_of_birth": "2020-01-01", "date_of_death": "2020-01-11", "age_days": "10",
    "sex": "female", "la_code": "E06000001", "category": "perinatal_neonatal", "review_completed": "2020-09-01",
    "modifiable": "no", "domain_child": "2", "domain_social": "1", "domain_physical": "1*", "domain_service": "0",
    "imd_decile": "3", "ethnicity": "white",
}


def _file(tmp_path, rows, drop=()):
    """A CSV with GOOD rows C1..Cn (overridden by `rows`, a list of dicts), header on line 1."""
    frame = pd.DataFrame([{**GOOD, "case_id": f"C{i + 1}", **r} for i, r in enumerate(rows)]).drop(columns=list(drop))
    path = tmp_path / "records.csv"
    frame.to_csv(path, index=False)
    return path


def _errors(path, **kw):
    with pytest.raises(RecordValidationError) as info:
        read_records(path, today=TODAY, **kw)
    return info.value


@pytest.mark.parametrize(
    "bad, field, rule",
    [
        ({"la_code": "E06000999"}, "la_code", "unknown_la_code"),
        ({"la_code": "E10000006"}, "la_code", "split_la_code"),            # Cumbria, split in 2023
        ({"category": "drowning"}, "category", "unknown_category"),
        ({"sex": "x"}, "sex", "unknown_sex"),
        ({"sex": ""}, "sex", "missing_value"),
        ({"ethnicity": "martian"}, "ethnicity", "unknown_ethnicity"),
        ({"imd_decile": "11"}, "imd_decile", "bad_imd_decile"),
        ({"imd_decile": "2.5"}, "imd_decile", "bad_imd_decile"),
        ({"domain_social": "4"}, "domain_social", "bad_domain_level"),
        ({"modifiable": "maybe"}, "modifiable", "bad_modifiable"),
        ({"date_of_death": "2020-13-45"}, "date_of_death", "bad_date"),
        ({"age_days": "ten"}, "age_days", "bad_number"),
        ({"date_of_birth": "", "age_days": "-1"}, "age_days", "negative_age"),
        ({"date_of_birth": "", "age_days": "6575"}, "age_days", "age_18_or_over"),
        ({"date_of_birth": "2002-01-10", "age_days": "", "date_of_death": "2020-01-10"}, "date_of_birth", "age_18_or_over"),
        ({"date_of_birth": "2020-02-01", "age_days": ""}, "date_of_birth", "death_before_birth"),
        ({"age_days": "12"}, "age_days", "age_dates_mismatch"),
        ({"date_of_birth": "", "date_of_death": "2024-07-11", "review_completed": ""}, "date_of_death", "future_date"),
        ({"review_completed": "2024-07-01"}, "review_completed", "future_date"),
        ({"review_completed": "2020-01-05"}, "review_completed", "review_before_death"),
        ({"review_completed": "", "domain_child": "", "domain_social": "", "domain_physical": "",
          "domain_service": "", "modifiable": "yes"}, "modifiable", "outcome_without_review"),
        ({"review_completed": "", "modifiable": "", "domain_social": "", "domain_physical": "",
          "domain_service": ""}, "domain_child", "outcome_without_review"),
        ({"case_id": ""}, "case_id", "missing_value"),
        ({"category": ""}, "category", "missing_value"),
    ],
)
def test_each_rule_names_the_row_and_field(tmp_path, bad, field, rule):
    path = _file(tmp_path, [{}, {}, bad, {}])          # the bad record is data row 3 (CSV line 4)
    err = _errors(path)
    found = err.errors[(err.errors["rule"] == rule)]
    assert found[["row", "field"]].values.tolist() == [[3, field]]
    assert err.errors["row"].unique().tolist() == [3]
    line = next(x for x in str(err).splitlines() if x.strip().startswith("row 3") and f"{field}=" in x)
    assert "case_id=" in line
    assert str(err).startswith("1 of 4 records are invalid (strict mode)")


def test_duplicate_case_ids_report_every_occurrence(tmp_path):
    path = _file(tmp_path, [{}, {"case_id": "C9"}, {}, {"case_id": "C9"}])
    err = _errors(path)
    dup = err.errors[err.errors["rule"] == "duplicate_case_id"]
    assert dup["row"].tolist() == [2, 4] and set(dup["case_id"]) == {"C9"}
    assert "rows 2, 4" in dup["reason"].iloc[0]


def test_missing_required_column_raises_in_strict_mode_and_is_not_recorded_in_lenient(tmp_path):
    path = _file(tmp_path, [{}], drop=["category"])
    err = _errors(path)
    assert err.errors["field"].tolist() == ["category"] and "category" in str(err)
    with pytest.warns(CdrWarning, match="category not in the records"):
        result = read_records(path, mode="lenient", today=TODAY)
    assert result.records["category"].tolist() == ["not_recorded"] and result.exclusions.empty


@pytest.mark.parametrize("mode", ["strict", "lenient"])
def test_missing_core_column_raises_in_both_modes(tmp_path, mode):
    err = _errors(_file(tmp_path, [{}], drop=["la_code"]), mode=mode)
    assert err.errors["field"].tolist() == ["la_code"]


def test_age_days_may_be_derived_from_dates(tmp_path):
    path = _file(tmp_path, [{"age_days": ""}], drop=[])
    records, _ = read_records(path, today=TODAY)
    assert records.loc[0, "age_days"] == 10
    records, _ = read_records(_file(tmp_path, [{}], drop=["age_days"]), today=TODAY)
    assert records.loc[0, "age_days"] == 10


def test_missing_age_and_birth_date_is_an_error(tmp_path):
    err = _errors(_file(tmp_path, [{"age_days": "", "date_of_birth": ""}]))
    assert err.errors[["row", "field", "rule"]].values.tolist() == [[1, "age_days", "missing_value"]]


def test_labels_and_codes_are_accepted_case_insensitively(tmp_path):
    path = _file(tmp_path, [{"category": "PERINATAL/NEONATAL EVENT", "sex": "F", "modifiable": "Yes",
                             "domain_child": "Factors identified that may have contributed to vulnerability, ill-health or death",
                             "domain_physical": "1*", "ethnicity": "Black or Black British",
                             "date_of_death": "11/01/2020"}])
    records, _ = read_records(path, today=TODAY)
    row = records.iloc[0]
    assert (row["category"], row["sex"], row["modifiable"], row["domain_child"], row["domain_physical"],
            row["ethnicity"]) == ("perinatal_neonatal", "female", "yes", "may_have_contributed", "unlikely", "black")
    assert row["date_of_death"] == pd.Timestamp("2020-01-11")


def test_level_map_reads_another_scale(tmp_path):
    path = _file(tmp_path, [{"domain_child": "B", "domain_social": "A", "domain_physical": "A", "domain_service": "C"}])
    records, _ = read_records(path, today=TODAY, level_map={"A": "none", "B": "may_have_contributed", "C": "sufficient"})
    assert records.loc[0, ["domain_child", "domain_social", "domain_service"]].tolist() == [
        "may_have_contributed", "none", "sufficient"]


def test_other_vintage_codes_are_translated_and_noted(tmp_path):
    path = _file(tmp_path, [{"la_code": "E10000023"}, {}])   # North Yorkshire, recoded in 2023
    with pytest.warns(DataVintageWarning):
        result = read_records(path, today=TODAY)
    assert result.records.set_index("case_id").loc["C1", "la_code"] == "E06000065"
    assert result.translated[["row", "la_code_original", "la_code"]].values.tolist() == [[1, "E10000023", "E06000065"]]
    with pytest.warns(DataVintageWarning):
        back = read_records(_file(tmp_path, [{"la_code": "E06000065"}]), today=TODAY, vintage=2021)
    assert back.records.loc[0, "la_code"] == "E10000023"


def test_lenient_excludes_only_unusable_core_fields_and_lists_field_issues(tmp_path):
    path = _file(tmp_path, [{}, {"la_code": "E06000999", "category": "drowning"}, {}, {"sex": "x"}, {}])
    with pytest.warns(CdrWarning, match="4 of 5 records counted"):
        result = read_records(path, mode="lenient", today=TODAY)
    records, exclusions = result
    assert len(records) + len(exclusions) == result.n_input == 5
    assert exclusions["row"].tolist() == [2] and exclusions["case_id"].tolist() == ["C2"]
    assert "la_code" in exclusions.loc[0, "reason"] and "category" in exclusions.loc[0, "reason"]
    assert records["case_id"].tolist() == ["C1", "C3", "C4", "C5"]
    assert records.set_index("case_id").loc["C4", "sex"] == "unknown"      # bad sex -> not known, death kept
    assert result.issues[["row", "field", "rule", "set_to"]].values.tolist() == [[4, "sex", "unknown_sex", "unknown"]]
    assert result.issue_counts().values.tolist() == [["sex", 1]]


def test_strict_and_lenient_find_the_same_records(tmp_path):
    rows = [{"la_code": "E06000999"} if i % 7 == 0 else {"age_days": "11"} if i % 5 == 0 else {} for i in range(40)]
    path = _file(tmp_path, rows)
    err = _errors(path)
    _, exclusions = read_records(path, mode="lenient", today=TODAY)
    assert sorted(err.errors["row"].unique()) == exclusions["row"].tolist()


def test_output_does_not_depend_on_input_row_order():
    rec = generate_records(years=[2019], areas=["E06000001", "E06000002", "E08000025"], seed=3)
    raw = rec[list(schema.RECORD_COLUMNS)]
    a, _ = schema.validate_records(raw)
    b, _ = schema.validate_records(raw.sample(frac=1, random_state=1))
    pd.testing.assert_frame_equal(a, b)
    assert a["case_id"].is_monotonic_increasing


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_synthetic_records_round_trip_through_files(tmp_path, suffix):
    rec = generate_records(years=[2019, 2020], areas=["E06000001", "E09000002", "E06000052"], seed=1)
    path = schema.to_file(rec, tmp_path / f"records{suffix}")
    back, exclusions = read_records(path)
    assert exclusions.empty
    pd.testing.assert_frame_equal(back[rec.columns], rec, check_dtype=True, check_index_type=False)


def test_excel_files_are_read(tmp_path):
    frame = pd.DataFrame([GOOD, {**GOOD, "case_id": "C2", "la_code": "E99"}])
    frame["date_of_death"] = pd.to_datetime(frame["date_of_death"])
    path = tmp_path / "records.xlsx"
    frame.to_excel(path, index=False)
    err = _errors(path)
    assert err.errors[["row", "field"]].values.tolist() == [[2, "la_code"]]


def test_helpers():
    assert schema.age_band([0, 27, 28, 364, 365, 1825, 1826, 3652, 3653, 5478, 5479, 6574]).tolist() == [
        "neonatal", "neonatal", "postneonatal", "postneonatal", "1-4", "1-4", "5-9", "5-9", "10-14", "10-14",
        "15-17", "15-17"]
    ry = schema.reporting_year(pd.Series(pd.to_datetime(["2019-04-01", "2020-03-31", "1999-12-31"])))
    assert ry["reporting_year"].tolist() == ["2019-20", "2019-20", "1999-00"]
    assert ry["reporting_year_start"].tolist() == [2019, 2019, 1999]
    assert schema.contributory(pd.Series(["may_have_contributed", "sufficient", "unlikely", None])).tolist() == [
        True, True, False, False]
    assert list(schema.CATEGORIES)[0] == "abuse_neglect" and len(schema.CATEGORIES) == 10
    assert schema.DOMAIN_LEVEL_CODES["1*"] == "unlikely"


def test_read_result_unpacks_and_reconciles(tmp_path):
    result = read_records(_file(tmp_path, [{}, {}]), today=TODAY)
    records, exclusions = result
    assert len(records) == 2 and exclusions.empty and result.n_input == 2 and result.issues.empty
    assert set(schema.DERIVED_COLUMNS) <= set(records.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_records(_file(tmp_path, [{}]), today=TODAY)


def test_a_file_with_many_bad_rows_gets_a_short_message_with_counts_by_kind():
    from cdr.synthetic import generate_records

    frame = generate_records(years=[2019], seed=2).head(200).copy()
    frame["la_code"] = "E10000006"            # Cumbria: split in 2023, every row invalid
    with pytest.raises(RecordValidationError) as caught:
        schema.validate_records(frame)
    message = str(caught.value)
    assert "200 of 200 records are invalid" in message
    assert "Problems by kind:" in message and "   200  la_code:" in message
    assert sum(line.startswith("  row ") for line in message.splitlines()) == 30
    assert len(caught.value.errors) == 200      # every problem is still in the table
