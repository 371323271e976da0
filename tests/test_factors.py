"""Tests for cdr.factors: prevalence tables, the factor model, its remedies and figures.

Expected numbers come from outside cdr: Newcombe (1998) worked examples and statsmodels for the
Wilson interval; simulations with known odds ratios; the closed form of Firth's estimate in a 2x2
table (log OR with 1/2 added to each cell).
"""
from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit

import cdr.factors as F
from cdr.errors import RecordValidationError, SeparationWarning
from cdr.factors import _records as R

CATS = ("trauma_external", "malignancy", "perinatal_neonatal", "infection")
AGES = ("neonatal", "postneonatal", "1-4", "15-17")
# True model (log odds): reference trauma_external / neonatal / female, imd per quintile.
TRUE = {
    "Intercept": -0.5,
    "C(category)[T.malignancy]": -2.0,
    "C(category)[T.perinatal_neonatal]": -0.7,
    "C(category)[T.infection]": -0.9,
    "C(age_band)[T.postneonatal]": 0.6,
    "C(age_band)[T.1-4]": 0.2,
    "C(age_band)[T.15-17]": 0.5,
    "C(sex)[T.male]": 0.1,
    "imd_quintile": -0.15,
}
FORMULA = "modifiable ~ C(category) + C(age_band) + imd_quintile + C(sex)"


def la_codes(k):
    from cdr.data import la_codes as codes

    return list(codes(2023))[:k]


def make_records(n=4000, seed=0, *, p_pending=0.1, p_insufficient=0.03, n_clusters=None, cluster_sd=0.0,
                 cluster_imd=False, coefs=TRUE):
    """Records with the contract columns and a modifiable judgement from a known logistic model."""
    rng = np.random.default_rng(seed)
    las = la_codes(max(n_clusters or 8, 8))
    la = rng.choice(las[: (n_clusters or 8)], n)
    category = rng.choice(CATS, n, p=[0.2, 0.2, 0.35, 0.25])
    age_band = rng.choice(AGES, n, p=[0.35, 0.25, 0.2, 0.2])
    sex = rng.choice(["female", "male"], n)
    imd = rng.integers(1, 6, n)
    if cluster_imd:  # a cluster-level covariate: every case in an LA has the LA's quintile
        la_imd = dict(zip(las, rng.integers(1, 6, len(las))))
        imd = np.array([la_imd[x] for x in la])
    effect = dict(zip(las, rng.normal(0, cluster_sd, len(las)))) if cluster_sd else {}
    eta = (coefs["Intercept"] + coefs["imd_quintile"] * imd
           + np.select([category == c for c in CATS[1:]],
                       [coefs[f"C(category)[T.{c}]"] for c in CATS[1:]], 0.0)
           + np.select([age_band == a for a in AGES[1:]], [coefs[f"C(age_band)[T.{a}]"] for a in AGES[1:]], 0.0)
           + coefs["C(sex)[T.male]"] * (sex == "male")
           + np.array([effect.get(x, 0.0) for x in la]))
    modifiable = np.where(rng.random(n) < expit(eta), "yes", "no").astype(object)
    u = rng.random(n)
    pending = u < p_pending
    insufficient = (u >= p_pending) & (u < p_pending + p_insufficient)
    modifiable[insufficient] = "insufficient_information"
    modifiable[pending] = None
    dom_levels = np.array(list(R.DOMAIN_LEVELS), dtype=object)
    frame = pd.DataFrame({
        "case_id": [f"C{i:05d}" for i in range(n)],
        "la_code": la,
        "category": category,
        "age_band": age_band,
        "sex": sex,
        "imd_decile": (2 * imd - rng.integers(0, 2, n)).astype("int64"),
        "review_completed": pd.to_datetime(np.where(pending, None, "2023-01-31")),
        "modifiable": modifiable,
        "synthetic": True,
    })
    for d in R.DOMAIN_ORDER:
        values = rng.choice(dom_levels, n, p=[0.05, 0.45, 0.2, 0.25, 0.05])
        values[pending] = None
        frame[d] = values
    frame["imd_quintile"] = imd
    return frame


