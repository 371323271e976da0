"""Shared record preparation for :mod:`cdr.factors`: derived columns, level keys, judgements, CIs.

Everything here works on a copy of the records; the caller's frame is never modified.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from cdr import rates
from cdr._validate import as_levels, one_of
from cdr.errors import ArgumentError, ArgumentTypeError, RecordValidationError
from cdr.schema import CATEGORIES, age_band

LEVELS = ("la", "footprint", "region", "nation")
LEVEL_KEYS = {"la": "la_code", "footprint": "footprint_id", "region": "region_code", "nation": "nation_code"}
ENGLAND_CODE = "E92000001"

# Canonical orders (contracts.md); the categories are cdr.schema's, the one source of truth.
CATEGORY_ORDER = tuple(CATEGORIES)
DOMAIN_ORDER = ("domain_child", "domain_social", "domain_physical", "domain_service")
DOMAIN_LABELS = {
    "domain_child": "Factors intrinsic to the child",
    "domain_social": "Social environment, family and parenting capacity",
    "domain_physical": "Physical environment",
    "domain_service": "Service provision",
}
AGE_BAND_ORDER = ("neonatal", "postneonatal", "1-4", "5-9", "10-14", "15-17")
SEX_ORDER = ("female", "male", "unknown")
MODIFIABLE_VALUES = ("yes", "no", "insufficient_information")
DOMAIN_LEVELS = ("not_available", "none", "unlikely", "may_have_contributed", "sufficient")
CONTRIBUTORY = ("may_have_contributed", "sufficient")
JUDGED_DOMAIN = ("none", "unlikely", "may_have_contributed", "sufficient")
_DOMAIN_CODES = {"0": "not_available", "1": "none", "1*": "unlikely", "2": "may_have_contributed",
                 "3": "sufficient"}
ORDERED = {
    "category": CATEGORY_ORDER,
    "age_band": AGE_BAND_ORDER,
    "sex": SEX_ORDER,
    "imd_quintile": (1, 2, 3, 4, 5),
    "imd_decile": tuple(range(1, 11)),
}


def check_level(level, caller):
    return LEVEL_KEYS[one_of(level, LEVELS, "level", caller)]


def _age_band(age_days):
    return pd.Series(np.asarray(age_band(np.asarray(age_days, dtype=float)), dtype=object))


def _design_map(design, caller):
    """la_code -> footprint_id from a FootprintDesign, a Series or a DataFrame."""
    if design is None:
        raise ArgumentError(
            f"{caller}: level or cluster 'footprint' needs design=: a FootprintDesign, e.g. "
            "cdr.footprints.load_design(NAME), or a Series/DataFrame mapping la_code -> footprint_id."
        )
    labels = getattr(design, "labels", design)
    if isinstance(labels, pd.DataFrame):
        if {"la_code", "footprint_id"} <= set(labels.columns):
            labels = labels.set_index("la_code")["footprint_id"]
        elif "footprint_id" in labels.columns:
            labels = labels["footprint_id"]
        else:
            raise ArgumentError(f"{caller}: a design table needs columns 'la_code' and 'footprint_id'; "
                             f"got {list(labels.columns)}.")
    if not isinstance(labels, pd.Series):
        raise ArgumentTypeError(f"{caller}: design must be a FootprintDesign, Series or DataFrame; got "
                        f"{type(design).__name__}.")
    return labels.astype(str)


def _raise_rows(caller, records, bad, column, values, problem, hint):
    """Raise a RecordValidationError listing the first ten offending rows (row, case_id, value)."""
    rows = records.loc[bad.to_numpy()]
    ids = rows["case_id"] if "case_id" in rows else pd.Series(rows.index, index=rows.index)
    lines = [f"  row {i}  case_id={c}  {column}={v!r}" for i, c, v in
             zip(rows.index[:10], ids.iloc[:10], values[bad].iloc[:10])]
    more = f"\n  ... and {int(bad.sum()) - 10} more" if bad.sum() > 10 else ""
    raise RecordValidationError(f"{caller}: {int(bad.sum())} of {len(records):,} records {problem}:\n"
                                + "\n".join(lines) + more + f"\n{hint}")


def _map_or_raise(codes, mapping, what, caller, records):
    mapped = codes.map(mapping)
    bad = mapped.isna() & codes.notna()
    if bad.any():
        _raise_rows(caller, records, bad, "la_code", codes, f"have an la_code not in the {what}",
                    f"Check the geography vintage, or use a {what} that covers every LA in the records.")
    return mapped


def attach_keys(rec, keys, *, design, vintage, caller):
    """Add the level key columns named in `keys` (la_code always present) to `rec` in place."""
    if "footprint_id" in keys and "footprint_id" not in rec:
        rec["footprint_id"] = _map_or_raise(rec["la_code"].astype(str), _design_map(design, caller),
                                            "footprint design", caller, rec)
    if "region_code" in keys and "region_code" not in rec:
        from cdr.data import lookup

        table = lookup(vintage)
        rec["region_code"] = _map_or_raise(rec["la_code"].astype(str),
                                           table.set_index("la_code")["region_code"],
                                           f"{vintage} LA lookup", caller, rec)
    if "nation_code" in keys and "nation_code" not in rec:
        rec["nation_code"] = ENGLAND_CODE
    return rec


def _bad_values(rec, column, allowed, caller):
    values = rec[column]
    bad = values.notna() & ~values.isin(allowed)
    if bad.any():
        _raise_rows(caller, rec, bad, column, values, f"have an invalid {column!r}",
                    f"Allowed: {', '.join(map(str, allowed))} (or missing). Validate with cdr.read_records first.")


def prepare(records, *, caller, need=(), design=None, vintage=2023, domains=DOMAIN_ORDER):
    """A copy of `records` with ``reviewed``, ``age_band``, ``imd_quintile``, canonical domain levels
    and the level keys in `need`; categorical columns get their canonical order."""
    if not isinstance(records, pd.DataFrame):
        raise ArgumentTypeError(f"{caller}: records must be a pandas DataFrame (see cdr.read_records); got "
                        f"{type(records).__name__}.")
    rec = records.copy()
    if "reviewed" not in rec:
        if "review_completed" not in rec:
            raise RecordValidationError(
                f"{caller}: records need 'review_completed' (NaT while the review is pending) or a "
                "boolean 'reviewed' column; read them with cdr.read_records.")
        rec["reviewed"] = rec["review_completed"].notna()
    rec["reviewed"] = rec["reviewed"].fillna(False).astype(bool)
    if "age_band" not in rec and "age_days" in rec:
        rec["age_band"] = _age_band(rec["age_days"]).to_numpy()
    if "imd_quintile" not in rec and "imd_decile" in rec:
        dec = pd.to_numeric(rec["imd_decile"], errors="coerce")
        rec["imd_quintile"] = ((dec + 1) // 2).astype("Int64")
    if "modifiable" in rec:
        rec["modifiable"] = rec["modifiable"].astype(object).where(rec["modifiable"].notna(), None)
        _bad_values(rec, "modifiable", MODIFIABLE_VALUES, caller)
    for dom in domains:
        if dom in rec:
            col = rec[dom].astype(object).where(rec[dom].notna(), None)
            coded = col.map(_DOMAIN_CODES)  # Form C codes '0'..'3' (as text) to canonical levels
            rec[dom] = coded.where(coded.notna(), col).astype(object)
            _bad_values(rec, dom, DOMAIN_LEVELS, caller)
    keys = [LEVEL_KEYS[k] if k in LEVEL_KEYS else k for k in need]
    missing_la = [k for k in keys if k in LEVEL_KEYS.values() and k != "nation_code"]
    if missing_la and "la_code" not in rec:
        raise RecordValidationError(f"{caller}: records need 'la_code' to report by {missing_la}.")
    attach_keys(rec, keys, design=design, vintage=vintage, caller=caller)
    return rec


def ordered_categorical(series, name, observed_only=False):
    """`series` as a Categorical in the canonical order for `name` (all levels unless observed_only)."""
    order = CATEGORY_ORDER if name == "category" else ORDERED.get(name)
    if order is None:
        return series
    values = series.astype(object).where(series.notna(), None)
    if name in ("imd_quintile", "imd_decile"):
        values = pd.to_numeric(values, errors="coerce").astype("Int64")
    present = set(values.dropna().unique())
    extra = sorted(present - set(order), key=str)
    cats = [c for c in order if (not observed_only or c in present)] + extra
    return pd.Categorical(values, categories=cats)


def ci_columns(conf):
    """Names of the CI columns for one or more confidence levels (:func:`cdr.rates.ci_columns`)."""
    return rates.ci_columns(check_conf(conf, "ci_columns"))


def odds_ratio_ci_columns(conf):
    """``odds_ratio_lower_<level>``, ``odds_ratio_upper_<level>`` for one level (:func:`cdr.rates.ci_columns`)."""
    return rates.ci_columns(float(conf), estimate="odds_ratio")


def check_conf(conf, caller):
    """Confidence levels as a tuple of floats in (0, 1) (the package's one validator)."""
    return as_levels(conf, caller)


def wilson(count, n, conf):
    """Wilson (1927) score limits of count/n on the 0-1 scale (:func:`cdr.rates.wilson_ci`); NaN where n == 0."""
    return rates.wilson_ci(np.asarray(count, dtype=float), np.asarray(n, dtype=float), conf)


def is_synthetic(records):
    if "synthetic" in records:
        return bool(pd.Series(records["synthetic"]).fillna(False).astype(bool).any())
    return bool(getattr(records, "attrs", {}).get("synthetic", False))
