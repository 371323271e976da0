"""cdr.footprints: optimality against brute force, validity invariants, England certificate, catalog, CLI."""
from __future__ import annotations

import itertools
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.spatial import Delaunay
from scipy.stats import poisson

import cdr
from cdr.errors import CdrWarning, InfeasibleFootprintError
from cdr.footprints import (
    FootprintBuilder,
    FootprintDesign,
    chance_threshold,
    check_design,
    compare,
    evaluate,
    load_design,
    simulate,
    upper_bound,
)
from cdr.footprints._catalog import CATALOG_DIR, PACKAGE_CATALOG_DIR, _frames_equal, default_design, real_cdop_design

T = 60.0


# ------------------------------------------------------------------------------------------------
# instances
# ------------------------------------------------------------------------------------------------
def planar_instance(n, seed, low=5.0, high=45.0):
    """Delaunay triangulation of random points: a connected planar graph; deaths uniform(low, high)."""
    rng = np.random.default_rng(seed)
    pts = rng.random((n, 2))
    tri = Delaunay(pts)
    codes = [f"A{i:03d}" for i in range(n)]
    neigh = {c: set() for c in codes}
    for simplex in tri.simplices:
        for a, b in itertools.combinations(simplex, 2):
            neigh[codes[a]].add(codes[b])
            neigh[codes[b]].add(codes[a])
    areas = pd.DataFrame({
        "la_code": codes,
        "expected_deaths": rng.uniform(low, high, n),
        "imd_avg_rank": rng.uniform(0, 300, n),
        "child_population": rng.uniform(10_000, 200_000, n),
        "unit": np.where(pts[:, 0] < 0.5, "west", "east"),
    })
    return areas, {k: sorted(v) for k, v in neigh.items()}


@st.composite
def planar_instances(draw, n_areas=st.integers(6, 40)):
    return planar_instance(draw(n_areas), draw(st.integers(0, 10_000)))


def brute_force_max(areas, neigh, threshold):
    """Largest number of parts in a partition into connected parts each >= threshold (exhaustive)."""
    codes = list(areas["la_code"])
    d = dict(zip(codes, areas["expected_deaths"]))

    def connected(part):
        part = set(part)
        start = next(iter(part))
        seen, stack = {start}, [start]
        while stack:
            for j in neigh[stack.pop()]:
                if j in part and j not in seen:
                    seen.add(j)
                    stack.append(j)
        return seen == part

    best = -1

    def rec(rest, count):
        nonlocal best
        if not rest:
            best = max(best, count)
            return
        first, others = rest[0], rest[1:]
        for r in range(len(others) + 1):
            for combo in itertools.combinations(others, r):
                part = (first, *combo)
                if sum(d[c] for c in part) >= threshold and connected(part):
                    rec([c for c in others if c not in combo], count + 1)

    rec(codes, 0)
    return best


def fit(areas, neigh, **kw):
    kw.setdefault("objective", {"attributes": ["imd_avg_rank"], "compactness": 0})
    return FootprintBuilder(T, contiguity=neigh, **kw).fit(areas)


@pytest.fixture(scope="module")
def england():
    areas = cdr.data.england_areas()
    from cdr.reference import expected_deaths

    return areas.merge(expected_deaths(), on="la_code")


@pytest.fixture(scope="module")
def england_design(england):
    return FootprintBuilder(T, seed=0).fit(england)


# ------------------------------------------------------------------------------------------------
# optimality
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(8))
def test_builder_matches_brute_force_on_small_instances(seed):
    areas, neigh = planar_instance(9, seed)
    expected = brute_force_max(areas, neigh, T)
    design = fit(areas, neigh, seed=seed)
    assert design.n_footprints == expected
    assert design.upper_bound == expected and design.info["proven_optimal"]
    assert check_design(design, min_deaths=T).empty


def test_upper_bound_is_never_below_brute_force():
    for seed in range(8, 14):
        areas, neigh = planar_instance(9, seed, low=2, high=30)
        assert upper_bound(areas, min_deaths=T, contiguity=neigh).value == brute_force_max(areas, neigh, T)


def test_england_design_is_proven_optimal(england, england_design):
    bound = upper_bound(england, min_deaths=T)
    assert bound.method == "ilp"
    assert england_design.n_footprints == bound.value == england_design.upper_bound
    assert england_design.info["proven_optimal"] and england_design.path == "exact"
    # the certificate is much tighter than total deaths / threshold
    assert bound.value <= bound.lp < bound.relaxation <= bound.trivial + 1e-9
    assert check_design(england_design).empty


# ------------------------------------------------------------------------------------------------
# invariants (hypothesis)
# ------------------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instance=planar_instances(), seed=st.integers(0, 99))
def test_every_built_design_is_valid(instance, seed):
    areas, neigh = instance
    assume(areas["expected_deaths"].sum() >= T)
    design = fit(areas, neigh, seed=seed)
    assert sorted(design.labels.index) == sorted(areas["la_code"])  # every area exactly once
    assert design.labels.notna().all()
    assert check_design(design, min_deaths=T, contiguity=neigh).empty  # contiguous, >= threshold
    assert design.n_footprints <= design.upper_bound


