"""The child death review record: canonical columns, code lists, import of any export, and validation.

One row per child death, as in the national child death review (CDR) forms. The canonical columns
(``docs/dev/contracts.md``; one entry each in :data:`FIELDS`):

==================  ==========================  ==================================================
column              type                        values
==================  ==========================  ==================================================
case_id             str                         unique, required
date_of_birth       datetime64 (optional)       not after the date of death
date_of_death       datetime64                  required (core); not in the future
age_days            int                         0 ... 6574 (under 18); derived from dates if absent
sex                 str                         ``male``, ``female``, ``unknown``
la_code             str                         upper-tier LA of residence (core), vintage of the reader
category            str                         a key of :data:`CATEGORIES`, or ``not_recorded``
review_completed    datetime64 or NaT           NaT = review pending
modifiable          str or NA                   :data:`MODIFIABLE`; NA while pending
domain_child, ...   str or NA                   keys of :data:`DOMAIN_LEVELS` (four domains)
imd_decile          Int64                       1 (most deprived) ... 10, or NA
ethnicity           str                         keys of :data:`ETHNICITIES`
synthetic           bool                        True for generated records
==================  ==========================  ==================================================

:func:`read_records` (files: CSV, TSV, Excel, Parquet) and :func:`validate_records` (DataFrames) map
the export's headers to these fields (built-in spellings, or a columns file), apply every rule in
:data:`RULES` - the one table of validation rules - and add the derived columns ``age_band``,
``year``, ``reporting_year``, ``reporting_year_start`` and ``reviewed``.

**Every death is counted.** Only the core fields (date of death, LA of residence, and a date of birth
or age that is not 18 or over) can exclude a record. In lenient mode a bad optional value becomes
"not recorded" for that field only (``sex``/``ethnicity`` ``"unknown"``, ``category``
``"not_recorded"``, other fields blank) and is listed in ``ReadResult.issues``; a death with neither
date of birth nor age is in the ``age_band`` ``"not_recorded"``.

**Ages are exact calendar ages**: a child is under 18 until the day before their 18th birthday (someone
born on 29 February has birthdays on 1 March in other years), and the age bands use completed years of
age at death, never 365.25-day years.

Domain scale. The pre-2019 DfE Form C ("Analysis Proforma") scored each of the four domains 0, 1,
1*, 2 or 3; those codes and their wording are the canonical scale here. **The scale of the current
(post-2019) Child death analysis form could not be verified**: no copy of the form or of its level
wording could be retrieved (``cdr/_data/reference/national_figures_addendum.md`` section 1.1). Data
recorded on another scale can be read by passing ``level_map=`` (raw value -> canonical key), e.g.
``level_map={"0": "none", "1": "may_have_contributed", "2": "sufficient"}`` for a hypothetical
0/1/2 scale; check the mapping against your form before relying on it.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from cdr import _validate as check
from cdr.errors import ArgumentError, ArgumentTypeError, CdrWarning, DataVintageWarning, RecordValidationError
from cdr.schema._fields import (  # noqa: F401  (re-exported)
    AGE_BAND_DAYS, AGE_BANDS, CATEGORIES, CONTRIBUTORY_LEVELS, DERIVED_COLUMNS, DOMAIN_LEVEL_CODES, DOMAIN_LEVELS,
    DOMAINS, ETHNIC_GROUPS_19, ETHNICITIES, FIELDS, MAX_AGE_DAYS, MODIFIABLE, NOT_RECORDED,
    RECORD_COLUMNS, REQUIRED_COLUMNS, RULES, SEXES, Field, _LEVEL_SYNONYMS, _norm,
)
from cdr.schema._import import (
    RecordFileError, la_name_table, load_columns_file, map_headers, parse_uk_dates, read_table, suggest,
)

__all__ = [
    "CATEGORIES",
    "DOMAINS",
    "DOMAIN_LEVELS",
    "DOMAIN_LEVEL_CODES",
    "CONTRIBUTORY_LEVELS",
    "MODIFIABLE",
    "SEXES",
    "ETHNICITIES",
    "ETHNIC_GROUPS_19",
    "AGE_BANDS",
    "AGE_BAND_DAYS",
    "AGE_NOT_RECORDED",
    "NOT_RECORDED",
    "MAX_AGE_DAYS",
    "RECORD_COLUMNS",
    "DERIVED_COLUMNS",
    "REQUIRED_COLUMNS",
    "CORE_FIELDS",
    "FIELDS",
    "Field",
    "RULES",
    "ReadResult",
    "RecordFileError",
    "contributory",
    "age_band",
    "age_in_years",
    "reporting_year",
    "validate_records",
    "read_records",
    "load_columns_file",
    "field_table",
    "to_file",
]

#: ``age_band`` of a death with neither a date of birth nor an age.
AGE_NOT_RECORDED = "not_recorded"
#: Fields without which a death cannot be counted (plus an age: ``date_of_birth`` or ``age_days``).
CORE_FIELDS = ("date_of_death", "la_code")
#: Rules that exclude a record in lenient mode (the others set one field to "not recorded").
_CORE_RULES = {"duplicate_case_id", "unknown_la_code", "split_la_code", "negative_age", "age_18_or_over",
               "death_before_birth", "age_dates_mismatch"}
_TRUE = {"true", "1", "yes", "y", "t", "1.0"}
_FALSE = {"false", "0", "no", "n", "f", "0.0"}
_ROW_NOTE = "row = 1-based data row (the header is not counted; in a CSV file it is on line row + 1)"
_EMPTY_ISSUES = ["row", "case_id", "field", "value", "rule", "reason", "set_to"]


@dataclass
class ReadResult:
    """Validated records, excluded rows and field-level issues; unpacks as ``records, exclusions = result``.

    Attributes
    ----------
    records : pandas.DataFrame
        Counted records, canonical and derived columns then any extra input columns, sorted by ``case_id``.
    exclusions : pandas.DataFrame
        One row per excluded input record (unusable core fields): ``row`` (1-based data row), ``case_id``,
        ``field``, ``value``, ``reason`` (several problems joined with ``"; "``). Empty in strict mode.
    n_input : int
        Input rows. ``len(records) + len(exclusions) == n_input`` always.
    translated : pandas.DataFrame
        Records whose LA was given by name or by a code of the other vintage and was translated:
        ``row``, ``case_id``, ``la_code_original``, ``la_code``.
    issues : pandas.DataFrame
        Field-level issues of counted records (lenient mode): ``row``, ``case_id``, ``field``, ``value``,
        ``rule``, ``reason``, ``set_to`` (the "not recorded" value the field was given).
    columns : pandas.DataFrame
        How the input columns were used: ``column`` (input header), ``field`` (cdr field, ``"(derived)"``,
        ``"ignore"`` or ``"(not used)"``).
    source : dict
        What was read: ``path``, ``format``, ``encoding`` (text files), ``sheet`` (Excel).

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
    issues: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=_EMPTY_ISSUES))
    columns: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["column", "field"]))
    source: dict = field(default_factory=dict)

    def __iter__(self):
        return iter((self.records, self.exclusions))

    def issue_counts(self) -> pd.DataFrame:
        """Counted records with a field set to "not recorded", by field.

        Returns
        -------
        pandas.DataFrame
            ``field`` and ``records`` (distinct records with an issue in that field), largest first.

        Examples
        --------
        >>> raw = pd.DataFrame({"case_id": ["A1", "A2"], "date_of_death": ["2023-05-02", "2023-06-01"],
        ...                     "age_days": [3, 9], "sex": ["F", "?"], "la_code": ["E06000001"] * 2,
        ...                     "category": ["Perinatal/neonatal event", "Infection"]})
        >>> validate_records(raw, mode="lenient").issue_counts().values.tolist()
        [['sex', 1]]
        """
        if not len(self.issues):
            return pd.DataFrame({"field": pd.Series(dtype=str), "records": pd.Series(dtype="int64")})
        counts = self.issues.groupby("field")["row"].nunique().rename("records").reset_index()
        return counts.sort_values(["records", "field"], ascending=[False, True], ignore_index=True)

    def __repr__(self) -> str:
        return (f"ReadResult({len(self.records):,} records counted, {len(self.exclusions):,} excluded, "
                f"{self.n_input:,} input rows, {len(self.issues):,} field issues, "
                f"{len(self.translated):,} LA codes or names translated)")


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
    if not (isinstance(levels, Iterable) or levels is None or np.isscalar(levels)):
        raise ArgumentTypeError(f"contributory: 'levels' must be a level, a list, an array or a Series of levels, "
                                f"e.g. ['sufficient', 'unlikely']; got {check.describe(levels)}.")
    if isinstance(levels, str) or levels is None or (np.isscalar(levels) and not isinstance(levels, str)):
        return bool(pd.Series([levels]).pipe(_contributory_series).iloc[0])
    if isinstance(levels, pd.Series):
        return _contributory_series(levels)
    return _contributory_series(pd.Series(list(levels), dtype=object)).to_numpy()


