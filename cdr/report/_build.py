"""``build_report``: records -> protected tables, figures, page and manifest, as a pipeline of named stages.

:func:`build_report` chains seven functions, each callable (and tested) on its own; each returns a
small result object that the next stages take:

1. :func:`read_inputs` -> :class:`ReportInputs`: records validated, spec, design, earlier releases;
2. :func:`select_units` -> :class:`Selection`: the unit, its comparators and peers, the periods;
3. :func:`declare_report_tables` -> :class:`Tables`: the count cells and every table declared over them;
4. :func:`protect_tables` -> :class:`Protected`: suppression, audit, the published tables, trend and funnel;
5. :func:`draw_figures` -> :class:`Figures`: the figures from the published tables;
6. :func:`assemble_report` -> :class:`Report`: methods, manifest, release ledger, page;
7. :func:`write_report`: the bundle on disk (and the organisation's ledger folder).

Warnings raised by stages 1-5 are never hidden: :func:`build_report` emits each again once and states
it in the report's methods and ``manifest["warnings"]`` (those about individual records go to the
private folder only).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import pathlib
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cdr.errors import ArgumentError, ArgumentTypeError, CdrError
from cdr.report import _content, _figures
from cdr.report._bundle import MARK_NA, MARK_SUPPRESSED
from cdr.report._coverage import resolve_coverage
from cdr.report._html import count_text
from cdr.report._inputs import design_labels, file_sha256, load_records, load_spec
from cdr.report._periods import Period, parse_period, period_keys, period_label
from cdr.report._private import exclusion_counts, private_folder, public_path, public_record_counts
from cdr.report._safeio import check_folder, source_date
from cdr.report._protect import Protection, check_passed, protect
from cdr.report._stats import funnel_limits, rate_ci, wilson_ci
from cdr.report._tables import NATION, Geography, declare_tables, prepare_records, published_comparators

__all__ = ["build_report", "Report", "LEVELS", "read_inputs", "select_units", "declare_report_tables", "protect_tables",
           "draw_figures", "assemble_report", "write_report", "STAGES", "ReportInputs", "Selection", "Tables",
           "Protected", "Figures"]

LEVELS = ("footprint", "region", "nation")
DEFAULT_THRESHOLD = 5
FACTOR_ERROR_PUBLIC = ("the model could not be fitted on these records; the full message, which can name records, "
                       "is in the private folder")
ALWAYS = {"headline", "deaths_by_area", "deaths_by_local_authority", "category_by_age_band"}   # tables that carry the bundle's margins


@dataclass(repr=False)
class Report:
    """An annual statistics bundle, already protected and audited (made by :func:`build_report`).

    ``cells``, ``equations`` and ``audit`` let anyone re-audit the bundle.

    Attributes
    ----------
    title, level, unit : str
        Report title, level (``"footprint"``, ``"region"`` or ``"nation"``) and the unit's code.
    period : Period
        The reporting period.
    tables : dict of str -> pandas.DataFrame
        Published tables: NaN where a value is not shown (``marks`` says why).
    marks : dict of str -> pandas.DataFrame
        Per table and column: ``"[c]"`` suppressed, ``"[x]"`` not applicable, else ``""``.
    table_info : dict
        Per table: ``count_columns``, ``decimals`` and ``cells`` (each count column's cell ids).
    figures : dict of str -> bytes
        PNG images.
    manifest : dict
        Everything needed to reproduce and check the bundle (input hashes, spec, versions, record
        accounting, suppressed cells, ``["disclosure"]["certificate"]``).
    sections, methods : list
        Content of the page; ``context`` the values used to render it.
    context : dict
    synthetic : bool
        True when built from synthetic records.
    threshold : int
        Counts 1 .. threshold - 1 are suppressed.
    audit : pandas.DataFrame
        The attacker's intervals for the suppressed cells (:func:`cdr.disclosure.audit`).
    cells : pandas.DataFrame
        Every count cell: ``cell``, ``value``, ``published``, ``primary``, ``secondary``,
        ``unpublished`` (True for the pieces of published totals that no table shows, see
        ``docs/howto/report-outputs.md``).
    equations : list of (str, list of str)
        The ``(total, [parts])`` relations among the cells.
    html : str
        The page.
    ledger : dict
        The release ledger written to ``ledger.json`` (:class:`cdr.disclosure.Ledger` JSON form):
        this release's cells and those of every release it was built on.
    files : dict of str -> path
        Files written by :meth:`write` (empty until then).
    private : dict
        What must not be published (``exclusions``: the excluded records; ``notes``: full messages),
        written by :meth:`write` to the private folder, never into the bundle.

    Examples
    --------
    A hand-made one-table report (``build_report`` makes real ones) shows how ``published``
    puts the markers in place of hidden values:

    >>> import pandas as pd
    >>> r = Report(title="demo", level="nation", unit="E92000001", period=Period(2022, False),
    ...            tables={"headline": pd.DataFrame({"deaths": [float("nan"), 12.0]})},
    ...            marks={"headline": pd.DataFrame({"deaths": ["[c]", ""]})},
    ...            table_info={"headline": {"count_columns": ["deaths"]}}, figures={}, manifest={},
    ...            sections=[], methods=[], context={}, synthetic=False, threshold=5,
    ...            audit=pd.DataFrame(), cells=pd.DataFrame())
    >>> r.published("headline")["deaths"].tolist()
    ['[c]', 12.0]
    """

    title: str
    level: str
    unit: str
    period: Period
    tables: dict
    marks: dict
    table_info: dict
    figures: dict
    manifest: dict
    sections: list
    methods: list
    context: dict
    synthetic: bool
    threshold: int
    audit: pd.DataFrame
    cells: pd.DataFrame
    equations: list = field(default_factory=list)
    html: str = ""
    files: dict = field(default_factory=dict)
    private: dict = field(default_factory=dict)
    ledger: dict | None = None

    def __repr__(self) -> str:
        return (f"Report({self.title!r}, level={self.level!r}, period={self.period.label!r}, tables={len(self.tables)}, "
                f"figures={len(self.figures)}, audit={self.manifest['disclosure']['certificate_result']!r}"
                + (", SYNTHETIC" if self.synthetic else "") + ")")

    def to_frame(self) -> pd.DataFrame:
        """The headline table (published values)."""
        return self.tables["headline"].copy()

    def summary(self):
        from cdr._base import Summary

        rec = self.manifest["records"]
        lines = [f"{self.context['period_long']}; level {self.level}",
                 f"records: {count_text(rec['input'])} read, {count_text(rec['excluded_invalid'])} invalid, {count_text(rec['in_period'])} in the period",
                 f"disclosure audit: {self.manifest['disclosure']['certificate_result']} "
                 f"({self.manifest['disclosure']['n_suppressed_primary']} primary, "
                 f"{self.manifest['disclosure']['n_suppressed_secondary']} secondary suppressions)"]
        if self.synthetic:
            lines.insert(0, "SYNTHETIC DATA")
        return Summary(self.title, lines, {"headline": self.published("headline")})

    def published(self, name) -> pd.DataFrame:
        """A table as published in the CSV files: markers in place of values not shown."""
        table, marks = self.tables[name], self.marks[name]
        out = table.astype(object).copy()
        for col in table.columns:
            m = marks[col].to_numpy() if col in marks else np.array([""] * len(table))
            hidden = np.isin(m, (MARK_SUPPRESSED, MARK_NA))
            out.loc[hidden, col] = m[hidden]
            if col not in self.table_info[name]["count_columns"] and table[col].dtype.kind == "f":
                show = ~hidden & table[col].notna().to_numpy()
                if "population" in col:
                    out.loc[show, col] = table.loc[show, col].round().astype("int64")
                else:
                    out.loc[show, col] = table.loc[show, col].round(self.table_info[name].get("decimals", {}).get(col, 1))
        return out

    def write(self, out, *, private=None, force: bool = False) -> dict:
        """Write the bundle to directory ``out``; returns name -> path of every file written.

        ``out`` must be new, empty or an earlier cdr bundle; ``force`` accepts a folder holding other
        files (left alone). Record-level details go to ``private`` (default ``<out>.private``).
        """
        from cdr.report._write import write_bundle

        self.files = write_bundle(self, pathlib.Path(out), private=private, force=force)
        return self.files


def _period_long(period: Period) -> str:
    return f"{period.label}: {period.convention}, {period.start:%d %B %Y} to {period.end:%d %B %Y}"


def _resolve_design(design, level):
    if design is None and level == "region":
        return None, {}, None
    if design is None and level == "nation":
        return None, {}, None
    return design_labels(design)


def _expect(caller, **objects):
    """Refuse a stage argument of the wrong kind (each stage takes the results of the stages before it)."""
    kinds = {"inputs": ReportInputs, "selection": Selection, "tables": Tables, "protected": Protected,
             "drawn": Figures}
    for name, obj in objects.items():
        if not isinstance(obj, kinds[name]):
            raise ArgumentTypeError(f"{caller}: {name} must be the {kinds[name].__name__} of the stage before (see "
                                    f"cdr.report._build.STAGES); got {type(obj).__name__}")


def _check_level(level, caller):
    if level not in LEVELS:
        raise ArgumentError(f"{caller}: level must be one of {LEVELS}; got {level!r}")


def _needs_unit(level, footprint, region):
    """Refuse a footprint level without ``footprint`` or a region level without ``region``."""
    if level == "footprint" and footprint is None:
        raise ArgumentError("level='footprint' needs footprint= (a footprint id of the design, or 'auto')")
    if level == "region" and region is None:
        raise ArgumentError(f"level='region' needs region= (a region code, one of {sorted(_region_names())})")


def _region_names() -> dict:
    """Region code -> name of England's regions (2023)."""
    from cdr.data import england_areas

    areas = england_areas(2023)
    return dict(zip(areas["region_code"], areas["region_name"]))


def _check_unit(level, footprint, region, footprint_ids, regions):
    """Refuse an unknown footprint id (``footprint_ids``: the design's) or region code (``regions``: code -> name)."""
    _needs_unit(level, footprint, region)
    if level == "footprint" and str(footprint) not in footprint_ids and (str(footprint) != "auto" or not footprint_ids):
        import difflib

        fid = str(footprint)
        close = difflib.get_close_matches(fid, footprint_ids, n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise ArgumentError(f"unknown footprint {footprint!r}: {hint}the design has {len(footprint_ids)} footprints, "
                            f"e.g. {(close or footprint_ids)[:8]}. Use one of its footprint_id values, or 'auto' for "
                            "the first.")
    if level == "region" and str(region) not in regions:
        raise ArgumentError(f"unknown region {region!r}: use one of {sorted(regions)} "
                            f"({', '.join(regions[r] for r in sorted(regions))})")


# ------------------------------------------------------------------------------------------------
# the stages of build_report: read -> select period and units -> tables -> protect -> figures -> write


@dataclass(repr=False)
class ReportInputs:
    """Stage 1 (:func:`read_inputs`): the validated records, the analysis settings and the inputs' provenance.

    Attributes
    ----------
    records : pandas.DataFrame
        Valid records (``cdr.schema`` columns); ``records.attrs["field_issues"]`` counts the values set to
        not recorded, by field.
    exclusions, field_issue_rows : pandas.DataFrame
        Records that failed validation and field values set to not recorded (record-level: private).
    n_input : int
        Records read (valid + excluded).
    spec, spec_path, spec_hash
        The resolved analysis specification, where it came from and its hash.
    threshold : int
        Counts 1 .. threshold - 1 are suppressed.
    period : Period
        The reporting period (``year`` under the resolved year convention).
    low_reliability : int
        Rates from fewer deaths are flagged ``[u]``.
    produce : list of str or None
        The spec's ``[tables] produce``.
    coverage : "auto", "all" or list
        The coverage rule to apply (argument, else the spec's ``[coverage] las``).
    labels, fp_names, design_source
        The design's ``la_code -> footprint_id`` (None without a design), footprint names and source.
    earlier : cdr.disclosure.Ledger
        The release ledger of the earlier releases (``previous`` and ``ledger``).
    previous : list of path
        The earlier bundles given.
    inputs : list of dict
        The manifest's ``inputs`` (role, file name and sha256, or a description).
    """

    records: pd.DataFrame
    exclusions: pd.DataFrame
    n_input: int
    field_issue_rows: pd.DataFrame
    spec: dict
    spec_path: str | None
    spec_hash: str | None
    threshold: int
    period: Period
    low_reliability: int
    produce: list | None
    coverage: object
    labels: pd.Series | None
    fp_names: dict
    design_source: str | None
    earlier: object
    previous: list
    inputs: list

    @property
    def field_issues(self) -> dict:
        """Field -> records whose value was set to not recorded (lenient mode)."""
        return dict(self.records.attrs.get("field_issues", {}))

    def __repr__(self) -> str:
        return (f"ReportInputs({self.n_input:,} records read, {len(self.records):,} valid, period={self.period.label!r}, "
                f"threshold={self.threshold}, design={'none' if self.labels is None else self.design_source!r})")


def read_inputs(records, *, year, level: str = "footprint", design=None, spec=None, calendar: bool | None = None,
                mode: str = "strict", threshold=None, coverage=None, previous=None, ledger=None, columns=None,
                values=None, sheet=None, footprint=None, region=None, out=None, force: bool = False) -> ReportInputs:
    """Stage 1 of :func:`build_report`: read and validate the records, the spec, the design and earlier releases.

    Parameters are those of :func:`build_report` (``columns``, ``values`` and ``sheet`` are passed to
    :func:`cdr.read_records`). Nothing is computed from the records beyond validation. Every argument
    is checked before the records are read, so a mistake fails at once: the design, and when given,
    ``footprint`` (an id of the design, or ``"auto"``), ``region`` (a region code) and ``out`` (not a
    file or symlink, no symlink inside, and without ``force`` new, empty or an earlier cdr bundle).

    Returns
    -------
    ReportInputs
        Valid records, exclusions, settings resolved from the spec, the period, the design's labels,
        the earlier releases' ledger and the manifest's ``inputs`` (every file by name and sha256).

    Raises
    ------
    cdr.errors.CdrError
        A bad level, threshold, year, spec, design, footprint, region, output folder or earlier release;
        no valid record.
    cdr.errors.RecordValidationError
        Records fail validation (strict mode).
    """
    _check_level(level, "build_report")
    spec_dict, spec_path, spec_hash = load_spec(spec)
    sup_spec = spec_dict.get("suppression") or spec_dict.get("disclosure") or {}
    if threshold is None:
        threshold = int(sup_spec.get("threshold", DEFAULT_THRESHOLD))
    if calendar is None:
        calendar = (spec_dict.get("years") or {}).get("type", "reporting") == "calendar"
    rate_spec = spec_dict.get("rates") or {}
    low_reliability = int(rate_spec.get("low_reliability_below", 20))
    produce = (spec_dict.get("tables") or {}).get("produce")
    if isinstance(threshold, bool) or not (isinstance(threshold, (int, np.integer)) and threshold >= 2):
        raise ArgumentError(f"build_report: threshold must be an integer >= 2 (counts 1..threshold-1 are suppressed); "
                            f"got {threshold!r}")
    period = parse_period(year, calendar=calendar)
    inputs = [_records_input(records)]
    for role, path in (("columns", columns), ("values", values)):
        if isinstance(path, (str, os.PathLike)) and pathlib.Path(path).is_file():
            inputs.append({"role": role, "path": public_path(path), "sha256": file_sha256(path)})
    if spec_path and pathlib.Path(spec_path).is_file():
        inputs.append({"role": "spec", "path": public_path(spec_path), "sha256": file_sha256(spec_path)})
    labels, fp_names, design_source = _resolve_design(design, level)   # arguments first, then the records
    if footprint is not None or region is not None:
        from cdr.data import england_areas

        ids = (sorted({f for f in england_areas(2023)["la_code"].map(labels) if isinstance(f, str)})
               if labels is not None else [])
        _check_unit(level, footprint, region, ids, _region_names())
    if out is not None:
        check_folder(out, force=force)
    prev_paths = ([] if previous is None else [previous] if isinstance(previous, (str, os.PathLike)) else list(previous))
    earlier, prev_inputs = _load_previous(prev_paths, ledger)
    inputs += prev_inputs
    recs, exclusions, n_input, field_issue_rows = load_records(records, mode=mode, columns=columns, values=values,
                                                               sheet=sheet)
    if len(recs) == 0:
        raise CdrError("no valid records to report on"
                       + (f": all {n_input:,} records failed validation (see the exclusions)" if n_input else ""))
    if coverage is None:
        coverage = (spec_dict.get("coverage") or {}).get("las", "auto")
    if isinstance(design, (str, os.PathLike)) and design_source == str(design):
        design_source = public_path(design)
    if level == "footprint" and labels is None:  # pragma: no cover - design_labels raises first
        raise ArgumentError("level='footprint' needs a design")
    if isinstance(design, (str, os.PathLike)) and pathlib.Path(design).exists():
        inputs.append({"role": "design", "path": public_path(design), "sha256": file_sha256(design)})
    elif labels is not None:
        inputs.append({"role": "design", "description": design_source})
    return ReportInputs(recs, exclusions, n_input, field_issue_rows, spec_dict, spec_path, spec_hash, int(threshold),
                        period, low_reliability, produce, coverage, labels, fp_names, design_source, earlier,
                        prev_paths, inputs)


def _records_input(records) -> dict:
    """The manifest's entry for the records: the file's name and sha256 whenever there is a file."""
    path = None
    if isinstance(records, (str, os.PathLike)):
        path = records
    elif hasattr(records, "source") and isinstance(getattr(records, "source"), dict):   # a ReadResult of a file
        path = records.source.get("path")
    if path is not None:
        return {"role": "records", "path": public_path(path),
                "sha256": file_sha256(path) if pathlib.Path(path).is_file() else None}
    return {"role": "records", "description": f"in-memory {type(records).__name__}"}


@dataclass(repr=False)
class Selection:
    """Stage 2 (:func:`select_units`): the units reported on, the covered LAs and the periods.

    Attributes
    ----------
    level : str
        ``"footprint"``, ``"region"`` or ``"nation"``.
    footprint : str or None
        The ``footprint`` argument as given (``"auto"`` is recorded in the manifest).
    areas : geopandas.GeoDataFrame
        England's upper-tier LAs (2023 vintage).
    la_table : pandas.DataFrame
        ``la_code``, ``la_name``, ``region_code``, ``region_name`` (and ``footprint_id`` with a design).
    geo : Geography
        Units and how they nest: focus, comparators, children, peers, populations.
    cover : Coverage
        The LAs the records cover.
    uncovered_comparators, peers_left_out : list of str
        Comparators and peers not covered by the records (published figures, or left out).
    footprint_ids : list of str
        The design's footprints.
    keys : numpy.ndarray
        Period key of every record; ``later`` and ``in_period`` mark records after and in the period.
    trend_keys : list of int
        Periods of the trend (the records fully cover them); ``partial`` those only partly covered.
    period_labels : dict
        Period key -> label; ``total_label`` the multi-period total's label (None for one period).
    first_death, last_death : pandas.Timestamp
        First and last date of death in the records; ``coverage_note`` says when the period is only
        partly covered.
    carried : list of int
        Periods whose population is carried forward from the latest ONS estimate.
    rec : pandas.DataFrame
        The counting frame (:func:`cdr.report._tables.prepare_records`) of the records up to the period.
    """

    level: str
    footprint: str | None
    areas: object
    la_table: pd.DataFrame
    geo: Geography
    cover: object
    uncovered_comparators: list
    peers_left_out: list
    footprint_ids: list
    keys: np.ndarray
    later: np.ndarray
    in_period: np.ndarray
    trend_keys: list
    partial: list
    period_labels: dict
    total_label: str | None
    first_death: pd.Timestamp
    last_death: pd.Timestamp
    coverage_note: str | None
    carried: list
    rec: pd.DataFrame

    @property
    def focus_name(self) -> str:
        return self.geo.names[self.geo.focus]

    def __repr__(self) -> str:
        return (f"Selection({self.level}: {self.focus_name} ({self.geo.code(self.geo.focus)}), "
                f"{int(self.in_period.sum()):,} records in the period, trend periods "
                f"{[self.period_labels[k] for k in self.trend_keys]})")


def select_units(inputs: ReportInputs, *, level: str = "footprint", footprint=None, region=None) -> Selection:
    """Stage 2 of :func:`build_report`: the unit reported on, its comparators and peers, and the periods.

    Resolves the focus unit (a footprint of the design, a region or England), the comparators
    (its region(s), England) and peers (the funnel's units), keeping only what the records cover;
    then the period of every record, the trend periods the records fully cover, the populations and
    the counting frame of the records up to the end of the period.

    Parameters
    ----------
    inputs : ReportInputs
        From :func:`read_inputs`.
    level, footprint, region
        As in :func:`build_report`.

    Returns
    -------
    Selection

    Raises
    ------
    cdr.errors.CdrError
        Unknown footprint or region, records not covering the unit, or no record in the period.
    """
    _expect("select_units", inputs=inputs)
    _check_level(level, "select_units")
    from cdr.data import england_areas, population_for_years

    recs, labels, fp_names, period = inputs.records, inputs.labels, inputs.fp_names, inputs.period
    areas = england_areas(2023)
    la_table = pd.DataFrame(areas[["la_code", "la_name", "region_code", "region_name"]])
    cover = resolve_coverage(inputs.coverage, recs["la_code"],
                             pd.DataFrame(areas[["la_code", "la_name", "child_population"]]))
    if labels is not None:
        la_table["footprint_id"] = la_table["la_code"].map(labels)
    unit_las, names = {}, {}
    for r in la_table.itertuples():
        unit_las.setdefault(f"la:{r.la_code}", set()).add(r.la_code)
        names[f"la:{r.la_code}"] = r.la_name
        unit_las.setdefault(f"rgn:{r.region_code}", set()).add(r.la_code)
        names[f"rgn:{r.region_code}"] = r.region_name
        unit_las.setdefault(NATION, set()).add(r.la_code)
        if labels is not None and isinstance(r.footprint_id, str):
            unit_las.setdefault(f"fp:{r.footprint_id}", set()).add(r.la_code)
            names[f"fp:{r.footprint_id}"] = fp_names.get(r.footprint_id) or f"Footprint {r.footprint_id}"
    names[NATION] = "England"
    unit_las = {k: frozenset(v) for k, v in unit_las.items()}
    footprint_ids = sorted({u[3:] for u in unit_las if u.startswith("fp:")})
    regions = sorted({u[4:] for u in unit_las if u.startswith("rgn:")})

    _check_unit(level, footprint, region, footprint_ids, {r: names[f"rgn:{r}"] for r in regions})
    if level == "footprint":
        auto_ids = [f for f in footprint_ids if not cover.partial or unit_las[f"fp:{f}"] & cover.las] or footprint_ids
        fid = auto_ids[0] if str(footprint) == "auto" else str(footprint)
        focus = f"fp:{fid}"
        las = unit_las[focus]
        cover.add_focus(las)
        pop_by_rgn = la_table[la_table["la_code"].isin(las)]
        rgn = pop_by_rgn["region_code"].value_counts()
        comparators = [f"rgn:{code}" for code in sorted(rgn.index)] + [NATION]
        children = [f"la:{c}" for c in sorted(las)]
        peers = [f"fp:{f}" for f in footprint_ids]
    elif level == "region":
        focus = f"rgn:{region}"
        comparators = [NATION]
        children = [f"la:{c}" for c in sorted(unit_las[focus])]
        peers = [f"rgn:{r}" for r in regions]
    else:
        focus, comparators = NATION, []
        children = [f"rgn:{r}" for r in regions]
        peers = [f"fp:{f}" for f in footprint_ids] if labels is not None else [f"rgn:{r}" for r in regions]
    if not cover.covers(unit_las[focus]):
        raise CdrError(
            f"the records cover {len(cover.las)} of England's {len(la_table)} LAs ({cover.describe(la_table)}), so a "
            f"report on {names[focus]} would count its other LAs as 0 deaths. Report on the partnership "
            "(--level footprint with a --design holding it), or give records for every LA of the area; if the "
            "records do cover it (LAs with no deaths), say so with --coverage all (coverage='all').")
    uncovered_comparators = [u for u in comparators if not cover.covers(unit_las[u])]
    comparators = [u for u in comparators if u not in uncovered_comparators]
    peers_left_out = [u for u in peers if not cover.covers(unit_las[u])]
    peers = [u for u in peers if u not in peers_left_out] or [focus]

    # periods
    keys = period_keys(recs["date_of_death"], calendar=period.calendar)
    later = keys > period.key
    in_period = keys == period.key
    if not in_period.any():
        have = sorted(set(keys.tolist()))
        raise CdrError(
            f"no records with a date of death in {_period_long(period)}; the records cover "
            + (", ".join(period_label(k, calendar=period.calendar) for k in have) if have else "no dates")
            + (". Use --calendar for calendar years." if not period.calendar else "."))
    trend_keys = sorted({int(k) for k in keys[~later]})
    trend_keys = list(range(trend_keys[0], period.key + 1))
    # periods the records only partly cover (e.g. calendar 2019 from records starting 1 April 2019)
    first_death, last_death = pd.to_datetime(recs["date_of_death"]).agg(["min", "max"])
    slack = pd.Timedelta(days=31)
    partial = [k for k in trend_keys if k != period.key and Period(k, period.calendar).start < first_death - slack]
    trend_keys = [k for k in trend_keys if k not in partial]
    coverage_note = None
    if period.end > last_death + slack or period.start < first_death - slack:
        coverage_note = (f"The records cover deaths from {first_death:%B %Y} to {last_death:%B %Y}: "
                         f"{period.label} is only partly covered, so its counts are incomplete.")
    period_labels = {k: period_label(k, calendar=period.calendar) for k in trend_keys}
    total_label = f"{period_labels[trend_keys[0]]} to {period_labels[trend_keys[-1]]}" if len(trend_keys) > 1 else None

    # populations (mid-year of the period's first calendar year; carried forward beyond the estimates,
    # which population_for_years warns about: the warning is collected into the report's notes by build_report)
    pop = population_for_years(trend_keys, by=())
    pop = pop.rename(columns={"year": "period_key"})
    carried = sorted(pop.loc[pop["carried_forward"], "period_key"].unique().tolist())
    geo = Geography(la_table, unit_las, names, focus, comparators, children, peers, pop)
    rec = prepare_records(recs.loc[~later].reset_index(drop=True), la_table, period_keys=keys[~later],
                          review_keys=lambda d: period_keys(d, calendar=period.calendar))
    return Selection(level, footprint, areas, la_table, geo, cover, uncovered_comparators, peers_left_out,
                     footprint_ids, keys, later, in_period, trend_keys, partial, period_labels, total_label,
                     first_death, last_death, coverage_note, carried, rec)


@dataclass(repr=False)
class Tables:
    """Stage 3 (:func:`declare_report_tables`): the tables declared over one bundle of count cells.

    Attributes
    ----------
    bundle : cdr.report._bundle.Bundle
        Every count cell and the equations among them (not yet protected).
    specs : list of TableSpec
        The tables in page order (core, content, comparators, factor model).
    left_out : list of dict
        Analyses left out, each ``{"analysis", "reason"}`` (stated in the methods and manifest).
    factor_info : dict or None
        What the factor model stage did (None when the spec does not produce it); ``factor_error`` the
        full error message when it can name records (kept private); ``withheld`` its withheld terms.
    """

    bundle: object
    specs: list
    left_out: list
    factor_info: dict | None = None
    factor_error: str | None = None
    withheld: object = None

    def __repr__(self) -> str:
        return f"Tables({[t.name for t in self.specs]}, {len(self.bundle.cells):,} cells)"


def declare_report_tables(inputs: ReportInputs, selection: Selection) -> Tables:
    """Stage 3 of :func:`build_report`: count the records into cells and declare every table over them.

    The core tables (:func:`cdr.report._tables.declare_tables`, which adds the content tables of
    :mod:`cdr.report._content`), the published comparators when the records do not cover them, the
    spec's ``[tables] produce`` selection and the factor model (odds ratios). Nothing is protected yet.

    Returns
    -------
    Tables
    """
    _expect("declare_report_tables", inputs=inputs, selection=selection)
    period, geo, threshold = inputs.period, selection.geo, inputs.threshold
    names, cover, la_table = geo.names, selection.cover, selection.la_table
    uncovered, peers_left_out = selection.uncovered_comparators, selection.peers_left_out
    trend_keys, total_label, period_labels = selection.trend_keys, selection.total_label, selection.period_labels
    recs, produce = inputs.records, inputs.produce
    bundle, specs = declare_tables(selection.rec, geo, key=period.key, trend_keys=trend_keys if total_label else [period.key],
                                   period_labels=period_labels, total_label=total_label or period_labels[period.key] + " (all)",
                                   threshold=int(threshold), calendar=period.calendar)
    left_out = []     # analyses left out at run time: {"analysis", "reason"} (report methods and manifest)
    if uncovered:
        at = next((i for i, t in enumerate(specs) if t.name == "headline"), -1) + 1
        specs.insert(at, published_comparators(uncovered, geo, period.key, period.label, calendar=period.calendar))
        for t in specs:
            if t.name == "headline":
                t.notes.append("Comparators: " + ", ".join(names[u] for u in uncovered) + " are not "
                               f"covered by the records ({cover.describe(la_table)}), so they are not computed from "
                               "them; see the table of published figures (source and year on every row).")
    if peers_left_out and selection.level == "footprint":
        for t in specs:
            if t.name == "funnel":
                t.notes.append(f"{len(peers_left_out)} other footprint(s) are not covered by the records and are not "
                               "shown (never as 0 deaths).")
                if len(geo.peers) == 1:
                    t.title = f"Rate compared with the England rate, {period.label}"
    drop = set()
    if "imd_decile" not in recs or pd.to_numeric(recs["imd_decile"], errors="coerce").isna().all():
        drop = {"deaths_by_deprivation", "modifiable_by_deprivation"}
        left_out.append({"analysis": "deprivation tables", "reason": "the records have no imd_decile values"})
    if produce is not None or drop:
        keep = (set(produce) if produce is not None else {t.name for t in specs}) | ALWAYS
        keep = (keep | ({"comparators"} if uncovered else set())) - drop
        specs = [t for t in specs if t.name in keep]
        used = {cid for t in specs for col, ids in t.counts.items() for cid in ids if cid is not None}
        bundle.cells = {k: v for k, v in bundle.cells.items() if k in used or k in bundle.hidden}
        bundle.extra = [(t, ps) for t, ps in bundle.extra if t in bundle.cells and all(p in bundle.cells for p in ps)]
    tables = Tables(bundle, specs, left_out)
    if produce is None or "factor_model" in produce:
        from cdr.report._factors import factor_model_table

        fm_spec, tables.withheld, factor_info = factor_model_table(
            recs, keys=selection.keys, pooled=trend_keys if total_label else [period.key], period_labels=period_labels,
            labels=inputs.labels, threshold=int(threshold), spec=inputs.spec.get("factors") or {},
            data_name="England" if not cover.partial else f"the records supplied ({cover.describe(la_table)})")
        if factor_info is not None and _may_name_records(factor_info.get("error")):   # kept private
            tables.factor_error, factor_info["error"] = factor_info["error"], FACTOR_ERROR_PUBLIC
        if fm_spec is None:
            left_out.append({"analysis": "factor model (odds ratios)", "reason": factor_info["error"]})
        else:
            at = next((i for i, t in enumerate(specs) if t.name == "trend"), len(specs))
            specs.insert(at, fm_spec)
        tables.factor_info = factor_info
    return tables


@dataclass(repr=False)
class Protected:
    """Stage 4 (:func:`protect_tables`): the protected, audited cells and the published tables.

    Attributes
    ----------
    protection : Protection
        Cells with ``published``/``primary``/``secondary``, the audit and its certificate.
    equations : list of (str, list of str)
        This bundle's ``(total, [parts])`` relations; ``cells`` its count cells.
    joint : dict
        Keys, statuses and equations of the whole system with the earlier releases (for the ledger).
    tables, marks, info : dict
        Per table: published values (NaN where hidden), marks (``[c]``, ``[x]``, ``[u]``) and
        ``title``/``notes``/``count_columns``/``label_columns``/``cells``/``decimals``/``column_labels``.
    specs : list of TableSpec
        The tables published (the funnel is dropped when no England rate exists).
    left_out : list of dict
        Analyses left out (those of stage 3 and this stage's).
    trend_info : dict
        The trend model's text, caption, fitted rates and APC.
    england_rate : float or None
        England's rate per 100,000 for the funnel, and ``england_rate_source`` where it comes from.
    synthetic : bool
        True when the records are synthetic.
    """

    protection: Protection
    equations: list
    cells: pd.DataFrame
    joint: dict
    tables: dict
    marks: dict
    info: dict
    specs: list
    left_out: list
    trend_info: dict
    england_rate: float | None
    england_rate_source: str | None
    synthetic: bool

    def __repr__(self) -> str:
        return (f"Protected({len(self.tables)} tables, {int(self.protection.cells['primary'].sum())} primary and "
                f"{int(self.protection.cells['secondary'].sum())} secondary suppressions, audit "
                f"{self.protection.certificate.get('result') or self.protection.certificate.get('passed')})")


def protect_tables(inputs: ReportInputs, selection: Selection, tables: Tables) -> Protected:
    """Stage 4 of :func:`build_report`: suppress and audit the cells jointly with earlier releases, then publish.

    Primary and secondary suppression over the whole bundle and the earlier releases' ledger
    (:func:`cdr.report._protect.protect`), checked by the independent audit; then each table is
    rendered from the published cells only (rates, percentages and intervals where their counts
    are shown), followed by what is derived from published values: the content tables' comparisons,
    the funnel positions and the trend model.

    Returns
    -------
    Protected

    Raises
    ------
    cdr.errors.DisclosureError
        The bundle fails the audit, or an earlier release's cell cannot be kept.
    """
    _expect("protect_tables", inputs=inputs, selection=selection, tables=tables)
    period, geo, threshold = inputs.period, selection.geo, inputs.threshold
    specs, left_out = list(tables.specs), list(tables.left_out)
    protection, equations, cells, joint = _protect_with_ledger(tables.bundle, inputs.earlier, threshold=int(threshold),
                                                               calendar=period.calendar, last_key=period.key)
    published = protection.published

    rate_fn = lambda c, p: rate_ci(c, p)[:3]  # noqa: E731
    prop_fn = lambda n, d: wilson_ci(n, d)  # noqa: E731
    out_tables, marks, info = {}, {}, {}
    for spec_t in specs:
        table, mk = spec_t.render(published, rate_fn=rate_fn, prop_fn=prop_fn, low_reliability=inputs.low_reliability)
        drop = [c for c in table.columns if c.startswith("_")]
        table, mk = table.drop(columns=drop), mk.drop(columns=drop)
        decimals = {}
        for col in ("value", "england_deaths_published", "england_rate_per_100000_published"):
            if spec_t.name in ("comparators", "trend") and col in table:   # no published figure: [x]
                rows = np.arange(len(table)) < len(table) - (spec_t.name == "trend")   # not the trend's total row
                mk[col] = np.where(table[col].isna().to_numpy() & rows, MARK_NA, mk[col])
        if spec_t.name == "factor_model":
            from cdr.report._factors import decimals as factor_decimals, mark_withheld

            mark_withheld(table, mk, tables.withheld)
            decimals = factor_decimals(table)
        out_tables[spec_t.name], marks[spec_t.name] = table, mk
        info[spec_t.name] = {
            "title": spec_t.title, "notes": list(spec_t.notes),
            "count_columns": [c for c in spec_t.counts if not c.startswith("_")],
            "label_columns": list(spec_t.labels.columns),
            "cells": {c: ids for c, ids in spec_t.counts.items() if not c.startswith("_")},
            "decimals": decimals,
            "column_labels": dict(spec_t.column_labels),
        }

    _content.finish(out_tables, marks, info)   # rates, England comparisons, SII/RII of the content tables (issue 15)
    recs = inputs.records
    synthetic = bool(recs["synthetic"].fillna(False).astype(bool).any()) if "synthetic" in recs else False
    focus = geo.focus
    if focus == NATION:
        england_rate, england_rate_source = float(out_tables["headline"]["rate_per_100000"].iloc[0]), "records"
    elif NATION in geo.comparators:
        england_rate, england_rate_source = float(out_tables["headline"]["rate_per_100000"].iloc[-1]), "records"
    else:
        england_rate, england_rate_source = _published_england_rate(period, geo)
    if "funnel" in out_tables and england_rate is None:
        left_out.append({"analysis": "funnel", "reason": england_rate_source})
        del out_tables["funnel"], marks["funnel"], info["funnel"]
        specs = [t for t in specs if t.name != "funnel"]
    elif "funnel" in out_tables:
        _funnel_positions(out_tables["funnel"], marks["funnel"], england_rate)
        if england_rate_source != "records":
            info["funnel"]["notes"].append(f"England rate: {england_rate:.1f} per 100,000 ({england_rate_source}).")
    trend_spec = inputs.spec.get("trend") or {}
    trend_info = (_fit_trend(out_tables["trend"], marks["trend"], geo.names[focus], family=trend_spec.get("family", "auto"),
                             min_years=int((inputs.spec.get("years") or {}).get("trend_min_years", 3)))
                  if "trend" in out_tables else {"text": ""})
    if selection.partial:
        trend_info["text"] += (" Not shown: " + ", ".join(period_label(k, calendar=period.calendar) for k in selection.partial)
                               + f" (the records start in {selection.first_death:%B %Y}, so only part of it is covered).")
    return Protected(protection, equations, cells, joint, out_tables, marks, info, specs, left_out, trend_info,
                     england_rate, england_rate_source, synthetic)


@dataclass(repr=False)
class Figures:
    """Stage 5 (:func:`draw_figures`): the PNG figures and the values the page is rendered with.

    Attributes
    ----------
    figures : dict of str -> bytes
        PNG images by name.
    context : dict
        Period, focus, England rate, trend fit, notes and labels used by the figures and the page.
    """

    figures: dict
    context: dict

    def __repr__(self) -> str:
        return f"Figures({sorted(self.figures)})"


def draw_figures(inputs: ReportInputs, selection: Selection, protected: Protected) -> Figures:
    """Stage 5 of :func:`build_report`: the figures of the published tables, and the page's context.

    Each table that declares a figure is drawn from its published values and marks only (never
    from the records), plus the map of the focus unit (and, for England, the peers' rates).
    Warnings raised while drawing (matplotlib's included) are not hidden: :func:`build_report`
    collects them into the report's notes.

    Returns
    -------
    Figures
    """
    _expect("draw_figures", inputs=inputs, selection=selection, protected=protected)
    period, geo = inputs.period, selection.geo
    tables, marks = protected.tables, protected.marks
    head = tables["headline"]
    pend_note = selection.coverage_note
    if marks["headline"]["pending"].iloc[0] == "" and int(head["pending"].iloc[0] or 0) > 0:
        pend_note = ((pend_note + " ") if pend_note else "") + (f"{int(head['pending'].iloc[0]):,} of {int(head['deaths'].iloc[0]):,} reviews of deaths in "
                     f"{period.label} were still pending when the records were extracted: figures on reviews and "
                     "modifiable factors are provisional and will change.")
    elif marks["headline"]["pending"].iloc[0] == MARK_SUPPRESSED:
        pend_note = ((pend_note + " ") if pend_note else "") + "Some reviews were still pending when the records were extracted (number suppressed): figures on reviews are provisional."
    from cdr._base import SYNTHETIC_NOTE
    from cdr.data import ATTRIBUTION

    trend_info = protected.trend_info
    context = {
        "period": period.label, "period_long": _period_long(period), "synthetic": protected.synthetic,
        "focus_name": selection.focus_name, "focus_code": geo.code(geo.focus), "level": selection.level,
        "england_rate": protected.england_rate,
        "england_rate_label": "England" if protected.england_rate_source == "records" else "England (published, NCMD)",
        "peer_kind": geo.kind(geo.peers[0]).lower(),
        "funnel_limits": lambda target, popn, conf: funnel_limits(target, popn, conf=conf),
        "trend_fitted": trend_info.get("fitted"), "trend_caption": trend_info.get("caption"),
        "attribution": ATTRIBUTION, "synthetic_note": SYNTHETIC_NOTE, "pending_note": pend_note,
        "year_axis": ("Calendar year of death" if period.calendar
                      else "Reporting year of death (1 April - 31 March)"),
    }
    figures = {}
    for spec_t in protected.specs:
        if spec_t.figure:
            fig = _figures.FIGURES[spec_t.figure](tables[spec_t.name], marks[spec_t.name], context)
            figures[spec_t.figure] = _figures.render_png(fig)
    figures["map"] = _figures.render_png(_figures.area_map(
        _map_frame(selection.areas, geo, tables.get("funnel"), selection.level), context))
    return Figures(figures, context)


def assemble_report(inputs: ReportInputs, selection: Selection, tables: Tables, protected: Protected,
                    drawn: Figures, *, out=None, private=None, warned=()) -> Report:
    """Stage 6 of :func:`build_report`: the methods, page sections, manifest, release ledger and HTML page.

    ``out`` and ``private`` (as in :func:`build_report`) only name the private folder on the page and
    find other bundles beside ``out`` that share a period; nothing is written. ``warned`` are the
    warnings raised by the earlier stages (:func:`build_report` collects them): each is stated in the
    methods and the manifest (``warnings``), except one that can name records, which goes to the
    private notes only.

    Returns
    -------
    Report
        Not written (:func:`write_report` writes it).
    """
    _expect("assemble_report", inputs=inputs, selection=selection, tables=tables, protected=protected, drawn=drawn)
    period, geo, threshold = inputs.period, selection.geo, inputs.threshold
    labels, earlier, prev_paths = inputs.labels, inputs.earlier, inputs.previous
    cover, la_table = selection.cover, selection.la_table
    trend_keys, period_labels = selection.trend_keys, selection.period_labels
    protection, info, trend_info = protected.protection, protected.info, protected.trend_info
    factor_info, bundle, left_out = tables.factor_info, tables.bundle, protected.left_out
    context, figures = dict(drawn.context), drawn.figures
    level, focus, focus_name = selection.level, geo.focus, selection.focus_name
    peers, peers_left_out = geo.peers, selection.peers_left_out
    exclusions, n_input = inputs.exclusions, inputs.n_input
    field_issue_rows, field_issues = inputs.field_issue_rows, inputs.field_issues
    overlapping = (overlapping_reports(out, [period_labels[k] for k in trend_keys], prev_paths,
                                       known_releases=earlier.release_ids()) if out is not None else [])
    from cdr import __version__

    title = (f"Child death review annual statistics {period.label}: {focus_name}" if level != "nation"
             else f"Child death review annual statistics {period.label}: England")
    methods = _methods(period, threshold, selection.carried, protection, level, inputs.design_source, trend_info,
                       inputs.spec_path, factor_info, getattr(bundle, "design_options", None))
    methods.append(_overlap_note(prev_paths or None, overlapping))
    unassigned = list(labels.attrs.get("unassigned", [])) if labels is not None else []
    if unassigned:
        methods.append(f"The footprint design is partial: {len(unassigned)} LA(s) are in no footprint "
                       f"({', '.join(unassigned[:10])}{'...' if len(unassigned) > 10 else ''}); they count towards "
                       "their region and England but not towards any footprint on the funnel plot.")
    sections = _sections(geo, peers, peers_left_out, factor_info, trend_info)
    if cover.partial:
        methods.append(
            f"Coverage: the records cover {len(cover.las)} local authorities ({cover.describe(la_table, limit=20)}); "
            f"{cover.rule}. Nothing outside them is computed from the records: England and region comparators are "
            "published figures (cdr.published; NCMD, with source and year on every row), left out where none is "
            "published, and areas without records are never shown as 0 deaths."
            + (f" Covered LAs with no record at all (counted as 0 deaths): {', '.join(cover.without_records)}."
               if cover.without_records else "")
            + (f" Records for LAs outside the declared coverage ({', '.join(cover.outside)}) count towards those LAs "
               "only." if cover.outside else ""))
    for item in left_out:
        methods.append(f"Left out: {item['analysis']} ({item['reason']}).")
    public_warnings, private_warnings = _split_warnings(warned)
    shown = [w for w in public_warnings if w.split(": ", 1)[1] not in trend_info["text"]]   # not twice on the page
    if shown:
        methods.append("Warnings raised while building this report: " + " | ".join(shown))
    if private_warnings:
        methods.append(f"{len(private_warnings)} warning(s) about the records themselves (raised while reading them) "
                       "are in the private folder's notes, not in this bundle.")
    sections, methods = _content.page(sections, methods)   # content tables and the rate rules (issue 15)
    n_excl = len(exclusions)
    built = source_date()
    private_notes = {}
    if n_excl:
        private_notes["excluded records"] = (f"{n_excl:,} of {n_input:,} records failed validation; each is listed with "
                                             "its row, case_id, field, value and reason in exclusions.csv")
        if "reason" in exclusions:
            for reason, n in exclusions["reason"].astype(str).value_counts().sort_index().items():
                private_notes[f"excluded because {reason}"] = int(n)
    if tables.factor_error:
        private_notes["factor model error"] = tables.factor_error
    if len(field_issue_rows):
        private_notes["fields set to not recorded"] = (f"{len(field_issue_rows):,} field values were not usable; each "
                                                      "is listed with its row, case_id, field and value in field_issues.csv")
    for i, text in enumerate(private_warnings, 1):
        private_notes[f"warning {i}"] = text
    counts = record_counts(inputs, selection)
    if private_notes:   # a private folder is written anyway: the exact reconciliation goes with it
        private_notes["records"] = (f"{n_input:,} read: {counts['excluded']:,} excluded as invalid, {counts['in_unit']:,} in "
                                    f"{period.label} in the reported area, {counts['outside_unit']:,} in {period.label} "
                                    f"outside it, {counts['earlier']:,} in earlier periods, {counts['later']:,} in later periods")
    private_details = {"exclusions": exclusions if n_excl else None, "notes": private_notes, "record_counts": counts,
                       "field_issues": field_issue_rows if len(field_issue_rows) else None}
    if out is not None and (n_excl or private_notes):
        context["private_name"] = private_folder(out, private).name
    manifest = _manifest(inputs, selection, tables, protected, title=title, built=built, version=__version__,
                         figures=figures, overlapping=overlapping, field_issues=field_issues,
                         public_warnings=public_warnings, n_private_warnings=len(private_warnings),
                         record_counts=counts)
    report = Report(title, level, geo.code(focus), period, protected.tables, protected.marks, info, figures, manifest,
                    sections, methods, context, protected.synthetic, int(threshold), protection.audit,
                    protection.cells, protected.equations, private=private_details)
    from cdr.report._html import render_html

    report.ledger = _release_ledger(report, bundle, protected.joint, earlier, protected.specs, info)
    manifest["disclosure"]["ledger"]["release"] = report.ledger["releases"][-1]["release"]
    report.html = render_html(report)
    return report


def write_report(report: Report, out, *, private=None, force: bool = False, ledger=None) -> dict:
    """Stage 7 of :func:`build_report`: write the bundle to ``out`` and add its ledger to ``ledger``.

    The same as ``report.write(out, private=private, force=force)`` (see :meth:`Report.write`), then,
    with ``ledger`` (an organisation's ledger folder), this release's ledger is added to it as a new file.
    Returns name -> path of every file written into ``out``.
    """
    if not isinstance(report, Report):
        raise ArgumentTypeError(f"write_report: report must be a Report (from build_report or assemble_report); "
                                f"got {type(report).__name__}")
    files = report.write(out, private=private, force=force)
    if ledger is not None:
        _append_to_ledger_folder(ledger, report)
    return files


STAGES = (read_inputs, select_units, declare_report_tables, protect_tables, draw_figures, assemble_report, write_report)


def _sections(geo, peers, peers_left_out, factor_info, trend_info) -> list:
    """The page's sections (title, figures, tables, text), before the content tables are added."""
    return [
        {"title": "Headline numbers", "tables": ["headline", "comparators"], "figures": ["headline_rates"]},
        {"title": "Where", "figures": ["map"], "tables": ["deaths_by_area", "deaths_by_local_authority"]},
        {"title": "Deaths by age band", "figures": ["deaths_by_age_band"], "tables": ["deaths_by_age_band"]},
        {"title": "Deaths by sex", "figures": ["deaths_by_sex"], "tables": ["deaths_by_sex"]},
        {"title": "Deaths by category of death", "figures": ["deaths_by_category"],
         "tables": ["deaths_by_category", "category_by_age_band"]},
        {"title": "Deaths by deprivation", "figures": ["deaths_by_deprivation"], "tables": ["deaths_by_deprivation"]},
        {"title": "Deaths by ethnic group", "figures": ["deaths_by_ethnicity"], "tables": ["deaths_by_ethnicity"]},
        {"title": "Modifiable factors", "figures": ["modifiable_by_category", "modifiable_by_domain",
                                                     "modifiable_by_age_band", "modifiable_by_deprivation"],
         "tables": ["modifiable_by_category", "modifiable_by_domain", "modifiable_by_age_band",
                    "modifiable_by_deprivation"]},
        {"title": "Modifiable factors: odds ratios ("
                  + ("England" if factor_info is None or factor_info.get("unit") == "England" else "records supplied")
                  + ", pooled years)", "figures": ["factor_model"], "tables": ["factor_model"],
         **({"text": [f"Not fitted, so not shown: {factor_info['error']}. The rest of the report is unaffected."],
             "show_text": True}
            if factor_info is not None and factor_info.get("error") else {})},
        {"title": "Trends over the available years", "text": [trend_info["text"]], "figures": ["trend"],
         "tables": ["trend"]},
        {"title": (f"Compared with all {geo.kind(peers[0]).lower()}s" if not peers_left_out else
                   "Compared with the England rate" if len(peers) == 1 else
                   f"Compared with the {geo.kind(peers[0]).lower()}s the records cover"),
         "figures": ["funnel"], "tables": ["funnel"]},
    ]


def build_report(records, *, design=None, footprint=None, level: str = "footprint", region=None, year,
                 calendar: bool | None = None, spec=None, out=None, mode: str = "strict", threshold=None,
                 previous=None, ledger=None, coverage=None, private=None, force: bool = False, columns=None,
                 values=None, sheet=None) -> Report:
    """Annual child death statistics for a footprint, a region or England, with disclosure control.

    Parameters
    ----------
    records : str, path, DataFrame or ReadResult
        CDR records (``cdr.schema`` columns); a file is read with :func:`cdr.read_records`.
    design : FootprintDesign, path, DataFrame or Series, optional
        LA -> footprint assignment (columns ``la_code``, ``footprint_id``). Needed for
        ``level="footprint"``; for England it adds the funnel plot of all footprints.
    footprint : str, optional
        Footprint id for ``level="footprint"``; ``"auto"`` takes the first id in sorted (string) order.
    level : {"footprint", "region", "nation"}
    region : str, optional
        Region code (e.g. ``"E12000001"``) for ``level="region"``.
    year : str or int
        ``"2022-23"`` (CDR year, 1 April - 31 March, the default convention) or ``2022``.
    calendar : bool, optional
        Use calendar years (``year=2022`` is 1 January - 31 December 2022). Default: the spec's
        ``[years] type`` (``"reporting"`` in the packaged spec).
    spec : str, path or dict, optional
        Analysis specification, read with :func:`cdr.models.load_spec` (default the packaged
        ``annual`` spec, identical to ``models/annual.toml``). Used: ``[suppression] threshold``
        (counts 1 to threshold-1 are suppressed), ``[years] type``, ``[rates] low_reliability_below``,
        ``[trend] family``, ``[years] trend_min_years`` and ``[tables] produce`` (which of the
        spec's tables appear; ``deaths_by_area`` and ``category_by_age_band`` always do, as they
        carry the LA and category x age margins). The resolved spec and its hash go in the manifest.
    out : path, optional
        Directory to write the bundle to (created if needed). Nothing is written if the audit fails.
        It must be new, empty or an earlier cdr bundle (recognised by its manifest's format and file
        hashes), unless ``force``; the new bundle replaces the earlier one in one step.
    mode : {"strict", "lenient"}
        Record validation: strict raises on any invalid record; lenient excludes them (listed in the
        private folder, never in the bundle; the manifest gives counts by field, small ones suppressed).
    threshold : int, optional
        Overrides the spec's threshold.
    coverage : "auto", "all" or list of str, optional
        The LAs the records cover (codes or names). Default: the spec's ``[coverage] las``
        (``"auto"`` in the packaged spec: LAs with at least one record are covered, and the records
        are partial when the LAs without any record hold more than 0.5 % of England's children).
        With partial records, England, region and other-footprint comparators are never computed
        from them: the ``comparators`` table gives the published figures (:mod:`cdr.published`, with
        source and year), the funnel plot compares the partnership with the published national rate,
        and a comparator with no published figure is left out with a note.
    previous : path, optional
        An earlier bundle (its directory or its ``manifest.json``). Its published and suppressed
        cells are public knowledge: cells shared with this release keep their status (published
        stays published, suppressed stays suppressed) and its equations join the attack. A shared
        cell whose value has changed since (revised records) raises a DisclosureError.
    private : path, optional
        Folder for record-level details that must not be published (excluded records, full error
        messages); default ``<out>.private`` beside ``out``. Written only when there is something in it.
    force : bool
        Write into an ``out`` that holds files cdr did not write (they are never deleted or overwritten).
    previous : path or list of paths, optional
        Earlier bundles (their directories or ``ledger.json`` files). Each carries the release
        ledger of its whole chain (``docs/concepts/disclosure.md``), so the last bundle of a chain
        is enough. Everything they published or suppressed is public knowledge: earlier published
        counts are fixed, earlier suppressions stay suppressed, and this release's suppression is
        chosen jointly with them and audited over the union. A cell whose value has changed since
        (revised records) raises a DisclosureError.
    ledger : path, optional
        An organisation's ledger folder: every ledger in it is read like ``previous``, and this
        release's ledger is added to it as a new file (``<period>_<release id>.json``; existing
        files are never changed) when the bundle is written.
    columns, values : dict or path, optional
        How an export's headers and raw values map to cdr fields (a TOML file or dicts), passed to
        :func:`cdr.read_records` with ``sheet`` (an Excel sheet's name or 0-based number). A file given
        here is listed in the manifest's inputs with its sha256, like the records file.

    Returns
    -------
    Report
        Published ``tables`` (with ``marks``), ``figures``, ``manifest`` (with the disclosure
        audit certificate), ``html``; ``.write(out)`` writes it, ``.published(name)`` gives a
        table as in the CSV files.

    Raises
    ------
    cdr.errors.CdrError
        Unknown footprint or region, a year with no records, a bad design or spec.
    cdr.errors.RecordValidationError
        Records fail validation (strict mode).
    cdr.errors.DisclosureError
        The bundle fails the disclosure audit (the message names the cells).

    Warns
    -----
    Every warning raised while building (cdr's own included) is emitted once and is stated in the
    report's methods and ``manifest["warnings"]``; one that concerns individual records (any warning
    raised while reading them, or naming rows or case ids) goes to the private folder's notes instead.

    Notes
    -----
    The body is the pipeline :func:`read_inputs` -> :func:`select_units` -> :func:`declare_report_tables`
    -> :func:`protect_tables` -> :func:`draw_figures` -> :func:`assemble_report` -> :func:`write_report`
    (``cdr.report._build.STAGES``); call the stages to inspect or test one step.

    Examples
    --------
    England 2022-23 from five years of synthetic records, written to a temporary directory
    (a few seconds):

    >>> import os, tempfile
    >>> from cdr.synthetic import generate_records
    >>> recs = generate_records(years=range(2019, 2024), seed=0)
    >>> with tempfile.TemporaryDirectory() as out:
    ...     report = build_report(recs, level="nation", year="2022-23", out=out)
    ...     written = sorted(os.listdir(out))
    >>> report.manifest["disclosure"]["certificate"]["passed"]
    True
    >>> report.period.label, report.synthetic, "manifest.json" in written
    ('2022-23', True, True)
    """
    collector = _WarningCollector()
    try:
        with collector.stage("read"):
            _needs_unit(level, footprint, region)
            inputs = read_inputs(records, year=year, level=level, design=design, spec=spec, calendar=calendar,
                                 mode=mode, threshold=threshold, coverage=coverage, previous=previous, ledger=ledger,
                                 columns=columns, values=values, sheet=sheet, footprint=footprint, region=region,
                                 out=out, force=force)
        with collector.stage("select"):
            selection = select_units(inputs, level=level, footprint=footprint, region=region)
        with collector.stage("tables"):
            tables = declare_report_tables(inputs, selection)
        with collector.stage("protect"):
            protected = protect_tables(inputs, selection, tables)
        with collector.stage("figures"):
            drawn = draw_figures(inputs, selection, protected)
    finally:
        collector.emit()   # never hidden: emitted again here, and stated in the report's notes below
    report = assemble_report(inputs, selection, tables, protected, drawn, out=out, private=private,
                             warned=collector.caught)
    if out is not None:
        write_report(report, out, private=private, force=force, ledger=ledger)
    return report


def overlapping_reports(out, periods, previous=None, *, known_releases=()) -> list:
    """Other cdr report bundles beside ``out`` (sibling directories) sharing a period with this one.

    Two bundles published for overlapping periods (the same year from two footprint designs, or a
    footprint and its region) share totals: a count suppressed in one can be recoverable from the
    other unless the later one was built with ``previous=`` the earlier. This only *detects*
    bundles in ``out``'s parent directory that are not ``previous``; there is no global registry.
    Returns one dict per bundle: ``path`` (the sibling folder's name, never an absolute path), ``title``,
    ``period``, ``shared_periods``.
    """
    out = pathlib.Path(out).resolve()
    skip = {out}
    for p in ([] if previous is None else [previous] if isinstance(previous, (str, os.PathLike)) else previous):
        prev = pathlib.Path(p).resolve()
        skip.add(prev.parent if prev.name in ("manifest.json", "ledger.json") else prev)
    known = set(known_releases)
    found = []
    parent = out.parent
    if not parent.is_dir():
        return found
    for manifest in sorted(parent.glob("*/manifest.json")):
        if manifest.parent.resolve() in skip or manifest.parent.name.startswith("."):
            continue
        try:
            m = json.loads(manifest.read_text(encoding="utf-8"))
            theirs = set(m["period"].get("trend_periods") or [m["period"]["label"]])
            title = str(m.get("title", ""))
            m["disclosure"]["cells"]
            if (m["disclosure"].get("ledger") or {}).get("release") in known:
                continue   # already in the chain this release is built on
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        shared = [p for p in periods if p in theirs]
        if shared:   # a sibling: its folder name only, never an absolute path
            found.append({"path": manifest.parent.name, "title": title, "period": m["period"].get("label"),
                          "shared_periods": shared})
    return found


def _overlap_note(previous, overlapping) -> str:
    text = ("Overlapping publications: this bundle is protected on its own"
            + (" and together with every earlier release of its ledger (the chain given as previous)"
               if previous else "")
            + ". Another bundle for an overlapping period (the same year from another footprint design, or another "
              "footprint, region or England) shares totals with it, and a count suppressed here or there could be "
              "recovered by combining the two. Build the later bundle with --previous DIR (previous= in Python) "
              "naming the earlier one, so that its published and suppressed cells join the attack.")
    if overlapping:
        text += (" Found beside this bundle and not given as previous: "
                 + "; ".join(f"{o['path']} ({o['title']}; shares {', '.join(o['shared_periods'])})" for o in overlapping)
                 + ".")
    return text


def _load_previous(paths, ledger_dir):
    """The merged release ledger of ``paths`` (bundles) and ``ledger_dir``, and entries for the manifest's inputs."""
    from cdr.disclosure import Ledger, read_ledgers

    sources = list(paths) + ([ledger_dir] if ledger_dir is not None and pathlib.Path(ledger_dir).exists() else [])
    for p in paths:
        if not pathlib.Path(p).exists():
            raise CdrError(f"previous release not found: {str(p)!r}; give the directory of an earlier bundle "
                           "or its ledger.json.")
    earlier = read_ledgers(sources) if sources else Ledger()
    inputs = []
    for p in paths:
        p = pathlib.Path(p)
        f = p / "ledger.json" if p.is_dir() else p
        inputs.append({"role": "previous release", "path": public_path(p), "sha256": file_sha256(f)})
    if ledger_dir is not None:
        inputs.append({"role": "release ledger folder", "path": public_path(ledger_dir),
                       "releases": len(earlier.releases)})
    return earlier, inputs


def _recount(bundle, key, *, calendar, last_key):
    """True count of a ledger cell (any LAs, period, canonical breakdown) from this release's records."""
    from itertools import product

    measure, unit, period, dims = key.split("|", 3)
    las = bundle.las_of(unit)
    if " to " in period:
        a, b = period.split(" to ")
        keys = list(range(parse_period(a, calendar=calendar).key, parse_period(b, calendar=calendar).key + 1))
    else:
        keys = [parse_period(period, calendar=calendar).key]
    if (period_label(keys[0], calendar=calendar) != period.split(" to ")[0]) or keys[-1] > last_key:
        raise CdrError(f"cannot recount {key!r} from this release's records (period {period!r} is "
                       f"{'after this release' if keys[-1] > last_key else 'in another year convention'}): build "
                       "releases of a chain in time order, with one year convention, from the same records.")
    pairs = [tuple(kv.split("=", 1)) for kv in dims.split(";") if kv]
    choices = [[(d, m) for m in v.split("+")] for d, v in pairs]
    total = 0
    for combo in product(*choices) if choices else [()]:
        kw = dict(combo)
        for la in las:
            for k in keys:
                total += int(bundle.count(measure, "la:" + la, k, **kw))
    return total


def _recount_las(bundle, key, las, *, calendar, last_key):
    extra = getattr(bundle, "extra_las", None) or {}
    unit = key.split("|", 2)[1]
    bundle.extra_las = {**extra, unit: frozenset(las)}
    try:
        return _recount(bundle, key, calendar=calendar, last_key=last_key)
    finally:
        bundle.extra_las = extra


def _piece_margins(key_las, equations):
    """Margins of the geography pieces: ``piece = sum of its levels`` where a breakdown's levels
    are all published for units whose common refinement has that piece.

    Every death of an LA is in exactly one level of a breakdown (sex, age band, ...), so for any
    set of LAs ``S`` the total of ``S`` is the sum of ``S``'s levels. A unit published with all
    levels has that equation (a table margin); a *piece* of the refinement (e.g. the part of one
    footprint outside another) has it too, and an attacker who reads several releases can use it.
    For each margin ``total = sum of levels`` among the equations, and each LA set that is a key
    in every level's group, this adds ``S_total = S_level1 + ...``; when ``S``'s total is not a
    key of its own but a union of keys of the total group, a new unpublished cell ``S_total`` is
    added with ``S_total = sum of those keys``. Returns ``(new cells {key: las}, equations)``.
    """
    from cdr.report._bundle import canonical_unit

    def parse(k):
        measure, unit, period, dims = k.split("|", 3)
        return measure, unit, period, tuple(tuple(kv.split("=", 1)) for kv in dims.split(";") if kv)

    def key_of(measure, las, period, dims):
        return f"{measure}|{canonical_unit(las)}|{period}|" + ";".join(f"{a}={b}" for a, b in sorted(dims))

    groups = {}
    for k, las in key_las.items():
        measure, _, period, dims = parse(k)
        groups.setdefault((measure, period, dims), {})[las] = k
    partitions = set()
    for t, ps in equations:
        if t not in key_las or len(ps) < 2 or any(p not in key_las for p in ps):
            continue
        m, u, per, dims = parse(t)
        extra = []
        for p in ps:
            pm, pu, pper, pdims = parse(p)
            if (pm, pu, pper) != (m, u, per) or len(pdims) != len(dims) + 1 or not set(dims) <= set(pdims):
                break
            extra.append(next(iter(set(pdims) - set(dims))))
        else:
            if len({d for d, _ in extra}) == 1:
                partitions.add((m, per, dims, extra[0][0], tuple(sorted(v for _, v in extra))))
    have = {(t, tuple(sorted(ps))) for t, ps in equations}
    new_cells, new_eqs = {}, []
    for m, per, dims, d, levels in sorted(partitions):
        level_groups = [groups.get((m, per, tuple(sorted(dims + ((d, v),)))), {}) for v in levels]
        if not all(level_groups):
            continue
        total_group = groups.get((m, per, dims), {})
        for las in sorted(set.intersection(*[set(g) for g in level_groups]), key=sorted):
            parts = sorted(g[las] for g in level_groups)
            total = total_group.get(las)
            if total is None:
                finest = _partition_of(las, {s: k for s, k in total_group.items() if s <= las})
                if finest is None:
                    continue
                total = key_of(m, las, per, dims)
                if total not in new_cells:
                    new_cells[total] = las
                    new_eqs.append((total, finest))
            if (total, tuple(parts)) not in have:
                have.add((total, tuple(parts)))
                new_eqs.append((total, parts))
    return new_cells, new_eqs


def _partition_of(las, candidates):
    """Keys of ``candidates`` ({LA set: key}, all inside ``las``) that partition ``las`` (finest first), or None."""
    chosen, covered = [], set()
    for s, k in sorted(candidates.items(), key=lambda kv: (len(kv[0]), sorted(kv[0]))):
        if not (s & covered):
            chosen.append(k)
            covered |= s
    return sorted(chosen) if covered == set(las) else None


def _protect_with_ledger(bundle, earlier, *, threshold, calendar, last_key):
    """Protect this release jointly with the earlier releases of ``earlier`` (a Ledger).

    Cells and equations go to :func:`cdr.report._protect.protect` under their release-independent
    keys (:meth:`Bundle.canonical`), so the same LAs/period/measure published by another design,
    level or release is the same unknown. Returns ``(protection, equations, cells, joint)``:
    ``protection.cells`` under this bundle's own cell ids, this bundle's own equations and cells,
    and ``joint`` (keys, statuses and equations of the whole system for the ledger).
    """
    from collections import defaultdict

    from cdr.report._bundle import canonical_unit

    units = {u: frozenset(v) for u, v in earlier.units.items()}
    bundle.extra_las = units
    ghosts = defaultdict(list)
    for key in earlier.cells["cell"]:
        measure, unit, period, dims = key.split("|", 3)
        dims_t = tuple(tuple(kv.split("=", 1)) for kv in dims.split(";") if kv)
        ghosts[(measure, period, dims_t)].append((key, bundle.las_of(unit)))
    bundle.ghosts = dict(ghosts)
    equations = bundle.equations()
    cells = bundle.frame()
    canon = {c: bundle.canonical(c) for c in cells["cell"]}
    for t, ps in equations:
        for c in (t, *ps):
            if c not in canon:
                canon[c] = bundle.canonical(c)
    cur = cells.assign(key=cells["cell"].map(canon))
    agg = cur.groupby("key", sort=False).agg(value=("value", "first"), n_values=("value", "nunique"),
                                             unpublished=("unpublished", "all"))
    if (agg["n_values"] > 1).any():  # pragma: no cover - internal consistency
        raise RuntimeError(f"cells with the same key and different counts: {agg[agg['n_values'] > 1].index[:3].tolist()}")
    ccells = pd.DataFrame({"cell": agg.index.to_numpy(), "value": agg["value"].astype(int).to_numpy(),
                           "unpublished": agg["unpublished"].to_numpy(dtype=bool)})
    cequations = [(canon[t], [canon[p] for p in ps]) for t, ps in equations]
    # merged levels published by any release = the sum of their members where those are known
    known = set(ccells["cell"]) | set(earlier.cells["cell"])
    for key in sorted(known):
        measure, unit, period, dims = key.split("|", 3)
        pairs = [kv.split("=", 1) for kv in dims.split(";") if kv]
        for i, (d, v) in enumerate(pairs):
            if "+" not in v:
                continue
            members = []
            for m in v.split("+"):
                sub = pairs[:i] + [[d, m]] + pairs[i + 1:]
                members.append(f"{measure}|{unit}|{period}|" + ";".join(f"{a}={b}" for a, b in sub))
            if all(m in known for m in members):
                cequations.append((key, members))
    # LAs of every key, then the margins of the pieces (see _piece_margins)
    parts = bundle.geography()[1]
    key_las = {}
    for c, k in canon.items():
        unit = c.split("|", 2)[1]
        key_las[k] = frozenset(parts[c]["las"]) if c in parts else bundle.las_of(unit)
    for k in earlier.cells["cell"]:
        key_las.setdefault(k, bundle.las_of(k.split("|", 2)[1]))
    extra_cells, extra_eqs = _piece_margins(key_las, cequations + list(earlier.equations))
    if extra_cells:
        ccells = pd.concat([ccells, pd.DataFrame({
            "cell": list(extra_cells),
            "value": [_recount_las(bundle, k, las, calendar=calendar, last_key=last_key) for k, las in extra_cells.items()],
            "unpublished": True})], ignore_index=True)
        key_las.update(extra_cells)
    cequations += extra_eqs
    previous = None
    if len(earlier.cells):
        prev = earlier.cells.copy()
        prev["value"] = [_recount(bundle, k, calendar=calendar, last_key=last_key) for k in prev["cell"]]
        prev["published"] = [v if s == "published" else np.nan for v, s in zip(prev["value"], prev["status"])]
        pub = prev["status"] == "published"
        shown = pd.to_numeric(earlier.cells["value"], errors="coerce")
        prev.loc[pub, "published"] = shown[pub].to_numpy(dtype=float)
        previous = (prev[["cell", "value", "published", "status", "release"]], earlier.equations)
    protection = protect(ccells, cequations, threshold=threshold, previous=previous)
    describe = earlier.describe
    check_passed(protection, cequations, describe=describe)
    # back to this bundle's own ids
    by_key = protection.cells.set_index("cell")
    local = by_key.loc[cells["cell"].map(canon).to_numpy()].reset_index(drop=True)
    local.insert(0, "cell", cells["cell"].to_numpy())
    local["value"] = cells["value"].astype(int).to_numpy()
    local["unpublished"] = cells["unpublished"].to_numpy(dtype=bool)
    local["primary"] &= ~local["unpublished"]
    local["secondary"] &= ~local["unpublished"]
    local_prot = Protection(local, protection.audit, protection.certificate, protection.method,
                            protection.releases, protection.joint_equations)
    units_used = {k.split("|", 2)[1]: sorted(las) for k, las in key_las.items()}
    assert all(canonical_unit(v) == u for u, v in units_used.items())
    status = {k: ("unpublished" if u else "suppressed" if np.isnan(p) else "published")
              for k, u, p in zip(protection.cells["cell"], protection.cells["unpublished"],
                                 protection.cells["published"])}
    values = dict(zip(protection.cells["cell"], protection.cells["value"]))
    joint = {"status": status, "values": values, "equations": cequations, "units": units_used,
             "canon": canon, "n_cells": protection.certificate["joint"]["n_cells"],
             "n_equations": protection.certificate["joint"]["n_equations"], "release": None}
    return local_prot, equations, cells, joint


def _release_ledger(report, bundle, joint, earlier, specs, info):
    """The ledger of this release merged with the earlier ones (JSON form for ``ledger.json``)."""
    import hashlib

    from cdr.disclosure import Ledger

    cells = [(k, s, (int(joint["values"][k]) if s == "published" else None)) for k, s in sorted(joint["status"].items())]
    rates = []
    canon = joint["canon"]
    for name, table in report.tables.items():
        cols = info[name]["cells"]
        marks = report.marks[name]
        for rate_col, count_col, pop_col in (("rate_per_100000", "deaths", "population"),
                                             ("england_rate_per_100000", "england_deaths", "england_population")):
            if rate_col not in table or count_col not in cols or pop_col not in table:
                continue
            for i, cid in enumerate(cols[count_col]):
                if cid is None or marks[rate_col].iloc[i] != "" or not np.isfinite(table[rate_col].iloc[i]):
                    continue
                rates.append({"cell": canon.get(cid, cid), "rate": round(float(table[rate_col].iloc[i]), 1),
                              "population": int(round(float(table[pop_col].iloc[i]))), "multiplier": 100_000,
                              "decimals": 1, "table": name})
    payload = {"title": report.title, "period": report.period.label, "cells": cells,
               "previous": earlier.release_ids()}
    rid = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    release = {"release": rid, "title": report.title, "period": report.period.label, "level": report.level,
               "unit": report.unit, "threshold": int(report.threshold), "previous": earlier.release_ids()}
    mine = Ledger.new(release, cells=cells, equations=joint["equations"], units=joint["units"], rates=rates)
    return earlier.merge(mine).to_dict()


def _append_to_ledger_folder(folder, report):
    """Add this release's ledger to an organisation's ledger folder (a new file; nothing is overwritten)."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rid = report.ledger["releases"][-1]["release"]
    path = folder / f"{report.period.label.replace(' ', '_')}_{rid}.json"
    text = json.dumps(report.ledger, indent=1, ensure_ascii=False)
    if path.exists():
        if path.read_text(encoding="utf-8") != text:  # pragma: no cover - same id, same content
            raise CdrError(f"{str(path)!r} exists with other content; the ledger folder is append-only.")
        return path
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _published_england_rate(period, geo):
    """(rate, where it comes from) for the funnel of partial records; (None, reason) when none exists."""
    from cdr.published import comparator

    if period.calendar:
        return None, ("no funnel plot: the records cover only part of England and NCMD publishes rates for years "
                      "ending 31 March only, not calendar years")
    rate = comparator("rate_per_100000", period.key)
    if rate is not None:
        return rate["value"], (f"published, {rate['source']}, {rate['source_year']}; not computed from these records")
    deaths = comparator("deaths", period.key)
    pop = geo.population(NATION, period.key)
    if deaths is not None and pop > 0:
        return (1e5 * deaths["value"] / pop,
                f"NCMD published deaths {deaths['value']:,.0f} ({deaths['source']}, {deaths['source_year']}) per ONS "
                f"mid-year child population {pop:,.0f}: no rate is published for {period.label}")
    return None, (f"no funnel plot: the records cover only part of England and no national rate or count is "
                  f"published for {period.label}")


def _funnel_positions(table, marks, target):
    lo95, hi95 = funnel_limits(target, table["population"].to_numpy(), conf=0.95)
    lo998, hi998 = funnel_limits(target, table["population"].to_numpy(), conf=0.998)
    rate = pd.to_numeric(table["rate_per_100000"], errors="coerce").to_numpy(dtype=float)
    table["funnel_lower_95"], table["funnel_upper_95"] = lo95, hi95
    table["funnel_lower_99_8"], table["funnel_upper_99_8"] = lo998, hi998
    pos = np.select([rate > hi998, rate > hi95, rate < lo998, rate < lo95],
                    ["above 99.8% limit", "above 95% limit", "below 99.8% limit", "below 95% limit"],
                    "within 95% limits").astype(object)
    hidden = ~np.isfinite(rate)
    pos[hidden] = MARK_SUPPRESSED
    table["position"] = pos
    for c in ("funnel_lower_95", "funnel_upper_95", "funnel_lower_99_8", "funnel_upper_99_8", "position"):
        marks[c] = ""
    marks.loc[hidden, "position"] = MARK_SUPPRESSED


BREAK_YEAR = 2021   # first year of the Census 2021-based ONS population estimates


def _fit_trend(table, marks, focus_name, *, family="auto", min_years=3):
    """Log-linear trend in the published yearly counts (only when none is suppressed)."""
    body = table[table["period_start"].notna()]
    bmarks = marks.loc[body.index]
    if len(body) < max(min_years, 3):
        starts = body["period_start"].astype(int)
        crosses = bool((starts < BREAK_YEAR).any() and (starts >= BREAK_YEAR).any())
        return {"text": f"{len(body)} period(s) of data: too few for a trend model (the spec asks for at least "
                        f"{max(min_years, 3)}); observed rates are shown."
                        + (f" They cross the {BREAK_YEAR} population rebasing (ONS estimates from mid-{BREAK_YEAR} are "
                           "based on Census 2021), so part of a change in rates between them may come from the "
                           "population series, not from deaths." if crosses else "")}
    if (bmarks["deaths"] == MARK_SUPPRESSED).any():
        return {"text": "No trend model is shown: a yearly count is suppressed, and a model fitted to it could reveal it."}
    data = pd.DataFrame({"year": body["period_start"].astype(int).to_numpy(),
                         "deaths": body["deaths"].astype(int).to_numpy(),
                         "population": body["population"].to_numpy(dtype=float)})
    from cdr import trends

    # ONS mid-year estimates from 2021 are rebased on Census 2021: a series crossing 2021 gets the
    # library's level shift (cdr.trends.population_break), so the step is not read as a trend
    crosses = bool((data["year"] < BREAK_YEAR).any() and (data["year"] >= BREAK_YEAR).any())
    covariates = None
    break_note = ""
    if crosses and len(data) >= 4:
        data["break_2021"] = trends.population_break(data["year"], at=BREAK_YEAR).to_numpy()
        covariates = ["break_2021"]
    elif crosses:
        break_note = (f" The series crosses the {BREAK_YEAR} population rebasing (ONS estimates from mid-{BREAK_YEAR} "
                      "are based on Census 2021) but is too short for a level-shift term (at least 4 periods): the "
                      "step in the population series is not adjusted for.")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = trends.fit_trend(data, count="deaths", population="population", time="year", family=family,
                                   covariates=covariates)
    except (CdrError, ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
        return {"text": f"No trend model: {exc}"}
    apc = res.apc.iloc[0]
    if covariates:
        cov = res.covariates.iloc[0]
        lo_c, up_c = [c for c in res.covariates.columns if c.startswith("rate_ratio_lower_")][0], \
            [c for c in res.covariates.columns if c.startswith("rate_ratio_upper_")][0]
        break_note = (f" The model includes a level shift from {BREAK_YEAR} for the population series break (ONS "
                      f"estimates from mid-{BREAK_YEAR} are based on Census 2021; cdr.trends.population_break): rate "
                      f"ratio {cov['rate_ratio']:.2f} (95% CI {cov[lo_c]:.2f} to {cov[up_c]:.2f}).")
    fitted_rate = res.fitted["fitted_rate"].to_numpy(dtype=float)
    how = f"cdr.trends.fit_trend, {apc['family']} family"
    notes = [str(w.message) for w in caught]
    for w in caught:   # stated in the trend text and emitted again (build_report collects them)
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    caption = f"Annual percent change {apc['apc']:.1f}% (95% CI {apc['apc_lower_95']:.1f}% to {apc['apc_upper_95']:.1f}%)"
    text = (f"{focus_name}: the death rate changed by {apc['apc']:.1f}% a year on average (95% CI "
            f"{apc['apc_lower_95']:.1f}% to {apc['apc_upper_95']:.1f}%, p = {apc['p_value']:.2g}) over "
            f"{body['period'].iloc[0]} to {body['period'].iloc[-1]}; log-linear model of deaths with a log-population "
            f"offset ({how}).")
    text += break_note
    if len(body) < 5:
        text += " With fewer than 5 periods this is indicative only."
    if notes:
        text += " " + " ".join(notes)
    return {"text": text, "caption": caption, "fitted": fitted_rate, "population_break": bool(covariates),
            "apc": {k: (float(apc[k]) if k != "family" else str(apc[k])) for k in ("apc", "apc_lower_95", "apc_upper_95", "p_value", "family")}}


def _map_frame(areas, geo, funnel_table, level):
    import geopandas as gpd

    frame = gpd.GeoDataFrame(areas[["la_code", "geometry"]].copy(), geometry="geometry", crs=areas.crs)
    frame["in_focus"] = frame["la_code"].isin(geo.unit_las[geo.focus])
    if level == "nation" and funnel_table is not None:
        peer_kind = geo.peers[0].split(":")[0]
        rates = dict(zip(funnel_table["area_code"], pd.to_numeric(funnel_table["rate_per_100000"], errors="coerce")))
        owner = {}
        for u in geo.peers:
            for la in geo.unit_las[u]:
                owner[la] = geo.code(u)
        frame["rate"] = frame["la_code"].map(owner).map(rates).astype(float)
        key = frame["la_code"].map(owner)
        frame = frame.assign(_key=key).dissolve(by="_key", aggfunc={"rate": "first", "in_focus": "max"}).reset_index()
        _ = peer_kind
    return frame


def _methods(period, threshold, carried, protection, level, design_source, trend_info, spec_path,
             factor_info=None, design_options=None):
    out = [
        f"Period: {_period_long(period)}. Deaths are counted by date of death and the child's local authority "
        "of residence (upper-tier, April 2023 boundaries).",
        "Rates: deaths per 100,000 children aged 0-17, ONS mid-year population estimates for the first calendar "
        "year of the period; 95% confidence intervals by the exact Poisson method below 10 deaths and Byar's method "
        "from 10 (Fingertips technical guidance). Rates from fewer than 20 deaths are flagged [u] (low reliability). "
        "Proportions use Wilson score intervals. Funnel limits are exact Poisson 95% and 99.8% limits around the "
        "England rate.",
        f"Disclosure control: counts from 1 to {threshold - 1} are suppressed ([c]) following the ONS and NHS "
        "England practice of suppressing small numbers (e.g. ONS child mortality statistics; NHS Digital's "
        "'Disclosure control method for HES'); zeros are shown. Further (secondary) cells are suppressed so that no "
        "suppressed count can be recovered, or shown to be small, from the whole bundle: every table, the LA, "
        "footprint, region and England totals, category x age margins, each year and the multi-year total are "
        "treated as one system of equations, and an independent integer-programming attacker audits it "
        f"({protection.method} implementation). Rates and percentages are shown only where their counts are.",
        "Reviews: a review is complete when the records give a completion date. Pending reviews are counted and "
        "shown; modifiable factors and domains are among completed reviews only.",
    ]
    if design_options is not None and len(design_options) > 1:
        chosen = design_options[design_options["chosen"]].iloc[0]
        out.append(
            "Aggregation instead of suppression: the category x age table had interior counts from 1 to "
            f"{threshold - 1}. {len(design_options)} designs were compared by protecting each (with the one-way age "
            "and category tables) and counting the cells left published: "
            + "; ".join(f"{r.design} ({r.interior_cells} cells)" for r in design_options.itertuples())
            + f". Chosen: {chosen['design']}"
            + ". The choice depends on the counts, as any table redesign does; the whole bundle is then audited. "
              "The comparison is in manifest.json (disclosure.aggregation).")
    if factor_info is not None:
        if factor_info.get("error"):
            pass   # listed with the other analyses left out ("Left out: ...")
        else:
            out.append(
                f"Factor model (odds ratios): cdr.factors.factor_model, fitted on the records of {factor_info['unit']}: every death in "
                f"{factor_info['periods'][0]} to {factor_info['periods'][-1]} with a completed review "
                f"({factor_info['n_obs']:,} reviews), clustered by {factor_info['cluster'] or 'nothing'} "
                f"({factor_info.get('n_clusters')} clusters). "
                + ("It is published at national level in every report "
                   "because a footprint (about 60 deaths a year) or a region (as few as 3 footprints as clusters) "
                   "gives unstable odds ratios and cluster-robust errors for a model with 15 terms. "
                   if factor_info["unit"] == "England" else "The records cover only these LAs, so it is not a model "
                   "for England. ")
                + f"It is shown only with at least {factor_info['min_events_per_parameter']} events per parameter, "
                "a converged fit and finite, non-degenerate intervals. A term is withheld "
                f"([c]) when its level or the reference level has fewer than {threshold} reviews with, or without, "
                f"modifiable factors ({factor_info['n_withheld']} of {factor_info['n_terms']} withheld).")
    if carried:
        out.append("No ONS population estimate exists yet for " + ", ".join(period_label(k, calendar=period.calendar)
                   for k in carried) + ": the latest estimate (mid-2022) is used and flagged in the manifest.")
    if level == "footprint":
        out.append(f"Footprint design: {design_source}. With the 'auto' option the first footprint id in sorted "
                   "order is reported.")
    if spec_path:
        out.append(f"Analysis specification: {spec_path} (recorded in manifest.json).")
    return out


def record_counts(inputs, selection) -> dict:
    """Exact counts of the records read, by what became of them (private: printed, never published)."""
    recs, in_period, later = inputs.records, selection.in_period, selection.later
    in_unit = int((in_period & recs["la_code"].isin(selection.geo.unit_las[selection.geo.focus]).to_numpy()).sum())
    return {"in_unit": in_unit, "outside_unit": int(in_period.sum()) - in_unit,
            "earlier": int((~in_period & ~later).sum()), "later": int(later.sum()), "excluded": int(len(inputs.exclusions))}


def _may_name_records(message) -> bool:
    """True for an error message that can quote records: an exception's text (the fit failed), or any
    message naming rows or case ids. cdr's own reasons for leaving the model out (too few events or
    clusters, no completed reviews) are published."""
    if not message:
        return False
    text = str(message)
    return (text.startswith("the model could not be fitted") or "case_id" in text
            or re.search(r"\brows?\s+\d", text) is not None)


def _without_timings(obj):
    """``obj`` without wall-clock timings (keys ``timings_s``, ``elapsed_seconds``): the bundle is reproducible."""
    if isinstance(obj, dict):
        return {k: _without_timings(v) for k, v in obj.items() if k not in ("timings_s", "elapsed_seconds")}
    if isinstance(obj, list):
        return [_without_timings(v) for v in obj]
    return obj


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=_default))


def _default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if np.isnan(o) else float(o)
    if isinstance(o, (np.bool_,)):
        return bool(o)
    if isinstance(o, (pd.Timestamp, _dt.date)):
        return o.isoformat()
    if isinstance(o, pd.DataFrame):
        return o.to_dict("records")
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    if o is pd.NA or o is pd.NaT:
        return None
    return str(o)


def _manifest(inputs, selection, tables, protected, *, title, built, version, figures, overlapping, field_issues,
              public_warnings, n_private_warnings, record_counts) -> dict:
    """The bundle's ``manifest.json`` (without wall-clock timings)."""
    period, geo, threshold = inputs.period, selection.geo, int(inputs.threshold)
    labels, earlier, cover, la_table = inputs.labels, inputs.earlier, selection.cover, selection.la_table
    names, focus, level = geo.names, geo.focus, selection.level
    period_labels, trend_keys = selection.period_labels, selection.trend_keys
    protection, equations, cells, joint = protected.protection, protected.equations, protected.cells, protected.joint
    bundle, factor_info, info = tables.bundle, tables.factor_info, protected.info
    england_rate, england_rate_source = protected.england_rate, protected.england_rate_source
    exclusions, n_input, recs = inputs.exclusions, inputs.n_input, inputs.records
    later, in_period = selection.later, selection.in_period
    n_excl = len(exclusions)
    counts_public = public_record_counts(**record_counts, threshold=threshold)
    manifest = {
        "title": title,
        "created": None if built is None else built.isoformat(timespec="seconds"),   # SOURCE_DATE_EPOCH only
        "synthetic": protected.synthetic,
        "level": level, "unit": geo.code(focus), "unit_name": names[focus],
        "footprint_auto": level == "footprint" and str(selection.footprint) == "auto",
        "coverage": {**cover.to_dict(la_table),
                     "comparators_from_records": [names[u] for u in geo.comparators],
                     "comparators_from_published_figures": [names[u] for u in selection.uncovered_comparators],
                     "funnel_england_rate": None if england_rate is None else {
                         "value": round(float(england_rate), 3), "source": england_rate_source},
                     # months only: the exact first and last dates of death are dates of one child's death
                     "first_death": f"{selection.first_death:%Y-%m}", "last_death": f"{selection.last_death:%Y-%m}",
                     "partial_periods_left_out_of_trend": [period_label(k, calendar=period.calendar)
                                                           for k in selection.partial],
                     "note": selection.coverage_note},
        "period": {"label": period.label, "convention": "calendar" if period.calendar else "reporting",
                   "start": str(period.start.date()), "end": str(period.end.date()),
                   "trend_periods": [period_labels[k] for k in trend_keys]},
        "inputs": inputs.inputs,
        "design": None if labels is None else {
            "source": inputs.design_source, "n_footprints": len(selection.footprint_ids),
            "unassigned_las": list(labels.attrs.get("unassigned", [])),
            "auto_rule": "with footprint='auto' the first footprint_id in sorted (string) order is reported"},
        "spec": {"source": inputs.spec_path, "hash": inputs.spec_hash,
                 "file_sha256": (file_sha256(inputs.spec_path) if inputs.spec_path and pathlib.Path(inputs.spec_path).is_file()
                                 else None),
                 "content": _jsonable(inputs.spec), "threshold": threshold},
        "library": {"cdr_version": version, "pandas": pd.__version__, "numpy": np.__version__},
        "records": {
            # the reconciliation chain with no count from 1 to threshold-1 recoverable (the exact
            # counts are printed by the CLI and written to the private folder, never published)
            **counts_public,
            "excluded_by_field": (exclusion_counts(exclusions, threshold) if counts_public["excluded_invalid"] != "[c]"
                                  else {f: "[c]" for f in exclusion_counts(exclusions, threshold)}),
            "exclusions": "record-level details are in the private folder, not in this bundle" if n_excl else None,
            "not_used": {"date of death after the reporting period": counts_public["later_periods"]},
            "outside_unit_note": "outside_unit: records of the period outside the reported area; they count only "
                                 "towards comparators (region, England, funnel) that the records cover",
            "reconciles": int(n_input) == int(n_excl) + int(in_period.sum()) + int((~in_period & ~later).sum()) + int(later.sum()),
            # records (all years) kept and counted with one field set to "not recorded", by field; 1 to
            # threshold-1 shown as "[c]" like the tables
            "fields_not_recorded": {f: (k if k >= threshold else "[c]") for f, k in sorted(field_issues.items())},
        },
        "population": {"source": "ONS mid-year estimates, ages 0-17 (cdr.data)", "carried_forward_periods":
                       [period_labels[k] for k in selection.carried]},
        "tables": {name: {"title": i["title"], "count_columns": i["count_columns"], "csv": f"tables/{name}.csv"}
                   for name, i in info.items()},
        "figures": sorted(f"figures/{n}.png" for n in figures),
        "disclosure": {
            "method": protection.method, "threshold": threshold,
            "n_cells": int(len(cells)), "n_equations": int(len(equations)),
            "n_suppressed_primary": int(protection.cells["primary"].sum()),
            "n_suppressed_secondary": int(protection.cells["secondary"].sum()),
            "suppressed_cells": [
                {"cell": r.cell, "reason": "primary" if r.primary else (
                    "previous_release" if getattr(r, "previous_release", False) else "secondary")}
                for r in protection.cells.itertuples() if r.primary or r.secondary],
            "cells": [{"cell": c, "published": (None if np.isnan(v) else int(v)), **({"unpublished": True} if u else {})}
                      for c, v, u in zip(protection.cells["cell"], protection.cells["published"],
                                         protection.cells["unpublished"])],
            "unpublished_parts": {
                "note": "pieces of published LA/footprint/region/England totals that are not published themselves "
                        "(e.g. the LAs of a region outside the partnership): cells of the audited system of equations, "
                        "never shown",
                "parts": [{"cell": cid, "las": part["las"]} for cid, part in
                          ((c, bundle.geography()[1][c]) for c, u in
                           zip(protection.cells["cell"], protection.cells["unpublished"])
                           if u and c not in bundle.hidden)]},
            "ledger": {"file": "ledger.json", "release": joint["release"], "format": "cdr-release-ledger",
                       "earlier_releases": earlier.release_ids(),
                       "n_cells": joint["n_cells"], "n_equations": joint["n_equations"],
                       "note": "every count published or suppressed by this release and by the releases it was built "
                               "on, as equations over unknowns keyed measure|LAs|period|breakdown; build the next "
                               "release with --previous pointing at this bundle (docs/concepts/disclosure.md)"},
            "equations": [[t, list(p)] for t, p in equations],
            "certificate_result": protection.certificate.get("result") or ("pass" if protection.certificate.get("passed") else "fail"),
            "certificate": _jsonable(protection.certificate),
            "aggregation": None if getattr(bundle, "design_options", None) is None else {
                "table": "category_by_age_band",
                "rule": "designs compared by cells published after protecting the one-way and cross tables; "
                        "one-way cells count twice; ties go to the finer design",
                # the designs compared, without their counts of hidden or published cells (those of
                # the designs not chosen would narrow the unpublished finer cells)
                "options": _jsonable(bundle.design_options[["step", "design", "interior_cells", "chosen"]]
                                     .to_dict("records"))},
        },
        "factor_model": None if factor_info is None else _jsonable(factor_info),   # error made public above
        "left_out": _jsonable(protected.left_out),
        "trend": _jsonable({k: v for k, v in protected.trend_info.items() if k in ("text", "apc", "population_break")}),
        "overlapping_reports": overlapping,
    }
    if public_warnings or n_private_warnings:
        manifest["warnings"] = {"raised": list(public_warnings),
                                "in_private_folder": int(n_private_warnings),
                                "note": "warnings raised while building (also emitted); those about individual "
                                        "records or raised while reading them are in the private folder only"}
    return _without_timings(manifest)   # wall-clock timings differ between identical runs: never published


def _split_warnings(warned) -> tuple[list, list]:
    """Texts of the collected warnings: (publishable, private). ``warned`` holds ``(stage, category, text)``;
    every warning of the read stage describes records and is private, and so is any that names rows or case ids."""
    public, private = [], []
    for stage, category, text in warned:
        line = f"{category}: {text}"
        (private if stage == "read" or _may_name_records(text) else public).append(line)
    return public, private


class _WarningCollector:
    """Records every warning raised inside (tagged with ``stage``), then emits each distinct one again on exit.

    Nothing is hidden: the caller's own warning filters apply when they are emitted again, and
    the texts go into the report's notes (:func:`assemble_report`).
    """

    def __init__(self):
        self.caught = []     # (stage, category name, text) in order of first occurrence
        self._seen = set()
        self._pending = []

    @contextlib.contextmanager
    def stage(self, name):
        caught = []
        try:
            with warnings.catch_warnings(record=True) as caught:   # the caller's filters still apply
                yield
        finally:
            for w in caught:
                key = (w.category, str(w.message))
                if key not in self._seen:
                    self._seen.add(key)
                    self.caught.append((name, w.category.__name__, str(w.message)))
                    self._pending.append(w)

    def emit(self):
        """Emit again (once each) the warnings recorded so far."""
        pending, self._pending = self._pending, []
        for w in pending:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
