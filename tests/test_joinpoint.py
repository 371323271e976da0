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
from cdr.trends import joinpoint  # noqa: E402

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
        "apc_lower": [-2.577, 8.526, -10.662, -15.688],
        "apc_upper": [1.126, 10.164, -2.032, -11.008],
        "p_value": [0.42077, 0.00000, 0.00608, 0.00000],
        "slope_se": [0.009134, 0.003668, 0.022575, 0.013226],
    })
    seg = opioid_fit.segments
    assert seg["start"].tolist() == [1979, 1993, 2010, 2015] and seg["end"].tolist() == [1993, 2010, 2015, 2019]
    for col, tol in [("apc", 6e-4), ("apc_lower", 6e-4), ("apc_upper", 6e-4), ("p_value", 5e-5), ("slope_se", 2e-6)]:
        np.testing.assert_allclose(seg[col], published[col], atol=tol, err_msg=col)
    assert (seg["df"] == 41 - 3 * 3 - 2).all()


def test_nci_reproduces_published_aapc(opioid_fit):
    # .aapc.txt: Full Range 1979-2019 AAPC 1.273 (0.339, 2.216), test statistic 2.676, p 0.00745.
    row = opioid_fit.aapc().iloc[0]
    assert row["aapc"] == pytest.approx(1.273, abs=6e-4)
    assert row["aapc_lower"] == pytest.approx(0.339, abs=6e-4)
    assert row["aapc_upper"] == pytest.approx(2.216, abs=6e-4)
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
    assert list(opioid_fit.to_frame().columns[:6]) == ["segment", "start", "end", "apc", "apc_lower", "apc_upper"]
    ax = opioid_fit.plot()
    assert "joinpoints" in ax.get_title() and ax.get_xlabel() == "year"
