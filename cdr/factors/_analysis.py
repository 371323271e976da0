"""One call for the factor tables, model and figures of a report or the ``cdr factors`` command."""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field

import pandas as pd

from cdr._base import Summary
from cdr.factors._model import DEFAULT_FORMULA, FactorModelResult, factor_model
from cdr.factors._plots import plot_prevalence
from cdr.factors._prevalence import prevalence
from cdr.errors import CdrError, CdrWarning

DEFAULT_BY = (("category",), ("age_band",), ("sex",), ("imd_quintile",))


@dataclass(repr=False)
class FactorAnalysis:
    """Prevalence tables, the factor model and its settings. ``to_dir`` writes CSV, PNG and JSON.

    Attributes
    ----------
    tables : dict of str to pandas.DataFrame
        ``prevalence_by_<groups>`` (one per grouping, at the chosen level) and
        ``prevalence_by_category_domain`` (national, overall judgement and the four domains); see
        :func:`prevalence` for the columns (percentages with Wilson limits).
    model : FactorModelResult or None
        The factor model, or None when it could not be fitted.
    settings : dict
        Every argument used (``level``, ``formula``, ``cluster``, ``by``, ``conf``, ``remedy``,
        ``cluster_note``, ``vintage``).
    synthetic : bool, default False
        True when the records were synthetic.
    model_error : str, optional
        Why the model was not fitted (None when it was).
    figures : dict of str to matplotlib.figure.Figure
        Filled by :meth:`plot`; empty until then.

    Examples
    --------
    >>> from cdr.synthetic import generate_records
    >>> fa = analyse(generate_records(years=[2019], seed=0), by=[["sex"]],
    ...              formula="modifiable ~ C(age_band)")
    >>> sorted(fa.tables)
    ['prevalence_by_category_domain', 'prevalence_by_sex']
    >>> fa.synthetic, fa.model_error, fa.model.info["method"]
    (True, None, 'logit_mle')
    """

    tables: dict
    model: FactorModelResult | None
    settings: dict
    synthetic: bool = False
    model_error: str | None = None
    figures: dict = field(default_factory=dict)

    def summary(self) -> Summary:
        lines = [f"Level: {self.settings['level']}; tables: {', '.join(self.tables)}"]
        if self.model_error:
            lines.append(f"Factor model not fitted: {self.model_error}")
        tables = {}
        if self.model is not None:
            tables["Odds ratios"] = self.model.summary().tables["Odds ratios"]
        return Summary("Contributory (modifiable) factors", lines=lines, tables=tables)

    __repr__ = lambda self: str(self.summary())  # noqa: E731

    def plot(self):
        """Build the figures: ``{name: matplotlib.figure.Figure}`` (also kept in ``.figures``)."""
        figs = {}
        nat = self.tables.get("prevalence_by_category_domain")
        if nat is not None:
            ax = plot_prevalence(nat, kind="heatmap", group="category")
            figs["prevalence_heatmap_category_domain"] = ax.figure
            ax = plot_prevalence(nat, kind="bar", group="category")
            figs["prevalence_bar_category"] = ax.figure
        if self.model is not None:
            figs["odds_ratios_forest"] = self.model.plot().figure
        self.figures = figs
        return figs

    def to_dir(self, out):
        """Write ``tables/*.csv``, ``figures/*.png``, ``model_summary.txt`` and ``settings.json`` under `out`.

        Returns the list of paths written.
        """
        import matplotlib.pyplot as plt

        written = []
        os.makedirs(os.path.join(out, "tables"), exist_ok=True)
        os.makedirs(os.path.join(out, "figures"), exist_ok=True)
        for name, table in self.tables.items():
            path = os.path.join(out, "tables", f"{name}.csv")
            table.to_csv(path, index=False)
            written.append(path)
        if self.model is not None:
            path = os.path.join(out, "tables", "odds_ratios.csv")
            self.model.to_frame().to_csv(path, index=False)
            written.append(path)
            path = os.path.join(out, "tables", "model_cells.csv")
            self.model.diagnostics.to_csv(path, index=False)
            written.append(path)
        for name, fig in (self.figures or self.plot()).items():
            path = os.path.join(out, "figures", f"{name}.png")
            fig.savefig(path, dpi=120, bbox_inches="tight")
            plt.close(fig)
            written.append(path)
        path = os.path.join(out, "model_summary.txt")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(str(self.model.summary()) if self.model is not None else f"No model: {self.model_error}\n")
        written.append(path)
        path = os.path.join(out, "settings.json")
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({**self.settings, "synthetic": self.synthetic,
                       "model_info": None if self.model is None else _jsonable(self.model.info)},
                      fh, indent=2, default=str)
        written.append(path)
        return written


