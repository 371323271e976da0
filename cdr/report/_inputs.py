"""Inputs of a report: records, a footprint design, an analysis spec, and their provenance."""
from __future__ import annotations

import hashlib
import os
import pathlib

import pandas as pd

from cdr import schema
from cdr.errors import ArgumentError, ArgumentTypeError

__all__ = ["load_records", "design_labels", "load_spec", "file_sha256", "AGE_BANDS", "SEXES", "CATEGORY_ORDER",
           "DOMAINS", "IMD_QUINTILES"]

# Report levels: every counted death falls in one level of each, so tables add up to the totals;
# "not recorded" levels hold deaths whose optional field was not usable (cdr.schema, lenient mode).
AGE_BANDS = (*schema.AGE_BANDS, schema.AGE_NOT_RECORDED)
AGE_BAND_LABELS = {**schema.AGE_BANDS, schema.AGE_NOT_RECORDED: "Age not recorded"}
SEXES = tuple(schema.SEXES)
CATEGORY_ORDER = (*schema.CATEGORIES, schema.NOT_RECORDED)
CATEGORY_LABELS = {**schema.CATEGORIES, schema.NOT_RECORDED: "Category not recorded"}
DOMAINS = tuple(schema.DOMAINS)
DOMAIN_LABELS = dict(schema.DOMAINS)
CONTRIBUTORY = tuple(schema.CONTRIBUTORY_LEVELS)
ETHNICITY_LABELS = dict(schema.ETHNICITIES)
DEFAULT_DESIGN = "england_min60"   # catalog design used when only a footprint id is given
IMD_QUINTILES = ("1", "2", "3", "4", "5", "unknown")
IMD_QUINTILE_LABELS = {"1": "1 (most deprived)", "2": "2", "3": "3", "4": "4", "5": "5 (least deprived)",
                       "unknown": "Not known"}


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_records(source, *, mode: str = "strict", columns=None, values=None, sheet=None):
    """Records, exclusions table, input count and field-issues table, validated by :mod:`cdr.schema`.

    ``source``: a path (CSV, TSV, Excel or Parquet), a DataFrame, or a ``ReadResult`` already read;
    ``columns``, ``values`` and ``sheet`` are passed to :func:`cdr.read_records` (ignored for a ReadResult).
    In lenient mode every death whose core fields are usable is kept (bad optional values are "not recorded").
    """
    if mode not in ("strict", "lenient"):
        raise ArgumentError(f'build_report: mode must be "strict" or "lenient"; got {mode!r}')
    if hasattr(source, "records") and hasattr(source, "exclusions") and not isinstance(source, pd.DataFrame):
        return _unpack(source)
    if isinstance(source, (str, os.PathLike)) and not pathlib.Path(source).is_file():
        what = "is a folder, not a file" if pathlib.Path(source).is_dir() else "not found"
        raise ArgumentError(f"records file {what}: {str(source)!r}. Give the path of a CSV, TSV, Excel or Parquet file "
                       "of CDR records.")
    if isinstance(source, pd.DataFrame):
        result = schema.validate_records(source, mode=mode, columns=columns, values=values)
    else:
        result = schema.read_records(source, mode=mode, columns=columns, values=values, sheet=sheet)
    return _unpack(result)


def _unpack(result):
    """``(records, exclusions, n_input)``; the records carry the field-issue counts in
    ``records.attrs["field_issues"]`` (field -> records set to not recorded) for the report to state."""
    records, exclusions = result.records.copy(), result.exclusions.copy()
    n_input = getattr(result, "n_input", len(records) + len(exclusions))
    counts = result.issue_counts() if hasattr(result, "issue_counts") else None
    records.attrs["field_issues"] = ({} if counts is None else
                                     {f: int(k) for f, k in zip(counts["field"], counts["records"])})
    issues = getattr(result, "issues", None)
    return records, exclusions, int(n_input), (issues.copy() if issues is not None else pd.DataFrame())


