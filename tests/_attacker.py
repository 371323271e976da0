"""An independent differencing attacker for chains of published report bundles (test helper).

It reads only what is published: the ``tables/*.csv`` of every bundle, plus public geography (which
LAs make up a region, England, and the footprints of a published design) and the public code lists
of the record fields (written out below, as a reader of the documentation would). It does NOT
import ``cdr.disclosure`` or ``cdr.report``: it is a second implementation of the attack, written
from the tables' public meaning, not from the library's cell ids or equations.

Every published count is read as a *fact*: unit (LA set), measure, years, and a breakdown
``{field: levels}`` (a merged row such as ``1-4+5-9``, or ``other`` with its ``includes`` column,
covers several levels). Unknowns are non-negative integers:

- ``("L", la, year)``: deaths of one LA in a year (LA, footprint, region and England totals, rates);
- ``("A", measure, atom, year, breakdown)``: every other count, for one *atom* of the common
  refinement of the units that publish breakdowns (e.g. F001 and Tees CDOP overlap: the atoms are
  F001 ∩ Tees, F001 \\ Tees, Tees \\ F001, the rest of the North East, the rest of England). An
  atom's deaths total is the sum of its LAs' deaths.

Per atom and year, every breakdown is tied to its margins over the full code list of each field
(deaths by category x age band sum to deaths by category over the ages, and so on down to the
total), ``deaths = reviewed + pending``, ``reviews = judged + insufficient``, ``judged = modifiable
+ not modifiable``, and a domain's reviews with a contributory factor are at most the judged
reviews. A suppressed cell (``[c]``) is >= 1 (zeros are shown); a published rate with its
population bounds its count by the rounding interval. For every suppressed cell, and for every
count a table implies without showing it (reviews *without* a learning theme: reviews minus
reviews with it, since themes are multi-valued), the attacker solves two integer programmes
(scipy.optimize.milp, HiGHS) for its minimum and maximum.
"""
from __future__ import annotations

import itertools
import re
from collections import defaultdict

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

NATION = "E92000001"
HIDDEN = "[c]"
THEMES = ("smoking_in_pregnancy", "unsafe_sleep", "maternal_obesity", "substance_misuse", "access_to_services",
          "road_safety", "water_safety", "parental_mental_health", "domestic_abuse", "housing",
          "bullying_online_harm", "other")
DOMAINS = ("domain_child", "domain_social", "domain_physical", "domain_service")
AGE_BANDS = ("neonatal", "postneonatal", "1-4", "5-9", "10-14", "15-17", "not_recorded")
#: the public code list of every field a table breaks down by (docs: cdr data columns)
UNIVERSE = {
    "sex": ("male", "female", "unknown"),
    "age_band": AGE_BANDS,
    "category": ("abuse_neglect", "suicide_self_harm", "trauma_external", "malignancy", "acute_medical_surgical",
                 "chronic_medical", "chromosomal_genetic_congenital", "perinatal_neonatal", "infection",
                 "sudden_unexpected_unexplained", "not_recorded"),
    "imd_quintile": ("1", "2", "3", "4", "5", "unknown"),
    "ethnicity": ("white", "mixed", "asian", "black", "other", "unknown"),
    "death_expected": ("expected", "unexpected", "not_recorded"),
    "jar": ("yes", "no", "not_recorded"),
    "place_of_death": ("neonatal_unit", "hospital_ward", "emergency_department", "home", "hospice", "public_place",
                       "abroad", "other", "not_recorded"),
    "gestation_band": ("under_24", "24_27", "28_31", "32_36", "37_plus", "not_recorded"),
    "birth_weight_band": ("under_1000", "1000_1499", "1500_2499", "2500_plus", "not_recorded"),
    "known_to_social_care": ("yes", "no", "not_recorded"),
    "cspr": ("yes", "no", "not_recorded"),
    "inquest": ("yes", "no", "not_recorded"),
    "review_time": ("under_6_months", "6_to_12_months", "over_12_months"),
    "backlog_age": ("under_6_months", "6_to_12_months", "12_to_24_months", "over_24_months"),
    **{f"theme_{k}": ("yes", "no") for k in THEMES},
}
REVIEW_MEASURES = {"reviews": "rc_reviews", "insufficient_information": "rc_insufficient", "judged": "rc_judged",
                   "modifiable": "rc_modifiable", "not_modifiable": "rc_not_modifiable"}
