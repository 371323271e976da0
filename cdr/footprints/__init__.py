"""Build, evaluate and compare child death review footprints.

Statutory guidance asks each child death review partnership to cover a footprint of local
authorities that typically reviews at least 60 child deaths a year. This module builds such
footprints from data as a max-p regionalisation problem (as many contiguous footprints as possible,
each reaching the threshold), proves how many are possible, and evaluates any design, including the
real post-2019 footprints in the ``footprints/`` catalog.

>>> import cdr
>>> design = cdr.footprints.load_design("england_min60")
>>> design.n_footprints == design.upper_bound
True
"""
from cdr.footprints._builder import (
    DEFAULT_OBJECTIVE,
    FootprintBuilder,
    build_footprints,
    chance_threshold,
    expected_deaths_from_records,
)
from cdr.footprints._catalog import (
    CATALOG_DIR,
    catalog_names,
    load_design,
    read_build_inputs,
    real_cdop_design,
    regenerate_catalog,
    write_build_files,
)
from cdr.footprints._design import FootprintDesign
from cdr.footprints._evaluate import UpperBound, check_design, compare, evaluate, simulate, upper_bound

__all__ = [
    "FootprintBuilder",
    "FootprintDesign",
    "build_footprints",
    "evaluate",
    "compare",
    "simulate",
    "upper_bound",
    "UpperBound",
    "check_design",
    "chance_threshold",
    "expected_deaths_from_records",
    "load_design",
    "catalog_names",
    "real_cdop_design",
    "regenerate_catalog",
    "read_build_inputs",
    "write_build_files",
    "CATALOG_DIR",
    "DEFAULT_OBJECTIVE",
]
