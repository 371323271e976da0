"""Embedded reference data for England's upper-tier local authorities (Open Government Licence v3.0).

Everything here is read from files shipped inside the package (``cdr/_data``); nothing is read
from the network or from outside the package. See :func:`provenance` for sources and licence.

Two geography vintages are supported: ``2023`` (153 upper-tier LAs, April 2023 onwards; the
default) and ``2021`` (152 LAs). Everything is joined on the ONS GSS code ``la_code``, never on names.
"""
from cdr.data._areas import (
    ATTRIBUTION,
    LATEST_POPULATION_YEAR,
    POPULATION_YEARS,
    VINTAGES,
    child_population,
    england_areas,
    la_codes,
    lookup,
    population_for_years,
    provenance,
    translate_codes,
)
from cdr.data._contiguity import DEFAULT_LINKS, Contiguity, contiguity
from cdr.data._ethnicity import ETHNIC_GROUPS, ETHNICITY_SOURCE, child_population_by_ethnicity, ethnic_group_shares

__all__ = [
    "england_areas",
    "child_population",
    "population_for_years",
    "child_population_by_ethnicity",
    "ethnic_group_shares",
    "ETHNIC_GROUPS",
    "ETHNICITY_SOURCE",
    "lookup",
    "la_codes",
    "translate_codes",
    "contiguity",
    "Contiguity",
    "DEFAULT_LINKS",
    "provenance",
    "ATTRIBUTION",
    "VINTAGES",
    "POPULATION_YEARS",
    "LATEST_POPULATION_YEAR",
]
