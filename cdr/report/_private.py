"""What stays out of a publishable bundle: record-level details go to a private folder beside it.

The bundle (``--out``) is what a partnership puts on the web. Row numbers, case ids, dates and raw values
of excluded records, full error messages that can quote them, and counts of exclusions below the
suppression threshold never go into it; they go to the private folder (``--private``, by default
``<out>.private``), which the report names and which must not be published.
"""
from __future__ import annotations

import os
import pathlib

import pandas as pd

from cdr.report._bundle import MARK_SUPPRESSED

__all__ = ["public_path", "exclusion_counts", "private_folder", "private_files", "PRIVATE_WARNING"]

PRIVATE_WARNING = ("PRIVATE - DO NOT PUBLISH. Record-level details of a cdr report bundle (row numbers, case ids, "
                   "dates and raw values of excluded records; full error messages). Keep it with the records, "
                   "never with the published bundle.")


def public_path(path) -> str:
    """A path as it may appear in a published bundle: relative paths as given, else the file's name only.

    Parameters
    ----------
    path : str or path

    Returns
    -------
    str

    Examples
    --------
    >>> public_path("/home/analyst/secret/records.csv"), public_path("data/records.csv")
    ('records.csv', 'data/records.csv')
    >>> public_path("../elsewhere/design.csv")
    'design.csv'
    """
    text = str(path)
    p = pathlib.PurePath(text)
    if p.is_absolute() or ".." in p.parts or text.startswith("~"):
        return p.name
    return p.as_posix() if os.sep == "/" else text


def exclusion_counts(exclusions: pd.DataFrame, threshold: int) -> dict:
    """Excluded records per failing field, with counts below ``threshold`` suppressed.

    A record failing several fields counts once per field. Counts from 1 to ``threshold - 1`` are
    ``"[c]"``; so that the total of excluded records does not give a suppressed count by subtraction,
    further (smallest) fields are suppressed until the suppressed fields hold at least ``threshold``
    records or all are suppressed.

    Parameters
    ----------
    exclusions : pandas.DataFrame
        The exclusions table of :func:`cdr.read_records` (``field`` joined with ``"; "``).
    threshold : int

    Returns
    -------
    dict of str -> int or str

    Examples
    --------
    >>> ex = pd.DataFrame({"field": ["la_code"] * 7 + ["sex"] * 2 + ["la_code; sex"]})
    >>> exclusion_counts(ex, 5)
    {'la_code': '[c]', 'sex': '[c]'}
    >>> exclusion_counts(pd.DataFrame({"field": ["la_code"] * 7 + ["sex"] * 6}), 5)
    {'la_code': 7, 'sex': 6}
    """
    if not len(exclusions) or "field" not in exclusions:
        return {}
    fields = exclusions["field"].astype(str).str.split("; ").explode()
    counts = fields.value_counts()
    counts = counts.sort_index(kind="stable")
    hidden = set(counts.index[counts < threshold])
    order = sorted(counts.index, key=lambda f: (counts[f], f))
    while hidden and sum(counts[f] for f in hidden) < threshold and len(hidden) < len(counts):
        hidden.add(next(f for f in order if f not in hidden))
    return {str(f): (MARK_SUPPRESSED if f in hidden else int(n)) for f, n in counts.items()}


def private_folder(out, private=None) -> pathlib.Path:
    """The private folder: ``private`` when given, else ``<out>.private`` beside ``out``.

    Parameters
    ----------
    out : path
    private : path, optional

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> private_folder("reports/f001").as_posix()
    'reports/f001.private'
    """
    if private is not None:
        return pathlib.Path(private)
    out = pathlib.Path(out)
    return out.with_name(out.name + ".private")


