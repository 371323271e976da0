"""Argument helpers shared by the ``cdr`` command groups (parsing and file I/O only).

One vocabulary for every command that reads records: ``--records FILE`` (CSV, TSV, Excel or Parquet),
``--columns FILE.toml`` (how the export's headers and values map to cdr fields), ``--sheet`` (Excel),
``--lenient`` (count every death whose core fields are usable; ``--mode`` is a hidden alias kept for
old scripts) and ``--vintage``.
"""
from __future__ import annotations

import argparse
import os

__all__ = ["years_arg", "positive_number", "add_record_options", "add_records_input", "add_read_options", "read_options", "read_input",
           "read_records_file", "RECORDS_HELP", "LENIENT_HELP", "LEVELS", "add_analysis_command"]

LEVELS = ("la", "footprint", "region", "nation")   # = cdr.aggregate.LEVELS (not imported: the CLI starts without pandas)

RECORDS_HELP = "record file: CSV, TSV, Excel (.xlsx) or Parquet, one row per death (see 'cdr data columns')"
LENIENT_HELP = ("count every death whose core fields (date of death, LA, age) are usable: set a bad optional "
                "value to not recorded (listed in field_issues.csv) and exclude only unusable records (listed in "
                "exclusions.csv); default: stop on any invalid value")
COLUMNS_HELP = ("TOML file mapping your export's headers to cdr fields ([columns] \"Date of Death\" = "
                "\"date_of_death\") and raw values to cdr values ([values.<field>]); see 'cdr data template'")


def years_arg(text: str) -> list[int]:
    """argparse type for ``--years``: ``2019-2023`` or ``2019-23`` (a range) or ``2019,2021`` (a list).

    Examples
    --------
    >>> years_arg("2019-23"), years_arg("2020,2022")
    ([2019, 2020, 2021, 2022, 2023], [2020, 2022])
    """
    try:
        if "-" in text:
            first_text, last_text = (x.strip() for x in text.split("-", 1))
            first, last = int(first_text), int(last_text)
            if len(last_text) == 2 and len(first_text) == 4:   # 2019-23, as reporting years are written
                last += first - first % 100 + (100 if last < first % 100 else 0)
            if last < first:
                raise argparse.ArgumentTypeError(f"the last year comes before the first in {text!r}; "
                                                 f"write FIRST-LAST, e.g. 2019-2023")
            return list(range(first, last + 1))
        return [int(x) for x in text.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"years must look like 2019-2023 or 2019,2020; got {text!r}") from exc