def _contributory_series(s: pd.Series) -> pd.Series:
    keys = s.astype("string").str.strip().str.lower().map(lambda v: DOMAIN_LEVEL_CODES.get(v, v) if isinstance(v, str) else v)
    return keys.isin(CONTRIBUTORY_LEVELS).fillna(False).astype(bool)

def age_in_years(date_of_birth, date_of_death):
    """Exact age in completed years (calendar birthdays; 29 February birthdays fall on 1 March).

    Parameters
    ----------
    date_of_birth, date_of_death : date-like, array_like or pandas.Series
        Same length; NaT gives NA.

    Returns
    -------
    pandas.Series of Int64

    Examples
    --------
    A child born on 10 January 2002 is 17 on 9 January 2020 and 18 on 10 January 2020:

    >>> age_in_years(["2002-01-10", "2002-01-10", "2004-02-29"], ["2020-01-09", "2020-01-10", "2022-02-28"]).tolist()
    [17, 18, 17]
    """
    dob = pd.to_datetime(pd.Series(np.asarray(date_of_birth, dtype=object) if not isinstance(date_of_birth, pd.Series)
                                   else date_of_birth.to_numpy()), errors="coerce")
    dod = pd.to_datetime(pd.Series(np.asarray(date_of_death, dtype=object) if not isinstance(date_of_death, pd.Series)
                                   else date_of_death.to_numpy()), errors="coerce")
    before = (dod.dt.month < dob.dt.month) | ((dod.dt.month == dob.dt.month) & (dod.dt.day < dob.dt.day))
    years = (dod.dt.year - dob.dt.year - before.astype(int)).astype("Int64")
    return years.where(dob.notna() & dod.notna())


def age_band(age_days, date_of_death=None):
    """Age band key (:data:`AGE_BANDS`) from age at death in days, by exact calendar age.

    With ``date_of_death`` the date of birth is ``date_of_death - age_days`` and the bands use completed
    years of age (a child is 1 on their first birthday, 18 on their 18th): this is how
    :func:`validate_records` derives ``age_band``. Without it, the year boundaries fall at 365, 1826,
    3653 and 5479 days (the fewest days that can make 1, 5, 10 and 15 years), which can differ from
    the calendar age by a day around a birthday.

    Parameters
    ----------
    age_days : int, array_like or pandas.Series
        Age in completed days. NA, negative or 18 years and over give NA.
    date_of_death : date-like, array_like or pandas.Series, optional
        Date of death of each child (same length).

    Returns
    -------
    str (or None), numpy.ndarray of object, or pandas.Series of str (same index)

    Examples
    --------
    >>> age_band([0, 27, 28, 364, 365, 1826, 6574]).tolist()
    ['neonatal', 'neonatal', 'postneonatal', 'postneonatal', '1-4', '5-9', '15-17']
    >>> age_band(400)
    '1-4'

    A child who dies aged 365 days on 1 March 2020 was born on 2 March 2019, so is not yet one:

    >>> age_band([365, 366], date_of_death=["2020-03-01", "2020-03-01"]).tolist()
    ['postneonatal', '1-4']
    """
    scalar = np.ndim(age_days) == 0 and not isinstance(age_days, pd.Series)
    s = age_days if isinstance(age_days, pd.Series) else pd.Series(np.atleast_1d(age_days))
    if date_of_death is not None and (1 if np.ndim(date_of_death) == 0 else len(date_of_death)) != len(s):
        raise ArgumentError(f"age_band: 'date_of_death' must give one date per age ({len(s)}); got "
                            f"{check.describe(date_of_death)}.")
    days = pd.to_numeric(s, errors="coerce").astype("Float64").astype(float).to_numpy()
    if date_of_death is None:
        edges = [lo for lo, _ in AGE_BAND_DAYS.values()] + [MAX_AGE_DAYS + 1]
        codes = pd.cut(days, bins=edges, right=False, labels=list(AGE_BANDS))
        out = pd.Series(np.asarray(codes.astype(object)), index=s.index).where(~pd.isna(codes), None)
    else:
        dod = pd.to_datetime(pd.Series(np.atleast_1d(np.asarray(date_of_death, dtype=object))
                                       if not isinstance(date_of_death, pd.Series) else date_of_death.to_numpy()),
                             errors="coerce")
        ok = ~np.isnan(days) & (days >= 0) & dod.notna().to_numpy()
        dob = dod - pd.to_timedelta(np.where(ok, days, 0), unit="D")
        years = age_in_years(dob, dod).to_numpy(dtype=float, na_value=np.nan)
        band = np.select([days < 28, years < 1, years < 5, years < 10, years < 15, years < 18],
                         list(AGE_BANDS), default="")
        out = pd.Series(np.where(ok & (band != ""), band, None), index=s.index, dtype=object)
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
# reading


