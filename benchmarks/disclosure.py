"""Benchmark: protect and audit an England-size bundle (153 LAs x 10 categories with footprint,
region and national margins; about 2,300 cells) and partnership bundles built from
``cdr.synthetic.generate_records`` (a footprint's LAs x category x year with the multi-year total,
and age band x sex x year, with region and England margins). SYNTHETIC counts throughout.

Also the chain of issue 11 (``england_min60`` F001 -> ``cdop_2019_real`` Tees -> North East ->
England, 2022-23, the same synthetic records), each bundle built with ``build_report(previous=)``
the one before: build time, and suppression search and audit time of the joint system (the bundle
with every earlier release of its ledger), against the England bundle built alone.

Run: ``.venv/bin/python benchmarks/disclosure.py`` (prints timings and information loss; no
pass/fail; ``--chain`` for the chain only). The numbers are recorded in ``docs/methods/disclosure.md``.
"""
from __future__ import annotations

import itertools
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


def partnership_bundle(records, footprint_id, design_labels, regions):
    """A footprint's report bundle from synthetic records (what ``cdr report`` publishes, in short).

    Tables: ``by_area_category`` (each LA of the footprint, the footprint, its region and England x
    category x reporting year, with category and multi-year margins; LA -> footprint is the only
    area hierarchy, since the region and England have other children not in the bundle) and
    ``by_age_sex`` (footprint, region, England x age band x sex x year, with margins). The two
    share the footprint/region/England totals per year.
    """
    las = sorted(design_labels.index[design_labels == footprint_id])
    region = regions[las[0]]
    rec = records.assign(period=records["reporting_year"].astype(str))
    periods = sorted(rec["period"].unique())
    units = {**{la: [la] for la in las}, footprint_id: las, region: sorted(regions.index[regions == region]),
             "E92000001": sorted(regions.index)}

    def table(dims):
        levels = {d: sorted(rec[d].astype(str).unique()) for d in dims}
        frames = []
        for unit, members in units.items():
            if not dims and unit in las:
                continue
            if "age_band" in dims and unit in las:
                continue
            sub = rec[rec["la_code"].isin(members)]
            for keep in itertools.product(*[[True, False]] * (len(dims) + 1)):
                cols = [d for d, k in zip(dims + ["period"], keep) if k]
                full = pd.MultiIndex.from_product([levels.get(c, periods) for c in cols], names=cols) if cols else None
                if cols:
                    g = sub.groupby(cols).size().reindex(full, fill_value=0).reset_index(name="deaths")
                else:
                    g = pd.DataFrame({"deaths": [len(sub)]})
                for c in dims + ["period"]:
                    if c not in cols:
                        g[c] = "all"
                g["area"] = unit
                frames.append(g)
        return pd.concat(frames, ignore_index=True)[["area", *dims, "period", "deaths"]]

    tables = {"by_area_category": table(["category"]), "by_age_sex": table(["age_band", "sex"])}
    dims = {"by_area_category": ["area", "category", "period"], "by_age_sex": ["area", "age_band", "sex", "period"]}
    return Bundle.from_tables(tables, dims=dims, hierarchy={"area": {la: footprint_id for la in las}})


def _report(label, result):
    loss = result.information_loss
    t = result.spec["timings_s"]
    print(f"{label}: {loss['n_cells']} cells; suppression {t['search']:.2f} s, audit {t['audit']:.2f} s; "
          f"{loss['n_primary']} primary + {loss['n_secondary']} secondary cells "
          f"({loss['value_secondary']} deaths hidden by secondary suppression); method={result.method}, "
          f"passed={result.passed}")


