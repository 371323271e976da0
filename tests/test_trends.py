"""cdr.trends.fit_trend / compare_to / population_break against closed forms and simulation."""
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from cdr.errors import CdrError, OverdispersionWarning, SmallNumbersWarning  # noqa: E402
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
    assert row["apc_lower_95"] == pytest.approx(100 * (np.exp(np.log(g) - 1.959963985 * se) - 1), abs=1e-4)
    assert row["apc_upper_95"] == pytest.approx(100 * (np.exp(np.log(g) + 1.959963985 * se) - 1), abs=1e-4)


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
    coverage = np.mean((fits["apc_lower_95"] <= -2.0) & (-2.0 <= fits["apc_upper_95"]))
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
    assert row["apc_upper_95"] - row["apc_lower_95"] > poisson["apc_upper_95"] - poisson["apc_lower_95"]


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


def test_rows_sharing_a_time_are_refused_and_order_does_not_matter():
    # Two half-series per year: summing them would be a guess about what the rows are, so the fit
    # refuses and says which column tells them apart; split by that column, order does not matter.
    base = _simulate(-2.0, 1)
    halves = pd.concat([base.assign(half="a", deaths=base["deaths"] // 2, population=base["population"] / 2),
                        base.assign(half="b", deaths=base["deaths"] - base["deaths"] // 2,
                                    population=base["population"] / 2)])
    original = halves.copy()
    with pytest.raises(CdrError, match=r"rows share a year.*\['half'\].*by=\['half'\]") as info:
        fit_trend(halves, family="poisson")
    assert isinstance(info.value, ValueError)
    a = fit_trend(halves, by="half", family="poisson").apc
    b = fit_trend(halves.sample(frac=1, random_state=2), by="half", family="poisson").apc
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(halves, original)   # input untouched


def _poisson_apc(frame, time):
    """APC of a Poisson log-linear fit straight from statsmodels (the independent reference)."""
    import statsmodels.api as sm

    X = sm.add_constant(frame[time].to_numpy(float))
    fit = sm.GLM(frame["deaths"].to_numpy(float), X, family=sm.families.Poisson(),
                 offset=np.log(frame["population"].to_numpy(float))).fit()
    return 100 * np.expm1(fit.params[1])


def test_the_roll_up_output_is_accepted_as_it_is():
    # Issue 14: fit_trend(aggregate(records, level="nation")) failed with "column(s) ['year'] not in data".
    from cdr.aggregate import aggregate
    from cdr.synthetic import generate_records

    recs = generate_records(years=range(2018, 2023), seed=3)   # years with population estimates
    nation = aggregate(recs, level="nation")
    res = fit_trend(nation, family="poisson")
    assert res.spec["time"] == "period_start"
    assert res.apc.loc[0, "apc"] == pytest.approx(_poisson_apc(nation, "period_start"), rel=1e-8)
    # By category: fitting without by= would sum ten rows per year (population ten times over, rates
    # ten times too low): refused, naming the column; with by= each category's rate is its own.
    by_cat = aggregate(recs, level="nation", by=["category"])
    with pytest.raises(CdrError, match="category"):
        fit_trend(by_cat, family="poisson")
    cats = fit_trend(by_cat[by_cat["category"].isin(["perinatal_neonatal", "chromosomal_genetic_congenital"])],
                     by="category", family="poisson")
    merged = cats.fitted.merge(by_cat, on=["category", "period_start"], suffixes=("", "_agg"))
    assert np.allclose(merged["rate"], merged["deaths_agg"] / merged["population_agg"] * 1e5)
    assert np.allclose(merged["population"], nation.set_index("period_start").loc[merged["period_start"], "population"])
    # Overlapping 3-year windows share deaths: not a series of independent counts.
    with pytest.raises(CdrError, match="overlap.*pool=1"):
        fit_trend(aggregate(recs, level="nation", pool=3), family="poisson")


def test_a_frame_with_two_different_time_columns_is_ambiguous():
    df = _simulate(-2.0, 5).assign(period_start=lambda d: d["year"] - 1)
    with pytest.raises(CdrError, match="both 'period_start' and 'year'"):
        fit_trend(df)
    assert fit_trend(df, time="year", family="poisson").spec["time"] == "year"


def test_an_absurd_annual_change_from_a_handful_of_deaths_is_flagged():
    # Issue 14: deaths 0,0,0,0,0,3 gave an APC of 3.99e7 % with no warning.
    df = pd.DataFrame({"year": range(2018, 2024), "deaths": [0, 0, 0, 0, 0, 3], "population": 1e5})
    with pytest.warns(SmallNumbersWarning, match="small numbers"):
        res = fit_trend(df, family="poisson")
    assert "unreliable" in res.apc.loc[0, "note"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallNumbersWarning)   # a well-populated series is not flagged
        fit_trend(_simulate(-2.0, 1), family="poisson")


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


def test_compare_to_refuses_a_reference_with_several_rows_per_year():
    # A reference by category (ten rows a year) summed silently would count the population ten times.
    years = np.arange(2015, 2020)
    ref = pd.concat([pd.DataFrame({"year": years, "deaths": 300.0, "population": 1e7, "category": c})
                     for c in ("infection", "malignancy")])
    grp = pd.DataFrame({"year": years, "deaths": 30.0, "population": 1e6})
    with pytest.raises(CdrError, match=r"rows share a year.*\['category'\]"):
        compare_to(grp, ref)
