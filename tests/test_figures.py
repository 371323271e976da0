"""Readable figures (issue 15): properties checked on the Figure objects, not pixels.

Every figure the report writes is captured as a Figure while the bundle is built (footprint, region
and England), then checked: title present and inside the canvas, the SYNTHETIC mark, names not
codes, legends off the plotted points, whole-year ticks on trends, a London inset on maps. Funnels
are checked against exact Poisson limits (Spiegelhalter 2005) computed here with scipy.
"""
import re

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from scipy import stats

import cdr
from cdr.report import _figures

matplotlib.use("Agg")

YEAR = "2022-23"
WELC = "waltham_forest_east_london_and_city"   # the real CDOP footprint of three London boroughs and the City
GSS = re.compile(r"\bE\d{8}\b")
SNAKE = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)+$")
TOL = 1.0   # pixels


@pytest.fixture(scope="module")
def records():
    return cdr.synthetic.generate_records(years=range(2019, 2023), seed=0)


def _build(records, **kwargs):
    captured = []
    original = _figures.render_png

    def keep(fig):
        captured.append(fig)
        return original(fig)

    _figures.render_png = keep
    try:
        report = cdr.report.build_report(records, year=YEAR, **kwargs)
    finally:
        _figures.render_png = original
    names = list(report.figures)
    assert len(names) == len(captured)   # one Figure per PNG, in the order they were written
    return report, dict(zip(names, captured))


@pytest.fixture(scope="module")
def built(records):
    return {
        "footprint": _build(records, design=cdr.footprints.load_design("cdop_2019_real"), footprint=WELC),
        "region": _build(records, level="region", region="E12000007"),
        "nation": _build(records, level="nation"),
    }


def _renderer(fig):
    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _texts(fig):
    """Every visible, non-empty text of the figure with its owner kind."""
    out = []
    for t in fig.findobj(matplotlib.text.Text):
        if t.get_visible() and t.get_text().strip() and t.get_figure(root=True) is fig:
            out.append(t)
    return out


def _inside(bbox, canvas):
    return (bbox.x0 >= canvas.x0 - TOL and bbox.y0 >= canvas.y0 - TOL and bbox.x1 <= canvas.x1 + TOL
            and bbox.y1 <= canvas.y1 + TOL)


def _figure_cases(built):
    return [(level, name) for level in ("footprint", "region", "nation") for name in built[level][1]]


LEVELS = ("footprint", "region", "nation")


@pytest.mark.parametrize("level", LEVELS)
def test_every_title_and_text_is_inside_the_canvas(built, level):
    report, figures = built[level]
    for name, fig in figures.items():
        r = _renderer(fig)
        canvas = fig.bbox
        titles = [t for ax in fig.axes for t in (ax.title, ax._left_title, ax._right_title) if t.get_text()]
        assert titles, f"{level}/{name}: no title"
        for t in titles:
            assert _inside(t.get_window_extent(r), canvas), f"{level}/{name}: title {t.get_text()!r} is clipped"
        # everything drawn (tick labels, legends, notes, colour bars, the inset) fits the canvas
        w, h = fig.get_size_inches()
        tight = fig.get_tightbbox(r)   # inches
        assert tight.x0 >= -0.01 and tight.y0 >= -0.01 and tight.x1 <= w + 0.01 and tight.y1 <= h + 0.01, \
            f"{level}/{name}: drawn extent {tight} leaves the {w} x {h} inch canvas"


@pytest.mark.parametrize("level", LEVELS)
def test_every_figure_from_synthetic_records_carries_the_mark(built, level):
    report, figures = built[level]
    assert report.synthetic
    for name, fig in figures.items():
        main = max(fig.axes, key=lambda a: a.get_position().width * a.get_position().height)
        title = "".join(main.get_title(loc) for loc in ("left", "center", "right"))
        assert title.startswith("SYNTHETIC DATA"), f"{level}/{name}: {title!r}"