@settings(max_examples=15, deadline=None)
@given(instance=planar_instances(n_areas=st.integers(8, 30)), seed=st.integers(0, 99))
def test_same_seed_and_any_row_order_give_the_same_design(instance, seed):
    areas, neigh = instance
    assume(areas["expected_deaths"].sum() >= T)
    a = fit(areas, neigh, seed=seed)
    b = fit(areas, neigh, seed=seed)
    shuffled = areas.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    c = fit(shuffled, neigh, seed=seed)
    assert a.labels.equals(b.labels)
    assert a.labels.equals(c.labels)  # labels are canonical (ordered by smallest code), so equal outright


@settings(max_examples=15, deadline=None)
@given(instance=planar_instances(n_areas=st.integers(10, 40)), seed=st.integers(0, 99))
def test_nesting_is_respected_or_reported(instance, seed):
    areas, neigh = instance
    try:
        design = fit(areas, neigh, seed=seed, nest_within="unit")
    except InfeasibleFootprintError as exc:  # an outcome too, with its own check
        assert "cannot reach the threshold" in str(exc) and len(exc.areas) > 0
    else:
        assert check_design(design, min_deaths=T, nest_within="unit", contiguity=neigh).empty
        assert design.n_footprints == upper_bound(areas, min_deaths=T, nest_within="unit", contiguity=neigh).value


@settings(max_examples=15, deadline=None)
@given(instance=planar_instances(n_areas=st.integers(12, 40)), seed=st.integers(0, 99))
def test_locked_areas_are_kept(instance, seed):
    areas, neigh = instance
    assume(areas["expected_deaths"].sum() >= 2 * T)
    first = fit(areas, neigh, seed=seed)
    fid = first.table().sort_values("footprint_id")["footprint_id"].iloc[0]
    lock = first.labels[first.labels == fid].map(lambda _: "KEEP")
    try:
        design = fit(areas, neigh, seed=seed + 1, lock=lock)
    except InfeasibleFootprintError as exc:  # the rest cannot form footprints on its own: reported, never silent
        assert len(exc.areas) > 0 and not set(exc.areas["la_code"]) & set(lock.index)
    else:
        assert check_design(design, min_deaths=T, lock=lock, contiguity=neigh).empty
        assert set(design.labels[design.labels == "KEEP"].index) == set(lock.index)


# ------------------------------------------------------------------------------------------------
# chance constraint, nesting on England, infeasibility
# ------------------------------------------------------------------------------------------------
def test_chance_threshold_matches_poisson_tail():
    lam = chance_threshold(60, 0.9)
    # P(Poisson(lam) >= 60) = 0.9 exactly at lam (scipy.stats.poisson as the independent reference)
    assert poisson.sf(59, lam) == pytest.approx(0.9, abs=1e-9)
    assert poisson.sf(59, lam - 0.01) < 0.9


def test_chance_constraint_on_england(england):
    design = FootprintBuilder(T, min_probability=0.9).fit(england)
    table = design.table()
    assert (table["p_reach_threshold"] >= 0.9 - 1e-9).all()
    assert design.n_footprints == design.upper_bound
    assert design.n_footprints == upper_bound(england, min_deaths=T, min_probability=0.9).value
    assert check_design(design, min_probability=0.9).empty


def test_nesting_by_region_on_england(england):
    design = FootprintBuilder(T, nest_within="region_code").fit(england)
    assert check_design(design, nest_within="region_code").empty
    assert design.n_footprints == upper_bound(england, min_deaths=T, nest_within="region_code").value
    assert len(design.info["subproblems"]) >= 9


def test_police_force_nesting_names_the_infeasible_area(england):
    with pytest.raises(InfeasibleFootprintError) as info:
        FootprintBuilder(T, nest_within="police_force_area").fit(england)
    message = str(info.value)
    assert "City of London (E09000001)" in message and "on_infeasible='merge'" in message
    assert "E09000001" in set(info.value.areas["la_code"])


def test_merge_fallback_is_reported_not_silent(england):
    with pytest.warns(CdrWarning, match="merged"):
        design = FootprintBuilder(T, nest_within="police_force_area", on_infeasible="merge").fit(england)
    assert any("City of London" in n for n in design.notes)
    # footprints crossing police force areas, counted from the labels and the areas directly
    pfa = england.set_index("la_code")["police_force_area"]
    crossing = design.labels.groupby(design.labels).apply(lambda g: pfa.loc[g.index].nunique() > 1)
    assert int(crossing.sum()) == 11  # the figure in issue 14
    problems = check_design(design)  # the builder's own rules, with no arguments
    assert set(problems["check"]) == {"nesting"}
    assert sorted(problems["footprint_id"]) == sorted(crossing.index[crossing])
    assert check_design(design, nest_within="region_code")["check"].eq("nesting").any()  # an explicit rule wins