RELATIONS = (("deaths", ("reviewed", "pending")), ("rc_reviews", ("rc_judged", "rc_insufficient")),
             ("rc_judged", ("rc_modifiable", "rc_not_modifiable")))
ONE_WAY = {"deaths_by_age_band": "age_band", "deaths_by_sex": "sex", "deaths_by_category": "category",
           "deaths_by_deprivation": "imd_quintile", "deaths_by_ethnicity": "ethnicity",
           "deaths_by_place_of_death": "place_of_death", "inquest": "inquest"}
INFANT = ("neonatal", "postneonatal")


def _year(label: str) -> int:
    return int(str(label)[:4])


def _years(label: str) -> list[int]:
    label = str(label)
    if " to " in label:
        a, b = label.split(" to ")
        return list(range(_year(a), _year(b) + 1))
    return [_year(label)]


def age_column_members(col: str) -> list[str]:
    """Age bands of a ``category_by_age_band`` column: ``age_1_9`` -> ``['1-4', '5-9']`` (public naming)."""
    name = col[len("age_"):]
    single = {b.replace("-", "_"): b for b in AGE_BANDS}
    if name in single:
        return [single[name]]
    if name == "under_1":
        return list(INFANT)
    if name == "28d_364d":
        return ["postneonatal"]
    m = re.fullmatch(r"(0|28d|1|5|10|15)_(4|9|14|17|not_recorded)", name)
    if not m:
        raise ValueError(f"attacker: cannot read age column {col!r}")
    start = {"0": 0, "28d": 1, "1": 2, "5": 3, "10": 4, "15": 5}[m.group(1)]
    end = {"4": 2, "9": 3, "14": 4, "17": 5, "not_recorded": 6}[m.group(2)]
    return list(AGE_BANDS[start:end + 1])


def _members(level, includes=None) -> list[str]:
    """Levels a row covers: its ``includes`` column when the table has one, else ``a+b`` -> [a, b]."""
    if includes not in (None, "", "nan"):
        return str(includes).split("+")
    return str(level).split("+")


