"""Benchmark: joinpoint regression on 1,000 series of 20 points with up to 3 joinpoints.

Run: ``python benchmarks/joinpoint.py``. Prints wall-clock timings for
- method="nci" with BIC selection (all 1,000 series, one call with by=),
- method="glm" with BIC selection (all 1,000 series),
- method="nci" with the permutation test (n_permutations=4499) on 20 series, per series,
- method="glm" with the permutation (parametric bootstrap) test (n_permutations=499) on 5 series, per series.

The permutation test scores every permuted series (4,499 of them) against every joinpoint placement
in one batched product with the closed-form WLS grid (``cdr.trends._grid.wls_grid``).
"""
import time
import warnings

import numpy as np
import pandas as pd

from cdr.errors import OverdispersionWarning
from cdr.trends import joinpoint


def simulate(n_series=1000, n_points=20, seed=0):
    rng = np.random.default_rng(seed)
    years = np.arange(2001, 2001 + n_points, dtype=float)
    frames = []
    for s in range(n_series):
        k = rng.integers(0, 4)
        taus = np.sort(rng.choice(years[3:-3], size=k, replace=False))
        slope = rng.normal(0, 0.03)
        eta = np.log(3e-4) + slope * (years - years[0])
        for tau in taus:
            eta += rng.normal(0, 0.06) * np.maximum(years - tau, 0)
        pop = np.full(n_points, 1e6)
        frames.append(pd.DataFrame({"series": s, "year": years, "deaths": rng.poisson(pop * np.exp(eta)),
                                    "population": pop}))
    return pd.concat(frames, ignore_index=True)


def main():
    data = simulate()
    for method in ("nci", "glm"):
        t0 = time.perf_counter()
        with warnings.catch_warnings():   # a few Poisson series test as overdispersed at the 5 % level
            warnings.simplefilter("ignore", OverdispersionWarning)
            res = joinpoint(data, method=method, selection="bic", max_joinpoints=3, by="series")
        dt = time.perf_counter() - t0
        counts = pd.Series({k: len(v) for k, v in res.joinpoints.items()}).value_counts().sort_index()
        print(f"method={method!r:6} selection='bic'   1,000 series x 20 points, <= 3 joinpoints: {dt:6.1f} s "
              f"(joinpoints chosen: {counts.to_dict()})")
    few = data[data["series"] < 20]
    t0 = time.perf_counter()
    joinpoint(few, method="nci", selection="permutation", n_permutations=4499, max_joinpoints=3, by="series")
    dt = (time.perf_counter() - t0) / 20
    print(f"method='nci'  selection='permutation' (4,499 permutations, <= 3 joinpoints): {dt:6.3f} s per series")
    few = data[data["series"] < 5]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OverdispersionWarning)
        joinpoint(few, method="glm", selection="permutation", n_permutations=499, max_joinpoints=3, by="series")
    dt = (time.perf_counter() - t0) / 5
    print(f"method='glm'  selection='permutation' (499 bootstrap draws, <= 3 joinpoints):  {dt:6.3f} s per series")


if __name__ == "__main__":
    main()