def _jsonable(d):
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in d.items()}


def analyse(records, settings=None, *, level=None, design=None, formula=None, cluster="settings",
            by=None, conf=None, vintage=2023):
    """Prevalence tables by each grouping, by category × domain, and the factor model, in one call.

    Parameters
    ----------
    records : pandas.DataFrame
        Records (``cdr.read_records``).
    settings : dict, optional
        The ``[factors]`` section of an analysis spec (``cdr.models.load_spec(...)["factors"]``):
        ``formula``, ``cluster`` (``"none"`` for none), ``prevalence_by`` (list of lists),
        ``domains``, ``conf``, ``remedy``. Keyword arguments override it.
    level : {"la", "footprint", "region", "nation"}, optional
        Level of the prevalence tables (default ``"nation"``).
    design, formula, cluster, by, conf, vintage
        As in :func:`prevalence` and :func:`factor_model`; ``by`` is a list of groupings; `conf`
        is a confidence level in (0, 1) (default 0.95).

    Returns
    -------
    FactorAnalysis
        ``.tables`` (``prevalence_by_<groups>`` at `level`, ``prevalence_by_category_domain``
        nationally), ``.model`` (or ``None`` with ``.model_error`` saying why), ``.settings``.

    Examples
    --------
    >>> from cdr.synthetic import generate_records
    >>> recs = generate_records(years=[2019], seed=0)
    >>> fa = analyse(recs, formula="modifiable ~ C(age_band) + imd_quintile")
    >>> sorted(fa.tables)
    ['prevalence_by_age_band', 'prevalence_by_category', 'prevalence_by_category_domain', 'prevalence_by_imd_quintile', 'prevalence_by_sex']
    >>> fa.model.info["n_obs"] == fa.model.info["n_records"] - fa.model.info["n_pending"] - fa.model.info["n_insufficient"]
    True
    """
    s = dict(settings or {})
    level = level or s.get("level", "nation")
    formula = formula or s.get("formula", DEFAULT_FORMULA)
    if cluster == "settings":
        cluster = s.get("cluster", None)
    cluster = None if cluster in (None, "none") else cluster
    cluster_note = None
    if cluster == "footprint" and design is None:
        cluster_note = ("cluster='footprint' needs a footprint design, and none was given: the factor model "
                        "was fitted without clustering. Pass design= (cdr factors --design FILE) to cluster.")
        warnings.warn(f"analyse: {cluster_note}", CdrWarning, stacklevel=2)
        cluster = None
    by = [tuple(b) if not isinstance(b, str) else (b,) for b in (by or s.get("prevalence_by", DEFAULT_BY))]
    conf = conf or s.get("conf", 0.95)
    remedy = s.get("remedy", "firth")
    tables = {}
    for groups in by:
        tables["prevalence_by_" + "_".join(groups)] = prevalence(
            records, by=list(groups), level=level, design=design, domain=None, conf=conf, vintage=vintage)
    tables["prevalence_by_category_domain"] = prevalence(
        records, by=["category"], level="nation", domain=s.get("domains", "all"), conf=conf, vintage=vintage)
    model, error = None, None
    try:
        model = factor_model(records, formula, cluster=cluster, design=design, remedy=remedy,
                             conf=conf if isinstance(conf, float) else conf[0], vintage=vintage)
    except (ValueError, CdrError) as exc:
        error = str(exc)
        warnings.warn(f"analyse: the factor model was not fitted: {error}", stacklevel=2)
    from cdr.factors._records import is_synthetic

    return FactorAnalysis(tables=tables, model=model, model_error=error, synthetic=is_synthetic(records),
                          settings={"level": level, "formula": formula, "cluster": cluster,
                                    "by": [list(b) for b in by], "conf": conf, "remedy": remedy,
                                    "cluster_note": cluster_note,
                                    "vintage": vintage})
