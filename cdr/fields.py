"""Optional record fields of the annual report (issue 15): a declarative registry and its validation.

Child death overview panel (CDOP) annual reports publish more than the core record
(:mod:`cdr.schema`) holds: whether a death was expected, whether a Joint Agency Response (JAR)
followed an unexpected death, where the child died, gestation and birth weight of infants,
safeguarding involvement, inquests and the themes of the modifiable factors found at review.
Each is an *optional* column, declared once in :data:`FIELDS`: canonical values (keys), labels,
the spellings commonly found in exports, and a description.

:func:`normalise_fields` validates and normalises these columns in a records frame. A value that
is blank becomes ``"not_recorded"``; a value that cannot be read also becomes ``"not_recorded"``
and is reported as a *field-level issue* (row, case_id, field, value, reason): the death itself is
never dropped, because an optional field must not change who is counted. :func:`cdr.schema.validate_records`
calls it, so records read with :func:`cdr.read_records` carry the issues in
``records.attrs["field_issues"]`` (and a :class:`~cdr.errors.FieldValueWarning`).

``factor_themes`` is multi-valued: theme keys of :data:`THEMES` separated by ``";"`` (blank: none
recorded). The theme list is extensible: pass ``themes=`` to :func:`normalise_fields` with more
keys (key -> label) and they are accepted and counted like the built-in ones.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cdr.errors import CdrWarning

__all__ = ["Field", "FIELDS", "THEMES", "NOT_RECORDED", "FieldValueWarning", "normalise_fields", "field_table",
           "gestation_band", "birth_weight_band"]

NOT_RECORDED = "not_recorded"


class FieldValueWarning(CdrWarning):
    """An optional field held a value that could not be read; it was set to ``not_recorded``."""


@dataclass(frozen=True)
class Field:
    """One optional record field: its canonical values, their labels and the spellings accepted.

    Attributes
    ----------
    name : str
        Column name in canonical records.
    description : str
        What the field records (shown in the docs and the report notes).
    levels : dict
        Canonical key -> label, in the order tables show them; ``not_recorded`` is always last.
    spellings : dict
        Further accepted spellings (lower case, spaces and punctuation collapsed) -> key.
    aliases : tuple of str
        Other column names that are read as this field when it is absent.
    multi : bool
        Several values separated by ``";"`` (``factor_themes``).
    numeric : callable or None
        Turns a number (weeks, grams) into a key, for the banded fields.
    """

    name: str
    description: str
    levels: dict
    spellings: dict = field(default_factory=dict)
    aliases: tuple = ()
    multi: bool = False
    numeric: object = None

    def lookup(self) -> dict:
        """Normalised spelling -> key (keys, labels and the spellings)."""
        out = {}
        for key, label in self.levels.items():
            out[_norm(key)] = key
            out[_norm(label)] = key
        out.update({_norm(k): v for k, v in self.spellings.items()})
        return out


_YES_NO = {"yes": "Yes", "no": "No", NOT_RECORDED: "Not recorded"}
_YES_NO_SPELLINGS = {"y": "yes", "true": "yes", "t": "yes", "1": "yes", "n": "no", "false": "no", "f": "no",
                     "0": "no", "unknown": NOT_RECORDED, "not known": NOT_RECORDED, "nk": NOT_RECORDED,
                     "missing": NOT_RECORDED}

#: Gestation at birth, completed weeks (bands as used by MBRRACE-UK and CDOP reports for neonatal deaths).
GESTATION_BANDS = {"under_24": "Under 24 weeks", "24_27": "24-27 weeks", "28_31": "28-31 weeks",
                   "32_36": "32-36 weeks", "37_plus": "37 weeks or more", NOT_RECORDED: "Not recorded"}
#: Birth weight (WHO: extremely low < 1,000 g, very low < 1,500 g, low < 2,500 g).
BIRTH_WEIGHT_BANDS = {"under_1000": "Under 1,000 g", "1000_1499": "1,000-1,499 g", "1500_2499": "1,500-2,499 g",
                      "2500_plus": "2,500 g or more", NOT_RECORDED: "Not recorded"}


def gestation_band(weeks):
    """Gestation band key of completed weeks at birth.

    Parameters
    ----------
    weeks : array_like of float
        Completed weeks of gestation; values outside 20-45 weeks (or NaN) give ``None``.

    Returns
    -------
    numpy.ndarray of object
        Keys of ``GESTATION_BANDS`` (``"under_24"`` ... ``"37_plus"``) or ``None``.

    Examples
    --------
    >>> gestation_band([23, 24, 31.5, 36, 40, 60]).tolist()
    ['under_24', '24_27', '28_31', '32_36', '37_plus', None]
    """
    w = np.asarray(weeks, dtype=float)
    ok = (w >= 20) & (w <= 45)
    edges = np.array([24, 28, 32, 37])
    keys = np.array(["under_24", "24_27", "28_31", "32_36", "37_plus"], dtype=object)
    out = keys[np.searchsorted(edges, np.where(ok, w, 0), side="right")]
    return np.where(ok, out, None)


def birth_weight_band(grams):
    """Birth weight band key of a weight in grams.

    Parameters
    ----------
    grams : array_like of float
        Birth weight in grams; values outside 200-7,000 g (or NaN) give ``None``.

    Returns
    -------
    numpy.ndarray of object
        Keys of ``BIRTH_WEIGHT_BANDS`` or ``None``.

    Examples
    --------
    >>> birth_weight_band([650, 1000, 2499, 3400, 90]).tolist()
    ['under_1000', '1000_1499', '1500_2499', '2500_plus', None]
    """
    g = np.asarray(grams, dtype=float)
    ok = (g >= 200) & (g <= 7000)
    edges = np.array([1000, 1500, 2500])
    keys = np.array(["under_1000", "1000_1499", "1500_2499", "2500_plus"], dtype=object)
    out = keys[np.searchsorted(edges, np.where(ok, g, 0), side="right")]
    return np.where(ok, out, None)


#: Themes of modifiable factors recorded at review (key -> label). Extensible: see :func:`normalise_fields`.
#: The first seven are the themes issue 15 names from published CDOP reports; the rest recur in
#: NCMD thematic reports (suicide, sudden unexpected death in infancy, deprivation).
THEMES = {
    "smoking_in_pregnancy": "Smoking in pregnancy or in the household",
    "unsafe_sleep": "Unsafe sleeping arrangements",
    "maternal_obesity": "Maternal obesity",
    "substance_misuse": "Parental alcohol or substance misuse",
    "access_to_services": "Access to or delivery of services",
    "road_safety": "Road safety",
    "water_safety": "Water safety",
    "parental_mental_health": "Parental mental health",
    "domestic_abuse": "Domestic abuse",
    "housing": "Housing or overcrowding",
    "bullying_online_harm": "Bullying or online harm",
    "other": "Other theme",
}

_THEME_SPELLINGS = {
    "smoking": "smoking_in_pregnancy", "maternal smoking": "smoking_in_pregnancy",
    "smoking during pregnancy": "smoking_in_pregnancy", "co sleeping": "unsafe_sleep",
    "unsafe sleep": "unsafe_sleep", "safe sleep": "unsafe_sleep", "obesity": "maternal_obesity",
    "maternal bmi": "maternal_obesity", "alcohol": "substance_misuse", "drugs": "substance_misuse",
    "substance use": "substance_misuse", "access to services": "access_to_services",
    "service provision": "access_to_services", "road traffic": "road_safety", "rtc": "road_safety",
    "drowning": "water_safety", "mental health": "parental_mental_health", "domestic violence": "domestic_abuse",
    "overcrowding": "housing", "bullying": "bullying_online_harm", "online harm": "bullying_online_harm",
}

#: The optional fields, by canonical column name.
FIELDS = {f.name: f for f in (
    Field("death_expected", "Whether the death was expected or unexpected (Working Together 2018: an unexpected "
          "death was not anticipated as a significant possibility, e.g. 24 hours before the death).",
          {"expected": "Expected", "unexpected": "Unexpected", NOT_RECORDED: "Not recorded"},
          {"e": "expected", "exp": "expected", "u": "unexpected", "unexp": "unexpected",
           "not expected": "unexpected", "unknown": NOT_RECORDED, "not known": NOT_RECORDED},
          aliases=("expected", "expected_death", "expectedness", "death_expectedness")),
    Field("jar", "Whether a Joint Agency Response followed the death (expected for unexpected deaths).",
          dict(_YES_NO), {**_YES_NO_SPELLINGS, "jar": "yes", "jar held": "yes", "no jar": "no"},
          aliases=("joint_agency_response", "jar_held")),
    Field("place_of_death", "Where the child died.",
          {"neonatal_unit": "Hospital: neonatal unit (NICU/SCBU)", "hospital_ward": "Hospital: other ward or unit",
           "emergency_department": "Hospital: emergency department", "home": "Home", "hospice": "Hospice",
           "public_place": "Public place", "abroad": "Abroad", "other": "Other", NOT_RECORDED: "Not recorded"},
          {"nicu": "neonatal_unit", "nnu": "neonatal_unit", "scbu": "neonatal_unit", "neonatal unit": "neonatal_unit",
           "neonatal intensive care unit": "neonatal_unit", "hospital": "hospital_ward", "picu": "hospital_ward",
           "ward": "hospital_ward", "paediatric intensive care unit": "hospital_ward",
           "a e": "emergency_department", "ed": "emergency_department", "accident and emergency": "emergency_department",
           "emergency department": "emergency_department", "own home": "home", "family home": "home",
           "usual residence": "home", "childrens hospice": "hospice", "public": "public_place",
           "street": "public_place", "road": "public_place", "outside uk": "abroad", "overseas": "abroad",
           "outside england": "abroad", "unknown": NOT_RECORDED},
          aliases=("death_place", "location_of_death")),
    Field("gestation_band", "Gestation at birth (completed weeks), for deaths under 1 year; weeks are banded.",
          GESTATION_BANDS, {"<24": "under_24", "24-27": "24_27", "28-31": "28_31", "32-36": "32_36", "37+": "37_plus",
                            ">=37": "37_plus", "term": "37_plus", "unknown": NOT_RECORDED},
          aliases=("gestation", "gestation_weeks", "gestational_age"), numeric=gestation_band),
    Field("birth_weight_band", "Birth weight (grams), for deaths under 1 year; grams are banded.",
          BIRTH_WEIGHT_BANDS, {"<1000": "under_1000", "1000-1499": "1000_1499", "1500-2499": "1500_2499",
                               "2500+": "2500_plus", ">=2500": "2500_plus", "unknown": NOT_RECORDED},
          aliases=("birth_weight", "birthweight", "birth_weight_g"), numeric=birth_weight_band),
    Field("known_to_social_care", "Whether the child was known to children's social care at the time of death.",
          dict(_YES_NO), dict(_YES_NO_SPELLINGS), aliases=("social_care", "known_to_csc", "known_to_childrens_social_care")),
    Field("cspr", "Whether a child safeguarding practice review (rapid review or local review) was undertaken.",
          dict(_YES_NO), dict(_YES_NO_SPELLINGS), aliases=("lcspr", "safeguarding_practice_review",
                                                             "child_safeguarding_practice_review")),
    Field("inquest", "Whether the coroner opened an inquest.",
          dict(_YES_NO), {**_YES_NO_SPELLINGS, "held": "yes", "opened": "yes", "not held": "no"},
          aliases=("coroner_inquest", "inquest_held")),
    Field("factor_themes", "Themes of the modifiable factors identified at review, ';'-separated keys of "
          "cdr.fields.THEMES (blank: none recorded).", dict(THEMES), dict(_THEME_SPELLINGS),
          aliases=("themes", "learning_themes", "modifiable_factor_themes"), multi=True),
)}


def _norm(text) -> str:
    return re.sub(r"[^0-9a-z<>=+\-]+", " ", str(text).strip().lower()).strip()


def field_table() -> pd.DataFrame:
    """The registry as a table: one row per field and value.

    Returns
    -------
    pandas.DataFrame
        ``field``, ``key``, ``label``, ``description``, ``multi``.

    Examples
    --------
    >>> t = field_table()
    >>> t[t["field"] == "jar"]["key"].tolist()
    ['yes', 'no', 'not_recorded']
    """
    rows = [{"field": f.name, "key": k, "label": lab, "description": f.description, "multi": f.multi}
            for f in FIELDS.values() for k, lab in f.levels.items()]
    return pd.DataFrame(rows, columns=["field", "key", "label", "description", "multi"])


def normalise_fields(frame: pd.DataFrame, *, case_id=None, themes=None, warn: bool = True):
    """Validate and normalise the optional fields of :data:`FIELDS` present in `frame`.

    Parameters
    ----------
    frame : pandas.DataFrame
        Records, one row per death; column names already lower case with underscores. Only the
        optional fields present (by name or alias) are touched; the input is not modified.
    case_id : array_like, optional
        Case ids to name in the issues (default: the ``case_id`` column, if any).
    themes : dict, optional
        Extra theme keys (key -> label) accepted in ``factor_themes`` besides :data:`THEMES`.
    warn : bool, default True
        Issue one :class:`FieldValueWarning` summarising the issues, if any.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        The frame with the fields normalised to their keys (blank or unreadable -> ``"not_recorded"``;
        ``factor_themes``: known keys in :data:`THEMES` order joined by ``";"``, ``""`` for none),
        and the issues: ``row`` (1-based), ``case_id``, ``field``, ``value``, ``reason``. No row is dropped.

    Examples
    --------
    >>> raw = pd.DataFrame({"case_id": ["A1", "A2", "A3"], "expected": ["Unexpected", "E", "maybe"],
    ...                     "factor_themes": ["Unsafe sleep; smoking", "", "road_safety;kites"]})
    >>> out, issues = normalise_fields(raw, warn=False)
    >>> out["death_expected"].tolist()
    ['unexpected', 'expected', 'not_recorded']
    >>> out["factor_themes"].tolist()
    ['smoking_in_pregnancy;unsafe_sleep', '', 'road_safety']
    >>> issues[["row", "case_id", "field", "value"]].values.tolist()
    [[3, 'A3', 'death_expected', 'maybe'], [3, 'A3', 'factor_themes', 'kites']]
    """
    out = frame.copy()
    n = len(out)
    ids = (pd.Series(case_id).astype(str).to_numpy() if case_id is not None
           else out["case_id"].astype(str).to_numpy() if "case_id" in out else np.array([""] * n))
    rows = np.arange(1, n + 1)
    issues = []
    theme_levels = {**THEMES, **(themes or {})}
    for f in FIELDS.values():
        col = f.name if f.name in out else next((a for a in f.aliases if a in out), None)
        if col is None:
            continue
        raw = out[col]
        text = raw.astype("string").str.strip()
        blank = text.isna() | (text == "")
        if f.multi:
            lookup = {**f.lookup(), **{_norm(k): k for k in theme_levels}, **{_norm(v): k for k, v in theme_levels.items()}}
            order = {k: i for i, k in enumerate(theme_levels)}
            values, bad_tokens = [], []
            for i, t in enumerate(text.fillna("").to_numpy()):
                keys, bad = set(), []
                for tok in filter(None, (s.strip() for s in str(t).split(";"))):
                    k = lookup.get(_norm(tok))
                    if k is None:
                        bad.append(tok)
                    else:
                        keys.add(k)
                values.append(";".join(sorted(keys, key=order.get)))
                if bad:
                    issues.append((rows[i], ids[i], f.name, "; ".join(bad),
                                   "not a theme of cdr.fields.THEMES (dropped from the list; the death is kept)"))
            norm = pd.Series(values, index=out.index, dtype=object)
        else:
            lookup = f.lookup()
            norm = text.map(lambda v: lookup.get(_norm(v)) if v is not pd.NA else None).astype(object)
            if f.numeric is not None:
                num = pd.to_numeric(text, errors="coerce")
                banded = pd.Series(f.numeric(num.to_numpy(dtype=float)), index=out.index)
                norm = norm.where(norm.notna(), banded)
            bad = norm.isna() & ~blank
            for i in np.flatnonzero(bad.to_numpy()):
                issues.append((rows[i], ids[i], f.name, str(raw.iloc[i]),
                               "allowed: " + ", ".join(k for k in f.levels) + " (or their labels); set to not_recorded"))
            norm = norm.where(norm.notna(), NOT_RECORDED)
        if col != f.name:
            out = out.drop(columns=[col])
        out[f.name] = norm.to_numpy()
    issues = pd.DataFrame(issues, columns=["row", "case_id", "field", "value", "reason"])
    issues = issues.sort_values(["row", "field"], kind="stable", ignore_index=True)
    if warn and len(issues):
        by = issues.groupby("field").size()
        first = issues.iloc[0]
        warnings.warn(
            f"{len(issues):,} value(s) of optional fields could not be read and were set to not_recorded "
            f"({', '.join(f'{k}: {v}' for k, v in by.items())}); e.g. row {first['row']} case_id={first['case_id']} "
            f"{first['field']}={first['value']!r}. No death was dropped; the list is in records.attrs['field_issues']. "
            "Fix the values at source or map them (cdr.fields.FIELDS lists the accepted spellings).",
            FieldValueWarning, stacklevel=3)
    return out, issues
