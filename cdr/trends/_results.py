"""Result objects of cdr.trends (private): TrendResult, JoinpointResult, CompareResult."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cdr._base import SYNTHETIC_NOTE, Summary
from cdr._validate import axes
from cdr.errors import ArgumentError
from cdr.trends._common import ci_names
from cdr.trends._tables import aapc_row, covariates_table, family_row, segments_table

__all__ = ["TrendResult", "JoinpointResult", "CompareResult"]


def _title_suffix(spec) -> str:
    return " - SYNTHETIC DATA" if spec.get("synthetic") else ""


def _label(key: dict) -> str:
    return ", ".join(f"{v}" for v in key.values()) if key else "all"


def _get_ax(ax):
    axes(ax, "ax", "plot")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 4.5))
    return ax


# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class TrendResult:
    """Log-linear trend per group: annual percent change (APC) and fitted rates.

    Attributes
    ----------
    apc : pandas.DataFrame
        One row per group: group columns, ``apc``, ``apc_lower_95``, ``apc_upper_95`` (percent a year),
        ``p_value`` (Wald test of no trend), ``family`` (``poisson``, ``negbin`` or
        ``quasipoisson``), ``dispersion`` (Pearson chi2/df of the Poisson fit), ``alpha`` (negative
        binomial ancillary parameter, NaN otherwise), ``overdispersion_p`` (Pearson chi-square test),
        ``n_years``, ``deaths``, ``note`` (why the family was chosen), and one row per covariate
        effect in ``covariates``.
    fitted : pandas.DataFrame
        Per group and time: group columns, time, ``deaths``, ``population``, ``rate`` (per
        `multiplier`), exact Poisson limits of the observed rate, ``expected`` (fitted deaths) and
        ``fitted_rate``.
    covariates : pandas.DataFrame
        Per group and covariate: ``rate_ratio`` with limits and ``p_value``.
    spec : dict
        Every argument used, and the cdr version.

    Examples
    --------
    >>> import pandas as pd
    >>> from cdr.trends import fit_trend
    >>> df = pd.DataFrame({"year": [2019, 2020, 2021], "deaths": [100, 110, 121],
    ...                    "population": [1e6] * 3})
    >>> res = fit_trend(df, family="poisson")        # a TrendResult
    >>> round(float(res.apc.loc[0, "apc"]), 2)       # deaths grow 10 % a year
    10.0
    >>> res.fitted["rate"].round(1).tolist()         # per 100,000
    [10.0, 11.0, 12.1]
    """

    apc: pd.DataFrame
    fitted: pd.DataFrame
    covariates: pd.DataFrame
    spec: dict

    def __repr__(self) -> str:
        by = self.spec.get("by") or []
        return (f"TrendResult(family={self.spec['family']!r}, groups={len(self.apc)}, by={by}, "
                f"covariates={self.spec.get('covariates') or []})")

    def to_frame(self) -> pd.DataFrame:
        """The APC table (one row per group): what scripts use."""
        return self.apc.copy()

    def summary(self) -> Summary:
        s = self.spec
        lines = [f"Log-linear model of '{s['count']}' with offset ln('{s['population']}'), slope per unit of "
                 f"'{s['time']}'; APC = 100(exp(b) - 1); {int(100 * s['conf'])}% Wald limits.",
                 f"Family requested: {s['family']}. Overdispersion test: Pearson chi-square goodness of fit "
                 f"of the Poisson model (p < {s['overdispersion_p']}) -> negative binomial (estimated alpha), "
                 "or quasi-Poisson if that fit fails."]
        if s.get("covariates"):
            lines.append(f"Adjusted for: {', '.join(s['covariates'])}.")
        if s.get("synthetic"):
            lines.append(SYNTHETIC_NOTE)
        tables = {"Annual percent change": self.apc}
        if len(self.covariates):
            tables["Covariates (rate ratios)"] = self.covariates
        return Summary(title="Trend (annual percent change)" + _title_suffix(s), lines=lines, tables=tables)

    def plot(self, ax=None, *, log=False):
        """Observed rates with exact 95 % limits and fitted trend lines, one colour per group."""
        ax = _get_ax(ax)
        s = self.spec
        by, t = s.get("by") or [], s["time"]
        lo, hi = s["ci_names"]
        groups = self.fitted.groupby(by, sort=True) if by else [((), self.fitted)]
        for i, (key, g) in enumerate(groups):
            key = key if isinstance(key, tuple) else (key,)
            colour = f"C{i % 10}"
            label = ", ".join(map(str, key)) if by else "observed"
            ax.errorbar(g[t], g["rate"], yerr=[g["rate"] - g[lo], g[hi] - g["rate"]], fmt="o",
                        color=colour, ms=4, capsize=2, label=label)
            ax.plot(g[t], g["fitted_rate"], "-", color=colour,
                    label="fitted trend" if not by else None)
        if by:  # one legend entry says what the lines are, whatever the number of groups
            ax.plot([], [], "-", color="grey", label="fitted trend (line per group)")
        ax.set_xlabel({"period_start": "year (first year of the reporting year)"}.get(t, t))
        ax.set_ylabel(f"deaths per {s['multiplier']:,} population at risk (children)")
        if log:
            ax.set_yscale("log")
        ax.set_title("Death rate and fitted log-linear trend" + _title_suffix(s))
        ax.legend(fontsize="small")
        return ax

    def plot_apc(self, ax=None):
        """Annual percent change per group with its limits (a forest plot), zero marked."""
        axes(ax, "ax", "plot_apc")
        s = self.spec
        by = s.get("by") or []
        table = self.apc.reset_index(drop=True)
        labels = table[by].astype(str).agg(", ".join, axis=1) if by else pd.Series(["all"])
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(6.5, max(2.5, 0.25 * len(table) + 1)))
        ypos = np.arange(len(table))[::-1]
        lo, hi = ci_names(s["conf"], "apc")
        ax.errorbar(table["apc"], ypos, xerr=[table["apc"] - table[lo], table[hi] - table["apc"]],
                    fmt="o", ms=4, capsize=2, color="C0")
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_yticks(ypos, labels)
        ax.set_xlabel(f"annual percent change (%/{s['time']}), {int(round(100 * s['conf']))}% limits")
        ax.set_title("Annual percent change in the death rate" + _title_suffix(s))
        return ax


# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class JoinpointResult:
    """Joinpoint regression results for one series or one per group (see :func:`cdr.trends.joinpoint`).

    Attributes
    ----------
    fits : list
        One fitted series per group (a single element without ``by``), in group order; the tables
        (``.segments``, ``.aapc()``, ``.selection``, ``.families``, ``.covariates``, ``.tests``,
        ``.fitted``) are built from them.
    spec : dict
        Every argument used (``method``, ``selection``, ``time``, ``by``, ``rate_units``, ...) and
        the cdr version.

    Examples
    --------
    >>> import pandas as pd
    >>> from cdr.trends import joinpoint
    >>> years = list(range(2000, 2012))
    >>> rate = [100 * 1.05 ** i for i in range(6)] + [100 * 1.05 ** 5 * 0.97 ** i for i in range(1, 7)]
    >>> jp = joinpoint(pd.DataFrame({"year": years, "rate": rate}), rate="rate", count=None,
    ...                population=None, method="nci", variance="constant", n_joinpoints=1)
    >>> jp.joinpoints, len(jp.fits)
    ([2005], 1)
    >>> jp.segments["apc"].round(2).tolist()          # percent a year, before and after 2005
    [5.0, -3.0]
    """

    fits: list
    spec: dict

    def __repr__(self) -> str:
        jp = self.joinpoints
        return (f"JoinpointResult(method={self.spec['method']!r}, selection={self.spec['selection']!r}, "
                f"groups={len(self.fits)}, joinpoints={jp!r})")

    @property
    def _grouped(self) -> bool:
        return bool(self.spec.get("by"))

    def _keyed(self, values):
        if not self._grouped:
            return values[0]
        return {tuple(f.key.values()) if len(f.key) > 1 else next(iter(f.key.values())): v
                for f, v in zip(self.fits, values)}

    @property
    def joinpoints(self):
        """Selected joinpoint times: a list (a dict of lists keyed by group when fitted with ``by``)."""
        return self._keyed([f.joinpoints for f in self.fits])

    @property
    def sse(self):
        """Weighted residual sum of squares of the final model (glm: Pearson chi-square); dict with ``by``."""
        return self._keyed([f.sse for f in self.fits])

    def _with_keys(self, frames) -> pd.DataFrame:
        out = []
        for f, frame in zip(self.fits, frames):
            frame = frame.copy()
            for i, (k, v) in enumerate(f.key.items()):
                frame.insert(i, k, v)
            out.append(frame)
        return pd.concat(out, ignore_index=True) if out else pd.DataFrame()

    @property
    def segments(self) -> pd.DataFrame:
        """One row per group and segment: start, end, APC with 95 % limits, p-value, slope, SE, df, method."""

        return self._with_keys([segments_table(f) for f in self.fits])

    @property
    def selection(self) -> pd.DataFrame:
        """Per group and number of joinpoints k: locations, SSE (or deviance), BIC, BIC3, WBIC, selected."""
        return self._with_keys([f.selection for f in self.fits])

    @property
    def families(self) -> pd.DataFrame:
        """Per group: the likelihood used (``family``: ``poisson``, ``negbin``, ``quasipoisson``; ``wls``
        for nci), the NB2 ``alpha``, quasi-Poisson ``dispersion``, the Pearson chi2/df of the largest
        Poisson model and its overdispersion test p-value, the ``covariates`` and a ``note`` on why."""

        return self._with_keys([pd.DataFrame([family_row(f)]) for f in self.fits])

    @property
    def covariates(self) -> pd.DataFrame:
        """Per group and covariate (``method="glm"``): rate ratio with 95 % limits and p-value."""

        return self._with_keys([covariates_table(f) for f in self.fits])

    @property
    def tests(self) -> pd.DataFrame:
        """Sequential permutation tests (empty unless ``selection='permutation'``)."""
        frames = [f.tests if f.tests is not None else pd.DataFrame() for f in self.fits]
        return self._with_keys(frames)

    @property
    def fitted(self) -> pd.DataFrame:
        """Per group and time: observed rate with 95 % limits, fitted rate, and whether it is a joinpoint."""
        t = self.spec["time"]
        frames = []
        for f in self.fits:
            frames.append(pd.DataFrame({t: f.x, "rate": f.rate, "rate_lower_95": f.rate_lower,
                                        "rate_upper_95": f.rate_upper, "fitted_rate": f.fitted_rate(),
                                        "joinpoint": np.isin(np.arange(len(f.x)), f.combo)}))
        return self._with_keys(frames)

    @property
    def notes(self) -> list:
        """What the fit decided on its own (lowered max_joinpoints, dispersion), per group."""
        return [(f.key, n) for f in self.fits for n in f.notes]

    def aapc(self, start=None, end=None) -> pd.DataFrame:
        """Average annual percent change over [start, end] (default: the whole series), per group.

        Returns
        -------
        pandas.DataFrame
            Group columns, ``start``, ``end``, ``aapc``, ``aapc_lower_95``, ``aapc_upper_95`` (95 %),
            ``p_value``, ``slope`` (length-weighted mean slope), ``slope_se``, ``method``.
        """

        return self._with_keys([pd.DataFrame([aapc_row(f, start, end)]) for f in self.fits])

    def to_frame(self) -> pd.DataFrame:
        """The segments table (tidy, stable columns)."""
        return self.segments

    def summary(self) -> Summary:
        s = self.spec
        if s["method"] == "nci":
            model = (f"NCI Joinpoint model: WLS on ln(rate), weights = {_WEIGHTS[s['variance']]}; "
                     "APC limits from separate per-segment fits (Joinpoint 4.x parametric, n - 3k - 2 df).")
        else:
            fams = sorted({f.family for f in self.fits})
            model = ("Log-linear GLM of counts with ln(population) offset; family "
                     f"{s.get('family', 'auto')!r} -> used: {', '.join(fams)} (negative binomial NB2 with alpha "
                     "by ML on the largest model when the Pearson test rejects; quasi-Poisson only if that "
                     "fit fails). Wald APC limits conditional on the joinpoints.")
            if s.get("covariates"):
                model += f" Adjusted for {', '.join(s['covariates'])}: APCs are net of these."
        if s["selection"] is None:
            sel = f"Number of joinpoints fixed at {s['n_joinpoints']}."
        else:
            crit = _CRITERIA_GLM.get(s["selection"]) if s["method"] == "glm" else None
            sel = (f"Number of joinpoints (0 to {s['max_joinpoints']}) chosen by "
                   f"{crit or _CRITERIA[s['selection']]}.")
        lines = [model, sel,
                 f"Joinpoints at observed times; >= {s['min_obs_end']} observations from each end and "
                 f">= {s['min_obs_between']} between joinpoints. Rates {s['rate_units']}."]
        lines += [f"Note ({_label(k)}): {n}" for k, n in self.notes]
        if s.get("synthetic"):
            lines.append(SYNTHETIC_NOTE)
        tables = {"Segments (APC, %/year)": self.segments, "Average annual percent change": self.aapc(),
                  "Model selection": self.selection}
        if len(self.tests):
            tables["Permutation tests"] = self.tests
        if s["method"] == "glm":
            tables["Family"] = self.families
            if s.get("covariates"):
                tables["Covariates (rate ratios)"] = self.covariates
        return Summary(title=f"Joinpoint regression ({s['method']})" + _title_suffix(s), lines=lines,
                       tables=tables)

    def plot(self, ax=None, *, group=None, log=False):
        """Observed rates with 95 % limits, fitted segments and joinpoints (dashed lines) marked.

        With ``by``, all groups are drawn unless ``group`` (a key value or tuple) picks one.
        """
        ax = _get_ax(ax)
        s = self.spec
        fits = self.fits
        if group is not None:
            want = group if isinstance(group, tuple) else (group,)
            fits = [f for f in fits if tuple(f.key.values()) == want]
            if not fits:
                raise ArgumentError(f"plot: no group {group!r}; groups are "
                                 f"{[tuple(f.key.values()) for f in self.fits]}")
        for i, f in enumerate(fits):
            colour = f"C{i % 10}"
            name = _label(f.key) if f.key else "observed"
            yerr = np.vstack([f.rate - f.rate_lower, f.rate_upper - f.rate])
            ax.errorbar(f.x, f.rate, yerr=None if np.isnan(yerr).all() else yerr, fmt="o", ms=4,
                        capsize=2, color=colour, alpha=0.8, label=name)
            xg = np.linspace(f.x[0], f.x[-1], 200)
            xg = np.union1d(xg, f.x)
            nj = len(f.combo)
            ax.plot(xg, f.fitted_rate(xg), "-", color=colour,
                    label=f"fitted ({nj} joinpoint{'s' if nj != 1 else ''})" if len(fits) == 1 else None)
            for tau in f.x[f.combo]:
                ax.axvline(tau, color=colour, ls="--", lw=0.8)
        ax.set_xlabel(s["time"])
        ax.set_ylabel(f"rate ({s['rate_units']})")
        if log:
            ax.set_yscale("log")
        ax.set_title(f"Joinpoint trend ({s['method']}); dashed lines mark joinpoints" + _title_suffix(s))
        ax.legend(fontsize="small")
        return ax


_WEIGHTS = {"poisson": "count", "se": "rate^2 / SE^2", "constant": "1"}
_CRITERIA = {
    "permutation": "Kim et al. (2000) sequential permutation tests (level alpha/(max - k_null) each)",
    "bic": "BIC = ln(SSE/n) + (2k + 2) ln(n)/n",
    "bic3": "BIC3 = ln(SSE/n) + (3k + 2) ln(n)/n",
    "wbic": ("weighted BIC = ln(SSE/n) + ((2 + R2max) k + 2) ln(n)/n = (1 - R2max) BIC + R2max BIC3 "
             "(NCI Joinpoint help; Kim et al. 2023)"),
}
_CRITERIA_GLM = {
    "permutation": ("Kim et al. (2000) sequential tests with a parametric bootstrap of the null model "
                    "(level alpha/(max - k_null) each)"),
    "bic": "BIC = D_k/phi + (2k + 2) ln(n) (D the deviance; NB at the fixed alpha)",
    "bic3": "BIC3 = D_k/phi + (3k + 2) ln(n)",
}


# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class CompareResult:
    """Each group's trend against a reference (e.g. national) trend.

    Attributes
    ----------
    slopes : pandas.DataFrame
        One row per group: group columns, ``apc`` and ``reference_apc`` (percent a year),
        ``apc_difference`` (percentage points), ``slope_ratio`` (= e^{b_g - b_ref}: the yearly change in
        the rate ratio) with limits, ``p_value`` (test of equal slopes: the group x time interaction),
        ``family``, ``dispersion``.
    ratios : pandas.DataFrame
        Per group and time: ``rate_ratio`` of the group to the reference from the interaction model,
        with limits, and the observed ``rate`` and ``reference_rate``.
    spec : dict
        Every argument used and the cdr version.

    Examples
    --------
    >>> import pandas as pd
    >>> from cdr.trends import compare_to
    >>> nat = pd.DataFrame({"year": [2019, 2020, 2021], "deaths": [1000, 1000, 1000],
    ...                     "population": [1e7] * 3})
    >>> reg = pd.DataFrame({"region": "A", "year": [2019, 2020, 2021], "deaths": [100, 110, 121],
    ...                     "population": [1e6] * 3})
    >>> res = compare_to(reg, nat, by="region", family="poisson")   # a CompareResult
    >>> res.slopes[["apc", "reference_apc", "apc_difference"]].round(2).values.tolist()
    [[10.0, 0.0, 10.0]]
    >>> res.ratios["rate_ratio"].round(2).tolist()
    [1.0, 1.1, 1.21]
    """

    slopes: pd.DataFrame
    ratios: pd.DataFrame
    spec: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"CompareResult(groups={len(self.slopes)}, by={self.spec.get('by')}, family={self.spec.get('family')!r})"

    def to_frame(self) -> pd.DataFrame:
        return self.slopes.copy()

    def summary(self) -> Summary:
        lines = ["Poisson log-linear model per group on the group's and the reference's rows: "
                 "ln E[deaths] = a + b t + c g + d g t + ln(population); exp(d) is the yearly change of "
                 "the rate ratio and the test of d = 0 is the test of different slopes.",
                 "The reference is treated as independent of the group; when the group is part of it "
                 "the test is conservative."]
        if self.spec.get("synthetic"):
            lines.append(SYNTHETIC_NOTE)
        return Summary(title="Trends compared with the reference" + _title_suffix(self.spec), lines=lines,
                       tables={"Slopes": self.slopes})

    def plot(self, ax=None):
        """Rate ratio to the reference over time, one line per group, with 95 % limits."""
        ax = _get_ax(ax)
        s = self.spec
        by, t = s.get("by") or [], s["time"]
        lo, hi = s["ci_names"]
        groups = self.ratios.groupby(by, sort=True) if by else [((), self.ratios)]
        for i, (key, g) in enumerate(groups):
            key = key if isinstance(key, tuple) else (key,)
            c = f"C{i % 10}"
            ax.plot(g[t], g["rate_ratio"], "-o", ms=3, color=c, label=", ".join(map(str, key)) or "group")
            ax.fill_between(g[t], g[lo], g[hi], color=c, alpha=0.15)
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel(t)
        ax.set_ylabel("rate ratio to reference (log scale)")
        ax.set_title("Rate ratio to the reference over time" + _title_suffix(s))
        ax.legend(fontsize="small")
        return ax
