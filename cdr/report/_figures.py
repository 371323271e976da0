"""The report's figures, drawn only from published (suppressed) tables; PNG bytes out.

Figures use Matplotlib's object API (no pyplot state), so building a report never opens a window
or changes the user's current figure.
"""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from cdr.report._bundle import MARK_SUPPRESSED

__all__ = ["FIGURES"]

FOCUS = "#005eb8"     # NHS blue
OTHER = "#768692"     # NHS mid grey
ENGLAND = "#ed8b00"   # NHS orange
DPI = 110


def _title(text, synthetic, width=64):
    """The title, marked SYNTHETIC DATA when built from synthetic records, wrapped so it fits over the plot."""
    text = ("SYNTHETIC DATA - " if synthetic else "") + text
    return "\n".join(_wrap(line, width) for line in text.split("\n"))


def _png(fig) -> bytes:
    buf = io.BytesIO()
    # no Software/version text chunk: the bytes depend only on the figure (reproducible bundles)
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", facecolor="white", metadata={"Software": None})
    return buf.getvalue()


def _num(s):
    return pd.to_numeric(s, errors="coerce").astype(float).to_numpy()


def headline_rates(table, marks, ctx):
    fig = Figure(figsize=(7.5, 1.0 + 0.55 * len(table)), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(table))[::-1]
    rate = _num(table["rate_per_100000"])
    lo, hi = _num(table["rate_per_100000_lower_95"]), _num(table["rate_per_100000_upper_95"])
    colors = [FOCUS] + [OTHER] * (len(table) - 1)
    ax.barh(y, np.nan_to_num(rate), color=colors)
    ok = np.isfinite(rate)
    ax.errorbar(rate[ok], y[ok], xerr=[rate[ok] - lo[ok], hi[ok] - rate[ok]], fmt="none", ecolor="black", capsize=3)
    for yi, r, m in zip(y, rate, marks["rate_per_100000"]):
        if not np.isfinite(r):
            ax.text(0, yi, f" {m or '[x]'} not shown", va="center")
    ax.set_yticks(y, [_wrap(n, 32) for n in table["area_name"]])
    ax.set_xlabel("Deaths per 100,000 children aged 0-17 (95% CI)")
    ax.set_title(_title(f"Child death rate, {ctx['period']}", ctx["synthetic"]), fontsize=10)
    return fig


def _breakdown(table, marks, ctx, title):
    body = table[table.iloc[:, 0] != "total"]
    bm = marks.loc[body.index]
    fig = Figure(figsize=(8, 1.0 + 0.42 * len(body)), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(body))[::-1]
    h = 0.38 if "england_percent" in body else 0.7
    pct = _num(body["percent"])
    ax.barh(y + (h / 2 if h < 0.5 else 0), np.nan_to_num(pct), height=h, color=FOCUS, label=_wrap(ctx["focus_name"], 32))
    for yi, p, m, n in zip(y, pct, bm["percent"], _num(body["deaths"])):
        if not np.isfinite(p):
            ax.text(0.2, yi + (h / 2 if h < 0.5 else 0), f"{m or '[x]'} suppressed" if m == MARK_SUPPRESSED else "[x]",
                    va="center", fontsize=8)
        elif n == 0:   # a zero is published: say so, rather than leave an empty row
            ax.text(0.2, yi + (h / 2 if h < 0.5 else 0), "0", va="center", fontsize=8)
    if "england_percent" in body:
        ax.barh(y - h / 2, np.nan_to_num(_num(body["england_percent"])), height=h, color=ENGLAND, label="England")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)   # off the data
    ax.set_yticks(y, [_wrap(lab, 40) for lab in body["label"]], fontsize=8)
    ax.set_xlabel("Percent of deaths notified")
    ax.set_title(_title(f"{title}, {ctx['period']}", ctx["synthetic"]), fontsize=10)
    return fig


def deaths_by_age_band(table, marks, ctx):
    return _breakdown(table, marks, ctx, "Deaths by age band")


def deaths_by_sex(table, marks, ctx):
    return _breakdown(table, marks, ctx, "Deaths by sex")


def deaths_by_category(table, marks, ctx):
    return _breakdown(table, marks, ctx, "Deaths by category")


def deaths_by_deprivation(table, marks, ctx):
    return _breakdown(table, marks, ctx, "Deaths by deprivation quintile")


