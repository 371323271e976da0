"""Logistic models of the modifiable-factor judgement: MLE, GEE for clustering, Firth for separation."""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from cdr import _validate as check
from cdr._base import SYNTHETIC_NOTE, Estimator, Summary, version_stamp
from cdr.data._areas import _check_vintage
from cdr.errors import ArgumentError, SeparationWarning
from cdr.factors import _records as R
from cdr.factors._firth import cluster_robust_cov, firth_logit
from cdr.factors._plots import forest_plot

DEFAULT_FORMULA = "modifiable ~ C(category) + C(age_band) + imd_quintile + C(sex)"
OUTCOMES = ("modifiable", *R.DOMAIN_ORDER)
CLUSTERS = ("la", "footprint", "region")
REMEDIES = ("firth", "none")
#: Coefficients beyond this (|log OR| > 10, OR > 22,000) or standard errors beyond MAX_SE are
#: taken as the signature of (quasi-)separation (Heinze & Schemper 2002).
MAX_ABS_COEF = 10.0
MAX_SE = 10.0
#: Below this many clusters the GEE sandwich is biased downwards; the Mancl & DeRouen (2001)
#: bias-reduced covariance is used instead.
MIN_CLUSTERS_ROBUST = 40


def _outcome_of(formula, caller):
    if not isinstance(formula, str) or "~" not in formula:
        raise ArgumentError(f"{caller}: 'formula' must be a string 'outcome ~ terms', e.g. {DEFAULT_FORMULA!r}; "
                         f"got {formula!r}.")
    lhs = formula.split("~", 1)[0].strip()
    if lhs not in OUTCOMES:
        raise ArgumentError(f"{caller}: the outcome (left of '~') must be one of {OUTCOMES}; got {lhs!r}.")
    return lhs


def _variable(term_name):
    m = re.match(r"C\(\s*([A-Za-z_][A-Za-z0-9_]*)", term_name)
    return m.group(1) if m else term_name


def _level_label(param_name):
    m = re.search(r"\[T\.(.*)\]$", param_name)
    return m.group(1) if m else ""


