"""``cdr data``: embedded areas, synthetic records, expected deaths and record validation."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from cdr.cli._common import years_arg
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
    p.add_argument("--vintage", type=int, default=2023, choices=(2021, 2023), help="geography vintage (default 2023)")
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
    p.add_argument("--vintage", type=int, default=2023, choices=(2021, 2023))
    p.add_argument("--out", type=Path, required=True, help="output FILE: .csv or .parquet")
    p.set_defaults(func=_synth)

    p = sub.add_parser("expected", help="child population and expected deaths per LA and region",
                       description="Expected child deaths a year per LA and region (cdr.reference.expected_deaths: "
                                   "default the observed model, empirical Bayes on ONS infant deaths by LA calibrated "
                                   "to NCMD; --model national for national rates x deprivation).")
    p.add_argument("--vintage", type=int, default=2023, choices=(2021, 2023))
    p.add_argument("--model", choices=("observed", "national"), default="observed",
                   help="expected-deaths model (default observed)")
    p.add_argument("--year", type=int, default=2022, help="population mid-year (default 2022)")
    p.add_argument("--level", choices=("la", "region"), default="la", help="table written by --out (default la)")
    p.add_argument("--out", type=Path, help="write the table to FILE (.csv)")
    p.add_argument("--map", type=Path, help="also draw a map of expected deaths per LA to FILE (.png)")
    p.set_defaults(func=_expected)

    p = sub.add_parser("validate", help="validate a record file",
                       description="Check a record file (CSV, Parquet or Excel) against every rule of "
                                   "cdr.schema.RULES. Exit code 1 if invalid in strict mode.")
    p.add_argument("file", type=Path, help="record file (.csv, .parquet, .xlsx)")
    p.add_argument("--lenient", action="store_true", help="report exclusions instead of failing")
    p.add_argument("--exclusions", type=Path, help="with --lenient: write the exclusions table to this CSV")
    p.add_argument("--vintage", type=int, default=2023, choices=(2021, 2023))
    p.set_defaults(func=_validate)


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
    suffix = args.out.suffix.lower()
    _need_pyarrow(args.out)
    if suffix == ".csv":
        areas.drop(columns="geometry").to_csv(args.out, index=False)
    elif suffix == ".geojson":
        areas.to_file(args.out, driver="GeoJSON")
    elif suffix == ".gpkg":
        areas.to_file(args.out, driver="GPKG")
    elif suffix == ".parquet":
        areas.to_parquet(args.out)
    else:
        raise CdrError(f"cdr data areas: --out must end in .csv, .geojson, .gpkg or .parquet; got {args.out.name!r}")
    print(f"wrote {len(areas)} areas ({args.vintage} vintage) to {args.out}")
    return 0


def _synth(args) -> int:
    from cdr import schema, synthetic

    _need_pyarrow(args.out)
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
        args.out.parent.mkdir(parents=True, exist_ok=True)
        (las if args.level == "la" else regions).to_csv(args.out, index=False)
        print(f"wrote expected deaths per {args.level} to {args.out}")
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

    if args.exclusions is not None and not args.lenient:
        raise CdrError("--exclusions needs --lenient (strict mode fails on the first invalid file instead)")
    result = schema.read_records(args.file, mode="lenient" if args.lenient else "strict", vintage=args.vintage)
    records, exclusions = result
    print(f"{args.file}: {result.n_input:,} records read, {len(records):,} valid, {len(exclusions):,} excluded")
    if len(records) and bool(records["synthetic"].any()):
        print(f"SYNTHETIC: {int(records['synthetic'].sum()):,} records are marked synthetic")
    if len(result.translated):
        print(f"{len(result.translated):,} LA codes of another vintage were translated")
    if len(exclusions):
        print(exclusions.to_string(index=False, max_colwidth=120))
        if args.exclusions is not None:
            exclusions.to_csv(args.exclusions, index=False)
            print(f"wrote {len(exclusions):,} exclusions to {args.exclusions}")
    elif args.exclusions is not None:
        exclusions.to_csv(args.exclusions, index=False)
    return 0