@pytest.mark.parametrize("level", LEVELS)
def test_figures_name_areas_and_levels_not_codes(built, level):
    _, figures = built[level]
    for name, fig in figures.items():
        for t in _texts(fig):
            text = t.get_text()
            assert not GSS.search(text), f"{level}/{name}: a GSS code in {text!r}"
            for line in text.splitlines():
                for word in re.split(r"[\s:,;()]+", line):
                    assert not SNAKE.match(word), f"{level}/{name}: code {word!r} in {text!r}"


def _points(ax, r):
    """Display coordinates of every plotted data point (markers, line vertices, bar ends) of an Axes."""
    pts = []
    for coll in ax.collections:
        if isinstance(coll, PathCollection) and len(coll.get_offsets()):
            pts.append(coll.get_offset_transform().transform(coll.get_offsets()))
    for line in ax.get_lines():
        xy = np.column_stack(line.get_data()).astype(float)
        if len(xy) <= 200:   # data series; the 200-point funnel limit curves are reference lines
            pts.append(line.get_transform().transform(xy))
    for patch in ax.patches:
        bb = patch.get_window_extent(r)
        if bb.width > 0 and bb.height > 0:
            pts.append(np.array([[bb.x1, (bb.y0 + bb.y1) / 2]]))
    return np.vstack(pts) if pts else np.empty((0, 2))


@pytest.mark.parametrize("level", LEVELS)
def test_legends_sit_off_the_plotted_points(built, level):
    _, figures = built[level]
    checked = 0
    for name, fig in figures.items():
        r = _renderer(fig)
        for ax in fig.axes:
            leg = ax.get_legend()
            if leg is None:
                continue
            covered = _legend_covers(ax, r)
            assert covered == 0, f"{level}/{name}: the legend covers {covered} plotted point(s)"
            checked += 1
    assert checked >= 3


def _legend_covers(ax, r):
    """How many plotted points fall inside the Axes' legend box."""
    pts = _points(ax, r)
    pts = pts[np.isfinite(pts).all(axis=1)]
    box = ax.get_legend().get_window_extent(r)
    return int(((pts[:, 0] >= box.x0) & (pts[:, 0] <= box.x1) & (pts[:, 1] >= box.y0) & (pts[:, 1] <= box.y1)).sum())


def test_the_legend_check_catches_a_legend_on_the_data():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    x = np.linspace(0, 1, 21)
    ax.scatter(x, 0.5 + 0 * x, label="points")
    ax.legend(loc="center")
    assert _legend_covers(ax, _renderer(fig)) > 0
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
    assert _legend_covers(ax, _renderer(fig)) == 0


@pytest.mark.parametrize("level", LEVELS)
def test_trend_ticks_are_whole_years_one_per_period(built, level):
    report, figures = built[level]
    ax = figures["trend"].axes[0]
    _renderer(figures["trend"])
    labels = [t.get_text() for t in ax.get_xticklabels()]
    periods = report.tables["trend"]["period"].dropna().astype(str).tolist()
    periods = [p for p in periods if re.fullmatch(r"\d{4}(-\d{2})?", p)]   # not the total row
    assert labels == periods
    for label in labels:
        assert re.fullmatch(r"\d{4}(-\d{2})?", label), label
        assert int(label[:4]) in range(2000, 2100)
    assert np.allclose(ax.get_xticks(), np.round(ax.get_xticks()))   # one tick per period, none between
    # consecutive labels are consecutive years: no year skipped or repeated
    starts = [int(label[:4]) for label in labels]
    assert starts == list(range(starts[0], starts[0] + len(starts)))


def _inset(fig_or_ax):
    axes = fig_or_ax.axes if hasattr(fig_or_ax, "axes") and isinstance(fig_or_ax.axes, list) else fig_or_ax.child_axes
    return [a for a in axes if a.get_title() == "London (inset)"]


