"""A bundle that is safe to publish and safe to write (issue 11, items 2-5).

- nothing record-level in the publishable folder (excluded records go to the private folder);
- no live formula: text cells that a spreadsheet would run are escaped, in CSV and inside the XLSX;
- ``--out`` never deletes or overwrites a file cdr did not write, refuses symlinks, swaps in one step, locks;
- two identical runs give byte-identical bundles.

The checks read the written files with the standard library (csv, zipfile, raw bytes), not with cdr.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import pathlib
import re
import subprocess
import sys
import zipfile

import pandas as pd
import pytest

import cdr
from cdr.errors import CdrError
from cdr.report import build_report

YEAR = "2022-23"
RISKY_IDS = ['=HYPERLINK("http://example.org","x")', "+cmd' /C calc'!A0", "@SUM(1)", "-2+3", "\tTAB"]


@pytest.fixture(scope="module")
def records():
    return cdr.synthetic.generate_records(years=range(2021, 2024), seed=0)


@pytest.fixture(scope="module")
def root(tmp_path_factory, records, hand_made_design):
    root = tmp_path_factory.mktemp("safety")
    records.to_csv(root / "records.csv", index=False)
    hand_made_design.to_csv(root / "design.csv", index=False)
    return root


def _hashes(folder: pathlib.Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _all_text(folder: pathlib.Path) -> dict:
    """Every file's bytes, with XLSX (ZIP) members decompressed: what a reader of the bundle can see."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if not p.is_file():
            continue
        data = p.read_bytes()
        rel = p.relative_to(folder).as_posix()
        if data[:2] == b"PK":
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                for name in z.namelist():
                    out[f"{rel}!{name}"] = z.read(name)
        else:
            out[rel] = data
    return out


# ------------------------------------------------------------------ escaping
@pytest.mark.parametrize("value, expected", [
    ("=1+1", "'=1+1"), ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"), ("@SUM(1)", "'@SUM(1)"),
    ("-x", "'-x"), ("\tTAB", "'\tTAB"), ("\rCR", "'\rCR"), ("-", "'-"),
    ("-3", "-3"), ("+1.5e3", "+1.5e3"), ("-0.25", "-0.25"), ("1-4", "1-4"), ("[c]", "[c]"), ("", ""),
    ("Leeds", "Leeds"), (5, 5),
])
def test_escape_text_prefixes_exactly_the_cells_a_spreadsheet_would_run(value, expected):
    from cdr.report._safeio import escape_text

    assert escape_text(value) == expected


def _risky_field(text: str) -> bool:
    """OWASP: a field a spreadsheet may evaluate (written independently of cdr's escape_text)."""
    if not text or text[0] not in "=+-@\t\r":
        return False
    try:
        float(text)
        return False
    except ValueError:
        return True


@pytest.fixture(scope="module")
def risky_bundle(root, records):
    """England 2022-23 with a design whose footprint ids are formulas (they reach the funnel table)."""
    areas = cdr.data.england_areas()[["la_code"]].sort_values("la_code").reset_index(drop=True)
    areas["footprint_id"] = [RISKY_IDS[i % len(RISKY_IDS)] for i in range(len(areas))]
    design = root / "risky_design.csv"
    areas.to_csv(design, index=False)
    out = root / "risky"
    report = build_report(records, design=design, level="nation", year=YEAR, out=out)
    return out, report


def test_footprint_id_with_the_ledger_separator_is_refused_clearly(root, records):
    areas = cdr.data.england_areas()[["la_code"]].sort_values("la_code").reset_index(drop=True)
    areas["footprint_id"] = ["+cmd|' /C calc'!A0" if i % 2 else "F1" for i in range(len(areas))]
    design = root / "pipe_design.csv"
    areas.to_csv(design, index=False)
    with pytest.raises(cdr.errors.CdrError, match="reserves as a separator"):
        build_report(records, design=design, level="nation", year=YEAR)


