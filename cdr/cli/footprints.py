"""``cdr footprints``: build, evaluate and compare footprint designs (parsing and printing only)."""
from __future__ import annotations

import pathlib

from cdr.cli._common import add_read_options, positive_number, read_options, read_records_file, years_arg

__all__ = ["register"]


def register(subparsers) -> None:
    p = subparsers.add_parser("footprints", help="build, evaluate and compare child death review footprints",
                              description="Build footprints from data (max-p with a proven upper bound), evaluate "
                                          "designs and compare them, including the real CDOP footprints.")
    sub = p.add_subparsers(dest="footprints_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    b = sub.add_parser(
        "build", help="build a design and write footprints.csv, .geojson, summary.json, map.png",
        description="Group areas into contiguous footprints that each reach --min-deaths expected deaths a year, "
                    "with as many footprints as possible. On England (embedded data, expected deaths from the "
                    "national rate model) the maximum is found and proven (summary.json: n_footprints equals "
                    "upper_bound); on large instances a fast heuristic runs and its gap to the bound is reported.",
        epilog="Example: cdr footprints build --min-deaths 60 --min-probability 0.9 --out out/fp")
    b.add_argument("--min-deaths", type=positive_number, default=60, help="expected deaths a year per footprint (default 60)")
    b.add_argument("--min-probability", type=float, default=None,
                   help="chance constraint: reach --min-deaths in a Poisson year with this probability (e.g. 0.9)")
    b.add_argument("--nest-within", default=None, help="column footprints must not cross, e.g. region_code, police_force_area")
    b.add_argument("--max-population", type=float, default=None, help="largest child population of a footprint")
    b.add_argument("--on-infeasible", choices=("raise", "merge"), default="raise",
                   help="areas that cannot reach the threshold: stop with an error (default) or merge with the best neighbour")
    b.add_argument("--seed", type=int, default=0,
                   help="seed of the improvement search (same seed, same design; default 0)")
    b.add_argument("--records", default=None, metavar="FILE",
                   help="record file (CSV, TSV, Excel or Parquet, read like 'cdr report --records'): expected deaths = "
                        "deaths per year per LA in the records")
    add_read_options(b)
    b.add_argument("--private", metavar="DIR",
                   help="with --records: folder for record-level details that must NOT be published (exclusions.csv, "
                        "field_issues.csv); default OUT.private beside --out")
    b.add_argument("--years", default=None, type=years_arg, metavar="FIRST-LAST",
                   help="with --records: calendar years to use, e.g. 2019-2023 (default: every year in the records)")
    b.add_argument("--areas", default=None, help="GeoPackage/GeoJSON/shapefile of your own areas (with la_code)")
    b.add_argument("--deaths-column", default="expected_deaths", help="with --areas: column of expected deaths a year")
    b.add_argument("--out", required=True, help="output directory")
    b.add_argument("--name", default=None,
                   help="name of the design, written into footprints.csv (default: the --out folder's name); "
                        "compare labels designs by it")
    b.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    b.set_defaults(func=_build)

    e = sub.add_parser("evaluate", help="metrics of one design (CSV with la_code, footprint_id)")
    e.add_argument("design", help="design CSV or catalog name (england_min60, cdop_2019_real)")
    e.add_argument("--min-deaths", type=positive_number, default=None,
                   help="threshold to evaluate against (default: the one the design was built for, from its file, else 60)")
    e.add_argument("--out", default=None, help="directory for evaluation.csv and footprints_table.csv")
    e.set_defaults(func=_evaluate)

    c = sub.add_parser("compare", help="compare designs side by side")
    c.add_argument("designs", nargs="+", help="design CSVs or catalog names")
    c.add_argument("--min-deaths", type=positive_number, default=None,
                   help="threshold to evaluate every design against (default: each design's own, from its file, "
                        "else 60; each design's gap is to the bound for its own constraints)")
    c.add_argument("--out", default=None, help="directory for comparison.csv")
    c.set_defaults(func=_compare)


def _build(args) -> int:
    from cdr.footprints import FootprintBuilder, read_build_inputs, write_build_files

    areas, deaths = read_build_inputs(areas=args.areas, deaths_column=args.deaths_column)
    if args.records is not None:
        from cdr.footprints import expected_deaths_from_records

        result = read_records_file(args.records, args, "footprints build", out=args.out)   # exclusions: private
        deaths = expected_deaths_from_records(result.records, areas, years=args.years)
        used = int(round(float((deaths["expected_deaths"] * deaths["n_years"]).sum())))
        print(f"cdr footprints build: {used:,} of the {len(result.records):,} records counted are used "
              f"({deaths['n_years'].iloc[0]} year(s)); {len(result.records) - used:,} fall outside the years or the areas")
    builder = FootprintBuilder(args.min_deaths, min_probability=args.min_probability, nest_within=args.nest_within,
                               max_population=args.max_population, on_infeasible=args.on_infeasible, seed=args.seed)
    design = builder.fit(areas, deaths, progress=not args.no_progress)
    years = None if not args.years else (f"{min(args.years)}-{max(args.years)}" if sorted(args.years) == list(
        range(min(args.years), max(args.years) + 1)) else ",".join(map(str, args.years)))
    source = (f"records {args.records}" + (f", years {years}" if years else "") if args.records else
              f"column {args.deaths_column!r} of {args.areas}" if args.areas else
              "cdr.reference.expected_deaths(): child population x national age/sex rates x deprivation multiplier")
    design.meta["deaths"] = source
    design.meta["built_with"] = "cdr footprints build " + " ".join(
        f"--{k.replace('_', '-')} {years if k == 'years' else v}" for k, v in sorted(vars(args).items())
        if k in ("min_deaths", "min_probability", "nest_within", "max_population", "on_infeasible", "seed", "records",
                 "years", "areas", "deaths_column", "columns", "sheet") and v is not None) + (
        " --lenient" if read_options(args)["mode"] == "lenient" else "")
    written = write_build_files(design, args.out, name=args.name)
    print(design.summary())
    print()
    for name, path in written.items():
        print(f"wrote {name}: {path}")
    return 0


def _evaluate(args) -> int:
    import pandas as pd

    from cdr.footprints import evaluate, load_design

    design = load_design(args.design)
    row = evaluate(design, min_deaths=args.min_deaths)
    table = design.table(min_deaths=args.min_deaths)
    with pd.option_context("display.width", 160, "display.max_columns", 30):
        print(row.T.to_string(header=False))
        print()
        print(table.drop(columns=["la_codes"]).to_string(index=False))
    if args.out:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        row.to_csv(out / "evaluation.csv", index=False)
        table.to_csv(out / "footprints_table.csv", index=False)
        print(f"\nwrote {out / 'evaluation.csv'} and {out / 'footprints_table.csv'}")
    return 0


def _compare(args) -> int:
    import pandas as pd

    from cdr.footprints import compare, load_design

    # labelled by each design's name from its metadata (never by file name alone: five footprints.csv
    # from five folders stay five designs)
    table = compare([load_design(d) for d in args.designs], min_deaths=args.min_deaths)
    with pd.option_context("display.width", 160, "display.max_columns", 30):
        print(table.set_index("design").T.to_string())
    if args.out:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "comparison.csv", index=False)
        print(f"\nwrote {out / 'comparison.csv'}")
    return 0