def _city_of_london_point():
    areas = cdr.data.england_areas()
    p = areas.loc[areas["la_code"] == "E09000001", "geometry"].iloc[0].representative_point()
    return p.x, p.y


@pytest.mark.parametrize("level", LEVELS)
def test_report_map_has_a_zoomed_london_inset(built, level):
    _, figures = built[level]
    fig = figures["map"]
    insets = [a for ax in fig.axes for a in ax.child_axes if a.get_title() == "London (inset)"]
    assert len(insets) == 1
    inset = insets[0]
    main = inset.get_figure().axes[0]
    x, y = _city_of_london_point()
    (x0, x1), (y0, y1) = inset.get_xlim(), inset.get_ylim()
    assert x0 < x < x1 and y0 < y < y1                 # the City of London is in the panel
    assert (x1 - x0) < 90_000 and (y1 - y0) < 90_000   # zoomed: Greater London is about 60 km across
    r = _renderer(fig)
    zoom = inset.get_window_extent(r).width / (x1 - x0) / (main.get_window_extent(r).width / np.diff(main.get_xlim())[0])
    assert zoom > 2.5                                  # London drawn at least 2.5 times larger than on the map
    assert len(inset.patches) + len(inset.collections) > 0   # the areas are drawn in it, not an empty box


def test_funnel_in_the_nation_report_has_no_empty_focus_entry(built):
    _, figures = built["nation"]
    ax = figures["funnel"].axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Regions" in labels and "England" in labels
    assert not any(label.startswith("Other") for label in labels)


def test_factor_model_axis_states_the_interval_level(built):
    _, figures = built["nation"]
    ax = figures["factor_model"].axes[0]
    assert "(95% CI)" in ax.get_xlabel()


# ------------------------------------------------------------------------------------------------
# small areas on funnels
# ------------------------------------------------------------------------------------------------
def _la_funnel_table(seed=3):
    areas = cdr.data.england_areas()
    rng = np.random.default_rng(seed)
    pop = areas["child_population"].to_numpy(float)
    deaths = rng.poisson(pop * 3.1e-4).astype(float)
    rate = deaths / pop * 1e5
    tiny_codes = ["E06000053", "E09000001"]   # Isles of Scilly, City of London
    rate[areas["la_code"].isin(tiny_codes).to_numpy()] = [0.0, 169.2]   # published rates (any value)
    return pd.DataFrame({"area_code": areas["la_code"], "area_name": areas["la_name"], "population": pop,
                         "rate_per_100000": rate})


def _ctx(focus):
    from cdr.report._stats import funnel_limits

    return {"england_rate": 31.0, "focus_code": focus, "focus_name": "Focus partnership", "peer_kind": "local authority",
            "period": YEAR, "synthetic": True, "funnel_limits": lambda t, p, c: funnel_limits(t, p, conf=c)}


def _poisson_upper_rate(rate, population, conf):
    """Upper control limit of a rate at `population` (Spiegelhalter 2005, exact Poisson quantile)."""
    return stats.poisson.ppf(1 - (1 - conf) / 2, rate / 1e5 * population) / population * 1e5


def test_tiny_areas_do_not_stretch_the_report_funnel_and_are_named_with_their_population():
    table = _la_funnel_table()
    fig = _figures.funnel(table, None, _ctx("E06000001"))
    ax = fig.axes[0]
    r = _renderer(fig)
    xs = np.concatenate([c.get_offsets()[:, 0] for c in ax.collections if isinstance(c, PathCollection)])
    pops = table.set_index("area_code")["population"]
    assert not np.isclose(xs, pops["E06000053"] / 1000).any() and not np.isclose(xs, pops["E09000001"] / 1000).any()
    # the y axis is set by the other 151 LAs: far below the limit a 359-child area would need
    assert ax.get_ylim()[1] < 0.5 * _poisson_upper_rate(31.0, pops["E06000053"], 0.998)
    assert ax.get_ylim()[1] < 200
    # never silently dropped: every LA is drawn or named in the note under the plot
    assert len(xs) == len(table) - 2
    notes = [t.get_text() for t in _texts(fig) if t.get_text().startswith("Not shown")]
    assert len(notes) == 1
    note = notes[0].replace("\n", " ")
    assert f"Isles of Scilly (population {pops['E06000053']:,.0f}" in note
    assert f"City of London (population {pops['E09000001']:,.0f}" in note
    # the note is under the axes, inside the canvas
    nb = [t for t in _texts(fig) if t.get_text().startswith("Not shown")][0].get_window_extent(r)
    assert nb.y1 <= ax.get_window_extent(r).y0 and _inside(nb, fig.bbox)


