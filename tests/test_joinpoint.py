"""cdr.trends.joinpoint against published NCI Joinpoint runs, brute force and simulation."""
import itertools
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from cdr.errors import CdrWarning, OverdispersionWarning  # noqa: E402
from cdr.trends import joinpoint, population_break  # noqa: E402

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def opioid_rr():
    return pd.read_csv(DATA / "joinpoint_nci_opioid_rate_ratio.csv")


@pytest.fixture(scope="module")
def opioid_fit(opioid_rr):
    return joinpoint(opioid_rr, rate="rr", se="se", count=None, population=None, method="nci",
                     variance="se", n_joinpoints=3)


# --- Published run 1: mkiang/opioid_trends, joinpoint_analysis/02_opioid_rate_ratio (Joinpoint 4.x,
# --- variance from standard errors, parametric APC limits, permutation test with max 5 joinpoints).
def test_nci_reproduces_published_joinpoints_and_sse(opioid_fit):
    # .modelestimates.txt: joinpoints 1993, 2010, 2015; SSE 147.057565. The input was exported to
    # 5 decimals, so the SSE agrees to 1e-4 relative, not to the printed 6 decimals.
    assert opioid_fit.joinpoints == [1993, 2010, 2015]
    assert opioid_fit.sse == pytest.approx(147.057565, rel=1e-4)


def test_nci_reproduces_published_apcs_with_limits(opioid_fit):
    # .apc.txt (3 decimals) and .modelestimates.txt slope standard errors (6 decimals).
    published = pd.DataFrame({
        "apc": [-0.743, 9.342, -6.447, -13.380],
        "apc_lower_95": [-2.577, 8.526, -10.662, -15.688],
        "apc_upper_95": [1.126, 10.164, -2.032, -11.008],
        "p_value": [0.42077, 0.00000, 0.00608, 0.00000],
        "slope_se": [0.009134, 0.003668, 0.022575, 0.013226],
    })
    seg = opioid_fit.segments
    assert seg["start"].tolist() == [1979, 1993, 2010, 2015] and seg["end"].tolist() == [1993, 2010, 2015, 2019]
    for col, tol in [("apc", 6e-4), ("apc_lower_95", 6e-4), ("apc_upper_95", 6e-4), ("p_value", 5e-5), ("slope_se", 2e-6)]:
        np.testing.assert_allclose(seg[col], published[col], atol=tol, err_msg=col)
    assert (seg["df"] == 41 - 3 * 3 - 2).all()


def test_nci_reproduces_published_aapc(opioid_fit):
    # .aapc.txt: Full Range 1979-2019 AAPC 1.273 (0.339, 2.216), test statistic 2.676, p 0.00745.
    row = opioid_fit.aapc().iloc[0]
    assert row["aapc"] == pytest.approx(1.273, abs=6e-4)
    assert row["aapc_lower_95"] == pytest.approx(0.339, abs=6e-4)
    assert row["aapc_upper_95"] == pytest.approx(2.216, abs=6e-4)
    assert row["p_value"] == pytest.approx(0.00745, abs=5e-5)


def test_nci_reproduces_published_fitted_values(opioid_fit, opioid_rr):
    # .data.txt column "Model", printed to 5 decimals.
    np.testing.assert_allclose(opioid_fit.fitted["fitted_rate"], opioid_rr["model"], atol=1.5e-5)


@pytest.mark.slow
def test_permutation_selection_matches_published_sequence(opioid_rr):
    # .modelselection.txt: tests 0v5, 1v5, 2v5 rejected; 3v5 (p 0.0843) and 3v4 (p 0.2655) not;
    # levels 0.05/(5 - k_null); 3 joinpoints selected. P-values are Monte Carlo: compare loosely.
    res = joinpoint(opioid_rr, rate="rr", se="se", count=None, population=None, method="nci",
                    variance="se", max_joinpoints=5, selection="permutation", n_permutations=999, seed=1)
    tests = res.tests
    assert tests[["k_null", "k_alt"]].values.tolist() == [[0, 5], [1, 5], [2, 5], [3, 5], [3, 4]]
    np.testing.assert_allclose(tests["level"], [0.01, 0.0125, 0.0166667, 0.025, 0.025], rtol=1e-5)
    np.testing.assert_allclose(tests["p_value"], [0.0001, 0.0001, 0.0011, 0.0843, 0.2655], atol=0.04)
    assert res.joinpoints == [1993, 2010, 2015]


