"""cdr.reference: targets table and the national rate model against published figures."""
import numpy as np
import pandas as pd
import pytest

from cdr import data, reference


def test_targets_are_sourced_or_marked_as_assumptions():
    t = reference.targets()
    assert set(t["kind"]) == {"published", "assumption"}
    published = t[t["kind"] == "published"]
    assert published["source_url"].str.startswith("http").all() and published["value"].notna().all()
    assumed = t[t["kind"] == "assumption"]
    assert assumed["source_url"].isna().all() and assumed["note"].str.startswith("ASSUMPTION").all()
    # Published values as read in cdr/_data/reference/national_figures*.md
    row = t.set_index(["target", "period"])["value"]
    assert row[("share_male", "YE 31 Mar 2020")] == 56.5
    assert row[("deaths_reviewed", "YE 31 Mar 2020")] == 2738
    assert row[("rr_per_imd_decile", "Apr 2019-Mar 2020")] == 1.08
    assert row[("deaths_0_17", "YE 31 Mar 2023")] == 3743


def test_national_rates_reproduce_the_published_shares():
    r = reference.national_rates()
    total = r["deaths"].sum()
    assert total == pytest.approx(29.3e-5 * 11_886_906, rel=1e-9)   # NCMD rate x ONS mid-2022 population
    assert r.loc[r["age_band"] == "neonatal", "deaths"].sum() / total == pytest.approx(0.42)
    assert r.loc[r["age_band"].isin(["neonatal", "postneonatal"]), "deaths"].sum() / total == pytest.approx(0.63)
    assert r.loc[r["sex"] == "male", "deaths"].sum() / total == pytest.approx(0.565)
    assert np.allclose(r["rate"] * r["population"], r["deaths"])
    older = r[~r["age_band"].isin(["neonatal", "postneonatal"])]
    rate_1_17 = older["deaths"].sum() / older["population"].sum() * 1e5
    assert abs(rate_1_17 - 11.2) < 1.5     # OHID Fingertips 1-17, 2021-23 (published check of the split)


def test_expected_deaths_total_and_gradient():
    e = reference.expected_deaths(model="national")
    assert len(e) == 153 and e["la_code"].is_unique
    assert e["expected_deaths"].sum() == pytest.approx(29.3e-5 * 11_886_906, rel=1e-9)
    detail = reference.expected_deaths_detail(model="national")
    mult = detail.groupby("la_code")["deprivation_multiplier"].first()
    areas = data.england_areas().set_index("la_code")
    ranks = areas.loc[mult.index, "imd_avg_rank"]
    assert (np.argsort(np.argsort(mult.to_numpy())) == np.argsort(np.argsort(ranks.to_numpy()))).all()
    assert 0.6 < mult.min() < mult.max() < 1.4


def test_subset_gets_the_same_numbers_as_england():
    full = reference.expected_deaths().set_index("la_code")["expected_deaths"]
    part = reference.expected_deaths(["E09000001", "E06000053"]).set_index("la_code")["expected_deaths"]
    pd.testing.assert_series_equal(part, full.loc[part.index])


def test_decile_distribution_is_nearly_uniform_nationally():
    # IMD deciles are tenths of England's LSOAs, so about 10 % of children live in each.
    t = reference.imd_decile_distribution()
    pop = data.england_areas().set_index("la_code")["child_population"]
    w = t["population_share"] * t["la_code"].map(pop)
    shares = w.groupby(t["imd_decile"]).sum() / w.sum()
    assert (abs(shares - 0.1) < 0.03).all()


def test_tables_by_la_and_region():
    la = reference.expected_deaths_table(level="la")
    region = reference.expected_deaths_table(level="region")
    assert len(la) == 153 and len(region) == 9
    assert region["child_population"].sum() == 11_886_906
    assert region["expected_deaths"].sum() == pytest.approx(la["expected_deaths"].sum())


def test_areas_of_the_2021_vintage_are_recognised():
    e21 = reference.expected_deaths(data.england_areas(2021), model="national")
    assert len(e21) == 152 and "E10000006" in set(e21["la_code"])     # Cumbria (2021)
    assert e21["expected_deaths"].sum() == pytest.approx(29.3e-5 * 11_886_906, rel=1e-9)
    obs21 = reference.expected_deaths(data.england_areas(2021)).set_index("la_code")["expected_deaths"]
    obs23 = reference.expected_deaths().set_index("la_code")["expected_deaths"]
    assert obs21.sum() == pytest.approx(obs23.sum(), rel=1e-9)
    # Cumbria = Cumberland + Westmorland and Furness (same population, same infant relative risk)
    assert obs21["E10000006"] == pytest.approx(obs23[["E06000063", "E06000064"]].sum(), rel=0.01)


