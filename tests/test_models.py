"""Tests for cdr.models: the packaged annual spec, validation messages, merging and hashing."""
from __future__ import annotations

from pathlib import Path

import pytest

from cdr.errors import SpecError
from cdr.models import SCHEMA, Spec, available_specs, default_spec, load_spec, spec_hash

REPO = Path(__file__).resolve().parents[1]


def test_repository_spec_equals_the_packaged_copy():
    # The package must not read the checkout at run time, so it ships a copy; they must not drift.
    repo = (REPO / "models" / "annual.toml").read_bytes()
    packaged = (REPO / "cdr" / "_data" / "models" / "annual.toml").read_bytes()
    assert repo == packaged


def test_annual_spec_loads_by_name_and_path_with_every_key():
    by_name = load_spec("annual")
    by_path = load_spec(REPO / "models" / "annual.toml")
    assert by_name == by_path == default_spec()
    assert by_name.source == "package:annual" and "annual" in available_specs()
    for section, keys in SCHEMA.items():
        assert set(by_name[section]) == set(keys), section
    assert by_name["years"]["type"] == "reporting"
    assert by_name["suppression"]["threshold"] == 5
    assert by_name["rates"]["min_count_crude"] == 3 and by_name["rates"]["min_count_standardised"] == 10
    assert by_name["factors"]["formula"] == "modifiable ~ C(category) + C(age_band) + imd_quintile + C(sex)"


def test_the_default_factor_formula_is_the_library_default():
    from cdr.factors import DEFAULT_FORMULA

    assert default_spec()["factors"]["formula"] == DEFAULT_FORMULA


def test_partial_spec_is_merged_over_the_default():
    spec = load_spec({"years": {"type": "calendar", "first": 2020, "last": 2024},
                      "trend": {"joinpoint": {"selection": "bic"}}})
    assert spec["years"]["type"] == "calendar" and spec["years"]["pool"] == 1
    assert spec["trend"]["joinpoint"]["selection"] == "bic"
    assert spec["trend"]["joinpoint"]["max_joinpoints"] == 1       # kept from the default
    assert spec["trend"]["family"] == "auto"
    assert spec.name == "custom"


def test_spec_from_a_toml_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[spec]\nname = "mine"\n\n[suppression]\nthreshold = 10\n', encoding="utf-8")
    spec = load_spec(path)
    assert spec.name == "mine" and spec["suppression"]["threshold"] == 10 and spec.source == str(path)


@pytest.mark.parametrize("raw,pattern", [
    ({"years": {"type": "financial"}}, r"years\.type = 'financial' is not allowed; allowed: 'reporting' \| 'calendar'"),
    ({"years": {"typ": "calendar"}}, r"unknown key 'years\.typ' in \[years\].*Did you mean 'type'\?"),
    ({"yeers": {}}, r"unknown key 'yeers' in the top level.*Did you mean 'years'\?"),
    ({"years": {"first": "2019"}}, r"years\.first = '2019' is not allowed; allowed: an integer >= 2008"),
    ({"years": {"first": 2022, "last": 2020}}, r"years\.last = 2020 is before years\.first = 2022"),
    ({"levels": {"report": ["footprint", "county"]}}, r"levels\.report\[1\] = 'county' is not allowed"),
    ({"levels": {"report": []}}, r"levels\.report = \[\] is not allowed; allowed: a list of at least 1"),
    ({"suppression": {"threshold": 2}}, r"suppression\.threshold = 2 is not allowed; allowed: an integer >= 3"),
    ({"suppression": {"secondary": "yes"}}, r"suppression\.secondary = 'yes' is not allowed; allowed: true or false"),
    ({"rates": {"conf": [0.95, 99.8]}}, r"rates\.conf = 99\.8 is not allowed.*\(0, 1\)"),
    ({"factors": {"formula": "modifiable ~ C(category) + income"}}, r"the variable 'income'.*allowed: category"),
    ({"factors": {"formula": "died ~ C(sex)"}}, r"the outcome 'died'.*allowed: modifiable"),
    ({"factors": {"cluster": "icb"}}, r"factors\.cluster = 'icb' is not allowed; allowed: 'none' \| 'la'"),
    ({"trend": {"joinpoint": {"method": "NCI"}}}, r"trend\.joinpoint\.method = 'NCI'.*Did you mean 'nci'\?"),
    ({"tables": {"produce": ["headline", "headline"]}}, r"tables\.produce\[1\].*repeated"),
    ({"years": {"first": 2021, "last": 2024}, "trend": {"joinpoint": {"max_joinpoints": 2}}},
     r"max_joinpoints = 2 needs at least 8 years.*give 4"),
])
def test_invalid_specs_name_the_key_the_value_and_what_is_allowed(raw, pattern):
    # max_joinpoints: NCI Joinpoint needs min_obs_end points at each end, one per joinpoint and
    # min_obs_between strictly between joinpoints: 2 + 1 + 2 + 1 + 2 = 8 years for two.
    with pytest.raises(SpecError, match=pattern):
        load_spec(raw)


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[years]\ntype = 'fiscal'\n", encoding="utf-8")
    with pytest.raises(SpecError, match=f"{path}: years.type = 'fiscal'"):
        load_spec(path)
    path.write_text("[years\n", encoding="utf-8")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(path)
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "missing.toml")
    with pytest.raises(SpecError, match="no packaged spec named 'anual'.*Did you mean 'annual'"):
        load_spec("anual")


def test_hash_is_stable_and_changes_with_any_setting():
    a = load_spec({"years": {"type": "calendar"}, "levels": {"compare_to": "region"}})
    b = load_spec({"levels": {"compare_to": "region"}, "years": {"type": "calendar"}})
    assert a.hash == b.hash == spec_hash(a.to_dict())
    assert a.hash.startswith("sha256:") and len(a.hash) == 7 + 64
    c = load_spec({"years": {"type": "calendar"}, "levels": {"compare_to": "nation"}})
    assert c.hash != a.hash


def test_spec_is_read_only_and_serialisable():
    import json

    spec = default_spec()
    section = spec["years"]
    section["type"] = "calendar"                       # a copy: the spec does not change
    assert spec["years"]["type"] == "reporting"
    assert isinstance(spec, Spec) and json.loads(json.dumps(spec.to_dict())) == spec.to_dict()
    assert "annual" in repr(spec)
    with pytest.raises(KeyError, match="no section 'trends'"):
        spec["trends"]