# ----------------------------------------------------------------------------- Wilson
@pytest.mark.parametrize("count,n,lower,upper", [
    # Newcombe (1998), Stat Med 17:857-872, Table II, method 3 (Wilson score without correction).
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_limits_match_newcombe_worked_examples(count, n, lower, upper):
    lo, up = R.wilson(np.array([count]), np.array([n]), 0.95)
    assert lo[0] == pytest.approx(lower, abs=6e-5) and up[0] == pytest.approx(upper, abs=6e-5)


def test_prevalence_limits_agree_with_statsmodels_wilson():
    from statsmodels.stats.proportion import proportion_confint

    table = F.prevalence(make_records(600, seed=3), by=["category", "age_band"], level="nation",
                         conf=(0.95, 0.998))
    table = table[table["n_judged"] > 0]
    for conf, tag in ((0.95, "95"), (0.998, "99_8")):
        lo, up = proportion_confint(table["count"], table["n_judged"], alpha=1 - conf, method="wilson")
        np.testing.assert_allclose(table[f"lower_{tag}"], lo, atol=1e-10)
        np.testing.assert_allclose(table[f"upper_{tag}"], up, atol=1e-10)


# ----------------------------------------------------------------------------- prevalence
def test_prevalence_counts_reconcile_and_pending_is_reported():
    recs = make_records(3000, seed=1)
    table = F.prevalence(recs, by=["category"], level="la", domain="all")
    assert (table["n_total"] == table["n_reviewed"] + table["n_pending"]).all()
    assert (table["n_reviewed"] == table["n_judged"] + table["n_insufficient"]).all()
    assert (table["count"] <= table["n_judged"]).all()
    for measure, part in table.groupby("measure"):
        assert part["n_total"].sum() == len(recs)
        assert part["n_pending"].sum() == recs["review_completed"].isna().sum()
    mod = table[table["measure"] == "modifiable"]
    assert mod["count"].sum() == (recs["modifiable"] == "yes").sum()
    assert mod["n_insufficient"].sum() == (recs["modifiable"] == "insufficient_information").sum()


def test_domain_counts_use_contributory_levels_and_exclude_not_available():
    recs = make_records(800, seed=2)
    table = F.prevalence(recs, level="nation", domain="domain_service")
    done = recs[recs["review_completed"].notna()]
    row = table.iloc[0]
    assert row["measure"] == "domain_service"
    assert row["count"] == done["domain_service"].isin(["may_have_contributed", "sufficient"]).sum()
    assert row["n_insufficient"] == (done["domain_service"] == "not_available").sum()


def test_domain_codes_from_form_c_are_read_as_levels():
    recs = make_records(300, seed=4)
    coded = recs.copy()
    back = {v: k for k, v in {"0": "not_available", "1": "none", "1*": "unlikely",
                             "2": "may_have_contributed", "3": "sufficient"}.items()}
    coded["domain_child"] = coded["domain_child"].map(back)
    a = F.prevalence(recs, level="nation", domain="domain_child")
    b = F.prevalence(coded, level="nation", domain="domain_child")
    pd.testing.assert_frame_equal(a, b)


def test_prevalence_rows_sum_to_the_higher_levels():
    recs = make_records(2000, seed=5)
    design = pd.Series(["FP1", "FP1", "FP2", "FP2", "FP3", "FP3", "FP3", "FP3"], index=la_codes(8))
    cols = ["n_total", "n_pending", "n_insufficient", "n_judged", "count"]
    la = F.prevalence(recs, by=["sex"], level="la")
    fp = F.prevalence(recs, by=["sex"], level="footprint", design=design)
    reg = F.prevalence(recs, by=["sex"], level="region")
    nat = F.prevalence(recs, by=["sex"], level="nation")
    assert set(fp["footprint_id"]) == {"FP1", "FP2", "FP3"} and set(nat["nation_code"]) == {"E92000001"}
    for t in (la, fp, reg):
        np.testing.assert_array_equal(t.groupby("sex")[cols].sum().to_numpy(),
                                      nat.set_index("sex")[cols].to_numpy())


def test_all_canonical_levels_are_shown_with_zero_counts():
    recs = make_records(400, seed=6)
    table = F.prevalence(recs, by=["category"], level="nation")
    assert len(table) == 10
    empty = table[table["category"] == "abuse_neglect"].iloc[0]
    assert empty["n_total"] == 0 and np.isnan(empty["value"]) and empty["note"] == "no deaths in group"


def test_prevalence_keeps_input_and_is_row_order_invariant():
    recs = make_records(500, seed=7)
    before = recs.copy()
    a = F.prevalence(recs, by=["age_band"], level="region", domain="all")
    pd.testing.assert_frame_equal(recs, before)
    b = F.prevalence(recs.sample(frac=1, random_state=1), by=["age_band"], level="region", domain="all")
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs["synthetic"] is True


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 60), seed=st.integers(0, 10_000))
def test_reconciliation_holds_for_any_records(n, seed):
    recs = make_records(n, seed=seed, p_pending=0.3, p_insufficient=0.2)
    table = F.prevalence(recs, by=["imd_quintile"], level="nation", domain="all")
    assert (table["n_total"] == table["n_reviewed"] + table["n_pending"]).all()
    assert (table["n_reviewed"] == table["n_judged"] + table["n_insufficient"]).all()
    ok = table["n_judged"] > 0
    assert ((table.loc[ok, "lower_95"] <= table.loc[ok, "value"]) &
            (table.loc[ok, "value"] <= table.loc[ok, "upper_95"])).all()
    assert table.loc[~ok, "value"].isna().all()