def test_a_tiny_focus_area_is_drawn_at_the_edge_and_says_so():
    table = _la_funnel_table()
    fig = _figures.funnel(table, None, _ctx("E06000053"))
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    edge = [label for label in labels if "out of scale" in label]
    assert len(edge) == 1 and "population 359" in edge[0].replace("\n", " ")
    assert ax.get_ylim()[1] < 200
    notes = " ".join(t.get_text() for t in _texts(fig) if t.get_text().startswith("Not shown"))
    assert "City of London" in notes and "Isles of Scilly" not in notes


def test_plot_funnel_leaves_tiny_denominators_out_of_the_axes_and_lists_them():
    areas = cdr.data.england_areas()
    pop = areas["child_population"].to_numpy(float)
    deaths = np.random.default_rng(1).poisson(pop * 3e-4)
    ax = cdr.rates.plot_funnel(deaths, pop, labels=areas["la_name"], synthetic=True)
    fig = ax.figure
    drawn = sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))
    assert drawn == len(pop) - 2
    lo, hi = ax.get_xlim()
    assert lo > 359 and hi > pop.max()
    note = " ".join(t.get_text() for t in _texts(fig) if t.get_text().startswith("Not shown")).replace("\n", " ")
    assert "Isles of Scilly" in note and "City of London" in note
    baseline = deaths.sum() / pop.sum() * 1e5    # the centre line still uses every area
    assert ax.get_lines()[0].get_ydata()[0] == pytest.approx(baseline)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_tiny_denominators_matches_the_documented_rule():
    n = np.array([359.0, 591.0, 2_000.0, 3_100.0, 60_000.0, 62_000.0, 70_000.0])
    median = np.median(n)   # 3,100
    assert cdr.rates._plot.tiny_denominators(n).tolist() == (n < 0.05 * median).tolist()
    assert not cdr.rates._plot.tiny_denominators([np.nan, 5.0]).any()


# ------------------------------------------------------------------------------------------------
# footprint maps
# ------------------------------------------------------------------------------------------------
def _label_texts(ax):
    return {" ".join(t.get_text().split()) for t in ax.texts if t.get_text()}


def test_footprint_design_map_gets_a_london_inset_with_the_london_names():
    import matplotlib.pyplot as plt

    design = cdr.footprints.load_design("cdop_2019_real")
    ax = design.plot()
    insets = [a for a in ax.child_axes if a.get_title() == "London (inset)"]
    assert len(insets) == 1
    inset_names, map_names = _label_texts(insets[0]), _label_texts(ax)
    welc = "Waltham Forest, East London and City CDR partnership"   # published name, remark "(WELC)" left out
    assert welc in inset_names and welc not in map_names   # London's footprints labelled in the panel only
    assert "Tees CDOP" in map_names
    plt.close(ax.figure)


