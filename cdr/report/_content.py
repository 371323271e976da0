"""The tables CDOP annual reports always contain, beyond the core (issue 15).

Declared over the same bundle of cells as every other table (:mod:`cdr.report._tables`), so they
are protected and audited with the rest: every count is a cell, margins and merged levels are
equations. Rates are computed after protection, from published counts only, by one function
(:func:`finish`) that applies the rate rules (:data:`RATE_RULES`) in every table with a rate.

Tables (``tables/<name>.csv``), when the records have the fields they need (:mod:`cdr.fields`):
``deaths_by_expectedness``, ``joint_agency_response``, ``deaths_by_place_of_death``,
``deaths_by_deprivation`` (replaces the core table: counts, rates per 100,000 by IMD quintile,
England comparison, SII/RII), ``time_to_review``, ``infant_mortality``, ``learning_themes``,
``deaths_by_gestation``, ``deaths_by_birth_weight``, ``safeguarding``, ``inquest``; and
``deaths_by_ethnicity`` (replaces the core table: counts, shares, rates per 100,000 by the five
high-level groups with approximated denominators from :func:`cdr.data.child_population_by_ethnicity`,
England comparison).
"""
from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import pandas as pd

from cdr.fields import BIRTH_WEIGHT_BANDS, FIELDS, GESTATION_BANDS, NOT_RECORDED, THEMES
from cdr.report._bundle import MARK_LOW, MARK_NA, MARK_SUPPRESSED, TableSpec
from cdr.report._inputs import (AGE_BAND_LABELS, AGE_BANDS, CATEGORY_LABELS, CATEGORY_ORDER, ETHNICITY_LABELS,
                               IMD_QUINTILE_LABELS)

__all__ = ["CONTENT_TABLES", "RATE_RULES", "add_columns", "declare", "finish", "page", "quintile_populations",
           "live_births", "compare_with_england", "ethnic_populations"]

CONTENT_TABLES = ("deaths_by_expectedness", "joint_agency_response", "deaths_by_place_of_death",
                  "deaths_by_deprivation", "deaths_by_ethnicity", "time_to_review", "infant_mortality",
                  "learning_themes", "deaths_by_gestation", "deaths_by_birth_weight", "safeguarding", "inquest")
MIN_CRUDE, MIN_STANDARDISED, LOW_RELIABILITY = 3, 10, 20
RATE_RULES = (
    "Rules for rates (ONS practice, User guide to mortality statistics): no rate is calculated from fewer than "
    f"{MIN_CRUDE} deaths, and none from a count of 0 ([x]); no standardised rate from fewer than {MIN_STANDARDISED} "
    f"(this report publishes crude rates only); rates from fewer than {LOW_RELIABILITY} deaths are flagged [u] "
    "(low reliability). Counts of 1-4, and the cells that would reveal them, are suppressed ([c]) with their rates. "
    "Compared with England: 'better' or 'worse' when the 95% confidence interval of the rate lies wholly below or "
    "above England's value, otherwise 'similar' (Fingertips method); lower mortality is better.")
INFANT = "neonatal+postneonatal"
REVIEW_TIME = ("under_6_months", "6_to_12_months", "over_12_months")
REVIEW_TIME_LABELS = {"under_6_months": "Within 6 months", "6_to_12_months": "6 to 12 months",
                      "over_12_months": "More than 12 months"}
BACKLOG = ("under_6_months", "6_to_12_months", "12_to_24_months", "over_24_months")
BACKLOG_LABELS = {"under_6_months": "Open under 6 months", "6_to_12_months": "Open 6 to 12 months",
                  "12_to_24_months": "Open 12 to 24 months", "over_24_months": "Open more than 24 months"}
MONTH = 365.25 / 12
QUINTILES = ("1", "2", "3", "4", "5")
#: No rate by deprivation quintile where the quintile's estimated child population is below this: the
#: split of an LA's children over quintiles is approximated, and a few hundred estimated children can
#: be far from the truth (a rate from them would be unreliable however many deaths).
MIN_QUINTILE_POPULATION = 1_000
_SINGLE = ("death_expected", "jar", "place_of_death", "gestation_band", "birth_weight_band",
           "known_to_social_care", "cspr", "inquest")


def _theme_col(key):
    return "theme_" + key


# ------------------------------------------------------------------------------------------------
# record columns