def test_prevalence_errors_name_the_problem():
    recs = make_records(50, seed=8)
    with pytest.raises(ValueError, match="needs design="):
        F.prevalence(recs, level="footprint")
    with pytest.raises(RecordValidationError, match="case_id=C00003"):
        F.prevalence(recs.assign(modifiable=recs["modifiable"].where(recs.index != 3, "maybe")))
    with pytest.raises(RecordValidationError, match="not in the footprint design"):
        F.prevalence(recs, level="footprint", design=pd.Series(["A"], index=[la_codes(1)[0]]))
    with pytest.raises(ValueError, match="Did you mean 0.95"):
        F.prevalence(recs, conf=95)


# ----------------------------------------------------------------------------- factor model
def test_factor_model_recovers_known_odds_ratios():
    recs = make_records(5000, seed=11)
    res = F.factor_model(recs, FORMULA, conf=0.998)
    assert res.info["method"] == "logit_mle"
    assert res.info["n_pending"] + res.info["n_insufficient"] + res.info["n_obs"] == len(recs)
    table = res.coefficients.set_index("term")
    for term, beta in TRUE.items():
        lo, up = np.log(table.loc[term, ["odds_ratio_lower_99_8", "odds_ratio_upper_99_8"]].astype(float))
        assert lo <= beta <= up, term           # 99.8 % limits: all nine cover the truth
        assert abs(table.loc[term, "coef"] - beta) < 0.35, term


@pytest.mark.slow
def test_factor_model_95_percent_intervals_cover_at_nominal_rate():
    hits = []
    for seed in range(60):
        res = F.factor_model(make_records(1500, seed=1000 + seed, p_pending=0, p_insufficient=0), FORMULA)
        t = res.coefficients.set_index("term")
        lo, up = np.log(t["odds_ratio_lower_95"].astype(float)), np.log(t["odds_ratio_upper_95"].astype(float))
        hits += [lo[k] <= v <= up[k] for k, v in TRUE.items()]
    coverage = np.mean(hits)
    # 540 intervals (60 seeded replications x 9 terms); at 95 % the standard error of the
    # coverage is about 0.94 points, so the band is about +/- 3 standard errors.
    assert 0.92 <= coverage <= 0.98, coverage