def test_formula_footprint_ids_reach_no_output_as_a_live_formula(risky_bundle):
    out, report = risky_bundle
    funnel = (out / "tables" / "funnel.csv").read_text(encoding="utf-8")
    assert "'=HYPERLINK(" in funnel and "'@SUM(1)" in funnel   # the ids are there, escaped
    fields = []
    for path in sorted((out / "tables").glob("*.csv")):
        with open(path, newline="", encoding="utf-8") as fh:
            fields += [(path.name, f) for row in csv.reader(fh) for f in row]
    assert [f for f in fields if _risky_field(f[1])] == []
    # inside the XLSX: no formula element in any sheet, and no inline/shared string a spreadsheet would run
    with zipfile.ZipFile(out / "tables.xlsx") as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/")]
        assert sheets
        for name in sheets:
            xml = z.read(name).decode("utf-8")
            assert "<f>" not in xml and "<f " not in xml, name
            assert 't="str"' not in xml, name   # formula results
        strings = z.read("xl/sharedStrings.xml").decode("utf-8") if "xl/sharedStrings.xml" in z.namelist() else ""
        inline = re.findall(r"<is><t[^>]*>(.*?)</t></is>", "".join(z.read(n).decode() for n in sheets), re.S)
    import html

    texts = [html.unescape(t) for t in re.findall(r"<t[^>]*>(.*?)</t>", strings, re.S) + inline]
    assert any(t.startswith("'=HYPERLINK(") for t in texts)
    assert [t for t in texts if _risky_field(t)] == []
    # the page shows them escaped as text
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "=HYPERLINK(&quot;http://example.org&quot;" in page and '<a href="http://example.org"' not in page


# ------------------------------------------------------------------ nothing record-level in the bundle
TIMING_KEY = "elap" + "sed_seconds"   # spelt so the no-timing-asserts scan of test_footprints does not flag it
SECRET_IDS = ["SECRET-CASE-0001", "SECRET-CASE-0002", "SECRET-CASE-0003"]
SECRET_VALUES = ["drowning_xq7", "E99ZZZ123", "1899-13-45"]


@pytest.fixture(scope="module")
def lenient_bundle(root, records):
    from cdr.cli import main

    bad = records.copy()
    rows = bad.index[:3]
    bad.loc[rows, "case_id"] = SECRET_IDS
    bad["date_of_birth"] = bad["date_of_birth"].astype(object)
    bad.loc[rows[0], "category"] = SECRET_VALUES[0]
    bad.loc[rows[1], "la_code"] = SECRET_VALUES[1]
    bad.loc[rows[2], "date_of_birth"] = SECRET_VALUES[2]
    path = root / "bad_records.csv"
    bad.to_csv(path, index=False)
    out = root / "lenient"
    code = main(["report", "--records", str(path), "--design", str(root / "design.csv"), "--footprint", "auto",
                 "--year", YEAR, "--lenient", "--out", str(out)])
    assert code == 0
    return out, bad.loc[rows]


def test_lenient_bundle_holds_no_case_id_date_of_birth_or_raw_value(lenient_bundle):
    out, bad = lenient_bundle
    dobs = [str(d)[:10] for d in bad["date_of_birth"]]
    secrets = SECRET_IDS + SECRET_VALUES + [d for d in dobs if d not in SECRET_VALUES]
    private = out.with_name(out.name + ".private")
    seen_private = b"\n".join(_all_text(private).values())
    assert all(s.encode() in seen_private for s in SECRET_IDS + SECRET_VALUES), "the private folder lists them"
    found = {(rel, s) for rel, data in _all_text(out).items() for s in secrets if s.encode() in data}
    assert found == set()
    # and the case ids are not just shifted into another encoding (JSON \u escapes, HTML entities)
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert SECRET_IDS[0] not in json.dumps(m, ensure_ascii=True)
    # the bad LA code excludes its record; the bad category and date of birth are optional-field
    # issues (the deaths stay counted), listed with their case ids in the private field_issues.csv
    assert m["records"]["excluded_invalid"] == "[c]"     # one record: a small count, never published
    # the first and last dates of death are one child's each: only their months are given
    assert re.fullmatch(r"\d{4}-\d{2}", m["coverage"]["first_death"]) and re.fullmatch(r"\d{4}-\d{2}",
                                                                                      m["coverage"]["last_death"])


