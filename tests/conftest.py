"""Shared test configuration: a non-interactive plotting backend and the hypothesis profiles.

Hypothesis profiles (``docs/dev/contracts.md``):

- ``ci`` (the default, and what ``make test`` and any run with the ``CI`` environment variable use):
  derandomised, no example database, so a green run stays green on every fresh clone;
- ``dev``: random examples and more of them, for exploring (``HYPOTHESIS_PROFILE=dev pytest ...``).
"""
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402
from hypothesis import settings  # noqa: E402

matplotlib.use("Agg")

settings.register_profile("ci", derandomize=True, database=None, print_blob=True, deadline=None)
settings.register_profile("dev", derandomize=False, max_examples=200, deadline=None)


def hypothesis_profile(environ=os.environ) -> str:
    """The profile a run uses: ``HYPOTHESIS_PROFILE`` if set, else ``ci`` (also when ``CI`` is set)."""
    return environ.get("HYPOTHESIS_PROFILE") or "ci"


settings.load_profile(hypothesis_profile())


# ------------------------------------------------------------------------------------------------
# fixtures shared by the report test modules (test_report.py, test_publish_safety.py)
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def synthetic_records_2019_2023():
    """Five years of SYNTHETIC records (seed 0): what the report tests build bundles from. Do not modify."""
    import cdr

    return cdr.synthetic.generate_records(years=range(2019, 2024), seed=0)


@pytest.fixture(scope="session")
def hand_made_design():
    """A hand-made design (``la_code``, ``footprint_id``): the LAs of each region in code order, in groups of five
    (``R01_00``, ``R01_01``, ...), so footprints never cross a region and the last of a region can be small."""
    import cdr

    areas = cdr.data.england_areas()[["la_code", "region_code"]].sort_values(["region_code", "la_code"])
    areas["footprint_id"] = [f"R{r[-2:]}_{i // 5:02d}" for r, i in
                             zip(areas["region_code"], areas.groupby("region_code").cumcount())]
    return areas[["la_code", "footprint_id"]].reset_index(drop=True)