# ---------------------------------------------------------------------------------------------
# The observed (empirical-Bayes) model against public figures
# ---------------------------------------------------------------------------------------------
NCMD_NOTIFIED = {2020: 3414, 2021: 3056, 2022: 3454, 2023: 3743, 2024: 3577}   # latest published, YE 31 Mar


def _ons_infant():
    return pd.read_csv("cdr/_data/ons_infant_deaths_registered_births_utla2021_2013_2022.csv", dtype={"la_code": str})


def _pearson_per_df(observed, expected):
    expected = expected * observed.sum() / expected.sum()      # the national level is not under test
    return float(((observed - expected) ** 2 / expected).sum() / (len(observed) - 1))


def test_observed_model_is_the_default_and_calibrated_to_ncmd():
    e = reference.expected_deaths()
    assert e.attrs["model"] == "observed" and len(e) == 153
    assert e["expected_deaths"].sum() == pytest.approx(np.mean(list(NCMD_NOTIFIED.values())), rel=1e-9)
    # infants stay 63 % of deaths (NCMD, published) after calibration
    d = reference.expected_deaths_detail()
    assert d.loc[d["age_band"].isin(["neonatal", "postneonatal"]), "expected_deaths"].sum() / d["expected_deaths"].sum() \
        == pytest.approx(0.63, abs=0.005)


def _held_back_expectation(fit_years, test_years):
    """Expected infant deaths per LA in test_years from a fit on fit_years (births x England rate x LA risk)."""
    ons = _ons_infant()
    fit = reference.infant_model(fit_years).set_index("la_code")
    f = ons[ons["year"].isin(fit_years)]
    rate = f.groupby("year")["infant_deaths_registered"].sum() / f.groupby("year")["live_births"].sum()
    base_fit = (f["live_births"] * f["year"].map(rate)).groupby(f["la_code"]).sum()
    relative = fit["theta"] * fit["expected"] / base_fit.loc[fit.index]     # deprivation x posterior risk
    t = ons[ons["year"].isin(test_years)]
    rate_t = t.groupby("year")["infant_deaths_registered"].sum() / t.groupby("year")["live_births"].sum()
    base_t = (t["live_births"] * t["year"].map(rate_t)).groupby(t["la_code"]).sum()
    observed = t.groupby("la_code")["infant_deaths_registered"].sum()
    return observed, base_t, base_t * relative.loc[base_t.index]


def test_infant_deaths_out_of_sample_dispersion():
    # Fit on 2013-2017, predict the ONS infant deaths registered by LA in 2018-2022 (acceptance: <= 1.5).
    observed, flat, predicted = _held_back_expectation(range(2013, 2018), range(2018, 2023))
    assert len(observed) == 152
    assert _pearson_per_df(observed, predicted) <= 1.5
    assert _pearson_per_df(observed, flat) > 4          # births x national rate alone is far over-dispersed


def test_infant_deaths_2018_2022_against_the_default_expectation():
    # Pearson chi2/df of the 2018-2022 five-year totals against the default model's infant expectation
    # (the issue measured 3.75 for the national model).
    ons = _ons_infant()
    t = ons[ons["year"].between(2018, 2022)]
    observed = t.groupby("la_code")["infant_deaths_registered"].sum()
    births = t.groupby("la_code")["live_births"].sum()
    for model, low, high in (("observed", 0.0, 1.5), ("national", 2.5, np.inf)):
        d = reference.expected_deaths_detail(data.england_areas(2021), vintage=2021, model=model)
        infant = d[d["age_band"].isin(["neonatal", "postneonatal"])]
        per_child = infant.groupby("la_code")["expected_deaths"].sum() / \
            d[d["age_band"] == "neonatal"].groupby("la_code")["population"].sum()
        expected = per_child.loc[observed.index] * births
        assert low < _pearson_per_df(observed, expected) <= high, model


