"""``cdr data``: embedded areas, synthetic records, expected deaths and record validation."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from cdr.cli._common import RECORDS_HELP, add_read_options, read_options, years_arg
from cdr.errors import CdrError

__all__ = ["register"]

_AREA_COLUMNS = ["la_code", "la_name", "region_name", "police_force_area", "icb_code", "imd_rank_of_avg_rank",
                 "child_population"]


def register(subparsers) -> None:
    """Add ``cdr data`` and its sub-commands to the top-level sub-parsers."""
    parser = subparsers.add_parser(
        "data", help="embedded England areas, synthetic records, expected deaths, record validation",
        description="Embedded England data (ONS, MHCLG; OGL v3), synthetic records and record validation.")
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])

    p = sub.add_parser("areas", help="print or export the upper-tier LA table",
                       description="Print England's upper-tier LAs, or export them with boundaries (EPSG:27700).")
    _add_vintage(p)
    p.add_argument("--out", type=Path, help="write to FILE: .csv (no geometry), .geojson, .gpkg or .parquet")
    p.set_defaults(func=_areas)

    p = sub.add_parser("synth", help="write a SYNTHETIC record file",
                       description="Generate synthetic child death records (SYNTHETIC DATA, marked in the "
                                   "'synthetic' column) calibrated to published national figures.")
    p.add_argument("--years", default="2019-2023", type=years_arg,
                   help="first years of the periods: '2019-2023' or '2019,2021' (default 2019-2023)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--year-type", choices=("reporting", "calendar"), default="reporting",
                   help="reporting years (1 April-31 March, default) or calendar years")
    p.add_argument("--no-review-lag", action="store_true", help="mark every death as reviewed")
    _add_vintage(p)
    p.add_argument("--out", type=Path, required=True, help="output FILE: .csv or .parquet (folders are created)")
    p.set_defaults(func=_synth)

    p = sub.add_parser("expected", help="child population and expected deaths per LA and region",
                       description="Expected child deaths a year per LA and region (cdr.reference.expected_deaths: "
                                   "default the observed model, empirical Bayes on ONS infant deaths by LA calibrated "
                                   "to NCMD; --model national for national rates x deprivation).")
    _add_vintage(p)
    p.add_argument("--model", choices=("observed", "national"), default="observed",
                   help="expected-deaths model (default observed)")
    p.add_argument("--year", type=int, default=2022, help="population mid-year (default 2022)")
    p.add_argument("--level", choices=("la", "region"), default="la", help="table written by --out (default la)")
    p.add_argument("--out", type=Path, help="write the table to FILE (.csv)")
    p.add_argument("--map", type=Path, help="also draw a map of expected deaths per LA to FILE (.png)")
    p.set_defaults(func=_expected)

    p = sub.add_parser("validate", help="validate a record file (any export, with --columns)",
                       description="Check a record file (CSV, TSV, Excel or Parquet) against every rule of "
                                   "cdr.schema.RULES: how its columns map to cdr fields, LA names translated, "
                                   "exclusions and fields set to not recorded. Exit code 2 if invalid in strict mode.")
    p.add_argument("file", type=Path, help=RECORDS_HELP)
    add_read_options(p)
    p.add_argument("--exclusions", type=Path, help="with --lenient: write the exclusions table to this CSV")
    p.add_argument("--issues", type=Path, help="with --lenient: write the field issues (values set to not recorded) "
                                                "to this CSV")
    _add_vintage(p)
    p.set_defaults(func=_validate)

    p = sub.add_parser("columns", help="list the record fields, their meaning and accepted spellings",
                       description="The cdr record fields: whether core (a death is counted only when these are "
                                   "usable), required or optional, what each means, the allowed values and the "
                                   "header spellings recognised without a columns file.")
    p.add_argument("--out", type=Path, help="also write the table to FILE (.csv)")
    p.set_defaults(func=_columns)

    p = sub.add_parser("template", help="write an empty record template (CSV and XLSX) and a columns file",
                       description="Write DIR/records_template.csv and DIR/records_template.xlsx (a header row of "
                                   "cdr field names; the workbook's second sheet lists the allowed values) and "
                                   "DIR/columns.toml, a columns file to edit for your export.")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder (created)")
    p.set_defaults(func=_template)


def _add_vintage(parser) -> None:
    parser.add_argument("--vintage", type=int, default=2023, choices=(2021, 2023), help="geography vintage (default 2023)")


def _write_csv(frame, path: Path, message: str | None) -> None:
    """Write `frame` to the CSV `path` (folders created), then print `message` (if any)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    if message:
        print(message)


