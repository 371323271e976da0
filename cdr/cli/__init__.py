"""The ``cdr`` command line: argument parsing and printing only; the work is done by the library.

Each command group lives in its own module (``cdr/cli/<group>.py``) defining ``register(subparsers)``,
which adds its sub-parser and sets ``func`` (called with the parsed arguments; returns an exit code).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from cdr import __version__
from cdr.errors import CdrError

__all__ = ["main", "build_parser"]

GROUPS = ("data", "footprints", "trends", "factors", "report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cdr",
        description=(
            "Child death review epidemiology for England: footprints, rates and trends, contributory "
            "factors and annual statistics with disclosure control. Runs on the embedded ONS data "
            "(OGL v3) and on record files you supply; synthetic records are always labelled as such."
        ),
        epilog="Run 'cdr COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"cdr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        try:
            module = importlib.import_module(f"cdr.cli.{group}")
        except ModuleNotFoundError as exc:  # a group not yet written in a development checkout
            if exc.name != f"cdr.cli.{group}":
                raise
            continue
        module.register(sub)
    return parser


def _print_warnings(command: str):
    """Show warnings as one plain line each (no source line), each distinct message once."""
    seen = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = str(message)
        if text in seen:
            return
        seen.add(text)
        print(f"cdr {command}: warning: {text}", file=sys.stderr if file is None else file)

    return show


def main(argv=None) -> int:
    import warnings

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _print_warnings(args.command)
            return int(args.func(args) or 0)
    except CdrError as exc:
        print(f"cdr {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