def read_records(source, *, columns=None, values=None, sheet=None, mode: str = "strict", vintage: int = 2023,
                 level_map=None, today=None) -> ReadResult:
    """Read child death records from any export (CSV, TSV, Excel, Parquet) or DataFrame, and validate them.

    Parameters
    ----------
    source : str, path or pandas.DataFrame
        A ``.csv``/``.txt`` (comma or tab separated, detected), ``.tsv``, ``.xlsx``/``.xls``, or ``.parquet``
        file with a header row, or a DataFrame. Text files may be UTF-8 (with or without BOM), UTF-16 or
        Windows cp1252/latin-1: the encoding is detected and stated in ``ReadResult.source`` (with a
        warning when it is not UTF-8). Every cell of a text file is read as text and parsed by the rules,
        so nothing is coerced silently.
    columns : dict or path, optional
        Export header -> cdr field (``{"CDOP Ref": "case_id"}``; ``"ignore"`` drops a column), or a TOML
        columns file with a ``[columns]`` table and optional ``[values.<field>]`` tables (see
        ``docs/howto/own-data.md``; ``cdr data template`` writes one). Headers not mapped are matched
        to the built-in spellings (:data:`FIELDS`, ``cdr data columns`` lists them) after normalising
        case, spacing and punctuation; every column left unused is named in a warning.
    values : dict, optional
        ``{field: {raw value: canonical value}}``, applied before the built-in spellings, e.g.
        ``{"modifiable": {"Yes - modifiable factors identified": "yes"}}``. Added to a columns file's.
    sheet : str or int, optional
        Excel sheet name or 0-based number (default: the first sheet; a warning names it when there are several).
    mode, vintage, level_map, today
        As in :func:`validate_records`.

    Returns
    -------
    ReadResult

    Raises
    ------
    RecordFileError
        The file cannot be read (missing, a folder, empty, ragged rows, an unclosed quote, ...).
    RecordValidationError
        Strict mode, any invalid value; either mode, a missing core column or a bad column mapping.

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

    An export with its own headers, an LA name and UK dates, mapped by the built-in spellings:

    >>> export = pd.DataFrame({"CDOP Ref": ["K1"], "Date of Death": ["3/4/22"], "DOB": ["1 March 2022"],
    ...                        "Gender": ["Male"], "LA of residence": ["wakefield "],
    ...                        "Category of death": ["Infection"]})
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     records = read_records(export).records
    >>> str(records.loc[0, "date_of_death"].date()), int(records.loc[0, "age_days"]), records.loc[0, "la_code"]
    ('2022-04-03', 33, 'E08000036')
    """
    caller = "read_records"
    check.one_of(mode, ("strict", "lenient"), "mode", caller)
    if not isinstance(source, pd.DataFrame):
        check.path(source, "source", caller)
    if columns is not None and not isinstance(columns, (str, os.PathLike)):
        check.mapping(columns, "columns", caller, example="{'CDOP Ref': 'case_id'} or a columns.toml path")
    if values is not None:
        check.mapping(values, "values", caller, example="{'sex': {'Boy': 'male'}}")
    if sheet is not None and not isinstance(sheet, (str, int)):
        raise ArgumentTypeError(f"{caller}: 'sheet' must be a sheet name or a 0-based sheet number; got "
                                f"{check.describe(sheet)}.")
    file_values = {}
    if isinstance(columns, (str, os.PathLike)):
        columns, file_values = load_columns_file(columns)
    merged = {k: dict(v) for k, v in file_values.items()}
    for k, v in (values or {}).items():
        merged.setdefault(k, {}).update(v)
    if isinstance(source, pd.DataFrame):
        frame, info = source, {"format": "DataFrame"}
    else:
        frame, info = read_table(source, sheet=sheet)
        if info.get("encoding") not in (None, "utf-8", "utf-8-sig"):
            warnings.warn(f"{Path(source).name}: read as {info['encoding']} text (not UTF-8); check that names "
                          "with accents read correctly, or save the file as CSV UTF-8", CdrWarning, stacklevel=2)
        if info.get("header_row"):
            warnings.warn(f"{Path(source).name}: the header is on {'sheet row' if info.get('sheet') else 'line'} {info['header_row']} (rows above it are "
                          "titles, not read); row numbers in messages count from the row after the header",
                          CdrWarning, stacklevel=2)
        if len(info.get("sheets", ())) > 1 and sheet is None:
            warnings.warn(f"{Path(source).name}: read sheet {info['sheet']!r}, the first of {len(info['sheets'])} "
                          f"({', '.join(map(repr, info['sheets']))}); choose another with sheet=", CdrWarning,
                          stacklevel=2)
    result = validate_records(frame, columns=columns, values=merged or None, mode=mode, vintage=vintage,
                              level_map=level_map, today=today)
    result.source = info
    return result


def field_table() -> pd.DataFrame:
    """The record fields: name, kind, whether core or required, meaning, allowed values and header spellings.

    Returns
    -------
    pandas.DataFrame
        One row per field of :data:`FIELDS`: ``field``, ``kind``, ``role`` (``core``, ``required`` or
        ``optional``), ``meaning``, ``values`` (allowed canonical values, ``"; "``-joined) and
        ``headers`` (accepted header spellings besides the field name).

    Examples
    --------
    >>> table = field_table()
    >>> table.set_index("field").loc["date_of_death", "role"], "DOD" in table.set_index("field").loc["date_of_death", "headers"]
    ('core', True)
    """
    rows = []
    for f in FIELDS.values():
        role = "core" if f.name in CORE_FIELDS else "required" if f.required else "optional"
        vals = "; ".join(f"{k} ({v})" if v != k else k for k, v in f.values.items())
        if f.name == "category":
            vals += f"; {NOT_RECORDED}"
        rows.append({"field": f.name, "kind": f.kind, "role": role, "meaning": f.meaning, "values": vals,
                     "headers": "; ".join(h if h.upper() != h else h for h in _display_headers(f))})
    return pd.DataFrame(rows)


