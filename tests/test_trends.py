"""cdr.trends.fit_trend / compare_to / population_break against closed forms and simulation."""
import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from cdr.errors import OverdispersionWarning  # noqa: E402
from cdr.trends import compare_to, fit_trend, population_break  # noqa: E402


def test_two_points_are_too_few_for_a_trend():
    df = pd.DataFrame({"year": [2019, 2022], "deaths": [50, 80], "population": [1e5, 1.2e5]})
    with pytest.raises(ValueError, match="at least 3 are needed"):
        fit_trend(df, family="poisson")


def test_three_point_symmetric_series_matches_closed_form():
    # Equally spaced t = -1, 0, 1 and counts (y1, y2, y3) with equal populations: the score equations
    # give sum(y) = sum(mu) and y3 - y1 = mu3 - mu1; for y = (a, a*g, a*g^2) the fit is exact with
    # slope ln(g); the Fisher information is [[S, m3 - m1], [m3 - m1, m1 + m3]] (S = sum mu), so
    # var(slope) = S / (S (m1 + m3) - (m3 - m1)^2).
    g, a = 1.1, 200.0
    df = pd.DataFrame({"year": [2020, 2021, 2022], "deaths": [a, a * g, a * g * g], "population": 1e6})
    row = fit_trend(df, family="poisson").apc.iloc[0]
    m1, m2, m3 = a, a * g, a * g * g
    S = m1 + m2 + m3
    se = np.sqrt(S / (S * (m1 + m3) - (m3 - m1) ** 2))
    assert row["apc"] == pytest.approx(10.0, abs=1e-8)
    assert row["apc_lower"] == pytest.approx(100 * (np.exp(np.log(g) - 1.959963985 * se) - 1), abs=1e-4)
    assert row["apc_upper"] == pytest.approx(100 * (np.exp(np.log(g) + 1.959963985 * se) - 1), abs=1e-4)


def _simulate(apc, seed, years=range(2010, 2020), deaths0=150.0):
    years = np.asarray(list(years), dtype=float)
    rng = np.random.default_rng(seed)
    pop = rng.uniform(0.9e6, 1.1e6, len(years))
    mu = deaths0 * pop / 1e6 * (1 + apc / 100) ** (years - years[0])
    return pd.DataFrame({"year": years, "deaths": rng.poisson(mu), "population": pop})


def test_apc_is_unbiased_and_intervals_cover_the_truth():
    # 1,000 seeded replications: coverage SE ~0.7 %, so 0.93-0.97 is about +-2.9 SE around 0.95
    # (measured: 0.942). The APC's sampling SD is ~0.9, so the mean is within +-0.1 (~3.5 SE).
    fits = pd.concat([fit_trend(_simulate(-2.0, s), family="poisson").apc for s in range(1000)])
    coverage = np.mean((fits["apc_lower"] <= -2.0) & (-2.0 <= fits["apc_upper"]))
    assert 0.93 <= coverage <= 0.97
    assert fits["apc"].mean() == pytest.approx(-2.0, abs=0.1)


def test_overdispersed_counts_switch_to_negative_binomial_with_a_warning():
    rng = np.random.default_rng(7)
    years = np.arange(2005, 2020, dtype=float)
    mu = 200 * 0.98 ** (years - 2005)
    alpha = 0.15
    deaths = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu))
    df = pd.DataFrame({"year": years, "deaths": deaths, "population": 1e6})
    with pytest.warns(OverdispersionWarning, match="negative binomial"):
        res = fit_trend(df, family="auto")
    row = res.apc.iloc[0]
    assert row["family"] == "negbin" and row["dispersion"] > 2 and row["alpha"] > 0
    poisson = fit_trend(df, family="poisson").apc.iloc[0]
    assert row["apc_upper"] - row["apc_lower"] > poisson["apc_upper"] - poisson["apc_lower"]