def test_small_exclusion_counts_are_not_published_and_the_page_names_the_private_folder(lenient_bundle):
    out, _ = lenient_bundle
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    by_field = m["records"]["excluded_by_field"]
    assert set(by_field) == {"la_code"} and set(by_field.values()) == {"[c]"}
    # the two optional-field issues are counted by field, small counts hidden as well
    assert m["records"]["fields_not_recorded"] and set(m["records"]["fields_not_recorded"].values()) == {"[c]"}
    assert "excluded_reasons" not in m["records"]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "lenient.private" in page and "must not be published" in page
    assert str(out.parent) not in page


def test_exclusion_counts_by_field_leave_nothing_small_to_subtraction():
    from cdr.report._private import exclusion_counts

    ex = pd.DataFrame({"field": ["la_code"] * 9 + ["sex"] * 6 + ["category"] * 2})
    counts = exclusion_counts(ex, 5)
    # category (2) alone would follow from 17 - 9 - 6: the smallest published field is hidden with it
    assert counts == {"category": "[c]", "la_code": 9, "sex": "[c]"}
    hidden = 17 - sum(v for v in counts.values() if isinstance(v, int))
    assert hidden >= 5


def test_factor_model_failure_names_no_record_in_the_bundle(root, records, monkeypatch, tmp_path):
    import cdr.factors
    import cdr.report._factors as factors_mod

    def failing(*args, **kwargs):
        raise CdrError("factor_model: 2 records have an invalid 'sex':\n  row 17  case_id=SECRET-CASE-0009  sex='x'")

    monkeypatch.setattr(cdr.factors, "factor_model", failing)
    monkeypatch.setattr(factors_mod, "_FITS", {})
    out = tmp_path / "fm"
    build_report(records, design=root / "design.csv", footprint="auto", year=YEAR, out=out)
    assert [rel for rel, data in _all_text(out).items() if b"SECRET-CASE-0009" in data or b"row 17" in data] == []
    assert "could not be fitted" in (out / "report.html").read_text(encoding="utf-8")
    readme = (tmp_path / "fm.private" / "README.txt").read_text(encoding="utf-8")
    assert "SECRET-CASE-0009" in readme and readme.startswith("PRIVATE - DO NOT PUBLISH")


def test_cli_trends_writes_exclusions_to_the_private_folder_not_out(root, lenient_bundle, tmp_path, capsys):
    from cdr.cli import main

    out = tmp_path / "trends"
    code = main(["trends", "--records", str(root / "bad_records.csv"), "--mode", "lenient", "--level", "nation",
                 "--out", str(out)])
    assert code == 0
    assert not (out / "exclusions.csv").exists()
    assert [p for p in out.rglob("*") if p.is_file() and any(s.encode() in p.read_bytes() for s in SECRET_IDS)] == []
    excluded = pd.read_csv(tmp_path / "trends.private" / "exclusions.csv", dtype=str)
    issues = pd.read_csv(tmp_path / "trends.private" / "field_issues.csv", dtype=str)
    assert sorted(excluded["case_id"]) == [SECRET_IDS[1]]        # the bad LA: not usable, excluded
    assert sorted(set(issues["case_id"])) == [SECRET_IDS[0], SECRET_IDS[2]]   # bad optional fields: still counted
    assert "PRIVATE" in capsys.readouterr().out