def _display_headers(f: Field) -> list:
    shown = {"dob": "DOB", "dod": "DOD", "la": "LA", "imd": "IMD", "cdop ref": "CDOP Ref", "utla": "UTLA"}
    return [shown.get(h, h[:1].upper() + h[1:]) for h in f.headers]


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
    caller = "to_file"
    check.frame(records, "records", caller)
    path = check.path(path, "path", caller)
    suffix = check.one_of(path.suffix.lower(), (".csv", ".parquet"), "path", caller,
                          hint=f" (the extension of {path.name!r}, which sets the format)")
    if suffix == ".csv":
        records.to_csv(path, index=False, date_format="%Y-%m-%d")
    elif suffix == ".parquet":
        import importlib.util

        if importlib.util.find_spec("pyarrow") is None:
            raise ArgumentError("to_file: writing Parquet needs the pyarrow package: pip install 'cdr[parquet]' "
                                "(or write a .csv)")
        records.to_parquet(path, index=False)
    return path


def validate_records(frame: pd.DataFrame, *, columns=None, values=None, mode: str = "strict", vintage: int = 2023,
                     today=None, level_map=None) -> ReadResult:
    """Validate child death records and return them in canonical form with derived columns.

    Every rule of :data:`RULES` is checked on every row (vectorised); nothing is dropped silently.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per death. Headers are matched to :data:`FIELDS` after normalising case, spacing and
        punctuation ("Date of Death", "DOD", "Gender", "LA of residence", "CDOP Ref", ...), or by
        ``columns``. Values may use keys or labels, case-insensitively: category keys or labels
        (:data:`CATEGORIES`), Form C codes ``0``/``1``/``1*``/``2``/``3`` or level labels,
        ``Yes``/``No``/``Insufficient information`` (and "Yes - modifiable factors identified"),
        ``M``/``F``, the 5 ONS high-level or 19 detailed ethnic groups (the detailed group is kept in
        ``ethnicity_detailed``), LA codes or names (listed in ``ReadResult.translated``). Dates are
        read day first in every UK form (``3/4/22``, ``03-04-2022``, ``03.04.2022``, ``3 April 2022``,
        ISO ``2022-04-03``, Excel serials and cells), never month first. The input is not modified.
    columns : dict, optional
        Header -> cdr field, applied before the built-in spellings (see :func:`read_records`).
    values : dict, optional
        ``{field: {raw: canonical}}``, applied before the built-in spellings.
    mode : {"strict", "lenient"}
        Strict raises on any invalid value. Lenient counts every death whose core fields are usable:
        a bad optional value is set to "not recorded" and listed in ``issues``; records with an
        unusable date of death or LA, or an age that is negative, 18 or over or inconsistent, are
        excluded and listed in ``exclusions``.
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
        ``reporting_year_start``, ``reviewed``), ``ethnicity_detailed`` when detailed groups were given,
        then any other input columns unchanged. ``age_days`` is ``Int64`` (nullable) when some ages
        are not recorded, ``int64`` otherwise.

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

    A misspelt category gets a suggestion:

    >>> bad = raw.assign(category="Perinatal/neonatel event")
    >>> try:
    ...     validate_records(bad)
    ... except RecordValidationError as err:
    ...     print(err.errors.loc[0, "reason"])
    not one of the 10 CDR categories (cdr.schema.CATEGORIES); did you mean 'Perinatal/neonatal event' (perinatal_neonatal)?
    """
    caller = "validate_records"
    check.one_of(mode, ("strict", "lenient"), "mode", caller)
    check.frame(frame, "frame", caller)
    from cdr import data as _data
    from cdr.data._areas import _check_vintage

    vintage = _check_vintage(vintage, caller)
    for name, given, example in (("columns", columns, "{'CDOP Ref': 'case_id'}"), ("values", values,
                                 "{'sex': {'Boy': 'male'}}"), ("level_map", level_map, "{'Yes': 'sufficient'}")):
        if given is not None:
            check.mapping(given, name, caller, example=example)
    today = pd.Timestamp.today().normalize() if today is None else check.timestamp(today, "today", caller).normalize()
    frame = frame.reset_index(drop=True)
    mapping, unused, _ = map_headers(frame.columns, columns)
    unused = [c for c in unused if not _is_report_field(c)]   # read by cdr.fields (optional report fields)
    used = pd.DataFrame({"column": [str(c) for c in frame.columns],
                         "field": [mapping.get(str(c), "(not used)") for c in frame.columns]})
    df = pd.DataFrame(index=frame.index)
    for col in frame.columns:
        target = mapping.get(str(col))
        if target and target not in ("ignore", "(derived)"):
            df[target] = frame[col]
    if unused:
        warnings.warn(f"{len(unused)} input column(s) not used: {', '.join(map(repr, unused))}. They are carried "
                      "along unchanged; if one holds a cdr field, map it with columns= (a dict or TOML file), "
                      f"e.g. \"{unused[0]}\" = \"<field>\" under [columns] (fields: cdr.schema.field_table())", CdrWarning, stacklevel=2)
    user_values = _check_values(values)
    n = len(df)
    _check_columns(df, n, mode, unused)

    row = pd.Series(np.arange(1, n + 1), dtype="int64")
    blank = pd.Series([None] * n, dtype=object)
    raw_of = {c: (df[c].reset_index(drop=True) if c in df else blank) for c in FIELDS}
    case_id = _text(raw_of["case_id"])
    problems = []

    def add(mask, field_name, vals, rule, reason):
        mask = pd.Series(np.asarray(mask, dtype=bool))
        if mask.any():
            vs = (pd.Series(vals).reset_index(drop=True) if isinstance(vals, (pd.Series, np.ndarray))
                  else pd.Series([vals] * n, dtype=object))
            reasons = pd.Series(reason).reset_index(drop=True) if not isinstance(reason, str) else pd.Series([reason] * n)
            problems.append(pd.DataFrame({
                "row": row[mask].to_numpy(), "case_id": case_id[mask].to_numpy(), "field": field_name,
                "value": vs[mask].astype(object).map(_show).to_numpy(), "rule": rule,
                "reason": reasons[mask].to_numpy(),
            }))

    out = pd.DataFrame({"case_id": case_id})

    # required values
    add(case_id.isna(), "case_id", None, "missing_value", "a value is required (a unique reference for the death)")
    for col in ("date_of_death", "sex", "la_code", "category"):
        add(_text(raw_of[col]).isna(), col, None, "missing_value",
            RULES["missing_value"][1] if col == "sex" else "a value is required")

    # dates
    for col in ("date_of_birth", "date_of_death", "review_completed"):
        parsed, bad = parse_uk_dates(raw_of[col], today)
        add(bad, col, raw_of[col], "bad_date", "allowed: " + RULES["bad_date"][1])
        future = (parsed > today).fillna(False)
        add(future, col, parsed.dt.strftime("%Y-%m-%d"), "future_date", f"not after today ({today:%Y-%m-%d})")
        out[col] = parsed.where(~future)
    dob, dod, rc = out["date_of_birth"], out["date_of_death"], out["review_completed"]

    # ages (exact calendar ages: 18 on the 18th birthday)
    age, bad = _parse_int(raw_of["age_days"])
    add(bad, "age_days", raw_of["age_days"], "bad_number", "allowed: a whole number of days")
    from_dates = (dod - dob).dt.days.astype("Int64")
    have_both = age.notna() & from_dates.notna()
    add(have_both & (age != from_dates).fillna(False), "age_days", age,
        "age_dates_mismatch", "must equal date_of_death - date_of_birth = " + from_dates.astype("string").fillna("") + " days")
    need_age = age.isna() & dob.isna() & ~_text(raw_of["age_days"]).notna() & ~_text(raw_of["date_of_birth"]).notna()
    add(need_age, "age_days", None, "missing_value", "a value is required (or a date_of_birth)")
    age = age.fillna(from_dates)
    add((age < 0).fillna(False) & dob.isna(), "age_days", age, "negative_age", "allowed: " + RULES["negative_age"][1])
    add((from_dates < 0).fillna(False), "date_of_birth", dob.dt.strftime("%Y-%m-%d"), "death_before_birth",
        "must not be after date_of_death (" + dod.dt.strftime("%Y-%m-%d").fillna("") + ")")
    implied_dob = dod - pd.to_timedelta(age.astype("Float64").fillna(0).astype(float), unit="D")
    years = age_in_years(dob.where(dob.notna(), implied_dob), dod)
    over_days = (age > MAX_AGE_DAYS).fillna(False)
    over = (years >= 18).fillna(False) & age.notna() & ~over_days
    add(over_days, "age_days", age, "age_18_or_over", "the child was 18 or over (allowed: " + RULES["age_18_or_over"][1] + ")")
    add(over & dob.notna(), "date_of_birth", dob.dt.strftime("%Y-%m-%d"), "age_18_or_over",
        "the child was 18 or over at date_of_death (" + dod.dt.strftime("%Y-%m-%d").fillna("") + ")")
    add(over & dob.isna(), "age_days", age, "age_18_or_over",
        "the child was 18 or over at date_of_death (" + dod.dt.strftime("%Y-%m-%d").fillna("") + "; an 18th birthday "
        "falls at 6574 or 6575 days, depending on leap days)")
    out["age_days"] = age

    # duplicates: every occurrence is reported; lenient keeps the first
    dup = case_id.notna() & case_id.duplicated(keep=False)
    if dup.any():
        rows_of = row[dup].groupby(case_id[dup]).agg(lambda r: ", ".join(map(str, r)))
        add(dup, "case_id", case_id, "duplicate_case_id", "appears more than once (rows " + case_id.map(rows_of).fillna("") + ")")
    later_dup = case_id.notna() & case_id.duplicated(keep="first")

    # LA codes and names
    la, la_problems, translated = _check_la(_text(raw_of["la_code"]), vintage, _data, user_values.get("la_code", {}))
    for rule, (mask, reason) in la_problems.items():
        add(mask, "la_code", raw_of["la_code"], rule, reason)
    out["la_code"] = la

    # categorical fields, one loop over the field table
    level_table = dict(_LEVEL_SYNONYMS)
    if level_map:
        unknown_targets = sorted({str(v) for v in level_map.values()} - set(DOMAIN_LEVELS))
        if unknown_targets:
            raise ValueError(f"validate_records: level_map values must be keys of cdr.schema.DOMAIN_LEVELS "
                             f"{list(DOMAIN_LEVELS)}; got {unknown_targets}")
        level_table.update({_norm(k): v for k, v in level_map.items()})
    ethnicity_raw = raw_of["ethnicity"]
    for f in FIELDS.values():
        if f.kind != "category":
            continue
        raw = raw_of[f.name]
        if f.name == "ethnicity_detailed" and f.name not in df:
            raw = ethnicity_raw            # the detailed group read from the ethnicity column, where given
        table = {**(level_table if f.name in DOMAINS else f.lookup()), **user_values.get(f.name, {})}
        mapped, bad = _map_values(raw, table, f.fallback)
        if f.name == "ethnicity_detailed" and f.name not in df:
            out[f.name] = mapped           # a high-level value there is not a problem
            continue
        if bad.any():
            add(bad, f.name, raw, f.rule, _value_reason(f, raw, bad, table))
        out[f.name] = mapped
    if "ethnicity" not in df and "ethnicity_detailed" in df:
        out["ethnicity"] = out["ethnicity_detailed"].map(lambda k: ETHNIC_GROUPS_19[k][0] if isinstance(k, str) else None)
    out["ethnicity"] = out["ethnicity"].fillna("unknown")

    # other optional fields of the table (dates, whole numbers, yes/no), added by one FIELDS entry each
    for f in FIELDS.values():
        if f.name in RECORD_COLUMNS or f.kind not in ("date", "int", "bool") or f.name not in df:
            continue
        if f.kind == "date":
            parsed, bad = parse_uk_dates(raw_of[f.name], today)
            add(bad, f.name, raw_of[f.name], "bad_date", "allowed: " + RULES["bad_date"][1])
            out[f.name] = parsed
        elif f.kind == "int":
            parsed, bad = _parse_int(raw_of[f.name])
            add(bad, f.name, raw_of[f.name], "bad_number", "allowed: a whole number")
            out[f.name] = parsed
        else:
            t = _text(raw_of[f.name]).str.lower()
            bad = t.notna() & ~t.isin(list(_TRUE | _FALSE))
            add(bad, f.name, raw_of[f.name], "bad_number", "allowed: yes/no, true/false or 1/0")
            out[f.name] = pd.Series(np.where(t.isin(list(_TRUE)), True, np.where(t.isin(list(_FALSE)), False, None)),
                                    dtype=object)

    raw_imd = raw_of["imd_decile"]
    imd, bad = _parse_int(raw_imd)
    add(bad | ((imd < 1) | (imd > 10)).fillna(False), "imd_decile", raw_imd, "bad_imd_decile", "allowed: " + RULES["bad_imd_decile"][1])
    out["imd_decile"] = imd.where((imd >= 1) & (imd <= 10))

    # review consistency
    rc_text = _text(raw_of["review_completed"])
    before = (rc < dod).fillna(False)
    add(before, "review_completed", rc.dt.strftime("%Y-%m-%d"), "review_before_death",
        "must not be before date_of_death (" + dod.dt.strftime("%Y-%m-%d").fillna("") + ")")
    out["review_completed"] = rc.where(~before)
    no_review = out["review_completed"].isna()
    for col in ("modifiable", *DOMAINS):
        given = _text(raw_of[col]).notna()
        add(no_review & ~rc_text.notna() & given, col, raw_of[col], "outcome_without_review",
            "set on a case with no review_completed date (blank while the review is pending)")
        add(no_review & rc_text.notna() & given, col, raw_of[col], "outcome_without_review",
            "set to not recorded: the review_completed date is not usable")
        out[col] = out[col].where(~no_review)

    if "synthetic" in df:
        syn_text = _text(df["synthetic"]).str.lower()
        syn = syn_text.isin(list(_TRUE))
        add(syn_text.notna() & ~syn_text.isin(list(_TRUE | _FALSE)), "synthetic", df["synthetic"], "bad_number",
            "allowed: True or False")
        out["synthetic"] = syn.fillna(False).astype(bool)
    else:
        out["synthetic"] = False

    errors = (pd.concat(problems, ignore_index=True) if problems
              else pd.DataFrame(columns=["row", "case_id", "field", "value", "rule", "reason"]))
    errors = errors.sort_values(["row", "field"], kind="stable", ignore_index=True)
    core = _is_core(errors, later_dup)
    if len(errors) and mode == "strict":
        raise RecordValidationError(_message(errors, core, n), errors=errors)

    bad_rows = set(errors.loc[core, "row"].tolist())
    keep = ~row.isin(bad_rows)
    issues = errors.loc[~core & errors["row"].isin(row[keep])].reset_index(drop=True)
    issues["set_to"] = issues["field"].map(_not_recorded_value)
    no_id = case_id.isna()
    out["case_id"] = case_id.where(~no_id, "row" + row.astype(str))
    for name, f in FIELDS.items():
        if f.kind == "category" and f.missing is not None and name in out:
            out[name] = out[name].fillna(f.missing)
    extra_fields = [f for f in FIELDS if f not in RECORD_COLUMNS and f in out
                    and (f in df or (f == "ethnicity_detailed" and out[f].notna().any()))]
    records = _finish(out, frame, keep, mapping, extra_fields)
    records, issues = _optional_report_fields(records, issues, out["case_id"], row, mode, n)
    exclusions = _exclusions(errors.loc[core | errors["row"].isin(bad_rows)])
    trans = translated[~translated["row"].isin(bad_rows)].copy()
    trans["case_id"] = out["case_id"][trans["row"] - 1].to_numpy()
    trans = trans[["row", "case_id", "la_code_original", "la_code"]].reset_index(drop=True)
    _warn_translations(trans, vintage)
    if mode == "lenient" and (len(issues) or len(exclusions)):
        counts = issues.groupby("field")["row"].nunique()
        text = ", ".join(f"{f} {k:,}" for f, k in counts.sort_values(ascending=False).items())
        warnings.warn(f"{len(records):,} of {n:,} records counted; {len(exclusions):,} excluded (unusable core fields)"
                      + (f"; fields set to not recorded: {text} (ReadResult.issues)" if text else ""),
                      CdrWarning, stacklevel=2)
    result = ReadResult(records=records, exclusions=exclusions, n_input=n, translated=trans, issues=issues,
                        columns=used, source={"format": "DataFrame"})
    if len(result.records) + len(result.exclusions) != n:  # pragma: no cover - internal invariant
        raise RuntimeError("validate_records: counts do not reconcile (bug in cdr)")
    return result


