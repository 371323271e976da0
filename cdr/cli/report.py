"""``cdr report``: the annual statistics bundle (argument parsing and printing only)."""
from __future__ import annotations

__all__ = ["register"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="annual child death statistics for a footprint, region or England, with disclosure control",
        description=(
            "Write DIR/report.html (self-contained), DIR/tables.xlsx, DIR/tables/*.csv, DIR/figures/*.png and "
            "DIR/manifest.json for one child death review partnership (footprint), a region or England. Every "
            "count passes through primary and secondary suppression across the whole bundle, and nothing is "
            "written if the disclosure audit fails. Years are CDR reporting years (1 April - 31 March, e.g. "
            "2022-23) unless --calendar is given."
        ),
    )
    p.add_argument("--records", required=True, metavar="FILE", help="CDR records (CSV or Parquet; cdr.schema columns)")
    p.add_argument("--design", metavar="FILE", help="footprint design: CSV with la_code and footprint_id (or a catalog name)")
    p.add_argument("--footprint", metavar="ID",
                   help="footprint id to report on; 'auto' takes the first id in sorted order")
    p.add_argument("--level", choices=("footprint", "region", "nation"), default="footprint",
                   help="report on a footprint (default), a region (--region CODE) or England")
    p.add_argument("--region", metavar="CODE", help="region code for --level region, e.g. E12000001")
    p.add_argument("--year", required=True, metavar="YYYY[-YY]",
                   help="reporting year, e.g. 2022-23 (1 April 2022 - 31 March 2023), or 2022 with --calendar")
    p.add_argument("--calendar", action="store_true", help="use calendar years instead of CDR reporting years")
    p.add_argument("--spec", metavar="FILE", help="analysis specification, e.g. models/annual.toml")
    p.add_argument("--previous", metavar="DIR",
                   help="an earlier bundle: cells it published or suppressed keep their status in this one")
    p.add_argument("--coverage", metavar="LA,LA,...",
                   help="the local authorities the records cover (codes or names, comma-separated), or 'all'; default "
                        "'auto': LAs with no record at all are not covered, and comparators outside the covered LAs "
                        "(England, regions) come from published NCMD figures")
    p.add_argument("--lenient", action="store_true",
                   help="exclude invalid records (listed in the manifest) instead of stopping")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created if needed)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from cdr.report import build_report

    report = build_report(
        args.records, design=args.design, footprint=args.footprint, level=args.level, region=args.region,
        year=args.year, calendar=True if args.calendar else None, spec=args.spec, out=args.out,
        mode="lenient" if args.lenient else "strict", previous=args.previous, coverage=args.coverage,
    )
    d = report.manifest["disclosure"]
    rec = report.manifest["records"]
    if report.synthetic:
        print("SYNTHETIC DATA")
    print(report.title)
    design = report.manifest.get("design")
    if design is not None:
        source = design["source"]
        if args.design is None:
            print(f"design: {source} - footprints built by cdr's model (about 60 expected deaths a year each), "
                  "not the real CDR partnerships; use --design cdop_2019_real for the 2019 partnerships, or your own "
                  "CSV of la_code,footprint_id")
        else:
            print(f"design: {source} ({design['n_footprints']} footprints)")
    cov = report.manifest.get("coverage") or {}
    if cov.get("partial"):
        print(f"coverage: the records cover {cov['n_las']} LA(s) ({cov['description']}); comparators from published "
              f"figures: {', '.join(cov['comparators_from_published_figures']) or 'none'}")
    for item in report.manifest.get("left_out") or []:
        print(f"left out: {item['analysis']} ({item['reason']})")
    print(f"records: {rec['input']:,} read, {rec['excluded_invalid']:,} excluded as invalid, "
          f"{rec['in_period']:,} in {report.period.label}")
    print(f"disclosure audit: {d['certificate_result']} ({d['n_suppressed_primary']} primary, "
          f"{d['n_suppressed_secondary']} secondary suppressions of {d['n_cells']} cells)")
    print(f"wrote {len(report.files)} files to {args.out}; open {args.out}/report.html")
    overlapping = report.manifest.get("overlapping_reports") or []
    for o in overlapping:
        print(f"NOTE: {o['path']} holds another cdr report sharing {', '.join(o['shared_periods'])} "
              f"({o['title']}), not given as --previous.")
    if overlapping:
        print("NOTE: if both are published, a count suppressed in one may be recoverable from the other. "
              "Rebuild the later one with --previous DIR naming the earlier (see docs/howto/report-outputs.md).")
    elif args.previous is None:
        print("note: if another bundle for an overlapping period is (or will be) published - another footprint "
              "design, footprint, region or England - build the later one with --previous DIR naming the earlier.")
    return 0