# --- Published run 2: UK-Generations-Study/UK-cancer-trends (Joinpoint, constant variance).
UK_EXPECTED = {  # Cancer_Mortality_Data_Rolling_Joinpoint.txt: joinpoints and APCs (4 decimals)
    "men_all": ([2006, 2013], [-1.5527, -1.0906, -1.4960]),
    "breast": ([2007, 2010, 2014], [-1.9573, -2.4128, -1.9059, -1.3555]),
    "lung_men": ([2004, 2008, 2015], [-2.8662, -1.3800, -2.3120, -3.4150]),
    "oes_women": ([], [-1.5177]),
}


def test_nci_reproduces_published_constant_variance_runs():
    data = pd.read_csv(DATA / "joinpoint_nci_uk_cancer_mortality.csv")
    for series, (jps, apcs) in UK_EXPECTED.items():
        res = joinpoint(data[data["series"] == series], rate="asr", count=None, population=None,
                        method="nci", variance="constant", n_joinpoints=len(jps))
        assert res.joinpoints == jps, series
        np.testing.assert_allclose(res.segments["apc"], apcs, atol=6e-5, err_msg=series)


# --- Independent derivations ---------------------------------------------------------------------
def _brute_force_wls(x, y, w, k, min_end=2, min_between=2):
    best = (np.inf, None)
    for c in itertools.combinations(range(min_end, len(x) - min_end), k):
        if any(b - a - 1 < min_between for a, b in zip(c, c[1:])):
            continue
        X = np.column_stack([np.ones_like(x), x] + [np.maximum(x - x[j], 0) for j in c])
        sw = np.sqrt(w)
        beta = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)[0]
        sse = np.sum(((y - X @ beta) * sw) ** 2)
        if sse < best[0]:
            best = (sse, [x[j] for j in c])
    return best


def test_grid_search_equals_brute_force_least_squares():
    rng = np.random.default_rng(3)
    x = np.arange(2000, 2016, dtype=float)
    for rep in range(5):
        rate = np.exp(3 + rng.normal(0, 0.05, len(x)) + 0.03 * np.maximum(x - 2006, 0))
        w = rng.uniform(20, 200, len(x))
        df = pd.DataFrame({"year": x, "r": rate, "se": rate / np.sqrt(w)})
        for k in (1, 2, 3):
            sse, taus = _brute_force_wls(x, np.log(rate), w, k)
            res = joinpoint(df, rate="r", se="se", count=None, population=None, method="nci",
                            variance="se", n_joinpoints=k)
            assert res.joinpoints == taus and res.sse == pytest.approx(sse, rel=1e-9)


def test_bic_table_follows_nci_formulae():
    # BIC(k) = ln(SSE/n) + (2k+2) ln(n)/n and BIC3 with 3k+2 (NCI Joinpoint help, model selection).
    rng = np.random.default_rng(5)
    x = np.arange(1, 19, dtype=float)
    y = 2 + 0.05 * x - 0.1 * np.maximum(x - 9, 0) + rng.normal(0, 0.02, len(x))
    df = pd.DataFrame({"t": x, "r": np.exp(y)})
    res = joinpoint(df, time="t", rate="r", count=None, population=None, method="nci",
                    variance="constant", max_joinpoints=2, selection="bic")
    n = len(x)
    for k in range(3):
        sse = _brute_force_wls(x, y, np.ones(n), k)[0]
        row = res.selection.set_index("k").loc[k]
        assert row["bic"] == pytest.approx(np.log(sse / n) + (2 * k + 2) * np.log(n) / n, rel=1e-9)
        assert row["bic3"] == pytest.approx(np.log(sse / n) + (3 * k + 2) * np.log(n) / n, rel=1e-9)
    assert res.joinpoints == [9]


