"""Funnel plots and caterpillar (forest) plots of rates (private)."""
from __future__ import annotations

import numpy as np
import pandas as pd  # noqa: F401  (used by the doctests)

from cdr.rates._funnel import DEFAULT_MULTIPLIER, LABELS, _check_statistic, funnel_limits, funnel_significance
from cdr._validate import ArgumentError, as_array, check_columns, same_shape

_COLOURS = {LABELS[0]: "#b2182b", LABELS[1]: "#ef8a62", LABELS[2]: "#bababa", LABELS[3]: "#67a9cf", LABELS[4]: "#2166ac"}
#: An area whose denominator is below this share of the median of the plotted areas (Isles of Scilly,
#: City of London among LAs) would stretch a funnel's axes: it is listed in a note, not drawn.
TINY_SHARE = 0.05
_X_LABEL = {"proportion": "Denominator (people)", "rate": "Population at risk (person-years)", "ratio": "Expected events"}


def _title(title, default, synthetic):
    title = default if title is None else title
    return f"SYNTHETIC DATA - {title}" if synthetic and "SYNTHETIC" not in title.upper() else title


def _units(statistic, multiplier, units):
    if units is not None:
        return units
    if statistic == "proportion":
        return "per cent" if multiplier == 100 else f"per {multiplier:,g}"
    if statistic == "ratio":
        return "observed / expected" + ("" if multiplier == 1 else f" x {multiplier:,g}")
    return f"per {multiplier:,g} per year"


def tiny_denominators(denominator, ok=None, share=TINY_SHARE):
    """Mask of the areas too small to draw on a funnel: denominator below `share` of the plotted areas' median.

    Parameters
    ----------
    denominator : array_like of float
        Population (or person-years, expected events) per area.
    ok : array_like of bool, optional
        Areas that would be plotted (default: finite, positive denominators); only these can be tiny
        and only these set the median.
    share : float, default 0.05

    Examples
    --------
    >>> tiny_denominators([389, 1_100, 60_000, 75_000, 52_000]).tolist()
    [True, True, False, False, False]
    """
    n = np.asarray(denominator, dtype=float)
    ok = (np.isfinite(n) & (n > 0)) if ok is None else (np.asarray(ok, dtype=bool) & np.isfinite(n) & (n > 0))
    if not ok.any():
        return np.zeros(n.shape, dtype=bool)
    return ok & (n < share * float(np.median(n[ok])))