class FactorModel(Estimator):
    """Logistic regression of the modifiable-factor judgement on case characteristics.

    Configuration here, data in :meth:`fit` (which returns a :class:`FactorModelResult`).
    ``FactorModel(formula, **kw).fit(records)`` is :func:`factor_model` ``(records, formula, **kw)``;
    see :doc:`/methods/factors` for the methods.

    Parameters
    ----------
    formula : str, default "modifiable ~ C(category) + C(age_band) + imd_quintile + C(sex)"
        A patsy formula; the outcome is ``modifiable`` or a domain column (see :func:`factor_model`).
        ``imd_quintile`` is numeric (1 = most deprived): its OR is per quintile step.
    cluster : {None, "la", "footprint", "region"}, default None
        Cluster for GEE with an exchangeable working correlation; ``"footprint"`` needs `design`.
    level : {"la", "footprint", "region", "nation"}, default "nation"
        Geography of `unit`.
    unit : str, optional
        Fit only the records of this unit of `level`; default all records.
    design : FootprintDesign, pandas.Series or pandas.DataFrame, optional
        la_code → footprint_id, for footprint clusters or level.
    remedy : {"firth", "none"}, default "firth"
        On separation or zero cells: refit by Firth's penalised likelihood, or keep the MLE fit.
    conf : float, default 0.95
        Confidence level of the odds-ratio limits, in (0, 1).
    vintage : int, default 2023
        Geography vintage of ``la_code``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> cat = rng.choice(["infection", "malignancy"], 2000)
    >>> p = np.where(cat == "malignancy", 0.05, 0.30)
    >>> recs = pd.DataFrame({"la_code": "E06000001", "category": cat, "reviewed": True,
    ...                      "modifiable": np.where(rng.random(2000) < p, "yes", "no")})
    >>> res = FactorModel("modifiable ~ C(category)", conf=0.9).fit(recs)
    >>> res.info["method"], res.info["n_obs"]
    ('logit_mle', 2000)
    >>> res.odds_ratios[["odds_ratio", "odds_ratio_lower_90", "odds_ratio_upper_90"]].round(1).values.tolist()
    [[7.6, 5.9, 9.8]]
    """

    def __init__(self, formula=DEFAULT_FORMULA, *, cluster=None, level="nation", unit=None,
                 design=None, remedy="firth", conf=0.95, vintage=2023):
        self.formula, self.cluster, self.level, self.unit = formula, cluster, level, unit
        self.design, self.remedy, self.conf, self.vintage = design, remedy, conf, vintage
        self._check_params("FactorModel")

    def _check_params(self, caller):
        """The configuration, checked by ``__init__`` and again by ``fit``: (outcome, confidence level)."""
        outcome = _outcome_of(self.formula, caller)
        R.check_level(self.level, caller)
        if self.cluster is not None:
            check.one_of(self.cluster, CLUSTERS, "cluster", caller, hint=" (or None)")
        check.one_of(self.remedy, REMEDIES, "remedy", caller)
        if self.unit is not None and not isinstance(self.unit, (str, int, np.integer)):
            raise ArgumentError(f"{caller}: 'unit' must be None or the code of one unit of `level` (e.g. "
                                f"'E12000007' for a region); got {check.describe(self.unit)}.")
        _check_vintage(self.vintage, caller)
        (conf,) = R.check_conf(self.conf, caller)
        return outcome, conf

    # ------------------------------------------------------------------ data
    def _model_frame(self, records, caller):
        outcome, conf = self._check_params(caller)
        need = [self.level] + ([self.cluster] if self.cluster else [])
        rec = R.prepare(records, caller=caller, need=need, design=self.design, vintage=self.vintage,
                        domains=[outcome] if outcome != "modifiable" else [])
        if outcome not in rec:
            raise ArgumentError(f"{caller}: records have no {outcome!r} column.")
        if self.unit is not None:
            key = R.LEVEL_KEYS[self.level]
            rec = rec[rec[key].astype(str) == str(self.unit)]
            if rec.empty:
                raise ArgumentError(f"{caller}: 'unit'={self.unit!r} has no records ({key}={self.unit!r} matches "
                                    f"none); give a code of level={self.level!r} present in the records.")
        reviewed = rec["reviewed"].to_numpy(bool)
        if outcome == "modifiable":
            judged, yes = rec[outcome].isin(["yes", "no"]), rec[outcome].eq("yes")
        else:
            judged, yes = rec[outcome].isin(list(R.JUDGED_DOMAIN)), rec[outcome].isin(list(R.CONTRIBUTORY))
        judged = judged.to_numpy(bool) & reviewed
        counts = {"n_records": len(rec), "n_pending": int((~reviewed).sum()),
                  "n_insufficient": int((reviewed & ~judged).sum())}
        data = rec.loc[judged].copy()
        data[outcome] = yes.to_numpy(bool)[judged].astype(float)
        for name in ("category", "age_band", "sex", "ethnicity"):
            if name in data:
                col = data[name].astype(object).where(data[name].ne("unknown"), None) \
                    if name in ("sex", "ethnicity") else data[name]
                data[name] = R.ordered_categorical(col, name, observed_only=True)
        if "imd_quintile" in data:
            data["imd_quintile"] = pd.to_numeric(data["imd_quintile"], errors="coerce").astype(float)
        data = data.reset_index(drop=True)
        return outcome, data, counts, conf

    # ------------------------------------------------------------------ fit
    def fit(self, records):
        """Fit to `records` (a records frame, see :func:`cdr.read_records`); returns the result."""
        import statsmodels.api as sm
        import statsmodels.formula.api as smf

        caller = "FactorModel.fit"
        outcome, data, counts, conf = self._model_frame(records, caller)
        if data[outcome].nunique() < 2:
            raise ArgumentError(f"{caller}: the outcome {outcome!r} takes one value only among the "
                             f"{len(data):,} judged reviews; a model cannot be fitted.")
        logit = smf.logit(self.formula, data)
        X, y = np.asarray(logit.exog, float), np.asarray(logit.endog, float)
        names = list(logit.exog_names)
        used = np.asarray(logit.data.row_labels)
        counts["n_missing"] = len(data) - len(y)
        diagnostics = _cells(logit, X, y)
        zero_cells = diagnostics[diagnostics["zero_cell"]]
        cluster_col = R.LEVEL_KEYS[self.cluster] if self.cluster else None
        groups = data.loc[used, cluster_col].astype(str).to_numpy() if cluster_col else None
        n_clusters = int(len(np.unique(groups))) if cluster_col else None

        info = {"outcome": outcome, "n_obs": int(len(y)), "n_events": int(y.sum()), **counts,
                "n_clusters": n_clusters, "cluster": self.cluster, "remedy_applied": False,
                "problems": []}
        params = cov = method = None
        if not zero_cells.empty:
            info["problems"].append(f"{len(zero_cells)} zero cell(s) in outcome x factor level")
        if zero_cells.empty or self.remedy == "none":
            params, cov, method, problems, extra = self._standard_fit(logit, data, groups, names)
            info.update(extra)
            info["problems"] += problems
        if info["problems"]:
            detail = "; ".join(info["problems"])
            if not zero_cells.empty:
                cells = ", ".join(f"{r.term}={r.level!r} ({r.events} events / {r.n})"
                                  for r in zero_cells.itertuples())
                detail += f": {cells}"
            if self.remedy == "firth":
                fit = firth_logit(X, y)
                params = fit["params"]
                if cluster_col:
                    cov = cluster_robust_cov(X, y, fit, groups)
                    method = "firth_cluster_robust"
                else:
                    cov = fit["cov"]
                    method = "firth"
                info.update({"remedy_applied": True, "converged": fit["converged"], "n_iter": fit["n_iter"],
                             "correlation": "independence" if cluster_col else None,
                             "cov_type": "cluster_robust" if cluster_col else "model"})
                action = ("refitted by Firth's penalised likelihood (finite, bias-reduced estimates"
                          + (", cluster-robust variance by " + self.cluster if cluster_col else "") + ")")
            else:
                if params is None:
                    raise ArgumentError(f"{caller}: the model could not be fitted ({detail}); use remedy='firth' "
                                     "or merge sparse levels.")
                action = "remedy='none': maximum-likelihood estimates kept; they may be infinite or absurd"
            warnings.warn(
                f"factor_model: separation or sparse cells in {self.formula!r} ({detail}); {action}. "
                "Merge sparse levels or drop the term if an estimate rests on a zero cell.",
                SeparationWarning, stacklevel=3)
        info["method"] = method
        coefs = _coef_table(names, params, cov, conf, method, X, y, logit)
        spec = {"formula": self.formula, "cluster": self.cluster, "level": self.level, "unit": self.unit,
                "remedy": self.remedy, "conf": conf, "vintage": self.vintage,
                "design": None if self.design is None else repr(self.design)[:200], **version_stamp()}
        self.result_ = FactorModelResult(
            coefficients=coefs,
            odds_ratios=coefs[coefs["term"] != "Intercept"].reset_index(drop=True),
            diagnostics=diagnostics, info=info, spec=spec, synthetic=R.is_synthetic(records))
        return self.result_

    def _standard_fit(self, logit, data, groups, names):
        """MLE logit, or GEE (exchangeable) with clustering; reports signs of separation."""
        import statsmodels.api as sm
        import statsmodels.formula.api as smf

        problems = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                if groups is None:
                    res = logit.fit(disp=0, maxiter=100)
                    converged = bool(res.mle_retvals.get("converged", True))
                    extra = {"correlation": None, "cov_type": "model", "converged": converged}
                    method = "logit_mle"
                else:
                    cluster_col = R.LEVEL_KEYS[self.cluster]
                    cov_type = "robust" if len(np.unique(groups)) >= MIN_CLUSTERS_ROBUST else "bias_reduced"
                    gee = smf.gee(self.formula, groups=cluster_col, data=data,
                                  family=sm.families.Binomial(),
                                  cov_struct=sm.cov_struct.Exchangeable())
                    res = gee.fit(maxiter=100, cov_type=cov_type)
                    converged = bool(getattr(res, "converged", True))
                    rho = float(np.asarray(gee.cov_struct.dep_params).ravel()[0])
                    extra = {"correlation": "exchangeable", "cov_type": cov_type, "converged": converged,
                             "within_cluster_correlation": rho}
                    method = "gee_exchangeable"
            except (np.linalg.LinAlgError, ValueError) as exc:
                return None, None, "failed", [f"fit failed ({type(exc).__name__}: {exc})"], {}
        if any("separation" in str(w.message).lower() for w in caught):
            problems.append("perfect separation detected by statsmodels")
        if not converged:
            problems.append("the fit did not converge")
        params = np.asarray(res.params, float)
        cov = np.asarray(res.cov_params(), float)
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
        slopes = [i for i, n in enumerate(names) if n != "Intercept"]
        if not np.all(np.isfinite(params)) or not np.all(np.isfinite(se)):
            problems.append("non-finite estimates")
        elif slopes and (np.max(np.abs(params[slopes])) > MAX_ABS_COEF or np.max(se[slopes]) > MAX_SE):
            j = slopes[int(np.argmax(np.abs(params[slopes]) + se[slopes]))]
            problems.append(f"huge coefficient or standard error for {names[j]} "
                            f"(log OR {params[j]:.1f}, SE {se[j]:.1f})")
        return params, cov, method, problems, extra