def test_exact_segmented_series_gives_exact_apcs():
    years = np.arange(2000, 2015)
    rate = np.where(years <= 2006, 50 * 1.04 ** (years - 2000), 50 * 1.04 ** 6 * 0.98 ** (years - 2006))
    res = joinpoint(pd.DataFrame({"year": years, "r": rate}), rate="r", count=None, population=None,
                    method="nci", variance="constant", n_joinpoints=1)
    assert res.joinpoints == [2006]
    np.testing.assert_allclose(res.segments["apc"], [4.0, -2.0], atol=1e-9)
    # AAPC over the whole range: length-weighted mean slope, (6 ln1.04 + 8 ln0.98)/14.
    expect = 100 * (np.exp((6 * np.log(1.04) + 8 * np.log(0.98)) / 14) - 1)
    assert res.aapc()["aapc"].iloc[0] == pytest.approx(expect, abs=1e-9)


def test_glm_fit_has_minimum_deviance_over_all_placements():
    import statsmodels.api as sm

    rng = np.random.default_rng(11)
    years = np.arange(2005, 2019, dtype=float)
    pop = np.full(len(years), 2e6)
    mu = pop * 3e-4 * np.exp(0.05 * (years - 2005) - 0.09 * np.maximum(years - 2012, 0))
    df = pd.DataFrame({"year": years, "deaths": rng.poisson(mu), "population": pop})
    res = joinpoint(df, n_joinpoints=1, method="glm")
    devs = {}
    for j in range(2, len(years) - 2):
        X = np.column_stack([np.ones_like(years), years - 2005, np.maximum(years - years[j], 0)])
        devs[years[j]] = sm.GLM(df["deaths"], X, family=sm.families.Poisson(), offset=np.log(pop)).fit().deviance
    assert res.joinpoints == [int(min(devs, key=devs.get))]
    assert res.fits[0].deviance == pytest.approx(min(devs.values()), rel=1e-7)


def test_one_large_change_is_recovered_in_most_replications():
    # Truth: +5 %/yr to 2010, then -5 %/yr; about 300 deaths a year. Poisson GLM, BIC selection.
    years = np.arange(2001, 2021, dtype=float)
    pop = np.full(len(years), 1e6)
    mu = pop * 3e-4 * np.exp(np.log(1.05) * (years - 2001) - 2 * np.log(1.05) * np.maximum(years - 2010, 0))
    hits, slopes = 0, []
    for seed in range(40):
        d = pd.DataFrame({"year": years, "deaths": np.random.default_rng(seed).poisson(mu), "population": pop})
        with warnings.catch_warnings():  # the 5 % test flags ~2 of 40 Poisson series as overdispersed
            warnings.simplefilter("ignore", OverdispersionWarning)
            res = joinpoint(d, method="glm", selection="bic", max_joinpoints=2)
        hits += len(res.joinpoints) == 1 and abs(res.joinpoints[0] - 2010) <= 1
        if res.joinpoints == [2010]:
            slopes.append(res.segments["slope"].to_numpy())
    assert hits / 40 >= 0.8
    np.testing.assert_allclose(np.mean(slopes, axis=0), [np.log(1.05), -np.log(1.05)], atol=0.01)


def test_groups_are_fitted_independently_and_keyed():
    years = np.arange(2000, 2012)
    a = pd.DataFrame({"g": "a", "year": years, "r": 10 * 1.03 ** (years - 2000)})
    b = pd.DataFrame({"g": "b", "year": years, "r": np.where(years <= 2005, 10 * 1.05 ** (years - 2000),
                                                              10 * 1.05 ** 5 * 0.95 ** (years - 2005))})
    data = pd.concat([b, a]).sample(frac=1, random_state=0)       # row order must not matter
    res = joinpoint(data, rate="r", count=None, population=None, method="nci", variance="constant",
                    max_joinpoints=1, selection="bic", by="g")
    assert res.joinpoints["b"] == [2005] and res.joinpoints["a"] == []
    assert res.segments.groupby("g").size().to_dict() == {"a": 1, "b": 2}