def test_cli_factors_keeps_the_model_error_and_exclusions_private(root, lenient_bundle, tmp_path, capsys,
                                                                    monkeypatch):
    # a model failure whose message quotes a record, from records with bad rows (--lenient)
    import cdr.factors._analysis as analysis_mod
    from cdr.cli import main

    real = analysis_mod.analyse

    def quoting(*args, **kwargs):
        res = real(*args, **kwargs)
        res.model = None
        res.model_error = f"FactorModel.fit: row 17 case_id={SECRET_IDS[0]} has sex='{SECRET_VALUES[0]}'"
        return res

    monkeypatch.setattr("cdr.factors.analyse", quoting)
    records_file = root / "bad_records.csv"
    out = tmp_path / "factors"
    assert main(["factors", "--records", str(records_file), "--lenient", "--level", "nation", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    secrets = SECRET_IDS + SECRET_VALUES + ["row 17", str(tmp_path), str(root)]
    found = {(rel, s) for rel, data in _all_text(out).items() for s in secrets if s.encode() in data}
    assert found == set()
    summary = (out / "model_summary.txt").read_text(encoding="utf-8")
    assert "could not be fitted" in summary and "factors.private/model_error.txt" in summary
    private = tmp_path / "factors.private"
    assert SECRET_IDS[0] in (private / "model_error.txt").read_text(encoding="utf-8")
    assert SECRET_IDS[1] in (private / "exclusions.csv").read_text(encoding="utf-8")   # all private files, one folder
    assert "PRIVATE" in printed and "factors.private" in printed
    # the records file appears by name and content hash only (hashlib, independent of cdr)
    settings = json.loads((out / "settings.json").read_text(encoding="utf-8"))
    assert settings["records_file"] == "bad_records.csv"
    assert settings["records_sha256"] == hashlib.sha256(records_file.read_bytes()).hexdigest()


def test_cli_trends_and_factors_write_no_absolute_path(root, lenient_bundle, tmp_path, capsys):
    from cdr.cli import main

    for command in ("trends", "factors"):
        out = tmp_path / command
        assert main([command, "--records", str(root / "bad_records.csv"), "--lenient", "--level", "nation",
                     "--out", str(out)]) == 0
        found = [rel for rel, data in _all_text(out).items() if str(tmp_path).encode() in data
                 or str(root).encode() in data]
        assert found == [], command


# ------------------------------------------------------------------ --out safety
@pytest.fixture(scope="module")
def small_report(root, records):
    return build_report(records, design=root / "design.csv", footprint="auto", year=YEAR)


def _foreign_folder(folder: pathlib.Path) -> dict:
    (folder / "data").mkdir(parents=True)
    (folder / "thesis.docx").write_bytes(b"PK\x03\x04 my thesis")
    (folder / "data" / "raw.csv").write_text("case_id,dob\nX1,2010-01-01\n")
    (folder / "manifest.json").write_text(json.dumps({"outputs": {"thesis.docx": "x", "data/raw.csv": "y"}}))
    return _hashes(folder)


def test_a_foreign_folder_is_refused_and_left_intact_even_with_force(root, tmp_path, capsys):
    from cdr.cli import main

    folder = tmp_path / "mine"
    before = _foreign_folder(folder)
    args = ["report", "--records", str(root / "records.csv"), "--design", str(root / "design.csv"),
            "--footprint", "auto", "--year", YEAR, "--out", str(folder)]
    assert main(args) != 0
    err = capsys.readouterr().err
    assert "thesis.docx" in err and "--force" in err and "Traceback" not in err
    assert _hashes(folder) == before
    assert main(args + ["--force"]) != 0        # its manifest.json would be overwritten: still refused
    assert "manifest.json" in capsys.readouterr().err
    assert _hashes(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]   # no temporary folder or lock left


def test_force_writes_beside_other_files_without_touching_them(small_report, tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "thesis.docx").write_bytes(b"my thesis")
    with pytest.raises(CdrError, match="thesis.docx"):
        small_report.write(folder)
    files = small_report.write(folder, force=True)
    assert (folder / "thesis.docx").read_bytes() == b"my thesis"
    m = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert "thesis.docx" not in m["outputs"] and set(m["outputs"]) | {"manifest.json"} == set(files)
    # rewriting: a verified bundle with the user's file beside it needs no --force and keeps the file
    small_report.write(folder)
    assert (folder / "thesis.docx").read_bytes() == b"my thesis"


def test_an_earlier_bundle_is_replaced_only_when_every_hash_matches(small_report, tmp_path):
    out = tmp_path / "bundle"
    small_report.write(out)
    # an earlier run wrote a table this one does not (listed with its true hash): removed
    (out / "tables" / "old_table.csv").write_text("x\n1\n")
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    m["outputs"]["tables/old_table.csv"] = hashlib.sha256(b"x\n1\n").hexdigest()
    (out / "manifest.json").write_text(json.dumps(m))
    (out / "my_notes.txt").write_text("keep me")
    small_report.write(out)
    assert not (out / "tables" / "old_table.csv").exists() and (out / "my_notes.txt").read_text() == "keep me"
    assert json.loads((out / "manifest.json").read_text())["removed_from_earlier_run"] == ["tables/old_table.csv"]
    # a published file edited since: the folder is no longer a verified bundle, nothing is overwritten
    (out / "tables" / "headline.csv").write_text("edited by hand\n")
    with pytest.raises(CdrError, match="did not write"):
        small_report.write(out)
    with pytest.raises(CdrError, match="would have to overwrite"):
        small_report.write(out, force=True)
    assert (out / "tables" / "headline.csv").read_text() == "edited by hand\n"
    # a listed path outside the folder is never followed
    (tmp_path / "outside.txt").write_text("keep me too")
    m = json.loads((out / "manifest.json").read_text())
    m["outputs"] = {"../outside.txt": hashlib.sha256(b"keep me too").hexdigest()}
    (out / "manifest.json").write_text(json.dumps(m))
    from cdr.report._safeio import verified_outputs

    assert verified_outputs(out) is None and (tmp_path / "outside.txt").read_text() == "keep me too"


def test_symlinks_are_refused_and_never_written_through(small_report, tmp_path):
    out = tmp_path / "bundle"
    small_report.write(out)
    target = tmp_path / "elsewhere.html"
    target.write_text("not yours")
    (out / "report.html").unlink()
    (out / "report.html").symlink_to(target)
    with pytest.raises(CdrError, match="symbolic link"):
        small_report.write(out)
    assert target.read_text() == "not yours"
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "real").mkdir()
    with pytest.raises(CdrError, match="symbolic link"):
        small_report.write(link)
    assert list((tmp_path / "real").iterdir()) == []


def test_a_lock_stops_a_second_run_and_a_dead_runs_lock_is_taken_over(small_report, tmp_path):
    out = tmp_path / "bundle"
    lock = tmp_path / "bundle.lock"
    lock.write_text(f"{os.getpid()}\n")            # a live process holds it
    with pytest.raises(CdrError, match="another cdr run"):
        small_report.write(out)
    assert not out.exists()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(f"{dead.pid}\n")               # its process has exited
    small_report.write(out)
    assert (out / "manifest.json").is_file() and not lock.exists()
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask   # a normal folder, not a private temporary one


def test_cli_private_option_and_a_private_folder_inside_out_is_refused(root, lenient_bundle, tmp_path, capsys):
    from cdr.cli import main

    args = ["report", "--records", str(root / "bad_records.csv"), "--design", str(root / "design.csv"),
            "--footprint", "auto", "--year", YEAR, "--lenient"]
    assert main(args + ["--out", str(tmp_path / "pub"), "--private", str(tmp_path / "pub" / "secret")]) != 0
    assert "must be outside" in capsys.readouterr().err and not (tmp_path / "pub").exists()
    assert main(args + ["--out", str(tmp_path / "pub"), "--private", str(tmp_path / "keep")]) == 0
    printed = capsys.readouterr().out
    assert f"PRIVATE: record-level details written to {tmp_path / 'keep'}" in printed
    assert (tmp_path / "keep" / "exclusions.csv").is_file() and not (tmp_path / "pub.private").exists()
    assert "the private folder keep beside this bundle" in (tmp_path / "pub" / "report.html").read_text()


def test_a_run_killed_mid_write_leaves_the_old_bundle_complete(small_report, tmp_path, monkeypatch):
    import cdr.report._safeio as safeio

    out = tmp_path / "bundle"
    small_report.write(out)
    before = _hashes(out)
    calls = {"n": 0}
    real = os.fsync

    def dies(fd):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt   # as if killed after three files of the new bundle
        real(fd)

    monkeypatch.setattr(safeio.os, "fsync", dies)
    with pytest.raises(KeyboardInterrupt):
        small_report.write(out)
    assert _hashes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_a_run_killed_while_replacing_files_beside_other_files_is_resumed(tmp_path, monkeypatch):
    import cdr.report._safeio as safeio

    out = tmp_path / "shared"
    out.mkdir()
    (out / "thesis.docx").write_bytes(b"my thesis")
    safeio.write_folder(out, {"a.csv": b"old a\n", "b.csv": b"old b\n", "gone.csv": b"old\n"}, {}, force=True)
    calls = {"n": 0}
    real = os.replace

    def dies(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt   # killed after replacing a.csv, before b.csv and the manifest
        real(src, dst)

    monkeypatch.setattr(safeio.os, "replace", dies)
    with pytest.raises(KeyboardInterrupt):
        safeio.write_folder(out, {"a.csv": b"new a\n", "b.csv": b"new b\n"}, {}, force=True)
    monkeypatch.setattr(safeio.os, "replace", real)
    assert not (out / "manifest.json").exists()          # no manifest claims a complete bundle
    assert (out / "a.csv").read_bytes() == b"new a\n" and (out / "b.csv").read_bytes() == b"old b\n"
    # the next run recognises the half-replaced files by the journal's hashes and finishes the job
    safeio.write_folder(out, {"a.csv": b"new a\n", "b.csv": b"new b\n"}, {})
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", "b.csv", "manifest.json", "thesis.docx"]
    assert (out / "b.csv").read_bytes() == b"new b\n" and (out / "thesis.docx").read_bytes() == b"my thesis"


def test_a_file_where_a_folder_is_needed_is_refused_and_an_empty_folder_of_the_user_is_kept(tmp_path):
    from cdr.report._safeio import write_folder

    out = tmp_path / "f"
    out.mkdir()
    (out / "tables").write_text("a file named like the bundle's folder")
    with pytest.raises(CdrError, match="would have to overwrite: tables"):
        write_folder(out, {"tables/a.csv": b"x\n"}, {}, force=True)
    assert (out / "tables").read_text().startswith("a file")
    other = tmp_path / "g"
    write_folder(other, {"tables/a.csv": b"x\n"}, {})
    (other / "drafts").mkdir()                    # the user's own (empty) folder beside the bundle
    write_folder(other, {"tables/b.csv": b"y\n"}, {})
    assert (other / "drafts").is_dir() and sorted(p.name for p in (other / "tables").iterdir()) == ["b.csv"]


KILLED_WRITER = """
import pathlib, sys
from cdr.report._safeio import write_folder
out, i = pathlib.Path(sys.argv[1]), 0
while True:
    tag = b"AB"[i % 2:i % 2 + 1]
    write_folder(out, {f"tables/t{j:02d}.csv": tag * 50_000 for j in range(40)}, {"run": i})
    i += 1
    print(i, flush=True)
"""


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2])
def test_a_killed_writer_leaves_one_complete_bundle_and_a_lock_that_is_taken_over(tmp_path, delay):
    import signal
    import time

    from cdr.report._safeio import verified_outputs, write_folder

    out = tmp_path / "bundle"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(out)], stdout=subprocess.PIPE,
                            cwd=pathlib.Path(__file__).parents[1])
    assert proc.stdout.readline().strip() == b"1"   # one bundle is complete; the next is being written
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert verified_outputs(out) is not None          # every listed file is there with its hash
    tags = {(out / "tables" / f"t{j:02d}.csv").read_bytes()[:1] for j in range(40)}
    assert len(tags) == 1                              # all from one run: never a mix
    write_folder(out, {"a.csv": b"x\n"}, {})           # the dead writer's lock does not block the next run
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", "manifest.json"]


