"""A footprint design: which footprint each area belongs to, with its tables, map and file form."""
from __future__ import annotations

import io
import json
import pathlib

import numpy as np
import pandas as pd

from cdr import _validate as check
from cdr._base import Summary
from cdr.errors import ArgumentError, CdrError, DataError
from cdr.footprints._checks import violations
from cdr.footprints._problem import default_expected_deaths
from cdr.footprints._table import footprint_table, p_reach  # noqa: F401  (p_reach re-exported for old imports)

__all__ = ["FootprintDesign", "FILE_MAGIC"]

FILE_MAGIC = "cdr footprint design"
_STANDARD_ATTRIBUTES = ("imd_avg_rank", "death_rate")


class FootprintDesign:
    """A partition of areas into child death review footprints.

    Built by :class:`~cdr.footprints.FootprintBuilder`, read from a file
    (:meth:`from_file`, :func:`~cdr.footprints.load_design`) or made by hand from a Series
    ``la_code -> footprint_id``.

    Parameters
    ----------
    labels : pandas.Series or dict
        ``la_code -> footprint_id``. A missing id (NA) marks an area not covered by the design
        (a *partial* design, such as the published CDOP footprints).
    areas : DataFrame, optional
        Areas with ``la_code`` and ``expected_deaths`` (and, for the full table, ``la_name``,
        ``child_population``, ``police_force_area``, ``icb_code``, ``imd_avg_rank``, geometry).
        Default for English LA codes: :func:`cdr.data.england_areas` (needs ``expected_deaths``
        from :func:`cdr.reference.expected_deaths`).
    params, info, meta : dict, optional
        Builder parameters, solver certificate (``n_footprints``, ``upper_bound``, ``path``, ...)
        and provenance (vintage, version, sources). Written to the file header.
    notes : list of str, optional
        Things the user must know (merges, heuristic path, partial coverage).
    neighbors : dict, optional
        Contiguity graph used (``la_code -> [la_code]``); default the England graph.
    locked : list of str, optional
        Areas that were locked when building.
    columns : DataFrame, optional
        Extra per-area columns kept with the labels (e.g. ``footprint_name``, ``status``, ``source_url``).

    Examples
    --------
    >>> d = FootprintDesign({"E06000001": "A", "E06000002": "A", "E06000003": "B"})
    >>> d.n_footprints, d.labels.loc["E06000003"]
    (2, 'B')
    """

    def __init__(self, labels, areas=None, *, params=None, info=None, notes=None, neighbors=None, meta=None,
                 locked=(), columns=None):
        caller = "FootprintDesign"
        if isinstance(labels, dict):
            labels = pd.Series(labels)
        if isinstance(labels, pd.DataFrame):
            labels = check.frame(labels, "labels", caller, columns=["la_code", "footprint_id"])
            labels = labels.set_index("la_code")["footprint_id"]
        if not isinstance(labels, pd.Series):
            raise ArgumentError(f"{caller}: 'labels' must be a Series or dict la_code -> footprint_id, or a DataFrame "
                                f"with 'la_code' and 'footprint_id'; got {check.describe(labels)}.")
        if areas is not None:
            check.frame(areas, "areas", caller, columns=["la_code"])
        for name, value in (("params", params), ("info", info), ("meta", meta)):
            if value is not None:
                check.mapping(value, name, caller)
        if notes is not None:
            check.strings(notes, "notes", caller, example="['built for 2024']", allow_empty=True)
        if neighbors is not None:
            check.mapping(neighbors, "neighbors", caller, example="{'E06000001': ['E06000002']}")
        check.strings(locked, "locked", caller, example="['E09000001']", allow_empty=True)
        if columns is not None:
            check.frame(columns, "columns", caller, columns=["la_code"])
        labels = labels.copy()
        labels.index = pd.Index(labels.index.astype(str), name="la_code")
        labels.name = "footprint_id"
        labels = labels.astype(object).where(labels.notna(), None).sort_index()
        if labels.index.duplicated().any():
            dup = sorted(set(labels.index[labels.index.duplicated()]))
            raise ArgumentError(f"FootprintDesign: areas listed more than once: {dup[:10]}; each area belongs to one footprint")
        self.labels = labels
        self._areas = None if areas is None else areas.sort_values("la_code", ignore_index=True)
        self.params = dict(params or {})
        self.info = dict(info or {})
        self.notes = list(notes or [])
        self.neighbors = neighbors
        self.meta = dict(meta or {})
        self.locked = list(locked)
        self.columns = None if columns is None else columns.sort_values("la_code", ignore_index=True)

    # ------------------------------------------------------------------ basics
    @property
    def n_footprints(self) -> int:
        """Number of footprints (areas without a footprint not counted)."""
        return int(self.labels.dropna().nunique())

    @property
    def upper_bound(self):
        """Proven upper bound on the number of footprints (None for designs not built here)."""
        return self.info.get("upper_bound")

    @property
    def path(self):
        """``"exact"``, ``"heuristic"`` or ``"mixed"``: how the builder solved the problem."""
        return self.info.get("path")

    @property
    def partial(self) -> bool:
        """True if some areas have no footprint."""
        return bool(self.labels.isna().any())

    @property
    def min_deaths(self) -> float:
        return float(self.params.get("min_deaths", self.meta.get("min_deaths", 60)))

    def rule_violations(self) -> list:
        """Every rule the design's user set (its parameters) that it breaks, as text; empty if none.

        Read from ``info["rule_violations"]`` for a design built here, else checked now with
        :func:`~cdr.footprints.check_design` (coverage of a partial design is not a rule).

        Examples
        --------
        >>> line = {"0": ["1"], "1": ["0"]}
        >>> areas = pd.DataFrame({"la_code": ["0", "1"], "expected_deaths": [30.0, 40.0]})
        >>> FootprintDesign({"0": "A", "1": "B"}, areas, neighbors=line).rule_violations()
        ['threshold: A 30.00 expected deaths a year < min_deaths=60', 'threshold: B 40.00 expected deaths a year < min_deaths=60']
        """
        if "rule_violations" in self.info:
            return list(self.info["rule_violations"])
        try:
            broken = violations(self)
        except CdrError as exc:   # a rule that cannot be checked is reported, never read as "no violation"
            return [f"unchecked: {exc}"]
        broken = broken[broken["check"] != "coverage"]
        return [f"{r.check}: {r.footprint_id} {r.detail}" for r in broken.itertuples()]

    def __repr__(self) -> str:
        bits = [f"{self.n_footprints} footprints", f"{len(self.labels)} areas"]
        if self.upper_bound is not None:
            bits.append(f"upper_bound={self.upper_bound}")
        if self.path:
            bits.append(f"path={self.path!r}")
        if self.partial:
            bits.append(f"partial: {int(self.labels.isna().sum())} areas without a footprint")
        if self.params:
            bits.append(f"min_deaths={self.params.get('min_deaths')}")
        return f"FootprintDesign({', '.join(bits)})"

    # ------------------------------------------------------------------ areas
    def areas(self) -> pd.DataFrame:
        """The areas the design refers to, with ``expected_deaths`` and ``footprint_id``."""
        if self._areas is None:
            self._areas = _default_areas(self.labels.index)
        out = self._areas.copy()
        out["footprint_id"] = out["la_code"].map(self.labels)
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per area: ``la_code``, ``footprint_id``, ``expected_deaths`` (and any extra columns)."""
        areas = self.areas()
        out = pd.DataFrame({"la_code": self.labels.index, "footprint_id": self.labels.to_numpy()})
        deaths = areas.set_index("la_code")["expected_deaths"] if "expected_deaths" in areas.columns else None
        out["expected_deaths"] = out["la_code"].map(deaths) if deaths is not None else np.nan
        if self.columns is not None:
            extra = [c for c in self.columns.columns if c not in out.columns]
            out = out.merge(self.columns[["la_code", *extra]], on="la_code", how="left")
        return out

    # ------------------------------------------------------------------ tables
    def table(self, min_deaths=None, min_probability=None) -> pd.DataFrame:
        """One row per footprint.

        Parameters
        ----------
        min_deaths : float, optional
            Threshold (deaths a year); default the design's ``min_deaths`` (60).
        min_probability : float, optional
            Level for ``meets_chance``; default the builder's, else 0.9.

        Returns
        -------
        pandas.DataFrame
            ``footprint_id``, ``n_areas``, ``la_codes`` and ``la_names`` (";"-joined),
            ``child_population``, ``expected_deaths`` (a year), ``p_reach_threshold``
            (P(a year's count >= min_deaths): Poisson(expected_deaths), or, when the areas have a
            ``predictive_var`` column, the negative binomial with the footprint's posterior predictive
            variance), ``meets_threshold`` (expected deaths >= min_deaths), ``meets_chance`` (the
            builder's chance rule at min_probability: p_reach_threshold >= min_probability for
            Poisson; with ``predictive_var`` the builder's sufficient rule, which implies it), ``contiguous``,
            ``compactness`` (Polsby-Popper 4*pi*area/perimeter^2 of the dissolved footprint, 1 = a
            disc; NaN without geometry), ``pfa_majority_share`` and ``icb_majority_share`` (share of
            child population in the footprint's largest police force area / ICB),
            ``heterogeneity`` (within-footprint sum of squares of the standardised attributes),
            ``locked``, ``note`` (merges and other remarks).

        Examples
        --------
        >>> import libpysal
        >>> from cdr.footprints import FootprintBuilder
        >>> w = libpysal.weights.lat2W(2, 2, id_type="string")
        >>> areas = pd.DataFrame({"la_code": [str(i) for i in w.id_order], "expected_deaths": 31.0})
        >>> FootprintBuilder(contiguity=w).fit(areas).table()[["footprint_id", "n_areas", "expected_deaths"]]
          footprint_id  n_areas  expected_deaths
        0         F001        2             62.0
        1         F002        2             62.0
        """
        return footprint_table(self, min_deaths=min_deaths, min_probability=min_probability)

    def summary(self) -> Summary:
        """Text for people: the certificate, the path taken and the smallest footprints."""
        t = self.table()
        lines = [f"{self.n_footprints} footprints over {len(self.labels)} areas"
                 + (f" ({int(self.labels.isna().sum())} areas without a footprint: partial design)" if self.partial else "")]
        if self.upper_bound is not None:
            broken = self.rule_violations()
            proven = self.info.get("proven_optimal") and not broken
            optimal_for = self.info.get("optimal_for")
            if proven:
                claim = "PROVEN OPTIMAL: no design has more footprints"
            elif optimal_for and optimal_for != "the problem as posed":
                claim = f"count optimal for {optimal_for}"
            else:
                claim = f"gap to bound {self.upper_bound - self.n_footprints}"
            lines.append(f"upper bound {self.upper_bound} ({self.info.get('bound_method')}); {claim}")
            if broken:
                lines.append(f"BREAKS {len(broken)} RULE(S) YOU SET (check_design): " + "; ".join(broken[:6])
                             + (f"; and {len(broken) - 6} more" if len(broken) > 6 else ""))
            for event in self.info.get("clock_events") or []:
                lines.append(f"clock: {event}")
            lines.append(f"path: {self.path}; threshold {self.info.get('threshold', float('nan')):.2f} expected deaths a year")
            obj = self.info.get("objective", {})
            lines.append(
                "secondary objective: least within-footprint sum of squares of standardised "
                f"{', '.join(obj.get('attributes', ())) or 'nothing'} plus compactness weight {obj.get('compactness', 0)}"
            )
            subs = self.info.get("subproblems")
            if isinstance(subs, pd.DataFrame) and "anneal_iterations" in subs.columns and len(subs):
                lines.append(
                    f"improved by descent then simulated annealing ({int(subs['anneal_iterations'].sum()):,} proposals, "
                    f"seed {self.params.get('seed')}): objective {subs['objective_descent'].sum():.2f} -> "
                    f"{subs['objective'].sum():.2f}"
                )
        lines.append(f"expected deaths per footprint: min {t['expected_deaths'].min():.1f}, "
                     f"median {t['expected_deaths'].median():.1f}, max {t['expected_deaths'].max():.1f}; "
                     f"{int((~t['meets_threshold']).sum())} below {self.min_deaths:g}")
        lines += [f"note: {n}" for n in self.notes]
        cols = ["footprint_id", "n_areas", "expected_deaths", "p_reach_threshold", "la_names"]
        return Summary(title=repr(self), lines=lines,
                       tables={"smallest footprints": t.sort_values("expected_deaths")[cols].head(10).reset_index(drop=True)})

    # ------------------------------------------------------------------ geometry and map
    def geometry(self):
        """Dissolved footprints: GeoDataFrame with ``footprint_id``, ``n_areas``, ``expected_deaths``, geometry."""
        import geopandas as gpd

        areas = self.areas()
        if "geometry" not in areas.columns:
            raise ArgumentError("FootprintDesign.geometry: the areas have no geometry (pass a GeoDataFrame as areas)")
        geo = gpd.GeoDataFrame(areas, geometry="geometry", crs=getattr(areas, "crs", None))
        geo = geo[geo["footprint_id"].notna()]
        agg = geo.dissolve(by="footprint_id", aggfunc={"la_code": "count", "expected_deaths": "sum"})
        agg = agg.rename(columns={"la_code": "n_areas"}).reset_index()
        return agg[["footprint_id", "n_areas", "expected_deaths", "geometry"]]

    def _map_names(self) -> dict:
        """``footprint_id -> name`` for map labels: the design's ``footprint_name`` (e.g. the published CDOP
        names), else, for a footprint of one area, the area's ``la_name``; footprints with neither keep their id."""
        ids = self.labels.dropna()
        names = {fid: str(fid) for fid in ids.unique()}
        single = ids[~ids.duplicated(keep=False)]
        areas = self.areas()
        if "la_name" in areas.columns:
            la_name = areas.set_index("la_code")["la_name"]
            for code, fid in single.items():
                if code in la_name.index and pd.notna(la_name.loc[code]) and str(la_name.loc[code]).strip():
                    names[fid] = str(la_name.loc[code]).strip()
        if self.columns is not None and "footprint_name" in self.columns.columns:
            given = self.columns.assign(footprint_id=self.columns["la_code"].map(self.labels))
            given = given[given["footprint_id"].notna() & given["footprint_name"].notna()]
            for fid, name in zip(given["footprint_id"], given["footprint_name"].astype(str).str.strip()):
                if name:
                    names[fid] = name
        return names

    def plot(self, ax=None, *, title=None, label=True):
        """Map: areas shaded by whether their footprint meets the threshold, footprint boundaries, names.

        Footprints are labelled by name: the design's ``footprint_name`` column where it has one (the
        catalog's published CDOP designs do), else, for a footprint of a single area, that area's
        ``la_name``; a footprint with neither keeps its ``footprint_id``. When the areas include London's
        boroughs (``E09*``) and reach well beyond London, a zoomed panel titled "London (inset)" is added
        to the right of the map, with the London footprints' labels.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
        title : str, optional
            Default: the number of footprints (and the design's name).
        label : bool or {"name", "id"}, default True
            Label footprints by name (True or ``"name"``), by ``footprint_id`` (``"id"``) or not at all (False).

        Returns
        -------
        matplotlib.axes.Axes
            The map's Axes (the London inset, when drawn, is one of its child Axes).
        """
        import geopandas as gpd
        import matplotlib.pyplot as plt
        from matplotlib import patheffects
        from matplotlib.patches import Patch

        from cdr.data._maps import add_london_inset, london_box, wants_london_inset, wrap_label

        caller = "FootprintDesign.plot"
        if ax is not None:
            check.axes(ax, "ax", caller)
        if title is not None:
            check.text(title, "title", caller, example="'Footprints 2024'")
        if not (isinstance(label, (bool, np.bool_)) or (isinstance(label, str) and label in ("name", "id"))):
            raise ArgumentError(f"{caller}: 'label' must be True, False, 'name' or 'id'; got {label!r}.")
        areas = self.areas()
        if "geometry" not in areas.columns:
            raise DataError(f"{caller}: the areas have no geometry (pass a GeoDataFrame as areas)")
        if ax is None:
            _, ax = plt.subplots(figsize=(10, 9))
        t = self.table().set_index("footprint_id")
        geo = gpd.GeoDataFrame(areas, geometry="geometry", crs=getattr(areas, "crs", None))
        status = geo["footprint_id"].map(
            lambda f: "none" if f is None or pd.isna(f) else ("meets" if t.loc[f, "meets_threshold"] else "below"))
        colours = {"meets": "#8fbcd4", "below": "#e8a07a", "none": "#d9d9d9"}
        fp = self.geometry()
        pts = fp.geometry.representative_point()

        names = self._map_names() if label in (True, "name") else {}
        texts = [wrap_label(names.get(fid, fid)) for fid in fp["footprint_id"]]
        inset = wants_london_inset(geo)
        box = london_box()
        in_london = (pts.x > box[0]) & (pts.x < box[2]) & (pts.y > box[1]) & (pts.y < box[3])

        def draw(a, which, fontsize):
            geo.plot(ax=a, color=status.map(colours), edgecolor="white", linewidth=0.3)
            fp.boundary.plot(ax=a, color="#222222", linewidth=0.9)
            if label:
                for text, p in zip(np.asarray(texts, dtype=object)[np.asarray(which)], pts[which]):
                    a.annotate(text, (p.x, p.y), ha="center", va="center", fontsize=fontsize, clip_on=True,
                               linespacing=0.9, path_effects=[patheffects.withStroke(linewidth=1.2, foreground="white")])

        # London's footprints are labelled in the inset only (on the England map their labels overprint)
        draw(ax, ~in_london if inset else in_london | ~in_london, 4.5)
        ax.set_aspect("equal")
        if inset:
            add_london_inset(ax, lambda a: draw(a, in_london, 5))
        md = self.min_deaths
        handles = [Patch(color=colours["meets"], label=f">= {md:g} expected deaths a year"),
                   Patch(color=colours["below"], label=f"< {md:g} expected deaths a year")]
        if self.partial:
            handles.append(Patch(color=colours["none"], label="no footprint (not covered)"))
        handles.append(Patch(facecolor="none", edgecolor="#222222", label="footprint boundary"))
        ax.legend(handles=handles, loc="upper left", fontsize=7, frameon=False)
        ax.set_axis_off()
        if title is None:
            title = f"{self.n_footprints} child death review footprints"
            if self.upper_bound is not None:
                title += f" (upper bound {self.upper_bound})"
            name = self.meta.get("name")
            if name:
                title = f"{name}: {title}"
        ax.set_title(title, fontsize=10, wrap=True)
        return ax

    # ------------------------------------------------------------------ files
    def to_file(self, path) -> pathlib.Path:
        """Write a CSV (``la_code``, ``footprint_id``, ``expected_deaths``, extra columns) with a
        ``#``-comment metadata header (parameters, certificate, vintage, seed, version, sources).

        Examples
        --------
        >>> import tempfile, os
        >>> d = FootprintDesign({"E06000001": "A"}, pd.DataFrame({"la_code": ["E06000001"], "expected_deaths": [1.5]}))
        >>> p = d.to_file(os.path.join(tempfile.mkdtemp(), "d.csv"))
        >>> FootprintDesign.from_file(p).labels.to_dict()
        {'E06000001': 'A'}
        """
        path = check.path(path, "path", "FootprintDesign.to_file")
        if path.is_dir():
            raise ArgumentError(f"FootprintDesign.to_file: 'path' {str(path)!r} is a folder; give a file name in it, "
                                f"e.g. {str(path / 'footprints.csv')!r}.")
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {**self.meta}
        if self.params:
            header["parameters"] = self.params
        cert = {k: v for k, v in self.info.items() if k in
                ("n_footprints", "upper_bound", "proven_optimal", "bound_method", "lp_bound", "relaxation_bound", "path",
                 "threshold", "objective", "deaths_source", "n_locked_footprints", "merged")}
        # what was proven, written when it is not the plain case (a clean design's file is unchanged)
        if self.info.get("optimal_for") not in (None, "the problem as posed"):
            cert["optimal_for"] = self.info["optimal_for"]
        for key in ("rule_violations", "clock_events"):
            if self.info.get(key):
                cert[key] = self.info[key]
        if (self.info.get("contiguity") or {}).get("keys") not in (None, "la_code"):
            cert["contiguity"] = self.info["contiguity"]
        if cert:
            header["certificate"] = cert
        header.setdefault("n_footprints", self.n_footprints)
        if self.notes:
            header["notes"] = self.notes
        lines = [f"# {FILE_MAGIC}"]
        for key, value in header.items():
            lines.append(f"# {key}: {json.dumps(_jsonable(value), sort_keys=True)}")
        frame = self.to_frame()
        with path.open("w", encoding="utf-8", newline="") as fh:
            fh.write("\n".join(lines) + "\n")
            frame.to_csv(fh, index=False, lineterminator="\n", float_format="%.6f")
        return path

    @classmethod
    def from_file(cls, path, areas=None) -> "FootprintDesign":
        """Read a design written by :meth:`to_file` (or any CSV with ``la_code`` and ``footprint_id``).

        ``expected_deaths`` in the file is used when ``areas`` has none; other columns are kept
        (``design.columns``). Lines starting with ``#`` before the table are metadata.

        English LA codes of an earlier vintage (e.g. the 2021 codes E10000023 North Yorkshire and
        E10000006 Cumbria) are translated to 2023 codes with :func:`cdr.data.translate_codes`
        (``split="expand"``: an area that was split, such as Cumbria, puts both successors,
        Cumberland and Westmorland and Furness, in its footprint). Each translation is listed in
        ``design.notes``, and translated areas take their expected deaths from
        :func:`cdr.reference.expected_deaths` (the file's value was for the old area). Codes that
        are in no vintage raise :class:`~cdr.errors.DataError` naming them. Codes that are not
        English LA codes (your own area ids) are kept as they are, as are codes found in ``areas``.

        Examples
        --------
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "old.csv")
        >>> _ = open(p, "w").write("la_code,footprint_id\\nE10000006,cumbria\\nE10000023,north_yorkshire\\n")
        >>> d = FootprintDesign.from_file(p)
        >>> d.labels.to_dict()
        {'E06000063': 'cumbria', 'E06000064': 'cumbria', 'E06000065': 'north_yorkshire'}
        >>> print(d.notes[0])
        E10000006 translated to E06000063, E06000064 (2023 LA codes, cdr.data.translate_codes split='expand'): same footprint 'cumbria'
        """
        path = check.path(path, "path", "FootprintDesign.from_file", exists="file")
        text = path.read_text(encoding="utf-8")
        meta, body = {}, []
        lines = text.splitlines()
        i = 0
        while i < len(lines) and lines[i].startswith("#"):
            line = lines[i][1:].strip()
            if ":" in line and line != FILE_MAGIC:
                key, value = line.split(":", 1)
                try:
                    meta[key.strip()] = json.loads(value)
                except json.JSONDecodeError:
                    meta[key.strip()] = value.strip()
            i += 1
        body = "\n".join(lines[i:])
        frame = pd.read_csv(io.StringIO(body), dtype={"la_code": str, "footprint_id": str}, keep_default_na=False,
                            na_values={"footprint_id": [""], "expected_deaths": [""]})
        missing = {"la_code", "footprint_id"} - set(frame.columns)
        if missing:
            raise DataError(f"FootprintDesign.from_file: {path.name} lacks columns {sorted(missing)}; a design file "
                            "has one row per area with 'la_code' and 'footprint_id'")
        frame, translation_notes = _translate_codes(frame, areas, path)
        labels = frame.set_index("la_code")["footprint_id"]
        if areas is None:
            areas = _default_areas(frame["la_code"], deaths=frame.set_index("la_code").get("expected_deaths"))
        elif "expected_deaths" not in areas.columns and "expected_deaths" in frame.columns:
            areas = areas.assign(expected_deaths=areas["la_code"].astype(str).map(frame.set_index("la_code")["expected_deaths"]))
        params = meta.pop("parameters", {})
        info = meta.pop("certificate", {})
        notes = list(meta.pop("notes", [])) + translation_notes
        if translation_notes:
            meta["translated_from_vintage"] = meta.get("vintage")
            meta["vintage"] = 2023
        meta.setdefault("name", path.stem)
        meta["file"] = str(path)
        extra = [c for c in frame.columns if c not in ("footprint_id", "expected_deaths")]
        columns = frame[extra] if len(extra) > 1 else None
        return cls(labels, areas, params=params, info=info, notes=notes, meta=meta, columns=columns)


_LA_CODE = r"E(0[6-9]|10)\d{6}"


def _translate_codes(frame, areas, path):
    """Translate English LA codes of earlier vintages in a design file to 2023 codes.

    Returns the (possibly new) frame and the notes to add to the design. Raises when codes that
    look like English LA codes are in no vintage, or when translation puts an area in two rows.
    """
    codes = frame["la_code"].astype(str)
    if areas is not None and set(codes) <= set(areas["la_code"].astype(str)):
        return frame, []
    from cdr.data import la_codes, translate_codes

    current = set(la_codes(2023))
    if set(codes) <= current or not codes.str.fullmatch(_LA_CODE).any():
        return frame, []  # current codes, or the user's own area ids
    translated, untranslated = translate_codes(frame, "la_code", to_vintage=2023, split="expand")
    if len(untranslated):
        shown = "; ".join(f"row {i + 1} la_code={r.la_code!r} footprint_id={r.footprint_id!r}: {r.reason}"
                          for i, r in zip(untranslated.index[:10], untranslated.itertuples(index=False)))
        more = f" (and {len(untranslated) - 10} more)" if len(untranslated) > 10 else ""
        raise DataError(
            f"FootprintDesign.from_file: {path.name} has {len(untranslated)} LA code(s) that are in no vintage "
            f"cdr knows (2019-2023 upper-tier LAs): {shown}{more}. Correct the codes (see cdr.data.la_codes()), "
            "or pass areas= a table that contains them"
        )
    notes = []
    if "la_code_original" in translated.columns:
        changed = translated["la_code_original"].notna()
        for orig, grp in translated[changed].groupby("la_code_original", sort=True):
            fids = sorted(set(grp["footprint_id"].astype(str)))
            notes.append(f"{orig} translated to {', '.join(sorted(grp['la_code']))} (2023 LA codes, "
                         f"cdr.data.translate_codes split='expand'): same footprint {', '.join(repr(f) for f in fids)}")
        if "expected_deaths" in translated.columns and changed.any():
            # the file's value was for the old area: translated areas take cdr.reference's value
            translated.loc[changed, "expected_deaths"] = np.nan
            notes.append("expected deaths of translated areas from cdr.reference.expected_deaths(), not from the file")
        translated = translated.drop(columns="la_code_original")
    dup = translated["la_code"][translated["la_code"].duplicated()]
    if len(dup):
        raise DataError(
            f"FootprintDesign.from_file: after translating to 2023 LA codes, {sorted(set(dup))[:10]} appear more than "
            f"once in {path.name} (the file lists an area under both its old and its new code); keep one row per area"
        )
    return translated.reset_index(drop=True), notes


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return repr(value)


def _default_areas(codes, deaths=None):
    """England areas for the codes (all LAs of the vintage), with expected deaths from the file or cdr.reference."""
    from cdr.data import england_areas, la_codes

    codes = set(map(str, codes))
    for vintage in (2023, 2021):
        if codes <= set(la_codes(vintage)):
            areas = england_areas(vintage)
            break
    else:
        frame = pd.DataFrame({"la_code": sorted(codes)})
        if deaths is not None:
            frame["expected_deaths"] = frame["la_code"].map(deaths).astype(float)
        return frame
    if deaths is not None and pd.Series(deaths).notna().any():
        areas["expected_deaths"] = areas["la_code"].map(pd.Series(deaths)).astype(float)
        if areas["expected_deaths"].isna().any():
            fill = areas["la_code"].map(default_expected_deaths(None))
            areas["expected_deaths"] = areas["expected_deaths"].fillna(fill)
    else:
        areas["expected_deaths"] = areas["la_code"].map(default_expected_deaths(None)).astype(float)
    return areas