def _report_field_key(column) -> str | None:
    """The :mod:`cdr.fields` field (or alias) a header names, after normalising case and punctuation."""
    import re

    from cdr.fields import FIELDS as REPORT_FIELDS

    key = re.sub(r"[^0-9a-z]+", "_", str(column).strip().lower()).strip("_")
    names = {a for f in REPORT_FIELDS.values() for a in (f.name, *f.aliases)}
    return key if key in names else None


def _is_report_field(column) -> bool:
    return _report_field_key(column) is not None


def _optional_report_fields(records, issues, case_ids, rows, mode, n):
    """The optional report fields of :mod:`cdr.fields` (expectedness, JAR, place of death, ...).

    Carried-over columns whose normalised header names such a field are read as it; a bad value is
    set to ``not_recorded`` and listed in ``issues`` (the death is always kept, in either mode, and
    a :class:`cdr.fields.FieldValueWarning` says so).
    """
    import re

    from cdr.fields import FIELDS as REPORT_FIELDS, normalise_fields

    names = {}
    for f in REPORT_FIELDS.values():
        for a in (f.name, *f.aliases):
            names.setdefault(a, a)
    rename = {}
    for c in records.columns:
        if c in RECORD_COLUMNS or c in names:
            continue
        key = re.sub(r"[^0-9a-z]+", "_", str(c).strip().lower()).strip("_")
        if key in names and key not in records.columns and key not in rename.values():
            rename[c] = key
    records = records.rename(columns=rename)
    records, extra = normalise_fields(records, case_id=records["case_id"].to_numpy())
    if not len(extra):
        return records, issues
    where = dict(zip(case_ids.astype(str), rows))
    extra = extra.assign(row=extra["case_id"].astype(str).map(where).astype("Int64"), set_to="not_recorded")
    extra = extra.reindex(columns=list(issues.columns) if len(issues.columns) else list(extra.columns))
    return records, pd.concat([issues, extra], ignore_index=True).sort_values(["row", "field"], kind="stable",
                                                                                 ignore_index=True)


