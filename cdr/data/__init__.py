"""Embedded reference data for England's upper-tier local authorities (Open Government Licence v3.0).

Everything here is read from files shipped inside the package (``cdr/_data``); nothing is read
from the network or from outside the package. See :func:`provenance` for sources and licence.

Two geography vintages are supported: ``2023`` (153 upper-tier LAs, April 2023 onwards; the
default) and ``2021`` (152 LAs). Everything is joined on the ONS GSS code ``la_code``, never on names.
"""
from cdr.data import _areas
from cdr.data._areas import *  # noqa: F401,F403  (the names of _areas.__all__)
from cdr.data._contiguity import DEFAULT_LINKS, Contiguity, contiguity  # noqa: F401
from cdr.data._ethnicity import ETHNIC_GROUPS, ETHNICITY_SOURCE, child_population_by_ethnicity, ethnic_group_shares  # noqa: F401

#: The public names: those of the areas module, then ethnicity's and the contiguity graph's.
__all__ = [*_areas.__all__, "child_population_by_ethnicity", "ethnic_group_shares", "ETHNIC_GROUPS", "ETHNICITY_SOURCE",
           "contiguity", "Contiguity", "DEFAULT_LINKS"]
