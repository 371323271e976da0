"""Disclosure control for child death statistics: primary and secondary suppression with an
independent audit that treats every table, year, margin, earlier release and published rate of a
bundle as one system of constraints.

Typical use (what ``cdr report`` does)::

    bundle = Bundle.from_tables(tables, dims=dims, hierarchy=hierarchy, previous=last_release)
    bundle = bundle.add_rates("by_area", populations, multiplier=100_000, decimals=1)
    result = protect(bundle, threshold=5)         # raises DisclosureError if the audit fails
    result.tables(); result.rates(); result.certificate()

Across releases: every bundle carries a :class:`Ledger` (``ledger.json``) of all cells published by
it and its predecessors, as equations over unknowns shared by every release (``docs/concepts/disclosure.md``).

Methods, rules and sources: ``docs/methods/disclosure.md``.
"""
from cdr.disclosure._audit import audit, certificate, explain
from cdr.disclosure._bundle import Bundle, cell_ids, merge_levels, table_equations
from cdr.disclosure._ledger import LEDGER_FORMAT, Ledger, read_ledgers
from cdr.disclosure._primary import DEFAULT_THRESHOLD, RATE_RULES, primary_suppression, rate_rules
from cdr.disclosure._secondary import SuppressionResult, compare_aggregations, protect, secondary_suppression

__all__ = [
    "primary_suppression", "rate_rules", "RATE_RULES", "DEFAULT_THRESHOLD",
    "Bundle", "table_equations", "cell_ids", "merge_levels",
    "secondary_suppression", "protect", "SuppressionResult", "compare_aggregations",
    "audit", "explain", "certificate",
    "Ledger", "read_ledgers", "LEDGER_FORMAT",
]