def test_population_break_covariate_absorbs_a_denominator_step():
    # True rate falls 2 %/yr; the recorded population is 10 % too high from 2021 (rebasing).
    years = np.arange(2015, 2025)
    true_pop = np.full(len(years), 1e6)
    deaths = 300 * 0.98 ** (years - 2015)            # expected counts, no noise
    recorded = true_pop * np.where(years >= 2021, 1.1, 1.0)
    df = pd.DataFrame({"year": years, "deaths": deaths, "population": recorded})
    df["break_2021"] = population_break(df["year"])
    naive = fit_trend(df, family="poisson").apc.iloc[0]["apc"]
    adjusted = fit_trend(df, family="poisson", covariates="break_2021")
    assert adjusted.apc.iloc[0]["apc"] == pytest.approx(-2.0, abs=1e-8)
    assert adjusted.covariates.iloc[0]["rate_ratio"] == pytest.approx(1 / 1.1, rel=1e-8)
    assert abs(naive + 2.0) > 0.3


def test_rows_are_summed_within_group_and_time_and_order_does_not_matter():
    base = _simulate(-2.0, 1)
    halves = pd.concat([base.assign(deaths=base["deaths"] // 2, population=base["population"] / 2),
                        base.assign(deaths=base["deaths"] - base["deaths"] // 2, population=base["population"] / 2)])
    original = halves.copy()
    a = fit_trend(base, family="poisson").apc
    b = fit_trend(halves.sample(frac=1, random_state=2), family="poisson").apc
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(halves, original)   # input untouched


def test_groups_come_back_first_and_unchanged():
    data = pd.concat([_simulate(-2.0, 3).assign(region_code="E12000001"),
                      _simulate(1.0, 4).assign(region_code="E12000002")])
    res = fit_trend(data, by="region_code", family="poisson")
    assert res.apc.columns[0] == "region_code"
    assert res.apc["region_code"].tolist() == ["E12000001", "E12000002"]
    assert set(res.fitted.columns[:2]) == {"region_code", "year"}


def test_compare_to_recovers_a_known_slope_ratio():
    years = np.arange(2015, 2022)
    nat = pd.DataFrame({"year": years, "deaths": 3000.0, "population": 1e7})
    reg = pd.DataFrame({"region": "A", "year": years, "deaths": 300 * 1.05 ** (years - 2015), "population": 1e6})
    out = compare_to(reg, nat, by="region", family="poisson")
    row = out.slopes.iloc[0]
    assert row["slope_ratio"] == pytest.approx(1.05, rel=1e-8)
    assert row["reference_apc"] == pytest.approx(0.0, abs=1e-8)
    assert row["p_value"] < 0.05
    # rate ratio at each year is the observed one when both fits are exact
    np.testing.assert_allclose(out.ratios["rate_ratio"], 1.05 ** (years - 2015), rtol=1e-8)


def test_compare_to_accepts_trend_results():
    data = pd.concat([_simulate(-2.0, 5).assign(r="x"), _simulate(-2.0, 6).assign(r="y")])
    nat = data.groupby("year", as_index=False)[["deaths", "population"]].sum()
    out = compare_to(fit_trend(data, by="r", family="poisson"), fit_trend(nat, family="poisson"))
    assert out.slopes["r"].tolist() == ["x", "y"]


def test_conf_given_as_percent_is_explained():
    with pytest.raises(ValueError, match="Did you mean 0.95"):
        fit_trend(_simulate(-2.0, 0), conf=95)


def test_negative_count_names_the_row():
    df = _simulate(-2.0, 0)
    df.loc[3, "deaths"] = -1
    with pytest.raises(ValueError, match="negative 'deaths'"):
        fit_trend(df)


def test_result_prints_and_plots():
    res = fit_trend(_simulate(-2.0, 0), family="poisson")
    assert "annual percent change" in str(res.summary()).lower()
    assert "TrendResult(family='poisson'" in repr(res)
    ax = res.plot()
    assert ax.get_ylabel().startswith("deaths per 100,000")
