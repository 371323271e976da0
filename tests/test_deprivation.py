"""Deprivation: one LA x IMD decile population split for the generator and the report (issues 13, 15).

Expected values come from outside the code under test: the published IMD 2019 LA summaries
(share of LSOAs in decile 1, average rank; cdr/_data/imd2019_utla2023.csv), the definition of
deciles (a tenth of England's LSOAs each), NCMD's published gradient (cdr/_data/calibration.csv),
Pearson's chi-square for the per-LA decile mix, Garwood's exact Poisson limits and weighted least
squares for the SII.
"""
from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import cdr
from cdr import reference
from cdr.report import _content, build_report

YEAR = "2022-23"


@pytest.fixture(scope="module")
def imd():
    with resources.files("cdr").joinpath("_data", "imd2019_utla2023.csv").open("rb") as fh:
        return pd.read_csv(fh, dtype={"la_code": str}).set_index("la_code")


@pytest.fixture(scope="module")
def shares():
    d = reference.imd_decile_distribution()
    return d.pivot(index="la_code", columns="imd_decile", values="population_share")


@pytest.fixture(scope="module")
def records():
    return cdr.synthetic.generate_records(years=range(2018, 2024), seed=0)   # the demo's records


@pytest.fixture(scope="module")
def waltham(records, tmp_path_factory):
    """The demo footprint holding Waltham Forest (F039: Barking and Dagenham, Redbridge, Waltham Forest)."""
    out = tmp_path_factory.mktemp("dep") / "b"
    return build_report(records, design="england_min60", footprint="F039", level="footprint", year=YEAR, out=out)


# ------------------------------------------------------------------------------- the population split


def test_split_keeps_the_published_decile_one_share_of_every_la(shares, imd):
    # IoD2019 File 11 / LSOA data: proportion of the LA's LSOAs in the most deprived 10 % (exact data)
    p10 = imd["imd_prop_lsoa_most_deprived_10pct"].loc[shares.index]
    np.testing.assert_allclose(shares[1].to_numpy(), p10.to_numpy(), atol=1e-9)
    np.testing.assert_allclose(shares.sum(axis=1).to_numpy(), 1.0, atol=1e-12)


def test_every_national_decile_holds_a_tenth_of_englands_lsoas(shares, imd):
    n = imd["n_lsoa11"].loc[shares.index]
    by_decile = shares.mul(n, axis=0).sum() / n.sum()     # definition of deciles: 32,844 / 10 LSOAs each
    np.testing.assert_allclose(by_decile.to_numpy(), 0.1, atol=2e-4)


def test_split_reproduces_the_published_average_rank(shares, imd):
    mid = 1 - (np.arange(1, 11) - 0.5) / 10                     # decile mid-percentile, 1 = most deprived
    modelled = shares.to_numpy() @ mid
    published = imd["imd_avg_rank"].loc[shares.index].to_numpy() / 32844
    err = np.abs(modelled - published)
    assert np.median(err) < 0.01 and np.quantile(err, 0.9) < 0.03, (np.median(err), np.quantile(err, 0.9))


def test_deprived_inner_london_has_no_children_in_the_least_deprived_decile(shares):
    # Hackney: 11.1 % of LSOAs in decile 1 (published) and an average rank in England's most deprived tenth of LAs
    assert shares.loc["E09000012", 1] == pytest.approx(0.1111, abs=1e-3)
    assert shares.loc["E09000012", 10] == 0.0
    # Isles of Scilly: one LSOA, wholly in the decile of its rank: published average rank 10,680, i.e.
    # IMD rank 32,845 - 10,680 = 22,165 of 32,844 (1 = most deprived), decile ceil(22,165 / 3,284.4) = 7
    assert shares.loc["E06000053"].tolist() == [0.0] * 6 + [1.0, 0.0, 0.0, 0.0]


def test_quintile_population_adds_up_and_rejects_unknown_codes():
    pop = cdr.data.population_for_years([2022], by=())[["la_code", "population"]]
    q = reference.imd_quintile_population(pop)
    assert q["population"].sum() == pytest.approx(pop["population"].sum(), rel=1e-12)
    fifths = q.groupby("imd_quintile")["population"].sum() / pop["population"].sum()
    assert np.all(np.abs(fifths - 0.2) < 0.03), fifths.tolist()    # a fifth of LSOAs each; children not uniform
    with pytest.raises(ValueError, match="E99999999"):
        reference.imd_quintile_population(pd.DataFrame({"la_code": ["E99999999"], "population": [1.0]}))
    with pytest.raises(TypeError, match="DataFrame"):
        reference.imd_quintile_population([1, 2])