def plot_funnel(numerator, denominator, statistic="rate", baseline=None, multiplier=None, labels=None, ax=None,
                title=None, units=None, synthetic=False):
    """Funnel plot: each area's value against its denominator, with 95 % and 99.8 % control limits.

    Parameters
    ----------
    numerator, denominator : array_like of float
        Events and denominators (people, person-years or expected events) per area.
    statistic : {"rate", "proportion", "ratio"}, default "rate"
    baseline : float, optional
        Raw-scale centre line; default as in :func:`funnel_significance`.
    multiplier : float, optional
        Display scale; defaults as in :func:`funnel_limits` (100,000 for rates).
    labels : array_like of str, optional
        Area names or codes; areas outside the 99.8 % limits are labelled with them, and areas too
        small to draw are named in the note under the plot.
    ax : matplotlib.axes.Axes, optional
    title, units : str, optional
        Title and y-axis units (default e.g. "per 100,000 per year").
    synthetic : bool, default False
        Put "SYNTHETIC DATA" in the title (set it for anything built from cdr.synthetic).

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    An area whose denominator is below 5 % of the median of the others (:data:`TINY_SHARE`; e.g.
    the Isles of Scilly and the City of London among LAs) would stretch both axes (its control
    limits span most of the possible range): it is not drawn, the axes are set by the other areas,
    and a note under the plot lists it with its denominator ("Not shown: ...").

    Examples
    --------
    >>> ax = plot_funnel([2, 30, 90], [10_000, 100_000, 150_000], labels=["E1", "E2", "E3"])
    >>> ax.get_xlabel()
    'Population at risk (person-years)'
    """
    import matplotlib.pyplot as plt

    caller = "plot_funnel"
    _check_statistic(statistic, caller)
    scale = DEFAULT_MULTIPLIER[statistic] if multiplier is None else float(multiplier)
    x = as_array(numerator, "numerator", caller)
    n = as_array(denominator, "denominator", caller)
    x, n = same_shape(caller, numerator=x, denominator=n)
    x, n = np.atleast_1d(x), np.atleast_1d(n)
    ok = ~(np.isnan(x) | np.isnan(n) | (n == 0))
    if not ok.any():
        raise ArgumentError(f"{caller}: no area has both a numerator and a positive denominator to plot.")
    if baseline is None:
        baseline = 1.0 if statistic == "ratio" else x[ok].sum() / n[ok].sum()
    names = None
    if labels is not None:
        names = np.asarray(labels, dtype=object)
        if names.shape != x.shape:
            raise ArgumentError(f"{caller}: 'labels' must have one entry per area ({x.shape[0]}); got {names.shape[0]}.")
    signif = funnel_significance(x, n, statistic=statistic, baseline=baseline, multiplier=scale)
    value = np.where(ok, x / np.where(ok, n, 1.0) * scale, np.nan)
    tiny = tiny_denominators(n, ok)
    ok = ok & ~tiny   # the baseline above still uses every area; only the drawing leaves the tiny ones out
    grid = np.geomspace(max(n[ok].min() * 0.5, 1e-9), n[ok].max() * 1.2, 300)
    lim = funnel_limits(statistic, grid, baseline=baseline, multiplier=scale)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 5.5))
    ax.axhline(baseline * scale, color="black", lw=1.2, label=f"Baseline ({baseline * scale:,.3g})")
    for lo, hi, style, name in (("lower_95", "upper_95", "--", "95 % limits"), ("lower_99_8", "upper_99_8", ":", "99.8 % limits")):
        ax.plot(grid, lim[lo], color="dimgrey", ls=style, lw=1.1, label=name)
        ax.plot(grid, lim[hi], color="dimgrey", ls=style, lw=1.1)
    for label in LABELS:
        mask = ok & (signif == label)
        if mask.any():
            ax.scatter(n[mask], value[mask], s=28, color=_COLOURS[label], edgecolor="black", linewidth=0.4,
                       label=f"{label} ({mask.sum()})", zorder=3)
    if names is not None:
        for i in np.flatnonzero(ok & np.isin(signif, [LABELS[0], LABELS[4]])):
            ax.annotate(str(names[i]), (n[i], value[i]), xytext=(4, 4), textcoords="offset points", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel(_X_LABEL[statistic])
    ax.set_ylabel(f"{statistic.capitalize()} ({_units(statistic, scale, units)})")
    ax.set_title(_title(title, f"Funnel plot of {statistic}s ({_units(statistic, scale, units)})", synthetic))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)   # off the data
    ax.grid(True, which="major", alpha=0.3)
    if tiny.any():
        who = [f"{names[i] if names is not None else f'area {i + 1}'} ({_X_LABEL[statistic].split(' (')[0].lower()} "
               f"{n[i]:,.0f}, value {value[i]:,.3g})" for i in np.flatnonzero(tiny)]
        ax.annotate(_wrap(f"Not shown (denominator below {TINY_SHARE:.0%} of the median, so it would stretch the "
                                f"axes): {'; '.join(who)}.", 110),
                    xy=(0, 0), xycoords=("axes fraction", ax.xaxis.label), xytext=(0, -6), textcoords="offset points",
                    fontsize=7, va="top", ha="left")   # under the axis label, whatever the figure size
    return ax


def _wrap(text, width):
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


#: Name column of each key column, looked for in the plotted table (then, for LAs and regions, in cdr.data).
_NAME_COLUMNS = {"la_code": "la_name", "region_code": "region_name", "footprint_id": "footprint_name",
                 "icb_code": "icb_name", "police_force_area": "pfa_name", "nation_code": "nation_name"}


def _row_names(table, label, names, caller):
    """Row labels of a plot: the area names where known, the codes where not (never an empty label)."""
    codes = table[label].astype(str)
    if names is False:
        return codes
    if isinstance(names, str):
        check_columns(table, [names], caller)
        known = table[names]
    elif names is True:
        column = _NAME_COLUMNS.get(label)
        if column is not None and column in table.columns:
            known = table[column]
        elif label in ("la_code", "region_code", "nation_code"):
            from cdr.data import lookup   # the embedded ONS names (both vintages; 2023 wins)

            lookups = [lookup(v) for v in (2021, 2023)]
            mapping = {"E92000001": "England"}
            for frame in lookups:
                if label != "nation_code":
                    mapping.update(zip(frame[label], frame[label.replace("_code", "_name")]))
            known = codes.map(mapping)
        else:
            return codes
    else:
        raise ArgumentError(f"{caller}: 'names' must be True (names where known), False (codes) or the name "
                            f"column; got {names!r}.")
    known = known.astype(object).where(known.notna(), None).map(lambda v: None if v is None else str(v).strip())
    return known.where(known.fillna("").str.len() > 0, codes)


