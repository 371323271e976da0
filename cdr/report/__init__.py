"""Annual child death review statistics: one protected, audited bundle from a record file.

:func:`build_report` turns CDR records into the annual statistics of a child death review
partnership (a footprint), a region or England: headline numbers with rates versus region and
England, deaths by age band, sex, category and deprivation, modifiable factors by category and
domain, trends, a funnel plot of all footprints and a map. Every count passes through
:mod:`cdr.disclosure` as one linked bundle (LA -> footprint -> region -> nation, category x age
margins, each year and the multi-year total), and the bundle is audited by an independent attacker
before anything is written; a bundle that fails is refused with a :class:`~cdr.errors.DisclosureError`
naming the cells.

``Report.write(out)`` (or ``build_report(..., out=DIR)``) writes ``report.html`` (one
self-contained page), ``tables.xlsx`` (one sheet per table plus ``notes``), ``tables/*.csv``,
``figures/*.png`` and ``manifest.json`` (input hashes, spec, versions, record accounting,
suppressed cells, audit certificate). Reporting years follow the CDR convention (1 April - 31
March, ``"2022-23"``) unless ``calendar=True``.
"""
from cdr.report._build import LEVELS, Report, build_report
from cdr.report._periods import Period, parse_period

__all__ = ["build_report", "Report", "LEVELS", "parse_period", "Period"]
