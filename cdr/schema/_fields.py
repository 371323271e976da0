"""The record's fields: code lists, accepted spellings of values and headers, and the field table.

One declarative entry of :data:`FIELDS` per record column. Adding an optional categorical field (say
``place_of_death``) is one entry: ``Field("place_of_death", "category", values={...}, headers=(...))``;
:func:`cdr.read_records` then maps its headers, maps and checks its values, and sets a bad value to
"not recorded" with a field-level issue in lenient mode, like every other optional field.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

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

#: Half-open ranges of ``age_days`` per band when no date is known (the fewest days that can make 1,
#: 5, 10, 15 and 18 years). Records use exact calendar ages instead (:func:`cdr.schema.age_band` with
#: ``date_of_death``): a child is 1 on their first birthday and under 18 until the day before their 18th.
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
    "bad_date": ("(date fields)", "a date, day first: 03/04/2022, 3/4/22, 03-04-2022, 03.04.2022, 3 April 2022, "
                 "2022-04-03, an Excel date (never month first)"),
    "bad_number": ("age_days, imd_decile", "a whole number"),
    "duplicate_case_id": ("case_id", "each case_id once"),
    "unknown_la_code": ("la_code", "an upper-tier LA code or name of the vintage (cdr.data.la_codes(vintage)); "
                        "one-to-one recodes of the other vintage, district names and short names are translated"),
    "split_la_code": ("la_code", "a code of the vintage; a split LA (Cumbria 2023) cannot be assigned to a successor"),
    "unknown_category": ("category", "one of the 10 CDR categories (cdr.schema.CATEGORIES keys or labels)"),
    "unknown_sex": ("sex", "male, female or unknown"),
    "unknown_ethnicity": ("ethnicity", "white, mixed, asian, black, other or unknown (ONS high-level groups), "
                          "or one of the 19 ONS 2021 groups (cdr.schema.ETHNIC_GROUPS_19)"),
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
    "bad_file": ("(file)", "a readable CSV, TSV, Excel or Parquet file with a header row"),
}

# --------------------------------------------------------------------------------------------
# synonyms


def _norm(text: str) -> str:
    """Lower case; every run of non-alphanumerics (except '*') becomes one space."""
    return re.sub(r"[^0-9a-z*]+", " ", str(text).lower().replace("&", " and ")).strip()


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
     ("insufficient information to determine", "insufficient_information"),
     ("yes modifiable factors identified", "yes"), ("modifiable factors", "yes"), ("yes modifiable", "yes"),
     ("no no modifiable factors identified", "no"), ("no modifiable factors", "no"), ("none identified", "no"),
     ("no factors identified", "no"), ("unable to determine", "insufficient_information"),
     ("cannot be determined", "insufficient_information"), ("inadequate information", "insufficient_information")],
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


#: The value a bad or missing optional field is set to in lenient mode, where the field has no
#: "not known" level of its own (``sex`` and ``ethnicity`` use ``"unknown"``; dates and outcomes NA).
NOT_RECORDED = "not_recorded"

#: The 19 ONS 2021 Census ethnic groups (England and Wales), key -> (high-level group, ONS label).
ETHNIC_GROUPS_19 = {
    "asian_bangladeshi": ("asian", "Asian, Asian British or Asian Welsh: Bangladeshi"),
    "asian_chinese": ("asian", "Asian, Asian British or Asian Welsh: Chinese"),
    "asian_indian": ("asian", "Asian, Asian British or Asian Welsh: Indian"),
    "asian_pakistani": ("asian", "Asian, Asian British or Asian Welsh: Pakistani"),
    "asian_other": ("asian", "Asian, Asian British or Asian Welsh: Other Asian"),
    "black_african": ("black", "Black, Black British, Black Welsh, Caribbean or African: African"),
    "black_caribbean": ("black", "Black, Black British, Black Welsh, Caribbean or African: Caribbean"),
    "black_other": ("black", "Black, Black British, Black Welsh, Caribbean or African: Other Black"),
    "mixed_white_asian": ("mixed", "Mixed or Multiple ethnic groups: White and Asian"),
    "mixed_white_black_african": ("mixed", "Mixed or Multiple ethnic groups: White and Black African"),
    "mixed_white_black_caribbean": ("mixed", "Mixed or Multiple ethnic groups: White and Black Caribbean"),
    "mixed_other": ("mixed", "Mixed or Multiple ethnic groups: Other Mixed or Multiple ethnic groups"),
    "white_british": ("white", "White: English, Welsh, Scottish, Northern Irish or British"),
    "white_irish": ("white", "White: Irish"),
    "white_gypsy_traveller": ("white", "White: Gypsy or Irish Traveller"),
    "white_roma": ("white", "White: Roma"),
    "white_other": ("white", "White: Other White"),
    "other_arab": ("other", "Other ethnic group: Arab"),
    "other_any": ("other", "Other ethnic group: Any other ethnic group"),
}

# How exports name the high-level groups (prefixes) and the detailed groups (suffixes); every
# "<group> <detail>", "<detail>" and "<detail> <group>" spelling is accepted (after _norm).
_GROUP_WORDS = {
    "asian": ["asian", "asian or asian british", "asian british", "asian asian british or asian welsh",
              "asian asian british", "asian or asian welsh"],
    "black": ["black", "black or black british", "black british", "black african caribbean or black british",
              "black black british black welsh caribbean or african", "black black british caribbean or african"],
    "mixed": ["mixed", "mixed or multiple ethnic groups", "mixed multiple ethnic groups", "mixed or multiple",
              "mixed dual background", "mixed dual heritage", "mixed heritage"],
    "white": ["white"],
    "other": ["other ethnic group", "other ethnic groups", "other", "any other ethnic group"],
}
_DETAIL_WORDS = {
    "asian_bangladeshi": ["bangladeshi"], "asian_chinese": ["chinese"], "asian_indian": ["indian"],
    "asian_pakistani": ["pakistani"],
    "asian_other": ["other asian", "any other asian background", "other asian background", "asian other", "other"],
    "black_african": ["african"], "black_caribbean": ["caribbean"],
    "black_other": ["other black", "any other black background", "other black background", "other"],
    "mixed_white_asian": ["white and asian"], "mixed_white_black_african": ["white and black african"],
    "mixed_white_black_caribbean": ["white and black caribbean"],
    "mixed_other": ["other mixed", "other mixed or multiple ethnic groups", "any other mixed background",
                    "other mixed background", "any other mixed multiple ethnic background", "other"],
    "white_british": ["english welsh scottish northern irish or british", "british", "english", "scottish", "welsh",
                      "northern irish", "british english welsh scottish northern irish", "uk", "english welsh scottish northern irish british"],
    "white_irish": ["irish"],
    "white_gypsy_traveller": ["gypsy or irish traveller", "gypsy irish traveller", "traveller of irish heritage",
                              "irish traveller", "gypsy roma", "gypsy"],
    "white_roma": ["roma"],
    "white_other": ["other white", "any other white background", "other white background", "other"],
    "other_arab": ["arab"],
    "other_any": ["any other ethnic group", "any other", "other", "any other ethnic background"],
}
# NHS Data Dictionary ethnic category codes (2001 Census groups), single letters.
_NHS_ETHNIC_CODES = {"a": "white_british", "b": "white_irish", "c": "white_other", "d": "mixed_white_black_caribbean",
                     "e": "mixed_white_black_african", "f": "mixed_white_asian", "g": "mixed_other", "h": "asian_indian",
                     "j": "asian_pakistani", "k": "asian_bangladeshi", "l": "asian_other", "m": "black_caribbean",
                     "n": "black_african", "p": "black_other", "r": "asian_chinese", "s": "other_any"}


def _detailed_synonyms() -> dict:
    table = {}
    for key, (group, label) in ETHNIC_GROUPS_19.items():
        details = _DETAIL_WORDS[key]
        for g in _GROUP_WORDS[group]:
            for d in details:
                table.setdefault(_norm(f"{g} {d}"), key)
                table.setdefault(_norm(f"{d} {g}"), key)
        for d in details:
            if d != "other" and not (key == "other_any" and d == "any other"):
                table.setdefault(_norm(d), key)
        table[_norm(label)] = key
        table[_norm(key)] = key
    table[_norm("white british")] = "white_british"
    table.update({k: v for k, v in _NHS_ETHNIC_CODES.items()})
    return table


_ETHNICITY_DETAILED_SYNONYMS = _detailed_synonyms()
# Detailed spellings also give the high-level group.
for _raw, _key in _ETHNICITY_DETAILED_SYNONYMS.items():
    _ETHNICITY_SYNONYMS.setdefault(_raw, ETHNIC_GROUPS_19[_key][0])
_ETHNICITY_SYNONYMS.update({"z": "unknown", "99": "unknown", "prefer not to say": "unknown", "declined": "unknown",
                            "not recorded": "unknown", "information not yet obtained": "unknown"})


def _first_word(table: dict, words: dict):
    """Fallback: map a value by its first word (``"Yes - modifiable factors identified"`` -> yes)."""
    def fallback(norm: str):
        head = norm.split(" ", 1)[0] if norm else ""
        return words.get(head)
    return fallback


@dataclass(frozen=True)
class Field:
    """One record column: how it is named in exports, what values it takes, and whether it is core.

    ``kind`` is ``"id"``, ``"date"``, ``"int"``, ``"category"`` or ``"bool"``. ``core`` fields decide whether
    a death can be counted at all; ``required`` fields must be present in strict mode; every other field
    is optional, and a bad value becomes ``missing`` (``"not recorded"``) with a field-level issue in lenient
    mode. ``values`` (key -> label) and ``synonyms`` (raw -> key) give the accepted spellings.

    Parameters
    ----------
    name : str
        Canonical column name.
    kind : {"id", "date", "int", "category", "bool"}
        How values are parsed.
    meaning : str
        One line for ``cdr data columns`` and the record template.
    headers : tuple of str
        Export header spellings matched after normalising case, spacing and punctuation.
    values : dict
        Canonical key -> label (categorical fields).
    synonyms : dict
        Normalised raw spelling -> canonical key, besides keys and labels.
    core, required : bool
        Core fields decide whether a death is counted; required columns must exist in strict mode.
    missing : str, optional
        The "not recorded" value of a categorical field (default: blank).
    rule : str
        The :data:`cdr.schema.RULES` id reported for a bad value.
    fallback : callable, optional
        ``f(normalised value) -> key or None``, tried after the table.

    Examples
    --------
    An optional categorical field is one entry:

    >>> place = Field("place_of_death", "category", "where the child died",
    ...               headers=("place of death",), values={"hospital": "Hospital", "home": "Home"})
    >>> place.lookup()["hospital"], sorted(place.lookup())
    ('hospital', ['home', 'hospital'])
    """

    name: str
    kind: str
    meaning: str
    headers: tuple = ()
    values: dict = field(default_factory=dict)
    synonyms: dict = field(default_factory=dict)
    core: bool = False
    required: bool = False
    missing: object = None
    rule: str = ""
    fallback: object = None

    def lookup(self) -> dict:
        """Normalised raw value -> canonical key (labels, keys and synonyms)."""
        table = dict(self.synonyms)
        for key, label in self.values.items():
            table.setdefault(_norm(key), key)
            table.setdefault(_norm(label), key)
        return table


FIELDS = {f.name: f for f in (
    Field("case_id", "id", "the partnership's reference for the death (unique; never published)",
          headers=("case id", "case ref", "case reference", "cdop ref", "cdop reference", "cdop id", "cdop number",
                   "reference", "ref", "id", "child id", "ecdop ref", "ecdop id", "ncmd id", "case number", "record id"),
          required=True),
    Field("date_of_birth", "date", "date of birth (day first: 3/4/2022 is 3 April)",
          headers=("dob", "d o b", "date of birth", "birth date", "birthdate", "child dob", "child date of birth")),
    Field("date_of_death", "date", "date of death (day first)", core=True, required=True,
          headers=("dod", "d o d", "date of death", "death date", "date died", "date of child death", "child dod")),
    Field("age_days", "int", "age at death in completed days (derived from the dates when absent)",
          headers=("age days", "age in days", "age at death days", "age at death in days", "days old")),
    Field("sex", "category", "sex of the child", required=True, missing="unknown", rule="unknown_sex",
          values={k: k for k in SEXES}, synonyms=_SEX_SYNONYMS,
          headers=("sex", "gender", "child sex", "child gender", "sex of child", "gender of child")),
    Field("la_code", "id", "upper-tier LA of residence: ONS code (E06000001) or name (Hartlepool)", core=True,
          required=True,
          headers=("la code", "la", "local authority", "la of residence", "local authority of residence",
                   "residence la", "la name", "local authority code", "la of residence code", "utla", "utla code",
                   "utla name", "home local authority", "resident la", "area of residence", "residence")),
    Field("category", "category", "category of death (the 10 CDR categories)", required=True, missing=NOT_RECORDED,
          rule="unknown_category", values=CATEGORIES, synonyms=_CATEGORY_SYNONYMS,
          headers=("category", "category of death", "cdop category", "death category", "category of death cdop",
                   "cause category", "primary category", "category of death primary")),
    Field("review_completed", "date", "date the CDOP review was completed (blank: review pending)",
          headers=("review completed", "date review completed", "date cdop review completed", "review date",
                   "cdop review date", "date of cdop review", "review completed date", "date reviewed",
                   "date of review", "cdop review completed", "panel date", "cdop panel date")),
    Field("modifiable", "category", "the panel's judgement on modifiable factors (blank while pending)",
          rule="bad_modifiable", values={k: k.replace("_", " ") for k in MODIFIABLE}, synonyms=_MODIFIABLE_SYNONYMS,
          headers=("modifiable", "modifiable factors", "modifiable factors identified", "were modifiable factors identified",
                   "modifiable factors identified y n", "any modifiable factors", "modifiable y n", "modifiability"),
          fallback=_first_word(_MODIFIABLE_SYNONYMS, {"yes": "yes", "y": "yes", "no": "no", "n": "no"})),
    *(Field(d, "category", f"domain score: {label.lower()} (pre-2019 Form C scale 0, 1, 1*, 2, 3)",
            rule="bad_domain_level", values=DOMAIN_LEVELS, synonyms=_LEVEL_SYNONYMS,
            headers=(d.replace("_", " "), f"domain {i}", f"{d.split('_')[1]} domain", label, f"domain {i} score",
                     f"{d.split('_')[1]} factors"))
      for i, (d, label) in enumerate(DOMAINS.items(), start=1)),
    Field("imd_decile", "int", "IMD 2019 decile of the child's home LSOA (1 most deprived - 10)",
          headers=("imd decile", "imd", "deprivation decile", "imd 2019 decile", "imd decile 2019", "imd decile lsoa")),
    Field("ethnicity", "category", "ethnic group: the 5 ONS high-level groups, or any of the 19 ONS 2021 groups",
          missing="unknown", rule="unknown_ethnicity", values=ETHNICITIES, synonyms=_ETHNICITY_SYNONYMS,
          headers=("ethnicity", "ethnic group", "ethnic origin", "ethnic category", "child ethnicity", "ethnicity group",
                   "ethnicity of child", "ethnic background")),
    Field("ethnicity_detailed", "category", "ONS 2021 ethnic group (19 groups); filled from ethnicity when detailed",
          rule="unknown_ethnicity", values={k: v[1] for k, v in ETHNIC_GROUPS_19.items()},
          synonyms=_ETHNICITY_DETAILED_SYNONYMS, headers=("ethnicity detailed", "detailed ethnicity", "ethnicity 19")),
    Field("synthetic", "bool", "True for generated (SYNTHETIC) records", headers=("synthetic",)),
)}

#: Derived columns: recognised in an input file (a file written by cdr) but recomputed, never used.
_DERIVED_INPUT = ("age_band", "year", "reporting_year", "reporting_year_start", "reviewed")


def _header_table() -> dict:
    """Normalised header -> field name."""
    table = {}
    for f in FIELDS.values():
        table.setdefault(_norm(f.name), f.name)
        for h in f.headers:
            table.setdefault(_norm(h), f.name)
    return table


