"""Wall time and agreement of cdr.rates against PHStatsMethods over 10,000 groups, in one run.

Run on demand (not part of the test suite)::

    .venv/bin/python benchmarks/indicators.py [--groups 10000] [--seed 0]

Needs the ``bench`` extra (PHStatsMethods, GPL; used here only, never imported by ``cdr``). Prints a
table (seconds for each library, speed ratio, maximum relative difference) and one JSON line.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import pandas as pd

from cdr.rates import ESP2013, dsr_table, funnel_significance, proportion_table, rate_table

COLS = ["value", "lower_95", "upper_95", "lower_99_8", "upper_99_8"]


def _ref_col(col):
    return "Value" if col == "value" else f"{col}_ci"


def _timed(fn, repeat=1):
    best, out = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def _max_rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    both = ~(np.isnan(a) & np.isnan(b))
    if (np.isnan(a) != np.isnan(b)).any():
        return float("inf")
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(a[both] - b[both]) / np.maximum(np.abs(b[both]), 1e-300)
    return float(np.max(np.where(np.abs(a[both] - b[both]) == 0, 0.0, rel))) if both.any() else 0.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from PHStatsMethods.DSR import ph_dsr
    from PHStatsMethods.funnels import assign_funnel_significance
    from PHStatsMethods.proportions import ph_proportion
    from PHStatsMethods.rates import ph_rate

    rng = np.random.default_rng(args.seed)
    g = args.groups
    areas = np.array([f"A{i:05d}" for i in range(g)])
    flat = pd.DataFrame({"area": areas, "deaths": rng.integers(1, 400, g).astype(float),
                         "population": rng.integers(5_000, 2_000_000, g).astype(float)})
    flat["n"] = flat["deaths"] + rng.integers(0, 2_000, g)
    bands = pd.DataFrame({"area": np.repeat(areas, 19), "age_band": np.tile(ESP2013.index.to_numpy(), g),
                          "deaths": rng.poisson(4, g * 19).astype(float),
                          "population": rng.integers(1_000, 80_000, g * 19).astype(float),
                          "esp": np.tile(ESP2013.to_numpy(), g)})
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # crude rates
        t_ph, ref = _timed(lambda: ph_rate(flat, "deaths", "population", group_cols="area", confidence=[0.95, 0.998]))
        t_cdr, ours = _timed(lambda: rate_table(flat, by="area"), repeat=5)
        ref = ref.sort_values("area").reset_index(drop=True)
        rows.append(("rate (ph_rate)", t_ph, t_cdr, max(_max_rel(ours[c], ref[_ref_col(c)]) for c in COLS)))
        # proportions
        t_ph, ref = _timed(lambda: ph_proportion(flat, "deaths", "n", group_cols="area", confidence=[0.95, 0.998]))
        t_cdr, ours = _timed(lambda: proportion_table(flat, "deaths", "n", by="area"), repeat=5)
        ref = ref.sort_values("area").reset_index(drop=True)
        rows.append(("proportion (ph_proportion)", t_ph, t_cdr, max(_max_rel(ours[c], ref[_ref_col(c)]) for c in COLS)))
        # DSR, 19 ESP2013 bands per group
        t_ph, ref = _timed(lambda: ph_dsr(bands, "deaths", "population", "esp", group_cols="area",
                                          euro_standard_pops=False, confidence=[0.95, 0.998]))
        t_cdr, ours = _timed(lambda: dsr_table(bands, standard=ESP2013, by="area"), repeat=3)
        ref = ref.sort_values("area").reset_index(drop=True)
        rows.append(("dsr (ph_dsr, 19 bands)", t_ph, t_cdr, max(_max_rel(ours[c], ref[_ref_col(c)]) for c in COLS)))
        # funnel significance (rate and proportion)
        flat["rate"] = flat["deaths"] / flat["population"] * 100_000
        for stat, den, kwargs in (("rate", "population", {"rate": "rate", "rate_type": "crude", "multiplier": 100_000}),
                                  ("proportion", "n", {})):
            t_ph, ref = _timed(lambda: assign_funnel_significance(flat.copy(), "deaths", stat, denom_col=den, **kwargs))
            t_cdr, ours = _timed(lambda: funnel_significance(flat["deaths"], flat[den], statistic=stat), repeat=5)
            mismatches = int((np.asarray(ours) != ref["significance"].to_numpy()).sum())
            rows.append((f"funnel significance, {stat}", t_ph, t_cdr, mismatches))
    table = pd.DataFrame(rows, columns=["task", "phstatsmethods_s", "cdr_s", "max_rel_diff_or_label_mismatches"])
    table["speedup"] = table["phstatsmethods_s"] / table["cdr_s"]
    with pd.option_context("display.width", 140, "display.float_format", "{:.3g}".format):
        print(f"cdr.rates vs PHStatsMethods, {g:,} groups (seed {args.seed})")
        print(table.to_string(index=False))
    print(json.dumps({"groups": g, "seed": args.seed, "results": [
        {"task": r.task, "phstatsmethods_s": round(r.phstatsmethods_s, 4), "cdr_s": round(r.cdr_s, 5),
         "speedup": round(r.speedup, 1), "max_rel_diff_or_label_mismatches": r.max_rel_diff_or_label_mismatches}
        for r in table.itertuples()]}))


if __name__ == "__main__":
    main()
