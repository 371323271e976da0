"""Figures for :mod:`cdr.factors`: forest plot of odds ratios; prevalence by category and domain."""
from __future__ import annotations

import numpy as np
import pandas as pd

from cdr._validate import axes, one_of
from cdr.errors import ArgumentError, ArgumentTypeError
from cdr.factors import _records as R

_SYN = " - SYNTHETIC DATA"


def _axes(ax, size, caller):
    axes(ax, "ax", caller)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=size)
    return ax


def forest_plot(result, ax=None):
    """Forest plot of a :class:`FactorModelResult`: ORs (log scale) with limits, grouped by variable.

    Parameters
    ----------
    result : FactorModelResult
        A fitted model (:func:`factor_model`); its ``odds_ratios`` are drawn, one row per term, with
        limits at ``result.spec["conf"]`` (cut at 0.001 and 1000 on the axis).
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; default a new figure sized to the number of terms.

    Returns
    -------
    matplotlib.axes.Axes
        Odds ratio (log scale, no unit) on x, one labelled term per row ("level (vs reference)"),
        a dashed line at OR = 1; the title names the outcome, method and number of judged reviews,
        and says "SYNTHETIC DATA" for synthetic records.

    Examples
    --------
    >>> import matplotlib.pyplot as plt, numpy as np, pandas as pd
    >>> from cdr.factors import factor_model
    >>> rng = np.random.default_rng(1)
    >>> cat = rng.choice(["infection", "malignancy"], 2000)
    >>> recs = pd.DataFrame({"la_code": "E06000001", "category": cat, "reviewed": True,
    ...                      "modifiable": np.where(rng.random(2000) < 0.2, "yes", "no")})
    >>> ax = forest_plot(factor_model(recs, "modifiable ~ C(category)"))
    >>> ax.get_title().splitlines()[0], ax.get_xscale()
    ('Odds ratios for modifiable factors identified', 'log')
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['category: infection (vs malignancy)']
    >>> plt.close(ax.figure)
    """
    if not isinstance(getattr(result, "odds_ratios", None), pd.DataFrame):
        raise ArgumentTypeError(f"forest_plot: 'result' must be a FactorModelResult (from factor_model or "
                                f"FactorModel.fit); got {type(result).__name__}.")
    table = result.odds_ratios
    n = len(table)
    ax = _axes(ax, (7.5, 0.38 * n + 1.8), "forest_plot")
    y = np.arange(n)[::-1]
    lo_cap, hi_cap = 1e-3, 1e3
    lo_col, up_col = R.odds_ratio_ci_columns(result.spec["conf"])
    orv = table["odds_ratio"].to_numpy(float)
    lower = np.clip(table[lo_col].to_numpy(float), lo_cap, hi_cap)
    upper = np.clip(table[up_col].to_numpy(float), lo_cap, hi_cap)
    orc = np.clip(orv, lo_cap, hi_cap)
    ax.errorbar(orc, y, xerr=[orc - lower, upper - orc], fmt="s", color="tab:blue", ecolor="tab:blue",
                capsize=3, markersize=5, label=f"odds ratio with {result.spec['conf']:.0%} CI")
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1, label="OR = 1 (no association)")
    ax.set_xscale("log")
    from matplotlib.ticker import FixedLocator, NullFormatter

    span = (min(lower.min(), orc.min(), 0.9), max(upper.max(), orc.max(), 1.1))
    ticks = [t for t in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100,
                         200, 500, 1000) if span[0] / 1.001 <= t <= span[1] * 1.001]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    labels = []
    for r in table.itertuples():
        if r.level:
            labels.append(f"{r.variable}: {r.level} (vs {r.reference})")
        elif r.variable == "imd_quintile":
            labels.append("IMD quintile (per step towards least deprived)")
        else:
            labels.append(f"{r.variable} (per unit)")
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel("Odds ratio (log scale)")
    clipped = (table[lo_col] < lo_cap) | (table[up_col] > hi_cap)
    if clipped.any():
        ax.text(0.99, 0.01, "limits beyond 0.001-1000 are cut at the axis", transform=ax.transAxes,
                ha="right", va="bottom", fontsize=7, color="grey")
    outcome = result.info["outcome"]
    what = ("modifiable factors identified" if outcome == "modifiable"
            else f"a contributory factor: {R.DOMAIN_LABELS[outcome].lower()}")
    method = {"logit_mle": "logistic regression", "gee_exchangeable": "GEE, exchangeable",
              "firth": "Firth logistic regression", "firth_cluster_robust": "Firth, cluster-robust"}.get(
        result.info["method"], result.info["method"])
    title = f"Odds ratios for {what}\n({method}, n = {result.info['n_obs']:,} judged reviews)"
    ax.set_title(title + (_SYN if result.synthetic else ""), fontsize=10)
    ax.legend(loc="best", fontsize=8)
    ax.figure.tight_layout()
    return ax


