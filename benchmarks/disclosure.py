"""Benchmark: audit and protect an England-size bundle (153 LAs x 10 categories with footprint,
region and national margins; about 2,200 cells). SYNTHETIC counts from a small generator.

Run: ``.venv/bin/python benchmarks/disclosure.py`` (prints timings; no pass/fail).
"""
from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from cdr.disclosure import Bundle, audit, secondary_suppression

CATEGORY_SHARES = np.array([0.03, 0.06, 0.07, 0.08, 0.07, 0.07, 0.18, 0.33, 0.05, 0.06])  # NCMD-like


def england_like_bundle(seed=0, n_la=153, n_regions=9, la_per_footprint=4, deaths_per_la=21.0):
    """A synthetic bundle shaped like England: LA -> footprint -> region -> nation x category."""
    rng = np.random.default_rng(seed)
    las = [f"LA{i:03d}" for i in range(n_la)]
    region = {la: f"R{i * n_regions // n_la}" for i, la in enumerate(las)}
    footprint, k = {}, 0
    for r in sorted(set(region.values())):
        members = [la for la in las if region[la] == r]
        for j, la in enumerate(members):
            footprint[la] = f"F{k + j // la_per_footprint:02d}"
        k += -(-len(members) // la_per_footprint)
    size = rng.gamma(4.0, deaths_per_la / 4.0, n_la)
    counts = rng.poisson(size[:, None] * CATEGORY_SHARES[None, :])
    cats = [f"c{j}" for j in range(len(CATEGORY_SHARES))]
    la = pd.DataFrame([(l, c, counts[i, j]) for i, l in enumerate(las) for j, c in enumerate(cats)],
                      columns=["area", "category", "deaths"])
    hierarchy = {**footprint, **{footprint[l]: region[l] for l in las}, **{r: "E92000001" for r in region.values()}}
    frames = [la]
    level = la
    for _ in range(3):
        level = level.assign(area=level["area"].map(hierarchy)).groupby(["area", "category"], as_index=False)["deaths"].sum()
        frames.append(level)
    table = pd.concat(frames, ignore_index=True)
    table = pd.concat([table, table.groupby("area", as_index=False)["deaths"].sum().assign(category="all")],
                      ignore_index=True)
    return Bundle.from_tables({"deaths_by_area_category": table}, dims=["area", "category"],
                              hierarchy={"area": hierarchy})


def main():
    t = time.perf_counter()
    bundle = england_like_bundle()
    print(f"bundle: {len(bundle.cells)} cells, {len(bundle.equations)} equations "
          f"({time.perf_counter() - t:.2f} s to build)")
    t = time.perf_counter()
    result = secondary_suppression(bundle, method="heuristic")
    print(f"heuristic secondary suppression: {time.perf_counter() - t:.2f} s; {result!r}")
    cells = pd.DataFrame({"cell": result.cells["cell"], "value": result.cells["published"],
                          "primary": result.cells["suppression"] == "primary"})
    for label, executor in (("1 core", None), ("2 processes", ProcessPoolExecutor(2))):
        t = time.perf_counter()
        out = audit(cells, bundle.equations, executor=executor)
        print(f"audit ({label}): {time.perf_counter() - t:.2f} s; {out.attrs['n_suppressed']} suppressed, "
              f"{out.attrs['n_components']} components, passed={out.attrs['passed']}")
        if executor is not None:
            executor.shutdown()


if __name__ == "__main__":
    main()