def design_labels(design) -> tuple[pd.Series, dict, str]:
    """``la_code -> footprint_id`` Series, footprint names (may be empty) and a description of the source."""
    from cdr import footprints as fp  # layer 3; imported here so `import cdr.report` stays light

    source = "given"
    if design is None:
        design = fp.load_design(DEFAULT_DESIGN)
        source = f"catalog design {DEFAULT_DESIGN!r} (footprints/{DEFAULT_DESIGN}.csv)"
    if isinstance(design, (str, os.PathLike)):
        source = str(design)
        design = fp.load_design(design)
    names = {}
    if hasattr(design, "labels"):
        labels = design.labels
        table = getattr(design, "columns", None)  # extra per-LA columns (design.table() is slow)
        if isinstance(table, pd.DataFrame) and "footprint_name" in table.columns:
            ids = (table["footprint_id"] if "footprint_id" in table.columns
                   else table["la_code"].map(pd.Series(labels)) if "la_code" in table.columns else None)
            if ids is not None:
                ok = ids.notna() & table["footprint_name"].notna()
                names = dict(zip(ids[ok].astype(str), table.loc[ok, "footprint_name"].astype(str)))
        if isinstance(labels, pd.DataFrame):
            design = labels
        else:
            return _check_labels(pd.Series(labels)), names, source
    if isinstance(design, pd.Series):
        return _check_labels(design), names, source
    if isinstance(design, pd.DataFrame):
        missing = {"la_code", "footprint_id"} - set(design.columns)
        if missing:
            raise ArgumentError(f"design table lacks column(s) {sorted(missing)}; it needs la_code and footprint_id.")
        if "footprint_name" in design.columns:
            names.update(dict(zip(design["footprint_id"].astype(str), design["footprint_name"].astype(str))))
        return _check_labels(design.set_index("la_code")["footprint_id"]), names, source
    raise ArgumentTypeError(f"design must be a FootprintDesign, a path, a DataFrame or a Series; got {type(design).__name__}")


def _check_labels(labels: pd.Series) -> pd.Series:
    from cdr.data import la_codes

    labels = labels.dropna().copy()
    labels.index = labels.index.astype(str)
    labels = labels.astype(str)
    labels.index.name, labels.name = "la_code", "footprint_id"
    unknown = sorted(set(labels.index) - set(la_codes(2023)))
    missing = sorted(set(la_codes(2023)) - set(labels.index))
    if unknown:
        from cdr.data import lookup

        by_name = {str(n).strip().casefold(): c for n, c in lookup(2023)[["la_name", "la_code"]].itertuples(index=False)}
        named = [f"{u} = {by_name[u.strip().casefold()]}" for u in unknown if u.strip().casefold() in by_name]
        hint = (f"these are LA names; use their ONS codes ({', '.join(named[:10])}; 'cdr data areas' lists them)" if named
                else "translate them first (cdr.data.translate_codes)")
        raise ArgumentError(f"design assigns LA code(s) not in the 2023 vintage: {unknown[:10]}; {hint}.")
    bad = sorted({v for v in labels if "|" in v})
    if bad:
        raise ArgumentError(f"footprint id(s) {bad[:5]} contain '|', which cdr reserves as a separator in its release "
                       "ledger; rename those footprints in the design file (e.g. replace '|' with '-').")
    labels.attrs["unassigned"] = missing   # a partial design: these LAs are in no footprint
    if labels.index.duplicated().any():
        dup = sorted(set(labels.index[labels.index.duplicated()]))
        raise ArgumentError(f"design assigns LA(s) {dup[:5]} to more than one footprint.")
    return labels.sort_index()


def load_spec(spec) -> tuple[dict, str | None, str | None]:
    """The resolved analysis spec (:func:`cdr.models.load_spec`; default the packaged ``annual``), its source and hash."""
    from cdr import models

    if isinstance(spec, (str, os.PathLike)) and not pathlib.Path(spec).exists() and (
            str(spec).endswith(".toml") or os.sep in str(spec)):
        raise ArgumentError(f"spec file not found: {str(spec)!r} (e.g. models/annual.toml).")
    resolved = models.load_spec("annual" if spec is None else spec)
    return resolved.to_dict(), getattr(resolved, "source", None), getattr(resolved, "hash", None)