def _cells(logit, X, y):
    """Outcome x level cross-tab for each categorical term: n, events, non-events, zero cells."""
    info = logit.data.model_spec
    rows = []
    for term, sl in info.term_name_slices.items():
        if term == "Intercept":
            continue
        cols = X[:, sl]
        if not np.isin(cols, (0.0, 1.0)).all():
            continue  # a continuous term: no cells
        names = info.column_names[sl]
        levels = [(_level_label(n) or n, cols[:, j] == 1) for j, n in enumerate(names)]
        term_obj = info.terms[list(info.term_name_slices).index(term)]
        if len(term_obj.factors) == 1:
            fi = info.factor_infos[term_obj.factors[0]]
            if fi.type == "categorical" and len(fi.categories) == cols.shape[1] + 1:
                levels.insert(0, (f"{fi.categories[0]}", cols.sum(axis=1) == 0))
        for level, mask in levels:
            n, events = int(mask.sum()), int(y[mask].sum())
            rows.append({"term": _variable(term), "level": str(level), "n": n, "events": events,
                         "non_events": n - events, "zero_cell": n > 0 and (events == 0 or events == n)})
    cols = ["term", "level", "n", "events", "non_events", "zero_cell"]
    return pd.DataFrame(rows, columns=cols).astype({"zero_cell": bool})


