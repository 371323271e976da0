"""Argument helpers shared by the ``cdr`` command groups (parsing and file I/O only)."""
from __future__ import annotations

import argparse
import os

__all__ = ["years_arg", "positive_number", "add_record_options", "read_input"]


def years_arg(text: str) -> list[int]:
    """argparse type for ``--years``: ``2019-2023`` (a range) or ``2019,2021`` (a list)."""
    try:
        if "-" in text:
            first, last = (int(x) for x in text.split("-", 1))
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


def add_record_options(parser, *, design_help: str) -> None:
    """``--records``, ``--mode``, ``--design`` and ``--vintage``, as every record-reading command has them."""
    parser.add_argument("--records", required=True, metavar="FILE",
                        help="record file (CSV or Parquet), read with cdr.read_records")
    parser.add_argument("--mode", choices=("strict", "lenient"), default="strict",
                        help="strict: stop on any invalid record; lenient: analyse valid ones and write "
                             "exclusions.csv to the private folder (default: strict)")
    parser.add_argument("--design", metavar="FILE", help=design_help)
    parser.add_argument("--vintage", type=int, default=2023, help="geography vintage of la_code (default 2023)")
    parser.add_argument("--private", metavar="DIR",
                        help="folder for record-level details that must NOT be published (exclusions.csv with row "
                             "numbers, case ids and values); default OUT.private beside --out")


def read_input(args, command: str):
    """Read ``--records`` and ``--design``; in lenient mode ``exclusions.csv`` goes to the private folder.

    The private folder (``--private``, default ``<out>.private``) holds row numbers, case ids and raw
    values, so it is never ``--out`` (which is for publishing).

    Returns ``(read_result, design)``; ``read_result`` unpacks as ``records, exclusions``.
    """
    from cdr.footprints import load_design
    from cdr.schema import read_records

    os.makedirs(args.out, exist_ok=True)
    result = read_records(args.records, mode=args.mode, vintage=args.vintage)
    if len(result.exclusions):
        from cdr.report._private import PRIVATE_WARNING, private_folder
        from cdr.report._safeio import PRIVATE_FORMAT, csv_bytes, write_folder

        where = private_folder(args.out, getattr(args, "private", None))
        write_folder(where, {"exclusions.csv": csv_bytes(result.exclusions)},
                     {"warning": PRIVATE_WARNING, "command": f"cdr {command}", "out": os.path.basename(
                         os.path.normpath(args.out))}, fmt=PRIVATE_FORMAT, what="private folder")
        print(f"cdr {command}: {len(result.exclusions):,} of {result.n_input:,} records excluded "
              f"(listed in {os.path.join(where, 'exclusions.csv')}; PRIVATE, do not publish that folder)")
    return result, (load_design(args.design) if args.design else None)
