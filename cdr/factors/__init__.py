"""Contributory (modifiable) factors in child death reviews: prevalence, models and figures.

Among completed reviews, the share judged to have modifiable factors — "factors which, by means of
nationally or locally achievable interventions, could be modified to reduce the risk of future
child deaths" (DfE statistical releases) — overall and in each of the four analysis-form domains,
with Wilson confidence limits, at LA, footprint, region or nation level (:func:`prevalence`); a
logistic model of the judgement with odds ratios, clustered by footprint when asked (GEE) and with
Firth's penalised likelihood when the data separate (:func:`factor_model`); forest plots and
prevalence heat maps (:func:`plot_prevalence`).

Pending reviews and reviews with insufficient information are always counted, never dropped.
Methods: ``docs/methods/factors.md``.

References: Wilson (1927), JASA 22:209-212; Liang & Zeger (1986), Biometrika 73:13-22;
Firth (1993), Biometrika 80:27-38; Heinze & Schemper (2002), Stat Med 21:2409-2419;
Mancl & DeRouen (2001), Biometrics 57:126-134.
"""
from cdr.factors._analysis import FactorAnalysis, analyse
from cdr.factors._model import DEFAULT_FORMULA, FactorModel, FactorModelResult, factor_model
from cdr.factors._plots import forest_plot, plot_prevalence
from cdr.factors._prevalence import MEASURES, prevalence

__all__ = [
    "prevalence",
    "factor_model",
    "FactorModel",
    "FactorModelResult",
    "plot_prevalence",
    "forest_plot",
    "analyse",
    "FactorAnalysis",
    "DEFAULT_FORMULA",
    "MEASURES",
]
