"""Synthetic values of the optional record fields (:mod:`cdr.fields`). SYNTHETIC DATA.

Called at the end of :func:`cdr.synthetic.generate_records`. The proportions below are listed in
``cdr/_data/calibration.csv`` (rows ``field_*``) with their kind: *published* where a national
figure exists in the reference notes (``/work/shared/reference``: 15 % of children who died in
the year to March 2023 were known to social care, NCMD via secondary report; 67-74 % of deaths
expected in published CDOP reports), otherwise *assumption*, stated as such.

Draws use their own random streams, one per generated period, keyed by (seed, 15, period), so
the core records of :mod:`cdr.synthetic` are unchanged by this module and the values of a period
do not depend on the other periods generated.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cdr.fields import NOT_RECORDED, THEMES

__all__ = ["add_fields", "P_UNEXPECTED", "P_NOT_RECORDED"]

#: Share of deaths unexpected, by category (ASSUMPTION, set so the overall share is about 30 %,
#: within the 24-33 % unexpected of published CDOP reports).
P_UNEXPECTED = {
    "abuse_neglect": 0.95, "suicide_self_harm": 0.98, "trauma_external": 0.97, "malignancy": 0.03,
    "acute_medical_surgical": 0.45, "chronic_medical": 0.15, "chromosomal_genetic_congenital": 0.08,
    "perinatal_neonatal": 0.08, "infection": 0.40, "sudden_unexpected_unexplained": 1.0,
}
#: Share of any optional field left not recorded (ASSUMPTION).
P_NOT_RECORDED = 0.03
#: Joint Agency Response after an unexpected death (ASSUMPTION; Working Together 2018 expects one).
P_JAR_UNEXPECTED = 0.85
#: Place of death (ASSUMPTION), columns in cdr.fields place order without not_recorded.
_PLACES = ["neonatal_unit", "hospital_ward", "emergency_department", "home", "hospice", "public_place", "abroad", "other"]
_PLACE_P = {
    "neonatal": [0.80, 0.08, 0.03, 0.05, 0.02, 0.00, 0.01, 0.01],
    "infant_expected": [0.25, 0.50, 0.05, 0.10, 0.08, 0.00, 0.01, 0.01],
    "expected": [0.00, 0.55, 0.05, 0.22, 0.15, 0.00, 0.02, 0.01],
    "unexpected": [0.02, 0.20, 0.40, 0.25, 0.00, 0.08, 0.02, 0.03],
    "external": [0.00, 0.15, 0.25, 0.25, 0.00, 0.30, 0.02, 0.03],
}
#: Gestation and birth weight bands of infant deaths (ASSUMPTION; MBRRACE-UK reports most neonatal
#: deaths follow preterm birth), by age band; weight band given gestation band.
_GEST = ["under_24", "24_27", "28_31", "32_36", "37_plus"]
_GEST_P = {"neonatal": [0.35, 0.20, 0.08, 0.12, 0.25], "postneonatal": [0.05, 0.15, 0.10, 0.15, 0.55]}
_WEIGHT = ["under_1000", "1000_1499", "1500_2499", "2500_plus"]
_WEIGHT_GIVEN_GEST = {"under_24": [0.97, 0.03, 0.00, 0.00], "24_27": [0.80, 0.18, 0.02, 0.00],
                      "28_31": [0.15, 0.55, 0.30, 0.00], "32_36": [0.02, 0.10, 0.60, 0.28],
                      "37_plus": [0.00, 0.01, 0.14, 0.85]}
#: Known to children's social care: published 15 % overall (YE Mar 2023); by category (ASSUMPTION).
P_SOCIAL_CARE = {"abuse_neglect": 0.90, "suicide_self_harm": 0.45, "trauma_external": 0.25,
                 "sudden_unexpected_unexplained": 0.25}
P_SOCIAL_CARE_OTHER = 0.115
#: Child safeguarding practice review (ASSUMPTION).
P_CSPR = {"abuse_neglect": 0.60, "suicide_self_harm": 0.10}
P_CSPR_OTHER = 0.005
#: Inquest opened (ASSUMPTION).
P_INQUEST = {"abuse_neglect": 0.80, "suicide_self_harm": 0.95, "trauma_external": 0.90,
             "sudden_unexpected_unexplained": 0.85}
P_INQUEST_OTHER = 0.04
#: Themes among reviews with modifiable factors, by category (ASSUMPTION); other categories use "default".
THEME_P = {
    "sudden_unexpected_unexplained": {"unsafe_sleep": 0.60, "smoking_in_pregnancy": 0.40, "substance_misuse": 0.20,
                                      "housing": 0.10},
    "perinatal_neonatal": {"smoking_in_pregnancy": 0.30, "maternal_obesity": 0.25, "access_to_services": 0.35},
    "trauma_external": {"road_safety": 0.45, "water_safety": 0.15, "access_to_services": 0.10},
    "suicide_self_harm": {"access_to_services": 0.45, "parental_mental_health": 0.20, "domestic_abuse": 0.15,
                          "bullying_online_harm": 0.25, "substance_misuse": 0.15},
    "abuse_neglect": {"domestic_abuse": 0.50, "substance_misuse": 0.35, "parental_mental_health": 0.35,
                      "housing": 0.15},
    "default": {"access_to_services": 0.35, "smoking_in_pregnancy": 0.10, "housing": 0.08,
                "parental_mental_health": 0.08},
}


def _pick(prob_rows: np.ndarray, rng) -> np.ndarray:
    cum = np.cumsum(prob_rows, axis=1)
    cum = cum / cum[:, -1:]
    return (rng.random(len(prob_rows))[:, None] > cum).sum(axis=1)


def _draw(rec: pd.DataFrame, rng) -> pd.DataFrame:
    n = len(rec)
    cat = rec["category"].to_numpy()
    age = rec["age_band"].to_numpy()
    reviewed = rec["reviewed"].to_numpy(bool)
    out = {}

    def missing():
        return rng.random(n) < P_NOT_RECORDED

    p_unexp = pd.Series(cat).map(P_UNEXPECTED).fillna(0.3).to_numpy(float)
    unexpected = rng.random(n) < p_unexp
    out["death_expected"] = np.where(missing(), NOT_RECORDED, np.where(unexpected, "unexpected", "expected"))
    jar = np.where(unexpected, np.where(rng.random(n) < P_JAR_UNEXPECTED, "yes", "no"), "no")
    out["jar"] = np.where(missing(), NOT_RECORDED, jar)

    external = np.isin(cat, ["trauma_external", "suicide_self_harm", "abuse_neglect"])
    infant = np.isin(age, ["neonatal", "postneonatal"])
    kind = np.select([external, age == "neonatal", unexpected, infant], ["external", "neonatal", "unexpected",
                                                                         "infant_expected"], "expected")
    probs = np.array([_PLACE_P[k] for k in kind]) if n else np.zeros((0, len(_PLACES)))
    place = np.asarray(_PLACES, dtype=object)[_pick(probs, rng)] if n else np.array([], dtype=object)
    out["place_of_death"] = np.where(missing(), NOT_RECORDED, place)

    gp = np.array([_GEST_P.get(a, _GEST_P["postneonatal"]) for a in age]) if n else np.zeros((0, 5))
    gest = np.asarray(_GEST, dtype=object)[_pick(gp, rng)] if n else np.array([], dtype=object)
    wp = np.array([_WEIGHT_GIVEN_GEST[g] for g in gest]) if n else np.zeros((0, 4))
    weight = np.asarray(_WEIGHT, dtype=object)[_pick(wp, rng)] if n else np.array([], dtype=object)
    out["gestation_band"] = np.where(infant & ~missing(), gest, NOT_RECORDED)
    out["birth_weight_band"] = np.where(infant & ~missing(), weight, NOT_RECORDED)

    for name, table, other in (("known_to_social_care", P_SOCIAL_CARE, P_SOCIAL_CARE_OTHER),
                               ("cspr", P_CSPR, P_CSPR_OTHER), ("inquest", P_INQUEST, P_INQUEST_OTHER)):
        p = pd.Series(cat).map(table).fillna(other).to_numpy(float)
        out[name] = np.where(missing(), NOT_RECORDED, np.where(rng.random(n) < p, "yes", "no"))

    modifiable = (rec["modifiable"].astype("string").fillna("") == "yes").to_numpy() & reviewed
    keys = list(THEMES)
    has = np.zeros((n, len(keys)), dtype=bool)
    u = rng.random((n, len(keys)))
    for j, key in enumerate(keys):
        p = np.array([THEME_P.get(c, THEME_P["default"]).get(key, 0.0) for c in cat]) if n else np.zeros(0)
        has[:, j] = modifiable & (u[:, j] < p)
    none = modifiable & ~has.any(axis=1)
    has[:, keys.index("other")] |= none
    out["factor_themes"] = np.array([";".join(k for k, h in zip(keys, row) if h) for row in has], dtype=object)
    return pd.DataFrame(out, index=rec.index)


def add_fields(records: pd.DataFrame, seed=0) -> pd.DataFrame:
    """Records with the optional fields of :mod:`cdr.fields` filled in. SYNTHETIC DATA.

    Parameters
    ----------
    records : pandas.DataFrame
        Synthetic records (``case_id`` of the form ``SYN<period>-...``, ``category``, ``age_band``,
        ``reviewed``, ``modifiable``).
    seed : int, numpy.random.Generator or None
        As given to :func:`cdr.synthetic.generate_records`: an int gives one stream per period,
        ``(seed, 15, period)``; a Generator is used as it is.

    Returns
    -------
    pandas.DataFrame
        A copy with ``death_expected``, ``jar``, ``place_of_death``, ``gestation_band``,
        ``birth_weight_band``, ``known_to_social_care``, ``cspr``, ``inquest`` and ``factor_themes``.

    Examples
    --------
    >>> import pandas as pd
    >>> rec = pd.DataFrame({"case_id": ["SYN2022-E06000001-0001"], "category": ["sudden_unexpected_unexplained"],
    ...                     "age_band": ["postneonatal"], "reviewed": [True], "modifiable": ["yes"]})
    >>> bool(add_fields(rec, seed=1)["death_expected"].isin(["unexpected", "not_recorded"]).all())
    True
    """
    rec = records.copy()
    if len(rec) == 0:
        for name in ("death_expected", "jar", "place_of_death", "gestation_band", "birth_weight_band",
                     "known_to_social_care", "cspr", "inquest", "factor_themes"):
            rec[name] = pd.Series(dtype=object)
        return rec
    if isinstance(seed, np.random.Generator):
        drawn = _draw(rec.sort_values("case_id"), seed)
    else:
        entropy = np.random.SeedSequence(seed).entropy if seed is None else int(seed)
        period = rec["case_id"].astype(str).str.slice(3, 7)
        period = pd.to_numeric(period, errors="coerce").fillna(0).astype(int)
        parts = []
        for p in sorted(period.unique()):
            sub = rec[period.to_numpy() == p].sort_values("case_id")
            parts.append(_draw(sub, np.random.default_rng([entropy, 15, int(p)])))
        drawn = pd.concat(parts)
    for col in drawn.columns:
        rec[col] = drawn[col].reindex(rec.index).to_numpy()
    return rec
