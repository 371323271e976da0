"""Count the records into bundle cells and declare the report's tables over them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cdr.report import _content
from cdr.report._bundle import Bundle, TableSpec
from cdr.report._inputs import (
    AGE_BAND_LABELS, AGE_BANDS, CATEGORY_LABELS, CATEGORY_ORDER, CONTRIBUTORY, DOMAIN_LABELS, DOMAINS,
    ETHNICITY_LABELS, IMD_QUINTILE_LABELS, IMD_QUINTILES, SEXES,
)
from cdr.report._merge import (
    NATION, OTHER, OTHER_REVIEWS, _age_group_label, merge_contiguous, merge_small, refine_cross,
)

__all__ = ["Geography", "prepare_records", "declare_tables", "NATION"]

SEX_LABELS = {"male": "Male", "female": "Female", "unknown": "Not known"}
LEVELS = {"age_band": AGE_BANDS, "sex": SEXES, "category": CATEGORY_ORDER, "imd_quintile": IMD_QUINTILES,
          "ethnicity": tuple(ETHNICITY_LABELS)}


@dataclass
class Geography:
    """Units of the report and how they nest. ``focus`` is the unit reported on."""

    la_table: pd.DataFrame     # la_code, la_name, region_code, region_name, footprint_id (may be NA)
    unit_las: dict             # unit id -> frozenset of LA codes
    names: dict                # unit id -> display name
    focus: str                 # unit id
    comparators: list          # unit ids shown beside the focus in the headline (region(s), England)
    children: list             # unit ids whose rows make up the focus (LAs, or regions for England)
    peers: list                # unit ids on the funnel plot
    populations: pd.DataFrame  # la_code, period_key, population

    def kind(self, unit) -> str:
        return {"la": "Local authority", "fp": "Footprint", "rgn": "Region", "nat": "Nation"}[unit.split(":")[0]]

    def code(self, unit) -> str:
        return unit.split(":", 1)[1]

    def population(self, unit, key) -> float:
        pop = self.populations
        las = self.unit_las[unit]
        sel = pop[(pop["period_key"] == key) & pop["la_code"].isin(las)]
        return float(sel["population"].sum())


def prepare_records(records: pd.DataFrame, la_table: pd.DataFrame, *, period_keys, review_keys) -> pd.DataFrame:
    """Columns the counts need: unit ids per level, period key, review and factor flags.

    One row per death (``deaths``, ``reviewed``, ``pending`` in the period of death) and one more
    row per completed review (``rc_*`` measures in the period the review was completed: the
    cohort in which modifiable factors are reported, as in NCMD and DfE statistics).
    ``review_keys`` maps review dates to period keys.
    """
    rec = pd.DataFrame({"case_id": records["case_id"].astype(str).to_numpy()})
    la = records["la_code"].astype(str).to_numpy()
    lookup = la_table.set_index("la_code")
    rec["la"] = "la:" + pd.Series(la)
    rec["rgn"] = "rgn:" + pd.Series(la).map(lookup["region_code"]).astype(str)
    fp = pd.Series(la).map(lookup["footprint_id"]) if "footprint_id" in lookup else pd.Series([pd.NA] * len(la))
    rec["fp"] = np.where(fp.isna(), None, "fp:" + fp.astype(str))
    rec["nat"] = NATION
    rec["period_key"] = period_keys
    rec["age_band"] = records["age_band"].astype(str).to_numpy()
    rec["sex"] = records["sex"].astype(str).to_numpy()
    rec["category"] = records["category"].astype(str).to_numpy()
    rec["ethnicity"] = (records["ethnicity"].astype("string").fillna("unknown").to_numpy() if "ethnicity" in records
                        else np.array(["unknown"] * len(rec)))
    dec = pd.to_numeric(pd.Series(records["imd_decile"].to_numpy()), errors="coerce")
    quint = np.ceil(dec / 2)
    rec["imd_quintile"] = np.where(quint.isna(), "unknown", quint.fillna(0).astype(int).astype(str))
    rec = _content.add_columns(rec, records)   # optional fields and review times (issue 15)
    reviewed = records["reviewed"].fillna(False).astype(bool).to_numpy() if "reviewed" in records else \
        records["review_completed"].notna().to_numpy()
    rec["deaths"] = 1
    rec["reviewed"] = reviewed.astype(int)
    rec["pending"] = (~reviewed).astype(int)
    for m in REVIEW_MEASURES:
        rec[m] = 0
    # the review cohort: one more row per completed review, in the period the review was completed
    modifiable = records["modifiable"].astype("string").fillna("").to_numpy() if "modifiable" in records else \
        np.array([""] * len(rec))
    done = pd.to_datetime(records["review_completed"]) if "review_completed" in records else pd.Series(pd.NaT, index=records.index)
    has = done.notna().to_numpy() & reviewed
    rev = rec.loc[has].copy()
    rev["period_key"] = review_keys(done[has].to_numpy())
    for m in ("deaths", "reviewed", "pending"):
        rev[m] = 0
    rev["rc_reviews"] = 1
    # one definition of "% modifiable" (as cdr.factors.prevalence and DfE/NHS Digital): modifiable
    # out of reviews with a yes/no judgement; insufficient information (or missing) counted apart
    rev["rc_modifiable"] = (modifiable[has] == "yes").astype(int)
    rev["rc_not_modifiable"] = (modifiable[has] == "no").astype(int)
    rev["rc_judged"] = rev["rc_modifiable"] + rev["rc_not_modifiable"]
    rev["rc_insufficient"] = 1 - rev["rc_judged"]
    for d in DOMAINS:
        lev = records[d].astype("string").fillna("").to_numpy()[has] if d in records else np.array([""] * int(has.sum()))
        rev["rc_" + d] = (np.isin(lev, CONTRIBUTORY) & (rev["rc_judged"].to_numpy() == 1)).astype(int)
        rev["rc_no_" + d] = rev["rc_judged"] - rev["rc_" + d]   # judged without a factor in the domain (never shown)
    return pd.concat([rec, rev], ignore_index=True)


REVIEW_MEASURES = ("rc_reviews", "rc_judged", "rc_insufficient", "rc_modifiable", "rc_not_modifiable",
                   *("rc_" + d for d in DOMAINS), *("rc_no_" + d for d in DOMAINS))


def _counts(rec, unit_level, measures, dims=()):
    """dict (unit, period_key, dims-tuple) -> {measure: count}, by one groupby."""
    keys = [unit_level, "period_key", *dims]
    sub = rec[rec[unit_level].notna()]
    grouped = sub.groupby(keys, sort=False)[list(measures)].sum()
    return grouped


class _Counter:
    """Looks up counts (zeros where no records) and registers them as bundle cells."""

    def __init__(self, rec, bundle: Bundle, period_labels: dict):
        self.rec, self.bundle, self.labels = rec, bundle, period_labels
        self._cache = {}
        self._merged = {}
        self.measures = ["deaths", "reviewed", "pending", *REVIEW_MEASURES]

    def _table(self, level, dims):
        key = (level, tuple(dims))
        if key not in self._cache:
            self._cache[key] = _counts(self.rec, level, self.measures, dims).to_dict("index")
        return self._cache[key]

    def merge(self, dim, merges: dict):
        for merged, members in merges.items():
            self._merged[(dim, merged)] = tuple(members)

    def value(self, measure, unit, key, **dims) -> int:
        for (dim, merged), members in self._merged.items():
            if dims.get(dim) == merged:
                return sum(self.value(measure, unit, key, **{**dims, dim: m}) for m in members)
        names = tuple(sorted(dims))
        table = self._table(unit.split(":")[0], names)
        row = table.get((unit, key, *[dims[n] for n in names]))
        return 0 if row is None else int(row[measure])

    def cell(self, measure, unit, key, **dims):
        return self.bundle.cell(measure, unit, self.labels.get(key, key), self.value(measure, unit, key, **dims), **dims)

    def total_cell(self, measure, unit, keys, total_label, **dims):
        value = sum(self.bundle.cells[self.cell(measure, unit, k, **dims)]["value"] for k in keys)
        return self.bundle.cell(measure, unit, total_label, value, **dims)


def _cat_label(v, merges):
    return _level_label(v, merges, CATEGORY_LABELS)


def _level_label(v, merges, labels):
    if v in merges:
        if v in (OTHER, OTHER_REVIEWS):   # short, for figures; the members go in a note (_other_note)
            return f"Other categories ({len(merges[v])})"
        return " + ".join(labels[m] for m in merges[v])
    return labels[v]


def includes(levels, merges) -> list:
    """The ``includes`` column of a table with merged groups: the level codes each row holds, joined by ``+``.

    A reader (and anyone checking the tables against each other) needs to know what a merged row
    such as "Other categories (3)" covers; the notes say it in words, this column in codes.
    """
    return ["+".join(merges.get(v, [v])) for v in levels]


def _other_note(merges, labels):
    """The note listing what an "Other categories (n)" row holds, or None."""
    for v in (OTHER, OTHER_REVIEWS):
        if v in merges:
            return f"Other categories ({len(merges[v])}): " + "; ".join(labels[m] for m in merges[v]) + "."
    return None


def _age_column(level: str) -> str:
    """Column name of an age group: ``age_neonatal``, ``age_under_1``, ``age_0_4``, ``age_28d_4``, ``age_1_17``."""
    parts = level.split("+")
    if len(parts) == 1:
        return "age_" + level.replace("-", "_")
    start = {"neonatal": "0", "postneonatal": "28d"}.get(parts[0], parts[0].split("-")[0])
    if parts[-1] == "postneonatal":
        return "age_under_1" if start == "0" else "age_28d_364d"
    return f"age_{start}_{parts[-1].split('-')[-1]}"


def declare_tables(rec, geo: Geography, *, key, trend_keys, period_labels, total_label, merge_below=10,
                   threshold=5, calendar=False):
    """The bundle of cells and the ordered list of :class:`TableSpec`."""
    bundle = Bundle(geo.unit_las, LEVELS, years=[period_labels[k] for k in trend_keys], total_period=total_label)
    c = _Counter(rec, bundle, period_labels)
    keys_of = {lab: [k] for k, lab in period_labels.items()}
    keys_of[total_label] = list(trend_keys)

    def value_of(measure, las, period, dims):   # an unpublished part: the sum over its LAs
        return sum(c.value(measure, "la:" + la, k, **dict(dims)) for la in las for k in keys_of[period])

    bundle.value_of = value_of
    bundle.count = c.value   # (measure, unit, period key, **dims) -> count: recounts earlier releases' cells
    U = geo.focus
    n_focus = c.value("deaths", U, key)
    if n_focus < merge_below:
        from cdr.errors import CdrError

        raise CdrError(
            f"{geo.names[U]} ({geo.code(U)}) has {'no' if n_focus == 0 else 'fewer than ' + str(merge_below)} deaths "
            f"in {period_labels[key]}: too few to publish annual statistics without disclosing individual children. "
            "Report on a larger footprint, a region or England.")
    tables = []
    label = period_labels[key]

    def area_labels(units):
        return pd.DataFrame({"area_code": [geo.code(u) for u in units], "area_name": [geo.names[u] for u in units],
                             "area_type": [geo.kind(u) for u in units]})

    # headline
    units = [U, *geo.comparators]
    tables.append(TableSpec(
        "headline", f"Deaths notified and reviewed, {label}", area_labels(units),
        counts={**{m: [c.cell(m, u, key) for u in units] for m in ("deaths", "reviewed", "pending")},
                "reviews_completed_in_period": [c.cell("rc_reviews", u, key) for u in units]},
        values={"population": [geo.population(u, key) for u in units]},
        derived=[("rate", "rate_per_100000", "deaths", "population"), ("percent", "percent_reviewed", "reviewed", "deaths")],
        notes=["Deaths notified: children (0-17) resident in the area who died in the period. Reviewed: the "
               "child death review was completed by the date the records were extracted; pending reviews are "
               "shown as such, not dropped. Reviews completed in the period: reviews finished during the period, whatever "
               "the year of death (the cohort of the modifiable-factor tables).",
               "Rate per 100,000 children aged 0-17 (ONS mid-year estimates), 95% confidence interval: exact "
               "Poisson below 10 deaths, Byar's method from 10. [u]: fewer than 20 deaths, low reliability."],
        figure="headline_rates"))

    # by area within the focus
    units = [*geo.children, U]
    tables.append(TableSpec(
        "deaths_by_area", f"Deaths by {geo.kind(geo.children[0]).lower() if geo.children else 'area'}, {label}",
        area_labels(units),
        counts={"deaths": [c.cell("deaths", u, key) for u in units]},
        values={"population": [geo.population(u, key) for u in units]},
        derived=[("rate", "rate_per_100000", "deaths", "population")],
        notes=["Last row: the whole area. Areas are upper-tier local authorities (2023 boundaries) or regions."]))

    if U == NATION:   # every LA, so the LA -> footprint -> region -> England hierarchy is published whole
        las = sorted(u for u in geo.unit_las if u.startswith("la:"))
        lab = area_labels(las)
        lt = geo.la_table.set_index("la_code")
        lab["region_code"] = [lt.at[geo.code(u), "region_code"] for u in las]
        if "footprint_id" in lt.columns:
            lab["footprint_id"] = [lt.at[geo.code(u), "footprint_id"] for u in las]
        tables.append(TableSpec(
            "deaths_by_local_authority", f"Deaths by local authority, {label}", lab,
            counts={"deaths": [c.cell("deaths", u, key) for u in las]},
            values={"population": [geo.population(u, key) for u in las]},
            derived=[("rate", "rate_per_100000", "deaths", "population")],
            notes=["Upper-tier local authorities of residence (April 2023 boundaries)."]))

    # one-way breakdowns; England columns only when the records cover England (else the
    # comparators table gives the published figures)
    has_england = U != NATION and NATION in geo.comparators
    for dim, labels, title, fig in (
        ("age_band", AGE_BAND_LABELS, "age band", "deaths_by_age_band"),
        ("sex", SEX_LABELS, "sex", "deaths_by_sex"),
        ("category", CATEGORY_LABELS, "category of death", "deaths_by_category"),
        ("imd_quintile", IMD_QUINTILE_LABELS, "deprivation (IMD 2019 quintile of residence)", "deaths_by_deprivation"),
        ("ethnicity", ETHNICITY_LABELS, "ethnic group", "deaths_by_ethnicity"),
    ):
        levels = LEVELS[dim]
        lab = pd.DataFrame({dim: [*levels, "total"], "label": [labels[v] for v in levels] + ["Total"]})
        counts = {"deaths": [c.cell("deaths", U, key, **{dim: v}) for v in levels] + [c.cell("deaths", U, key)]}
        derived = [("percent", "percent", "deaths", "_deaths_total")]
        counts["_deaths_total"] = [c.cell("deaths", U, key)] * (len(levels) + 1)
        if has_england:
            counts["england_deaths"] = [c.cell("deaths", NATION, key, **{dim: v}) for v in levels] + [c.cell("deaths", NATION, key)]
            counts["_england_deaths_total"] = [c.cell("deaths", NATION, key)] * (len(levels) + 1)
            derived.append(("percent", "england_percent", "england_deaths", "_england_deaths_total"))
        notes = ["Percent: share of all deaths notified in the area."]
        if dim == "imd_quintile":
            notes.append("Quintile of the Index of Multiple Deprivation 2019 for the child's home neighbourhood "
                         "(from imd_decile in the records); 1 = most deprived fifth of neighbourhoods in England.")
        tables.append(TableSpec(fig,
                                f"Deaths by {title}, {label}", lab, counts=counts, derived=derived, notes=notes,
                                figure=fig))

    # category x age band: categories and age bands with few deaths are merged first, so that no
    # published breakdown rests on a small total (an attacker would learn such a total is >= 2)
    true = {v: c.value("deaths", U, key, category=v) for v in LEVELS["category"]}
    cats, cat_merges = merge_small(true, merge_below, OTHER)
    ages_true = {a: c.value("deaths", U, key, age_band=a) for a in AGE_BANDS}
    ages, age_merges = merge_contiguous(ages_true, merge_below)
    cross = {(v, a): c.value("deaths", U, key, category=v, age_band=a) for v in LEVELS["category"] for a in AGE_BANDS}
    cats, cat_merges, ages, age_merges, design_options = refine_cross(cross, cats, cat_merges, ages, age_merges,
                                                                      threshold=threshold)
    steps = int(design_options.loc[design_options["chosen"], "step"].iloc[0])
    bundle.design_options = design_options
    for dim, levels, merges in (("category", cats, cat_merges), ("age_band", ages, age_merges)):
        if merges:
            c.merge(dim, merges)
            bundle.add_partition(dim, levels, merges)
    lab = pd.DataFrame({"category": [*cats, "total"], "label": [_cat_label(v, cat_merges) for v in cats] + ["Total"],
                        "includes": [*includes(cats, cat_merges), "all"]})
    counts = {}
    for a in ages:
        counts[_age_column(a)] = (
            [c.cell("deaths", U, key, category=v, age_band=a) for v in cats] + [c.cell("deaths", U, key, age_band=a)])
    counts["all_ages"] = [c.cell("deaths", U, key, category=v) for v in cats] + [c.cell("deaths", U, key)]
    notes = ["Columns: age bands (neonatal 0-27 days, postneonatal 28-364 days, then years)."]
    if cat_merges or age_merges:
        notes.append(f"Categories and neighbouring age bands with fewer than {merge_below} deaths in the period are "
                     "combined, so that small numbers are not broken down further.")
    if steps:
        notes.append(f"Further combined ({steps} step(s)) because a category x age cell would otherwise be a count "
                     f"from 1 to {threshold - 1}: protecting it by suppression would hide cells of the one-way age and "
                     "category tables instead. The one-way tables keep every age band and category.")
    if age_merges:
        notes.append("Age groups: " + "; ".join(f"{_age_column(g)} = {_age_group_label(g)} ("
                                                 + ", ".join(AGE_BAND_LABELS[m] for m in mem) + ")"
                                                 for g, mem in age_merges.items()) + ".")
    if _other_note(cat_merges, CATEGORY_LABELS):
        notes.append(_other_note(cat_merges, CATEGORY_LABELS))
    column_labels = {_age_column(a): _age_group_label(a) for a in ages}
    column_labels["all_ages"] = "All ages"
    tables.append(TableSpec("category_by_age_band", f"Deaths by category of death and age band, {label}", lab,
                            counts=counts, notes=notes, column_labels=column_labels))

    # modifiable factors, among reviews completed in the period (NCMD/DfE convention), by category,
    # age band and deprivation: levels merged by number of reviews
    totals = {m: c.value(m, U, key) for m in ("rc_reviews", "rc_modifiable", "rc_not_modifiable")}
    small_totals = [m[3:].replace("_", " ") for m, v in totals.items() if m != "rc_reviews" and 0 < v < merge_below]
    base_notes = ["Reviews completed in the period (whatever the year of death), as in the national child death "
                  "review statistics. Percent with modifiable factors = modifiable / judged, where judged = reviews "
                  "with enough information to decide (modifiable + not modifiable); reviews with insufficient "
                  "information are shown separately and are not in the denominator (as in cdr.factors.prevalence).",
                  "Percent with modifiable factors: Wilson score 95% confidence interval."]
    for name, dim, labels, contiguous, title in (
        ("modifiable_by_category", "category", CATEGORY_LABELS, False, "category of death"),
        ("modifiable_by_age_band", "age_band", AGE_BAND_LABELS, True, "age band"),
        ("modifiable_by_deprivation", "imd_quintile", IMD_QUINTILE_LABELS, True, "deprivation (IMD 2019 quintile)"),
    ):
        notes = list(base_notes)
        measures = {"reviews": "rc_reviews", "insufficient_information": "rc_insufficient", "judged": "rc_judged",
                    "modifiable": "rc_modifiable", "not_modifiable": "rc_not_modifiable"}
        derived = [("proportion_ci", "percent_modifiable", "modifiable", "judged")]
        levels, merges = [], {}
        if totals["rc_reviews"] < merge_below:
            measures, derived = {"reviews": "rc_reviews"}, []
            notes.append(f"Fewer than {merge_below} reviews were completed: modifiable factors are not shown.")
        elif small_totals:
            notes.append(f"Not broken down: fewer than {merge_below} completed reviews were "
                         f"{' / '.join(small_totals)}, and a breakdown would disclose small numbers.")
        else:
            true_r = {v: c.value("rc_reviews", U, key, **{dim: v}) for v in LEVELS[dim]}
            if contiguous:
                levels, merges = merge_contiguous(true_r, merge_below)
            else:
                levels, merges = merge_small(true_r, merge_below, OTHER_REVIEWS)
            if merges:
                c.merge(dim, merges)
                bundle.add_partition(dim, levels, merges)
                notes.append(f"Levels with fewer than {merge_below} completed reviews are combined"
                             + (" with their neighbours." if contiguous else "."))
                if _other_note(merges, labels):
                    notes.append(_other_note(merges, labels))
        lab = pd.DataFrame({dim: [*levels, "total"], "label": [_level_label(v, merges, labels) for v in levels] + ["Total"],
                            "includes": [*includes(levels, merges), "all"]})
        counts = {col: [c.cell(m, U, key, **{dim: v}) for v in levels] + [c.cell(m, U, key)] for col, m in measures.items()}
        tables.append(TableSpec(
            name, f"Completed reviews with modifiable factors, by {title}, {label}", lab, counts=counts,
            derived=derived, notes=notes, figure=name if derived and levels else None))

    # factors by domain, same cohort
    lab = pd.DataFrame({"domain": list(DOMAINS), "label": [DOMAIN_LABELS[d] for d in DOMAINS]})
    counts = {"judged": [c.cell("rc_judged", U, key)] * len(DOMAINS),
              "with_contributory_factor": [c.cell("rc_" + d, U, key) for d in DOMAINS]}
    for d in DOMAINS:   # judged = with + without a factor: a domain in all but 1-4 judged reviews is protected
        without = c.cell("rc_no_" + d, U, key)
        bundle.hidden.add(without)
        bundle.extra.append((c.cell("rc_judged", U, key), [c.cell("rc_" + d, U, key), without]))
    tables.append(TableSpec(
        "modifiable_by_domain", f"Completed reviews with a contributory factor, by domain, {label}", lab, counts=counts,
        derived=[("proportion_ci", "percent", "with_contributory_factor", "judged")],
        notes=["Reviews completed in the period with enough information to judge modifiable factors (the "
               "denominator of percent modifiable). A factor counts when the review panel scored it as one that may "
               "have contributed or was sufficient to cause the death. A review can have factors in several domains."],
        figure="modifiable_by_domain"))

    # trends over the available years, and the multi-year total
    labs = [period_labels[k] for k in trend_keys]
    lab = pd.DataFrame({"period": [*labs, total_label], "period_start": [*trend_keys, pd.NA]})
    counts = {"deaths": [c.cell("deaths", U, k) for k in trend_keys] + [c.total_cell("deaths", U, trend_keys, total_label)]}
    values = {"population": [geo.population(U, k) for k in trend_keys] + [sum(geo.population(U, k) for k in trend_keys)]}
    derived = [("rate", "rate_per_100000", "deaths", "population")]
    if has_england:
        counts["england_deaths"] = [c.cell("deaths", NATION, k) for k in trend_keys] + \
            [c.total_cell("deaths", NATION, trend_keys, total_label)]
        values["england_population"] = [geo.population(NATION, k) for k in trend_keys] + \
            [sum(geo.population(NATION, k) for k in trend_keys)]
        derived.append(("rate", "england_rate_per_100000", "england_deaths", "england_population"))
    trend_notes = ["Last row: all years together (rate per 100,000 child-years)."]
    if U != NATION and not has_england and not calendar:   # NCMD publishes years ending March only
        pub = published_england_series(trend_keys)
        values["england_deaths_published"] = [p["deaths"] for p in pub] + [np.nan]
        values["england_rate_per_100000_published"] = [p["rate"] for p in pub] + [np.nan]
        trend_notes.append(
            "England columns: published NCMD figures (not computed from these records, which cover only part of "
            "England); blank where none is published. Sources: " + "; ".join(
                f"{period_labels[k]}: " + ", ".join(p["sources"]) for k, p in zip(trend_keys, pub) if p["sources"])
            + ".")
    tables.append(TableSpec("trend", "Deaths and rates per 100,000 children over the available years", lab,
                            counts=counts, values=values, derived=derived,
                            notes=trend_notes, figure="trend"))

    # funnel: every peer unit in the year
    peers = geo.peers
    lab = area_labels(peers)
    tables.append(TableSpec(
        "funnel", f"Rates for all {geo.kind(peers[0]).lower()}s in England, {label}", lab,
        counts={"deaths": [c.cell("deaths", u, key) for u in peers]},
        values={"population": [geo.population(u, key) for u in peers]},
        derived=[("rate", "rate_per_100000", "deaths", "population")],
        notes=["Control limits: exact Poisson 95% and 99.8% limits around the England rate for the year."],
        figure="funnel"))
    tables = _content.declare(tables, rec, geo, c, bundle, key=key, period_labels=period_labels,   # issue 15
                              total_label=total_label, merge_below=merge_below, threshold=threshold)
    return bundle, tables


def published_england_series(keys) -> list:
    """Per period start: published England deaths and rate (NaN where none), and their sources."""
    from cdr.published import comparator

    out = []
    for k in keys:
        d, r = comparator("deaths", int(k)), comparator("rate_per_100000", int(k))
        out.append({"deaths": np.nan if d is None else d["value"], "rate": np.nan if r is None else r["value"],
                    "sources": [f"{x['source']} ({x['source_year']})" for x in (d, r) if x is not None]})
    return out


#: Published measures shown for an England comparator the records do not cover, in this order.
COMPARATOR_MEASURES = ("deaths", "rate_per_100000", "infant_rate_per_1000", "reviews_completed", "percent_modifiable")


def published_comparators(units, geo: Geography, period_start: int, period: str, *, calendar: bool = False):
    """(TableSpec, notes) of published figures for the comparator units the records do not cover.

    England: every published figure for the year (``cdr.published``), with source and year; the
    headline measures with no published figure get a row saying so (value blank, ``[x]``). A
    region: NCMD publishes no figure for named regions, so its rows say so. Nothing is computed
    from the records. Calendar-year reports get no comparator (NCMD publishes years ending March).
    """
    from cdr.published import MEASURES, comparator, published_figures

    rows = []
    for u in units:
        code, name = geo.code(u), geo.names[u]
        if calendar:
            rows.append((code, name, geo.kind(u), "deaths", "all", "all", period, np.nan, "", "", "", "",
                         "NCMD publishes years ending 31 March only: no comparator for a calendar year"))
            continue
        if u == NATION:
            for m in COMPARATOR_MEASURES:
                c = comparator(m, period_start)
                if c is None:
                    rows.append((code, name, geo.kind(u), m, "all", "all", period, np.nan, MEASURES[m], "", "", "",
                                 "no published figure for this year: comparator left out"))
                else:
                    rows.append((code, name, geo.kind(u), m, "all", "all", c["period"], c["value"], c["unit"],
                                 c["source"], str(c["source_year"]), c["source_url"], c["note"]))
            more = published_figures(period=period_start)
            more = more[(more["breakdown"] != "all") & (more["convention"] == "reporting")]
            for r in more.itertuples():
                rows.append((code, name, geo.kind(u), r.measure, r.breakdown, r.level, r.period, float(r.value), r.unit,
                             r.source, str(r.source_year), r.source_url, r.note))
        else:
            for m in ("deaths", "rate_per_100000"):
                rows.append((code, name, geo.kind(u), m, "all", "all", period, np.nan, MEASURES[m], "", "", "",
                             "NCMD publishes no figure for named regions (only the range of regional rates): "
                             "comparator left out"))
    cols = ["area_code", "area_name", "area_type", "measure", "breakdown", "level", "period", "value", "unit",
            "source", "source_year", "source_url", "note"]
    frame = pd.DataFrame(rows, columns=cols)
    values = {"value": frame.pop("value").to_numpy(dtype=float)}
    frame = frame[[c for c in cols if c != "value"]]
    notes = ["Published figures, not computed from these records (which do not cover these areas): each row gives "
             "its source and the year it was published. A blank value means no figure is published for that cell, "
             "so no comparator is shown for it; nothing is estimated."]
    spec = TableSpec("comparators", f"Comparators from published figures, {period}", frame, counts={}, values=values,
                     notes=notes, column_labels={"value": "Published value"})
    return spec