def test_shrinkage_small_areas_to_the_model_large_to_their_data():
    m = reference.infant_model().set_index("la_code")
    alpha = m.attrs["alpha"]
    assert 5 < alpha < 200 and 1.05 < m.attrs["rr_per_imd_decile"] < 1.2
    raw = m["observed"] / m["expected"]
    # Isles of Scilly and City of London: a handful of births, stay within 10 % of the model
    assert (abs(m.loc[["E06000053", "E09000001"], "theta"] - 1) < 0.1).all()
    # Birmingham (160,000 births): within 5 % of its own observed/expected ratio, which is > 1.3
    assert raw["E08000025"] > 1.3 and m.loc["E08000025", "theta"] == pytest.approx(raw["E08000025"], rel=0.05)
    # the posterior mean is the Poisson-gamma formula (alpha + O) / (alpha + E)
    assert np.allclose(m["theta"], (alpha + m["observed"]) / (alpha + m["expected"]))


def test_regions_against_ncmd():
    region = reference.expected_deaths_table(level="region")
    rates = region["expected_rate_per_100000"]
    # NCMD YE Mar 2025: regional rates range from 21.9 to 39.1 per 100,000 (which region is which: not published)
    assert 21.9 - 1 <= rates.min() and rates.max() <= 39.1 + 1
    assert rates.max() - rates.min() > 10        # the national model spans only 7.5 (25.6-33.1)
    # (London: 567 a year against the undated "approximately 700" of the Healthy London Partnership;
    # not asserted, see docs/data.md)


def _partnership_comparison():
    """Published 'test' counts with expected deaths summed over the panel's LAs, scaled to the year's NCMD
    notified total (2018-19 precedes NCMD: left at the mean level)."""
    ref = pd.read_csv("cdr/_data/reference/partnership_deaths.csv")
    assert ref["source_url"].str.startswith("http").all()
    ref = ref[ref["use"] == "test"]
    e = reference.expected_deaths().set_index("la_code")["expected_deaths"]
    level = np.mean(list(NCMD_NOTIFIED.values()))
    year = ref["period"].str[-4:].astype(int)
    scale = year.map(lambda y: NCMD_NOTIFIED.get(y, level)) / level
    expected = np.array([e.loc[c.split(";")].sum() for c in ref["la_codes"]]) * scale.to_numpy()
    return ref, ref["deaths"].to_numpy(), expected


def test_published_partnership_counts():
    ref, observed, expected = _partnership_comparison()
    assert ref["measure"].str.startswith("deaths notified").all()     # comparable definition only
    assert len(ref) >= 15 and ref["partnership"].nunique() >= 9
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    from scipy import stats
    assert stats.chi2.sf(chi2, len(ref)) > 0.05                 # consistent with Poisson variation
    log_ratio = np.log(observed / expected)
    mean = float((expected * log_ratio).sum() / expected.sum())
    assert abs(mean) < 2 / np.sqrt(expected.sum())              # no bias beyond 2 standard errors
    # no region off by more than 3 standard errors (pooled published / expected, regions with 2+ counts)
    from cdr import data
    region = data.lookup(2023).set_index("la_code")["region_name"]
    by = pd.DataFrame({"region": [region[c.split(";")[0]] for c in ref["la_codes"]],
                       "o": observed, "e": expected}).groupby("region").agg(n=("o", "size"), o=("o", "sum"),
                                                                             e=("e", "sum"))
    by = by[by["n"] >= 2]
    assert len(by) >= 4
    assert (np.abs(np.log(by["o"] / by["e"])) < 3 / np.sqrt(by["e"])).all()
    # Noise floor, by simulation from a model that is exactly right for these counts: the weighted mean
    # |log ratio| is then about 0.10 on average, above the issue's 0.08, and both thresholds hold together
    # in only about one set in five.
    rng = np.random.default_rng(0)
    sims = np.log(np.maximum(rng.poisson(expected, size=(20_000, len(expected))), 0.5) / expected)
    w = expected / expected.sum()
    assert float((np.abs(sims) @ w).mean()) > 0.08
    p_both = float(((np.abs(sims @ w) <= 0.04) & (np.abs(sims) @ w <= 0.08)).mean())
    assert p_both < 0.5


@pytest.mark.xfail(strict=True, reason="issue 13 acceptance not met on 15 published counts: weighted mean log "
                   "ratio +0.046 (limit 0.04, 1.4 standard errors), weighted mean |log ratio| 0.105 (limit 0.08, "
                   "below the Poisson noise floor of 0.096 for these counts); see docs/data.md")
def test_published_partnership_counts_meet_issue_thresholds():
    _, observed, expected = _partnership_comparison()
    log_ratio = np.log(observed / expected)
    w = expected / expected.sum()
    assert abs(float(w @ log_ratio)) <= 0.04 and float(w @ np.abs(log_ratio)) <= 0.08


