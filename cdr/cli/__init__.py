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

__all__ = ["main", "build_parser", "cli_words"]

GROUPS = ("data", "footprints", "trends", "factors", "report")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block): what is wrong, in which command, and the fix.

    A leaf command names a misspelt option first (``--recrods``: did you mean ``--records``?), before
    argparse would report the options it then misses as required.
    """

    def parse_known_args(self, args=None, namespace=None):
        if args is not None and self._subparsers is None:
            self._check_option_names(list(args))
        return super().parse_known_args(args, namespace)

    def _check_option_names(self, args) -> None:
        import difflib

        known = self._option_string_actions
        shown = sorted(o for o, a in known.items() if o.startswith("--") and a.help != argparse.SUPPRESS)
        for token in args:
            if token == "--":
                break
            name = token.split("=", 1)[0]
            if not name.startswith("--") or name in known:
                continue
            if self.allow_abbrev and len([o for o in known if o.startswith(name)]) == 1:
                continue
            close = difflib.get_close_matches(name, shown, n=1, cutoff=0.6)
            self.error(f"unknown option {name}" + (f"; did you mean {close[0]}?" if close else ""))

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
        print(f"cdr {command}: warning: {cli_words(text)}", file=sys.stderr if file is None else file)

    return show


#: Python argument wording in library messages -> the command-line flag that does the same.
CLI_WORDS = (
    ('mode="lenient"', "--lenient"),
    ("mode='lenient'", "--lenient"),
    ("columns= (a dict or TOML file)", "--columns FILE.toml"),
    ("columns=", "--columns FILE.toml"),
    ("values=", "a [values.<field>] table in the --columns file"),
    ("sheet=", "--sheet"),
    ("cdr.schema.field_table()", "cdr data columns"),
    ("vintage=", "--vintage"),
    ("level='region' needs region= (a region code,", "--level region needs --region CODE (a region code,"),
    ("level='footprint' needs footprint= (a footprint id", "--level footprint (the default) needs --footprint ID (a footprint id"),
)


def cli_words(text: str) -> str:
    """A library message with Python argument names replaced by the CLI flags (``mode="lenient"`` -> ``--lenient``).

    Parameters
    ----------
    text : str
        Message of a :class:`~cdr.errors.CdrError` or a warning.

    Returns
    -------
    str

    Examples
    --------
    >>> cli_words('read with mode="lenient" to count every death')
    'read with --lenient to count every death'
    """
    for python, flag in CLI_WORDS:
        text = text.replace(python, flag)
    return text


def _one_line_error(exc: BaseException) -> str:
    """What went wrong, for errors that are not the library's own (files, memory, bugs)."""
    if isinstance(exc, FileNotFoundError):
        return f"no such file or folder: {exc.filename!r}; check the path"
    if isinstance(exc, IsADirectoryError):
        return f"{exc.filename!r} is a folder; give a file"
    if isinstance(exc, PermissionError):
        return f"cannot open {exc.filename!r}: permission denied; choose another path or check its permissions"
    if isinstance(exc, OSError) and getattr(exc, "filename", None):
        return f"cannot use {exc.filename!r}: {exc.strerror or exc}; check the path"
    if isinstance(exc, UnicodeDecodeError):
        return f"a file is not readable text ({exc.encoding}: {exc.reason}); save it as CSV UTF-8"
    if isinstance(exc, MemoryError):
        return "out of memory; use fewer years or a smaller file"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return (f"{text} ({type(exc).__name__}; this may be a bug in cdr: rerun with CDR_DEBUG=1 for the traceback "
            "and report it)")


def main(argv=None) -> int:
    """Run the ``cdr`` command line; returns the exit code (0 success, 2 any error, with one clear message).

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success; 2 for every error (bad arguments, unreadable or invalid files, failed analyses),
        printed as ``cdr COMMAND: error: ...`` without a traceback (set ``CDR_DEBUG=1`` to see it).

    Examples
    --------
    >>> main(["data", "validate", "no-such-file.csv"])
    2
    """
    import os
    import warnings

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    debug = os.environ.get("CDR_DEBUG", "").strip() not in ("", "0")
    command = " ".join(x for x in (args.command, getattr(args, "data_command", None),
                                   getattr(args, "footprints_command", None)) if x)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _print_warnings(command)
            return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"cdr {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # every error ends in a clear message and exit code 2
        if debug:
            import traceback

            traceback.print_exc()
        text = cli_words(str(exc)) if isinstance(exc, CdrError) else _one_line_error(exc)
        print(f"cdr {command}: error: {text}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