def test_gee_with_clustering_widens_intervals_for_cluster_level_covariates():
    recs = make_records(4000, seed=21, n_clusters=40, cluster_sd=0.5, cluster_imd=True)
    design = pd.Series([f"FP{i // 2:02d}" for i in range(40)], index=la_codes(40))  # 20 footprints
    naive = F.factor_model(recs, FORMULA)
    gee = F.factor_model(recs, FORMULA, cluster="footprint", design=design)
    assert gee.info["method"] == "gee_exchangeable" and gee.info["n_clusters"] == 20
    assert gee.info["cov_type"] == "bias_reduced"         # fewer than 40 clusters
    assert 0 < gee.info["within_cluster_correlation"] < 0.2
    se = lambda r: r.odds_ratios.set_index("term").loc["imd_quintile", "se"]  # noqa: E731
    assert se(gee) > 1.5 * se(naive)
    table = gee.coefficients.set_index("term")
    # Population-averaged effects are slightly attenuated (random-intercept sd 0.5): loose tolerance.
    for term in ("C(category)[T.malignancy]", "C(age_band)[T.postneonatal]"):
        assert abs(table.loc[term, "coef"] - TRUE[term]) < 0.4
    la_res = F.factor_model(recs, FORMULA, cluster="la")
    assert la_res.info["n_clusters"] == 40 and la_res.info["cov_type"] == "robust"


def _separated(seed=31, n=3000):
    recs = make_records(n, seed=seed)
    mask = recs["category"].eq("malignancy") & recs["modifiable"].eq("yes")
    recs.loc[mask, "modifiable"] = "no"           # no malignancy death has modifiable factors
    return recs


def test_separation_warns_and_gives_finite_firth_odds_ratios():
    with pytest.warns(SeparationWarning, match=r"category='malignancy'.*Firth"):
        res = F.factor_model(_separated(), FORMULA)
    assert res.info["method"] == "firth" and res.info["remedy_applied"] and res.info["converged"]
    table = res.odds_ratios.set_index("term")
    assert np.isfinite(table[["odds_ratio", "odds_ratio_lower_95", "odds_ratio_upper_95"]].to_numpy(float)).all()
    assert table.loc["C(category)[T.malignancy]", "odds_ratio"] < 0.05
    assert table.loc["C(category)[T.malignancy]", "odds_ratio_upper_95"] < 0.5
    # The other effects stay close to the truth.
    assert abs(table.loc["C(age_band)[T.postneonatal]", "coef"] - 0.6) < 0.35
    assert res.diagnostics.query("zero_cell")["level"].tolist() == ["malignancy"]


def test_separation_with_clusters_uses_firth_with_cluster_robust_variance():
    design = pd.Series(["FP1", "FP1", "FP2", "FP2", "FP3", "FP3", "FP4", "FP4"], index=la_codes(8))
    with pytest.warns(SeparationWarning):
        res = F.factor_model(_separated(), FORMULA, cluster="footprint", design=design)
    assert res.info["method"] == "firth_cluster_robust"
    assert np.isfinite(res.odds_ratios[["odds_ratio", "odds_ratio_lower_95", "odds_ratio_upper_95"]].to_numpy(float)).all()


def test_remedy_none_keeps_the_mle_but_still_warns():
    with pytest.warns(SeparationWarning, match="remedy='none'"):
        res = F.factor_model(_separated(), FORMULA, remedy="none")
    assert res.info["method"] == "logit_mle"
    assert res.odds_ratios.set_index("term").loc["C(category)[T.malignancy]", "coef"] < -8


