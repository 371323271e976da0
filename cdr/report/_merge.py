"""Merging small levels of a table: the rules shared by the report's core and content tables.

One place for how categories are pooled (:func:`merge_small`), how ordered levels such as age
bands are joined with their neighbours (:func:`merge_contiguous`), how far a two-way table is
merged (:func:`refine_cross`), the label of a merged age group, and the id of the nation unit.
Both :mod:`cdr.report._tables` (the core tables) and :mod:`cdr.report._content` (the content
tables) import from here, so neither imports the other for these helpers.
"""
from __future__ import annotations

import pandas as pd

from cdr.report._inputs import AGE_BAND_LABELS

__all__ = ["NATION", "OTHER", "OTHER_REVIEWS", "merge_small", "merge_contiguous", "refine_cross"]

NATION = "nat:E92000001"   # unit id of England in a report's geography

OTHER = "other"
OTHER_REVIEWS = "other_reviewed"


_AGE_SPAN = {"neonatal": ("0 days", "27 days"), "postneonatal": ("28 days", "364 days")}


def _age_group_label(level: str) -> str:
    """Readable label of an age group column: ``"1-4+5-9+10-14"`` -> ``"1-14 years"``."""
    parts = level.split("+")
    if len(parts) == 1:
        return AGE_BAND_LABELS.get(level, level)
    if "not_recorded" in parts:  # deaths with no date of birth or age (cdr.schema), merged as the last band
        return _age_group_label("+".join(p for p in parts if p != "not_recorded")) + " or age not recorded"
    first, last = parts[0], parts[-1]
    if first in _AGE_SPAN and last in _AGE_SPAN:
        return "Under 1 year" if first == "neonatal" else "28-364 days"
    end = int(last.split("-")[-1])
    if first == "neonatal":
        return f"Under {end + 1} years"
    if first == "postneonatal":
        return f"28 days to {end} years"
    return f"{first.split('-')[0]}-{end} years"


def merge_small(counts: dict, below: int, merged: str = OTHER):
    """Levels kept (in order, then `merged`) and ``{merged: members}``.

    Levels with fewer than `below` counts are combined; while the combined level is still below
    `below`, the smallest remaining level joins it (so no broken-down row rests on a small total).
    """
    order = list(counts)
    members = [v for v in order if counts[v] < below]
    rest = sorted((v for v in order if v not in members), key=lambda v: (counts[v], order.index(v)))
    while members and sum(counts[m] for m in members) < below and rest:
        members.append(rest.pop(0))
    if len(members) <= 1 and all(counts[m] >= below for m in members):
        members = []
    if len(members) == 1:   # a single small level that cannot be merged: it is a row of its own
        members = []
    kept = [v for v in order if v not in members]
    members = [v for v in order if v in members]
    return (kept + ([merged] if members else [])), ({merged: members} if members else {})


def merge_contiguous(counts: dict, below: int):
    """Ordered levels (e.g. age bands) with neighbours merged until every group reaches `below`.

    Returns the group labels (``"5-9+10-14"`` for a merged group) and ``{label: members}``.
    """
    groups = [[v] for v in counts]
    total = lambda g: sum(counts[v] for v in g)  # noqa: E731
    while len(groups) > 1:
        small = [i for i, g in enumerate(groups) if total(g) < below]
        if not small:
            break
        i = min(small, key=lambda k: (total(groups[k]), k))
        if i == 0:
            j = 1
        elif i == len(groups) - 1:
            j = i - 1
        else:
            j = i - 1 if total(groups[i - 1]) <= total(groups[i + 1]) else i + 1
        lo, hi = min(i, j), max(i, j)
        groups[lo:hi + 1] = [groups[lo] + groups[hi]]
    labels = ["+".join(g) for g in groups]
    return labels, {lab: g for lab, g in zip(labels, groups) if len(g) > 1}


