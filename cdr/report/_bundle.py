"""The cells of a report bundle, the equations that link them, and tables rendered from them.

Every published count is a *cell* with a stable id built from what it counts::

    deaths|fp:F07|2022-23|age_band=1-4;category=infection

(measure, geography unit, period, dimensions). A count shown in several tables (the footprint's
deaths in the headline, in the age table total and on the funnel plot) is one cell, so
suppression and the audit see the bundle as a whole. Equations (total = sum of parts) are derived
from the cell lattice: margins of every dimension, the geography (every published LA, footprint,
region and England count = the sum of the parts of the common refinement of all units published
for the same measure, period and breakdown; parts that are not published themselves, such as the
LAs of a region outside the reported partnership, are *unpublished parts*: cells of the bundle
that are never shown, see :meth:`Bundle.geography`), each year -> the multi-year total, and
notified = reviewed + pending, reviewed = with + without modifiable factors.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Bundle", "TableSpec", "MARK_SUPPRESSED", "MARK_NA", "MARK_LOW", "canonical_unit"]

MARK_SUPPRESSED = "[c]"   # ONS: confidential (suppressed to protect confidentiality)
MARK_NA = "[x]"           # ONS: not available / not applicable
MARK_LOW = "[u]"          # ONS: low reliability

# measure relations: total measure = sum of part measures, same unit/period/dims
MEASURE_RELATIONS = (
    ("deaths", ("reviewed", "pending")),
    ("rc_reviews", ("rc_judged", "rc_insufficient")),
    ("rc_judged", ("rc_modifiable", "rc_not_modifiable")),
)


def cell_id(measure, unit, period, dims) -> str:
    return f"{measure}|{unit}|{period}|" + ";".join(f"{k}={v}" for k, v in dims)


def canonical_unit(las) -> str:
    """Key of a set of LAs, the same in every release: ``la:<code>`` for one LA, else ``las:<hash>``.

    The hash is the first 12 hex digits of the SHA-1 of the sorted LA codes joined by commas, so a
    footprint of one design, a footprint of another and a region covering the same LAs share it.
    """
    import hashlib

    las = sorted(las)
    if len(las) == 1:
        return "la:" + las[0]
    return "las:" + hashlib.sha1(",".join(las).encode()).hexdigest()[:12]


class Bundle:
    """Registry of count cells (true values) with the geography and dimensions needed for equations.

    ``unit_las``: unit id (``"la:E06000001"``, ``"fp:F07"``, ``"rgn:E12000001"``, ``"nat:E92000001"``)
    -> frozenset of LA codes it covers. ``levels``: dimension -> all its levels (a margin equation
    is written only when every level is published). ``years``/``total_period``: yearly period
    labels and the label of their multi-year total.
    """

    def __init__(self, unit_las: dict, levels: dict, years=(), total_period=None):
        self.unit_las = unit_las
        self.levels = {k: tuple(v) for k, v in levels.items()}
        self.years = tuple(years)
        self.total_period = total_period
        self.cells: dict[str, dict] = {}
        self.partitions: dict[str, list] = {}   # dim -> further partitions (merged levels)
        self.extra: list = []                    # explicit (total, [parts]) equations
        self.merges: dict = {}                   # (dim, merged level) -> member levels
        self.design_options = None               # category x age designs compared (refine_cross)
        self.value_of = None                     # (measure, las, period, dims) -> count, for unpublished parts
        self._geo = None                         # cache of geography(): (cells key, equations, parts)
        self.ghosts: dict = {}                   # (measure, period, canonical dims) -> [(key, las)] of earlier releases
        self.hidden: set = set()                 # cells no table shows, declared so their margins are equations

    def add_partition(self, dim, levels, merges: dict):
        """Another partition of ``dim``: ``levels``, some of them merged levels ``{merged: members}``."""
        self.partitions.setdefault(dim, []).append(tuple(levels))
        for merged, members in merges.items():
            self.merges[(dim, merged)] = tuple(members)

    def cell(self, measure: str, unit: str, period: str, value, **dims) -> str:
        dims = tuple(sorted((k, str(v)) for k, v in dims.items()))
        cid = cell_id(measure, unit, period, dims)
        value = int(value)
        old = self.cells.get(cid)
        if old is not None and old["value"] != value:  # pragma: no cover - internal consistency
            raise RuntimeError(f"cell {cid} registered with two values {old['value']} and {value}")
        self.cells[cid] = {"measure": measure, "unit": unit, "period": period, "dims": dims, "value": value}
        return cid

    def frame(self) -> pd.DataFrame:
        """Every cell: the registered cells, then the unpublished parts (``unpublished`` True).

        A registered cell in ``hidden`` is unpublished too: a count no table shows that a reader can
        still bound through published tables (reviews *without* a learning theme, unexpected deaths
        of a category beside that category's deaths), declared so that its equations reach the audit.
        """
        parts = self.geography()[1]
        rows = [{"cell": k, "value": v["value"], "measure": v["measure"], "unit": v["unit"], "period": v["period"],
                 "dims": ";".join(f"{a}={b}" for a, b in v["dims"]), "unpublished": k in self.hidden}
                for k, v in self.cells.items()]
        rows += [{"cell": k, "value": v["value"], "measure": v["measure"], "unit": v["unit"], "period": v["period"],
                  "dims": ";".join(f"{a}={b}" for a, b in v["dims"]), "unpublished": True} for k, v in parts.items()]
        return pd.DataFrame(rows, columns=["cell", "value", "measure", "unit", "period", "dims", "unpublished"])

    def geography(self):
        """Geography equations and the unpublished parts they need: ``(equations, parts)``.

        For each measure, period and breakdown (dims), take every unit published for it (LAs,
        footprints, regions, England) and split the LAs they cover by which of those units contain
        them: the *common refinement* (with footprints crossing region boundaries, a footprint's
        part in each region is its own piece). A piece equal to a published unit is that unit's
        cell; any other piece is an unpublished part, a cell with an id of its own
        (``deaths|la:E06000057|2022-23|`` for one LA, ``deaths|las:<hash>|...`` for several; its LAs
        in ``parts[id]["las"]``). Every published unit = the sum of its pieces, and units covering
        the same LAs are equal. So a region total minus the published footprints inside it, or
        England minus the regions, is a cell the search protects and the audit attacks: nothing is
        derivable by subtraction that the audit has not seen. ``parts``: id -> ``measure``,
        ``unit``, ``period``, ``dims``, ``value`` (true count), ``las``.
        """
        key = (tuple(self.cells), tuple(sorted((k, tuple(v)) for k, v in self.ghosts.items())))
        if self._geo is not None and self._geo[0] == key:
            return self._geo[1], self._geo[2]

        groups, local_dims = defaultdict(list), {}
        for cid, c in self.cells.items():
            if self.unit_las.get(c["unit"]):
                g = (c["measure"], c["period"], self.canonical_dims(c["dims"]))
                groups[g].append(c["unit"])
                local_dims.setdefault(g, c["dims"])
        eqs, parts = [], {}
        for g, units in groups.items():
            measure, period, _ = g
            dims = local_dims[g]
            # units of this release, then the cells of earlier releases (ghosts) for the same
            # measure, period and breakdown: the common refinement covers them all
            units = [(u, self.unit_las[u], cell_id(measure, u, period, dims)) for u in dict.fromkeys(units)]
            units += [(k, frozenset(las), k) for k, las in self.ghosts.get(g, ())]
            if len(units) < 2:
                continue
            signature = defaultdict(list)
            for i, (_, las_u, _) in enumerate(units):
                for la in las_u:
                    signature[la].append(i)
            pieces = defaultdict(set)
            for la, sig in signature.items():
                pieces[tuple(sig)].add(la)
            by_set = {}
            for entry in units:
                by_set.setdefault(entry[1], []).append(entry)
            piece_id = {}
            for sig, las in pieces.items():
                las = frozenset(las)
                if las in by_set:
                    piece_id[sig] = by_set[las][0][2]
                    continue
                unit = canonical_unit(las)
                cid = cell_id(measure, unit, period, dims)
                if self.value_of is None:  # pragma: no cover - declare_tables sets it
                    raise RuntimeError("Bundle.value_of is needed to count unpublished parts")
                parts[cid] = {"measure": measure, "unit": unit, "period": period, "dims": dims,
                              "value": int(self.value_of(measure, las, period, dims)), "las": sorted(las)}
                piece_id[sig] = cid
            for same in by_set.values():       # units covering the same LAs publish the same count
                for entry in same[1:]:
                    eqs.append((entry[2], [same[0][2]]))
            for i, entry in enumerate(units):
                if by_set[entry[1]][0] is not entry:
                    continue
                members = sorted(piece_id[sig] for sig in pieces if i in sig)
                total = entry[2]
                if members != [total]:
                    eqs.append((total, members))
        self._geo = (key, eqs, parts)
        return eqs, parts

    def canonical_dims(self, dims) -> tuple:
        """Dims with every merged level named by its members (``category=a+b+c``), in level order."""
        out = []
        for d, v in dims:
            members = self.merges.get((d, v))
            if members is not None:
                order = self.levels.get(d, ())
                v = "+".join(sorted(members, key=lambda m: (order.index(m) if m in order else len(order), m)))
            out.append((d, v))
        return tuple(out)

    def las_of(self, unit):
        """LA codes of a unit of this bundle, of an unpublished part or of an earlier release's unit."""
        las = self.unit_las.get(unit)
        if las is None:
            las = self.extra_las.get(unit) if hasattr(self, "extra_las") else None
        if las is None and unit.startswith("la:"):
            las = frozenset([unit[3:]])
        if las is None:
            raise KeyError(f"unit {unit!r} has no known LAs")
        return frozenset(las)

    def canonical(self, cid: str) -> str:
        """The release-independent key of a cell: measure|LAs|period|canonical dims (see :func:`canonical_unit`)."""
        measure, unit, period, dims = cid.split("|", 3)
        dims = tuple(tuple(kv.split("=", 1)) for kv in dims.split(";") if kv)
        if unit.startswith("las:"):
            cunit = unit
        else:
            cunit = canonical_unit(self.las_of(unit))
        return cell_id(measure, cunit, period, self.canonical_dims(dims))

    def equations(self) -> list[tuple[str, list[str]]]:
        """Every (total, [parts]) relation among the registered cells."""
        eqs = []
        cells = self.cells
        # 1. margins of each dimension
        by_key = defaultdict(dict)
        for cid, c in cells.items():
            dims = dict(c["dims"])
            for d, v in dims.items():
                rest = tuple(sorted((k, x) for k, x in dims.items() if k != d))
                by_key[(c["measure"], c["unit"], c["period"], rest, d)][v] = cid
        for (measure, unit, period, rest, d), parts in by_key.items():
            total = cell_id(measure, unit, period, rest)
            if total not in cells:
                continue
            for levels in (self.levels.get(d), *self.partitions.get(d, ())):
                if levels is not None and set(levels) <= set(parts):
                    eqs.append((total, [parts[v] for v in levels]))
        # 2. measure relations
        for cid, c in cells.items():
            for total_m, part_ms in MEASURE_RELATIONS:
                if c["measure"] != total_m:
                    continue
                parts = [cell_id(m, c["unit"], c["period"], c["dims"]) for m in part_ms]
                if all(p in cells for p in parts):
                    eqs.append((cid, parts))
        # 3. geography: every published unit = sum of the parts of the common refinement (see geography())
        eqs += self.geography()[0]
        # 4. years -> multi-year total
        if self.total_period and self.years:
            for cid, c in cells.items():
                if c["period"] != self.total_period:
                    continue
                parts = [cell_id(c["measure"], c["unit"], y, c["dims"]) for y in self.years]
                if all(p in cells for p in parts):
                    eqs.append((cid, parts))
        # 5. merged levels = sum of their members, where the members are published too
        for cid, c in cells.items():
            dims = dict(c["dims"])
            for (d, merged), members in self.merges.items():
                if dims.get(d) != merged:
                    continue
                parts = [cell_id(c["measure"], c["unit"], c["period"],
                                 tuple(sorted({**dims, d: m}.items()))) for m in members]
                if all(p in cells for p in parts):
                    eqs.append((cid, parts))
        eqs += self.extra
        # unique, deterministic
        seen, out = set(), []
        for total, parts in eqs:
            key = (total, tuple(parts))
            if key not in seen:
                seen.add(key)
                out.append((total, list(parts)))
        return out


@dataclass
class TableSpec:
    """A table before suppression: label columns, count columns (cell ids) and derived columns.

    ``derived`` entries: ``("percent", out, num, den)``; ``("proportion_ci", prefix, num, den)``
    writes ``prefix``, ``prefix_lower_95``, ``prefix_upper_95`` (per cent, Wilson);
    ``("rate", prefix, count, population)`` writes ``prefix``, ``prefix_lower_95``,
    ``prefix_upper_95`` per 100,000 and ``prefix_flag`` ("[u]" below 20 events).
    """

    name: str
    title: str
    labels: pd.DataFrame
    counts: dict                      # column -> list of cell ids (None for "not applicable")
    values: dict = field(default_factory=dict)   # non-sensitive numeric columns (populations, limits)
    derived: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    figure: str | None = None
    column_labels: dict = field(default_factory=dict)   # column -> readable header (e.g. age_1_14 -> "1-14 years")

    def render(self, published: dict, *, low_reliability=20, rate_fn=None, prop_fn=None, min_count=3):
        """(table, marks): numbers with NaN where not shown, and a same-shaped frame of markers."""
        table = self.labels.reset_index(drop=True).copy()
        marks = pd.DataFrame("", index=table.index, columns=list(table.columns))
        for col, ids in self.counts.items():
            vals, mk = [], []
            for cid in ids:
                if cid is None:
                    vals.append(np.nan)
                    mk.append(MARK_NA)
                else:
                    v = published[cid]
                    vals.append(np.nan if v is None else float(v))
                    mk.append(MARK_SUPPRESSED if v is None else "")
            table[col] = pd.array([None if np.isnan(v) else int(v) for v in vals], dtype="Int64")
            marks[col] = mk
        for col, vals in self.values.items():
            table[col] = np.asarray(vals, dtype=float)
            marks[col] = ""
        for spec in self.derived:
            kind = spec[0]
            if kind == "percent":
                _, out, num, den = spec
                n, d = _num(table[num]), _num(table[den])
                with np.errstate(invalid="ignore", divide="ignore"):
                    table[out] = np.where(d > 0, 100 * n / d, np.nan)
                marks[out] = _derived_marks(marks, [num, den], d > 0)
            elif kind == "proportion_ci":
                _, out, num, den = spec
                n, d = _num(table[num]), _num(table[den])
                p, lo, hi = prop_fn(n, d)
                ok = d > 0
                for suffix, v in (("", p), ("_lower_95", lo), ("_upper_95", hi)):
                    table[out + suffix] = np.where(ok, 100 * v, np.nan)
                    marks[out + suffix] = _derived_marks(marks, [num, den], ok)
            elif kind == "rate":
                _, out, count, pop = spec
                c, p = _num(table[count]), _num(table[pop])
                r, lo, hi = rate_fn(c, p)
                ok = (p > 0) & ~(np.isfinite(c) & (c < min_count))   # ONS: no rate from fewer than 3 (none from 0)
                for suffix, v in (("", r), ("_lower_95", lo), ("_upper_95", hi)):
                    table[out + suffix] = np.where(ok, v, np.nan)
                    marks[out + suffix] = _derived_marks(marks, [count], ok)
                flag = np.where(np.isfinite(c) & (c < low_reliability) & (c > 0), MARK_LOW, "")
                table[out + "_flag"] = flag
                marks[out + "_flag"] = ""
            else:  # pragma: no cover
                raise ValueError(kind)
        return table, marks


def _num(series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").astype(float).to_numpy()


def _derived_marks(marks, deps, ok):
    out = np.where(ok, "", MARK_NA).astype(object)
    for dep in deps:
        out = np.where(marks[dep].to_numpy() == MARK_SUPPRESSED, MARK_SUPPRESSED, out)
    return out