def main():
    import cdr

    t = time.perf_counter()
    bundle = england_like_bundle()
    print(f"England-size bundle: {len(bundle.cells)} cells, {len(bundle.equations)} equations "
          f"({time.perf_counter() - t:.2f} s to build)")
    result = secondary_suppression(bundle, method="heuristic")
    _report("England, heuristic", result)
    cells = pd.DataFrame({"cell": result.cells["cell"], "value": result.cells["published"],
                          "primary": result.cells["suppression"] == "primary"})
    for label, executor in (("1 core", None), ("2 processes", ProcessPoolExecutor(2))):
        t = time.perf_counter()
        out = audit(cells, bundle.equations, executor=executor)
        print(f"  audit ({label}): {time.perf_counter() - t:.2f} s; {out.attrs['n_suppressed']} suppressed, "
              f"{out.attrs['n_components']} components, passed={out.attrs['passed']}")
        if executor is not None:
            executor.shutdown()
    records = cdr.synthetic.generate_records(years=range(2019, 2024), seed=0)
    labels = cdr.footprints.real_cdop_design().labels.dropna()
    regions = cdr.data.england_areas(vintage=2023).set_index("la_code")["region_code"]
    for fp in sorted(labels.unique())[:: max(1, labels.nunique() // 6)][:6]:
        b = partnership_bundle(records, fp, labels, regions)
        for method in ("heuristic", "auto"):
            _report(f"{fp} ({method})", secondary_suppression(b, method=method))


def chain():
    """Time the issue-11 chain: each bundle protected and audited jointly with its predecessors."""
    import pathlib
    import sys
    import tempfile

    import cdr
    from cdr.report import build_report

    records = cdr.synthetic.generate_records(years=range(2019, 2024), seed=0)
    steps = [("F001 (england_min60)", {"design": "england_min60", "footprint": "F001"}),
             ("Tees CDOP (cdop_2019_real)", {"design": "cdop_2019_real", "footprint": "tees_cdop"}),
             ("North East", {"level": "region", "region": "E12000001"}),
             ("England", {"level": "nation"})]
    # the manifest holds no timings (bundles are reproducible): time the joint protection here
    import cdr.report._build as build_mod

    spent = {}
    protect_with_ledger = build_mod._protect_with_ledger

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        out = protect_with_ledger(*args, **kwargs)
        spent["protect"] = time.perf_counter() - t0
        return out

    build_mod._protect_with_ledger = timed
    build_report(records, level="nation", year="2022-23")   # warm caches (geography, populations)
    t = time.perf_counter()
    alone = build_report(records, level="nation", year="2022-23")
    cert = alone.manifest["disclosure"]["certificate"]
    print(f"England alone: built in {time.perf_counter() - t:.2f} s; suppression search and audit "
          f"{spent['protect']:.2f} s ({cert['joint']['n_cells']} cells)")
    with tempfile.TemporaryDirectory() as root:
        last = None
        for i, (label, kw) in enumerate(steps):
            out = f"{root}/b{i + 1}"
            t = time.perf_counter()
            rep = build_report(records, year="2022-23", previous=last, out=out, **kw)
            took = time.perf_counter() - t
            cert = rep.manifest["disclosure"]["certificate"]
            joint = cert["joint"]
            print(f"chain b{i + 1} {label}: built and written in {took:.2f} s; joint system {joint['n_cells']} "
                  f"cells ({joint['n_cells_earlier_releases']} from earlier releases), {joint['n_equations']} "
                  f"equations; suppression search and chain audit {spent['protect']:.2f} s; "
                  f"{rep.manifest['disclosure']['n_suppressed_primary']} primary + "
                  f"{rep.manifest['disclosure']['n_suppressed_secondary']} secondary; {cert['result']}")
            last = out
        # the independent attacker of the tests, over the four bundles' published CSVs
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
        from _attacker import Attacker, public_geography, truth_from_records

        t = time.perf_counter()
        att = Attacker(public_geography(("england_min60", "cdop_2019_real")))
        for i in range(len(steps)):
            att.read_bundle(pathlib.Path(root) / f"b{i + 1}", "2022-23", f"b{i + 1}")
        res = att.attack(truth_from_records(records))
        sound = bool(((res["lower"] <= res["truth"]) & (res["truth"] <= res["upper"])).all())
        print(f"independent attacker (tests/_attacker.py) over the 4 bundles: {len(res)} targets "
              f"({int((res['kind'] == 'suppressed').sum())} suppressed, {int((res['kind'] == 'unpublished').sum())} "
              f"implied), {int(res['exact'].sum())} exact, {int(res['small'].sum())} proven 1-4, true values inside "
              f"every interval: {sound}; {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    import sys

    if "--chain" not in sys.argv:
        main()
    chain()