def test_too_many_joinpoints_is_a_clear_error():
    df = pd.DataFrame({"year": range(2015, 2021), "deaths": [5, 6, 7, 6, 5, 4], "population": 1e5})
    with pytest.raises(ValueError, match="at most 1 can"):
        joinpoint(df, n_joinpoints=2)
    with pytest.warns(CdrWarning, match="lowered to 1"):
        joinpoint(df, max_joinpoints=3, selection="bic")


def test_duplicate_times_are_rejected_with_the_fix():
    df = pd.DataFrame({"year": [2019, 2019, 2020, 2021], "deaths": [1, 2, 3, 4], "population": 1e5})
    with pytest.raises(ValueError, match="appears more than once"):
        joinpoint(df, n_joinpoints=0)


def test_glm_permutation_is_seeded():
    years = np.arange(2008, 2020, dtype=float)
    df = pd.DataFrame({"year": years, "deaths": [30, 33, 35, 40, 44, 47, 45, 41, 38, 37, 33, 31],
                       "population": 1e6})
    a = joinpoint(df, max_joinpoints=1, n_permutations=99, seed=4)
    b = joinpoint(df, max_joinpoints=1, n_permutations=99, seed=4)
    pd.testing.assert_frame_equal(a.tests, b.tests)
    assert a.tests["level"].iloc[0] == pytest.approx(0.05)


def test_results_print_tabulate_and_plot(opioid_fit):
    assert "Joinpoint regression (nci)" in str(opioid_fit.summary())
    assert list(opioid_fit.to_frame().columns[:6]) == ["segment", "start", "end", "apc", "apc_lower_95", "apc_upper_95"]
    ax = opioid_fit.plot()
    assert "joinpoints" in ax.get_title() and ax.get_xlabel() == "year"


# --- Weighted BIC --------------------------------------------------------------------------------
# Published run 2 again, all twelve England series: Joinpoint 5.x run of 2024-08-12 with its defaults
# (max joinpoints from the number of points: 3 for 17; model selection by weighted BIC, the default
# since Joinpoint 5.0). "Final Selected Model" and the APCs (4 decimals) of
# Cancer_Mortality_Data_Rolling_Joinpoint.txt.
UK_WBIC = {
    "men_all": ([2006, 2013], [-1.5527, -1.0906, -1.4960]),
    "women_all": ([2013], [-0.8012, -1.1203]),
    "breast": ([2007, 2010, 2014], [-1.9573, -2.4128, -1.9059, -1.3555]),
    "colorectal_men": ([2015], [-1.6452, -0.8746]),
    "colorectal_women": ([2007, 2010], [-1.1386, -2.0377, -0.7896]),
    "lung_men": ([2004, 2008, 2015], [-2.8662, -1.3800, -2.3120, -3.4150]),
    "lung_women": ([2004, 2007, 2015], [0.2669, 2.3303, -0.1701, -2.4981]),
    "oes_men": ([2004, 2010], [0.4138, -0.5417, -1.0107]),
    "oes_women": ([], [-1.5177]),
    "pancreas_men": ([], [0.5834]),
    "pancreas_women": ([2008], [1.3525, 0.2313]),
    "prostate": ([2008], [-1.6292, -0.9566]),
}


def _uk_selected(selection):
    data = pd.read_csv(DATA / "joinpoint_nci_uk_cancer_mortality.csv")
    return joinpoint(data, rate="asr", count=None, population=None, method="nci", variance="constant",
                     max_joinpoints=3, selection=selection, by="series")


def test_wbic_reproduces_published_joinpoint_5_selections():
    res = _uk_selected("wbic")
    seg = res.segments
    for series, (jps, apcs) in UK_WBIC.items():
        assert res.joinpoints[series] == jps, series
        np.testing.assert_allclose(seg.loc[seg["series"] == series, "apc"], apcs, atol=6e-5, err_msg=series)


def test_bic_and_bic3_do_not_reproduce_that_run():
    # The run's model selection method is not printed; only WBIC gives all twelve selections
    # (BIC and BIC3 each miss three), which is what identifies it.
    for selection in ("bic", "bic3"):
        res = _uk_selected(selection)
        misses = [s for s, (jps, _) in UK_WBIC.items() if res.joinpoints[s] != jps]
        assert len(misses) == 3, (selection, misses)