def test_merged_design_claims_optimality_only_for_the_merged_problem(england):
    with pytest.warns(CdrWarning, match="breaking 11 rule"):
        design = FootprintBuilder(T, nest_within="police_force_area", on_infeasible="merge").fit(england)
    assert design.info["proven_optimal"] is False
    assert "merged problem" in design.info["optimal_for"]
    assert len(design.info["rule_violations"]) == 11 and len(design.rule_violations()) == 11
    text = str(design.summary())
    assert "PROVEN OPTIMAL" not in text and "BREAKS 11 RULE(S) YOU SET" in text


def test_merge_note_names_the_real_target(england):
    with pytest.warns(CdrWarning):
        design = FootprintBuilder(T, nest_within="police_force_area", on_infeasible="merge").fit(england)
    target = design.labels["E09000001"]
    others = sorted(c for c in design.labels.index[design.labels == target] if c != "E09000001")
    assert others  # City of London (0.3 deaths a year) joined a real footprint
    note = next(n for n in design.notes if n.startswith("merged City of London"))
    assert f"into footprint {target} (" in note and "containing E09000001" not in note
    assert all(c in note for c in others[:4])
    assert design.info["merged"]["E09000001"].startswith(f"{target} (") and "E09000001" not in design.info["merged"]["E09000001"]
    assert design.table().set_index("footprint_id").loc[target, "note"].startswith("E09000001 merged in")


def test_single_area_below_threshold_alone_is_infeasible():
    areas = pd.DataFrame({"la_code": ["a", "b"], "expected_deaths": [70.0, 10.0], "imd_avg_rank": [1.0, 2.0]})
    with pytest.raises(InfeasibleFootprintError, match=r"b: 10.0 expected deaths a year, alone"), \
            pytest.warns(CdrWarning, match="2 connected components"):
        FootprintBuilder(T, contiguity={"a": [], "b": []}, objective={"attributes": []}).fit(areas)


def test_heuristic_path_is_valid_and_reports_its_gap():
    areas, neigh = planar_instance(60, 3)
    design = fit(areas, neigh, exact=False)
    assert design.path == "heuristic" and design.info["bound_method"] == "relaxation"
    assert check_design(design, contiguity=neigh).empty
    assert design.n_footprints <= design.upper_bound


# ------------------------------------------------------------------------------------------------
# evaluate, compare, simulate, files, catalog
# ------------------------------------------------------------------------------------------------
def test_simulate_agrees_with_the_poisson_distribution():
    areas = pd.DataFrame({"la_code": ["a", "b"], "expected_deaths": [60.0, 75.0]})
    sim = simulate(FootprintDesign({"a": "A", "b": "B"}, areas), n=20_000, seed=2)
    exact = poisson.cdf(59, [60.0, 75.0])  # P(X < 60)
    assert sim["p_below_exact"].to_numpy() == pytest.approx(exact, abs=1e-12)
    assert np.abs(sim["share_years_below"].to_numpy() - exact).max() < 0.015  # ~4 s.e. at n=20,000


def test_file_round_trip_keeps_labels_and_metadata(tmp_path, england_design):
    path = england_design.to_file(tmp_path / "d.csv")
    assert path.read_text().startswith("# cdr footprint design")
    back = FootprintDesign.from_file(path)
    assert back.labels.equals(england_design.labels)
    assert back.upper_bound == england_design.upper_bound and back.params["seed"] == 0


def test_catalog_default_design_is_current():
    committed = load_design("england_min60").to_frame()
    fresh = default_design().to_frame()
    assert _frames_equal(committed, fresh), "run `python -m cdr.footprints.catalog` and commit footprints/"


def test_catalog_real_design_is_current_and_partial():
    committed = load_design("cdop_2019_real")
    fresh = real_cdop_design()
    assert _frames_equal(committed.to_frame(), fresh.to_frame())
    assert committed.partial
    uncovered = set(committed.labels.index[committed.labels.isna()])
    assert uncovered == {"E06000061", "E06000062", "E08000026", "E09000006", "E10000031"}  # N/W Northants, Coventry, Bromley, Warwickshire
    # Cumbria's CDOP covers both 2023 successors; the Isle of Man is dropped and noted
    assert committed.labels["E06000063"] == committed.labels["E06000064"] == "cumbria_cdop"
    assert any("Isle of Man" in n for n in committed.notes)


def test_compare_real_and_built_designs(england_design):
    table = compare({"real": load_design("cdop_2019_real"), "built": england_design})
    real, built = table.set_index("design").loc["real"], table.set_index("design").loc["built"]
    assert built["n_below_threshold"] == 0 and built["gap_to_bound"] == 0 and real["gap_to_bound"] >= 0
    assert real["n_below_threshold"] > 0 and real["n_uncovered_areas"] == 5
    assert list(table.columns[:3]) == ["design", "n_footprints", "n_areas"]