class Attacker:
    """Collects published cells of many bundles as facts and attacks the hidden ones with integer programmes."""

    def __init__(self, unit_las: dict):
        self.unit_las = {k: frozenset(v) for k, v in unit_las.items()}
        self.facts: list = []

    # -- reading bundles ---------------------------------------------------------------------
    def fact(self, unit, measure, years, dims, text, what, *, rate=None, population=None, decimals=1,
             multiplier=100_000, kind=None, bound=None):
        """One published count. ``dims``: {field: [levels]}; ``kind``: ``"complement"`` for a count the
        tables imply without showing it (a target, never a constraint of its own); ``bound``: ``"le_judged"``."""
        self.facts.append({"unit": str(unit), "measure": measure, "years": tuple(years),
                           "dims": tuple(sorted((d, tuple(v)) for d, v in dims.items())), "text": str(text),
                           "what": what, "rate": rate, "population": population, "decimals": decimals,
                           "multiplier": multiplier, "kind": kind, "bound": bound})

    def read_bundle(self, folder, year_label: str, name: str):
        """Add every published count of the bundle in ``folder`` (its ``tables/*.csv`` only)."""
        tables = {p.stem: pd.read_csv(p, dtype=str, keep_default_na=False) for p in sorted((folder / "tables").glob("*.csv"))}
        year = _year(year_label)
        focus = tables["headline"]["area_code"].iloc[0]
        has_pop = lambda row, col: row.get(col) not in (None, "", HIDDEN, "nan")  # noqa: E731
        for tname in ("headline", "deaths_by_area", "deaths_by_local_authority", "funnel"):
            for row in tables.get(tname, pd.DataFrame()).to_dict("records"):
                for col, measure in (("deaths", "deaths"), ("reviewed", "reviewed"), ("pending", "pending"),
                                     ("reviews_completed_in_period", "rc_reviews")):
                    if col in row:
                        self.fact(row["area_code"], measure, [year], {}, row[col],
                                  f"{name}/{tname}: {measure} {row['area_code']}",
                                  rate=row.get("rate_per_100000") if measure == "deaths" else None,
                                  population=float(row["population"]) if has_pop(row, "population") else None)
        trend_years = []
        for row in tables.get("trend", pd.DataFrame()).to_dict("records"):
            years = _years(row["period"])
            if len(years) == 1:
                trend_years += years
            for col, unit, pop_col, rate_col in (("deaths", focus, "population", "rate_per_100000"),
                                                 ("england_deaths", NATION, "england_population", "england_rate_per_100000")):
                if col in row:
                    self.fact(unit, "deaths", years, {}, row[col], f"{name}/trend: {unit} {row['period']}",
                              rate=row.get(rate_col), population=float(row[pop_col]) if has_pop(row, pop_col) else None)
        # one-way breakdowns (England columns when the records cover England)
        for tname, dim in ONE_WAY.items():
            t = tables.get(tname)
            if t is None:
                continue
            for row in t.to_dict("records"):
                dims = {} if row[dim] == "total" else {dim: _members(row[dim], row.get("includes"))}
                for col, unit in (("deaths", focus), ("england_deaths", NATION)):
                    if col in row:
                        pop_col = "population" if col == "deaths" else "england_population"
                        rate_col = "rate_per_100000" if col == "deaths" else "england_rate_per_100000"
                        self.fact(unit, "deaths", [year], dims, row[col], f"{name}/{tname}: {row[dim]} {unit}",
                                  rate=row.get(rate_col) if dims else None,
                                  population=float(row[pop_col]) if dims and has_pop(row, pop_col) else None)
        t = tables.get("safeguarding")
        for row in (t.to_dict("records") if t is not None else []):
            dims = {} if row["field"] == "total" else {row["field"]: [row["value"]]}
            for col, unit in (("deaths", focus), ("england_deaths", NATION)):
                if col in row:
                    self.fact(unit, "deaths", [year], dims, row[col], f"{name}/safeguarding: {row['label']} {unit}")
        # category x age band
        t = tables.get("category_by_age_band")
        for row in (t.to_dict("records") if t is not None else []):
            cat = {} if row["category"] == "total" else {"category": _members(row["category"], row.get("includes"))}
            for col in t.columns:
                if col.startswith("age_") or col == "all_ages":
                    age = {} if col == "all_ages" else {"age_band": age_column_members(col)}
                    self.fact(focus, "deaths", [year], {**cat, **age}, row[col],
                              f"{name}/category_by_age_band: {row['category']} x {col} {focus}")
        # expected / unexpected by age band
        t = tables.get("deaths_by_expectedness")
        for row in (t.to_dict("records") if t is not None else []):
            age = {} if row["age_band"] == "total" else {"age_band": _members(row["age_band"])}
            for col in ("expected", "unexpected", "not_recorded", "deaths", "england_unexpected", "england_deaths"):
                if col not in row:
                    continue
                unit = NATION if col.startswith("england_") else focus
                lev = col.replace("england_", "")
                exp = {} if lev == "deaths" else {"death_expected": [lev]}
                self.fact(unit, "deaths", [year], {**age, **exp}, row[col],
                          f"{name}/deaths_by_expectedness: {row['age_band']} x {col} {unit}")
        # Joint Agency Response after unexpected deaths
        t = tables.get("joint_agency_response")
        for row in (t.to_dict("records") if t is not None else []):
            by = {} if row["breakdown"] == "total" else {row["breakdown"]: _members(row["group"], row.get("includes"))}
            for col in ("unexpected_deaths", "jar_yes", "jar_no", "jar_not_recorded"):
                jar = {} if col == "unexpected_deaths" else {"jar": [col[len("jar_"):]]}
                self.fact(focus, "deaths", [year], {"death_expected": ["unexpected"], **by, **jar}, row[col],
                          f"{name}/joint_agency_response: {row['group']} x {col} {focus}")
        # infant deaths: by age, gestation and birth weight
        t = tables.get("infant_mortality")
        for row in (t.to_dict("records") if t is not None else []):
            age = {"age_band": list(INFANT) if row["age_band"] == "infant" else [row["age_band"]]}
            for col, unit in (("deaths", focus), ("england_deaths", NATION)):
                if col in row:
                    self.fact(unit, "deaths", [year], age, row[col], f"{name}/infant_mortality: {row['age_band']} {unit}")
        for tname, dim in (("deaths_by_gestation", "gestation_band"), ("deaths_by_birth_weight", "birth_weight_band")):
            t = tables.get(tname)
            for row in (t.to_dict("records") if t is not None else []):
                dims = {"age_band": list(INFANT)}
                if row[dim] != "total":
                    dims[dim] = _members(row[dim])
                for col, unit in (("deaths", focus), ("england_deaths", NATION)):
                    if col in row:
                        self.fact(unit, "deaths", [year], dims, row[col], f"{name}/{tname}: {row[dim]} {unit}")
        # completed reviews with modifiable factors (the review cohort: reviews completed in the period)
        for tname, dim in (("modifiable_by_category", "category"), ("modifiable_by_age_band", "age_band"),
                           ("modifiable_by_deprivation", "imd_quintile")):
            t = tables.get(tname)
            for row in (t.to_dict("records") if t is not None else []):
                dims = {} if row[dim] == "total" else {dim: _members(row[dim], row.get("includes"))}
                for col, measure in REVIEW_MEASURES.items():
                    if col in row:
                        self.fact(focus, measure, [year], dims, row[col], f"{name}/{tname}: {row[dim]} x {col} {focus}")
        t = tables.get("modifiable_by_domain")
        for row in (t.to_dict("records") if t is not None else []):
            self.fact(focus, "rc_judged", [year], {}, row["judged"], f"{name}/modifiable_by_domain: judged {focus}")
            self.fact(focus, "rc_" + row["domain"], [year], {}, row["with_contributory_factor"],
                      f"{name}/modifiable_by_domain: {row['domain']} {focus}", bound="le_judged")
        # learning themes: multi-valued, so reviews without a theme = reviews - reviews with it
        t = tables.get("learning_themes")
        for row in (t.to_dict("records") if t is not None else []):
            self.fact(focus, "rc_reviews", [year], {}, row["reviews"], f"{name}/learning_themes: reviews {focus}")
            theme = f"theme_{row['theme']}"
            self.fact(focus, "rc_reviews", [year], {theme: ["yes"]}, row["with_theme"],
                      f"{name}/learning_themes: {row['theme']} {focus}")
            self.fact(focus, "rc_reviews", [year], {theme: ["no"]}, "", f"{name}/learning_themes: without {row['theme']} {focus}",
                      kind="complement")
        # time to review (completed in the period) and the open backlog (deaths of the trend years)
        t = tables.get("time_to_review")
        for row in (t.to_dict("records") if t is not None else []):
            if row["part"] == "completed":
                dims = {} if row["group"] == "total" else {"review_time": [row["group"]]}
                self.fact(focus, "rc_reviews", [year], dims, row["reviews"], f"{name}/time_to_review: {row['group']} {focus}")
            else:
                dims = {} if row["group"] == "total" else {"backlog_age": [row["group"]]}
                self.fact(focus, "pending", trend_years or [year], dims, row["reviews"],
                          f"{name}/time_to_review: open {row['group']} {focus}")

    # -- the system --------------------------------------------------------------------------
    def _build(self):
        """Atoms, unknowns and constraint rows from the facts."""
        breakdown_units = sorted({f["unit"] for f in self.facts if not (f["measure"] == "deaths" and not f["dims"])})
        sig = defaultdict(list)
        for i, u in enumerate(breakdown_units):
            for la in self.unit_las[u]:
                sig[la].append(i)
        atoms = defaultdict(set)
        for la, s in sig.items():
            atoms[tuple(s)].add(la)
        atom_list = [frozenset(v) for _, v in sorted(atoms.items())]
        atom_of_unit = {u: [a for a, las in enumerate(atom_list) if las <= self.unit_las[u]] for u in breakdown_units}
        self.atoms = atom_list
        index, rows = {}, []

        def var(key):
            if key not in index:
                index[key] = len(index)
            return index[key]

        def cell(measure, atom, year, dims):   # dims: tuple of (field, level), sorted
            if measure == "deaths" and not dims:
                return {var(("L", la, year)): 1.0 for la in atom_list[atom]}
            return {var(("A", measure, atom, year, dims)): 1.0}

        def add(into, coef, sign=1.0):
            for j, v in coef.items():
                into[j] = into.get(j, 0.0) + sign * v

        def expr(f):
            coef = {}
            if f["measure"] == "deaths" and not f["dims"]:
                for la in self.unit_las[f["unit"]]:
                    for y in f["years"]:
                        add(coef, {var(("L", la, y)): 1.0})
                return coef
            names = [d for d, _ in f["dims"]]
            for combo in itertools.product(*[levels for _, levels in f["dims"]]):
                dims = tuple(zip(names, combo))
                for a in atom_of_unit[f["unit"]]:
                    for y in f["years"]:
                        add(coef, cell(f["measure"], a, y, dims))
            return coef

        targets = {}
        families = defaultdict(set)      # (measure, year) -> set of field-name tuples
        for f in self.facts:
            names = tuple(d for d, _ in f["dims"])
            if not (f["measure"] == "deaths" and not names):
                for y in f["years"]:
                    families[(f["measure"], y)].add(names)
            coef = expr(f)
            key = frozenset(coef.items())
            if f["kind"] == "complement":
                targets.setdefault(key, (f["what"], "unpublished", coef))
                continue
            text = f["text"]
            if text == HIDDEN:
                rows.append((coef, 1.0, np.inf))
                targets.setdefault(key, (f["what"], "suppressed", coef))
                if f["rate"] not in (None, "", HIDDEN, "nan", "[x]") and f["population"]:
                    r, half = float(f["rate"]), 0.5 * 10.0 ** -f["decimals"]
                    rows.append((coef, (r - half) * f["population"] / f["multiplier"],
                                 (r + half) * f["population"] / f["multiplier"]))
            elif text not in ("", "nan", "[x]"):
                rows.append((coef, float(text), float(text)))
            if f["bound"] == "le_judged":
                for a in atom_of_unit[f["unit"]]:
                    for y in f["years"]:
                        c = dict(cell(f["measure"], a, y, ()))
                        add(c, cell("rc_judged", a, y, ()), -1.0)
                        rows.append((c, -np.inf, 0.0))
        # the lattice: every family down to the total, tied by its margins over the full code lists
        closed = defaultdict(set)
        for (m, y), fams in families.items():
            for names in fams:
                for k in range(len(names) + 1):
                    closed[(m, y)].update(itertools.combinations(names, k))
        for (m, y), fams in closed.items():
            for names in fams:
                for i, d in enumerate(names):
                    rest = names[:i] + names[i + 1:]
                    for combo in itertools.product(*[UNIVERSE[r] for r in rest]):
                        base = tuple(zip(rest, combo))
                        for a in range(len(atom_list)):
                            coef = dict(cell(m, a, y, base))
                            for v in UNIVERSE[d]:
                                add(coef, cell(m, a, y, tuple(sorted(base + ((d, v),)))), -1.0)
                            rows.append((coef, 0.0, 0.0))
        for total, parts in RELATIONS:
            for y in sorted({y for (m, y) in closed if m == total}):
                fams = closed.get((total, y), set())
                for p in parts:
                    fams = fams & closed.get((p, y), set())
                for names in fams:
                    for combo in itertools.product(*[UNIVERSE[n] for n in names]):
                        dims = tuple(zip(names, combo))
                        for a in range(len(atom_list)):
                            coef = dict(cell(total, a, y, dims))
                            for p in parts:
                                add(coef, cell(p, a, y, dims), -1.0)
                            rows.append((coef, 0.0, 0.0))
        return index, rows, targets

    # -- the attack --------------------------------------------------------------------------
    def attack(self, truth=None, threshold=5, time_limit=20.0):
        """One row per target: ``what``, ``kind``, ``lower``, ``upper`` (integer optimum), ``truth``, ``exact``, ``small``.

        ``kind``: ``suppressed`` (a ``[c]`` cell: unsafe when pinned exactly, or when a true 1-4 is
        proven in 1-4) or ``unpublished`` (implied, never shown: unsafe only when a true 1-4 is
        pinned or proven in 1-4). ``truth``: function of (unknown key, atoms) -> true value, to
        count against (and check that the true values satisfy every published equation).
        """
        index, rows, targets = self._build()
        n = len(index)
        data, ri, ci, lo, hi = [], [], [], [], []
        for r, (coef, a, b) in enumerate(rows):
            for j, v in coef.items():
                ri.append(r)
                ci.append(j)
                data.append(v)
            lo.append(a)
            hi.append(b)
        a_mat = sparse.csr_matrix((data, (ri, ci)), shape=(len(rows), n))
        # integer coefficients, integer unknowns: a rate's rounding interval holds the integers inside it
        lo, hi = np.ceil(np.array(lo) - 1e-9), np.floor(np.array(hi) + 1e-9)
        cons = LinearConstraint(a_mat, lo, hi)
        keys = list(index)
        x_true = None
        if truth is not None:
            x_true = np.array([truth(k, self.atoms) for k in keys], dtype=float)
            ax = a_mat @ np.nan_to_num(x_true)
            unknown = (abs(a_mat) @ np.isnan(x_true).astype(float)) > 0   # rows with an unknown true value
            bad = np.flatnonzero(~unknown & ((ax < lo - 1e-6) | (ax > hi + 1e-6)))
            assert len(bad) == 0, (f"the true values break {len(bad)} published constraint(s), e.g. "
                                   + "; ".join(str(({keys[j] for j in rows[b][0]}, rows[b][1:], ax[b]))[:400]
                                               for b in bad[:3]))
        lp = _LinearBounds(a_mat, lo, hi)
        ip = _LinearBounds(a_mat, lo, hi, integer=True, time_limit=time_limit)   # kept loaded, like lp
        out = []
        for what, kind, coef in sorted(targets.values(), key=lambda t: t[0]):
            c = np.zeros(n)
            for j, v in coef.items():
                c[j] = v
            # over the cell's own unknowns only: an unknown without a true value makes only its cells NaN
            value = float(sum(v * x_true[j] for j, v in coef.items())) if x_true is not None else np.nan
            small_true = 1 <= value < threshold
            # LP relaxation first: valid bounds, and the integer optimum where the LP vertex is integral
            (lower, lo_proven), (upper, hi_proven) = lp.relaxed(c), lp.relaxed(-c)
            upper = -upper
            for side in _sides_needed(kind, value, small_true, lower, lo_proven, upper, hi_proven, threshold):
                sense = 1.0 if side == "lower" else -1.0
                found = ip.optimum(sense * c)
                if found is None:
                    res = milp(sense * c, constraints=cons, integrality=np.ones(n), bounds=Bounds(0, np.inf),
                               options={"time_limit": time_limit})
                    if res.status == 0:
                        found = res.fun
                    elif res.status == 3:
                        found = -np.inf
                    else:
                        raise AssertionError(f"attacker: {what}: milp status {res.status} ({res.message})")
                if side == "lower":
                    lower = found
                else:
                    upper = -found
            lower = round(lower) if np.isfinite(lower) else lower
            upper = round(upper) if np.isfinite(upper) else upper
            exact = lower == upper and (kind == "suppressed" or small_true)
            out.append({"what": what, "kind": kind, "lower": lower, "upper": upper, "truth": value, "exact": exact,
                        "small": bool(small_true and 1 <= lower and upper < threshold)})
        return pd.DataFrame(out, columns=["what", "kind", "lower", "upper", "truth", "exact", "small"])