def test_wbic_follows_the_nci_definition_by_hand():
    # NCI Joinpoint help, "Weighted BIC (WBIC)": for joinpoint i, with y_i the observations after
    # tau_{i-1} up to and including tau_{i+1} (tau_0 before the first, tau_{k+1} the last observation),
    # R2_i = {y'(I-H0)z}^2 / [{y'(I-H0)y}{z'(I-H0)z}], H0 the hat matrix of [1, x], z = (x - tau_i)+;
    # WBIC(k) = ln(SSE_k/n) + ((2 + max_i R2_i) k + 2) ln(n)/n = (1 - w) BIC + w BIC3 with w = max R2_i.
    x = np.arange(1.0, 13.0)
    y = np.array([2.00, 2.11, 2.18, 2.32, 2.41, 2.47, 2.43, 2.36, 2.33, 2.22, 2.19, 2.08])
    res = joinpoint(pd.DataFrame({"t": x, "r": np.exp(y)}), time="t", rate="r", count=None,
                    population=None, method="nci", variance="constant", max_joinpoints=2, selection="wbic")
    n = len(x)
    table = res.selection.set_index("k")

    def r2(lo, hi, tau):          # window: indices lo..hi inclusive
        xs, ys = x[lo:hi + 1], y[lo:hi + 1]
        X0 = np.column_stack([np.ones_like(xs), xs])
        M = np.eye(len(xs)) - X0 @ np.linalg.inv(X0.T @ X0) @ X0.T
        z = np.maximum(xs - tau, 0)
        return (ys @ M @ z) ** 2 / ((ys @ M @ ys) * (z @ M @ z))

    for k in (1, 2):
        taus = [float(v) for v in table.loc[k, "joinpoints"].split(", ")]
        idx = [int(np.flatnonzero(x == t)[0]) for t in taus]
        bounds = [-1, *idx, n - 1]
        w = max(r2(bounds[i - 1] + 1, bounds[i + 1], taus[i - 1]) for i in range(1, k + 1))
        sse = _brute_force_wls(x, y, np.ones(n), k)[0]
        bic = np.log(sse / n) + (2 * k + 2) * np.log(n) / n
        bic3 = np.log(sse / n) + (3 * k + 2) * np.log(n) / n
        assert table.loc[k, "wbic_weight"] == pytest.approx(w, rel=1e-9)
        assert table.loc[k, "wbic"] == pytest.approx((1 - w) * bic + w * bic3, rel=1e-9)
    assert table.loc[0, "wbic"] == pytest.approx(table.loc[0, "bic"], rel=1e-12)   # no weight at k = 0


# --- GLM: negative binomial and covariates --------------------------------------------------------
def _nb_series(seed, alpha=0.03, years=np.arange(2004, 2024.0), base=250.0):
    rng = np.random.default_rng(seed)
    mu = base * np.exp(0.04 * (years - years[0]) - 0.08 * np.maximum(years - 2013, 0))
    deaths = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu))
    return pd.DataFrame({"year": years, "deaths": deaths, "population": 1e6})


def test_overdispersed_counts_use_a_negative_binomial_and_say_so():
    with pytest.warns(OverdispersionWarning, match="negative binomial NB2, alpha ="):
        res = joinpoint(_nb_series(0), selection="bic", max_joinpoints=2)
    fam = res.families.iloc[0]
    assert fam["family"] == "negbin" and 0 < fam["alpha"] < 1 and fam["overdispersion_p"] < 0.05
    assert (res.segments["method"] == "negbin").all() and res.aapc()["method"].iloc[0] == "negbin"
    assert "negbin" in str(res.summary())