def _not_recorded_value(field_name: str):
    f = FIELDS.get(field_name)
    if field_name == "age_days":
        return f"(age_band {AGE_NOT_RECORDED})"
    if field_name == "case_id":
        return "row<N>"
    return f.missing if f is not None and f.missing is not None else "(blank)"


def _is_core(errors: pd.DataFrame, later_dup: pd.Series) -> pd.Series:
    """Which problems make a record uncountable (core) rather than one field not recorded."""
    if not len(errors):
        return pd.Series(False, index=errors.index, dtype=bool)
    rule, fld = errors["rule"], errors["field"]
    core = rule.isin(_CORE_RULES) | fld.isin(CORE_FIELDS)
    dup = rule.eq("duplicate_case_id")
    later = errors["row"].map(lambda r: bool(later_dup.iloc[int(r) - 1]))
    return (core & ~dup) | (dup & later)


def _warn_translations(trans: pd.DataFrame, vintage: int) -> None:
    if not len(trans):
        return
    is_code = trans["la_code_original"].astype(str).str.fullmatch(r"[EWSN]\d{8}")
    codes, names = trans[is_code], trans[~is_code]
    if len(codes):
        pairs = codes.groupby(["la_code_original", "la_code"]).size()
        warnings.warn(
            f"{len(codes):,} record(s) had LA codes of another vintage, translated one-to-one to the {vintage} vintage: "
            + ", ".join(f"{a}->{b} ({k})" for (a, b), k in pairs.items()) + " (listed in ReadResult.translated)",
            DataVintageWarning, stacklevel=3)
    if len(names):
        pairs = names.groupby(["la_code_original", "la_code"]).size()
        shown = [f"{a!r}->{b} ({k})" for (a, b), k in pairs.items()]
        warnings.warn(f"{len(names):,} record(s) gave the LA by name, translated to {vintage} codes: "
                      + ", ".join(shown[:20]) + (f" and {len(shown) - 20} more" if len(shown) > 20 else "")
                      + " (listed in ReadResult.translated)", CdrWarning, stacklevel=3)