def _sides_needed(kind, truth, small_true, lower, lo_proven, upper, hi_proven, threshold):
    """Which integer optima ("lower", "upper") the verdict on a target still needs.

    ``lower``/``upper`` are valid integer bounds from the LP relaxation, ``*_proven`` when they are
    the integer optima. A target is *exact* when its integer minimum equals its maximum (they then
    equal the true value) and *small* when a true 1-4 is proven to lie in 1-4. Both are settled
    without the integer programme when the bounds already decide them: equal bounds are exact; a
    proven optimum other than the true value is a second integer solution, so not exact; bounds
    inside 1-4 are small, a proven optimum outside is not. Without a true value, both are solved.
    """
    if truth != truth:
        return [s for s, p in (("lower", lo_proven), ("upper", hi_proven)) if not p]
    need = set()
    exact_matters = kind == "suppressed" or small_true
    if exact_matters and lower != upper and not ((lo_proven and lower < truth) or (hi_proven and upper > truth)):
        need.update(s for s, p in (("lower", lo_proven), ("upper", hi_proven)) if not p)
    if small_true:
        if not lo_proven and lower < 1:
            need.add("lower")
        if not hi_proven and upper >= threshold:
            need.add("upper")
    return sorted(need)


class _LinearBounds:
    """The LP relaxation (or, with ``integer``, the integer programme) kept loaded in HiGHS across objectives.

    :meth:`relaxed` gives the LP bound (the integer optimum when the optimal vertex is integral),
    :meth:`optimum` the integer optimum (``integer=True``).
    """

    def __init__(self, a_mat, lo, hi, *, integer=False, time_limit=20.0):
        import highspy

        csc = a_mat.tocsc()
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = csc.shape[1], csc.shape[0]
        lp.col_cost_ = np.zeros(csc.shape[1])
        lp.col_lower_ = np.zeros(csc.shape[1])
        lp.col_upper_ = np.full(csc.shape[1], np.inf)
        lp.row_lower_, lp.row_upper_ = lo, hi
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = csc.indptr, csc.indices, csc.data
        if integer:
            lp.integrality_ = [highspy.HighsVarType.kInteger] * csc.shape[1]
        self.h = highspy.Highs()
        self.h.setOptionValue("output_flag", False)
        self.time_limit = float(time_limit)   # per integer programme (HiGHS's own clock adds up over runs)
        self.h.passModel(lp)
        self.n = csc.shape[1]
        self.idx = np.arange(self.n, dtype=np.int32)

    def optimum(self, c):
        """The integer programme's optimum (``-inf`` if unbounded), or None when HiGHS proves nothing."""
        import highspy

        self.h.changeColsCost(self.n, self.idx, np.asarray(c, dtype=float))
        self.h.setOptionValue("time_limit", self.h.getRunTime() + self.time_limit)
        self.h.run()
        status = self.h.getModelStatus()
        if status == highspy.HighsModelStatus.kUnbounded:
            return -np.inf
        if status != highspy.HighsModelStatus.kOptimal:
            return None
        return float(self.h.getInfo().objective_function_value)

    def relaxed(self, c):
        """``(bound, proven)``: the LP minimum rounded up to an integer (a valid bound of the integer
        minimum), and whether it *is* the integer minimum (the optimal vertex is integral)."""
        import highspy

        self.h.changeColsCost(self.n, self.idx, np.asarray(c, dtype=float))
        self.h.run()
        status = self.h.getModelStatus()
        if status == highspy.HighsModelStatus.kUnbounded:
            return -np.inf, True
        if status != highspy.HighsModelStatus.kOptimal:
            raise AssertionError(f"attacker: LP relaxation status {status}")
        x = np.asarray(self.h.getSolution().col_value)
        if np.abs(x - np.round(x)).max(initial=0.0) <= 1e-7:
            return float(np.round(c @ np.round(x))), True
        return float(np.ceil(self.h.getInfo().objective_function_value - 1e-6)), False