def test_interval_and_reach_probability_against_simulation():
    e = reference.expected_deaths(interval=0.9).set_index("la_code")
    assert (e["lower"] < e["expected_deaths"]).all() and (e["expected_deaths"] < e["upper"]).all()
    width = (e["upper"] - e["lower"]) / e["expected_deaths"]
    # relative uncertainty falls with the LA's births: Rutland (about 300 a year) vs Birmingham (16,000)
    assert width["E06000017"] > 2 * width["E08000025"]
    # reach probability of Herefordshire + Worcestershire by simulation from the posterior
    codes = ["E06000019", "E10000034"]
    m = reference.infant_model().set_index("la_code")
    d = reference.expected_deaths_detail(codes)
    infant = d["age_band"].isin(["neonatal", "postneonatal"])
    rng = np.random.default_rng(1)
    draws = 0
    for code in codes:
        inf = d.loc[infant & (d["la_code"] == code), "expected_deaths"].sum() / m.loc[code, "theta"]
        theta = rng.gamma(m.loc[code, "posterior_shape"], 1 / m.loc[code, "posterior_rate"], size=200_000)
        draws = draws + rng.poisson(inf * theta)
    draws = draws + rng.poisson(d.loc[~infant, "expected_deaths"].sum(), size=200_000)
    p_sim = float((draws >= 45).mean())
    assert reference.reach_probability(codes, 45) == pytest.approx(p_sim, abs=0.01)


def test_bad_model_and_interval():
    from cdr.errors import CdrError
    with pytest.raises(CdrError, match="model' must be one of"):
        reference.expected_deaths(model="fancy")
    with pytest.raises(CdrError, match="interval' must be a probability"):
        reference.expected_deaths(interval=1.5)
    with pytest.raises(CdrError, match="needs model='observed'"):
        reference.expected_deaths(model="national", interval=0.9)
    with pytest.raises(CdrError, match="fit_years"):
        reference.infant_model([2010])


def test_chance_threshold_with_posterior_dispersion_by_simulation():
    from cdr.footprints._builder import chance_threshold
    e = reference.expected_deaths(interval=0.9)
    phi = e["predictive_var"].sum() / e["expected_deaths"].sum()
    assert 1.0 < phi < 1.2
    lam = chance_threshold(60, 0.9, phi)
    assert lam > chance_threshold(60, 0.9)                         # more spread, higher threshold
    # gamma-Poisson with mean lam and variance phi x lam, simulated
    rng = np.random.default_rng(0)
    shape = lam / (phi - 1)
    draws = rng.poisson(rng.gamma(shape, lam / shape, size=400_000))
    assert abs(draws.var() / draws.mean() - phi) < 0.02
    assert (draws >= 60).mean() == pytest.approx(0.9, abs=0.003)


def test_chance_weights_are_a_sufficient_rule():
    # g(kappa): the smallest mean reaching 60 with probability 0.9 for a negative binomial count of
    # variance mean + kappa, solved here independently by bisection on scipy's nbinom.
    from scipy import stats

    from cdr.footprints._problem import chance_weights

    def g(kappa, m=60, p=0.9):
        lo, hi = 60.0, 200.0
        for _ in range(60):
            mu = (lo + hi) / 2
            sf = stats.poisson.sf(m - 1, mu) if kappa == 0 else stats.nbinom.sf(m - 1, mu * mu / kappa, mu / (mu + kappa))
            lo, hi = (lo, mu) if sf >= p else (mu, hi)
        return hi

    e = np.array([30.0, 30.0, 20.0])
    v = e + np.array([2.0, 1.0, 0.5])
    w, t, info = chance_weights(e, v, 60, 0.9)
    b = info["slope"]
    assert np.allclose(w, e - b * (v - e))
    assert g(info["kappa0"]) - b * info["kappa0"] == pytest.approx(t, abs=1e-3)     # exact at kappa0
    for kappa in [0.0, 1.0, 3.0, 10.0, 30.0, 100.0]:                                  # conservative elsewhere
        assert g(kappa) <= t + b * kappa + 1e-6