def add_columns(rec: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """Add the optional-field columns and review-time bands to the per-death frame of ``prepare_records``.

    Parameters
    ----------
    rec : pandas.DataFrame
        One row per death, in the order of `records`.
    records : pandas.DataFrame
        Validated records (positional index).

    Returns
    -------
    pandas.DataFrame
        `rec` with the fields of :mod:`cdr.fields` present in `records` (``not_recorded`` where
        blank), ``theme_<key>`` (``yes``/``no``) per theme, ``review_time`` (band of months from
        death to completed review, ``n/a`` while pending), ``review_months`` and ``backlog_age``
        (time the review has been open at the latest date in the records, ``n/a`` once complete).

    Examples
    --------
    >>> recs = pd.DataFrame({"date_of_death": pd.to_datetime(["2022-05-01", "2022-06-01"]),
    ...                      "review_completed": pd.to_datetime(["2022-12-01", None]),
    ...                      "factor_themes": ["unsafe_sleep", ""]})
    >>> out = add_columns(pd.DataFrame(index=range(2)), recs)
    >>> out[["review_time", "backlog_age", "theme_unsafe_sleep"]].values.tolist()
    [['6_to_12_months', 'n/a', 'yes'], ['n/a', '6_to_12_months', 'no']]
    """
    rec = rec.copy()
    for name in _SINGLE:
        if name in records:
            rec[name] = records[name].astype("string").fillna(NOT_RECORDED).replace("", NOT_RECORDED).to_numpy()
    if "factor_themes" in records:
        themes = records["factor_themes"].astype("string").fillna("").to_numpy()
        sets = [set(filter(None, str(t).split(";"))) for t in themes]
        for key in THEMES:
            rec[_theme_col(key)] = np.array(["yes" if key in s else "no" for s in sets], dtype=object)
    dod = pd.to_datetime(records["date_of_death"])
    done = pd.to_datetime(records["review_completed"]) if "review_completed" in records else pd.Series(pd.NaT, index=records.index)
    months = ((done - dod).dt.days / MONTH).to_numpy(dtype=float)
    rec["review_months"] = months
    rec["review_time"] = np.select([months <= 6, months <= 12, months > 12], list(REVIEW_TIME), "n/a").astype(object)
    ref = max(dod.max(), done.max()) if done.notna().any() else dod.max()
    open_m = ((ref - dod).dt.days / MONTH).to_numpy(dtype=float)
    backlog = np.select([open_m <= 6, open_m <= 12, open_m <= 24], list(BACKLOG[:3]), BACKLOG[3]).astype(object)
    rec["backlog_age"] = np.where(done.isna().to_numpy(), backlog, "n/a")
    rec["extraction_date"] = ref
    return rec


# ------------------------------------------------------------------------------------------------
# populations


def quintile_populations(populations: pd.DataFrame, las, key) -> dict:
    """Approximate child population of `las` in each national IMD 2019 quintile.

    Each LA's children are split over national quintiles by :func:`cdr.reference.imd_quintile_population`,
    the same LA x decile split the synthetic generator draws ``imd_decile`` from (approximated from the
    LA's published IMD 2019 summaries: share of LSOAs in decile 1 and average rank; children spread
    evenly over its LSOAs; see :func:`cdr.reference.imd_decile_distribution`).

    Parameters
    ----------
    populations : pandas.DataFrame
        ``la_code``, ``period_key``, ``population`` (children aged 0-17).
    las : iterable of str
        LA codes of the unit.
    key : int
        Period key.

    Returns
    -------
    dict
        Quintile (``"1"`` most deprived ... ``"5"``) -> children.

    Examples
    --------
    >>> pops = pd.DataFrame({"la_code": ["E06000001"], "period_key": [2022], "population": [20000.0]})
    >>> q = quintile_populations(pops, ["E06000001"], 2022)
    >>> round(sum(q.values())), q["1"] > q["5"]
    (20000, True)
    """
    from cdr import reference

    pop = populations[(populations["period_key"] == key) & populations["la_code"].isin(list(las))]
    pop = pop.groupby("la_code", as_index=False)["population"].sum()
    if pop.empty:
        return {q: 0.0 for q in QUINTILES}
    by_q = reference.imd_quintile_population(pop).groupby("imd_quintile")["population"].sum()
    return {q: float(by_q.get(int(q), 0.0)) for q in QUINTILES}


def ethnic_populations(populations: pd.DataFrame, las, key) -> dict:
    """Approximate child population of `las` in each of the five high-level ethnic groups.

    Each LA's children (``populations``) times its estimated child share of the group
    (:func:`cdr.data.ethnic_group_shares`: 2011 Census all-age mix shifted to children with the
    region's child/all-age ratios), summed over `las`. An approximation, stated in the table.

    Parameters
    ----------
    populations : pandas.DataFrame
        ``la_code`` (2023 codes), ``period_key``, ``population`` (children aged 0-17).
    las : iterable of str
        LA codes of the unit.
    key : int
        Period key.

    Returns
    -------
    dict
        Group (``"white"``, ``"mixed"``, ``"asian"``, ``"black"``, ``"other"``) -> children.

    Examples
    --------
    >>> pops = pd.DataFrame({"la_code": ["E06000052"], "period_key": [2022], "population": [100000.0]})
    >>> e = ethnic_populations(pops, ["E06000052"], 2022)
    >>> round(sum(e.values())), e["white"] > 90000
    (100000, True)
    """
    from cdr.data import ETHNIC_GROUPS, ethnic_group_shares

    shares = ethnic_group_shares(2023).pivot(index="la_code", columns="ethnicity", values="child_share")
    pop = populations[(populations["period_key"] == key) & populations["la_code"].isin(list(las))]
    pop = pop.groupby("la_code")["population"].sum()
    s = shares.reindex(pop.index)
    return {g: float((s[g] * pop).sum()) for g in ETHNIC_GROUPS}


@functools.lru_cache(maxsize=1)
def _births() -> pd.DataFrame:
    with resources.files("cdr").joinpath("_data", "ons_infant_deaths_registered_births_utla2021_2013_2022.csv").open("rb") as fh:
        births = pd.read_csv(fh, dtype={"la_code": str})
    with resources.files("cdr").joinpath("_data", "utla2021_to_utla2023.csv").open("rb") as fh:
        cross = pd.read_csv(fh, dtype=str)
    from cdr.data import england_areas

    infants = england_areas(2023).set_index("la_code")["infant_population"]
    cross["w"] = cross["utla23_code"].map(infants).astype(float)
    cross["w"] = cross["w"] / cross.groupby("utla21_code")["w"].transform("sum")
    out = births.merge(cross[["utla21_code", "utla23_code", "w"]], left_on="la_code", right_on="utla21_code")
    out["live_births"] = out["live_births"] * out["w"]
    return out.groupby(["utla23_code", "year"], as_index=False)["live_births"].sum().rename(columns={"utla23_code": "la_code"})


def live_births(las, year: int):
    """ONS live births (by mother's usual residence) for `las` in calendar `year`, and the year used.

    Parameters
    ----------
    las : iterable of str
        2023 upper-tier LA codes.
    year : int
        Calendar year; years after 2022 use 2022, the latest embedded (returned as the year used).

    Returns
    -------
    (float, int)
        Live births, and the calendar year they are from. Cumbria's 2021 births are split between
        Cumberland and Westmorland and Furness by their infant populations.

    Examples
    --------
    >>> births, used = live_births(["E06000001"], 2013)
    >>> births, used
    (1021.0, 2013)
    """
    b = _births()
    used = int(min(max(year, int(b["year"].min())), int(b["year"].max())))
    sel = b[(b["year"] == used) & b["la_code"].isin(list(las))]
    return float(sel["live_births"].sum()), used


# ------------------------------------------------------------------------------------------------
# declaring the tables


def _rate_by_group(c, geo, unit, key, dim, groups, populations, *, england: bool):
    """Counts, percents and populations of a one-way rate table over ``groups`` + "unknown" + total.

    ``populations(geo.populations, las, key)`` gives each group's population; "unknown" has none.
    With ``england``, England's counts and populations beside the unit's. Returns ``(counts, derived,
    values)`` for a :class:`TableSpec`.
    """
    from cdr.report._merge import NATION

    levels = [*groups, "unknown"]
    counts, derived, values = {}, [], {}
    for prefix, u in (("", unit), *((("england_", NATION),) if england else ())):
        counts[prefix + "deaths"] = ([c.cell("deaths", u, key, **{dim: v}) for v in levels] + [c.cell("deaths", u, key)])
        counts[f"_{prefix}deaths_total"] = [c.cell("deaths", u, key)] * (len(levels) + 1)
        derived.append(("percent", prefix + "percent", prefix + "deaths", f"_{prefix}deaths_total"))
        pops = populations(geo.populations, geo.unit_las[u], key)
        values[prefix + "population"] = [pops[g] for g in groups] + [np.nan, geo.population(u, key)]
    return counts, derived, values


def declare(tables: list, rec, geo, c, bundle, *, key, period_labels, total_label, merge_below=10, threshold=5):
    """Add the content tables to `tables` (the list of :class:`TableSpec` of ``declare_tables``).

    Cells are registered through the counter ``c`` on ``bundle`` like every other table, so they
    are protected and audited together. Returns the new list.
    """
    from cdr.report._merge import NATION, merge_contiguous, merge_small, refine_cross

    U = geo.focus
    label = period_labels[key]
    has_england = U != NATION and NATION in geo.comparators   # England columns only when the records cover England
    add_levels = {name: tuple(FIELDS[name].levels) for name in _SINGLE}
    add_levels.update({_theme_col(k): ("yes", "no") for k in THEMES})
    add_levels["review_time"] = REVIEW_TIME
    add_levels["backlog_age"] = BACKLOG
    bundle.levels.update(add_levels)
    area = {"area_code": geo.code(U), "area_name": geo.names[U]}
    out = list(tables)
    has = set(rec.columns)

    def with_area(frame):
        frame = frame.copy()
        frame["area_code"], frame["area_name"] = area["area_code"], area["area_name"]
        return frame

    def one_way(name, title, dim, levels, labels, *, cohort=None, measure="deaths", notes=(), figure=None):
        """Rows: levels of `dim` + total; deaths, percent; England deaths and percent."""
        base = dict(cohort or {})
        lab = with_area(pd.DataFrame({dim: [*levels, "total"], "label": [labels[v] for v in levels] + ["Total"]}))
        counts = {measure: [c.cell(measure, U, key, **base, **{dim: v}) for v in levels] + [c.cell(measure, U, key, **base)]}
        counts["_den"] = [c.cell(measure, U, key, **base)] * (len(levels) + 1)
        derived = [("percent", "percent", measure, "_den")]
        if has_england:
            counts["england_" + measure] = ([c.cell(measure, NATION, key, **base, **{dim: v}) for v in levels]
                                            + [c.cell(measure, NATION, key, **base)])
            counts["_eden"] = [c.cell(measure, NATION, key, **base)] * (len(levels) + 1)
            derived.append(("percent", "england_percent", "england_" + measure, "_eden"))
        return TableSpec(name, f"{title}, {label}", lab, counts=counts, derived=derived, notes=list(notes), figure=figure)

    # expected / unexpected by age band (aggregation chosen as for category x age)
    if "death_expected" in has:
        exp_levels = list(FIELDS["death_expected"].levels)
        ages_true = {a: c.value("deaths", U, key, age_band=a) for a in AGE_BANDS}
        ages, age_merges = merge_contiguous(ages_true, merge_below)
        cross = {(e, a): c.value("deaths", U, key, death_expected=e, age_band=a) for e in exp_levels for a in AGE_BANDS}
        _, _, ages, age_merges, _opts = refine_cross(cross, exp_levels, {}, ages, age_merges, threshold=threshold)
        if age_merges:
            c.merge("age_band", age_merges)
            bundle.add_partition("age_band", ages, age_merges)
        from cdr.report._merge import _age_group_label

        lab = with_area(pd.DataFrame({"age_band": [*ages, "total"], "label": [_age_group_label(a) for a in ages] + ["All ages"]}))
        counts = {e: [c.cell("deaths", U, key, age_band=a, death_expected=e) for a in ages]
                  + [c.cell("deaths", U, key, death_expected=e)] for e in exp_levels}
        counts["deaths"] = [c.cell("deaths", U, key, age_band=a) for a in ages] + [c.cell("deaths", U, key)]
        derived = [("percent", "percent_unexpected", "unexpected", "deaths")]
        if has_england:
            counts["england_unexpected"] = ([c.cell("deaths", NATION, key, age_band=a, death_expected="unexpected")
                                             for a in ages] + [c.cell("deaths", NATION, key, death_expected="unexpected")])
            counts["england_deaths"] = [c.cell("deaths", NATION, key, age_band=a) for a in ages] + [c.cell("deaths", NATION, key)]
            derived.append(("percent", "england_percent_unexpected", "england_unexpected", "england_deaths"))
        notes = ["Expected or unexpected as recorded at notification; an unexpected death is one not anticipated as a "
                 "significant possibility, for example 24 hours before the death (Working Together to Safeguard "
                 "Children 2018). Percent unexpected: of all deaths in the row, including those not recorded."]
        if age_merges:
            notes.append(f"Neighbouring age bands are combined where a band or a cell would rest on fewer than "
                         f"{merge_below} deaths or a count from 1 to {threshold - 1}.")
        out.append(TableSpec("deaths_by_expectedness", f"Expected and unexpected deaths by age band, {label}", lab,
                             counts=counts, derived=derived, notes=notes,
                             column_labels={e: FIELDS["death_expected"].levels[e] for e in exp_levels}))

    # Joint Agency Response after unexpected deaths, by age band and by category
    if {"death_expected", "jar"} <= has:
        unexp = {"death_expected": "unexpected"}
        exp_levels_all = list(FIELDS["death_expected"].levels)
        jar_levels = list(FIELDS["jar"].levels)
        n_unexp = c.value("deaths", U, key, **unexp)
        rows = []   # (breakdown, level, label, dims)
        notes = ["Unexpected deaths only (the deaths for which a Joint Agency Response is expected). Percent with a "
                 "JAR: Wilson score 95% confidence interval, of all unexpected deaths in the row."]
        if n_unexp >= merge_below:
            ages_u, am = merge_contiguous({a: c.value("deaths", U, key, age_band=a, **unexp) for a in AGE_BANDS}, merge_below)
            if len(ages_u) < 2:   # one group of all ages: the row would be the total again
                ages_u, am = [], {}
            if am:
                c.merge("age_band", am)
                bundle.add_partition("age_band", ages_u, am)
            from cdr.report._merge import _age_group_label

            rows += [("age_band", a, _age_group_label(a), {"age_band": a}) for a in ages_u]
            cats_u, cm = merge_small({v: c.value("deaths", U, key, category=v, **unexp) for v in CATEGORY_ORDER},
                                     merge_below, "other_unexpected")
            if len(cats_u) < 2:   # everything merged: the row would be the total again
                cats_u, cm = [], {}
            if cm:
                c.merge("category", cm)
                bundle.add_partition("category", cats_u, cm)
            rows += [("category", v, (f"Other categories ({len(cm[v])})" if v in cm else CATEGORY_LABELS[v]),
                      {"category": v}) for v in cats_u]
            if cm:
                notes.append(f"Other categories ({len(cm['other_unexpected'])}): "
                             + "; ".join(CATEGORY_LABELS[m] for m in cm["other_unexpected"]) + ".")
            notes.append(f"Age bands and categories with fewer than {merge_below} unexpected deaths are combined.")
        else:
            notes.append(f"Fewer than {merge_below} unexpected deaths: not broken down.")
        rows.append(("total", "total", "All unexpected deaths", {}))
        merged = {**(am if n_unexp >= merge_below else {}), **(cm if n_unexp >= merge_below else {})}
        lab = with_area(pd.DataFrame({"breakdown": [r[0] for r in rows], "group": [r[1] for r in rows],
                                      "label": [r[2] for r in rows],
                                      "includes": ["+".join(merged.get(r[1], [r[1]])) if r[0] != "total" else "all"
                                                   for r in rows]}))
        # the unexpected deaths of a row are part of all the row's deaths (published elsewhere, or a
        # sum of published levels): declare the row's expected / not recorded deaths as unpublished
        # cells, so the margin over expectedness is an equation of the audit
        # a row's deaths minus its unexpected deaths pins the SUM of its expected and not-recorded deaths,
        # so that sum is declared as one hidden cell too (a merged level of death_expected): when it is
        # 1 .. threshold-1 it is protected like a primary cell, not only its two pieces
        others = tuple(e for e in exp_levels_all if e != "unexpected")
        not_unexpected = {"not_unexpected": others}
        if len(others) > 1:
            c.merge("death_expected", not_unexpected)
            bundle.add_partition("death_expected", ("unexpected", "not_unexpected"), not_unexpected)
        for r in rows:
            row_total = c.cell("deaths", U, key, **r[3])
            if r[3] and row_total not in _shown(out):
                bundle.hidden.add(row_total)
            for e in (*others, *(not_unexpected if len(others) > 1 else ())):
                cid = c.cell("deaths", U, key, death_expected=e, **r[3])
                if cid not in _shown(out):
                    bundle.hidden.add(cid)
        counts = {"unexpected_deaths": [c.cell("deaths", U, key, **unexp, **r[3]) for r in rows]}
        for j in jar_levels:
            counts["jar_" + j] = [c.cell("deaths", U, key, **unexp, jar=j, **r[3]) for r in rows]
        out.append(TableSpec("joint_agency_response", f"Joint Agency Response after unexpected deaths, {label}", lab,
                             counts=counts, derived=[("proportion_ci", "percent_with_jar", "jar_yes", "unexpected_deaths")],
                             notes=notes, column_labels={"jar_yes": "JAR", "jar_no": "No JAR",
                                                         "jar_not_recorded": "JAR not recorded"}))

    if "place_of_death" in has:
        f = FIELDS["place_of_death"]
        out.append(one_way("deaths_by_place_of_death", "Deaths by place of death", "place_of_death", list(f.levels),
                           f.levels, notes=["Percent: share of all deaths notified in the area."]))

    # deprivation: counts and rates by IMD quintile (replaces the core table of the same name)
    levels = [*QUINTILES, "unknown"]
    lab = with_area(pd.DataFrame({"imd_quintile": [*levels, "total"],
                                  "label": [IMD_QUINTILE_LABELS[v] for v in levels] + ["Total"]}))
    counts, derived, values = _rate_by_group(c, geo, U, key, "imd_quintile", QUINTILES, quintile_populations,
                                             england=has_england)
    notes = ["Quintile of the Index of Multiple Deprivation 2019 for the child's home neighbourhood (from imd_decile "
             "in the records); 1 = most deprived fifth of neighbourhoods in England. Percent: share of all deaths.",
             "Rates per 100,000 children aged 0-17. APPROXIMATED denominators: the children of each local authority "
             "are spread over national IMD deciles in proportion to an estimate of the share of its neighbourhoods "
             "(LSOAs) in each decile (cdr.reference.imd_decile_distribution): the published share in the most "
             "deprived 10% exactly, the other deciles by a maximum-entropy spread matching the authority's published "
             "IMD 2019 average rank, no share where it would hold under half an LSOA, raked so that each national "
             "decile holds a tenth of England's LSOAs; LSOA populations are not embedded in cdr, so children are "
             "taken as spread evenly over LSOAs. "
             f"No rate is published for a quintile with an estimated population under {MIN_QUINTILE_POPULATION:,} "
             "children ([x]): such an estimate is too uncertain for a rate. Deaths with no recorded decile have no "
             "rate. SII/RII: slope and relative index of inequality across the five quintiles (cdr.rates.sii), on "
             "the total row, only when all five rates are published.",
             RATE_RULES]
    spec_dep = TableSpec("deaths_by_deprivation", f"Deaths and rates by deprivation (IMD 2019 quintile of residence), {label}",
                         lab, counts=counts, values=values, derived=derived, notes=notes, figure="deprivation_rates")
    out = [spec_dep if t.name == "deaths_by_deprivation" else t for t in out]
    if not any(t.name == "deaths_by_deprivation" for t in out):
        out.append(spec_dep)

    # ethnicity: counts, shares and rates per 100,000 by the five high-level groups (replaces the core table)
    if any(t.name == "deaths_by_ethnicity" for t in out):
        from cdr.data import ETHNIC_GROUPS, ETHNICITY_SOURCE

        levels = [*ETHNIC_GROUPS, "unknown"]
        lab = with_area(pd.DataFrame({"ethnicity": [*levels, "total"],
                                      "label": [ETHNICITY_LABELS[v] for v in levels] + ["Total"]}))
        counts, derived, values = _rate_by_group(c, geo, U, key, "ethnicity", ETHNIC_GROUPS, ethnic_populations,
                                                 england=has_england)
        notes = ["Ethnic group as recorded for the child, in the five high-level Census groups. Percent: share of all "
                 "deaths notified in the area.",
                 "Rates per 100,000 children aged 0-17. " + ETHNICITY_SOURCE + " Deaths with ethnicity not known have "
                 "no rate, and the rates of the five groups understate the true rates by up to the share not known.",
                 RATE_RULES]
        spec_eth = TableSpec("deaths_by_ethnicity", f"Deaths and rates by ethnic group, {label}", lab, counts=counts,
                             values=values, derived=derived, notes=notes, figure="ethnicity_rates")
        out = [spec_eth if t.name == "deaths_by_ethnicity" else t for t in out]

    # time from death to completed review (reviews completed in the period), and the open backlog
    rows_lab, cnt, dens = [], [], []
    n_rev = c.value("rc_reviews", U, key)
    for b in REVIEW_TIME:
        rows_lab.append(("completed", b, REVIEW_TIME_LABELS[b]))
        cnt.append(c.cell("rc_reviews", U, key, review_time=b))
        dens.append(c.cell("rc_reviews", U, key))
    rows_lab.append(("completed", "total", "All reviews completed in the period"))
    cnt.append(c.cell("rc_reviews", U, key))
    dens.append(c.cell("rc_reviews", U, key))
    sel = rec[(rec[U.split(":")[0]] == U) & (rec["period_key"] == key) & (rec["rc_reviews"] == 1)]["review_months"]
    quart = np.quantile(sel.to_numpy(float), [0.25, 0.5, 0.75]) if n_rev >= merge_below and len(sel) else [np.nan] * 3
    bkeys = [k for k, lab_ in period_labels.items() if lab_ in bundle.years] or [key]
    pend_period = total_label if len(bkeys) > 1 else label
    tot_cell = bundle.cell("pending", U, pend_period, sum(c.value("pending", U, k) for k in bkeys))
    if len(bkeys) > 1:   # the backlog of several years is the sum of each year's pending reviews: declare the
        for k in bkeys:  # years (unpublished where no table shows them), so that sum is an equation of the audit
            bundle.hidden.add(c.cell("pending", U, k))

    def backlog_value(b):
        return sum(c.value("pending", U, k, backlog_age=b) for k in bkeys)

    for b in BACKLOG:
        rows_lab.append(("open_backlog", b, BACKLOG_LABELS[b]))
        cnt.append(bundle.cell("pending", U, pend_period, backlog_value(b), backlog_age=b))
        dens.append(tot_cell)
    rows_lab.append(("open_backlog", "total", "All reviews still open"))
    cnt.append(tot_cell)
    dens.append(tot_cell)
    stat_rows = {len(REVIEW_TIME)}   # the "all reviews completed" row carries the quartiles
    months = {name: [float(np.round(v, 1)) if (i in stat_rows and np.isfinite(v)) else np.nan for i in range(len(cnt))]
              for name, v in zip(("lower_quartile_months", "median_months", "upper_quartile_months"), quart)}
    extraction = rec["extraction_date"].iloc[0] if "extraction_date" in rec and len(rec) else None
    lab = with_area(pd.DataFrame(rows_lab, columns=["part", "group", "label"]))
    out.append(TableSpec(
        "time_to_review", f"Time from death to completed review, and reviews still open, {label}", lab,
        counts={"reviews": cnt, "_den": dens}, values=months,
        derived=[("percent", "percent", "reviews", "_den")],
        notes=["Completed: reviews completed in the period, whatever the year of death, by months from death to the "
               "completion date (a month = 365.25/12 days); cumulative_percent gives the share completed within 6 "
               "and within 12 months. Median and quartiles (on the row of all completed reviews) are shown only from "
               f"{merge_below} reviews, rounded to 0.1 month.",
               "Open backlog: reviews of deaths in " + pend_period
               + " still open, by the time since death at the latest date in the records"
               + (f" ({pd.Timestamp(extraction):%d %B %Y}, taken as the extraction date)." if extraction is not None else ".")]))

    # infant mortality per 1,000 live births
    if True:   # every level: neonatal + post-neonatal = infant deaths
        bundle.merges[("age_band", INFANT)] = ("neonatal", "postneonatal")
        c.merge("age_band", {INFANT: ["neonatal", "postneonatal"]})
        bundle.add_partition("age_band", [INFANT, *(a for a in AGE_BANDS if a not in ("neonatal", "postneonatal"))],
                             {INFANT: ["neonatal", "postneonatal"]})   # incl. "age not recorded": a partition covers every death
        groups = [("neonatal", "Neonatal (under 28 days)"), ("postneonatal", "Post-neonatal (28-364 days)"),
                  (INFANT, "Infant (under 1 year)")]
        births, used = live_births(geo.unit_las[U], key)
        lab = with_area(pd.DataFrame({"age_band": ["neonatal", "postneonatal", "infant"], "label": [g[1] for g in groups]}))
        counts = {"deaths": [c.cell("deaths", U, key, age_band=g) for g, _ in groups]}
        values = {"live_births": [births] * 3}
        if has_england:
            counts["england_deaths"] = [c.cell("deaths", NATION, key, age_band=g) for g, _ in groups]
            values["england_live_births"] = [live_births(geo.unit_las[NATION], key)[0]] * 3
        out.append(TableSpec(
            "infant_mortality", f"Infant, neonatal and post-neonatal deaths per 1,000 live births, {label}", lab,
            counts=counts, values=values, figure="infant_mortality",
            notes=[f"Deaths of residents by age at death, in the period; denominators: ONS live births by mother's "
                   f"usual residence in calendar year {used}"
                   + (f" (the latest embedded; the period starts in {key})" if used != key else "")
                   + ", cdr/_data/ons_infant_deaths_registered_births_utla2021_2013_2022.csv. Deaths are notified "
                     "deaths in the CDR period, not ONS registrations, so the rates approximate ONS infant mortality.",
                   RATE_RULES]))

    # gestation and birth weight of infant deaths
    for name, field_name, bands, title in (
            ("deaths_by_gestation", "gestation_band", GESTATION_BANDS, "gestation at birth"),
            ("deaths_by_birth_weight", "birth_weight_band", BIRTH_WEIGHT_BANDS, "birth weight")):
        if field_name not in has:
            continue
        ordered = [b for b in bands if b != NOT_RECORDED]
        true = {b: c.value("deaths", U, key, age_band=INFANT, **{field_name: b}) for b in ordered}
        groups, merges = merge_contiguous(true, merge_below)
        if merges:
            c.merge(field_name, merges)
            bundle.add_partition(field_name, [*groups, NOT_RECORDED], merges)
        labels = {g: " + ".join(bands[m] for m in merges.get(g, [g])) for g in groups}
        labels[NOT_RECORDED] = bands[NOT_RECORDED]
        spec = one_way(name, f"Infant deaths by {title}", field_name, [*groups, NOT_RECORDED], labels,
                       cohort={"age_band": INFANT},
                       notes=["Deaths under 1 year. Percent: share of infant deaths in the area."]
                       + ([f"Neighbouring bands with fewer than {merge_below} deaths are combined."] if merges else []))
        out.append(spec)

    # safeguarding and inquests
    parts = [(n, FIELDS[n]) for n in ("known_to_social_care", "cspr") if n in has]
    if parts:
        rows = [(n, v, f"{lbl}: {f.levels[v]}") for n, f in parts for v in f.levels
                for lbl in [{"known_to_social_care": "Known to children's social care",
                             "cspr": "Child safeguarding practice review"}[n]]]
        rows.append(("total", "total", "All deaths"))
        lab = with_area(pd.DataFrame(rows, columns=["field", "value", "label"]))
        cells = [c.cell("deaths", U, key, **{n: v}) if n != "total" else c.cell("deaths", U, key) for n, v, _ in rows]
        counts = {"deaths": cells, "_den": [c.cell("deaths", U, key)] * len(rows)}
        derived = [("percent", "percent", "deaths", "_den")]
        if has_england:
            counts["england_deaths"] = [c.cell("deaths", NATION, key, **{n: v}) if n != "total" else c.cell("deaths", NATION, key)
                                        for n, v, _ in rows]
            counts["_eden"] = [c.cell("deaths", NATION, key)] * len(rows)
            derived.append(("percent", "england_percent", "england_deaths", "_eden"))
        out.append(TableSpec("safeguarding", f"Safeguarding involvement, {label}", lab, counts=counts, derived=derived,
                             notes=["All deaths notified in the period. Known to children's social care at the time of "
                                    "death; child safeguarding practice review: a rapid review or local review."]))
    if "inquest" in has:
        f = FIELDS["inquest"]
        out.append(one_way("inquest", "Deaths with an inquest", "inquest", list(f.levels),
                           {k: ("Inquest opened" if k == "yes" else "No inquest" if k == "no" else v)
                            for k, v in f.levels.items()}, notes=["All deaths notified in the period."]))

    # learning themes (reviews completed in the period; a review can have several themes)
    if _theme_col(next(iter(THEMES))) in has:
        keys = list(THEMES)
        lab = with_area(pd.DataFrame({"theme": keys, "label": [THEMES[k] for k in keys]}))
        tot = c.cell("rc_reviews", U, key)
        counts = {"reviews": [tot] * len(keys),
                  "with_theme": [c.cell("rc_reviews", U, key, **{_theme_col(k): "yes"}) for k in keys]}
        for k in keys:   # reviews without a theme = reviews - with it: declared (unpublished) so the audit protects it
            bundle.hidden.add(c.cell("rc_reviews", U, key, **{_theme_col(k): "no"}))
        out.append(TableSpec(
            "learning_themes", f"Themes of modifiable factors identified at review, {label}", lab, counts=counts,
            derived=[("proportion_ci", "percent", "with_theme", "reviews")],
            notes=["Reviews completed in the period. Themes recorded by the panel among the modifiable factors "
                   "(cdr.fields.THEMES, an extensible list); a review can record several themes, so the rows do "
                   "not add up to the number of reviews. Reviews without each theme are not published as counts: a "
                   "complement column tied every theme to the number of reviews, and protecting one small theme then "
                   "hid that total in the core tables."]))
    bundle.hidden -= _shown(out)   # a count some table shows is published, whichever table declared it hidden
    return out


def _shown(tables) -> set:
    """Cell ids shown by `tables` (a list of TableSpec)."""
    return {cid for t in tables for ids in t.counts.values() for cid in ids if cid is not None}


# ------------------------------------------------------------------------------------------------
# after protection: rates, rules, comparisons


def compare_with_england(lower, upper, england):
    """Fingertips comparison of rates with England: ``better``, ``similar`` or ``worse``.

    Parameters
    ----------
    lower, upper : array_like of float
        95 % confidence limits of the area's rates.
    england : array_like of float
        England's value (same units); lower mortality is better.

    Returns
    -------
    numpy.ndarray of object
        ``"better"`` (upper limit below England), ``"worse"`` (lower limit above), ``"similar"``,
        or ``"not compared"`` where a value is missing.

    Examples
    --------
    >>> compare_with_england([1.0, 5.0, 2.0], [3.0, 9.0, 6.0], [4.0, 4.0, 4.0]).tolist()
    ['better', 'worse', 'similar']
    """
    lo, hi, e = (np.asarray(x, dtype=float) for x in (lower, upper, england))
    res = np.where(hi < e, "better", np.where(lo > e, "worse", "similar")).astype(object)
    res[~(np.isfinite(lo) & np.isfinite(hi) & np.isfinite(e))] = "not compared"
    return res


def _rate_columns(table, marks, prefix, count_col, pop_col, multiplier):
    """Rate, 95% limits and flag per the rate rules; marks say why a rate is missing."""
    from cdr.report._stats import rate_ci

    n = pd.to_numeric(table[count_col], errors="coerce").astype(float).to_numpy()
    p = pd.to_numeric(table[pop_col], errors="coerce").astype(float).to_numpy()
    ok = np.isfinite(n) & np.isfinite(p) & (p > 0) & (n >= MIN_CRUDE)
    r, lo, hi, _ = rate_ci(np.where(ok, n, 0), np.where(ok, p, 1), multiplier=multiplier)
    why = np.where(marks[count_col].to_numpy() == MARK_SUPPRESSED, MARK_SUPPRESSED, MARK_NA)
    for suffix, v in (("", r), ("_lower_95", lo), ("_upper_95", hi)):
        table[prefix + suffix] = np.where(ok, v, np.nan)
        marks[prefix + suffix] = np.where(ok, "", why)
    table[prefix + "_flag"] = np.where(ok & (n < LOW_RELIABILITY), MARK_LOW, "")
    marks[prefix + "_flag"] = ""
    return ok


def _below_population_floor(table, marks, prefix, pop_col, info) -> np.ndarray:
    """Withdraw the rates of quintiles whose estimated population is under MIN_QUINTILE_POPULATION ([x], noted)."""
    pop = pd.to_numeric(table[pop_col], errors="coerce").to_numpy(float)
    small = table["imd_quintile"].isin(QUINTILES).to_numpy() & np.isfinite(pop) & (pop < MIN_QUINTILE_POPULATION)
    for suffix in ("", "_lower_95", "_upper_95"):
        table.loc[small, prefix + suffix] = np.nan
        marks.loc[small, prefix + suffix] = MARK_NA
    table.loc[small, prefix + "_flag"] = ""
    if small.any() and info is not None:
        names = ", ".join(str(v) for v in table.loc[small, "label"])
        info["notes"].append(f"No rate for {names}: estimated population under {MIN_QUINTILE_POPULATION:,} children.")
    return small


def _compare_core(tables, marks) -> None:
    """``compared_with_england`` on the core tables with rates (headline, areas, trend), Fingertips style."""
    head = tables.get("headline")
    if head is None or "area_code" not in head or "rate_per_100000" not in head:
        return
    eng = head.loc[head["area_code"] == "E92000001", "rate_per_100000"]
    eng = float(eng.iloc[0]) if len(eng) else np.nan
    for name in ("headline", "deaths_by_area", "deaths_by_local_authority", "trend"):
        t = tables.get(name)
        if t is None or "rate_per_100000_lower_95" not in t:
            continue
        eng_col = next((c_ for c_ in ("england_rate_per_100000", "england_rate_per_100000_published") if c_ in t), None)
        ref = (pd.to_numeric(t[eng_col], errors="coerce") if name == "trend" and eng_col
               else pd.Series(eng, index=t.index))
        res = compare_with_england(t["rate_per_100000_lower_95"], t["rate_per_100000_upper_95"], ref)
        if "area_code" in t:
            res[(t["area_code"] == "E92000001").to_numpy()] = "not compared"
        if name == "trend" and eng_col is None:
            res[:] = "not compared"
        t["compared_with_england"] = res
        marks[name]["compared_with_england"] = ""


def finish(tables: dict, marks: dict, info: dict, *, seed=0) -> None:
    """Rates, England comparisons and SII/RII for the content tables, from published counts only (in place)."""
    from cdr.report import _figures

    _figures.FIGURES.setdefault("infant_mortality", infant_mortality_figure)   # drawn after finish, from the rates
    _figures.FIGURES.setdefault("deprivation_rates", deprivation_rates_figure)
    _figures.FIGURES.setdefault("ethnicity_rates", ethnicity_rates_figure)
    _compare_core(tables, marks)
    if "deaths_by_deprivation" in tables and "population" in tables["deaths_by_deprivation"]:
        t, m = tables["deaths_by_deprivation"], marks["deaths_by_deprivation"]
        ok = _rate_columns(t, m, "rate_per_100000", "deaths", "population", 100_000)
        ok &= ~_below_population_floor(t, m, "rate_per_100000", "population", info["deaths_by_deprivation"])
        cols = ["rate_per_100000"]
        if "england_population" in t:
            _rate_columns(t, m, "england_rate_per_100000", "england_deaths", "england_population", 100_000)
            _below_population_floor(t, m, "england_rate_per_100000", "england_population", None)
            t["compared_with_england"] = compare_with_england(t["rate_per_100000_lower_95"], t["rate_per_100000_upper_95"],
                                                              t["england_rate_per_100000"])
            m["compared_with_england"] = ""
            cols.append("england_rate_per_100000")
        body = t["imd_quintile"].isin(QUINTILES).to_numpy()
        for name in ("sii", "sii_lower_95", "sii_upper_95", "rii", "rii_lower_95", "rii_upper_95"):
            t[name] = np.nan
            m[name] = ""
        if ok[body].all() and body.sum() == 5:
            from cdr import rates

            res = rates.sii(t.loc[body, "imd_quintile"].astype(int).to_numpy(), t.loc[body, "rate_per_100000"].to_numpy(float),
                            t.loc[body, "population"].to_numpy(float), multiplier=100_000, reps=2_000, seed=seed,
                            conf=0.95).set_index("statistic")
            total = (t["imd_quintile"] == "total").to_numpy()
            for stat in ("sii", "rii"):
                for col, src in ((stat, "value"), (stat + "_lower_95", "lower_95"), (stat + "_upper_95", "upper_95")):
                    t.loc[total, col] = float(res.loc[stat, src])
        else:
            info["deaths_by_deprivation"]["notes"].append(
                "No SII/RII: a quintile's rate is not published (suppressed or fewer than 3 deaths).")
        info["deaths_by_deprivation"].setdefault("decimals", {}).update({"rii": 2, "rii_lower_95": 2, "rii_upper_95": 2})
    if "deaths_by_ethnicity" in tables and "population" in tables["deaths_by_ethnicity"]:
        t, m = tables["deaths_by_ethnicity"], marks["deaths_by_ethnicity"]
        _rate_columns(t, m, "rate_per_100000", "deaths", "population", 100_000)
        if "england_population" in t:
            _rate_columns(t, m, "england_rate_per_100000", "england_deaths", "england_population", 100_000)
            t["compared_with_england"] = compare_with_england(t["rate_per_100000_lower_95"], t["rate_per_100000_upper_95"],
                                                              t["england_rate_per_100000"])
            m["compared_with_england"] = ""
    if "infant_mortality" in tables:
        t, m = tables["infant_mortality"], marks["infant_mortality"]
        _rate_columns(t, m, "rate_per_1000", "deaths", "live_births", 1_000)
        dec = info["infant_mortality"].setdefault("decimals", {})
        dec.update({c: 2 for c in ("rate_per_1000", "rate_per_1000_lower_95", "rate_per_1000_upper_95")})
        if "england_live_births" in t:
            _rate_columns(t, m, "england_rate_per_1000", "england_deaths", "england_live_births", 1_000)
            t["compared_with_england"] = compare_with_england(t["rate_per_1000_lower_95"], t["rate_per_1000_upper_95"],
                                                              t["england_rate_per_1000"])
            m["compared_with_england"] = ""
            dec.update({c: 2 for c in ("england_rate_per_1000", "england_rate_per_1000_lower_95",
                                       "england_rate_per_1000_upper_95")})
    if "time_to_review" in tables:
        t, m = tables["time_to_review"], marks["time_to_review"]
        cum = np.full(len(t), np.nan)
        done = (t["part"] == "completed").to_numpy() & t["group"].isin(REVIEW_TIME).to_numpy()
        pct = pd.to_numeric(t["percent"], errors="coerce").to_numpy(float)
        running = 0.0
        for i in np.flatnonzero(done):
            running = running + pct[i]
            cum[i] = running
        t["cumulative_percent"] = cum
        m["cumulative_percent"] = np.where(np.isnan(cum) & done, MARK_SUPPRESSED, "")
        m.loc[~done, "cumulative_percent"] = ""
        total = ((t["part"] == "completed") & (t["group"] == "total")).to_numpy()
        for col in ("lower_quartile_months", "median_months", "upper_quartile_months"):
            m[col] = np.where(total & t[col].isna().to_numpy(), MARK_NA, "")


def _rate_figure(table, marks, ctx, *, prefix, xlabel, title, note=None):
    """Rates with 95% CI beside England's value, one bar per row (a Figure)."""
    from matplotlib.figure import Figure

    from cdr.report import _figures

    fig = Figure(figsize=(7.5, 0.9 + 0.45 * len(table)), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(table))[::-1]
    num = lambda col: pd.to_numeric(table[col], errors="coerce").to_numpy(float)  # noqa: E731
    rate, lo, hi = num(prefix), num(prefix + "_lower_95"), num(prefix + "_upper_95")
    ok = np.isfinite(rate)
    ax.barh(y, np.nan_to_num(rate), height=0.6, color=_figures.FOCUS, label=_figures._wrap(ctx["focus_name"], 32))
    ax.errorbar(rate[ok], y[ok], xerr=[rate[ok] - lo[ok], hi[ok] - rate[ok]], fmt="none", ecolor="black", capsize=3)
    for yi, r, mk in zip(y, rate, marks[prefix]):
        if not np.isfinite(r):
            ax.text(0.02, yi, f"{mk or '[x]'} no rate shown", va="center", fontsize=8)
    if "england_" + prefix in table:
        ax.scatter(num("england_" + prefix), y, marker="D", color=_figures.ENGLAND, zorder=3, label="England")
    ax.set_yticks(y, table["label"], fontsize=8)
    ax.set_xlabel(xlabel)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)   # off the data
    ax.set_title(_figures._title(f"{title}, {ctx['period']}", ctx["synthetic"]), fontsize=10, loc="left")
    if note:
        # from the figure's left edge (long row labels push the axes right), under the axis label
        ax.annotate(_figures._wrap(note, 90), xy=(0.01, 0), xycoords=("figure fraction", ax.xaxis.label), xytext=(0, -6),
                    textcoords="offset points", fontsize=8, va="top")   # under the axis label, inside the canvas
    return fig