def _reporting_year(dates):
    d = pd.to_datetime(dates)
    return pd.Series(np.where(d.dt.month >= 4, d.dt.year, d.dt.year - 1), index=d.index).where(d.notna())


def truth_from_records(records):
    """True value of every unknown, counted directly from the records (reporting years April-March).

    Returns ``truth(key, atoms)``; the fields are derived from the records as the public
    documentation defines them (quintile = ceil(decile / 2); blank optional fields are
    ``not_recorded``; months = days / (365.25 / 12); the backlog is measured at the latest date in
    the records).
    """
    month = 365.25 / 12
    dod = pd.to_datetime(records["date_of_death"])
    done = pd.to_datetime(records["review_completed"], errors="coerce")
    reviewed = records["reviewed"].astype(bool).to_numpy()
    rec = pd.DataFrame({"la": records["la_code"].astype(str).to_numpy(), "year": _reporting_year(dod).to_numpy()})
    rec["ryear"] = _reporting_year(done).where(pd.Series(reviewed, index=done.index)).to_numpy()
    for dim in ("sex", "age_band", "category"):
        rec[dim] = records[dim].astype(str).to_numpy()
    rec["ethnicity"] = records["ethnicity"].astype("string").fillna("unknown").to_numpy()
    dec = pd.to_numeric(records["imd_decile"], errors="coerce")
    rec["imd_quintile"] = np.where(dec.notna(), np.ceil(dec / 2).astype("Int64").astype(str), "unknown")
    for dim in ("death_expected", "jar", "place_of_death", "gestation_band", "birth_weight_band",
                "known_to_social_care", "cspr", "inquest"):
        rec[dim] = records[dim].astype("string").fillna("not_recorded").replace("", "not_recorded").to_numpy()
    themes = [set(filter(None, str(t).split(";"))) for t in records["factor_themes"].astype("string").fillna("")]
    for k in THEMES:
        rec[f"theme_{k}"] = ["yes" if k in s else "no" for s in themes]
    months = ((done - dod).dt.days / month).to_numpy(float)
    rec["review_time"] = np.select([months <= 6, months <= 12, months > 12], list(UNIVERSE["review_time"]), "n/a")
    ref = max(dod.max(), done.max())
    open_m = ((ref - dod).dt.days / month).to_numpy(float)
    rec["backlog_age"] = np.select([open_m <= 6, open_m <= 12, open_m <= 24], list(UNIVERSE["backlog_age"][:3]),
                                   UNIVERSE["backlog_age"][3])
    mod = records["modifiable"].astype("string").fillna("").to_numpy()
    judged = np.isin(mod, ["yes", "no"])
    flags = {"deaths": np.ones(len(rec), bool), "reviewed": reviewed, "pending": ~reviewed,
             "rc_reviews": np.ones(len(rec), bool), "rc_judged": judged, "rc_insufficient": ~judged,
             "rc_modifiable": mod == "yes", "rc_not_modifiable": mod == "no"}
    for d in DOMAINS:
        flags["rc_" + d] = judged & np.isin(records[d].astype("string").fillna("").to_numpy(),
                                            ["may_have_contributed", "sufficient"])
    cache = {}

    def table(measure, names):
        if (measure, names) not in cache:
            ycol = "ryear" if measure.startswith("rc_") else "year"
            sel = rec[flags[measure] & rec[ycol].notna().to_numpy()]
            g = sel.groupby(["la", ycol, *names]).size()
            cache[(measure, names)] = {(k[0], int(k[1]), *k[2:]): int(v) for k, v in g.items()}
        return cache[(measure, names)]

    def truth(key, atoms):
        if key[0] == "L":
            _, la, y = key
            return table("deaths", ()).get((la, y), 0)
        _, measure, atom, y, dims = key
        names = tuple(d for d, _ in dims)
        t = table(measure, names)
        return sum(t.get((la, y, *[v for _, v in dims]), 0) for la in atoms[atom])

    return truth


def public_geography(designs=()):
    """unit code -> LA codes: LAs, regions, England and the footprints of the given designs."""
    import cdr

    areas = cdr.data.england_areas(2023)
    units = {la: {la} for la in areas["la_code"]}
    for r, g in areas.groupby("region_code"):
        units[r] = set(g["la_code"])
    units[NATION] = set(areas["la_code"])
    for d in designs:
        labels = pd.Series(cdr.footprints.load_design(d).labels if isinstance(d, str) else d).dropna()
        for la, fid in labels.items():
            units.setdefault(str(fid), set()).add(la)
    return units


__all__ = ["Attacker", "truth_from_records", "public_geography", "age_column_members", "UNIVERSE"]
