"""Which local authorities the records cover (a partnership holds only its own records)."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import pandas as pd

from cdr.errors import CdrError

__all__ = ["Coverage", "resolve_coverage", "NEGLIGIBLE_SHARE"]

#: Under ``"auto"``, LAs with no record at all holding at most this share of England's children
#: (e.g. the Isles of Scilly, the City of London, Rutland: about 0.08 % together) do not make a
#: national extract partial: they can have no child deaths in several years.
NEGLIGIBLE_SHARE = 0.005


@dataclass
class Coverage:
    """The covered LAs. ``partial`` is False when the records cover England."""

    las: frozenset
    partial: bool
    rule: str
    without_records: list = field(default_factory=list)   # covered LAs with no record (focus LAs, declared LAs)
    outside: list = field(default_factory=list)            # LAs with records outside a declared coverage

    def covers(self, las) -> bool:
        return not self.partial or set(las) <= self.las

    def add_focus(self, las) -> None:
        """The reported footprint's LAs count as covered (LAs with no record are listed, not dropped)."""
        if self.partial:
            extra = sorted(set(las) - self.las)
            self.without_records = sorted(set(self.without_records) | set(extra))
            self.las = self.las | frozenset(las)

    def describe(self, la_table: pd.DataFrame, limit: int = 6) -> str:
        if not self.partial:
            return "all of England"
        if "region_code" in la_table:   # a whole region (and nothing else): say so
            for code, group in la_table.groupby("region_code"):
                if set(group["la_code"]) == set(self.las):
                    return f"the LAs of {group['region_name'].iloc[0]}"
        names = la_table.set_index("la_code")["la_name"]
        shown = sorted(f"{names.get(c, c)}" for c in self.las)[:limit]
        more = len(self.las) - len(shown)
        return ", ".join(shown) + (f" and {more} more" if more > 0 else "")

    def to_dict(self, la_table: pd.DataFrame) -> dict:
        return {"partial": self.partial, "rule": self.rule, "n_las": len(self.las),
                "las": sorted(self.las) if self.partial else "all",
                "description": self.describe(la_table, limit=20),
                "covered_las_without_records": list(self.without_records),
                "las_with_records_outside_coverage": list(self.outside)}


def resolve_coverage(coverage, la_codes: pd.Series, areas: pd.DataFrame) -> Coverage:
    """Coverage from ``"auto"``, ``"all"`` or a list of LA codes or names.

    ``la_codes``: the records' LA codes; ``areas``: ``la_code, la_name, child_population``.
    """
    codes = set(areas["la_code"])
    present = set(la_codes.dropna().astype(str)) & codes
    if coverage is None or (isinstance(coverage, str) and coverage.strip().lower() == "auto"):
        missing = areas[~areas["la_code"].isin(present)]
        share = float(missing["child_population"].sum()) / float(areas["child_population"].sum())
        if share <= NEGLIGIBLE_SHARE:
            return Coverage(frozenset(codes), False,
                            f"auto: records for {len(present)} of {len(codes)} LAs; the {len(missing)} without any "
                            f"record hold {100 * share:.2f}% of England's children (at most "
                            f"{100 * NEGLIGIBLE_SHARE:.1f}%), so the records are taken to cover England",
                            without_records=sorted(missing["la_code"]))
        return Coverage(frozenset(present), True,
                        f"auto: records for {len(present)} of {len(codes)} LAs; the LAs without any record hold "
                        f"{100 * share:.1f}% of England's children, so the records are partial")
    if isinstance(coverage, str) and coverage.strip().lower() == "all":
        return Coverage(frozenset(codes), False, "all: declared to cover England",
                        without_records=sorted(codes - present))
    items = [c for c in (coverage.split(",") if isinstance(coverage, str) else list(coverage))]
    by_name = {str(n).strip().lower(): c for c, n in zip(areas["la_code"], areas["la_name"])}
    out, bad = set(), []
    for item in items:
        key = str(item).strip()
        if key in codes:
            out.add(key)
        elif key.lower() in by_name:
            out.add(by_name[key.lower()])
        elif key:
            bad.append(key)
    if bad:
        hints = []
        for b in bad:
            close = difflib.get_close_matches(b.lower(), list(by_name), n=1, cutoff=0.6)
            hints.append(f"{b!r}" + (f" (did you mean {areas.set_index('la_code').at[by_name[close[0]], 'la_name']!r}?)"
                                     if close else ""))
        raise CdrError(f"coverage: unknown local authority {', '.join(hints)}; give upper-tier LA codes (e.g. "
                       "E08000036) or names (e.g. Wakefield), separated by commas (--coverage LA,LA,...).")
    if not out:
        raise CdrError("coverage: no local authority given; use 'auto', 'all' or a list of LA codes or names.")
    if out == codes:
        return Coverage(frozenset(codes), False, "declared: every LA", without_records=sorted(codes - present))
    return Coverage(frozenset(out), True, f"declared: {len(out)} LA(s)", without_records=sorted(out - present),
                    outside=sorted(present - out))