def infant_mortality_figure(table, marks, ctx):
    """Infant, neonatal and post-neonatal rates per 1,000 live births with 95% CI, beside England's (a Figure)."""
    return _rate_figure(table, marks, ctx, prefix="rate_per_1000", xlabel="Deaths per 1,000 live births (95% CI)",
                        title="Infant mortality")


def deprivation_rates_figure(table, marks, ctx):
    """Death rates by IMD quintile with 95% CI, beside England's, with the SII (a Figure)."""
    body = table[table["imd_quintile"].isin(QUINTILES)]
    total = table[table["imd_quintile"] == "total"]
    note = None
    if len(total) and np.isfinite(pd.to_numeric(total["sii"], errors="coerce").iloc[0]):
        t = total.iloc[0]
        note = (f"Slope index of inequality {t['sii']:.1f} per 100,000 (95% CI {t['sii_lower_95']:.1f} to "
                f"{t['sii_upper_95']:.1f}); denominators by quintile are approximated (see the table notes).")
    return _rate_figure(body, marks.loc[body.index], ctx, prefix="rate_per_100000",
                        xlabel="Deaths per 100,000 children aged 0-17 (95% CI)",
                        title="Death rate by deprivation quintile (IMD 2019)", note=note)


def ethnicity_rates_figure(table, marks, ctx):
    """Death rates by ethnic group with 95% CI, beside England's (a Figure); denominators approximated."""
    from cdr.data import ETHNIC_GROUPS

    body = table[table["ethnicity"].isin(ETHNIC_GROUPS)]
    return _rate_figure(body, marks.loc[body.index], ctx, prefix="rate_per_100000",
                        xlabel="Deaths per 100,000 children aged 0-17 (95% CI)", title="Death rate by ethnic group",
                        note="Denominators approximated (2011 Census ethnic mix; see the table notes).")


