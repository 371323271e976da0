"""What every map of England needs so London stays readable: a zoomed London inset (private).

London's 33 boroughs (``E09*``, 1,572 km2 in all) are a smudge on a map of England; every England
or region map that includes them gets a zoomed panel labelled ``"London (inset)"`` drawn by
:func:`add_london_inset`, with a box and leader lines showing where it sits.
"""
from __future__ import annotations

import functools

__all__ = ["LONDON_PREFIX", "INSET_LABEL", "london_box", "covers_london", "wants_london_inset", "add_london_inset",
           "wrap_label"]

#: GSS prefix of the London boroughs (and the City of London), the upper-tier LAs of region E12000007.
LONDON_PREFIX = "E09"
#: Title of the inset panel.
INSET_LABEL = "London (inset)"


@functools.lru_cache(maxsize=None)
def london_box(pad: float = 0.04) -> tuple:
    """(xmin, ymin, xmax, ymax) of London's boroughs in British National Grid metres, padded by `pad` of the size.

    Examples
    --------
    >>> x0, y0, x1, y1 = london_box()
    >>> 480_000 < x0 < x1 < 580_000 and 140_000 < y0 < y1 < 215_000
    True
    """
    from cdr.data._areas import england_areas

    areas = england_areas(2023)   # London's boundaries are the same in both vintages
    x0, y0, x1, y1 = areas.loc[areas["la_code"].str.startswith(LONDON_PREFIX), "geometry"].total_bounds
    dx, dy = (x1 - x0) * pad, (y1 - y0) * pad
    return (float(x0 - dx), float(y0 - dy), float(x1 + dx), float(y1 + dy))


def covers_london(frame) -> bool:
    """Whether a map frame includes London: any ``E09`` ``la_code``, or (frames without LA codes, such as
    dissolved regions) any geometry meeting London's box.

    Examples
    --------
    >>> import pandas as pd
    >>> covers_london(pd.DataFrame({"la_code": ["E06000001", "E09000033"]}))
    True
    >>> covers_london(pd.DataFrame({"la_code": ["E06000001"]}))
    False
    """
    if "la_code" in frame:
        return bool(frame["la_code"].astype(str).str.startswith(LONDON_PREFIX).any())
    if "geometry" not in frame or len(frame) == 0:
        return False
    from shapely.geometry import box

    crs = getattr(frame, "crs", None)
    if crs is None or crs.to_epsg() != 27700:
        return False
    return bool(frame.geometry.intersects(box(*london_box())).any())


def wants_london_inset(frame, *, zoom: float = 3.0) -> bool:
    """Whether a map of `frame` needs the London inset: it includes London and is at least `zoom` times
    as wide as London (a map of London alone, or of London and a neighbour, is already readable).

    Examples
    --------
    >>> from cdr.data import england_areas
    >>> areas = england_areas()
    >>> wants_london_inset(areas), wants_london_inset(areas[areas["la_code"].str.startswith("E09")])
    (True, False)
    """
    if not covers_london(frame) or "geometry" not in frame or len(frame) == 0:
        return False
    x0, _, x1, _ = frame.geometry.total_bounds
    bx0, _, bx1, _ = london_box()
    return bool(x1 - x0 >= zoom * (bx1 - bx0))


def add_london_inset(ax, draw, *, room: float = 0.36):
    """Zoomed London panel to the right of an England map drawn on `ax` (British National Grid).

    The map's x range is widened by `room` (a share of its width) into the North Sea, and the panel
    sits in that new space, so it covers no land. ``draw(inset_ax)`` draws the same layers again on
    the panel (it is called once, with the panel's Axes).

    Returns
    -------
    matplotlib.axes.Axes
        The inset panel, titled :data:`INSET_LABEL`.
    """
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    ax.set_xlim(x0, x1 + (x1 - x0) * room)
    share = room / (1 + room)   # the new empty strip, as a share of the widened axes
    inset = ax.inset_axes([1 - share + 0.01, 0.46, share - 0.01, 0.46])
    draw(inset)
    bx0, by0, bx1, by1 = london_box()
    inset.set_xlim(bx0, bx1)
    inset.set_ylim(by0, by1)
    inset.set_aspect("equal")
    inset.set_anchor("N")
    inset.set_xticks([])
    inset.set_yticks([])
    inset.set_xlabel("")   # GeoPandas labels projected axes ("Easting [metre]"): not wanted on a panel
    inset.set_ylabel("")
    for side in inset.spines.values():
        side.set_edgecolor("#425563")
        side.set_linewidth(0.8)
    inset.set_title(INSET_LABEL, fontsize=8)
    ax.indicate_inset_zoom(inset, edgecolor="#425563", linewidth=0.8, alpha=1.0)
    ax.set_ylim(y0, y1)
    return inset


def wrap_label(text, width: int = 18) -> str:
    r"""A place name as a map label: remarks in brackets or parentheses left out (``"Tees CDOP [source:
    2019 report]"`` -> ``"Tees CDOP"``) and the name broken into lines of at most about `width` characters
    (words are not split; a single longer word stays whole).

    Examples
    --------
    >>> wrap_label("Waltham Forest, East London and City (WELC) CDR partnership")
    'Waltham Forest,\nEast London and\nCity CDR\npartnership'
    >>> wrap_label("F001")
    'F001'
    """
    import re
    import textwrap

    full = " ".join(str(text).split())
    short = " ".join(re.sub(r"\s*(\([^()]*\)|\[[^\[\]]*\])", " ", full).split()) or full
    return "\n".join(textwrap.wrap(short, width, break_long_words=False, break_on_hyphens=False)) or short