def _ci_names(conf):
    """Names of the odds-ratio limit columns: ``odds_ratio_lower_95``, ``odds_ratio_upper_95``."""
    return R.odds_ratio_ci_columns(conf)


def _coef_table(names, params, cov, conf, method, X, y, logit):
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    z = stats.norm.ppf(0.5 + conf / 2)
    lower, upper = _ci_names(conf)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        zstat = params / se
        p_value = 2 * stats.norm.sf(np.abs(zstat))
        table = pd.DataFrame({
            "term": names,
            "variable": [_variable(n.split("[")[0]) if n != "Intercept" else "Intercept" for n in names],
            "level": [_level_label(n) for n in names],
            "coef": params, "se": se,
            "odds_ratio": np.exp(params), lower: np.exp(params - z * se), upper: np.exp(params + z * se),
            "p_value": p_value,
        })
    dummy = np.isin(X, (0.0, 1.0)).all(axis=0)
    n = np.where(dummy, X.sum(axis=0), np.nan)
    events = np.where(dummy, (X * y[:, None]).sum(axis=0), np.nan)
    intercept = np.array([name == "Intercept" for name in names])
    n[intercept], events[intercept] = np.nan, np.nan
    table.insert(3, "n", n)
    table.insert(4, "events", events)
    reference = {}
    info = logit.data.model_spec
    for term_obj in info.terms:
        if len(term_obj.factors) == 1:
            fi = info.factor_infos[term_obj.factors[0]]
            if fi.type == "categorical":
                reference[_variable(term_obj.name())] = str(fi.categories[0])
    table.insert(3, "reference", [reference.get(v, "") for v in table["variable"]])
    table["method"] = method
    return table


