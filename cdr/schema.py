"""The child death review record: canonical columns, code lists, and validation.

One row per child death, as in the national child death review (CDR) forms. The canonical columns
(``docs/dev/contracts.md``):

==================  ==========================  ==================================================
column              type                        values
==================  ==========================  ==================================================
case_id             str                         unique, required
date_of_birth       datetime64 (optional)       not after the date of death
date_of_death       datetime64                  required; not in the future
age_days            int                         0 ... 6574 (under 18); derived from dates if absent
sex                 str                         ``male``, ``female``, ``unknown`` (required)
la_code             str                         upper-tier LA of residence, vintage of the reader
category            str                         a key of :data:`CATEGORIES` (required)
review_completed    datetime64 or NaT           NaT = review pending
modifiable          str or NA                   :data:`MODIFIABLE`; NA while pending
domain_child, ...   str or NA                   keys of :data:`DOMAIN_LEVELS` (four domains)
imd_decile          Int64                       1 (most deprived) ... 10, or NA
ethnicity           str                         keys of :data:`ETHNICITIES`
synthetic           bool                        True for generated records
==================  ==========================  ==================================================

:func:`read_records` (files) and :func:`validate_records` (DataFrames) apply every rule in
:data:`RULES` - the one table of validation rules - and add the derived columns ``age_band``,
``year``, ``reporting_year``, ``reporting_year_start`` and ``reviewed``.

Domain scale. The pre-2019 DfE Form C ("Analysis Proforma") scored each of the four domains 0, 1,
1*, 2 or 3; those codes and their wording are the canonical scale here. **The scale of the current
(post-2019) Child death analysis form could not be verified**: no copy of the form or of its level
wording could be retrieved (``cdr/_data/reference/national_figures_addendum.md`` section 1.1). Data
recorded on another scale can be read by passing ``level_map=`` (raw value -> canonical key), e.g.
``level_map={"0": "none", "1": "may_have_contributed", "2": "sufficient"}`` for a hypothetical
0/1/2 scale; check the mapping against your form before relying on it.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from cdr.errors import DataVintageWarning, RecordValidationError

__all__ = [
    "CATEGORIES",
    "DOMAINS",
    "DOMAIN_LEVELS",
    "DOMAIN_LEVEL_CODES",
    "CONTRIBUTORY_LEVELS",
    "MODIFIABLE",
    "SEXES",
    "ETHNICITIES",
    "AGE_BANDS",
    "AGE_BAND_DAYS",
    "MAX_AGE_DAYS",
    "RECORD_COLUMNS",
    "DERIVED_COLUMNS",
    "REQUIRED_COLUMNS",
    "RULES",
    "ReadResult",
    "contributory",
    "age_band",
    "reporting_year",
    "validate_records",
    "read_records",
    "to_file",
]

#: The 10 CDR categories of death, key -> label, in the usual (NCMD) hierarchical order.
#: Eight labels are confirmed verbatim in public sources; "Acute medical or surgical condition" and
#: "Chronic medical condition" complete the usual list but were not found verbatim.
CATEGORIES = {
    "abuse_neglect": "Deliberately inflicted injury, abuse or neglect",
    "suicide_self_harm": "Suicide or deliberate self-inflicted harm",
    "trauma_external": "Trauma and other external factors",
    "malignancy": "Malignancy",
    "acute_medical_surgical": "Acute medical or surgical condition",
    "chronic_medical": "Chronic medical condition",
    "chromosomal_genetic_congenital": "Chromosomal, genetic and congenital anomalies",
    "perinatal_neonatal": "Perinatal/neonatal event",
    "infection": "Infection",
    "sudden_unexpected_unexplained": "Sudden unexpected, unexplained death",
}

#: The four factor domains of the analysis form, column -> label.
DOMAINS = {
    "domain_child": "Factors intrinsic to the child",
    "domain_social": "Factors in social environment including family and parenting capacity",
    "domain_physical": "Factors in the physical environment",
    "domain_service": "Factors in service provision",
}

#: Canonical domain levels, key -> pre-2019 Form C wording (scale order).
DOMAIN_LEVELS = {
    "not_available": "Information not available",
    "none": "No factors identified",
    "unlikely": "Factors identified but are unlikely to have contributed to the death",
    "may_have_contributed": "Factors identified that may have contributed to vulnerability, ill-health or death",
    "sufficient": "Factors identified that provide a complete and sufficient explanation for the death",
}

#: Pre-2019 Form C codes -> canonical level keys.
DOMAIN_LEVEL_CODES = {"0": "not_available", "1": "none", "1*": "unlikely", "2": "may_have_contributed", "3": "sufficient"}

#: Levels that count as a contributory factor (:func:`contributory`).
CONTRIBUTORY_LEVELS = ("may_have_contributed", "sufficient")

#: The panel's overall judgement on modifiable factors (three states in the national returns).
MODIFIABLE = ("yes", "no", "insufficient_information")

SEXES = ("male", "female", "unknown")

#: ONS high-level ethnic groups (2021 Census wording), key -> label.
ETHNICITIES = {
    "white": "White",
    "mixed": "Mixed or Multiple ethnic groups",
    "asian": "Asian, Asian British or Asian Welsh",
    "black": "Black, Black British, Black Welsh, Caribbean or African",
    "other": "Other ethnic group",
    "unknown": "Not known",
}

#: Age bands, key -> label (NCMD bands under 1 year; 1-4, 5-9, 10-14, 15-17 years).
AGE_BANDS = {
    "neonatal": "Neonatal (under 28 days)",
    "postneonatal": "Post-neonatal (28-364 days)",
    "1-4": "1-4 years",
    "5-9": "5-9 years",
    "10-14": "10-14 years",
    "15-17": "15-17 years",
}

#: Half-open ranges of ``age_days`` per band. Year boundaries are whole years of 365.25 days
#: rounded to the day (365, 1826, 3653, 5479, 6575), so a band never depends on a date of birth.
AGE_BAND_DAYS = {
    "neonatal": (0, 28),
    "postneonatal": (28, 365),
    "1-4": (365, 1826),
    "5-9": (1826, 3653),
    "10-14": (3653, 5479),
    "15-17": (5479, 6575),
}

#: Largest allowed ``age_days`` (a child is under 18: 18 x 365.25 = 6574.5 days).
MAX_AGE_DAYS = 6574

RECORD_COLUMNS = (
    "case_id", "date_of_birth", "date_of_death", "age_days", "sex", "la_code", "category",
    "review_completed", "modifiable", *DOMAINS, "imd_decile", "ethnicity", "synthetic",
)
DERIVED_COLUMNS = ("age_band", "year", "reporting_year", "reporting_year_start", "reviewed")
#: Columns a record file must have; ``age_days`` may be replaced by ``date_of_birth``.
REQUIRED_COLUMNS = ("case_id", "date_of_death", "sex", "la_code", "category", "age_days")

#: Every validation rule, in the order they are checked: rule id -> (field, what is allowed).
RULES = {
    "missing_column": ("(file)", "required columns: case_id, date_of_death, sex, la_code, category, and age_days or date_of_birth"),
    "missing_value": ("(required field)", "a value is required (use sex='unknown' if not known)"),
    "bad_date": ("(date fields)", "a date as YYYY-MM-DD (ISO 8601) or DD/MM/YYYY"),
    "bad_number": ("age_days, imd_decile", "a whole number"),
    "duplicate_case_id": ("case_id", "each case_id once"),
    "unknown_la_code": ("la_code", "an upper-tier LA code of the vintage (cdr.data.la_codes(vintage)); "
                        "one-to-one recodes of the other vintage are translated"),
    "split_la_code": ("la_code", "a code of the vintage; a split LA (Cumbria 2023) cannot be assigned to a successor"),
    "unknown_category": ("category", "one of the 10 CDR categories (cdr.schema.CATEGORIES keys or labels)"),
    "unknown_sex": ("sex", "male, female or unknown"),
    "unknown_ethnicity": ("ethnicity", "white, mixed, asian, black, other or unknown (ONS high-level groups)"),
    "bad_imd_decile": ("imd_decile", "a whole number 1 (most deprived) to 10, or blank"),
    "bad_domain_level": ("domain_*", "a level of the scale: 0, 1, 1*, 2, 3 or cdr.schema.DOMAIN_LEVELS keys/labels"),
    "bad_modifiable": ("modifiable", "yes, no or insufficient_information, or blank while the review is pending"),
    "negative_age": ("age_days", "0 or more"),
    "age_18_or_over": ("age_days", f"below {MAX_AGE_DAYS + 1} days (age under 18)"),
    "death_before_birth": ("date_of_birth", "not after date_of_death"),
    "age_dates_mismatch": ("age_days", "equal to date_of_death - date_of_birth in days"),
    "future_date": ("(date fields)", "not after today"),
    "review_before_death": ("review_completed", "on or after date_of_death"),
    "outcome_without_review": ("modifiable, domain_*", "blank while review_completed is blank (review pending)"),
}

_ROW_NOTE = "row = 1-based data row (the header is not counted; in a CSV file it is on line row + 1)"


@dataclass
class ReadResult:
    """Validated records and the excluded rows; unpacks as ``records, exclusions = result``.

    Attributes
    ----------
    records : pandas.DataFrame
        Valid records, canonical and derived columns then any extra input columns, sorted by ``case_id``.
    exclusions : pandas.DataFrame
        One row per excluded input record: ``row`` (1-based data row), ``case_id``, ``field``,
        ``value``, ``reason`` (several problems joined with ``"; "``). Empty in strict mode.
    n_input : int
        Input rows. ``len(records) + len(exclusions) == n_input`` always.
    translated : pandas.DataFrame
        Records whose ``la_code`` was of the other vintage and was translated one-to-one:
        ``row``, ``case_id``, ``la_code_original``, ``la_code``.

    Examples
    --------
    North Yorkshire's 2021 code is translated to its 2023 code:

    >>> import warnings
    >>> raw = pd.DataFrame({"case_id": ["A1"], "date_of_death": ["2023-05-02"], "age_days": [3],
    ...                     "sex": ["F"], "la_code": ["E10000023"], "category": ["Perinatal/neonatal event"]})
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", DataVintageWarning)
    ...     result = validate_records(raw)
    >>> records, exclusions = result
    >>> result.n_input == len(records) + len(exclusions), result.translated["la_code"].tolist()
    (True, ['E06000065'])
    """

    records: pd.DataFrame
    exclusions: pd.DataFrame
    n_input: int
    translated: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["row", "case_id", "la_code_original", "la_code"]))

    def __iter__(self):
        return iter((self.records, self.exclusions))

    def __repr__(self) -> str:
        return (f"ReadResult({len(self.records):,} valid records, {len(self.exclusions):,} excluded, "
                f"{self.n_input:,} input rows, {len(self.translated):,} LA codes translated)")


# --------------------------------------------------------------------------------------------
# helpers on values


def contributory(levels):
    """True where a domain level counts as a contributory factor (``may_have_contributed``, ``sufficient``).

    Parameters
    ----------
    levels : str, array_like or pandas.Series
        Canonical level keys (or Form C codes ``"2"``/``"3"``); NA gives False.

    Returns
    -------
    bool, numpy.ndarray of bool or pandas.Series of bool (same index)

    Examples
    --------
    >>> contributory(["sufficient", "unlikely", None, "2"]).tolist()
    [True, False, False, True]
    >>> contributory("none")
    False
    """
    if isinstance(levels, str) or levels is None or (np.isscalar(levels) and not isinstance(levels, str)):
        return bool(pd.Series([levels]).pipe(_contributory_series).iloc[0])
    if isinstance(levels, pd.Series):
        return _contributory_series(levels)
    return _contributory_series(pd.Series(list(levels), dtype=object)).to_numpy()


def _contributory_series(s: pd.Series) -> pd.Series:
    keys = s.astype("string").str.strip().str.lower().map(lambda v: DOMAIN_LEVEL_CODES.get(v, v) if isinstance(v, str) else v)
    return keys.isin(CONTRIBUTORY_LEVELS).fillna(False).astype(bool)


def age_band(age_days):
    """Age band key (:data:`AGE_BANDS`) from age at death in days.

    Parameters
    ----------
    age_days : int, array_like or pandas.Series
        Age in completed days, 0-6574. NA, negative or >= 6575 give NA.

    Returns
    -------
    str (or None), numpy.ndarray of object, or pandas.Series of str (same index)

    Examples
    --------
    >>> age_band([0, 27, 28, 364, 365, 1826, 6574]).tolist()
    ['neonatal', 'neonatal', 'postneonatal', 'postneonatal', '1-4', '5-9', '15-17']
    >>> age_band(400)
    '1-4'
    """
    scalar = np.ndim(age_days) == 0 and not isinstance(age_days, pd.Series)
    s = age_days if isinstance(age_days, pd.Series) else pd.Series(np.atleast_1d(age_days))
    days = pd.to_numeric(s, errors="coerce").astype("Float64")
    edges = [lo for lo, _ in AGE_BAND_DAYS.values()] + [MAX_AGE_DAYS + 1]
    codes = pd.cut(days.astype(float), bins=edges, right=False, labels=list(AGE_BANDS))
    out = pd.Series(codes.astype(object), index=s.index).where(codes.notna(), None)
    if scalar:
        return out.iloc[0]
    if isinstance(age_days, pd.Series):
        return out.astype("str").where(out.notna())
    return out.to_numpy()


def reporting_year(dates) -> pd.DataFrame:
    """CDR reporting year (1 April - 31 March) of each date.

    Parameters
    ----------
    dates : date-like, array_like or pandas.Series
        Dates (of death). NaT gives NA.

    Returns
    -------
    pandas.DataFrame
        ``reporting_year`` (str, e.g. ``"2019-20"``) and ``reporting_year_start`` (Int64, e.g. 2019),
        one row per date (index of a Series input kept).

    Examples
    --------
    >>> reporting_year(["2020-03-31", "2020-04-01"])
      reporting_year  reporting_year_start
    0        2019-20                  2019
    1        2020-21                  2020
    """
    index = dates.index if isinstance(dates, pd.Series) else None
    d = pd.to_datetime(pd.Series(np.atleast_1d(np.asarray(dates, dtype=object)) if index is None else dates.to_numpy(),
                                 index=index), errors="coerce")
    start = (d.dt.year - (d.dt.month < 4).astype(int)).astype("Int64")
    label = start.astype("string") + "-" + ((start + 1) % 100).astype("string").str.zfill(2)
    return pd.DataFrame({"reporting_year": label.astype(object).where(start.notna(), None).astype("str").where(start.notna()),
                         "reporting_year_start": start})


# --------------------------------------------------------------------------------------------
# synonyms


def _norm(text: str) -> str:
    """Lower case; every run of non-alphanumerics (except '*') becomes one space."""
    return re.sub(r"[^0-9a-z*]+", " ", str(text).lower()).strip()


def _synonyms(canonical, extra=()) -> dict:
    table = {}
    for key, label in canonical:
        table[_norm(key)] = key
        table[_norm(label)] = key
    for raw, key in extra:
        table[_norm(raw)] = key
    return table


_CATEGORY_SYNONYMS = _synonyms(
    CATEGORIES.items(),
    [
        ("deliberately inflicted injury abuse or neglect", "abuse_neglect"),
        ("abuse or neglect", "abuse_neglect"),
        ("suicide", "suicide_self_harm"),
        ("trauma", "trauma_external"),
        ("trauma and other external factors including medical device", "trauma_external"),
        ("acute medical condition", "acute_medical_surgical"),
        ("chromosomal genetic congenital anomalies", "chromosomal_genetic_congenital"),
        ("congenital anomalies", "chromosomal_genetic_congenital"),
        ("perinatal neonatal events", "perinatal_neonatal"),
        ("perinatal neonatal", "perinatal_neonatal"),
        ("sudden unexpected unexplained deaths", "sudden_unexpected_unexplained"),
        ("sudden unexpected unexplained", "sudden_unexpected_unexplained"),
    ],
)
_LEVEL_SYNONYMS = _synonyms(
    DOMAIN_LEVELS.items(),
    [*DOMAIN_LEVEL_CODES.items(), ("0.0", "not_available"), ("1.0", "none"), ("2.0", "may_have_contributed"),
     ("3.0", "sufficient"), ("information not available", "not_available"), ("not available", "not_available"),
     ("no factors identified", "none"), ("unlikely to have contributed", "unlikely"),
     ("may have contributed", "may_have_contributed"), ("complete and sufficient explanation", "sufficient")],
)
_MODIFIABLE_SYNONYMS = _synonyms(
    [(k, k) for k in MODIFIABLE],
    [("y", "yes"), ("true", "yes"), ("modifiable", "yes"), ("modifiable factors identified", "yes"),
     ("n", "no"), ("false", "no"), ("not modifiable", "no"), ("no modifiable factors identified", "no"),
     ("insufficient information", "insufficient_information"), ("not enough information", "insufficient_information"),
     ("insufficient information to determine", "insufficient_information")],
)
_SEX_SYNONYMS = _synonyms(
    [(k, k) for k in SEXES],
    [("m", "male"), ("boy", "male"), ("f", "female"), ("girl", "female"), ("u", "unknown"), ("not known", "unknown"),
     ("not stated", "unknown"), ("indeterminate", "unknown")],
)
_ETHNICITY_SYNONYMS = _synonyms(
    ETHNICITIES.items(),
    [("white british", "white"), ("mixed multiple ethnic groups", "mixed"), ("mixed or multiple", "mixed"),
     ("asian or asian british", "asian"), ("asian british", "asian"), ("black or black british", "black"),
     ("black african caribbean or black british", "black"), ("black british", "black"), ("other", "other"),
     ("other ethnic groups", "other"), ("any other ethnic group", "other"), ("not stated", "unknown"),
     ("unknown", "unknown"), ("refused", "unknown")],
)
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


# --------------------------------------------------------------------------------------------
# reading


def read_records(source, *, mode: str = "strict", vintage: int = 2023, level_map=None, today=None) -> ReadResult:
    """Read child death records from a file or DataFrame and validate them (see :func:`validate_records`).

    Parameters
    ----------
    source : str, path or pandas.DataFrame
        A ``.csv`` (UTF-8, header row), ``.parquet`` or ``.xlsx``/``.xls`` file (first sheet), or a DataFrame.
        Every cell of a CSV is read as text and parsed by the rules, so nothing is coerced silently.
    mode, vintage, level_map, today
        As in :func:`validate_records`.

    Returns
    -------
    ReadResult

    Raises
    ------
    RecordValidationError
        Strict mode, any invalid record; either mode, a missing required column.

    Examples
    --------
    A CSV file with one valid record and one with an unknown LA code, read leniently:

    >>> import os, tempfile
    >>> raw = pd.DataFrame({"case_id": ["A1", "A2"], "date_of_death": ["2021-05-02", "2021-06-01"],
    ...                     "age_days": [3, 40], "sex": ["F", "M"], "la_code": ["E06000001", "E99999999"],
    ...                     "category": ["Perinatal/neonatal event", "Perinatal/neonatal event"]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "deaths.csv")
    ...     raw.to_csv(path, index=False)
    ...     records, exclusions = read_records(path, mode="lenient")
    >>> records["case_id"].tolist(), exclusions[["row", "case_id", "field"]].values.tolist()
    (['A1'], [[2, 'A2', 'la_code']])
    """
    if isinstance(source, pd.DataFrame):
        frame = source
    else:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"read_records: no such file: {path}")
        suffix = path.suffix.lower()
        if suffix in (".csv", ".txt"):
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=["", "NA", "N/A", "NaN", "null"])
        elif suffix == ".parquet":
            try:
                frame = pd.read_parquet(path)
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise ImportError("read_records: reading Parquet needs pyarrow: pip install 'cdr[parquet]'") from exc
        elif suffix in (".xlsx", ".xlsm", ".xls"):
            frame = pd.read_excel(path, sheet_name=0, dtype=object)
        else:
            raise ValueError(f"read_records: cannot tell the format of {path.name!r}; use .csv, .parquet or .xlsx")
    return validate_records(frame, mode=mode, vintage=vintage, level_map=level_map, today=today)


def to_file(records: pd.DataFrame, path) -> Path:
    """Write records to a ``.csv`` (dates as YYYY-MM-DD, no index) or ``.parquet`` file, by extension.

    The ``synthetic`` column travels with the records, so synthetic files stay marked. Files
    written here read back unchanged with :func:`read_records`.

    Parameters
    ----------
    records : pandas.DataFrame
        Records (e.g. from :func:`read_records` or :func:`cdr.synthetic.generate_records`).
    path : str or path
        Destination; ``.parquet`` needs the ``pyarrow`` package (``pip install 'cdr[parquet]'``).

    Returns
    -------
    pathlib.Path
        The path written.

    Examples
    --------
    >>> import tempfile
    >>> raw = pd.DataFrame({"case_id": ["A1"], "date_of_death": ["2021-05-02"], "age_days": [3],
    ...                     "sex": ["F"], "la_code": ["E06000001"], "category": ["Perinatal/neonatal event"]})
    >>> records = validate_records(raw).records
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = to_file(records, Path(tmp) / "deaths.csv")
    ...     back = read_records(path).records
    >>> path.name, back.equals(records)
    ('deaths.csv', True)
    """
    from cdr.errors import CdrError

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        records.to_csv(path, index=False, date_format="%Y-%m-%d")
    elif suffix == ".parquet":
        import importlib.util

        if importlib.util.find_spec("pyarrow") is None:
            raise CdrError("writing Parquet needs the pyarrow package: pip install 'cdr[parquet]' (or write a .csv)")
        records.to_parquet(path, index=False)
    else:
        raise CdrError(f"cannot tell the format of {path.name!r} from its extension; use .csv or .parquet")
    return path


def validate_records(frame: pd.DataFrame, *, mode: str = "strict", vintage: int = 2023, today=None,
                     level_map=None) -> ReadResult:
    """Validate child death records and return them in canonical form with derived columns.

    Every rule of :data:`RULES` is checked on every row (vectorised); nothing is dropped silently.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per death. Column names are matched after lower-casing and turning spaces and
        hyphens into underscores. Values may use keys or labels, case-insensitively: category keys
        or labels (:data:`CATEGORIES`), Form C codes ``0``/``1``/``1*``/``2``/``3`` or level
        labels, ``Yes``/``No``/``Insufficient information``, ``M``/``F``, ONS ethnic group names.
        Dates as ``YYYY-MM-DD`` or UK ``DD/MM/YYYY``. The input is not modified.
    mode : {"strict", "lenient"}
        Strict raises on any invalid record; lenient returns the valid records and an exclusions table.
    vintage : {2023, 2021}
        Geography vintage of ``la_code``. Codes of the other vintage are translated where the change
        is one-to-one (North Yorkshire and Somerset recoded in 2023; Buckinghamshire 2020), listed in
        ``ReadResult.translated`` with a :class:`~cdr.errors.DataVintageWarning`; a split LA
        (Cumbria for 2023, Northamptonshire) is an error, since the successor is unknown.
    today : date-like, optional
        Dates after this are "in the future"; default: today's date.
    level_map : dict, optional
        Raw domain value -> canonical level key (:data:`DOMAIN_LEVELS`), applied before the built-in
        synonyms: use it for a scale other than the pre-2019 Form C scale.

    Returns
    -------
    ReadResult
        ``records`` sorted by ``case_id``: canonical columns (:data:`RECORD_COLUMNS`), derived columns
        (:data:`DERIVED_COLUMNS`: ``age_band``, ``year`` - calendar year of death -, ``reporting_year``,
        ``reporting_year_start``, ``reviewed``), then any other input columns unchanged.

    Raises
    ------
    RecordValidationError
        Its ``.errors`` has one row per problem: ``row``, ``case_id``, ``field``, ``value``, ``rule``,
        ``reason``. ``row`` is the 1-based data row: the header is not counted, so row 1 is the first
        record (line 2 of a CSV file, sheet row 2 of an Excel file, ``frame.iloc[0]``).

    Examples
    --------
    >>> raw = pd.DataFrame({"case_id": ["A1"], "date_of_death": ["2021-05-02"], "age_days": [3],
    ...                     "sex": ["F"], "la_code": ["E06000001"], "category": ["Perinatal/neonatal event"]})
    >>> records, exclusions = validate_records(raw)
    >>> records.loc[0, ["category", "sex", "age_band", "reporting_year"]].tolist()
    ['perinatal_neonatal', 'female', 'neonatal', '2021-22']
    """
    if mode not in ("strict", "lenient"):
        raise ValueError(f"validate_records: mode must be 'strict' or 'lenient'; got {mode!r}")
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"validate_records: expected a pandas DataFrame; got {type(frame).__name__}")
    from cdr import data as _data

    if vintage not in _data.VINTAGES:
        raise ValueError(f"validate_records: vintage must be one of {_data.VINTAGES}; got {vintage!r}")
    today = pd.Timestamp.today().normalize() if today is None else pd.Timestamp(today).normalize()
    df = frame.copy()
    df.columns = [re.sub(r"[\s\-]+", "_", str(c).strip().lower()) for c in df.columns]
    df = df.reset_index(drop=True)
    n = len(df)
    _check_columns(df, n)

    row = pd.Series(np.arange(1, n + 1), dtype="int64")
    case_id = _text(df["case_id"])
    problems = []

    def add(mask, field_name, values, rule, reason):
        mask = pd.Series(np.asarray(mask, dtype=bool))
        if mask.any():
            vals = (pd.Series(values).reset_index(drop=True) if isinstance(values, (pd.Series, np.ndarray))
                    else pd.Series([values] * n, dtype=object))
            reasons = pd.Series(reason).reset_index(drop=True) if not isinstance(reason, str) else pd.Series([reason] * n)
            problems.append(pd.DataFrame({
                "row": row[mask].to_numpy(), "case_id": case_id[mask].to_numpy(), "field": field_name,
                "value": vals[mask].astype(object).map(_show).to_numpy(), "rule": rule,
                "reason": reasons[mask].to_numpy(),
            }))

    out = pd.DataFrame({"case_id": case_id})

    # required values
    for col in ("case_id", "date_of_death", "sex", "la_code", "category"):
        blank = _text(df[col]).isna()
        add(blank, col, None, "missing_value", RULES["missing_value"][1] if col == "sex" else "a value is required")

    # dates
    for col in ("date_of_birth", "date_of_death", "review_completed"):
        raw = df[col] if col in df else pd.Series([None] * n, dtype=object)
        parsed, bad = _parse_dates(raw)
        add(bad, col, raw, "bad_date", "allowed: " + RULES["bad_date"][1])
        add(parsed > today, col, parsed.dt.strftime("%Y-%m-%d"), "future_date", f"not after today ({today:%Y-%m-%d})")
        out[col] = parsed
    dob, dod, rc = out["date_of_birth"], out["date_of_death"], out["review_completed"]

    # numbers
    if "age_days" in df:
        age, bad = _parse_int(df["age_days"])
        add(bad, "age_days", df["age_days"], "bad_number", "allowed: a whole number of days")
    else:
        age = pd.Series(pd.NA, index=df.index, dtype="Int64")
    from_dates = (dod - dob).dt.days.astype("Int64")
    have_both = age.notna() & from_dates.notna()
    add(have_both & (age != from_dates).fillna(False), "age_days", age,
        "age_dates_mismatch", "must equal date_of_death - date_of_birth = " + from_dates.astype("string").fillna("") + " days")
    need_age = age.isna() & dob.isna() & (~_text(df["age_days"]).notna() if "age_days" in df else True)
    add(need_age, "age_days", None, "missing_value", "a value is required (or a date_of_birth)")
    age = age.fillna(from_dates)
    add((age < 0).fillna(False) & dob.isna(), "age_days", age, "negative_age", "allowed: " + RULES["negative_age"][1])
    add((from_dates < 0).fillna(False), "date_of_birth", dob.dt.strftime("%Y-%m-%d"), "death_before_birth",
        "must not be after date_of_death (" + dod.dt.strftime("%Y-%m-%d").fillna("") + ")")
    over = (age > MAX_AGE_DAYS).fillna(False)
    eighteenth = dob + pd.DateOffset(years=18)
    over_by_dates = (dod >= eighteenth).fillna(False) & ~over
    add(over, "age_days", age, "age_18_or_over", "allowed: " + RULES["age_18_or_over"][1])
    add(over_by_dates, "date_of_birth", dob.dt.strftime("%Y-%m-%d"), "age_18_or_over",
        "the child was 18 or over at date_of_death (" + dod.dt.strftime("%Y-%m-%d").fillna("") + ")")
    out["age_days"] = age

    # duplicates
    dup = case_id.notna() & case_id.duplicated(keep=False)
    if dup.any():
        rows_of = row[dup].groupby(case_id[dup]).agg(lambda r: ", ".join(map(str, r)))
        add(dup, "case_id", case_id, "duplicate_case_id", "appears more than once (rows " + case_id.map(rows_of).fillna("") + ")")

    # codes
    la, la_problems, translated = _check_la(_text(df["la_code"]).str.upper(), vintage, _data)
    for rule, (mask, reason) in la_problems.items():
        add(mask, "la_code", df["la_code"], rule, reason)
    out["la_code"] = la
    for col, table, rule, allowed in (
        ("sex", _SEX_SYNONYMS, "unknown_sex", RULES["unknown_sex"][1]),
        ("category", _CATEGORY_SYNONYMS, "unknown_category", "not one of the 10 CDR categories (cdr.schema.CATEGORIES)"),
        ("ethnicity", _ETHNICITY_SYNONYMS, "unknown_ethnicity", RULES["unknown_ethnicity"][1]),
        ("modifiable", _MODIFIABLE_SYNONYMS, "bad_modifiable", RULES["bad_modifiable"][1]),
    ):
        raw = df[col] if col in df else pd.Series([None] * n, dtype=object)
        mapped, bad = _map_values(raw, table)
        add(bad, col, raw, rule, allowed if allowed.startswith("not ") else "allowed: " + allowed)
        out[col] = mapped
    out["ethnicity"] = out["ethnicity"].fillna("unknown")

    level_table = dict(_LEVEL_SYNONYMS)
    if level_map:
        unknown_targets = sorted({str(v) for v in level_map.values()} - set(DOMAIN_LEVELS))
        if unknown_targets:
            raise ValueError(f"validate_records: level_map values must be keys of cdr.schema.DOMAIN_LEVELS "
                             f"{list(DOMAIN_LEVELS)}; got {unknown_targets}")
        level_table.update({_norm(k): v for k, v in level_map.items()})
    any_domain = pd.Series(False, index=df.index)
    for col in DOMAINS:
        raw = df[col] if col in df else pd.Series([None] * n, dtype=object)
        mapped, bad = _map_values(raw, level_table)
        add(bad, col, raw, "bad_domain_level", "allowed: " + RULES["bad_domain_level"][1] + (" or a level_map key" if level_map else ""))
        out[col] = mapped
        any_domain |= _text(raw).notna()

    raw_imd = df["imd_decile"] if "imd_decile" in df else pd.Series([None] * n, dtype=object)
    imd, bad = _parse_int(raw_imd)
    add(bad | ((imd < 1) | (imd > 10)).fillna(False), "imd_decile", raw_imd, "bad_imd_decile", "allowed: " + RULES["bad_imd_decile"][1])
    out["imd_decile"] = imd.where((imd >= 1) & (imd <= 10))

    # review consistency
    pending = rc.isna() & ~_text(df["review_completed"] if "review_completed" in df else pd.Series([None] * n)).notna()
    add(pending & _text(df["modifiable"] if "modifiable" in df else pd.Series([None] * n)).notna(), "modifiable",
        df["modifiable"] if "modifiable" in df else None, "outcome_without_review",
        "set on a case with no review_completed date (blank while the review is pending)")
    for col in DOMAINS:
        if col in df:
            add(pending & _text(df[col]).notna(), col, df[col], "outcome_without_review",
                "set on a case with no review_completed date (blank while the review is pending)")
    add((rc < dod).fillna(False), "review_completed", rc.dt.strftime("%Y-%m-%d"), "review_before_death",
        "must not be before date_of_death (" + dod.dt.strftime("%Y-%m-%d").fillna("") + ")")

    if "synthetic" in df:
        syn_text = _text(df["synthetic"]).str.lower()
        syn = syn_text.isin(list(_TRUE))
        add(syn_text.notna() & ~syn_text.isin(list(_TRUE | _FALSE)), "synthetic", df["synthetic"], "bad_number",
            "allowed: True or False")
        out["synthetic"] = syn.astype(bool)
    else:
        out["synthetic"] = False

    errors = (pd.concat(problems, ignore_index=True) if problems
              else pd.DataFrame(columns=["row", "case_id", "field", "value", "rule", "reason"]))
    errors = errors.sort_values(["row", "field"], kind="stable", ignore_index=True)
    bad_rows = set(errors["row"].tolist())

    if len(errors) and mode == "strict":
        raise RecordValidationError(_message(errors, n, vintage), errors=errors)

    from cdr.fields import normalise_fields  # optional fields (issue 15): bad value -> not_recorded, reported
    df, field_issues = normalise_fields(df, case_id=case_id)
    records = _finish(out, df, ~row.isin(bad_rows))
    records.attrs["field_issues"] = field_issues[~field_issues["row"].isin(bad_rows)].reset_index(drop=True)
    exclusions = _exclusions(errors)
    trans = translated[~translated["row"].isin(bad_rows)].copy()
    trans["case_id"] = case_id[trans["row"] - 1].to_numpy()
    trans = trans[["row", "case_id", "la_code_original", "la_code"]].reset_index(drop=True)
    if len(trans):
        pairs = trans.groupby(["la_code_original", "la_code"]).size()
        warnings.warn(
            f"{len(trans):,} record(s) had LA codes of another vintage, translated one-to-one to the {vintage} vintage: "
            + ", ".join(f"{a}->{b} ({k})" for (a, b), k in pairs.items()) + " (listed in ReadResult.translated)",
            DataVintageWarning, stacklevel=2)
    result = ReadResult(records=records, exclusions=exclusions, n_input=n, translated=trans)
    if len(result.records) + len(result.exclusions) != n:  # pragma: no cover - internal invariant
        raise RuntimeError("validate_records: counts do not reconcile (bug in cdr)")
    return result


def _check_columns(df: pd.DataFrame, n: int) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in df and not (c == "age_days" and "date_of_birth" in df)]
    if missing:
        if "age_days" in missing:
            missing[missing.index("age_days")] = "age_days (or date_of_birth)"
        errors = pd.DataFrame({"row": pd.array([pd.NA] * len(missing), dtype="Int64"), "case_id": None,
                               "field": missing, "value": None, "rule": "missing_column", "reason": "required column missing"})
        raise RecordValidationError(
            f"{len(missing)} required column(s) missing: {', '.join(missing)}. Found: {', '.join(map(str, df.columns))}.\n"
            f"A record file needs {RULES['missing_column'][1]}; rename your columns to these names.",
            errors=errors)


def _text(s: pd.Series) -> pd.Series:
    """Trimmed text with blanks as NA (index reset)."""
    t = pd.Series(s).reset_index(drop=True).astype("string").str.strip()
    return t.mask(t.str.len() == 0)


def _show(value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "(blank)"
    return repr(value) if isinstance(value, str) else str(value)


def _parse_dates(raw: pd.Series):
    raw = pd.Series(raw).reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw.dt.tz_localize(None) if getattr(raw.dt, "tz", None) is not None else raw
        return parsed.dt.normalize().astype("datetime64[ns]"), pd.Series(False, index=raw.index)
    text = _text(raw)
    iso = pd.to_datetime(text, format="ISO8601", errors="coerce")
    uk = pd.to_datetime(text, format="%d/%m/%Y", errors="coerce")
    parsed = iso.fillna(uk).dt.normalize().astype("datetime64[ns]")
    return parsed, (text.notna() & parsed.isna())


def _parse_int(raw: pd.Series):
    raw = pd.Series(raw).reset_index(drop=True)
    text = _text(raw)
    num = pd.to_numeric(text, errors="coerce")
    whole = num.notna() & (np.floor(num.fillna(0)) == num.fillna(0))
    bad = text.notna() & ~whole
    return num.where(whole).round().astype("Int64"), bad.fillna(False).astype(bool)


def _map_values(raw: pd.Series, table: dict):
    text = _text(raw)
    uniques = text.dropna().unique()          # normalise each distinct value once, not each row
    lookup = {u: table.get(_norm(u)) for u in uniques}
    mapped = text.map(lookup, na_action="ignore")
    bad = text.notna() & mapped.isna()
    return mapped.astype("str").where(mapped.notna()), bad.fillna(False).astype(bool)


def _reverse_crosswalk() -> dict:
    """2023 code -> its single 2021 parent (every UTLA23 lies inside one UTLA21; ONS crosswalk)."""
    with resources.files("cdr").joinpath("_data", "utla2021_to_utla2023.csv").open("rb") as fh:
        cw = pd.read_csv(fh, dtype=str)
    cw = cw[cw["utla21_code"] != cw["utla23_code"]]
    return dict(zip(cw["utla23_code"], cw["utla21_code"]))


def _check_la(codes: pd.Series, vintage: int, data_module):
    """Valid codes, problems {rule: (mask, reason)}, translations (row, la_code_original, la_code)."""
    target = set(data_module.la_codes(vintage))
    ok = codes.isin(target) | codes.isna()
    la = codes.copy()
    unknown = pd.Series(False, index=codes.index)
    split = pd.Series(False, index=codes.index)
    split_reason = pd.Series("", index=codes.index, dtype=object)
    trans = pd.DataFrame({"row": pd.Series(dtype="int64"), "la_code_original": pd.Series(dtype=str),
                          "la_code": pd.Series(dtype=str)})
    rest = codes[~ok]
    if len(rest):
        frame = pd.DataFrame({"la_code": rest.to_numpy(), "_pos": rest.index.to_numpy()})
        if vintage == 2021:
            # translate_codes maps older codes forward only; a 2023 code maps back to its one 2021 parent.
            back = _reverse_crosswalk()
            frame["la_code"] = frame["la_code"].map(lambda c: back.get(c, c))
        done, failed = data_module.translate_codes(frame, "la_code", to_vintage=vintage, split="report")
        done = done.assign(orig=rest.loc[done["_pos"]].to_numpy())
        done = done[done["la_code"].isin(target)]
        la.loc[done["_pos"].to_numpy()] = done["la_code"].to_numpy()
        trans = pd.DataFrame({"row": done["_pos"].to_numpy() + 1, "la_code_original": done["orig"].to_numpy(),
                              "la_code": done["la_code"].to_numpy()})
        is_split = failed["reason"].astype(str).str.startswith("split")
        split.loc[failed.loc[is_split, "_pos"].to_numpy()] = True
        split_reason.loc[failed.loc[is_split, "_pos"].to_numpy()] = failed.loc[is_split, "reason"].to_numpy()
        unknown.loc[failed.loc[~is_split, "_pos"].to_numpy()] = True
        leftover = ~codes.index.isin(done["_pos"]) & ~ok & ~split & ~unknown
        unknown |= leftover
    problems = {
        "unknown_la_code": (unknown, f"not an upper-tier LA code of the {vintage} vintage (cdr.data.la_codes({vintage}))"),
        "split_la_code": (split, "LA " + split_reason.astype(str) + f"; recode to a {vintage} successor"),
    }
    return la.where(~(unknown | split)), problems, trans


def _message(errors: pd.DataFrame, n: int, vintage: int, limit: int = 30) -> str:
    n_bad = errors["row"].nunique()
    lines = [f"{n_bad:,} of {n:,} records are invalid (strict mode); {len(errors):,} problem(s). "
             f"Rows are 1-based data rows (row 1 = first record after the header)."]
    if len(errors) > limit:  # many problems: a count per kind first, then the first rows
        kinds = errors.groupby(["field", "reason"], sort=False).size().sort_values(ascending=False, kind="stable")
        lines.append("Problems by kind:")
        lines += [f"  {count:>6,}  {field}: {reason}" for (field, reason), count in kinds.head(10).items()]
        if len(kinds) > 10:
            lines.append(f"  ... {len(kinds) - 10} more kinds")
        lines.append(f"The first {limit} problems:")
    shown = errors.head(limit)
    width = len(str(int(shown["row"].max()))) if len(shown) else 1
    for r, cid, fld, val, reason in zip(shown["row"], shown["case_id"], shown["field"], shown["value"], shown["reason"]):
        cid = "(blank)" if cid is None or pd.isna(cid) else cid
        lines.append(f"  row {r:<{width}}  case_id={cid}  {fld}={val}  {reason}")
    if len(errors) > limit:
        lines.append(f"  ... and {len(errors) - limit:,} more problem(s): all are in the exception's .errors table "
                     f"(command line: --lenient with --exclusions FILE writes them)")
    lines.append(f'Read with mode="lenient" to analyse the {n - n_bad:,} valid records; the {n_bad:,} exclusion(s) '
                 f"come back as a table.")
    return "\n".join(lines)


def _exclusions(errors: pd.DataFrame) -> pd.DataFrame:
    cols = ["row", "case_id", "field", "value", "reason"]
    if not len(errors):
        return pd.DataFrame({"row": pd.Series(dtype="int64"), **{c: pd.Series(dtype=str) for c in cols[1:]}})
    e = errors.assign(case_id=errors["case_id"].astype(object).where(errors["case_id"].notna(), None),
                      value=errors["value"].astype(str), reason=errors["field"] + ": " + errors["reason"])
    out = e.groupby("row", sort=True).agg(
        case_id=("case_id", "first"), field=("field", "; ".join), value=("value", "; ".join), reason=("reason", "; ".join))
    return out.reset_index()[cols]


def _finish(out: pd.DataFrame, df: pd.DataFrame, keep: pd.Series) -> pd.DataFrame:
    rec = out[keep.to_numpy()].copy()
    rec["age_days"] = rec["age_days"].astype("int64")
    for col in ("case_id", "sex", "la_code", "category", "ethnicity"):
        rec[col] = rec[col].astype(str)
    for col in ("modifiable", *DOMAINS):
        rec[col] = rec[col].astype(object).where(rec[col].notna(), None).astype("str").where(rec[col].notna())
    rec["imd_decile"] = rec["imd_decile"].astype("Int64")
    rec["synthetic"] = rec["synthetic"].astype(bool)
    rec = rec[list(RECORD_COLUMNS)]
    rec = _add_derived(rec)
    extra = [c for c in df.columns if c not in rec.columns and c not in RECORD_COLUMNS]
    for c in extra:
        rec[c] = df.loc[keep.to_numpy(), c].to_numpy()
    return rec.sort_values("case_id", kind="stable", ignore_index=True)


def _add_derived(rec: pd.DataFrame) -> pd.DataFrame:
    """Add :data:`DERIVED_COLUMNS` to canonical records (also used by :mod:`cdr.synthetic`)."""
    rec = rec.copy()
    rec["age_band"] = age_band(rec["age_days"]).astype(str)
    rec["year"] = rec["date_of_death"].dt.year.astype("int64")
    ry = reporting_year(rec["date_of_death"])
    rec["reporting_year"] = ry["reporting_year"].astype(str)
    rec["reporting_year_start"] = ry["reporting_year_start"].astype("int64")
    rec["reviewed"] = rec["review_completed"].notna()
    return rec
