"""A bundle of linked tidy tables: cells with ids, values and additivity equations.

Tables are tidy frames: one row per cell, one column per dimension and one value column. Margins
are rows whose level is a parent in the dimension's hierarchy (``LA -> footprint -> region ->
nation``) or, for a flat dimension, the ``total`` label (``"all"``). A cell's id is built from the
dimensions not at their total label, so tables that share a margin (the LA totals of a
category table and of an age table) share that cell.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cdr.errors import ArgumentError, ArgumentTypeError

__all__ = ["Bundle", "table_equations", "cell_ids", "merge_levels"]


def _parents(frame, dim, hierarchy, total):
    """child level -> parent level for one dimension of one table."""
    mapping = (hierarchy or {}).get(dim)
    if mapping is not None:
        mapping = dict(mapping.items()) if hasattr(mapping, "items") else dict(mapping)
        return {k: v for k, v in mapping.items()}
    levels = pd.unique(frame[dim])
    if total in set(levels):
        return {lv: total for lv in levels if lv != total}
    return {}


def _unique_equations(equations, *, drop_identities=False):
    """Equations ``(total, [parts])`` without repeats, first occurrence first (deterministic).

    With `drop_identities`, an equation whose only part is its total (``x = x``) is left out too.
    """
    seen, unique = set(), []
    for total, parts in equations:
        key = (total, tuple(parts))
        if key not in seen and not (drop_identities and list(parts) == [total]):
            seen.add(key)
            unique.append((total, list(parts)))
    return unique


def cell_ids(frame, dims, *, total="all"):
    """Cell ids of a tidy table: ``dim=level`` joined by ``|`` over dimensions not at `total`.

    Parameters
    ----------
    frame : pandas.DataFrame
        A tidy table with one column per dimension (margins labelled `total`).
    dims : list of str
        The dimension columns; the id lists them in sorted order.
    total : str, default "all"
        Margin label: a dimension at this level is left out of the id (the grand total is
        ``"total"``).

    Returns
    -------
    pandas.Series of str
        Named ``cell``, on the index of `frame`.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"area": ["E1", "E1", "all"], "category": ["infection", "all", "all"]})
    >>> cell_ids(t, ["area", "category"]).tolist()
    ['area=E1|category=infection', 'area=E1', 'total']
    """
    if not isinstance(frame, pd.DataFrame):
        raise ArgumentTypeError(f"cell_ids: 'frame' must be a pandas DataFrame (one row per published cell); got {type(frame).__name__}.")
    dims = sorted(dims)
    parts = []
    for d in dims:
        col = frame[d].astype(str)
        parts.append(np.where(frame[d].astype(object) == total, "", d + "=" + col))
    ids = []
    for row in zip(*parts) if parts else [() for _ in range(len(frame))]:
        label = "|".join(p for p in row if p)
        ids.append(label or "total")
    return pd.Series(ids, index=frame.index, name="cell")


def table_equations(frame, dims, *, hierarchy=None, total="all"):
    """Additivity equations of one tidy table with margins.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per cell with the `dims` columns (values: level codes; margins at parent levels).
    dims : list of str
        Dimension columns.
    hierarchy : dict, optional
        ``{dim: {child: parent}}`` for hierarchical dimensions (e.g. ``la_code -> footprint_id ->
        region_code -> "E92000001"``, or single years -> a multi-year period). A dimension without
        a hierarchy is flat: every level adds up to the `total` label, when that row is present.
    total : str, default "all"
        Label of a flat dimension's margin.

    Returns
    -------
    list of (str, list of str)
        ``(total_cell, [part_cells])`` for every margin present in the table; parts absent from
        the table are taken as zeros.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"sex": ["male", "female", "all"], "deaths": [3, 4, 7]})
    >>> table_equations(t, ["sex"])
    [('total', ['sex=female', 'sex=male'])]
    """
    if not isinstance(frame, pd.DataFrame):
        raise ArgumentTypeError(f"table_equations: 'frame' must be a pandas DataFrame (one row per published cell); got {type(frame).__name__}.")
    frame = frame.reset_index(drop=True)
    ids = cell_ids(frame, dims, total=total)
    present = dict(zip(map(tuple, frame[list(dims)].astype(object).to_numpy()), ids))
    equations = {}
    for d in dims:
        parents = _parents(frame, d, hierarchy, total)
        if not parents:
            continue
        others = [o for o in dims if o != d]
        for key, cid in present.items():
            row = dict(zip(dims, key))
            parent = parents.get(row[d])
            if parent is None:
                continue
            tkey = tuple(parent if o == d else row[o] for o in dims)
            tid = present.get(tkey)
            if tid is None:
                continue
            equations.setdefault((d, tid), set()).add(cid)
        del others
    return [(t, sorted(parts)) for (d, t), parts in sorted(equations.items(), key=lambda kv: (kv[0][1], kv[0][0]))]


def merge_levels(frame, dim, mapping, *, value="deaths", dims=None):
    """Aggregate a tidy table by merging levels of one dimension (e.g. categories, or years).

    Parameters
    ----------
    frame : pandas.DataFrame
        Tidy table.
    dim : str
        Dimension whose levels are merged.
    mapping : dict
        ``{old_level: new_level}``; levels not in the mapping are kept.
    value : str, default "deaths"
        Count column, summed within merged levels.
    dims : list of str, optional
        All dimension columns (default: every column except `value`).

    Returns
    -------
    pandas.DataFrame
        The merged table, same columns.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"category": ["a", "b", "c"], "deaths": [1, 2, 9]})
    >>> merge_levels(t, "category", {"a": "a_or_b", "b": "a_or_b"})
      category  deaths
    0   a_or_b       3
    1        c       9
    """
    if not isinstance(frame, pd.DataFrame):
        raise ArgumentTypeError(f"merge_levels: 'frame' must be a pandas DataFrame (one row per published cell); got {type(frame).__name__}.")
    dims = [c for c in frame.columns if c != value] if dims is None else list(dims)
    out = frame.copy()
    out[dim] = out[dim].map(lambda v: mapping.get(v, v))
    return out.groupby(dims, sort=False, as_index=False)[value].sum()[list(frame.columns)]


@dataclass
class Bundle:
    """Every cell of a release (all tables and years) with its additivity equations.

    Attributes
    ----------
    cells : pandas.DataFrame
        ``cell``, ``value`` (true count), ``tables`` (names of the tables holding it),
        ``locked`` (status fixed by a previous release), ``previously_suppressed`` and, optionally,
        ``kind``: ``"cell"`` (default; a cell of a table) or ``"unpublished"`` (a part of a
        published total that is never shown, e.g. the LAs of a region outside the partnership; see
        :meth:`add_unpublished`).
    equations : list of (str, list of str)
        total = sum of parts, across all tables.
    tables : dict of str -> pandas.DataFrame
        The input tables with a ``cell`` column (previous-release tables are not included).
    rates : pandas.DataFrame
        Rates to publish: ``rate_id``, ``table``, ``count_cell``, ``population``, ``multiplier``,
        ``decimals``, ``kind``, ``rate`` (from the true count).
    spec : dict
        The arguments used (for provenance).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"sex": ["male", "female", "all"], "deaths": [3, 9, 12]})
    >>> b = Bundle.from_tables({"by_sex": t}, dims=["sex"])
    >>> b.cells[["cell", "value", "locked"]].values.tolist()
    [['sex=male', 3, False], ['sex=female', 9, False], ['total', 12, False]]
    >>> b.equations, b.tables["by_sex"]["cell"].tolist()
    ([('total', ['sex=female', 'sex=male'])], ['sex=male', 'sex=female', 'total'])
    """

    cells: pd.DataFrame
    equations: list
    tables: dict
    rates: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["rate_id", "table", "count_cell", "population", "multiplier", "decimals", "kind", "rate"]))
    spec: dict = field(default_factory=dict)

    @classmethod
    def from_tables(cls, tables, *, dims, value="deaths", hierarchy=None, total="all", previous=None):
        """Build a bundle from tidy tables.

        Parameters
        ----------
        tables : dict of str -> pandas.DataFrame
            Tidy tables of this release, by name.
        dims : dict of str -> list of str, or list of str
            Dimension columns of each table (one list for all tables, or one per name).
        value : str, default "deaths"
            Count column.
        hierarchy : dict, optional
            ``{dim: {child: parent}}`` (see :func:`table_equations`).
        total : str, default "all"
            Margin label of flat dimensions.
        previous : dict of str -> pandas.DataFrame, optional
            Tables of earlier releases with a boolean ``suppressed`` column: their published cells
            are known to everybody (locked published), their suppressed cells stay suppressed, and
            their margins (e.g. an earlier multi-year total) add equations.

        Returns
        -------
        Bundle

        Examples
        --------
        >>> import pandas as pd
        >>> t = pd.DataFrame({"sex": ["male", "female", "all"], "deaths": [3, 9, 12]})
        >>> b = Bundle.from_tables({"by_sex": t}, dims=["sex"])
        >>> b.cells[["cell", "value"]].to_dict("records")
        [{'cell': 'sex=male', 'value': 3}, {'cell': 'sex=female', 'value': 9}, {'cell': 'total', 'value': 12}]
        >>> b.equations
        [('total', ['sex=female', 'sex=male'])]
        """
        def dims_of(name):
            return list(dims[name]) if isinstance(dims, dict) else list(dims)

        records, equations, out_tables = {}, [], {}
        for source, group in (("current", tables), ("previous", previous or {})):
            for name, frame in group.items():
                tdims = dims_of(name)
                missing = [c for c in [*tdims, value] if c not in frame.columns]
                if missing:
                    raise ArgumentError(f"Bundle.from_tables: table {name!r} lacks columns {missing}; "
                                     f"dims={tdims}, value={value!r}")
                if source == "previous" and "suppressed" not in frame.columns:
                    raise ArgumentError(f"Bundle.from_tables: previous-release table {name!r} needs a boolean "
                                     "'suppressed' column (True where the cell was not published)")
                counts = pd.to_numeric(frame[value], errors="coerce")
                if counts.isna().any() or (counts < 0).any() or (counts % 1 != 0).any():
                    bad = frame.loc[counts.isna() | (counts < 0) | (counts % 1 != 0), tdims + [value]].head(3)
                    raise ArgumentError(f"Bundle.from_tables: table {name!r} has counts that are not "
                                     f"non-negative integers:\n{bad.to_string()}")
                ids = cell_ids(frame, tdims, total=total)
                if ids.duplicated().any():
                    raise ArgumentError(f"Bundle.from_tables: table {name!r} repeats cells "
                                     f"{sorted(set(ids[ids.duplicated()]))[:3]}; one row per cell")
                sup = frame["suppressed"].astype(bool).to_numpy() if source == "previous" else None
                for k, (cid, v) in enumerate(zip(ids, counts.astype(int))):
                    rec = records.get(cid)
                    if rec is None:
                        rec = records[cid] = {"cell": cid, "value": int(v), "tables": [],
                                              "locked": False, "previously_suppressed": False}
                    elif rec["value"] != int(v):
                        raise ArgumentError(f"Bundle.from_tables: cell {cid!r} is {rec['value']} in "
                                         f"{rec['tables']} but {int(v)} in table {name!r}; shared cells "
                                         "must agree (same data vintage)")
                    if source == "previous":
                        if sup[k]:
                            rec["previously_suppressed"] = True
                        else:
                            rec["locked"] = True   # published before: known to everybody
                    else:
                        rec["tables"].append(name)
                equations += table_equations(frame, tdims, hierarchy=hierarchy, total=total)
                if source == "current":
                    out_tables[name] = frame.assign(cell=ids.to_numpy())
        cells = pd.DataFrame(list(records.values()))
        # a cell only in a previous release and suppressed there stays suppressed (locked suppressed)
        only_prev = cells["tables"].map(len) == 0
        cells.loc[only_prev & cells["previously_suppressed"], "locked"] = True
        cells.loc[cells["locked"] & ~only_prev, "previously_suppressed"] = False
        spec = {"value": value, "total": total, "dims": dims, "hierarchy": hierarchy,
                "tables": sorted(tables), "previous": sorted(previous or {})}
        return cls(cells=cells, equations=_unique_equations(equations), tables=out_tables, spec=spec)

    def add_unpublished(self, parts, equations=(), *, value="value"):
        """Declare unpublished parts of published totals (returns a new Bundle).

        An unpublished part is a count that no table shows but that published totals contain,
        e.g. the LAs of a region outside the reported partnership (region = partnership + part).
        The attacker knows only that it is a non-negative integer (it may be 0, unlike a suppressed
        cell); it is never published, so hiding it costs nothing; it must be protected like a
        primary cell only when its true count is small (1 .. threshold - 1), otherwise it may be
        derived.

        Parameters
        ----------
        parts : pandas.DataFrame
            ``cell`` (id, not already in the bundle) and `value` (the true count, >= 0).
        equations : iterable of (str, list of str)
            Further equations ``(total_cell, [part_cells])`` that use the parts.
        value : str, default "value"
            Count column of `parts`.

        Returns
        -------
        Bundle

        Examples
        --------
        >>> import pandas as pd
        >>> t = pd.DataFrame({"area": ["A", "B", "all"], "deaths": [3, 9, 12]})
        >>> r = pd.DataFrame({"region": ["R"], "deaths": [13]})
        >>> b = Bundle.from_tables({"partnership": t, "region": r},
        ...                        dims={"partnership": ["area"], "region": ["region"]})
        >>> b = b.add_unpublished(pd.DataFrame({"cell": ["rest"], "value": [1]}), [("region=R", ["total", "rest"])])
        >>> b.cells[["cell", "value", "kind"]].to_dict("records")[-2:]
        [{'cell': 'region=R', 'value': 13, 'kind': 'cell'}, {'cell': 'rest', 'value': 1, 'kind': 'unpublished'}]
        >>> b.equations
        [('total', ['area=A', 'area=B']), ('region=R', ['total', 'rest'])]
        """
        parts = pd.DataFrame(parts)
        missing = [c for c in ("cell", value) if c not in parts.columns]
        if missing:
            raise ArgumentError(f"Bundle.add_unpublished: 'parts' needs columns 'cell' and {value!r}; missing {missing}")
        counts = pd.to_numeric(parts[value], errors="coerce")
        bad = counts.isna() | (counts < 0) | (counts % 1 != 0)
        if bad.any():
            raise ArgumentError("Bundle.add_unpublished: part counts must be non-negative integers; got "
                             f"{parts.loc[bad, ['cell', value]].head(3).to_dict('records')}")
        ids = parts["cell"].astype(str)
        clash = sorted(set(ids) & set(self.cells["cell"])) + sorted(set(ids[ids.duplicated()]))
        if clash:
            raise ArgumentError(f"Bundle.add_unpublished: part ids must be new and unique; repeated: {clash[:5]}")
        new = pd.DataFrame({"cell": ids.to_numpy(), "value": counts.astype(int).to_numpy(),
                            "tables": [[] for _ in range(len(parts))], "locked": False,
                            "previously_suppressed": False, "kind": "unpublished"})
        cells = self.cells.copy()
        cells["kind"] = cells["kind"].fillna("cell") if "kind" in cells.columns else "cell"
        cells = pd.concat([cells, new], ignore_index=True)
        eqs = [(str(t), [str(x) for x in ps]) for t, ps in equations]
        known = set(cells["cell"])
        unknown = sorted({c for t, ps in eqs for c in [t, *ps]} - known)
        if unknown:
            raise ArgumentError(f"Bundle.add_unpublished: equations refer to cells not in the bundle: {unknown[:5]}; "
                             "add them as cells of a table or as parts")
        return Bundle(cells, [*self.equations, *eqs], self.tables, self.rates, {**self.spec})

    def add_rates(self, table, frame, *, population="population", multiplier=100_000, decimals=1,
                  kind="crude"):
        """Declare rates published from a table's counts (returns a new Bundle).

        Parameters
        ----------
        table : str
            Name of the table whose counts are the numerators.
        frame : pandas.DataFrame
            The table's dimension columns and `population` (person-years at risk; > 0).
        population : str, default "population"
        multiplier : float, default 100_000
        decimals : int, default 1
            Decimals the rate is published to (the attacker uses the rounding interval).
        kind : {"crude", "standardised", "percentage"}, default "crude"

        Returns
        -------
        Bundle
        """
        dims = list(self.spec["dims"][table] if isinstance(self.spec["dims"], dict) else self.spec["dims"])
        ids = cell_ids(frame, dims, total=self.spec["total"])
        values = dict(zip(self.cells["cell"], self.cells["value"]))
        unknown = sorted(set(ids) - set(values))
        if unknown:
            raise ArgumentError(f"Bundle.add_rates: cells {unknown[:3]} are not in the bundle's table {table!r}")
        pop = pd.to_numeric(frame[population], errors="coerce").to_numpy(float)
        new = pd.DataFrame({
            "rate_id": [f"rate:{c}:{kind}" for c in ids], "table": table, "count_cell": ids.to_numpy(),
            "population": pop, "multiplier": float(multiplier), "decimals": int(decimals), "kind": kind,
        })
        new["rate"] = np.array([values[c] for c in ids], float) / pop * multiplier
        rates = pd.concat([self.rates, new], ignore_index=True) if len(self.rates) else new
        return Bundle(self.cells, self.equations, self.tables, rates, {**self.spec})

    def merge(self, dim, mapping):
        """The same bundle with levels of `dim` merged in every table (an aggregation alternative).

        Rates are dropped (re-declare them on the merged tables). A bundle with unpublished parts
        is refused: declare the parts again on the merged bundle (:meth:`add_unpublished`).
        """
        if "kind" in self.cells.columns and (self.cells["kind"] == "unpublished").any():
            parts = self.cells.loc[self.cells["kind"] == "unpublished", "cell"].tolist()
            raise ArgumentError(f"Bundle.merge: the bundle has unpublished parts ({parts[:3]}...), which merging the "
                             "tables would drop; merge first, then declare the parts with add_unpublished")
        value, total = self.spec["value"], self.spec["total"]
        tables = {}
        for name, frame in self.tables.items():
            dims = self.spec["dims"][name] if isinstance(self.spec["dims"], dict) else self.spec["dims"]
            frame = frame.drop(columns="cell")
            tables[name] = merge_levels(frame, dim, mapping, value=value, dims=dims) if dim in dims else frame
        hierarchy = self.spec["hierarchy"]
        if hierarchy and dim in hierarchy:
            hierarchy = {**hierarchy, dim: {mapping.get(k, k): v for k, v in dict(hierarchy[dim]).items()
                                            if mapping.get(k, k) != v}}
        return Bundle.from_tables(tables, dims=self.spec["dims"], value=value, hierarchy=hierarchy, total=total)