def test_footprint_map_labels_every_footprint_once_by_its_published_name():
    import matplotlib.pyplot as plt

    design = cdr.footprints.load_design("cdop_2019_real")
    ids = set(design.labels.dropna())
    names = design.columns.assign(footprint_id=design.columns["la_code"].map(design.labels))
    names = names.dropna(subset=["footprint_id"]).drop_duplicates("footprint_id")
    ax = design.plot()
    inset = next(a for a in ax.child_axes if a.get_title() == "London (inset)")
    texts = [" ".join(t.get_text().split()) for a in (ax, inset) for t in a.texts if t.get_text()]
    assert len(texts) == len(ids) == 54   # one label per footprint, none lost, none twice
    for fid, name in zip(names["footprint_id"], names["footprint_name"]):
        first = name.split("(")[0].split("[")[0].strip()   # the name before any remark
        assert any(t.startswith(first) for t in texts), (fid, name)
    assert not any(t in ids for t in texts)   # no snake_case id left
    assert not any("[" in t or "(" in t or GSS.search(t) for t in texts)   # remarks and codes left out
    plt.close(ax.figure)


def test_footprints_without_a_name_keep_their_id_and_single_area_ones_take_the_la_name():
    import matplotlib.pyplot as plt

    design = cdr.footprints.load_design("england_min60")
    sizes = design.labels.dropna().value_counts()
    ons = cdr.data.lookup(2023).set_index("la_code")["la_name"]
    ax = design.plot()
    inset = next(a for a in ax.child_axes if a.get_title() == "London (inset)")
    texts = _label_texts(ax) | _label_texts(inset)
    single = sizes[sizes == 1].index
    assert len(single) >= 1
    for fid in single:
        code = design.labels[design.labels == fid].index[0]
        assert ons[code] in texts and fid not in texts
    for fid in sizes[sizes > 1].index:
        assert fid in texts
    assert "Birmingham" in texts   # E08000025, a footprint of its own (the ONS name)
    plt.close(ax.figure)


def test_footprint_map_can_keep_ids_and_refuses_an_unknown_label_option():
    import matplotlib.pyplot as plt

    design = cdr.footprints.load_design("cdop_2019_real")
    ax = design.plot(label="id")
    assert "tees_cdop" in _label_texts(ax) and "Tees CDOP" not in _label_texts(ax)
    plt.close(ax.figure)
    ax = design.plot(label=False)
    assert not _label_texts(ax) - {"London (inset)"}
    plt.close(ax.figure)
    with pytest.raises(cdr.errors.CdrError, match="'label' must be True, False, 'name' or 'id'") as err:
        design.plot(label="names")
    assert isinstance(err.value, ValueError)
    plt.close("all")


def test_plot_rates_labels_rows_by_name_where_one_exists():
    import matplotlib.pyplot as plt

    t = pd.DataFrame({"la_code": ["E06000001", "E99999999", "E09000001"], "value": [20.0, 30.0, 40.0],
                      "lower_95": [10.0, 20.0, 30.0], "upper_95": [30.0, 40.0, 50.0]})

    def ticks(ax):
        return [x.get_text() for x in ax.get_yticklabels()]

    # ONS names of E06000001 and E09000001; a code without a name stays a code
    assert ticks(cdr.rates.plot_rates(t)) == ["Hartlepool", "E99999999", "City of London"]
    assert ticks(cdr.rates.plot_rates(t, names=False)) == ["E06000001", "E99999999", "E09000001"]
    named = t.assign(la_name=["Area one", None, "Area three"])   # the table's own names win
    assert ticks(cdr.rates.plot_rates(named)) == ["Area one", "E99999999", "Area three"]
    regions = pd.DataFrame({"region_code": ["E12000007", "E92000001"], "value": [20.0, 30.0],
                            "lower_95": [10.0, 20.0], "upper_95": [30.0, 40.0]})
    assert ticks(cdr.rates.plot_rates(regions, label="region_code")) == ["London", "England"]
    fps = pd.DataFrame({"footprint_id": ["F001"], "value": [1.0], "lower_95": [0.5], "upper_95": [2.0]})
    assert ticks(cdr.rates.plot_rates(fps, label="footprint_id")) == ["F001"]   # no name known: the id
    with pytest.raises(cdr.errors.CdrError, match="'names' must be") as err:
        cdr.rates.plot_rates(t, names=3)
    assert isinstance(err.value, ValueError)
    plt.close("all")