def test_firth_equals_half_corrected_log_odds_ratio_in_a_2x2_table():
    # For one binary covariate the Firth estimate is the log OR with 1/2 added to every cell
    # (Firth 1993; Heinze & Schemper 2002, section 2).
    a, b, c, d = 0, 30, 10, 30      # exposed: 0 yes / 30 no; unexposed: 10 yes / 30 no
    recs = pd.DataFrame({
        "la_code": la_codes(1)[0], "reviewed": True,
        "category": ["malignancy"] * (a + b) + ["infection"] * (c + d),
        "modifiable": ["yes"] * a + ["no"] * b + ["yes"] * c + ["no"] * d,
    })
    with pytest.warns(SeparationWarning):
        res = F.factor_model(recs, "modifiable ~ C(category)")
    expected = np.log(((c + 0.5) / (d + 0.5)) / ((a + 0.5) / (b + 0.5)))   # infection vs malignancy
    assert res.odds_ratios["coef"].iloc[0] == pytest.approx(expected, abs=1e-6)


def test_factor_model_on_a_domain_outcome_and_a_region_subset():
    recs = make_records(3000, seed=41)
    res = F.factor_model(recs, "domain_social ~ C(sex) + imd_quintile")
    assert res.info["outcome"] == "domain_social"
    judged = recs["review_completed"].notna() & recs["domain_social"].isin(list(R.JUDGED_DOMAIN))
    assert res.info["n_obs"] == judged.sum()
    region = R.prepare(recs, caller="t", need=["region"])["region_code"].iloc[0]
    sub = F.factor_model(recs, "modifiable ~ C(sex)", level="region", unit=region)
    assert sub.info["n_records"] < len(recs)


def test_result_summary_frame_and_repr_say_what_was_fitted():
    res = F.factor_model(make_records(1500, seed=51), FORMULA)
    text = str(res.summary())
    assert "SYNTHETIC DATA" in text and "pending" in text and "Odds ratios" in text
    frame = res.to_frame()
    assert list(frame.columns) == ["term", "variable", "level", "reference", "n", "events", "coef", "se",
                                   "odds_ratio", "odds_ratio_lower_95", "odds_ratio_upper_95", "p_value", "method"]
    assert frame.attrs["synthetic"] is True
    assert "logit_mle" in repr(res)


def test_odds_ratio_limits_are_named_by_their_confidence_level():
    # STYLE §2: one rule for limit names (cdr.rates.ci_columns); the level is in the name.
    res = F.factor_model(make_records(1500, seed=51), FORMULA, conf=0.9)
    frame = res.to_frame()
    assert {"odds_ratio", "odds_ratio_lower_90", "odds_ratio_upper_90"} <= set(frame.columns)
    assert not any(c.startswith(("lower_", "upper_")) for c in frame.columns)   # unprefixed limits belong to `value`
    assert (frame["odds_ratio_lower_90"] <= frame["odds_ratio"]).all()
    assert (frame["odds_ratio"] <= frame["odds_ratio_upper_90"]).all()
    assert res.plot() is not None


def test_factor_model_bad_arguments_raise_clear_errors():
    recs = make_records(200, seed=61)
    with pytest.raises(ValueError, match="outcome"):
        F.factor_model(recs, "died ~ C(sex)")
    with pytest.raises(ValueError, match="'cluster'"):
        F.factor_model(recs, cluster="icb")


# ----------------------------------------------------------------------------- figures and analysis
def test_figures_have_titles_units_and_the_synthetic_label():
    recs = make_records(1500, seed=71)
    res = F.factor_model(recs, FORMULA)
    ax = res.plot()
    assert "SYNTHETIC DATA" in ax.get_title() and "log scale" in ax.get_xlabel()
    assert ax.get_legend() is not None
    table = F.prevalence(recs, by=["category"], level="nation", domain="all")
    heat = F.plot_prevalence(table, kind="heatmap")
    assert "SYNTHETIC DATA" in heat.get_title() and len(heat.get_xticklabels()) == 5
    bar = F.plot_prevalence(table, kind="bar")
    assert bar.get_xlabel().startswith("%") and bar.get_legend() is not None
    import matplotlib.pyplot as plt

    plt.close("all")