def plot_prevalence(table, kind="heatmap", *, group="category", ax=None):
    """Prevalence of modifiable factors by `group` (default category of death), from :func:`prevalence`.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`prevalence` with `group` among its columns, at one level unit (e.g.
        ``level="nation"``) or summed over units here. For ``kind="heatmap"`` use ``domain="all"``.
    kind : {"heatmap", "bar"}, default "heatmap"
        ``"heatmap"``: percentage of judged reviews with a modifiable factor, rows = `group`, columns =
        overall judgement and the four domains, annotated with the percentage and denominator.
        ``"bar"``: one horizontal stacked bar per `group` level with the share of all deaths that were
        reviewed with modifiable factors, without, with insufficient information, and pending.
    group : str, default "category"
        The grouping column to show.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; default a new figure.

    Returns
    -------
    matplotlib.axes.Axes
        Title, axis units (percent) and legend (bar) or colour bar (heat map) set; the title says
        "SYNTHETIC DATA" when the table was built from synthetic records.

    Examples
    --------
    >>> import matplotlib.pyplot as plt, pandas as pd
    >>> from cdr.factors import prevalence
    >>> recs = pd.DataFrame({
    ...     "la_code": ["E06000001"] * 5,
    ...     "category": ["infection"] * 5,
    ...     "review_completed": pd.to_datetime(["2023-01-01"] * 4 + [None]),
    ...     "modifiable": ["yes", "no", "no", "insufficient_information", None]})
    >>> ax = plot_prevalence(prevalence(recs, by=["category"], level="nation"), kind="bar")
    >>> ax.get_title(), ax.get_xlabel()
    ('Review outcome and modifiable factors by category', '% of deaths in the group')
    >>> [t.get_text() for t in ax.get_yticklabels()]    # groups without deaths are not drawn
    ['infection (n=5)']
    >>> plt.close(ax.figure)
    """
    if not isinstance(table, pd.DataFrame):
        raise ArgumentTypeError(f"plot_prevalence: 'table' must be the DataFrame from cdr.factors.prevalence; "
                                f"got {type(table).__name__}.")
    one_of(kind, ("heatmap", "bar"), "kind", "plot_prevalence")
    axes(ax, "ax", "plot_prevalence")
    if group not in table:
        raise ArgumentError(f"plot_prevalence: the table has no column {group!r}; build it with "
                         f"prevalence(records, by=[{group!r}], ...).")
    counts = ["n_total", "n_pending", "n_reviewed", "n_insufficient", "n_judged", "count"]
    summed = table.groupby([group, "measure"], sort=False, observed=True)[counts].sum().reset_index()
    present = set(summed.loc[summed["n_total"] > 0, group])   # groups with no deaths are not drawn
    order = [c for c in (R.ORDERED.get(group) or summed[group].unique()) if c in present]
    if group == "category":
        order = [c for c in R.CATEGORY_ORDER if c in present] + [c for c in order if c not in R.CATEGORY_ORDER]
    synthetic = bool(table.attrs.get("synthetic", False))
    if kind == "heatmap":
        measures = [m for m in ("modifiable", *R.DOMAIN_ORDER) if m in set(summed["measure"])]
        grid = summed.pivot(index=group, columns="measure", values="count").reindex(index=order, columns=measures)
        denom = summed.pivot(index=group, columns="measure", values="n_judged").reindex(index=order, columns=measures)
        share = 100 * grid / denom.where(denom > 0)
        ax = _axes(ax, (1.6 * len(measures) + 3.5, 0.45 * len(order) + 1.8), "plot_prevalence")
        image = ax.imshow(share.to_numpy(float), cmap="Reds", vmin=0, vmax=100, aspect="auto")
        for i in range(share.shape[0]):
            for j in range(share.shape[1]):
                v, d = share.iat[i, j], denom.iat[i, j]
                text = "n/a" if not np.isfinite(v) else f"{v:.0f}%\n(n={int(d)})"
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if np.isfinite(v) and v > 60 else "black")
        labels = {"modifiable": "Modifiable\n(overall)", **{d: R.DOMAIN_LABELS[d].replace(", ", ",\n")
                                                         for d in R.DOMAIN_ORDER}}
        ax.set_xticks(range(len(measures)))
        ax.set_xticklabels([labels[m] for m in measures], fontsize=7)
        ax.set_yticks(range(len(order)))
        ax.set_yticklabels([str(o) for o in order], fontsize=8)
        ax.figure.colorbar(image, ax=ax, label="% of judged reviews with a (possibly) contributory factor")
        title = f"Modifiable factors by {group.replace('_', ' ')} and domain"
    else:
        rows = summed[summed["measure"] == "modifiable"].set_index(group).reindex(order)
        total = rows["n_total"].where(rows["n_total"] > 0)
        parts = {
            "reviewed: modifiable factors": rows["count"],
            "reviewed: no modifiable factors": rows["n_judged"] - rows["count"],
            "reviewed: insufficient information": rows["n_insufficient"],
            "review pending": rows["n_pending"],
        }
        colours = ["tab:red", "tab:blue", "lightgrey", "white"]
        ax = _axes(ax, (8, 0.45 * len(order) + 1.8), "plot_prevalence")
        left = np.zeros(len(order))
        ypos = np.arange(len(order))[::-1]
        for (label, values), colour in zip(parts.items(), colours):
            share = (100 * values / total).fillna(0).to_numpy(float)
            ax.barh(ypos, share, left=left, color=colour, edgecolor="black", linewidth=0.5, label=label)
            left += share
        ax.set_yticks(ypos)
        ax.set_yticklabels([f"{o} (n={int(t)})" if np.isfinite(t) else str(o)
                            for o, t in zip(order, rows["n_total"])], fontsize=8)
        ax.set_xlim(0, 100)
        ax.set_xlabel("% of deaths in the group")
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, -0.45 if len(order) < 6 else -0.25), ncol=2,
                  fontsize=7)
        title = f"Review outcome and modifiable factors by {group.replace('_', ' ')}"
    ax.set_title(title + (_SYN if synthetic else ""), fontsize=10)
    ax.figure.tight_layout()
    return ax
