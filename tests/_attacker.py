"""An independent differencing attacker for chains of published report bundles (test helper).

It reads only what is published: the ``tables/*.csv`` of every bundle, plus public geography (which
LAs make up a region, England, and the footprints of a published design). It does NOT import
``cdr.disclosure`` or ``cdr.report``: it is a second implementation of the attack, written from
the tables' public meaning, not from the library's cell ids or equations.

Unknowns are non-negative integers ``x[measure, la_code, year, dim, level]`` (``dim``/``level``
empty for totals). Every published count of a unit is the sum of its LAs' unknowns (over the
years of its period, and over the members of a merged level such as ``neonatal+postneonatal``);
per LA, ``deaths = reviewed + pending`` and every one-way breakdown adds up to the LA's deaths.
A suppressed cell (``[c]``) is >= 1 (zeros are shown); a published rate with its population
bounds its count by the rounding interval. For every suppressed cell the attacker solves two
integer programmes (scipy.optimize.milp, HiGHS) for its minimum and maximum.
"""
from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

AREA_MEASURES = {"deaths": "deaths", "reviewed": "reviewed", "pending": "pending",
                 "reviews_completed_in_period": "rc_reviews"}
ONE_WAY = ("sex", "age_band", "category", "imd_quintile", "ethnicity")
NATION = "E92000001"
HIDDEN = "[c]"


def _year(label: str) -> int:
    return int(str(label)[:4])


def _years(label: str) -> list[int]:
    label = str(label)
    if " to " in label:
        a, b = label.split(" to ")
        return list(range(_year(a), _year(b) + 1))
    return [_year(label)]


