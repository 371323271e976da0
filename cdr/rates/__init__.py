"""Crude rates, proportions and standardised rates with confidence limits; funnels and the SII.

Methods follow the Fingertips public health technical guidance (OHID) and give the same numbers
as the R package PHEindicatormethods and its Python port PHStatsMethods, computed on whole arrays
at once (no loop over areas). Rates are per ``multiplier`` persons per year at risk. Zero counts
are valid everywhere: a rate of 0 with lower limit 0 and a finite exact upper limit.

The array core takes scalars or NumPy arrays (a NaN gives a NaN row; a wrong type or shape, or a
negative count, raises :class:`ArgumentError`, a :class:`cdr.errors.CdrError` and ``ValueError``).
The ``*_table`` wrappers take a tidy frame with group columns and return one row per group.

References: Breslow & Day (1987), IARC Sci Publ 82; Garwood (1936), Biometrika 28:437-442;
Wilson (1927), JASA 22:209-212; Dobson et al. (1991), Stat Med 10:457-462; Low & Low (2004),
J Epidemiol Community Health 58:662-667; Eurostat (2013), Revision of the European Standard
Population; Spiegelhalter (2005), Stat Med 24:1185-1202 (funnel plots).
"""
from cdr.rates._core import EXACT_BELOW, byars_ci, ci_columns, crude_rate, exact_poisson_ci, isr, proportion, wilson_ci
from cdr.rates._dsr import CHILD_STANDARD, ESP2013, RECORD_TO_CHILD_BAND, dsr
from cdr.rates._funnel import funnel_limits, funnel_significance
from cdr.rates._plot import plot_funnel, plot_rates
from cdr.rates._sii import sii
from cdr.rates._tables import dsr_table, isr_table, proportion_table, rate_table
from cdr._validate import ArgumentError

__all__ = [
    "byars_ci", "exact_poisson_ci", "wilson_ci", "crude_rate", "proportion", "dsr", "isr",
    "funnel_limits", "funnel_significance", "sii", "ci_columns",
    "rate_table", "proportion_table", "dsr_table", "isr_table", "plot_funnel", "plot_rates",
    "ESP2013", "CHILD_STANDARD", "RECORD_TO_CHILD_BAND", "EXACT_BELOW", "ArgumentError",
]