# ------------------------------------------------------------------------------------ the generator


def test_no_death_in_a_decile_the_la_has_no_children_in(records, shares):
    empty = shares.stack()
    empty = empty[empty == 0].reset_index()[["la_code", "imd_decile"]]
    assert len(empty) > 20
    hits = records[["la_code", "imd_decile"]].astype({"imd_decile": int}).merge(empty, on=["la_code", "imd_decile"])
    assert hits.empty, hits.head()


def test_decile_mix_of_each_las_deaths_follows_population_share_times_gradient(records, shares):
    # Model (issue 13): P(decile | LA, age) ~ population share x RR ** (10 - decile), RR = fitted infant
    # gradient under 1, published 1.08 at 1-17. Pearson chi-square over LAs x quintiles.
    d = np.arange(1, 11)
    infant = records["age_band"].isin(["neonatal", "postneonatal"]).to_numpy()
    obs_rows, exp_rows = [], []
    for rr, mask in ((reference.infant_model().attrs["rr_per_imd_decile"], infant), (reference.RR_PER_IMD_DECILE_1_17, ~infant)):
        p = shares * rr ** (10 - d)
        p = p.div(p.sum(axis=1), axis=0)
        sub = records[mask]
        n = sub.groupby("la_code").size()
        exp_rows.append(p.loc[n.index].mul(n, axis=0))
        obs_rows.append(sub.groupby(["la_code", "imd_decile"]).size().unstack(fill_value=0).reindex(columns=d, fill_value=0))
    fifths = lambda x: x.T.groupby(lambda c: (c + 1) // 2).sum().T       # noqa: E731  deciles -> quintiles
    e = sum(fifths(x) for x in exp_rows)
    o = sum(fifths(x.reindex(e.index, fill_value=0)) for x in obs_rows)
    keep = e.sum(axis=1) >= 100                                # LAs with enough deaths for the approximation
    e, o = e[keep].to_numpy(float), o[keep].to_numpy(float)
    cells = e > 0
    chi2 = (((o - e) ** 2)[cells] / e[cells]).sum()
    df = int(cells.sum() - keep.sum())
    assert keep.sum() > 50
    assert stats.chi2.sf(chi2, df) > 1e-3, (chi2, df)


def test_national_gradient_follows_ncmd(records):
    t = reference.targets()
    ratios = t.loc[t["target"] == "rr_most_vs_least_deprived_quintile", "value"].astype(float)   # 2.49, 2.41
    pop = cdr.data.england_areas().set_index("la_code")["child_population"]
    q = reference.imd_quintile_population(pop.rename("population").reset_index())
    people = q.groupby("imd_quintile")["population"].sum()
    quint = (records["imd_decile"].astype(int) + 1) // 2
    deaths = quint.value_counts().sort_index()
    ratio = (deaths[1] / people[1]) / (deaths[5] / people[5])
    se = np.sqrt(1 / deaths[1] + 1 / deaths[5])                # Poisson, on the log scale
    lo, hi = ratios.min() * np.exp(-3 * se), ratios.max() * np.exp(3 * se)
    assert lo <= ratio <= hi, (ratio, lo, hi)
    # per decile: published 1.08 (1.07-1.10, Odd et al.) and "about 10 %" (NCMD); infants steeper
    people_d = (reference.imd_decile_distribution().assign(p=lambda x: x["population_share"] * x["la_code"].map(pop))
                .groupby("imd_decile")["p"].sum())
    deaths_d = records["imd_decile"].astype(int).value_counts().sort_index()
    per_decile = np.exp(-np.polyfit(np.arange(1, 11), np.log(deaths_d.to_numpy() / people_d.to_numpy()), 1)[0])
    assert 1.07 <= per_decile <= 1.13, per_decile


# ------------------------------------------------------------------------------------------ the report


def test_waltham_forest_footprint_has_no_absurd_rate(waltham):
    t = waltham.tables["deaths_by_deprivation"]
    body = t[t["imd_quintile"].isin(list("12345"))]
    rate = pd.to_numeric(body["rate_per_100000"], errors="coerce")
    pop = body["population"].astype(float)
    assert (rate[pop < _content.MIN_QUINTILE_POPULATION].isna()).all()
    # England's child death rate is about 30 per 100,000 (NCMD 29.3, YE Mar 2022); the most deprived
    # decile 31-46. A quintile rate above 200 would be an artefact of the denominator.
    assert (rate.dropna() < 200).all(), rate.tolist()


def test_quintile_rates_recomputed_by_hand(waltham, records):
    t = waltham.tables["deaths_by_deprivation"].set_index("imd_quintile")
    las = waltham.tables["deaths_by_area"]["area_code"].iloc[:-1].tolist()
    # deaths: counted here from the records (financial year 2022-23, home LA in the footprint)
    r = records[records["la_code"].isin(las) & (records["date_of_death"] >= "2022-04-01")
                & (records["date_of_death"] <= "2023-03-31")]
    quint = ((r["imd_decile"].astype(int) + 1) // 2).astype(str).value_counts()
    total_pop = float(t.loc["total", "population"])
    assert sum(float(t.loc[q, "population"]) for q in "12345") == pytest.approx(total_pop, rel=1e-9)
    # denominators: each LA's children (deaths_by_area) x its decile shares, deciles 2q-1 and 2q summed
    area = waltham.tables["deaths_by_area"].set_index("area_code")["population"].astype(float)
    split = reference.imd_decile_distribution().pivot(index="la_code", columns="imd_decile", values="population_share")
    for q in range(1, 6):
        by_hand = sum(area[la] * (split.loc[la, 2 * q - 1] + split.loc[la, 2 * q]) for la in las)
        assert float(t.loc[str(q), "population"]) == pytest.approx(by_hand, rel=1e-9)
    checked = 0
    for q in "12345":
        n = int(quint.get(q, 0))
        pop = float(t.loc[q, "population"])
        shown = pd.to_numeric(pd.Series([t.loc[q, "rate_per_100000"]]), errors="coerce").iloc[0]
        if n < 3 or pop < 1_000:            # rate rules: no rate from < 3 deaths or < 1,000 estimated children
            assert pd.isna(shown)
            continue
        if pd.isna(shown):                   # suppressed by disclosure control (a count of 3-4 or its complement)
            continue
        assert float(t.loc[q, "deaths"]) == n
        assert shown == pytest.approx(n / pop * 1e5, rel=1e-9)
        checked += 1
        if n < 10:   # Garwood (1936): chi2(0.025; 2n)/2, chi2(0.975; 2n + 2)/2
            lo, hi = stats.chi2.ppf(0.025, 2 * n) / 2, stats.chi2.ppf(0.975, 2 * n + 2) / 2
            assert t.loc[q, "rate_per_100000_lower_95"] == pytest.approx(lo / pop * 1e5, rel=1e-6)
            assert t.loc[q, "rate_per_100000_upper_95"] == pytest.approx(hi / pop * 1e5, rel=1e-6)
    assert checked >= 3, checked


def test_sii_and_rii_match_the_weighted_least_squares_formula(waltham):
    t = waltham.tables["deaths_by_deprivation"]
    body = t[t["imd_quintile"].isin(list("12345"))]
    total = t[t["imd_quintile"] == "total"].iloc[0]
    if not np.isfinite(float(total["sii"])):
        pytest.skip("a quintile rate is not published for this footprint")
    pop = body["population"].to_numpy(float)
    rate = body["rate_per_100000"].to_numpy(float)
    rank = (np.cumsum(pop) - pop / 2) / pop.sum()             # 0 = most deprived (ridit mid-points)
    slope = np.polyfit(rank, rate, 1, w=np.sqrt(pop))[0]       # WLS of rate on rank, weights = population
    assert float(total["sii"]) == pytest.approx(-slope, rel=1e-6)
    assert float(total["rii"]) == pytest.approx(-slope / np.average(rate, weights=pop), rel=1e-6)


def test_population_floor_withdraws_the_rate_with_a_note():
    t = pd.DataFrame({"imd_quintile": ["1", "5", "total"], "label": ["1 (most deprived)", "5 (least deprived)", "Total"],
                      "population": [50_000.0, 156.0, 50_156.0], "rate_per_100000": [30.0, 3205.1, 39.9],
                      "rate_per_100000_lower_95": [20.0, 1040.0, 30.0], "rate_per_100000_upper_95": [45.0, 7480.0, 52.0],
                      "rate_per_100000_flag": ["", "[u]", ""]})
    marks = pd.DataFrame("", index=t.index, columns=t.columns)
    info = {"notes": []}
    small = _content._below_population_floor(t, marks, "rate_per_100000", "population", info)
    assert small.tolist() == [False, True, False]
    assert np.isnan(t.loc[1, "rate_per_100000"]) and marks.loc[1, "rate_per_100000"] == "[x]"
    assert t.loc[0, "rate_per_100000"] == 30.0 and t.loc[2, "rate_per_100000"] == 39.9
    assert "5 (least deprived)" in info["notes"][0] and "1,000" in info["notes"][0]