def test_a_design_without_london_gets_no_inset():
    import matplotlib.pyplot as plt

    areas = cdr.data.england_areas()
    north_east = areas[areas["region_code"] == "E12000001"].copy()
    north_east["expected_deaths"] = 10.0
    labels = dict.fromkeys(north_east["la_code"], "ne")
    design = cdr.footprints.FootprintDesign(labels, north_east)
    ax = design.plot()
    assert not [a for a in ax.child_axes if a.get_title() == "London (inset)"]
    plt.close(ax.figure)


def test_map_png_bytes_are_identical_between_runs(built):
    import geopandas as gpd

    areas = cdr.data.england_areas()
    frame = gpd.GeoDataFrame(areas[["la_code", "geometry"]].copy(), geometry="geometry", crs=areas.crs)
    frame["in_focus"] = frame["la_code"].str.startswith("E09")
    ctx = {"level": "region", "focus_name": "London", "synthetic": True, "period": YEAR, "peer_kind": "region"}
    assert _figures.render_png(_figures.area_map(frame, ctx)) == _figures.render_png(_figures.area_map(frame, ctx))


def test_expected_deaths_map_has_a_london_inset_on_the_same_colour_scale():
    import matplotlib.pyplot as plt

    ax = cdr.reference.plot_expected_deaths()
    insets = [a for a in ax.child_axes if a.get_title() == "London (inset)"]
    assert len(insets) == 1
    main_norm = ax.collections[0].norm
    inset_norm = insets[0].collections[0].norm
    assert (inset_norm.vmin, inset_norm.vmax) == (main_norm.vmin, main_norm.vmax)
    plt.close(ax.figure)


def test_a_map_of_london_alone_gets_no_inset_and_keeps_its_labels():
    import matplotlib.pyplot as plt

    areas = cdr.data.england_areas()
    london = areas[areas["la_code"].str.startswith("E09")].copy()
    london["expected_deaths"] = 20.0
    design = cdr.footprints.FootprintDesign(dict(zip(london["la_code"], ["east"] * 16 + ["west"] * 17)), london)
    ax = design.plot()
    assert not [a for a in ax.child_axes if a.get_title() == "London (inset)"]
    assert {t.get_text() for t in ax.texts} == {"east", "west"}
    plt.close(ax.figure)


@pytest.mark.parametrize("level", LEVELS)
def test_funnel_outliers_are_named_without_covering_the_focus_or_each_other(built, level):
    report, figures = built[level]
    fig = figures["funnel"]
    ax = fig.axes[0]
    r = _renderer(fig)
    table = report.tables["funnel"]
    position = table["position"].astype(str)
    outliers = table.loc[position.str.contains("99.8") & (table["area_code"] != report.context["focus_code"]), "area_name"]
    labels = [t for t in ax.texts if t.get_text()]
    assert sorted(t.get_text().replace("\n", " ") for t in labels) == sorted(outliers)
    boxes = [t.get_window_extent(r) for t in labels]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    focus = table["area_code"] == report.context["focus_code"]
    if focus.any() and np.isfinite(pd.to_numeric(table.loc[focus, "rate_per_100000"], errors="coerce")).all():
        x, y = ax.transData.transform((float(table.loc[focus, "population"].iloc[0]) / 1000,
                                       float(table.loc[focus, "rate_per_100000"].iloc[0])))
        assert not any(b.x0 < x < b.x1 and b.y0 < y < b.y1 for b in boxes)


def test_funnel_png_bytes_are_identical_between_runs():
    table = _la_funnel_table()
    table.loc[table["area_code"] == "E08000025", "rate_per_100000"] = 80.0   # an outlier, so a label is placed
    first = _figures.render_png(_figures.funnel(table, None, _ctx("E06000001")))
    assert first == _figures.render_png(_figures.funnel(table, None, _ctx("E06000001")))