def plot_rates(table, label="la_code", value="value", lower="lower_95", upper="upper_95", national=None, ax=None,
               title=None, units="per 100,000 children per year", synthetic=None, sort=True, names=True):
    """Caterpillar (forest) plot: each area's value with its confidence interval and a national line.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per area, e.g. from :func:`rate_table` or :func:`cdr.aggregate.aggregate`.
    label, value, lower, upper : str
        Columns for the area code and the value with its limits.
    national : float, optional
        Value for England (or the comparator), drawn as a vertical line.
    ax : matplotlib.axes.Axes, optional
    title, units : str, optional
    synthetic : bool, optional
        Put "SYNTHETIC DATA" in the title; default ``table.attrs.get("synthetic", False)``.
    sort : bool, default True
        Order areas by value (lowest at the bottom).
    names : bool or str, default True
        Label rows by name: True uses the table's name column for the `label` key (``la_name`` for
        ``la_code``, ``region_name``, ``footprint_name``, ...) or, for LA, region and nation codes
        without one, the ONS names embedded in :mod:`cdr.data`; a code with no name keeps its code.
        A string names the column to use; False labels rows by code.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> t = pd.DataFrame({"la_code": ["E1", "E2"], "value": [20.0, 30.0], "lower_95": [5.4, 24.9], "upper_95": [51.2, 35.9]})
    >>> plot_rates(t, national=28.0).get_title()
    'Rates with 95 % confidence intervals (per 100,000 children per year)'
    """
    import matplotlib.pyplot as plt

    caller = "plot_rates"
    check_columns(table, [label, value, lower, upper], caller)
    data = table[[label, value, lower, upper]].assign(_row_label=_row_names(table, label, names, caller).to_numpy())
    if sort:
        data = data.sort_values(value, kind="stable", na_position="first")
    synthetic = bool(table.attrs.get("synthetic", False)) if synthetic is None else synthetic
    pos = np.arange(len(data))
    if ax is None:
        _, ax = plt.subplots(figsize=(7, max(3.0, 0.22 * len(data) + 1.5)))
    v = data[value].to_numpy(dtype=float)
    lo, hi = data[lower].to_numpy(dtype=float), data[upper].to_numpy(dtype=float)
    err = np.vstack([np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)])
    colours = np.full(len(data), "#4d4d4d", dtype=object)
    if national is not None:
        colours[lo > national] = "#b2182b"
        colours[hi < national] = "#2166ac"
    ax.errorbar(v, pos, xerr=err, fmt="none", ecolor="#999999", elinewidth=1.2, capsize=2, label=f"{lower.removeprefix('lower_').replace('_', '.')} % confidence interval")
    if national is None:
        ax.scatter(v, pos, c=list(colours), s=22, zorder=3, label="Area value")
    else:  # one legend entry per colour, so the colours explain themselves
        for colour, text in (("#b2182b", "interval above national"), ("#4d4d4d", "interval includes national"),
                             ("#2166ac", "interval below national")):
            keep = colours == colour
            if keep.any():
                ax.scatter(v[keep], pos[keep], c=colour, s=22, zorder=3, label=f"Area value: {text}")
        ax.axvline(national, color="black", ls="--", lw=1.2, label=f"National ({national:,.3g})")
    ax.set_yticks(pos)
    ax.set_yticklabels(data["_row_label"].tolist(), fontsize=7 if len(data) > 40 else 9)
    ax.set_ylim(-0.8, len(data) - 0.2)
    ax.set_xlabel(f"Value ({units})")
    ax.set_ylabel({"la_code": "Local authority", "footprint_id": "Footprint", "region_code": "Region",
                   "nation_code": "Nation"}.get(label, label.replace("_", " ")))
    level = lower.removeprefix("lower_").replace("_", ".")
    ax.set_title(_title(title, f"Rates with {level} % confidence intervals ({units})", synthetic))
    ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(1.01, 0), frameon=False)   # off the data
    ax.grid(True, axis="x", alpha=0.3)
    return ax
