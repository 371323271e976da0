"""cdr.footprints with a Dask executor: nested subproblems solved on a LocalCluster give the same design."""
from __future__ import annotations

import pytest

distributed = pytest.importorskip("distributed")

import cdr  # noqa: E402
from cdr.footprints import FootprintBuilder, check_design  # noqa: E402

pytestmark = pytest.mark.dask


@pytest.fixture(scope="module")
def england():
    from cdr.reference import expected_deaths

    return cdr.data.england_areas().merge(expected_deaths(), on="la_code")


def test_dask_executor_gives_the_same_nested_design(england):
    builder = FootprintBuilder(60, nest_within="region_code", seed=0)
    serial = builder.fit(england)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        parallel = FootprintBuilder(60, nest_within="region_code", seed=0).fit(england, executor=client.get_executor())
    assert parallel.labels.equals(serial.labels)
    assert parallel.n_footprints == serial.n_footprints == parallel.upper_bound
    assert len(parallel.info["subproblems"]) >= 9  # one subproblem per region (at least)
    assert check_design(parallel, nest_within="region_code").empty