class Attacker:
    """Collects published cells of many bundles as linear constraints and attacks the hidden ones."""

    def __init__(self, unit_las: dict):
        self.unit_las = {k: frozenset(v) for k, v in unit_las.items()}
        self.index: dict = {}
        self.rows: list = []          # (coef dict, lo, hi)
        self.targets: dict = {}       # frozenset(coef items) -> description
        self.partitions: set = set()

    # -- unknowns and expressions ------------------------------------------------------------
    def var(self, key) -> int:
        if key not in self.index:
            self.index[key] = len(self.index)
        return self.index[key]

    def expr(self, measure, unit, years, dim="", level="", scope=""):
        las = self.unit_las[str(unit)]
        members = [level] if dim == "" else self._members(dim, level, scope)
        coef = defaultdict(float)
        for la in las:
            for y in years:
                for m in members:
                    coef[self.var((measure, la, y, dim, m))] += 1.0
        return dict(coef)

    @staticmethod
    def _members(dim, level, scope):
        level = str(level)
        if level.startswith("other"):
            return [f"{level}@{scope}"]      # a bundle's own "other" group: its members are not published
        return level.split("+")

    def equal(self, coef, value):
        self.rows.append((coef, float(value), float(value)))

    def between(self, coef, lo, hi):
        self.rows.append((coef, float(lo), float(hi)))

    def cell(self, coef, text, what, *, rate=None, population=None, decimals=1, multiplier=100_000):
        """A published count (``text``): known, or hidden (>= 1, a target), with its rate if shown."""
        if str(text) == HIDDEN:
            self.between(coef, 1, np.inf)
            self.targets.setdefault(frozenset(coef.items()), what)
            if rate is not None and str(rate) not in (HIDDEN, "", "nan") and population:
                r, half = float(rate), 0.5 * 10.0 ** -decimals
                self.between(coef, (r - half) * population / multiplier, (r + half) * population / multiplier)
        elif str(text) not in ("", "nan", "[x]"):
            self.equal(coef, float(text))

    def partition(self, measure, las, year, dim, levels, scope):
        for la in las:
            key = (measure, la, year, dim, tuple(levels), scope if any(str(v).startswith("other") for v in levels) else "")
            if key in self.partitions:
                continue
            self.partitions.add(key)
            coef = defaultdict(float)
            for lv in levels:
                for m in self._members(dim, lv, scope):
                    coef[self.var((measure, la, year, dim, m))] += 1.0
            coef[self.var((measure, la, year, "", ""))] -= 1.0
            self.equal(dict(coef), 0)

    # -- reading bundles ---------------------------------------------------------------------
    def read_bundle(self, folder, year_label: str, name: str):
        """Add every published cell of the bundle in ``folder`` (tables/*.csv only)."""
        tables = {p.stem: pd.read_csv(p, dtype=str, keep_default_na=False) for p in sorted((folder / "tables").glob("*.csv"))}
        year = _year(year_label)
        focus = tables["headline"]["area_code"].iloc[0]
        for tname in ("headline", "deaths_by_area", "deaths_by_local_authority", "funnel"):
            t = tables.get(tname)
            if t is None:
                continue
            for row in t.to_dict("records"):
                for col, measure in AREA_MEASURES.items():
                    if col in row:
                        pop = float(row["population"]) if row.get("population") not in (None, "", HIDDEN) else None
                        self.cell(self.expr(measure, row["area_code"], [year]), row[col],
                                  f"{name}/{tname}: {measure} {row['area_code']}",
                                  rate=row.get("rate_per_100000") if measure == "deaths" else None, population=pop)
        t = tables.get("trend")
        if t is not None:
            for row in t.to_dict("records"):
                years = _years(row["period"])
                for col, unit in (("deaths", focus), ("england_deaths", NATION)):
                    if col in row:
                        pop_col = "population" if col == "deaths" else "england_population"
                        rate_col = "rate_per_100000" if col == "deaths" else "england_rate_per_100000"
                        pop = float(row[pop_col]) if row.get(pop_col) not in (None, "", HIDDEN) else None
                        self.cell(self.expr("deaths", unit, years), row[col], f"{name}/trend: {unit} {row['period']}",
                                  rate=row.get(rate_col), population=pop)
        for dim in ONE_WAY:
            t = tables.get(f"deaths_by_{dim.replace('imd_quintile', 'deprivation').replace('age_band', 'age_band')}")
            if t is None or dim not in t.columns:
                continue
            levels = list(dict.fromkeys(v for v in t[dim] if v != "total"))
            for col, unit in (("deaths", focus), ("england_deaths", NATION)):
                if col not in t.columns:
                    continue
                self.partition("deaths", self.unit_las[unit], year, dim, levels, name)
                for row in t.to_dict("records"):
                    if row[dim] == "total":
                        self.cell(self.expr("deaths", unit, [year]), row[col], f"{name}/{dim}: total {unit}")
                    else:
                        self.cell(self.expr("deaths", unit, [year], dim, row[dim], name), row[col],
                                  f"{name}/{dim}: {row[dim]} {unit}")
        # per LA: deaths = reviewed + pending (the definition printed with the headline table)
        for la in self.unit_las[NATION]:
            k = ("deaths", la, year, "", "")
            if k in self.index:
                self.equal({self.var(k): 1.0, self.var(("reviewed", la, year, "", "")): -1.0,
                            self.var(("pending", la, year, "", "")): -1.0}, 0)

    # -- the attack --------------------------------------------------------------------------
    def attack(self, truth=None, threshold=5, time_limit=20.0):
        """One row per hidden cell: ``what``, ``lower``, ``upper`` (integer optimum), ``truth``, ``exact``, ``small``.

        ``truth``: function of the unknowns' keys -> true value, to count against (and check that
        the true values satisfy every published equation).
        """
        n = len(self.index)
        data, ri, ci, lo, hi = [], [], [], [], []
        for r, (coef, a, b) in enumerate(self.rows):
            for j, v in coef.items():
                ri.append(r)
                ci.append(j)
                data.append(v)
            lo.append(a)
            hi.append(b)
        a_mat = sparse.csr_matrix((data, (ri, ci)), shape=(len(self.rows), n))
        lo, hi = np.array(lo), np.array(hi)
        cons = LinearConstraint(a_mat, lo, hi)
        keys = list(self.index)
        x_true = None
        if truth is not None:
            x_true = np.array([truth(k) for k in keys], dtype=float)
            ax = a_mat @ x_true
            bad = np.flatnonzero((ax < lo - 1e-6) | (ax > hi + 1e-6))
            assert len(bad) == 0, (f"the true values break {len(bad)} published constraint(s), e.g. "
                                   + "; ".join(str(({keys[j] for j in self.rows[b][0]}, self.rows[b][1:], ax[b]))[:300]
                                               for b in bad[:3]))
        out = []
        for items, what in sorted(self.targets.items(), key=lambda kv: kv[1]):
            c = np.zeros(n)
            for j, v in items:
                c[j] = v
            bounds = []
            for sense in (1.0, -1.0):
                res = milp(sense * c, constraints=cons, integrality=np.ones(n), bounds=Bounds(0, np.inf),
                           options={"time_limit": time_limit})
                if res.status == 0:
                    bounds.append(sense * res.fun)
                elif res.status == 3 or (res.status == 1 and res.x is None):  # unbounded / no bound proven
                    bounds.append(-np.inf if sense > 0 else np.inf)
                else:
                    raise AssertionError(f"attacker: {what}: milp status {res.status} ({res.message})")
            value = float(c @ x_true) if x_true is not None else np.nan
            lower, upper = round(bounds[0]), bounds[1] if not np.isfinite(bounds[1]) else round(bounds[1])
            out.append({"what": what, "lower": lower, "upper": upper, "truth": value,
                        "exact": lower == upper,
                        "small": bool(1 <= value < threshold and 1 <= lower and upper < threshold)})
        return pd.DataFrame(out, columns=["what", "lower", "upper", "truth", "exact", "small"])