def _need_pyarrow(path: Path) -> None:
    if path.suffix.lower() == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        raise CdrError("writing Parquet needs the pyarrow package: pip install 'cdr[parquet]' (or use .csv)")


def _areas(args) -> int:
    from cdr import data

    areas = data.england_areas(args.vintage)
    if args.out is None:
        print(areas[_AREA_COLUMNS].to_string(index=False))
        print(f"\n{len(areas)} upper-tier LAs ({args.vintage} vintage). {data.ATTRIBUTION}")
        return 0
    writers = {".csv": lambda path: areas.drop(columns="geometry").to_csv(path, index=False),
               ".geojson": lambda path: areas.to_file(path, driver="GeoJSON"),
               ".gpkg": lambda path: areas.to_file(path, driver="GPKG"),
               ".parquet": areas.to_parquet}
    write = writers.get(args.out.suffix.lower())
    _need_pyarrow(args.out)
    if write is None:
        raise CdrError(f"cdr data areas: --out must end in .csv, .geojson, .gpkg or .parquet; got {args.out.name!r}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write(args.out)
    print(f"wrote {len(areas)} areas ({args.vintage} vintage) to {args.out}")
    return 0


def _synth(args) -> int:
    from cdr import schema, synthetic

    _need_pyarrow(args.out)
    if args.out.suffix.lower() not in (".csv", ".parquet"):
        raise CdrError(f"--out must end in .csv or .parquet; got {args.out.name!r}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    records = synthetic.generate_records(years=args.years, seed=args.seed, year_type=args.year_type,
                                         review_lag=not args.no_review_lag, vintage=args.vintage)
    schema.to_file(records, args.out)
    print(f"SYNTHETIC: wrote {len(records):,} synthetic records ({args.year_type} years "
          f"{args.years[0]}-{args.years[-1]}, seed {args.seed}) to {args.out}; every row has synthetic=True")
    return 0


def _expected(args) -> int:
    from cdr import reference

    las = reference.expected_deaths_table(vintage=args.vintage, year=args.year, level="la", model=args.model)
    regions = reference.expected_deaths_table(vintage=args.vintage, year=args.year, level="region", model=args.model)
    if args.map is not None:
        import matplotlib.pyplot as plt

        args.map.parent.mkdir(parents=True, exist_ok=True)
        ax = reference.plot_expected_deaths(vintage=args.vintage, year=args.year, model=args.model)
        ax.figure.savefig(args.map, dpi=120, bbox_inches="tight")
        plt.close(ax.figure)
        print(f"wrote map of expected deaths to {args.map}")
    if args.out is not None:
        if args.out.suffix.lower() != ".csv":
            raise CdrError(f"cdr data expected: --out must be a .csv file; got {args.out.name!r}")
        _write_csv(las if args.level == "la" else regions, args.out,
                   f"wrote expected deaths per {args.level} to {args.out}")
        print(f"England: {las['child_population'].sum():,} children, {las['expected_deaths'].sum():,.0f} expected deaths a year")
        return 0
    print(f"Expected child deaths (0-17) a year, population mid-{args.year}, {args.vintage} LAs (model: {args.model})\n")
    print(las.drop(columns="region_code").to_string(index=False, float_format=lambda x: f"{x:,.1f}"))
    print()
    print(regions.to_string(index=False, float_format=lambda x: f"{x:,.1f}"))
    print(f"\nEngland: {las['child_population'].sum():,} children, {las['expected_deaths'].sum():,.0f} expected deaths a year")
    return 0


def _validate(args) -> int:
    from cdr import schema

    options = read_options(args)
    lenient = options["mode"] == "lenient"
    if (args.exclusions is not None or args.issues is not None) and not lenient:
        raise CdrError("--exclusions and --issues need --lenient (strict mode stops at the first invalid file instead)")
    result = schema.read_records(args.file, **options)
    records, exclusions = result
    source = result.source
    how = ", ".join(f"{k} {source[k]}" for k in ("encoding", "separator", "sheet") if source.get(k) is not None)
    print(f"{args.file}: {result.n_input:,} records read{f' ({how})' if how else ''}, {len(records):,} counted, "
          f"{len(exclusions):,} excluded, {len(result.issues):,} field value(s) set to not recorded")
    mapped = result.columns[~result.columns["field"].isin(["(not used)", "(derived)"])]
    renamed = mapped[mapped["column"] != mapped["field"]]
    if len(renamed):
        print("columns: " + ", ".join(f"{c!r} -> {f}" for c, f in renamed.values.tolist()))
    if len(records) and bool(records["synthetic"].any()):
        print(f"SYNTHETIC: {int(records['synthetic'].sum()):,} records are marked synthetic")
    if len(result.translated):
        print(f"{len(result.translated):,} LA codes or names were translated to {args.vintage} codes")
    if len(result.issues):
        print(result.issue_counts().to_string(index=False))
        if args.issues is not None:
            _write_csv(result.issues, args.issues, f"wrote {len(result.issues):,} field issues to {args.issues}")
    if len(exclusions):
        print(exclusions.to_string(index=False, max_colwidth=120))
    if args.exclusions is not None:
        _write_csv(exclusions, args.exclusions,
                   f"wrote {len(exclusions):,} exclusions to {args.exclusions}" if len(exclusions) else None)
    return 0


def _columns(args) -> int:
    from cdr import schema

    table = schema.field_table()
    for r in table.itertuples():
        print(f"{r.field}  [{r.role}, {r.kind}]  {r.meaning}")
        if r.values:
            print(f"    values: {r.values}")
        if r.headers:
            print(f"    headers: {r.headers}")
    print("\nHeaders are matched ignoring case, spacing and punctuation; map others with --columns FILE.toml "
          "('cdr data template' writes one). Values may be keys or labels in any case; dates are day first.")
    if args.out is not None:
        _write_csv(table, args.out, f"wrote the field table to {args.out}")
    return 0


def _template(args) -> int:
    import pandas as pd

    from cdr import schema

    args.out.mkdir(parents=True, exist_ok=True)
    fields = [f for f in schema.FIELDS if f not in ("synthetic", "ethnicity_detailed")]
    empty = pd.DataFrame(columns=fields)
    csv_path, xlsx_path, toml_path = (args.out / "records_template.csv", args.out / "records_template.xlsx",
                                      args.out / "columns.toml")
    empty.to_csv(csv_path, index=False)
    table = schema.field_table()
    with pd.ExcelWriter(xlsx_path) as writer:
        empty.to_excel(writer, sheet_name="records", index=False)
        table.to_excel(writer, sheet_name="allowed values", index=False)
    lines = ["# How your export's headers map to cdr fields: \"Export header\" = \"cdr_field\" (or \"ignore\").",
             "# Headers spelled like the field names or the spellings of 'cdr data columns' need no line.",
             "[columns]"]
    examples = {"case_id": "CDOP Ref", "date_of_death": "Date of Death", "date_of_birth": "DOB",
                "la_code": "LA of residence", "category": "Category of death", "review_completed":
                "Date CDOP Review Completed", "modifiable": "Modifiable Factors", "ethnicity": "Ethnicity"}
    lines += [f'# "{header}" = "{field}"' for field, header in examples.items()]
    lines += ["", "# Raw values -> cdr values, one table per field (keys or labels of 'cdr data columns').",
              "[values.modifiable]", '# "Yes - modifiable factors identified" = "yes"', "",
              "[values.la_code]", '# "Wakefield MDC" = "E08000036"']
    toml_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for path in (csv_path, xlsx_path, toml_path):
        print(f"wrote {path}")
    return 0
