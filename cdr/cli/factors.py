"""``cdr factors``: modifiable-factor prevalence tables, the factor model and figures for a record file.

Argument parsing and file I/O only; the work is :func:`cdr.factors.analyse`.
"""
from __future__ import annotations

import os

from cdr.cli._common import add_analysis_command, read_records_file

__all__ = ["register"]


def register(subparsers):
    parser = add_analysis_command(
        subparsers, "factors", run,
        help="modifiable-factor prevalence (CSV) and odds-ratio model with figures (PNG)",
        description=(
            "Among completed reviews, the share with modifiable factors (overall and per domain, Wilson "
            "95% limits) by category, age band, sex and deprivation at the chosen level, and a logistic "
            "model of the judgement (GEE by footprint when a design is given; Firth's penalised likelihood "
            "when the data separate). Pending reviews and reviews with insufficient information are "
            "counted in their own columns."
        ),
        epilog="Example: cdr factors --records records.csv --level region --out out/factors",
        design_help="footprint design (footprints/*.csv with la_code, footprint_id, a catalog name, or a saved "
                    "FootprintDesign); needed for --level footprint and footprint clustering",
        level_default=None, level_help="level of the prevalence tables (default: nation)",
    )
    parser.add_argument("--formula", help="model formula (default: the spec's, "
                        "'modifiable ~ C(category) + C(age_band) + imd_quintile + C(sex)')")
    parser.add_argument("--cluster", choices=("none", "la", "footprint", "region"), default=None,
                        help="cluster of the GEE model (default: the spec's, 'footprint')")
    parser.add_argument("--spec", default="annual", metavar="NAME|FILE",
                        help="analysis spec, a packaged name or a TOML file (default: annual)")
    return parser


def run(args):
    from cdr.factors import analyse
    from cdr.footprints import load_design
    from cdr.models import load_spec
    from cdr.report._inputs import file_sha256

    spec = load_spec(args.spec)
    result = read_records_file(args.records, args, "factors")   # record-level details: to the private folder below
    design = load_design(args.design) if args.design else None
    records, exclusions = result
    analysis = analyse(records, spec["factors"], level=args.level, design=design, formula=args.formula,
                       cluster=args.cluster if args.cluster is not None else "settings",
                       vintage=args.vintage)
    private = {}
    if len(exclusions):
        private["exclusions.csv"] = exclusions
    if len(result.issues):
        private["field_issues.csv"] = result.issues
    where = _private_folder(args)
    if analysis.model_error:   # the reason can quote records (values, case ids): never into --out
        private["model_error.txt"] = analysis.model_error + "\n"
        analysis.model_error = (f"the factor model could not be fitted. The reason can quote records, so it is in the "
                                f"private folder ({where.name}/model_error.txt), which must not be published.")
    analysis.settings.update({"spec_name": spec.name, "spec_hash": spec.hash, "spec_source": spec.source,
                              "records_file": os.path.basename(args.records),
                              "records_sha256": file_sha256(args.records), "n_input": result.n_input,
                              "n_excluded": len(exclusions)})
    written = analysis.to_dir(args.out)
    if private:
        _write_private(where, private, args.out)
    print(f"cdr factors: {len(records):,} records ({len(exclusions):,} excluded)"
          + ("; SYNTHETIC DATA" if analysis.synthetic else ""))
    if private:
        print(f"cdr factors: record-level details ({', '.join(sorted(private))}) written to {where}: PRIVATE, do not "
              "publish that folder")
    if analysis.model_error:
        print(f"cdr factors: {analysis.model_error}")
    for path in written:
        print(path)
    return 0


def _private_folder(args):
    from cdr.report._private import private_folder

    return private_folder(args.out, getattr(args, "private", None))


def _write_private(where, private: dict, out) -> None:
    """Write the private files in one go (a second write would replace the first: it is one cdr folder)."""
    from cdr.report._private import PRIVATE_WARNING
    from cdr.report._safeio import PRIVATE_FORMAT, csv_bytes, write_folder

    files = {k: (v.encode("utf-8") if isinstance(v, str) else csv_bytes(v)) for k, v in private.items()}
    write_folder(where, files, {"warning": PRIVATE_WARNING, "command": "cdr factors",
                                "out": os.path.basename(os.path.normpath(out))}, what="private folder", fmt=PRIVATE_FORMAT)