def refine_cross(cross: dict, rows, row_merges: dict, cols, col_merges: dict, *, threshold: int,
                 merged_row: str = OTHER):
    """Choose how far to merge a two-way table (category x age) by the information each design keeps.

    ``cross``: ``{(row level, column level): count}`` over the original levels; ``rows``/``cols``
    and ``*_merges`` are the groups already chosen from the margins (:func:`merge_small`,
    :func:`merge_contiguous`). Candidate designs come from a greedy sequence: each step takes, of
    every merge of two neighbouring column groups and every move of a row group into
    ``merged_row`` (when the table has one), the one leaving the fewest interior cells from 1 to ``threshold - 1``. Every
    candidate (the margin-merged design and each step) is then protected as a small bundle: the
    one-way tables of both dimensions (every original level, with their total), the two-way
    interior and its margins, with all their equations, by
    :func:`cdr.disclosure.secondary_suppression`. The design that publishes the most cells wins,
    one-way cells counting twice (they are the tables people read first); ties go to the finer
    design. The whole bundle is protected and audited afterwards as usual; this only chooses a design.

    Why: a small interior cell whose row and column margins are published can only be protected
    by hiding at least three more cells, in the margins when the other cells of its row or column
    are zeros (zeros are shown), so a fine cross table can cost most of the one-way age table.

    A design is never merged down to one row or one column: that is the one-way table again.

    Returns ``(rows, row_merges, cols, col_merges, options)``; ``options`` is a DataFrame, one row
    per candidate: ``step``, ``design`` (merges in words), ``interior_cells``, ``small_interior``,
    ``published_one_way``, ``published_interior``, ``suppressed``, ``information``, ``chosen``.
    """
    def members(level, merges):
        return merges.get(level, [level])

    def value(r, c, rm, cm):
        return sum(cross.get((a, b), 0) for a in members(r, rm) for b in members(c, cm))

    def small(rows_, rm, cols_, cm):
        return sum(0 < value(r, c, rm, cm) < threshold for r in rows_ for c in cols_)

    design = (list(rows), dict(row_merges), list(cols), dict(col_merges), "margins only")
    candidates = [design]
    current = small(*design[:4])
    while current:
        rows, row_merges, cols, col_merges, _ = candidates[-1]
        options = []
        for i in range(len(cols) - 1 if len(cols) > 2 else 0):   # never down to one column: no breakdown left
            a, b = cols[i], cols[i + 1]
            label = "+".join(members(a, col_merges) + members(b, col_merges))
            cm = {k: v for k, v in col_merges.items() if k not in (a, b)}
            cm[label] = members(a, col_merges) + members(b, col_merges)
            new_cols = cols[:i] + [label] + cols[i + 2:]
            options.append((small(rows, row_merges, new_cols, cm), -len(rows) * len(new_cols),
                            (rows, row_merges, new_cols, cm, f"merge columns {a} and {b}")))
        for r in rows:
            if r == merged_row or merged_row not in rows or len(rows) < 3:
                continue
            rm = dict(row_merges)
            rm[merged_row] = [v for v in members(merged_row, row_merges) if v != merged_row] + members(r, row_merges)
            new_rows = [v for v in rows if v not in (r, merged_row)] + [merged_row]
            options.append((small(new_rows, rm, cols, col_merges), -len(new_rows) * len(cols),
                            (new_rows, rm, cols, col_merges, f"move row {r} into {merged_row}")))
        if not options:
            break
        best = min(options, key=lambda o: (o[0], o[1]))
        if best[0] >= current:
            break
        current = best[0]
        candidates.append(best[2])
    rows_all = sorted({r for r, _ in cross}, key=lambda v: [r for r, _ in cross].index(v))
    cols_all = sorted({c for _, c in cross}, key=lambda v: [c for _, c in cross].index(v))
    rows_out = []
    for step, (rws, rm, cls, cm, what) in enumerate(candidates):
        loss = _cross_information(cross, rows_all, cols_all, rws, rm, cls, cm, threshold=threshold)
        rows_out.append({"step": step, "design": what if step <= 1 else "; ".join(
                         c[4] for c in candidates[1:step + 1]), "interior_cells": len(rws) * len(cls),
                         "small_interior": small(rws, rm, cls, cm), **loss})
    options = pd.DataFrame(rows_out)
    best = int(options.sort_values(["information", "step"], ascending=[False, True])["step"].iloc[0])
    options["chosen"] = options["step"] == best
    rows, row_merges, cols, col_merges, _ = candidates[best]
    return rows, row_merges, cols, col_merges, options


def _cross_information(cross, rows_all, cols_all, rows, rm, cols, cm, *, threshold):
    """Cells published when a one-way x one-way + two-way bundle is protected (see :func:`refine_cross`)."""
    from cdr import disclosure

    def members(level, merges):
        return merges.get(level, [level])

    vals = {}
    eqs = []
    total = sum(cross.values())
    vals["T"] = total
    for r in rows_all:
        vals[f"R:{r}"] = sum(cross.get((r, c), 0) for c in cols_all)
    for c in cols_all:
        vals[f"C:{c}"] = sum(cross.get((r, c), 0) for r in rows_all)
    eqs.append(("T", [f"R:{r}" for r in rows_all]))
    eqs.append(("T", [f"C:{c}" for c in cols_all]))
    def margin(prefix, level, merges):
        """The margin cell of a (possibly merged) level; a merged one is the sum of its members'."""
        parts = members(level, merges)
        if len(parts) == 1:
            return f"{prefix}:{parts[0]}"
        mid = f"{prefix}:{level}"
        vals[mid] = sum(vals[f"{prefix}:{m}"] for m in parts)
        eqs.append((mid, [f"{prefix}:{m}" for m in parts]))
        return mid

    for r in rows:
        rid = margin("R", r, rm)
        for c in cols:
            vals[f"X:{r}|{c}"] = sum(cross.get((a, b), 0) for a in members(r, rm) for b in members(c, cm))
        eqs.append((rid, [f"X:{r}|{c}" for c in cols]))
    for c in cols:
        eqs.append((margin("C", c, cm), [f"X:{r}|{c}" for r in rows]))
    frame = pd.DataFrame({"cell": list(vals), "value": list(vals.values())})
    frame["tables"] = [["cross"]] * len(frame)
    frame["locked"] = False
    frame["previously_suppressed"] = False
    bundle = disclosure.Bundle(cells=frame, equations=eqs, tables={}, spec={"source": "cdr.report design choice"})
    res = disclosure.secondary_suppression(bundle, threshold=threshold).cells.set_index("cell")["suppressed"]
    one_way = [k for k in vals if k[:2] in ("R:", "C:") and "+" not in k and k[2:] in set(rows_all) | set(cols_all)]
    interior = [k for k in vals if k.startswith("X:")]
    pub_one = int((~res.loc[one_way]).sum())
    pub_int = int((~res.loc[interior]).sum())
    return {"published_one_way": pub_one, "published_interior": pub_int, "suppressed": int(res.sum()),
            "information": 2 * pub_one + pub_int}