def _la_years(records):
    dod = pd.to_datetime(records["date_of_death"])
    return np.where(dod.dt.month >= 4, dod.dt.year, dod.dt.year - 1)


def truth_from_records(records):
    """True value of every unknown, counted directly from the records (reporting years)."""
    rec = pd.DataFrame({"la": records["la_code"].to_numpy(), "year": _la_years(records)})
    rec["reviewed"] = records["reviewed"].astype(bool).to_numpy()
    for dim in ("sex", "age_band", "category", "ethnicity"):
        rec[dim] = records[dim].astype(str).fillna("unknown").to_numpy() if dim in records else "unknown"
    dec = pd.to_numeric(records["imd_decile"], errors="coerce")
    rec["imd_quintile"] = np.where(dec.notna(), ((dec + 1) // 2).astype("Int64").astype(str), "unknown")
    counts = {}
    for (la, y), n in rec.groupby(["la", "year"]).size().items():
        counts[("deaths", la, int(y), "", "")] = n
    for (la, y), n in rec[rec["reviewed"]].groupby(["la", "year"]).size().items():
        counts[("reviewed", la, int(y), "", "")] = n
    for (la, y), n in rec[~rec["reviewed"]].groupby(["la", "year"]).size().items():
        counts[("pending", la, int(y), "", "")] = n
    done = pd.to_datetime(records["review_completed"], errors="coerce")
    ry = pd.Series(np.where(done.dt.month >= 4, done.dt.year, done.dt.year - 1), index=done.index)[done.notna()]
    for (la, y), n in pd.DataFrame({"la": records.loc[ry.index, "la_code"], "y": ry}).groupby(["la", "y"]).size().items():
        counts[("rc_reviews", la, int(y), "", "")] = n
    for dim in ONE_WAY:
        for (la, y, v), n in rec.groupby(["la", "year", dim]).size().items():
            counts[("deaths", la, int(y), dim, str(v))] = n

    def truth(key):
        measure, la, y, dim, level = key
        if "@" in str(level):
            return np.nan
        return counts.get(key, 0)

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


__all__ = ["Attacker", "truth_from_records", "public_geography", "re"]
