"""cdr.data against the ONS totals in PROVENANCE.md and the named contiguity links of issue 3."""
import pandas as pd
import pytest

from cdr import data

RUTLAND, PETERBOROUGH = "E06000017", "E06000031"
CROYDON, SOUTHWARK = "E09000008", "E09000028"
WIRRAL, LIVERPOOL, SEFTON = "E08000015", "E08000012", "E08000014"
MEDWAY, SOUTHEND = "E06000035", "E06000033"
NAMED_LINKS = {
    ("E06000026", "E06000052"),  # Plymouth-Cornwall
    ("E06000034", "E10000016"),  # Thurrock-Kent
    ("E06000010", "E06000013"),  # Hull-North Lincolnshire
    (LIVERPOOL, WIRRAL),
    ("E06000046", "E10000014"),  # Isle of Wight-Hampshire
    ("E06000044", "E06000046"),  # Portsmouth-Isle of Wight
    ("E06000045", "E06000046"),  # Southampton-Isle of Wight
    ("E06000052", "E06000053"),  # Cornwall-Isles of Scilly
}


@pytest.mark.parametrize("vintage, n", [(2023, 153), (2021, 152)])
def test_areas_have_one_row_per_upper_tier_la(vintage, n):
    areas = data.england_areas(vintage)
    assert len(areas) == n and areas["la_code"].is_unique
    assert areas.crs.to_epsg() == 27700
    assert areas.geometry.is_valid.all() and not areas.geometry.is_empty.any()
    required = {"la_code", "la_name", "region_code", "region_name", "police_force_area", "icb_code",
                "imd_avg_rank", "child_population"}
    assert required <= set(areas.columns)
    assert areas[list(required)].notna().all().all()


# PROVENANCE.md, "England persons totals", ages 0-17 (ONS mid-year estimates).
ONS_ENGLAND_0_17 = {2018: 11_954_618, 2019: 12_023_568, 2020: 12_093_288, 2021: 11_761_656, 2022: 11_886_906}


@pytest.mark.parametrize("vintage", [2021, 2023])
def test_child_population_totals_equal_ons_england(vintage):
    pop = data.child_population(vintage)
    totals = pop.groupby("year")["population"].sum().to_dict()
    assert totals == ONS_ENGLAND_0_17
    assert set(pop["sex"]) == {"male", "female"} and set(pop["age"]) == set(range(18))


def test_contiguity_is_connected_with_exactly_the_named_links():
    g = data.contiguity()
    assert g.n_components == 1
    assert all(len(v) > 0 for v in g.neighbors.values())
    edges = set(zip(g.edges["la_code_a"], g.edges["la_code_b"]))
    assert NAMED_LINKS <= edges
    named = g.edges[g.edges["kind"].isin(["crossing", "island"])]
    assert set(zip(named["la_code_a"], named["la_code_b"])) == NAMED_LINKS
    assert tuple(sorted((WIRRAL, SEFTON))) not in edges
    assert tuple(sorted((MEDWAY, SOUTHEND))) not in edges


def test_gap_tolerance_joins_rutland_peterborough_and_croydon_southwark():
    g = data.contiguity()
    gaps = g.edges[g.edges["kind"] == "gap"]
    pairs = set(zip(gaps["la_code_a"], gaps["la_code_b"]))
    assert tuple(sorted((RUTLAND, PETERBOROUGH))) in pairs
    assert tuple(sorted((CROYDON, SOUTHWARK))) in pairs
    assert (gaps["distance_m"] <= 250).all()


def test_plain_queen_contiguity_leaves_three_components():
    # Mainland, Isle of Wight and Isles of Scilly: islands have no neighbour without the named links.
    g = data.contiguity(tolerance_m=0, links=())
    assert g.n_components == 3
    assert g.neighbors["E06000046"] == [] and g.neighbors["E06000053"] == []


def test_translate_codes_recodes_north_yorkshire_and_somerset_and_reports_cumbria():
    frame = pd.DataFrame({"la_code": ["E10000023", "E10000027", "E10000006", "E06000001"], "n": [1, 2, 3, 4]})
    translated, untranslated = data.translate_codes(frame, "la_code", to_vintage=2023)
    assert translated.set_index("n")["la_code"].to_dict() == {1: "E06000065", 2: "E06000066", 4: "E06000001"}
    assert untranslated["la_code"].tolist() == ["E10000006"]
    assert untranslated["reason"].iloc[0].startswith("split")
    expanded, _ = data.translate_codes(frame, "la_code", to_vintage=2023, split="expand")
    assert sorted(expanded.loc[expanded["n"] == 3, "la_code"]) == ["E06000063", "E06000064"]