def test_analyse_writes_tables_and_figures(tmp_path):
    recs = make_records(1500, seed=81)
    with pytest.warns(Warning, match="footprint design"):
        analysis = F.analyse(recs, {"cluster": "footprint"})
    assert analysis.settings["cluster"] is None and analysis.settings["cluster_note"]
    written = analysis.to_dir(tmp_path)
    names = {p.split("/")[-1] for p in written}
    assert {"prevalence_by_category.csv", "prevalence_by_category_domain.csv", "odds_ratios.csv",
            "odds_ratios_forest.png", "prevalence_heatmap_category_domain.png"} <= names
    back = pd.read_csv(tmp_path / "tables" / "prevalence_by_category.csv")
    assert back["n_total"].sum() == len(recs)


# ----------------------------------------------------------------------------- real records and CLI
@pytest.fixture(scope="module")
def synthetic_records():
    synthetic = pytest.importorskip("cdr.synthetic")
    return synthetic.generate_records(years=range(2022, 2024), seed=0)


@pytest.mark.parametrize("level", ["la", "footprint", "region", "nation"])
def test_prevalence_runs_at_every_level_on_synthetic_records(synthetic_records, level):
    from cdr.data import lookup

    design = lookup(2023).set_index("la_code")["icb_code"]      # stand-in footprints: one per ICB
    table = F.prevalence(synthetic_records, by=["age_band"], level=level, design=design, domain="all")
    for _, part in table.groupby("measure"):
        assert part["n_total"].sum() == len(synthetic_records)
    assert table.attrs["synthetic"] is True


def test_cli_writes_tables_and_figures(tmp_path):
    from cdr.cli import main

    recs = make_records(400, seed=91).drop(columns=["age_band", "imd_quintile"])
    recs["date_of_death"] = pd.Timestamp("2022-12-01")
    recs["age_days"] = make_records(400, seed=91)["age_band"].map(
        {"neonatal": 3, "postneonatal": 100, "1-4": 800, "15-17": 6000})
    recs["ethnicity"] = "white"
    path = tmp_path / "records.csv"
    recs.to_csv(path, index=False)
    design = tmp_path / "design.csv"
    pd.DataFrame({"la_code": la_codes(8), "footprint_id": ["A", "A", "B", "B", "C", "C", "D", "D"]}).to_csv(
        design, index=False)
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SeparationWarning)
        code = main(["factors", "--records", str(path), "--level", "footprint", "--design", str(design),
                     "--out", str(out)])
    assert code == 0
    table = pd.read_csv(out / "tables" / "prevalence_by_category.csv")
    assert set(table["footprint_id"]) == {"A", "B", "C", "D"} and table["n_total"].sum() == 400
    assert (out / "figures" / "odds_ratios_forest.png").stat().st_size > 1000
    import json

    settings = json.loads((out / "settings.json").read_text())
    assert settings["spec_hash"].startswith("sha256:") and settings["cluster"] == "footprint"


def test_a_count_above_its_denominator_is_an_error_not_nan():
    # factors used to fall back on a private Wilson copy that gave (nan, nan) here; one implementation
    # (cdr.rates.wilson_ci) now says what is wrong.
    from cdr.errors import ArgumentError, CdrError

    with pytest.raises(ArgumentError, match="must not exceed") as info:
        R.wilson(np.array([5.0]), np.array([3.0]), 0.95)
    assert isinstance(info.value, CdrError) and isinstance(info.value, ValueError)
    lo, up = R.wilson(np.array([0.0, 15.0]), np.array([0.0, 15.0]), 0.95)
    assert np.isnan(lo[0]) and np.isnan(up[0]) and up[1] == 1.0