def _check_values(values) -> dict:
    """User value maps, normalised: {field: {norm raw: canonical key}}; checks fields and targets."""
    out = {}
    problems = []
    for fname, table in (values or {}).items():
        f = FIELDS.get(fname)
        if f is None or f.kind not in ("category",) and fname != "la_code":
            close = suggest(fname, [k for k, v in FIELDS.items() if v.kind == "category"] + ["la_code"])
            problems.append(f"[values.{fname}]: not a field with a list of values"
                            + (f" (did you mean {close[0]!r}?)" if close else ""))
            continue
        lookup = ({**_LEVEL_SYNONYMS} if fname in DOMAINS else f.lookup()) if f.kind == "category" else None
        mapped = {}
        for raw, target in table.items():
            if lookup is None:
                mapped[_norm(raw)] = str(target).strip()
                continue
            key = lookup.get(_norm(target))
            if key is None:
                close = suggest(target, list(f.values) + list(f.values.values()))
                problems.append(f"[values.{fname}] {raw!r} = {target!r}: {target!r} is not a value of {fname} "
                                f"({', '.join(f.values)})" + (f"; did you mean {close[0]!r}?" if close else ""))
                continue
            mapped[_norm(raw)] = key
        out[fname] = mapped
    if problems:
        raise RecordValidationError("the value mapping (values=) does not fit the fields:\n  " + "\n  ".join(problems))
    return out


def _value_reason(f: Field, raw: pd.Series, bad: pd.Series, table: dict) -> pd.Series:
    """Reason per row (full length): what is allowed and, where one is close, the intended value."""
    if f.name == "category":
        head = "not one of the 10 CDR categories (cdr.schema.CATEGORIES)"
    else:
        head = "allowed: " + (RULES[f.rule][1] if f.rule in RULES else ", ".join(f.values))
    candidates = {k: key for k, key in table.items() if len(k) > 2}
    text = _text(raw)
    hints = {}
    for v in text[bad].dropna().unique():
        close = suggest(v, list(candidates), cutoff=0.75)
        if close:
            key = candidates[_norm(close[0])]
            label = f.values.get(key, key)
            hints[v] = f"; did you mean {label!r}" + (f" ({key})?" if label != key else "?")
    return head + _omap(text, hints)


def _check_columns(df: pd.DataFrame, n: int, mode: str, unused=()) -> None:
    """Core columns are needed in both modes; the other required columns in strict mode only."""
    need = [c for c in REQUIRED_COLUMNS if c not in df and not (c == "age_days" and "date_of_birth" in df)]
    core = [c for c in need if c in CORE_FIELDS]
    missing = need if mode == "strict" else core
    if missing:
        shown = [c if c != "age_days" else "age_days (or date_of_birth)" for c in missing]
        errors = pd.DataFrame({"row": pd.array([pd.NA] * len(missing), dtype="Int64"), "case_id": None,
                               "field": shown, "value": None, "rule": "missing_column", "reason": "required column missing"})
        extra = ("" if core or mode == "lenient" else
                 " In lenient mode (mode=\"lenient\") a missing optional column is read as not recorded.")
        spare = f" Columns not used: {', '.join(map(repr, unused))}." if unused else ""
        raise RecordValidationError(
            f"{len(missing)} required column(s) missing: {', '.join(shown)}.{spare} A record file needs "
            f"{RULES['missing_column'][1]}; map your export's headers with columns= (a dict or TOML file), "
            f"e.g. \"Date of Death\" = \"date_of_death\" under [columns].{extra}",
            errors=errors)
    if need:
        warnings.warn(f"column(s) {', '.join(need)} not in the records: read as not recorded for every record",
                      CdrWarning, stacklevel=3)


def _text(s: pd.Series) -> pd.Series:
    """Trimmed text with blanks as NA (index reset). Whole-number floats (Excel cells) lose their '.0'."""
    s = pd.Series(s).reset_index(drop=True)
    if s.dtype == object:
        s = s.map(lambda v: str(int(v)) if isinstance(v, float) and np.isfinite(v) and v == int(v) else v)
    t = s.astype("string").str.strip()
    return t.mask(t.str.len() == 0)


def _omap(text: pd.Series, table: dict, default: str = "") -> pd.Series:
    """``table[value]`` per element as an object Series (``default`` where missing or NA)."""
    return pd.Series([table.get(v, default) if isinstance(v, str) else default
                      for v in text.astype(object).where(text.notna(), None)], index=text.index, dtype=object)