def positive_number(text: str) -> float:
    """argparse type for a finite number > 0 (e.g. ``--min-deaths 60``); ``inf``, ``nan`` and 0 are refused."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, e.g. 60; got {text!r}")
    return value



def add_read_options(parser, *, lenient: bool = True) -> None:
    """``--columns``, ``--sheet`` and (with ``lenient``) ``--lenient`` plus the hidden ``--mode`` alias."""
    parser.add_argument("--columns", metavar="FILE.toml", help=COLUMNS_HELP)
    parser.add_argument("--sheet", metavar="NAME|N", help="Excel sheet to read, by name or 0-based number (default: the first)")
    if lenient:
        parser.add_argument("--lenient", action="store_true", help=LENIENT_HELP)
        parser.add_argument("--mode", choices=("strict", "lenient"), default=None, help=argparse.SUPPRESS)


def add_records_input(parser, *, required: bool = True, records_help: str = RECORDS_HELP) -> None:
    """``--records``, ``--columns``, ``--sheet``, ``--lenient``, ``--vintage`` and ``--private``: how every
    command reads a record file (:func:`read_records_file`)."""
    parser.add_argument("--records", required=required, default=None, metavar="FILE", help=records_help)
    add_read_options(parser)
    parser.add_argument("--vintage", type=int, default=2023, choices=(2021, 2023),
                        help="geography vintage of la_code (default 2023)")
    parser.add_argument("--private", metavar="DIR",
                        help="folder for record-level details that must NOT be published (exclusions.csv and "
                             "field_issues.csv with row numbers, case ids and values); default OUT.private beside --out")


def add_record_options(parser, *, design_help: str) -> None:
    """``--records``, ``--columns``, ``--sheet``, ``--lenient``, ``--vintage``, ``--private`` and ``--design``."""
    add_records_input(parser)
    parser.add_argument("--design", metavar="FILE", help=design_help)


def add_analysis_command(subparsers, name, run, *, help, description, epilog, design_help, level_default,
                         level_help):
    """A command that analyses a record file into ``--out DIR`` (``cdr trends``, ``cdr factors``).

    Adds the record options (:func:`add_record_options`), ``--level`` and ``--out``; `run` is called with the
    parsed arguments, matplotlib drawing to files only (no display needed). Returns the parser, for the
    command's own options.
    """
    parser = subparsers.add_parser(name, help=help, description=description, epilog=epilog)
    add_record_options(parser, design_help=design_help)
    parser.add_argument("--level", choices=LEVELS, default=level_default, help=level_help)
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (created)")

    def headless_run(args):
        import matplotlib

        matplotlib.use("Agg")
        return run(args)

    parser.set_defaults(func=headless_run)
    return parser


def read_options(args) -> dict:
    """Keyword arguments of :func:`cdr.read_records` from the parsed options."""
    lenient = bool(getattr(args, "lenient", False)) or getattr(args, "mode", None) == "lenient"
    sheet = getattr(args, "sheet", None)
    if isinstance(sheet, str) and sheet.isdigit():
        sheet = int(sheet)
    return {"columns": getattr(args, "columns", None), "sheet": sheet, "mode": "lenient" if lenient else "strict",
            "vintage": getattr(args, "vintage", 2023)}


def read_records_file(path, args, command: str, out=None):
    """Read ``path`` with the options; with ``out``, write exclusions.csv and field_issues.csv there and say so."""
    from cdr.schema import read_records

    result = read_records(path, **read_options(args))
    source = result.source
    if source.get("sheet") is not None:
        print(f"cdr {command}: read sheet {source['sheet']!r} of {path}")
    where = None
    if out is not None:
        os.makedirs(out, exist_ok=True)
        private = {}
        if len(result.exclusions):
            private["exclusions.csv"] = result.exclusions
        if len(result.issues):
            private["field_issues.csv"] = result.issues
        if private:   # row numbers, case ids and raw values: never into --out, which is for publishing
            from cdr.report._private import PRIVATE_WARNING, private_folder
            from cdr.report._safeio import PRIVATE_FORMAT, csv_bytes, write_folder

            where = private_folder(out, getattr(args, "private", None))
            write_folder(where, {k: csv_bytes(v) for k, v in private.items()},
                         {"warning": PRIVATE_WARNING, "command": f"cdr {command}",
                          "out": os.path.basename(os.path.normpath(out))}, fmt=PRIVATE_FORMAT, what="private folder")
    line = f"cdr {command}: {result.n_input:,} records read, {len(result.records):,} counted"
    if len(result.exclusions):
        line += f", {len(result.exclusions):,} excluded" + (f" (see {os.path.join(where, 'exclusions.csv')}; PRIVATE, do not publish that folder)" if where else "")
    if len(result.issues):
        counts = result.issue_counts()
        line += ("; fields set to not recorded: " + ", ".join(f"{f} {k:,}" for f, k in counts.values.tolist())
                 + (f" (see {os.path.join(where, 'field_issues.csv')}; PRIVATE)" if where else ""))
    print(line)
    return result


def read_input(args, command: str):
    """Read ``--records`` (writing ``exclusions.csv``/``field_issues.csv`` into ``--out``) and ``--design``.

    Returns ``(read_result, design)``; ``read_result`` unpacks as ``records, exclusions``.
    """
    from cdr.footprints import load_design

    result = read_records_file(args.records, args, command, out=args.out)
    return result, (load_design(args.design) if args.design else None)
