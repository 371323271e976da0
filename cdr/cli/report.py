"""``cdr report``: the annual statistics bundle (argument parsing and printing only)."""
from __future__ import annotations

import os
import pathlib

from cdr.cli._common import RECORDS_HELP, add_read_options, read_options

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
    p.add_argument("--records", required=True, metavar="FILE", help=RECORDS_HELP)
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
    p.add_argument("--previous", metavar="DIR", action="append",
                   help="an earlier bundle (repeatable): everything it and its own predecessors published is in its "
                        "ledger.json; published counts stay fixed, suppressed ones stay suppressed, and this bundle's "
                        "suppression is chosen and audited jointly with them")
    p.add_argument("--ledger", metavar="DIR",
                   help="your organisation's release-ledger folder: every ledger in it is read like --previous, and "
                        "this release's ledger is added to it (append-only)")
    p.add_argument("--coverage", metavar="LA,LA,...",
                   help="the local authorities the records cover (codes or names, comma-separated), or 'all'; default "
                        "'auto': LAs with no record at all are not covered, and comparators outside the covered LAs "
                        "(England, regions) come from published NCMD figures")
    add_read_options(p)
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory: new, empty, or an earlier cdr bundle (replaced in one step; created if needed)")
    p.add_argument("--private", metavar="DIR",
                   help="folder for record-level details that must NOT be published (excluded records, full error "
                        "messages); default DIR.private beside --out")
    p.add_argument("--force", action="store_true",
                   help="write into an --out folder that holds other files; cdr still never deletes or overwrites "
                        "a file it did not write")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from cdr.report import build_report

    options = read_options(args)
    report = build_report(
        args.records, design=args.design, footprint=args.footprint, level=args.level, region=args.region,
        year=args.year, calendar=True if args.calendar else None, spec=args.spec, out=args.out,
        mode=options["mode"], columns=options["columns"], sheet=options["sheet"], previous=args.previous,
        coverage=args.coverage, private=args.private, force=args.force, ledger=args.ledger,
    )
    d = report.manifest["disclosure"]
    rec = report.manifest["records"]
    if report.synthetic:
        print("SYNTHETIC DATA")
    print(report.title)
    if not args.calendar and str(args.year).strip().isdigit():
        print(f"note: --year {args.year.strip()} was read as the reporting year {report.period.label} (1 April - 31 March); "
              "add --calendar for the calendar year")
    design = report.manifest.get("design")
    if design is not None:
        source = design["source"]
        if args.design is None:
            print(f"design: {source} - footprints built by cdr's model (about 60 expected deaths a year each), "
                  "not the real CDR partnerships; use --design cdop_2019_real for the 2019 partnerships, or your own "
                  "CSV of la_code,footprint_id")
        else:
            n = design['n_footprints']
            print(f"design: {source} ({n} footprint{'' if n == 1 else 's'})")
    cov = report.manifest.get("coverage") or {}
    if cov.get("partial"):
        print(f"coverage: the records cover {cov['n_las']} LA(s) ({cov['description']}); comparators from published "
              f"figures: {', '.join(cov['comparators_from_published_figures']) or 'none'}")
    for item in report.manifest.get("left_out") or []:
        print(f"left out: {item['analysis']} ({item['reason']})")
    exact = (report.private or {}).get("record_counts") or {}   # exact counts: the user's terminal, not the bundle
    if exact:
        print(f"records: {sum(exact.values()):,} "
              f"read, {exact['excluded']:,} excluded as invalid, {exact['in_unit'] + exact['outside_unit']:,} in "
              f"{report.period.label}" + (f" ({exact['in_unit']:,} in {report.manifest['unit_name']})"
                                          if exact["outside_unit"] else ""))
    else:
        print(f"records: {rec['input']} read, {rec['excluded_invalid']} excluded as invalid, {rec['in_period']} in "
              f"{report.period.label}")
    print(f"disclosure audit: {d['certificate_result']} ({d['n_suppressed_primary']} primary, "
          f"{d['n_suppressed_secondary']} secondary suppressions of {d['n_cells']} cells)")
    print(f"wrote {len(report.files)} files to {args.out}; open {args.out}/report.html")
    if report.private.get("exclusions") is not None or report.private.get("notes"):
        from cdr.report._private import private_folder

        print(f"PRIVATE: record-level details written to {private_folder(args.out, args.private)}; "
              "do NOT publish that folder")
    led = report.manifest["disclosure"].get("ledger") or {}
    if led.get("earlier_releases"):
        print(f"release ledger: protected jointly with {len(led['earlier_releases'])} earlier release(s) "
              f"({led['n_cells']} cells, {led['n_equations']} equations); {args.out}/ledger.json carries them forward")
    if args.ledger is not None:
        rid = report.ledger["releases"][-1]["release"]
        added = sorted(pathlib.Path(args.ledger).glob(f"*_{rid}.json"))
        where = os.path.join(args.ledger, added[0].name) if added else args.ledger
        print(f"release ledger: added release {rid} to {where} (keep the folder {args.ledger}; every later "
              f"release of your organisation reads it)")
    overlapping = report.manifest.get("overlapping_reports") or []
    for o in overlapping:
        print(f"NOTE: {os.path.join(os.path.dirname(os.path.normpath(args.out)), o['path'])} holds another cdr report sharing {', '.join(o['shared_periods'])} "
              f"({o['title']}), not given as --previous.")
    if overlapping:
        print("NOTE: if both are published, a count suppressed in one may be recoverable from the other. "
              "Rebuild the later one with --previous DIR naming the earlier (see docs/howto/report-outputs.md).")
    elif args.previous is None and args.ledger is None:
        print("note: if another bundle for an overlapping period is (or will be) published - another footprint "
              "design, footprint, region or England - build the later one with --previous DIR naming the earlier.")
    return 0