def test_chance_constraint_uses_each_footprints_posterior_by_simulation():
    from cdr.footprints import FootprintBuilder

    areas = data.england_areas()
    e = reference.expected_deaths(interval=0.9)
    a = areas.drop(columns=[c for c in ("expected_deaths", "predictive_var") if c in areas.columns]).merge(
        e[["la_code", "expected_deaths", "predictive_var"]], on="la_code")
    design = FootprintBuilder(60, min_probability=0.9, seed=0).fit(a)
    assert design.info["chance"]["method"].startswith("per-area posterior")
    parts = reference._posterior_parts(None, 2023, 2022)
    rng = np.random.default_rng(2)
    n = 40_000
    theta = {p: rng.gamma(g["posterior_shape"].iat[0], 1 / g["posterior_rate"].iat[0], size=n)
             for p, g in parts.groupby("parent")}
    reach = []
    for codes in design.table()["la_codes"]:
        sub = parts.loc[codes.split(";")]
        lam = sub["older"].sum() + sum(sub["infant_unit"].iat[i] * theta[sub["parent"].iat[i]] for i in range(len(sub)))
        reach.append((rng.poisson(lam) >= 60).mean())
    # every footprint reaches 60 in at least 90 % of simulated years (Monte Carlo SE 0.0015)
    assert min(reach) >= 0.9 - 0.005


def test_chance_constraint_refuses_a_variance_below_the_mean():
    from cdr.errors import CdrError
    from cdr.footprints import FootprintBuilder

    e = reference.expected_deaths(interval=0.9)
    a = data.england_areas().drop(columns=[c for c in ("expected_deaths",) if c in data.england_areas().columns])
    a = a.merge(e[["la_code", "expected_deaths", "predictive_var"]], on="la_code")
    a.loc[a["la_code"] == "E06000001", "predictive_var"] = 0.5
    with pytest.raises(CdrError, match=r"predictive_var must be a number >= expected_deaths.*E06000001") as err:
        FootprintBuilder(60, min_probability=0.9).fit(a)
    assert isinstance(err.value, ValueError)


def test_design_checks_judge_the_chance_constraint_with_the_builders_posterior_variance():
    # A design built under the Poisson chance rule, judged with areas that carry each LA's posterior
    # predictive variance: table(), check_design and evaluate must all apply the builder's posterior rule.
    from cdr.footprints import FootprintBuilder, FootprintDesign, check_design, evaluate

    areas = data.england_areas()
    e = reference.expected_deaths(interval=0.9)
    base = areas.drop(columns=[c for c in ("expected_deaths", "predictive_var") if c in areas.columns])
    poisson_areas = base.merge(e[["la_code", "expected_deaths"]], on="la_code")
    posterior_areas = base.merge(e[["la_code", "expected_deaths", "predictive_var"]], on="la_code")
    built = FootprintBuilder(60, min_probability=0.9, seed=0).fit(poisson_areas)
    assert built.table(min_probability=0.9)["meets_chance"].all()          # Poisson: every footprint passes
    judged = FootprintDesign(built.labels, posterior_areas, neighbors=built.neighbors)
    t = judged.table(min_probability=0.9)
    # p_reach_threshold against simulation of a gamma-Poisson count with the footprint's mean and
    # posterior predictive variance (sum of its areas' predictive_var)
    pv = posterior_areas.set_index("la_code")["predictive_var"]
    rng = np.random.default_rng(3)
    sim = []
    for codes, mu in zip(t["la_codes"], t["expected_deaths"]):
        kappa = pv.loc[codes.split(";")].sum() - mu
        draws = rng.poisson(rng.gamma(mu * mu / kappa, kappa / mu, size=200_000))
        sim.append((draws >= 60).mean())
    assert np.allclose(t["p_reach_threshold"], sim, atol=0.004)
    p = t["p_reach_threshold"]
    assert (p < 0.9).any()                                       # some Poisson-feasible footprints fall short
    assert not t["meets_chance"].all()
    # meets_chance is the builder's sufficient rule: it never passes a footprint below the level
    assert (p[t["meets_chance"]] >= 0.9 - 1e-9).all()
    # check_design and evaluate agree with the table, footprint by footprint
    problems = check_design(judged, min_probability=0.9)
    failing = set(t.loc[~t["meets_chance"], "footprint_id"])
    assert set(problems.loc[problems["check"] == "chance", "footprint_id"]) == failing
    row = evaluate(judged, min_probability=0.9).iloc[0]
    assert row["n_below_chance"] == len(failing)
    assert row["expected_years_below"] == pytest.approx(float((1 - t["p_reach_threshold"]).sum()))
    assert row["gap_to_bound"] >= 0                                # the bound counts by the same rule