def test_negative_binomial_grid_has_minimum_deviance_over_all_placements():
    # statsmodels GLM with NegativeBinomial(alpha) at every placement, alpha as reported by the fit.
    import statsmodels.api as sm

    d = _nb_series(3)
    res = joinpoint(d, n_joinpoints=1, family="negbin")   # asked for: no warning
    assert res.families["family"].iloc[0] == "negbin"
    alpha = res.families["alpha"].iloc[0]
    years = d["year"].to_numpy()
    devs = {}
    for j in range(2, len(years) - 2):
        X = np.column_stack([np.ones_like(years), years - years[0], np.maximum(years - years[j], 0)])
        fit = sm.GLM(d["deaths"], X, family=sm.families.NegativeBinomial(alpha=alpha),
                     offset=np.log(d["population"])).fit()
        devs[years[j]] = fit.deviance
    assert res.joinpoints == [int(min(devs, key=devs.get))]
    assert res.fits[0].deviance == pytest.approx(min(devs.values()), rel=1e-6)


def test_negative_binomial_alpha_is_the_maximum_likelihood_estimate():
    # statsmodels' NegativeBinomial (NB2) maximum likelihood, by Nelder-Mead, on the largest model.
    import statsmodels.api as sm

    for seed in (0, 5, 32):
        d = _nb_series(seed)
        res = joinpoint(d, n_joinpoints=1, family="negbin")
        years = d["year"].to_numpy()
        tau = res.joinpoints[0]
        X = np.column_stack([np.ones_like(years), years - years[0], np.maximum(years - tau, 0)])
        ref = sm.NegativeBinomial(d["deaths"].to_numpy(float), X, loglike_method="nb2",
                                  offset=np.log(d["population"].to_numpy())).fit(disp=0, method="nm", maxiter=5000)
        assert res.families["alpha"].iloc[0] == pytest.approx(ref.params[-1], rel=1e-3)


def test_negative_binomial_limits_cover_the_truth():
    # NB2 counts (alpha 0.03, ~150 a year; Poisson limits would be ~2.5x too narrow) with a true
    # APC of -2 %/yr and no joinpoint (n_joinpoints=0). 200 seeded replications: coverage SE ~1.5 %,
    # so 0.90-0.99 is about +-3 SE around 0.95; the NB family is chosen in most replications.
    years = np.arange(2004, 2019.0)
    hits, slopes, fams = [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OverdispersionWarning)
        for seed in range(200):
            rng = np.random.default_rng(seed)
            mu = 150 * 0.98 ** (years - years[0])
            d = pd.DataFrame({"year": years, "deaths": rng.negative_binomial(1 / 0.03, 1 / (1 + 0.03 * mu)),
                              "population": 1e6})
            res = joinpoint(d, n_joinpoints=0, family="negbin")
            seg = res.segments.iloc[0]
            hits.append(seg["apc_lower_95"] <= -2.0 <= seg["apc_upper_95"])
            slopes.append(seg["slope"])
            fams.append(res.families["family"].iloc[0])
    assert 0.90 <= np.mean(hits) <= 0.99
    assert np.mean(slopes) == pytest.approx(np.log(0.98), abs=0.004)
    assert np.mean(np.asarray(fams) == "negbin") >= 0.9


def test_failed_negative_binomial_falls_back_to_quasi_poisson(monkeypatch):
    import cdr.trends._joinpoint as jp

    monkeypatch.setattr(jp, "_nb_alpha", lambda *a, **k: None)
    with pytest.warns(OverdispersionWarning, match="quasi-Poisson"):
        res = joinpoint(_nb_series(1), selection="bic", max_joinpoints=1)
    assert res.families["family"].iloc[0] == "quasipoisson" and (res.segments["method"] == "quasipoisson").all()


def _shifted_series(seed, shift=1.15, years=np.arange(2004, 2024.0)):
    # -4 %/yr to 2012, then +3 %/yr, ~1,000 deaths a year; the population series steps at 2021, so
    # observed rates jump by `shift` from 2021 (a level shift, not a change in the trend).
    rng = np.random.default_rng(seed)
    pop = np.full(len(years), 5e6)
    eta = np.log(2e-4) + np.log(0.96) * (years - years[0]) + (np.log(1.03) - np.log(0.96)) * np.maximum(years - 2012, 0)
    mu = pop * np.exp(eta) * np.where(years >= 2021, shift, 1.0)
    d = pd.DataFrame({"year": years, "deaths": rng.poisson(mu), "population": pop})
    return d.assign(break_2021=population_break(d["year"]))


