"""cdr: child death review epidemiology for England.

Modules, one hop away after ``import cdr``:

- :mod:`cdr.data` — embedded England geography, populations, deprivation, contiguity (OGL data).
- :mod:`cdr.schema` — the child death review record and its validation (:func:`cdr.read_records`).
- :mod:`cdr.fields` — optional record fields of the annual report (expectedness, JAR, place of death, themes...).
- :mod:`cdr.reference` — published national figures and the calibrated national rate model (expected deaths).
- :mod:`cdr.synthetic` — synthetic records calibrated to published national figures.
- :mod:`cdr.rates` — rates, proportions, standardised rates, funnels and the SII with confidence limits.
- :mod:`cdr.aggregate` — the LA → footprint → region → nation roll-up.
- :mod:`cdr.footprints` — build, evaluate and compare child death review footprints.
- :mod:`cdr.trends` — Poisson/negative binomial trends, annual percent change, joinpoints.
- :mod:`cdr.factors` — modifiable-factor prevalence and models.
- :mod:`cdr.disclosure` — primary and secondary suppression with an independent audit.
- :mod:`cdr.report` — the annual statistics bundle.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_MODULES = (
    "errors", "data", "schema", "fields", "reference", "synthetic", "rates", "aggregate", "footprints",
    "trends", "factors", "models", "disclosure", "report",
)

__all__ = [*_MODULES, "read_records", "__version__"]


def __getattr__(name):
    # Lazy loading keeps `import cdr` fast (geopandas, statsmodels load only when used).
    if name in _MODULES:
        module = importlib.import_module(f"cdr.{name}")
        globals()[name] = module
        return module
    if name == "read_records":
        from cdr.schema import read_records

        return read_records
    raise AttributeError(f"module 'cdr' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
