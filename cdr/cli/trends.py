"""``cdr trends``: trends in child death rates (APC, comparison with England, joinpoints) for a record file.

Argument parsing and file I/O only; the work is :func:`cdr.aggregate.aggregate` and :mod:`cdr.trends`.
"""
from __future__ import annotations

import os

from cdr.cli._common import add_analysis_command, read_input, years_arg

__all__ = ["register"]


def register(subparsers):
    parser = add_analysis_command(
        subparsers, "trends", run,
        help="annual percent change, comparison with England and joinpoints (CSV tables, PNG figures)",
        description=(
            "Aggregate a record file to deaths and population per unit and year, fit a log-linear trend "
            "(Poisson, or negative binomial when overdispersed) per unit, compare each unit's trend with "
            "England's, and optionally fit joinpoint models. Writes apc.csv, fitted.csv, covariates.csv, "
            "compare_slopes.csv, compare_ratios.csv, joinpoint_segments.csv, joinpoint_aapc.csv, "
            "joinpoint_selection.csv and PNG figures."
        ),
        epilog="Example: cdr trends --records records.csv --level region --years 2019-2023 --joinpoints --out out/trends",
        design_help="footprint design (footprints/*.csv with la_code, footprint_id, or a catalog name); needed for "
                    "--level footprint",
        level_default="nation", level_help="level of the trends (default: nation)",
    )
    parser.add_argument("--years", metavar="FIRST-LAST", type=years_arg,
                        help="years to use, e.g. 2019-2023 (default: all)")
    parser.add_argument("--year-type", choices=("reporting", "calendar"), default="reporting",
                        help="CDR reporting years (April-March) or calendar years (default: reporting)")
    parser.add_argument("--family", choices=("auto", "poisson", "negbin"), default="auto",
                        help="error family of the trend model (default: auto = test for overdispersion)")
    parser.add_argument("--population-break", action="store_true",
                        help="add a level shift at 2021 for the break in the population series")
    parser.add_argument("--joinpoints", action="store_true", help="also fit joinpoint models")
    parser.add_argument("--joinpoint-method", choices=("glm", "nci"), default="glm",
                        help="joinpoint model: Poisson GLM or NCI Joinpoint WLS (default: glm)")
    parser.add_argument("--selection", choices=("permutation", "bic", "bic3", "wbic"), default="bic",
                        help="how the number of joinpoints is chosen (default: bic, fast for many units; the "
                             "library's default, the permutation test, takes seconds to minutes per series)")
    parser.add_argument("--max-joinpoints", type=int, default=3, help="largest number of joinpoints (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the permutation tests (default 0)")
    return parser


def run(args):
    from cdr import trends

    (records, _), design = read_input(args, "trends")
    analysis = trends.analyse(
        records, level=args.level, design=design, years=args.years, year_type=args.year_type, vintage=args.vintage, family=args.family,
        population_break_2021=args.population_break, joinpoints=args.joinpoints,
        joinpoint_method=args.joinpoint_method, selection=args.selection, max_joinpoints=args.max_joinpoints,
        seed=args.seed,
    )
    written = [os.path.basename(p) for p in analysis.to_dir(args.out)]
    print(f"cdr trends: wrote {len(written)} files to {args.out}: {', '.join(written)}")
    return 0