def _prop_bars(table, marks, ctx, col, labels, title, xlabel):
    fig = Figure(figsize=(8, 1.0 + 0.42 * len(table)), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(table))[::-1]
    p = _num(table[col])
    lo, hi = _num(table[col + "_lower_95"]), _num(table[col + "_upper_95"])
    colors = [FOCUS if lab != "Total" else OTHER for lab in labels]
    ax.barh(y, np.nan_to_num(p), color=colors)
    ok = np.isfinite(p)
    ax.errorbar(p[ok], y[ok], xerr=[p[ok] - lo[ok], hi[ok] - p[ok]], fmt="none", ecolor="black", capsize=2)
    for yi, v, m in zip(y, p, marks[col]):
        if not np.isfinite(v):
            ax.text(1, yi, "[c] suppressed" if m == MARK_SUPPRESSED else "[x] no completed reviews", va="center", fontsize=8)
        elif v == 0:
            ax.text(1, yi, "0", va="center", fontsize=8)
    ax.set_yticks(y, [_wrap(lab, 40) for lab in labels], fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel(xlabel)
    ax.set_title(_title(f"{title}, {ctx['period']}", ctx["synthetic"]), fontsize=10)
    return fig


def _modifiable(what):
    def draw(table, marks, ctx):
        return _prop_bars(table, marks, ctx, "percent_modifiable", list(table["label"]),
                          f"Completed reviews with modifiable factors, by {what}", "Percent of completed reviews (95% CI)")
    return draw


def deaths_by_ethnicity(table, marks, ctx):
    return _breakdown(table, marks, ctx, "Deaths by ethnic group")


def modifiable_by_domain(table, marks, ctx):
    return _prop_bars(table, marks, ctx, "percent", list(table["label"]),
                      "Contributory factors by domain", "Percent of judged completed reviews (95% CI)")


def trend(table, marks, ctx):
    body = table[table["period_start"].notna()]
    fig = Figure(figsize=(8.5, 4.2), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(body))
    r = _num(body["rate_per_100000"])
    lo, hi = _num(body["rate_per_100000_lower_95"]), _num(body["rate_per_100000_upper_95"])
    ax.fill_between(x, lo, hi, color=FOCUS, alpha=0.2, label="95% CI")
    ax.plot(x, r, "o-", color=FOCUS, label=_wrap(ctx["focus_name"], 32))
    if "england_rate_per_100000" in body:
        ax.plot(x, _num(body["england_rate_per_100000"]), "s--", color=ENGLAND, label="England")
    elif "england_rate_per_100000_published" in body and np.isfinite(_num(body["england_rate_per_100000_published"])).any():
        ax.plot(x, _num(body["england_rate_per_100000_published"]), "s--", color=ENGLAND,
                label="England (published, NCMD)")
    fitted = ctx.get("trend_fitted")
    if fitted is not None and len(fitted) == len(x):
        ax.plot(x, fitted, "-", color="black", lw=1, label="Fitted trend")
    ax.set_xticks(x, body["period"])
    ax.set_xlabel(ctx.get("year_axis", "Year of death"))
    ax.set_ylim(bottom=0)
    ax.set_ylabel("Deaths per 100,000 children")
    sub = ctx.get("trend_caption")
    ax.set_title(_title("Child death rate over time", ctx["synthetic"]) + (f"\n{sub}" if sub else ""), fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)   # off the data
    return fig


def funnel(table, marks, ctx):
    """Rates against population with 95% and 99.8% limits around the England rate.

    Areas whose population is tiny beside the others (below ``TINY_SHARE`` of the median: the Isles
    of Scilly, the City of London) would stretch both axes; they are not drawn but named, with their
    population and rate, in a note under the plot. The focus area is always drawn: if it is tiny, at
    the left edge, out of scale, with its population and rate in its legend entry. Areas outside the
    99.8% limits are labelled with their names.
    """
    from cdr.rates._plot import TINY_SHARE, tiny_denominators

    fig = Figure(figsize=(8.5, 5), layout="constrained")
    ax = fig.subplots()
    pop = _num(table["population"])
    rate = _num(table["rate_per_100000"])
    names = table["area_name"].astype(str).to_numpy() if "area_name" in table else table["area_code"].astype(str).to_numpy()
    target = ctx["england_rate"]
    focus = (table["area_code"] == ctx["focus_code"]).to_numpy()
    ok = np.isfinite(rate) & np.isfinite(pop) & (pop > 0)
    tiny = tiny_denominators(pop, ok)
    edge = tiny & focus   # never hide the focus: it is drawn at the left edge, out of scale, and says so
    tiny &= ~focus
    drawn = ok & ~tiny & ~edge
    shown = pop[drawn] if drawn.any() else pop[np.isfinite(pop) & (pop > 0)]   # no rate shown: limits only
    spread = (0.7, 1.05) if len(shown) > 1 else (0.25, 3.0)   # one partnership: show the funnel around it
    grid = np.linspace(max(shown.min() * spread[0], 1000), shown.max() * spread[1], 200)
    for conf, style in ((0.95, "--"), (0.998, ":")):
        lo, hi = ctx["funnel_limits"](target, grid, conf)
        ax.plot(grid / 1000, lo, style, color="black", lw=1, label=f"{conf:.1%} limits".replace(".0%", "%"))
        ax.plot(grid / 1000, hi, style, color="black", lw=1)
    ax.axhline(target, color=ENGLAND, lw=1, label=ctx.get("england_rate_label", "England"))
    kind = ctx["peer_kind"]
    peers = drawn & ~focus
    if peers.any():
        ax.scatter(pop[peers] / 1000, rate[peers], s=18, color=OTHER,
                   label=f"Other {_plural(kind)}" if focus.any() else _plural(kind).capitalize())
    if (drawn & focus).any():
        ax.scatter(pop[drawn & focus] / 1000, rate[drawn & focus], s=70, color=FOCUS, edgecolor="black", zorder=5,
                   label=_wrap(ctx["focus_name"], 32))
    if edge.any():
        i = int(np.flatnonzero(edge)[0])
        y0, y1 = ax.get_ylim()
        ax.scatter([grid[0] / 1000], [min(max(rate[i], y0), y1)], s=70, marker="<", color=FOCUS, edgecolor="black",
                   zorder=5, clip_on=False,
                   label=_wrap(f"{ctx['focus_name']}: population {pop[i]:,.0f}, rate {rate[i]:.1f} (out of scale, at "
                                 "the edge)", 32))
        ax.set_ylim(y0, y1)
    lo998, hi998 = ctx["funnel_limits"](target, np.where(drawn, pop, 1.0), 0.998)
    notes = [ax.annotate(_wrap(names[i], 28), (pop[i] / 1000, rate[i]), xytext=(5, 3), textcoords="offset points",
                         fontsize=7, va="bottom" if rate[i] > hi998[i] else "top")
             for i in np.flatnonzero(drawn & ~focus & ((rate > hi998) | (rate < lo998)))]   # outliers named
    ax.set_xlabel("Children aged 0-17 (thousands)")
    ax.set_ylabel("Deaths per 100,000 children")
    n_hidden = int((~ok).sum())
    cap = (f"\n{n_hidden} {kind if n_hidden == 1 else _plural(kind)} not shown: count suppressed or no rate"
           if n_hidden else "")
    ax.set_title(_title(f"Funnel plot, {ctx['period']}", ctx["synthetic"]) + cap, fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)   # off the data
    if notes:
        _unclutter(fig, ax, notes, avoid=np.column_stack([pop[drawn & focus] / 1000, rate[drawn & focus]]))
    if tiny.any():
        who = "; ".join(f"{names[i]} (population {pop[i]:,.0f}, rate {rate[i]:.1f})" for i in np.flatnonzero(tiny))
        ax.annotate(_wrap(f"Not shown: {who}. Population below {TINY_SHARE:.0%} of the median {ctx['peer_kind']}'s, "
                          "so its limits would stretch the axes; its rate and position are in the table.", 120),
                    xy=(0, 0), xycoords=("axes fraction", ax.xaxis.label), xytext=(0, -6), textcoords="offset points",
                    fontsize=7, va="top", ha="left")
    return fig


def _unclutter(fig, ax, notes, avoid):
    """Move point labels off the focus marker and off each other: right of the point, else left, else below."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    r = canvas.get_renderer()
    marks = [ax.transData.transform(xy) for xy in avoid]
    placed = []
    for note in notes:
        for offset, ha in (((5, 3), "left"), ((-5, 3), "right"), ((5, -8), "left"), ((-5, -8), "right")):
            note.set_position(offset)
            note.set_horizontalalignment(ha)
            box = note.get_window_extent(r).padded(2)
            if not any(box.x0 - 6 < x < box.x1 + 6 and box.y0 - 6 < y < box.y1 + 6 for x, y in marks) and \
                    not any(box.overlaps(b) for b in placed):
                break
        placed.append(note.get_window_extent(r))


def _plural(kind):
    return kind[:-1] + "ies" if kind.endswith("y") else kind + "s"


def _wrap(text, width):
    import textwrap

    return "\n".join(textwrap.wrap(str(text), width, break_on_hyphens=False))


def area_map(geometry, ctx):
    """England's LAs, the focus area highlighted (or, for England, peer rates as a choropleth), with a
    zoomed London inset whenever the map includes London (it always does: the map is of England)."""
    from cdr.data._maps import add_london_inset, wants_london_inset

    fig = Figure(figsize=(7.5, 7), layout="constrained")
    ax = fig.subplots()
    choropleth = ctx["level"] == "nation" and "rate" in geometry
    rate = _num(geometry["rate"]) if choropleth else None
    norm = None
    if choropleth and np.isfinite(rate).any():
        from matplotlib.colors import Normalize

        norm = Normalize(vmin=float(np.nanmin(rate)), vmax=float(np.nanmax(rate)))

    def draw(a, legend):
        geometry.plot(ax=a, color="#e8edee", edgecolor="white", linewidth=0.3)
        if choropleth:
            geometry.plot(ax=a, column="rate", cmap="Blues", norm=norm, edgecolor="white", linewidth=0.3,
                          legend=legend, legend_kwds={"label": "Deaths per 100,000 children", "shrink": 0.6},
                          missing_kwds={"color": "#e8edee", "hatch": "///", "label": "suppressed"})
        else:
            geometry[geometry["in_focus"]].plot(ax=a, color=FOCUS, edgecolor="white", linewidth=0.4)

    draw(ax, legend=True)
    ax.set_aspect("equal")
    if wants_london_inset(geometry):
        add_london_inset(ax, lambda a: draw(a, legend=False))
    ax.set_axis_off()
    if choropleth:
        title = f"England: child death rate by {ctx['peer_kind']}, {ctx['period']}\n(hatched: count suppressed)"
    else:
        title = f"{ctx['focus_name']} (blue)"
    ax.set_title(_title(title, ctx["synthetic"]), fontsize=10, wrap=True)
    ax.text(0, -0.02, "Boundaries: ONS (OGL v3); contains OS data © Crown copyright and database right.",
            transform=ax.transAxes, fontsize=6, va="top")
    return fig


_VARIABLE_NAMES = {"category": "Category", "age_band": "Age band", "sex": "Sex", "imd_quintile": "IMD quintile",
                   "ethnicity": "Ethnic group", "ethnic_group": "Ethnic group"}


def _level_name(variable, level):
    """A model term's level in words (schema labels), never a code."""
    from cdr import schema

    level = str(level)
    for lookup in (schema.CATEGORIES, schema.AGE_BANDS, dict(schema.ETHNICITIES), schema.DOMAINS):
        if level in lookup:
            return lookup[level]
    return level.replace("_", " ").capitalize() if level.islower() else level


def factor_model(table, marks, ctx):
    """Forest plot of the published odds ratios (log scale); withheld terms are listed as [c]."""
    fig = Figure(figsize=(8, 1.3 + 0.32 * len(table)), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(table))[::-1]
    lo_col = next(c for c in table.columns if c.startswith("odds_ratio_lower_"))   # the spec's conf level
    hi_col = next(c for c in table.columns if c.startswith("odds_ratio_upper_"))
    level = lo_col.removeprefix("odds_ratio_lower_").replace("_", ".")
    orr, lo, hi = _num(table["odds_ratio"]), _num(table[lo_col]), _num(table[hi_col])
    ok = np.isfinite(orr) & np.isfinite(lo) & np.isfinite(hi)
    ax.errorbar(orr[ok], y[ok], xerr=[orr[ok] - lo[ok], hi[ok] - orr[ok]], fmt="o", color=FOCUS, ecolor=FOCUS, capsize=2)
    ax.axvline(1.0, color=OTHER, lw=1, ls="--")
    ax.set_xscale("log")
    var_name = lambda v: _VARIABLE_NAMES.get(str(v), str(v).replace("_", " ").capitalize())  # noqa: E731
    labels = [_wrap(f"{var_name(v)}: {_level_name(v, lv)}", 60) + ("  [c]" if not k else "")
              for v, lv, k in zip(table["variable"], table["level"], ok)]
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlabel(f"Odds ratio of modifiable factors ({level}% CI), log scale")
    ax.set_title(_title("Factors associated with modifiable factors, England", ctx["synthetic"]), fontsize=10)
    if "reference" in table:
        refs = (table[["variable", "reference"]].dropna().astype(str).query("reference != ''")
                .drop_duplicates("variable"))
        if len(refs):
            note = "Compared with: " + "; ".join(f"{var_name(v)} {_level_name(v, r)}" for v, r in
                                                  zip(refs["variable"], refs["reference"])) + "."
            ax.annotate(_wrap(note, 120), xy=(0.01, 0), xycoords=("figure fraction", ax.xaxis.label), xytext=(0, -6),
                        textcoords="offset points", fontsize=7, va="top", ha="left")
    return fig


FIGURES = {
    "factor_model": factor_model,
    "headline_rates": headline_rates,
    "deaths_by_age_band": deaths_by_age_band,
    "deaths_by_sex": deaths_by_sex,
    "deaths_by_category": deaths_by_category,
    "deaths_by_deprivation": deaths_by_deprivation,
    "deaths_by_ethnicity": deaths_by_ethnicity,
    "modifiable_by_category": _modifiable("category"),
    "modifiable_by_age_band": _modifiable("age band"),
    "modifiable_by_deprivation": _modifiable("deprivation quintile"),
    "modifiable_by_domain": modifiable_by_domain,
    "trend": trend,
    "funnel": funnel,
}


def render_png(fig) -> bytes:
    return _png(fig)
