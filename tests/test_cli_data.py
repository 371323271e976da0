"""`cdr data ...` run in-process through cdr.cli.main."""
import geopandas as gpd
import pandas as pd

from cdr.cli import main


def test_synth_writes_a_marked_csv_and_it_validates(tmp_path, capsys):
    out = tmp_path / "synth.csv"
    assert main(["data", "synth", "--years", "2019-2020", "--seed", "4", "--out", str(out)]) == 0
    assert "SYNTHETIC" in capsys.readouterr().out
    frame = pd.read_csv(out)
    assert frame["synthetic"].all() and set(frame["case_id"].str[:3]) == {"SYN"}
    assert 6_000 < len(frame) < 8_000          # two years at about 3,500 a year
    assert main(["data", "validate", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{len(frame):,} counted, 0 excluded" in printed and "SYNTHETIC" in printed


def test_synth_writes_parquet(tmp_path):
    out = tmp_path / "synth.parquet"
    assert main(["data", "synth", "--years", "2021", "--out", str(out)]) == 0
    assert pd.read_parquet(out)["synthetic"].all()


def test_validate_reports_bad_rows_and_exclusions(tmp_path, capsys):
    good = tmp_path / "good.csv"
    main(["data", "synth", "--years", "2019", "--out", str(good)])
    frame = pd.read_csv(good)
    frame.loc[4, "la_code"] = "E06000999"
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    capsys.readouterr()
    assert main(["data", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "row 5" in err and "E06000999" in err
    exclusions = tmp_path / "excl.csv"
    assert main(["data", "validate", str(bad), "--lenient", "--exclusions", str(exclusions)]) == 0
    table = pd.read_csv(exclusions)
    assert table["row"].tolist() == [5] and table["field"].tolist() == ["la_code"]


def test_areas_prints_and_exports(tmp_path, capsys):
    assert main(["data", "areas"]) == 0
    assert "153 upper-tier LAs" in capsys.readouterr().out
    csv = tmp_path / "areas.csv"
    assert main(["data", "areas", "--vintage", "2021", "--out", str(csv)]) == 0
    assert len(pd.read_csv(csv)) == 152
    geo = tmp_path / "areas.geojson"
    assert main(["data", "areas", "--out", str(geo)]) == 0
    assert len(gpd.read_file(geo)) == 153


def test_expected_prints_las_and_regions(tmp_path, capsys):
    assert main(["data", "expected"]) == 0
    printed = capsys.readouterr().out
    # default observed model: calibrated to the mean of NCMD's notified deaths 2019-20 to 2023-24
    assert "London" in printed and "England: 11,886,906 children, 3,449 expected deaths a year" in printed
    out = tmp_path / "expected.csv"
    assert main(["data", "expected", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert len(table) == 153 and abs(table["expected_deaths"].sum() - (3414 + 3056 + 3454 + 3743 + 3577) / 5) < 1
    assert main(["data", "expected", "--model", "national", "--out", str(out)]) == 0
    assert abs(pd.read_csv(out)["expected_deaths"].sum() - 29.3e-5 * 11_886_906) < 1     # NCMD rate x ONS population