def test_level_shift_covariate_recovers_trend_and_shift():
    # 40 seeded replications, BIC with up to 2 joinpoints.
    rrs, found, slopes = [], 0, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OverdispersionWarning)
        for seed in range(40):
            res = joinpoint(_shifted_series(seed), covariates="break_2021", selection="bic", max_joinpoints=2)
            rrs.append(res.covariates["rate_ratio"].iloc[0])
            found += res.joinpoints == [2012] or (len(res.joinpoints) == 1 and abs(res.joinpoints[0] - 2012) <= 1)
            if res.joinpoints == [2012]:
                slopes.append(res.segments["slope"].to_numpy())
    assert found / 40 >= 0.8
    assert np.exp(np.mean(np.log(rrs))) == pytest.approx(1.15, abs=0.02)
    np.testing.assert_allclose(np.mean(slopes, axis=0), [np.log(0.96), np.log(1.03)], atol=0.005)


def test_without_the_covariate_the_shift_is_read_as_a_trend_change():
    # Same truth without adjustment: the step is absorbed by the segments (a late joinpoint or a
    # biased last APC), which is why the covariate exists.
    d = _shifted_series(0, shift=1.3)
    with pytest.warns(OverdispersionWarning):          # the misfit shows up as overdispersion too
        plain = joinpoint(d, selection="bic", max_joinpoints=2)
    adjusted = joinpoint(d, selection="bic", max_joinpoints=2, covariates=["break_2021"])
    assert adjusted.joinpoints == [2012]
    assert plain.segments["apc"].iloc[-1] > adjusted.segments["apc"].iloc[-1] + 1.0
    assert adjusted.covariates["rate_ratio"].iloc[0] == pytest.approx(1.3, abs=0.06)
    fitted = adjusted.fitted.set_index("year")["fitted_rate"]
    assert fitted[2021] / fitted[2020] > 1.2          # the fitted line steps at the break


def test_covariates_are_checked():
    d = _shifted_series(0)
    with pytest.raises(ValueError, match="apply to method='glm'"):
        joinpoint(d.assign(r=1.0), rate="r", count=None, population=None, method="nci",
                  variance="constant", covariates="break_2021", n_joinpoints=0)
    with pytest.raises(ValueError, match="collinear"):
        joinpoint(d[d["year"] < 2021], covariates="break_2021", n_joinpoints=0)


def test_a_ready_made_rate_and_se_need_no_count_or_population_columns():
    # Issue 14: rate=/se= with method="nci", variance="se" still demanded 'deaths'/'population'.
    # Reference: with one segment (n_joinpoints=0) the NCI WLS fit of ln(rate) on time with weights
    # rate^2/se^2 is ordinary weighted least squares (numpy, closed form).
    years = np.arange(2010, 2020.0)
    rate = 50 * 0.97 ** (years - 2010) * np.exp(np.sin(years) / 50)
    se = rate * 0.05
    frame = pd.DataFrame({"year": years, "r": rate, "s": se})
    res = joinpoint(frame, rate="r", se="s", method="nci", variance="se", n_joinpoints=0)
    w = (rate / se) ** 2
    X = np.column_stack([np.ones_like(years), years])
    beta = np.linalg.solve(X.T @ (X * w[:, None]), X.T @ (w * np.log(rate)))
    assert res.segments.loc[0, "apc"] == pytest.approx(100 * np.expm1(beta[1]), rel=1e-9)
    assert res.spec["count"] is None and res.spec["population"] is None


def test_a_series_of_zeros_is_a_clear_error():
    # Issue 14: all-zero counts raised a raw statsmodels error.
    from cdr.errors import CdrError

    zeros = pd.DataFrame({"year": np.arange(2010, 2020), "deaths": 0, "population": 1e5})
    with pytest.raises(CdrError, match="no deaths at all") as info:
        joinpoint(zeros)
    assert isinstance(info.value, ValueError)