def test_table_and_plot(england_design):
    import matplotlib.pyplot as plt

    table = england_design.table()
    assert len(table) == england_design.n_footprints
    assert table["meets_threshold"].all() and table["contiguous"].all()
    assert table["compactness"].between(0, 1).all()
    ax = england_design.plot()
    assert "footprints" in ax.get_title()
    plt.close(ax.figure)


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------
def test_cli_build_writes_the_four_files(tmp_path, capsys):
    from cdr.cli import main

    assert main(["footprints", "build", "--out", str(tmp_path), "--no-progress"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["n_footprints"] == summary["upper_bound"]
    assert summary["min_expected_deaths"] >= 60 and "parameters" in summary and summary["path"] == "exact"
    frame = pd.read_csv(tmp_path / "footprints.csv", comment="#")
    assert list(frame.columns) == ["la_code", "footprint_id", "expected_deaths"] and len(frame) == 153
    assert (tmp_path / "footprints.geojson").exists() and (tmp_path / "map.png").exists()


def test_cli_compare_runs_on_the_catalog(tmp_path, capsys):
    from cdr.cli import main

    assert main(["footprints", "compare", "cdop_2019_real", "england_min60", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "n_below_threshold" in out
    assert len(pd.read_csv(tmp_path / "comparison.csv")) == 2
    assert main(["footprints", "evaluate", "cdop_2019_real", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "footprints_table.csv").exists()


def test_catalog_dir_exists():
    assert CATALOG_DIR.is_dir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_design("england_min60")


def test_packaged_catalog_is_identical_to_the_repository_catalog():
    # load_design reads cdr/_data/footprints/ (shipped in the wheel); footprints/ is the human-facing copy
    repo = sorted(p.name for p in CATALOG_DIR.glob("*.csv"))
    packaged = sorted(p.name for p in PACKAGE_CATALOG_DIR.glob("*.csv"))
    assert repo == packaged == [f"{n}.csv" for n in cdr.footprints.catalog_names()]
    for name in repo:
        assert (CATALOG_DIR / name).read_bytes() == (PACKAGE_CATALOG_DIR / name).read_bytes(), (
            f"{name}: run `python -m cdr.footprints.catalog` to rewrite both copies")


def test_max_footprints_merges_down_and_keeps_every_rule():
    areas, neigh = planar_instance(60, 5)
    full = fit(areas, neigh)
    target = full.n_footprints - 3
    design = fit(areas, neigh, max_footprints=target)
    assert design.n_footprints == target and not design.info["proven_optimal"]
    assert check_design(design, min_deaths=T, contiguity=neigh).empty
    assert any("max_footprints" in n for n in design.notes)
    with pytest.raises(cdr.errors.CdrError, match="single subproblem"):
        fit(areas, neigh, max_footprints=target, nest_within="unit")


def test_swaps_lower_the_objective_and_keep_every_rule():
    from cdr.footprints import _descent as D
    from cdr.footprints import _solver as S
    from cdr.footprints._objective import State

    areas, neigh = planar_instance(50, 7)
    codes = list(areas["la_code"])
    nbrs = [sorted(codes.index(c) for c in neigh[k]) for k in codes]
    z = areas[["imd_avg_rank"]].to_numpy(float)
    prob = S.Subproblem(d=areas["expected_deaths"].to_numpy(), pop=np.zeros(50), nbrs=nbrs,
                        features=(z - z.mean()) / z.std(), threshold=T, exact=True, local_search=False)
    state = State(prob, S.solve_subproblem(prob).labels.copy())
    members = {}
    for i, lab in enumerate(state.labels.tolist()):
        members[lab] = members.get(lab, 0) | (1 << i)
    sizes = np.bincount(state.labels)
    before = state.total()
    while D.swap_pass(prob, state, members, np.inf):
        pass
    after = state.total()
    # the objective recomputed from scratch (not the incremental sums) went down; sizes unchanged
    lab = state.labels
    direct = sum(float(((prob.features[lab == k] - prob.features[lab == k].mean(0)) ** 2).sum()) for k in np.unique(lab))
    assert direct == pytest.approx(after, abs=1e-9) and after <= before + 1e-12
    assert (np.bincount(lab) == sizes).all()
    design = FootprintDesign(pd.Series(lab, index=codes).map(lambda k: f"F{k}"), areas, params={"min_deaths": T})
    assert check_design(design, min_deaths=T, contiguity=neigh).empty


# ------------------------------------------------------------------------------------------------
# simulated annealing (the secondary objective at a fixed count)
# ------------------------------------------------------------------------------------------------
def _objective(design, areas, attributes):
    """Total within-footprint sum of squares of the standardised attributes, recomputed from labels."""
    z = areas[attributes].to_numpy(float)
    z = (z - z.mean(0)) / z.std(0)
    lab = design.labels.reindex(areas["la_code"]).to_numpy()
    return sum(float(((z[lab == k] - z[lab == k].mean(0)) ** 2).sum()) for k in np.unique(lab))


@pytest.mark.parametrize("seed", range(3))
def test_annealing_never_worsens_the_objective_and_keeps_every_rule(seed):
    areas, neigh = planar_instance(40, 100 + seed)
    cap = float(areas["child_population"].sum()) / 4
    kw = dict(seed=seed, max_population=cap, min_probability=0.6)
    plain = fit(areas, neigh, anneal_iterations=0, **kw)
    annealed = fit(areas, neigh, **kw)
    assert annealed.n_footprints == plain.n_footprints  # the count is never traded for the objective
    assert _objective(annealed, areas, ["imd_avg_rank"]) <= _objective(plain, areas, ["imd_avg_rank"]) + 1e-9
    assert check_design(annealed, min_deaths=T, min_probability=0.6, contiguity=neigh).empty
    assert annealed.table()["child_population"].max() <= cap
    sub = annealed.info["subproblems"].iloc[0]
    assert sub["anneal_iterations"] > 0 and sub["objective"] <= sub["objective_descent"] + 1e-9


def test_annealing_lowers_heterogeneity_on_england_at_the_optimum_count(england, england_design):
    plain = FootprintBuilder(T, seed=0, anneal_iterations=0).fit(england)
    sub = england_design.info["subproblems"].iloc[0]
    assert england_design.n_footprints == plain.n_footprints == 48
    assert sub["objective"] < 0.95 * sub["objective_descent"]  # at least 5 % lower than the descent alone
    assert england_design.table()["heterogeneity"].sum() < plain.table()["heterogeneity"].sum()


def test_anneal_iterations_must_be_a_count():
    areas, neigh = planar_instance(12, 1)
    with pytest.raises(cdr.errors.CdrError, match="anneal_iterations"):
        fit(areas, neigh, anneal_iterations=1.5)


def test_equal_count_heterogeneity_beats_pygeoda_on_england(england, tmp_path):
    # independent reference: pygeoda (libgeoda) max-p simulated annealing, best of 10 seeds, on the same graph
    pygeoda = pytest.importorskip("pygeoda")
    areas = england.sort_values("la_code", ignore_index=True)
    areas["death_rate"] = areas["expected_deaths"] / areas["child_population"]
    attrs = ["imd_avg_rank", "death_rate"]
    graph = cdr.data.contiguity()
    codes = list(areas["la_code"])
    index = {c: i for i, c in enumerate(codes)}
    with open(tmp_path / "w.gal", "w") as fh:
        fh.write(f"0 {len(codes)} areas id\n")
        for c in codes:
            nb = [index[x] for x in graph.neighbors[c]]
            fh.write(f"{index[c]} {len(nb)}\n{' '.join(map(str, nb))}\n")
    gw = pygeoda.read_gal(str(tmp_path / "w.gal"), [str(i) for i in range(len(codes))])
    best = None
    for s in range(10):
        lab = np.asarray(pygeoda.maxp_sa(gw, areas[attrs], areas["expected_deaths"].tolist(), T, random_seed=s,
                                         cpu_threads=1)["Clusters"])
        k = len(np.unique(lab[lab > 0]))
        if best is None or k > best[0]:
            best = (k, lab)
    k, lab = best
    peer = FootprintDesign(pd.Series(lab, index=codes).astype(str), areas, params={"min_deaths": T})
    mine = FootprintBuilder(T, objective={"attributes": attrs, "compactness": 0}, max_footprints=int(k)).fit(areas)
    assert mine.n_footprints == k and check_design(mine).empty
    assert _objective(mine, areas, attrs) < _objective(peer, areas, attrs)


# ------------------------------------------------------------------------------------------------
# gap to the bound, and designs written with other-vintage codes
# ------------------------------------------------------------------------------------------------
def test_gap_to_bound_counts_only_footprints_that_meet_the_threshold():
    # a line 30 - 40 - 70: the best design is {30, 40}, {70}, so the bound is 2 (brute force agrees)
    line = {"0": ["1"], "1": ["0", "2"], "2": ["1"]}
    areas = pd.DataFrame({"la_code": ["0", "1", "2"], "expected_deaths": [30.0, 40.0, 70.0]})
    assert brute_force_max(areas, line, T) == 2
    split = FootprintDesign({"0": "A", "1": "B", "2": "C"}, areas, neighbors=line)  # 3 footprints, 2 below 60
    row = evaluate(split).iloc[0]
    assert (row["n_footprints"], row["n_footprints_meeting"], row["upper_bound"], row["gap_to_bound"]) == (3, 1, 2, 1)
    assert "1 of 3 footprints" in row["gap_note"]
    unbounded = evaluate(split, bound=False).iloc[0]
    assert np.isnan(unbounded["gap_to_bound"]) and "bound=False" in unbounded["gap_note"]


def test_gap_to_bound_of_the_real_design_is_not_negative(england_design):
    table = compare({"real": load_design("cdop_2019_real"), "built": england_design}).set_index("design")
    real_table = load_design("cdop_2019_real").table()
    meeting = int((real_table["meets_threshold"] & real_table["contiguous"]).sum())
    assert table.loc["real", "n_footprints_meeting"] == meeting < table.loc["real", "n_footprints"]
    assert table.loc["real", "gap_to_bound"] == table.loc["real", "upper_bound"] - meeting >= 0
    assert table.loc["built", "gap_to_bound"] == 0 and table.loc["built", "gap_note"] == ""


def test_design_file_with_2021_codes_is_translated_and_says_so(tmp_path):
    path = tmp_path / "old.csv"
    path.write_text("la_code,footprint_id,expected_deaths\n"
                    "E10000006,cumbria,99.0\nE10000023,north_yorks,99.0\nE06000014,north_yorks,7.0\n")
    design = load_design(path)
    # ONS: Cumbria (E10000006) split in 2023 into Cumberland (E06000063) and Westmorland and Furness (E06000064);
    # North Yorkshire county (E10000023) became the unitary E06000065
    assert design.labels.to_dict() == {"E06000014": "north_yorks", "E06000063": "cumbria", "E06000064": "cumbria",
                                       "E06000065": "north_yorks"}
    assert any("E10000006" in n and "E06000063, E06000064" in n for n in design.notes)
    assert any("E10000023" in n for n in design.notes)
    from cdr.reference import expected_deaths

    ref = expected_deaths().set_index("la_code")["expected_deaths"]
    deaths = design.to_frame().set_index("la_code")["expected_deaths"]
    assert deaths["E06000063"] == pytest.approx(ref["E06000063"]) and deaths["E06000014"] == pytest.approx(7.0)


def test_design_file_with_unknown_codes_names_them(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("la_code,footprint_id\nE10000006,a\nE10000099,b\nE06000999,b\n")
    with pytest.raises(cdr.errors.CdrError, match=r"E10000099.*E06000999|E06000999.*E10000099") as info:
        FootprintDesign.from_file(path)
    assert "2 LA code(s)" in str(info.value)


# ------------------------------------------------------------------------------------------------
# certificates: only a programme solved to optimality proves anything; counts, not clocks
# ------------------------------------------------------------------------------------------------
class _Unsolved:
    """What HiGHS returns when it stops at a time limit: a feasible point, not an optimum."""

    status, message, fun = 1, "Time limit reached", -1.0

    def __init__(self, m):
        self.x = np.zeros(m)


def test_an_unsolved_lp_never_certifies_a_packing(monkeypatch):
    from cdr.footprints import _packing

    real_pack = _packing.pack
    monkeypatch.setattr(_packing, "pack", lambda sets, n, *, time_limit, lp_only=False:
                        _Unsolved(len(sets)) if lp_only else real_pack(sets, n, time_limit=time_limit))
    real_improve = _packing.improve
    monkeypatch.setattr(_packing, "improve", lambda *a, **k: real_improve(*a, **k)[:1])  # a poor packing: one set
    areas, neigh = planar_instance(14, 3)
    best = brute_force_max(areas, neigh, T)
    design = fit(areas, neigh, anneal_iterations=0)
    # the timed-out LP's value (1 footprint) must not certify the one-set packing: the integer
    # programme runs and finds the maximum, and the LP value is not reported as a bound
    assert design.n_footprints == best and design.upper_bound >= best
    assert np.isnan(design.info["lp_bound"])
    assert any("LP relaxation not solved" in e for e in design.info["clock_events"])


def test_upper_bound_ignores_unsolved_programmes(monkeypatch):
    from cdr.footprints import _evaluate

    monkeypatch.setattr(_evaluate, "pack", lambda sets, n, *, time_limit, lp_only=False: _Unsolved(len(sets)))
    areas, neigh = planar_instance(14, 3)
    b = upper_bound(areas, min_deaths=T, contiguity=neigh)
    # the area-sum relaxation (sum of min(1, d_i / T)), the only valid bound left
    assert b.method == "relaxation"
    assert b.value == int(np.floor(np.minimum(1, areas["expected_deaths"] / T).sum() + 1e-6))
    assert b.value >= brute_force_max(areas, neigh, T)


def test_auto_path_depends_on_counts_and_records_any_clock(monkeypatch):
    from cdr.footprints import _limits

    areas, neigh = planar_instance(40, 1)
    normal = fit(areas, neigh, anneal_iterations=0)
    assert normal.path == "exact" and normal.info["clock_events"] == []
    clock = [0.0]

    def racing():  # a machine where every step takes 1,000 s
        clock[0] += 1000.0
        return clock[0]

    monkeypatch.setattr(_limits, "now", racing)
    slow = fit(areas, neigh, anneal_iterations=0)
    assert slow.path == "exact"  # the path is chosen by a count (max_sets), never by the clock
    same = slow.labels.equals(normal.labels)
    assert same or slow.info["clock_events"], "a clock changed the design without saying so"
    assert all("time_limit" in e or "HiGHS" in e or "LP" in e for e in slow.info["clock_events"])


def test_england_design_used_no_clock(england_design):
    assert england_design.info["clock_events"] == [] and england_design.info["proven_optimal"]
    assert england_design.info["optimal_for"] == "the problem as posed"


# ------------------------------------------------------------------------------------------------
# contiguity given as libpysal W (keyed by index, position or la_code), Graph, dict
# ------------------------------------------------------------------------------------------------
def _square_areas(side=4, seed=0):
    import geopandas as gpd
    from shapely.geometry import box

    rng = np.random.default_rng(seed)
    cells = [(i, j) for i in range(side) for j in range(side)]
    frame = gpd.GeoDataFrame({
        "la_code": [f"Z{i}{j}" for i, j in cells],
        "expected_deaths": rng.uniform(15, 40, len(cells)),
        "imd_avg_rank": rng.uniform(0, 300, len(cells)),
    }, geometry=[box(i, j, i + 1, j + 1) for i, j in cells], crs="EPSG:27700")
    order = rng.permutation(len(frame))  # not sorted by la_code, index labels 100.. not positions
    frame = frame.iloc[order].reset_index(drop=True)
    frame.index = frame.index + 100
    rook = {f"Z{i}{j}": [f"Z{a}{b}" for a, b in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)) if (a, b) in set(cells)]
            for i, j in cells}
    return frame, rook


def test_contiguity_accepts_w_keyed_by_index_position_or_la_code_and_a_graph():
    import libpysal
    from libpysal.graph import Graph

    frame, rook = _square_areas()
    kw = dict(objective={"attributes": ["imd_avg_rank"], "compactness": 0}, anneal_iterations=0)
    reference = FootprintBuilder(T, contiguity=rook, **kw).fit(frame)
    by_index = libpysal.weights.Rook.from_dataframe(frame, use_index=True, silence_warnings=True)
    pos = {k: i for i, k in enumerate(frame.index)}
    by_position = libpysal.weights.W({pos[k]: [pos[x] for x in v] for k, v in by_index.neighbors.items()},
                                     silence_warnings=True)
    by_code = libpysal.weights.W(rook, silence_warnings=True)
    graph = Graph.build_contiguity(frame, rook=True)
    for w, keys in [(by_index, "the areas' index"), (by_position, "row position (0 .. n-1) of the areas"),
                    (by_code, "la_code"), (graph, "the areas' index")]:
        design = FootprintBuilder(T, contiguity=w, **kw).fit(frame)
        assert design.info["contiguity"]["keys"] == keys
        assert design.labels.equals(reference.labels)
    assert FootprintBuilder(T, contiguity=graph, **kw).fit(frame).info["contiguity"]["source"] == "libpysal.graph.Graph"


def test_contiguity_keyed_by_nothing_the_areas_have_is_refused_with_the_fix():
    frame, rook = _square_areas()
    with pytest.raises(cdr.errors.CdrError, match="Queen.from_dataframe"):
        FootprintBuilder(T, contiguity={"x": ["y"], "y": ["x"]}).fit(frame)


def test_a_disconnected_custom_graph_is_warned_about():
    frame, rook = _square_areas()
    cut = {k: [x for x in v if (k[1] < "2") == (x[1] < "2")] for k, v in rook.items()}  # two halves
    with pytest.warns(CdrWarning, match="2 connected components"):
        design = FootprintBuilder(T, contiguity=cut, objective={"attributes": []}).fit(frame)
    assert design.info["contiguity"]["n_components"] == 2


@settings(max_examples=40, deadline=None)
@given(instance=planar_instances(n_areas=st.integers(4, 14)), mask=st.integers(1, 2**14 - 1))
def test_solver_bitmask_connectivity_agrees_with_scipy_csgraph(instance, mask):
    from cdr.data._contiguity import is_connected
    from cdr.footprints._sets import connected, neighbour_masks

    areas, neigh = instance
    codes = list(areas["la_code"])
    mask &= (1 << len(codes)) - 1
    nbrs = [sorted(codes.index(c) for c in neigh[k]) for k in codes]
    members = [codes[i] for i in range(len(codes)) if mask >> i & 1]
    assert connected(mask, neighbour_masks(nbrs)) == is_connected(members, neigh)


# ------------------------------------------------------------------------------------------------
# design files carry what they were built for (issue 12, item 5)
# ------------------------------------------------------------------------------------------------
def test_built_design_file_carries_threshold_source_and_options(tmp_path):
    from cdr.footprints import write_build_files

    areas, neigh = planar_instance(14, 3)
    design = FootprintBuilder(50, contiguity=neigh, min_probability=0.6, objective={"attributes": []}).fit(areas)
    written = write_build_files(design, tmp_path / "north", description="test design")
    header = [line for line in written["footprints.csv"].read_text().splitlines() if line.startswith("#")]
    text = "\n".join(header)
    assert '"min_deaths": 50' in text and '"min_probability": 0.6' in text and "deaths_source" in text
    again = load_design(written["footprints.csv"])
    assert again.meta["name"] == "north" and again.min_deaths == 50 and again.params["min_probability"] == 0.6
    row = evaluate(again, bound=False).iloc[0]
    assert row["min_deaths"] == 50 and "min_probability=0.6" in row["constraints"]


def test_compare_judges_each_design_by_its_own_constraints():
    areas, neigh = planar_instance(12, 4)
    kw = dict(contiguity=neigh, objective={"attributes": []})
    at50, at60 = FootprintBuilder(50, **kw).fit(areas), FootprintBuilder(60, **kw).fit(areas)
    table = compare({"at50": at50, "at60": at60}).set_index("design")
    # each against the exhaustive maximum for its own threshold (brute force, not cdr's bound)
    assert table.loc["at50", "upper_bound"] == brute_force_max(areas, neigh, 50) == at50.n_footprints
    assert table.loc["at60", "upper_bound"] == brute_force_max(areas, neigh, 60) == at60.n_footprints
    assert table["min_deaths"].tolist() == [50.0, 60.0] and (table["gap_to_bound"] == 0).all()


def test_cli_compare_keeps_five_footprints_csv_as_five_designs(tmp_path, capsys):
    import shutil

    from cdr.cli import main
    from cdr.footprints import write_build_files

    areas, neigh = planar_instance(12, 4)
    paths = []
    for k, md in enumerate([40, 45, 50, 55, 60]):
        d = FootprintBuilder(md, contiguity=neigh, objective={"attributes": []}).fit(areas)
        paths.append(write_build_files(d, tmp_path / f"run{k}")["footprints.csv"])
    copy = tmp_path / "again" / "run0"
    copy.mkdir(parents=True)
    shutil.copy(paths[0], copy / "footprints.csv")  # same name and folder name as run0: still its own row
    assert main(["footprints", "compare", *map(str, paths), str(copy / "footprints.csv"), "--out", str(tmp_path / "cmp")]) == 0
    table = pd.read_csv(tmp_path / "cmp" / "comparison.csv")
    assert len(table) == 6 and table["design"].is_unique
    assert [d.split(" ")[0] for d in table["design"]] == [f"run{k}" for k in range(5)] + ["run0"]
    assert table["design"].iat[5].endswith("(again/run0/footprints.csv)")
    assert table["min_deaths"].tolist() == [40, 45, 50, 55, 60, 40]  # each judged at its own threshold


# ------------------------------------------------------------------------------------------------
# the shape of the package
# ------------------------------------------------------------------------------------------------
def _footprints_imports():
    import ast
    import pathlib

    pkg = pathlib.Path(cdr.footprints.__file__).parent
    graph = {}
    for path in pkg.glob("*.py"):
        mod = path.stem
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):  # imports inside functions too
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cdr.footprints."):
                deps.add(node.module.split(".")[2])
            elif isinstance(node, ast.ImportFrom) and node.module == "cdr.footprints":
                deps.update(a.name for a in node.names if (pkg / f"{a.name}.py").exists())
        graph[mod] = deps - {mod}
    return graph


def test_footprints_modules_import_one_way():
    from graphlib import CycleError, TopologicalSorter

    graph = {m: d for m, d in _footprints_imports().items() if m != "__init__"}
    try:
        list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"import cycle inside cdr.footprints: {exc.args[1]}")


def test_solver_is_split_by_algorithm_over_one_objective():
    import ast
    import pathlib

    pkg = pathlib.Path(cdr.footprints.__file__).parent
    for module in ("_sets", "_packing", "_greedy", "_descent", "_anneal", "_objective"):
        assert (pkg / f"{module}.py").exists(), module
    # one objective formula: no module but _objective defines a cost function or a state class
    for path in pkg.glob("*.py"):
        names = {n.name for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                 if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        if path.stem != "_objective":
            assert not names & {"cost", "cost_of", "_set_cost", "_State", "State", "sse"}, path.name


def test_networkx_is_declared_only_if_cdr_imports_it():
    import pathlib
    import re

    root = pathlib.Path(cdr.__file__).parent
    imported = any(re.search(r"^\s*(import|from) networkx", p.read_text(encoding="utf-8"), re.M) for p in root.rglob("*.py"))
    pyproject = (root.parent / "pyproject.toml").read_text(encoding="utf-8")
    deps = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert ("networkx" in deps) == imported


def test_no_unit_test_asserts_on_wall_clock_time():
    import ast
    import pathlib

    clocks = ("timings" + "_s", "perf" + "_counter", "time" + ".time", "elap" + "sed")
    for path in pathlib.Path(__file__).parent.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assert):
                src = ast.unparse(node.test)
                assert not any(c in src for c in clocks), (path.name, src)


def test_benchmark_times_every_method_by_one_rule():
    import pathlib
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
    import footprints_vs_peers as bench

    ticks = iter([0.0, 1.0, 10.0, 13.0, 20.0, 22.0])  # runs of 1 s, 3 s and 2 s
    calls = []
    result, seconds = bench.time_call(lambda: calls.append(1) or len(calls), 3, clock=lambda: next(ticks))
    assert (len(calls), result, seconds) == (3, 1, 2.0)  # every run made, the first result, the median
    # the docs table compares one run with one run: each instance's rows share one `repeats` value
    doc = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "footprints.md").read_text()
    rows = [line.split("|")[1:-1] for line in doc.splitlines() if line.startswith("| ") and "instance" not in line]
    header = next(line for line in doc.splitlines() if line.startswith("| instance | method"))
    cols = [c.strip() for c in header.split("|")[1:-1]]
    table = pd.DataFrame([[c.strip() for c in r] for r in rows if len(r) == len(cols)], columns=cols)
    assert "repeats" in cols and (table.groupby("instance")["repeats"].nunique() == 1).all()