def _show(value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "(blank)"
    return repr(value) if isinstance(value, str) else str(value)


def _parse_int(raw: pd.Series):
    raw = pd.Series(raw).reset_index(drop=True)
    text = _text(raw)
    num = pd.to_numeric(text, errors="coerce")
    whole = num.notna() & (np.floor(num.fillna(0)) == num.fillna(0))
    bad = text.notna() & ~whole
    return num.where(whole).round().astype("Int64"), bad.fillna(False).astype(bool)


def _map_values(raw: pd.Series, table: dict, fallback=None):
    text = _text(raw)
    uniques = text.dropna().unique()          # normalise each distinct value once, not each row
    lookup = {}
    for u in uniques:
        n = _norm(u)
        lookup[u] = table.get(n) or (fallback(n) if fallback else None)
    mapped = text.map(lookup, na_action="ignore")
    bad = text.notna() & mapped.isna()
    return mapped.astype(object).where(mapped.notna(), None), bad.fillna(False).astype(bool)


def _reverse_crosswalk() -> dict:
    """2023 code -> its single 2021 parent (every UTLA23 lies inside one UTLA21; ONS crosswalk)."""
    with resources.files("cdr").joinpath("_data", "utla2021_to_utla2023.csv").open("rb") as fh:
        cw = pd.read_csv(fh, dtype=str)
    cw = cw[cw["utla21_code"] != cw["utla23_code"]]
    return dict(zip(cw["utla23_code"], cw["utla21_code"]))


def _check_la(text: pd.Series, vintage: int, data_module, user: dict):
    """Valid codes, problems {rule: (mask, reason)}, translations (row, la_code_original, la_code).

    ``text`` may hold codes (any case) or names (any case and spacing, short and old names);
    ``user`` maps normalised raw values to codes first.
    """
    names = la_name_table(vintage)
    upper = text.str.upper()
    is_code = upper.str.fullmatch(r"[EWSN]\d{8}").fillna(False).astype(bool)
    obj = pd.Series(text.astype(object).where(text.notna(), None).to_numpy(), index=text.index, dtype=object)
    uniq = {v for v in obj if isinstance(v, str)}
    user_hit = {v: user.get(_norm(v)) for v in uniq}
    name_hit = {v: user_hit[v] or names.get(_norm(v)) for v in uniq}
    by_name = pd.Series([name_hit.get(v) if isinstance(v, str) else None for v in obj], index=text.index, dtype=object)
    from_user = pd.Series([bool(user_hit.get(v)) if isinstance(v, str) else False for v in obj], index=text.index)
    is_code = is_code.to_numpy(dtype=bool)
    is_code = pd.Series(is_code, index=text.index)
    named = ~is_code & by_name.notna()
    up = pd.Series(upper.astype(object).where(upper.notna(), None).to_numpy(), index=text.index, dtype=object)
    codes = up.where(is_code & ~from_user, by_name.where(named | from_user, up))
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
        done = done[done["la_code"].isin(target)]
        la.loc[done["_pos"].to_numpy()] = done["la_code"].to_numpy()
        is_split = failed["reason"].astype(str).str.startswith("split")
        split.loc[failed.loc[is_split, "_pos"].to_numpy()] = True
        split_reason.loc[failed.loc[is_split, "_pos"].to_numpy()] = failed.loc[is_split, "reason"].to_numpy()
        unknown.loc[failed.loc[~is_split, "_pos"].to_numpy()] = True
        leftover = ~codes.index.isin(done["_pos"]) & ~ok & ~split & ~unknown
        unknown |= leftover
    changed = la.notna() & ~unknown & ~split & (la != up.fillna(""))
    trans = pd.DataFrame({"row": (codes.index[changed] + 1).astype("int64"),
                          "la_code_original": text[changed].to_numpy(), "la_code": la[changed].to_numpy()})
    hints = {}
    if unknown.any():
        lookup = data_module.lookup(vintage)
        code_names = dict(zip(lookup["la_code"], lookup["la_name"]))
        for v in text[unknown].dropna().unique():
            close = suggest(v, list(names), cutoff=0.75) if not is_code[text == v].any() else []
            if close:
                code = names[_norm(close[0])]
                hints[v] = f"; did you mean {code_names.get(code, close[0])!r} ({code})?"
    reason = (f"not an upper-tier LA code or name of the {vintage} vintage (cdr.data.la_codes({vintage}); "
              f"names as in cdr.data.lookup({vintage})); map it with a [values.la_code] table")
    problems = {
        "unknown_la_code": (unknown, reason + _omap(text, hints)),
        "split_la_code": (split, "LA " + split_reason.astype(str) + f"; recode to a {vintage} successor"),
    }
    return la.where(~(unknown | split)), problems, trans


def _message(errors: pd.DataFrame, core: pd.Series, n: int, limit: int = 30) -> str:
    n_bad = errors["row"].nunique()
    n_core = errors.loc[core, "row"].nunique()
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
    lines.append(f'Fix the values above, or read with mode="lenient" to count the {n - n_core:,} deaths whose core '
                 f"fields are usable (bad optional values set to not recorded and listed) and exclude {n_core:,}.")
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


def _finish(out: pd.DataFrame, frame: pd.DataFrame, keep: pd.Series, mapping: dict, extra_fields=()) -> pd.DataFrame:
    rec = out[keep.to_numpy()].copy()
    age = rec["age_days"].astype("Int64")
    rec["age_days"] = age.astype("int64") if age.notna().all() else age
    for col in ("case_id", "sex", "la_code", "category", "ethnicity"):
        rec[col] = rec[col].astype(str)
    for col in ("modifiable", *DOMAINS):
        rec[col] = rec[col].astype(object).where(rec[col].notna(), None).astype("str").where(rec[col].notna())
    rec["imd_decile"] = rec["imd_decile"].astype("Int64")
    rec["synthetic"] = rec["synthetic"].astype(bool)
    extras = {f: rec[f] for f in extra_fields}
    rec = rec[list(RECORD_COLUMNS)]
    rec = _add_derived(rec)
    for f, values in extras.items():      # optional fields beyond the canonical columns, when given
        rec[f] = values.astype(object).where(values.notna(), None) if FIELDS[f].kind != "date" else values
    taken = set(rec.columns)
    for c in frame.columns:
        if mapping.get(str(c)) in (None,) and str(c) not in taken:
            rec[str(c)] = frame.loc[keep.to_numpy(), c].to_numpy()
    return rec.sort_values("case_id", kind="stable", ignore_index=True)


def _add_derived(rec: pd.DataFrame) -> pd.DataFrame:
    """Add :data:`DERIVED_COLUMNS` to canonical records (also used by :mod:`cdr.synthetic`)."""
    rec = rec.copy()
    band = age_band(rec["age_days"], date_of_death=rec["date_of_death"])
    rec["age_band"] = band.fillna(AGE_NOT_RECORDED).astype(str)
    rec["year"] = rec["date_of_death"].dt.year.astype("int64")
    ry = reporting_year(rec["date_of_death"])
    rec["reporting_year"] = ry["reporting_year"].astype(str)
    rec["reporting_year_start"] = ry["reporting_year_start"].astype("int64")
    rec["reviewed"] = rec["review_completed"].notna()
    return rec