def private_files(report) -> dict:
    """Relative path -> bytes of the private folder of ``report`` (empty when there is nothing private).

    Parameters
    ----------
    report : Report

    Returns
    -------
    dict of str -> bytes

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> private_files(SimpleNamespace(private={}))
    {}
    """
    from cdr.report._safeio import csv_bytes

    private = getattr(report, "private", None) or {}
    files = {}
    exclusions = private.get("exclusions")
    if exclusions is not None and len(exclusions):
        files["exclusions.csv"] = csv_bytes(exclusions)
    issues = private.get("field_issues")
    if issues is not None and len(issues):
        files["field_issues.csv"] = csv_bytes(issues)
    notes = private.get("notes") or {}
    if files or notes:
        text = [PRIVATE_WARNING, ""]
        for key, value in notes.items():
            text.append(f"{key}: {value}")
        files["README.txt"] = ("\n".join(text) + "\n").encode("utf-8")
    return files


def public_record_counts(*, in_unit: int, outside_unit: int, earlier: int, later: int, excluded: int,
                         threshold: int) -> dict:
    """Record counts for the public manifest, with no count from 1 to ``threshold - 1`` recoverable.

    The counts form a chain: deaths of the reported unit in the period (published in the headline)
    + deaths in the period outside it = ``in_period``; + earlier and later periods = ``valid``; +
    records excluded as invalid = ``input``. Any published pair of the chain gives the sum of the
    leaves between them, so the leaves (``outside_unit``, ``earlier_periods``, ``later_periods``,
    ``excluded_invalid``) and the totals to publish are chosen together (exhaustively: there are
    128 patterns): a leaf from 1 to ``threshold - 1`` is ``"[c]"``, and every difference of two
    published totals either contains no hidden leaf or at least two whose sum leaves each of them
    possibly >= ``threshold`` (so none is pinned or proven small). The pattern publishing the most
    counts wins; ties go to publishing totals.

    Examples
    --------
    >>> public_record_counts(in_unit=66, outside_unit=1, earlier=200, later=0, excluded=3, threshold=5)["outside_unit"]
    '[c]'
    >>> r = public_record_counts(in_unit=66, outside_unit=1, earlier=200, later=0, excluded=3, threshold=5)
    >>> r["in_period"], r["excluded_invalid"], r["input"]
    ('[c]', '[c]', '[c]')
    >>> public_record_counts(in_unit=66, outside_unit=0, earlier=200, later=9, excluded=0, threshold=5)["input"]
    275
    """
    from itertools import product

    leaves = {"outside_unit": int(outside_unit), "earlier_periods": int(earlier), "later_periods": int(later),
              "excluded_invalid": int(excluded)}
    small = {k for k, v in leaves.items() if 1 <= v < threshold}
    # the leaves each total adds to the one before it
    steps = [("in_period", ("outside_unit",)), ("valid", ("earlier_periods", "later_periods")),
             ("input", ("excluded_invalid",))]

    def safe(hidden_leaves, shown_totals):
        group = []                               # hidden leaves since the last published total
        for total, added in steps:
            group += [leaf for leaf in added if leaf in hidden_leaves]
            if total in shown_totals:
                if group:
                    s = sum(leaves[g] for g in group)
                    if len(group) < 2 or s < threshold + len(group) - 1:
                        return False
                group = []
        return True

    best = None
    names = list(leaves)
    for hide_bits in product((False, True), repeat=len(names)):
        hidden = {n for n, h in zip(names, hide_bits) if h}
        if not small <= hidden:
            continue
        for show_bits in product((True, False), repeat=len(steps)):
            shown = {t for (t, _), s in zip(steps, show_bits) if s}
            if safe(hidden, shown):
                score = (len(names) - len(hidden) + len(shown), len(shown))
                if best is None or score > best[0]:
                    best = (score, hidden, shown)
    _, hidden, shown = best                      # hiding every leaf and every total is always safe
    totals = {"in_period": in_unit + leaves["outside_unit"]}
    totals["valid"] = totals["in_period"] + leaves["earlier_periods"] + leaves["later_periods"]
    totals["input"] = totals["valid"] + leaves["excluded_invalid"]
    out = {k: (v if k in shown else "[c]") for k, v in totals.items()}
    out.update({k: ("[c]" if k in hidden else v) for k, v in leaves.items()})
    return out
