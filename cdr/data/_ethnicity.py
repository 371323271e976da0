"""Children by ethnic group in each upper-tier LA, approximated from the 2011 Census (OGL v3.0).

What is embedded (``cdr/_data``, provenance in ``PROVENANCE.md``):

- ``census2011_ethnic_group_lad2011.csv``: Census 2011 table QS201EW (ethnic group), usual
  residents of **all ages** in each of England's 326 local authority districts of 2011, in the five
  high-level groups, with the 2021 and 2023 upper-tier LA each district lies in.
- ``census2011_ethnic_group_by_age_region.csv``: Census 2011 table DC2101EW (ethnic group by age),
  England and its 9 regions, all ages and ages 0-4, 5-7, 8-9, 10-14, 15 and 16-17.

No table of *children* by ethnic group for each LA is embedded (neither Census 2021 RM032/TS021 by
age nor Census 2011 DC2101EW by LA could be obtained in a form that could be embedded), so the
child mix of an LA is **approximated**: the LA's all-age share of each group times its region's
ratio of the group's share among children (0-17) to its share at all ages, renormalised::

    child_share[la, g] = share_all_ages[la, g] * R[r, g] / sum_h share_all_ages[la, h] * R[r, h]
    R[r, g] = (children[r, g] / children[r]) / (residents[r, g] / residents[r])   (region r of la, 2011)

Children are more diverse than adults everywhere (England's R: White 0.92, Mixed 2.31, Asian 1.28,
Black 1.42, Other 1.24), and the shift differs between regions (London: White 0.78, Asian 1.07,
Black 1.43). The mix is that of March 2011; it is applied to the mid-year child population of the
year asked for.
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from cdr.data._areas import VINTAGES, _csv, lookup, population_for_years
from cdr.errors import ArgumentError

__all__ = ["ETHNIC_GROUPS", "ETHNICITY_SOURCE", "child_population_by_ethnicity", "ethnic_group_shares"]

#: The five high-level ethnic groups of the Census (keys of :data:`cdr.schema.ETHNICITIES` less ``unknown``).
ETHNIC_GROUPS = ("white", "mixed", "asian", "black", "other")
#: One line naming the source and the approximation, for notes under tables.
ETHNICITY_SOURCE = (
    "Children by ethnic group APPROXIMATED: each local authority's all-age ethnic mix from the 2011 Census "
    "(ONS table QS201EW, districts aggregated to upper-tier LAs), shifted to a child mix with its region's ratio of "
    "child (0-17) to all-age shares by group (2011 Census table DC2101EW), applied to the ONS mid-year child "
    "population; Census 2021 child populations by ethnic group for each LA are not embedded in cdr.")


def _check_vintage(vintage, caller: str) -> int:
    if isinstance(vintage, bool) or vintage not in VINTAGES:
        raise ArgumentError(f"{caller}: 'vintage' must be one of {VINTAGES} (upper-tier LAs of April 2021 or April "
                            f"2023); got {vintage!r}. Use vintage=2023 for current boundaries.")
    return int(vintage)


@functools.lru_cache(maxsize=None)
def _region_ratio() -> pd.DataFrame:
    """Region (and England) x group: share among children 0-17 / share at all ages (DC2101EW, 2011)."""
    age = _csv("census2011_ethnic_group_by_age_region.csv")
    groups = list(ETHNIC_GROUPS)
    allages = age[age["age_band"] == "all_ages"].set_index("area_code")[groups].astype(float)
    child = age[age["age_band"] != "all_ages"].groupby("area_code")[groups].sum().astype(float)
    return child.div(child.sum(axis=1), axis=0) / allages.div(allages.sum(axis=1), axis=0)


@functools.lru_cache(maxsize=None)
def _shares(vintage: int) -> pd.DataFrame:
    raw = _csv("census2011_ethnic_group_lad2011.csv")
    groups = list(ETHNIC_GROUPS)
    by = raw.groupby(f"utla{str(vintage)[2:]}_code")[["all_usual_residents", *groups]].sum()
    allages = by[groups].div(by["all_usual_residents"], axis=0)
    region = lookup(vintage).set_index("la_code")["region_code"].reindex(by.index)
    w = allages * _region_ratio().loc[region.to_numpy(), groups].to_numpy()
    child = w.div(w.sum(axis=1), axis=0)
    out = pd.concat({"share_all_ages": allages, "child_share": child}, axis=1)
    out = out.stack(future_stack=True).reset_index()
    out.columns = ["la_code", "ethnicity", "share_all_ages", "child_share"]
    out["residents_2011"] = by["all_usual_residents"].reindex(out["la_code"]).to_numpy(np.int64)
    return out


def ethnic_group_shares(vintage: int = 2023) -> pd.DataFrame:
    """Each LA's share of residents (2011, all ages) and estimated share of children in each ethnic group.

    Parameters
    ----------
    vintage : {2023, 2021}
        Geography of ``la_code`` (upper-tier LAs of April 2023 or April 2021).

    Returns
    -------
    pandas.DataFrame
        One row per LA and group (``white``, ``mixed``, ``asian``, ``black``, ``other``):
        ``la_code``, ``la_name``, ``ethnicity``, ``residents_2011`` (usual residents of all ages in
        the LA, Census 2011), ``share_all_ages`` (share of those residents in the group, QS201EW)
        and ``child_share`` (estimated share of children aged 0-17: the all-age mix shifted with
        the region's child/all-age ratios of DC2101EW; see the module docstring for the formula).
        Both shares sum to 1 within an LA.

    Examples
    --------
    >>> s = ethnic_group_shares().set_index(["la_code", "ethnicity"])
    >>> round(float(s.loc[("E09000030", "asian"), "share_all_ages"]), 3)   # Tower Hamlets, 2011 Census
    0.411
    """
    vintage = _check_vintage(vintage, "ethnic_group_shares")
    out = _shares(vintage).copy()
    names = lookup(vintage).set_index("la_code")["la_name"]
    out.insert(1, "la_name", out["la_code"].map(names))
    return out


def child_population_by_ethnicity(vintage: int = 2023, year: int = 2022) -> pd.DataFrame:
    """Estimated children aged 0-17 in each LA and ethnic group in a mid-year (an APPROXIMATION).

    ONS mid-year child population of the LA (:func:`cdr.data.population_for_years`) times the
    LA's estimated child share of the group (:func:`ethnic_group_shares`, from the 2011 Census).

    Parameters
    ----------
    vintage : {2023, 2021}
        Geography of ``la_code``.
    year : int, default 2022
        Mid-year of the child population (2018-2022 embedded; later years use 2022, flagged in
        ``population_year``).

    Returns
    -------
    pandas.DataFrame
        One row per LA and group: ``la_code``, ``la_name``, ``ethnicity``, ``year``,
        ``population_year`` (mid-year estimate used), ``children`` (all children 0-17 in the LA),
        ``child_share`` and ``population`` (``children * child_share``, persons; not rounded) and
        ``method`` (``"census2011_share_x_mye"``).

    Raises
    ------
    ArgumentError
        If `vintage` is not 2021 or 2023, or `year` is not an integer year.

    Examples
    --------
    >>> pop = child_population_by_ethnicity(year=2022)
    >>> round(float(pop["population"].sum()))   # every child counted once (England 0-17, mid-2022)
    11886906
    """
    vintage = _check_vintage(vintage, "child_population_by_ethnicity")
    if isinstance(year, bool) or not isinstance(year, (int, np.integer)):
        raise ArgumentError(f"child_population_by_ethnicity: 'year' must be an integer mid-year such as 2022; "
                            f"got {year!r}.")
    pop = population_for_years([int(year)], vintage=vintage, by=())
    used = int(pop["population_year"].iloc[0]) if "population_year" in pop else int(year)
    children = pop.groupby("la_code")["population"].sum()
    out = ethnic_group_shares(vintage)[["la_code", "la_name", "ethnicity", "child_share"]].copy()
    out.insert(3, "year", int(year))
    out.insert(4, "population_year", used)
    out.insert(5, "children", out["la_code"].map(children).astype(float))
    out["population"] = out["children"] * out["child_share"]
    out["method"] = "census2011_share_x_mye"
    return out