def page(sections: list, methods: list):
    """The report's sections and methods with the content tables added (rate rules stated beside them)."""
    new = [
        {"title": "Expected and unexpected deaths", "tables": ["deaths_by_expectedness", "joint_agency_response"]},
        {"title": "Place of death", "tables": ["deaths_by_place_of_death"]},
        {"title": "Infant mortality", "text": [RATE_RULES], "figures": ["infant_mortality"],
         "tables": ["infant_mortality", "deaths_by_gestation", "deaths_by_birth_weight"]},
        {"title": "Safeguarding and inquests", "tables": ["safeguarding", "inquest"]},
        {"title": "Time to complete reviews", "tables": ["time_to_review"]},
        {"title": "Learning themes", "tables": ["learning_themes"]},
    ]
    out = []
    for s in sections:
        s = dict(s)
        if "deaths_by_deprivation" in s.get("tables", []):
            s["text"] = [*s.get("text", []), RATE_RULES]
            s["figures"] = ["deprivation_rates" if f == "deaths_by_deprivation" else f for f in s.get("figures", [])]
        out.append(s)
        if "deaths_by_ethnicity" in s.get("tables", []):
            if RATE_RULES not in s.get("text", []):
                s["text"] = [*s.get("text", []), RATE_RULES]
            s["figures"] = ["ethnicity_rates" if f == "deaths_by_ethnicity" else f for f in s.get("figures", [])]
            out += new
            new = []
    return out + new, [*methods, RATE_RULES]