@dataclass(frozen=True, repr=False)
class FactorModelResult:
    """A fitted factor model.

    Attributes
    ----------
    odds_ratios : pandas.DataFrame
        One row per model term except the intercept: ``term`` (statsmodels name), ``variable``,
        ``level`` (empty for a continuous term), ``reference`` (reference level), ``n`` and ``events``
        (cases at that level and those with the outcome; NaN for continuous terms), ``coef`` and
        ``se`` (log odds ratio and its standard error), ``odds_ratio``, ``odds_ratio_lower_95``, ``odds_ratio_upper_95``
        (odds ratio and its Wald limits; the level in the name is ``spec["conf"]``, e.g. ``odds_ratio_lower_90``
        for ``conf=0.9``, by :func:`cdr.rates.ci_columns`), ``p_value`` (two-sided Wald) and ``method``
        (``logit_mle``, ``gee_exchangeable``, ``firth`` or ``firth_cluster_robust``).
    coefficients : pandas.DataFrame
        The same with the intercept (its ``odds_ratio`` is the baseline odds).
    diagnostics : pandas.DataFrame
        Outcome × level cross-tab of each categorical term: ``term``, ``level``, ``n``, ``events``,
        ``non_events``, ``zero_cell`` (True where all or none of the level's cases have the outcome).
    info : dict
        Counts (``n_records``, ``n_pending``, ``n_insufficient``, ``n_missing``, ``n_obs``,
        ``n_events``, ``n_clusters``), ``method``, ``correlation``, ``cov_type``, ``converged``,
        ``problems`` found and whether a remedy was applied.
    spec : dict
        Every argument used and the cdr version.
    synthetic : bool
        True when the records were synthetic.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from cdr.factors import factor_model
    >>> rng = np.random.default_rng(1)
    >>> cat = rng.choice(["infection", "malignancy"], 2000)
    >>> p = np.where(cat == "malignancy", 0.05, 0.30)
    >>> recs = pd.DataFrame({"la_code": "E06000001", "category": cat, "reviewed": True,
    ...                      "modifiable": np.where(rng.random(2000) < p, "yes", "no")})
    >>> res = factor_model(recs, "modifiable ~ C(category)")     # a FactorModelResult
    >>> res.coefficients["term"].tolist()
    ['Intercept', 'C(category)[T.infection]']
    >>> res.odds_ratios[["level", "reference"]].values.tolist(), int(res.odds_ratios.loc[0, "n"])
    ([['infection', 'malignancy']], 986)
    >>> res.synthetic, res.info["converged"]
    (False, True)
    """

    coefficients: pd.DataFrame
    odds_ratios: pd.DataFrame
    diagnostics: pd.DataFrame
    info: dict
    spec: dict
    synthetic: bool = False
    _extra: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The odds-ratio table (a copy), with ``.attrs["synthetic"]`` set."""
        out = self.odds_ratios.copy()
        out.attrs["synthetic"] = self.synthetic
        return out

    def summary(self) -> Summary:
        i = self.info
        lines = [
            f"Formula: {self.spec['formula']}",
            f"Method: {_describe_method(i)}",
            f"Cases: {i['n_obs']:,} judged reviews ({i['n_events']:,} with the outcome) of {i['n_records']:,} "
            f"records; excluded: {i['n_pending']:,} pending, {i['n_insufficient']:,} with insufficient "
            f"information, {i['n_missing']:,} with a missing covariate.",
        ]
        if i.get("problems"):
            lines.append("Problems found: " + "; ".join(i["problems"]) +
                         (" (remedy: Firth penalised likelihood)" if i["remedy_applied"] else ""))
        if self.synthetic:
            lines.insert(0, SYNTHETIC_NOTE)
        cols = ["variable", "level", "reference", "n", "events", "odds_ratio", *_ci_names(self.spec["conf"]), "p_value"]
        level = f"{self.spec['conf']:.0%}"
        return Summary(title=f"Factor model: odds ratios ({level} CI) for '{i['outcome']}'", lines=lines,
                       tables={"Odds ratios": self.odds_ratios[cols]})

    def __repr__(self) -> str:
        i = self.info
        return (f"FactorModelResult({self.spec['formula']!r}, method={i['method']!r}, n_obs={i['n_obs']}, "
                f"n_clusters={i['n_clusters']}, synthetic={self.synthetic})")

    def plot(self, ax=None):
        """Forest plot of the odds ratios (log scale) with their confidence limits; returns the Axes."""
        return forest_plot(self, ax=ax)


def _describe_method(info):
    m = info["method"]
    if m == "logit_mle":
        return "logistic regression, maximum likelihood (statsmodels Logit); Wald limits"
    if m == "gee_exchangeable":
        return (f"GEE, binomial/logit, exchangeable working correlation within {info['cluster']} "
                f"(estimated {info.get('within_cluster_correlation', float('nan')):.3f}), "
                f"{info['n_clusters']} clusters, {info['cov_type']} sandwich covariance")
    if m == "firth":
        return "Firth penalised-likelihood logistic regression (separation remedy); Wald limits"
    if m == "firth_cluster_robust":
        return (f"Firth penalised-likelihood logistic regression (separation remedy) with a cluster-robust "
                f"sandwich covariance over {info['n_clusters']} {info['cluster']} clusters")
    return m


def factor_model(records, formula=DEFAULT_FORMULA, *, cluster=None, level="nation", unit=None,
                 design=None, remedy="firth", conf=0.95, vintage=2023):
    """Logistic regression of modifiable factors on case characteristics, with odds ratios.

    Cases are completed reviews with a yes/no judgement; pending reviews, reviews with
    insufficient information and cases with a missing covariate are excluded and counted in
    ``result.info``. Sex or ethnicity ``"unknown"`` is treated as missing.

    Parameters
    ----------
    records : pandas.DataFrame
        Records with the contract columns (``cdr.read_records``); not modified.
    formula : str, default "modifiable ~ C(category) + C(age_band) + imd_quintile + C(sex)"
        A patsy formula. The outcome is ``modifiable`` (1 = ``yes``, 0 = ``no``) or a domain column
        (1 = ``may_have_contributed``/``sufficient``, 0 = ``none``/``unlikely``). Categorical terms
        use the canonical order, so the reference levels are ``abuse_neglect`` (category, the first
        level present), ``neonatal`` (age band) and ``female`` (sex). ``imd_quintile`` is numeric,
        1 = most deprived: its OR is per quintile step towards less deprived.
    cluster : {None, "la", "footprint", "region"}, default None
        With a cluster, cases are correlated within it (one panel reviews them all): GEE with an
        exchangeable working correlation and a sandwich covariance (bias-reduced, Mancl & DeRouen
        2001, with fewer than 40 clusters). ``"footprint"`` needs `design`.
    level : {"la", "footprint", "region", "nation"}, default "nation"
        Geography of `unit`; its key column is added to the data (usable in the formula).
    unit : str, optional
        Fit only the records of this unit of `level` (e.g. one region code); default all records.
    design : FootprintDesign, pandas.Series or pandas.DataFrame, optional
        la_code → footprint_id, for footprint clusters or level.
    remedy : {"firth", "none"}, default "firth"
        What to do on separation or zero cells (always with a :class:`cdr.errors.SeparationWarning`):
        refit by Firth's penalised likelihood, or keep the maximum-likelihood fit.
    conf : float, default 0.95
        Confidence level of the odds-ratio limits.
    vintage : int, default 2023
        Geography vintage of ``la_code``.

    Returns
    -------
    FactorModelResult
        ``.odds_ratios`` (term, variable, level, reference, n, events, coef, se, odds_ratio, odds_ratio_lower_95, odds_ratio_upper_95,
        p_value, method), ``.summary()``, ``.to_frame()``, ``.plot()`` (forest plot), ``.info``.

    Notes
    -----
    R equivalents: ``glm(..., family = binomial)``; ``geepack::geeglm(..., corstr = "exchangeable")``;
    ``logistf::logistf(..., pl = FALSE)``. GEE estimates population-averaged ORs, which is what a
    national or regional report states; a random-intercept model would give cluster-specific ORs
    (larger in magnitude) and depend on a normal random effect. See ``docs/methods/factors.md``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> n = 2000
    >>> cat = rng.choice(["infection", "malignancy"], n)
    >>> p = np.where(cat == "malignancy", 0.05, 0.30)
    >>> recs = pd.DataFrame({"la_code": "E06000001", "category": cat, "reviewed": True,
    ...                      "modifiable": np.where(rng.random(n) < p, "yes", "no")})
    >>> res = factor_model(recs, "modifiable ~ C(category)")
    >>> res.odds_ratios[["variable", "level", "reference"]].iloc[0].tolist()
    ['category', 'infection', 'malignancy']
    >>> bool(6 < res.odds_ratios["odds_ratio"].iloc[0] < 11)   # true OR (0.3/0.7)/(0.05/0.95) = 8.1
    True
    """
    return FactorModel(formula, cluster=cluster, level=level, unit=unit, design=design, remedy=remedy,
                       conf=conf, vintage=vintage).fit(records)