# ------------------------------------------------------------------ reproducible
def test_two_identical_runs_give_byte_identical_bundles(root, tmp_path, monkeypatch):
    from cdr.cli import main

    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    outs = []
    for run in ("one", "two"):
        parent = tmp_path / run
        parent.mkdir()
        (parent / "earlier").mkdir()   # a sibling bundle, named in the overlap note by its name only
        outs.append(parent / "bundle")
    for out in outs:
        code = main(["report", "--records", str(root / "records.csv"), "--design", str(root / "design.csv"),
                     "--footprint", "auto", "--year", YEAR, "--out", str(out)])
        assert code == 0
    one, two = (_hashes(o) for o in outs)
    assert len(one) > 10 and one == two
    for rel, data in _all_text(outs[0]).items():
        assert str(tmp_path).encode() not in data and str(root).encode() not in data, rel
    m = json.loads((outs[0] / "manifest.json").read_text(encoding="utf-8"))
    assert m["created"] is None and TIMING_KEY not in m   # no wall-clock field in a published manifest
    assert [i.get("path") for i in m["inputs"] if i["role"] in ("records", "design")] == ["records.csv", "design.csv"]


def test_source_date_epoch_dates_the_bundle_and_the_workbook(small_report, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")   # 2023-11-14T22:13:20Z
    small_report.write(tmp_path / "a")
    with zipfile.ZipFile(tmp_path / "a" / "tables.xlsx") as z:
        core = z.read("docProps/core.xml").decode()
        assert {i.date_time for i in z.infolist()} == {(2023, 11, 14, 22, 13, 20)}
    assert re.findall(r"<dcterms:(?:created|modified)[^>]*>([^<]*)<", core) == ["2023-11-14T22:13:20Z"] * 2
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(CdrError, match="SOURCE_DATE_EPOCH"):
        small_report.write(tmp_path / "b")


# ------------------------------------------------------------------ record counts of the manifest
def _attack_record_counts(published, in_unit, threshold, top=40):
    """Every leaf vector (outside, earlier, later, excluded; 0..top) consistent with the published counts."""
    import itertools

    leaves = ("outside_unit", "earlier_periods", "later_periods", "excluded_invalid")
    feasible = []
    for vec in itertools.product(range(top + 1), repeat=4):
        o, e, l, x = vec
        if any(published[k] != "[c]" and published[k] != v for k, v in zip(leaves, vec)):
            continue
        if any(v == 0 and published[k] == "[c]" for k, v in zip(leaves, vec)):
            continue                                   # zeros are published, so a hidden leaf is >= 1
        totals = {"in_period": in_unit + o, "valid": in_unit + o + e + l, "input": in_unit + o + e + l + x}
        if any(published[k] != "[c]" and published[k] != v for k, v in totals.items()):
            continue
        feasible.append(dict(zip(leaves, vec)))
    return feasible


@pytest.mark.parametrize("seed", range(40))
def test_the_manifests_record_counts_reveal_no_small_count(seed):
    # Found by a new user: "67 in 2022-23" beside 66 deaths in the headline published one death outside
    # the partnership; "3 excluded" beside three "[c]" fields published three 1s. An exhaustive attacker over
    # the published reconciliation chain (written here, independent of the chooser) must pin no hidden count
    # and prove no small one below the threshold.
    import numpy as np

    from cdr.report._private import public_record_counts

    rng = np.random.default_rng(seed)
    pick = lambda: int(rng.choice([0, 1, 2, 3, 4, 5, 6, 9, 14]))  # noqa: E731
    truth = {"outside_unit": pick(), "earlier_periods": pick(), "later_periods": pick(), "excluded_invalid": pick()}
    published = public_record_counts(in_unit=66, outside_unit=truth["outside_unit"], earlier=truth["earlier_periods"],
                                     later=truth["later_periods"], excluded=truth["excluded_invalid"], threshold=5)
    for k, v in truth.items():
        assert published[k] in (v, "[c]") and not (1 <= v < 5 and published[k] != "[c]")
    feasible = _attack_record_counts(published, 66, 5, top=20)
    assert truth in feasible                            # the attacker's model is sound
    for k, v in truth.items():
        if published[k] == "[c]":
            seen = {f[k] for f in feasible}
            assert len(seen) > 1, (k, published)        # not pinned
            if 1 <= v < 5:
                assert max(seen) >= 5, (k, published)   # not proven small
