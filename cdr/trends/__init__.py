"""Trends in child death rates: log-linear APC models, comparisons, and joinpoint regression.

- :func:`fit_trend` — Poisson / negative binomial / quasi-Poisson log-linear trend per group, with a
  log-population offset, an overdispersion test and annual percent change (APC).
- :func:`compare_to` — each group's trend against a reference (e.g. national) trend: rate ratio over
  time and a test of different slopes (group x time interaction).
- :func:`joinpoint` — segmented (joinpoint) regression, either as a Poisson / negative binomial GLM
  with optional covariates such as the 2021 level shift (``method="glm"``) or reproducing the NCI
  Joinpoint Regression Program (``method="nci"``, with its BIC, BIC3, weighted BIC and permutation tests).
- :func:`analyse` — all of the above for one level of the roll-up, from records, ready to write.
- :func:`population_break` — the 2021 level-shift indicator for the population series break.

Methods, formulae and references: ``docs/methods/trends.md``.

References: Kim HJ, Fay MP, Feuer EJ, Midthune DN (2000), Stat Med 19:335-351; Clegg LX et al.
(2009), Stat Med 28:3670-3682; Kim HJ et al. (2023), J Appl Stat 50:1992-2013; Lerman PM (1980),
Appl Stat 29:77-84.
"""
from cdr.trends._analysis import LEVEL_KEYS, TrendAnalysis, analyse
from cdr.trends._glm import compare_to, fit_trend, population_break
from cdr.trends._joinpoint import joinpoint
from cdr.trends._results import CompareResult, JoinpointResult, TrendResult

__all__ = ["analyse", "TrendAnalysis", "LEVEL_KEYS", "fit_trend", "compare_to", "joinpoint", "population_break", "TrendResult", "JoinpointResult",
           "CompareResult"]
