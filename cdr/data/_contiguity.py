"""The England contiguity graph: queen contiguity, closed generalisation gaps, and named links.

The embedded boundaries are ultra-generalised (500 m) and clipped to the coastline, so plain queen
contiguity is wrong for England in two ways: it misses neighbours across narrow gaps left by
generalisation (Rutland-Peterborough about 20 m, Croydon-Southwark about 80 m), and it misses
neighbours across estuaries with a fixed crossing and islands served by ferries. This module closes
gaps up to a small tolerance and adds a short, named list of crossing and island links. Nothing
else is linked: a larger tolerance would add false links inside London.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cdr import _validate as check
from cdr.data._areas import _check_vintage
from cdr.errors import ArgumentError

__all__ = ["contiguity", "Contiguity", "DEFAULT_LINKS", "DEFAULT_TOLERANCE_M", "components", "is_connected"]

DEFAULT_TOLERANCE_M = 250.0

#: Named links added on top of touching and near-touching areas: (la_code_a, la_code_b, kind, reason).
DEFAULT_LINKS: tuple = (
    ("E06000026", "E06000052", "crossing", "Tamar crossings (Tamar Bridge, Torpoint ferry): Plymouth-Cornwall"),
    ("E10000016", "E06000034", "crossing", "Dartford Crossing: Kent-Thurrock"),
    ("E06000010", "E06000013", "crossing", "Humber Bridge: Kingston upon Hull-North Lincolnshire"),
    ("E08000015", "E08000012", "crossing", "Mersey tunnels: Wirral-Liverpool"),
    ("E06000046", "E10000014", "island", "Solent ferries: Isle of Wight-Hampshire"),
    ("E06000046", "E06000044", "island", "Portsmouth-Fishbourne ferry: Isle of Wight-Portsmouth"),
    ("E06000046", "E06000045", "island", "Southampton-Cowes ferry: Isle of Wight-Southampton"),
    ("E06000053", "E06000052", "island", "Scillonian ferry and air link: Isles of Scilly-Cornwall"),
)


@dataclass(frozen=True, repr=False)
class Contiguity:
    """A contiguity graph of areas keyed by ``la_code``.

    Attributes
    ----------
    w : libpysal.weights.W
        Binary symmetric weights, ids are ``la_code`` (sorted).
    edges : pandas.DataFrame
        Every undirected link once: ``la_code_a`` < ``la_code_b``, ``kind`` (``"touching"``,
        ``"gap"``, ``"crossing"``, ``"island"``), ``reason``, ``distance_m`` (boundary-to-boundary).
    added : pandas.DataFrame
        The links that plain queen contiguity does not have (``kind != "touching"``).
    tolerance_m : float
        The gap-closing tolerance used (metres).
    neighbors : dict of str to list of str
        Neighbours of each ``la_code``.
    n_components : int
        Number of connected components of the graph (1 for England with the default links).

    See Also
    --------
    contiguity : builds a ``Contiguity``; do not construct one by hand.

    Examples
    --------
    Three 1 m squares in a row (metres): A touches B, and C lies 1 m from B, a gap within ``tolerance_m``:

    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> squares = gpd.GeoDataFrame({"la_code": ["A", "B", "C"]},
    ...                            geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(3, 0, 4, 1)],
    ...                            crs="EPSG:27700")
    >>> g = contiguity(squares, tolerance_m=1.5, links=())
    >>> g.neighbors
    {'A': ['B'], 'B': ['A', 'C'], 'C': ['B']}
    >>> g.added[["la_code_a", "la_code_b", "kind", "distance_m"]].values.tolist()
    [['B', 'C', 'gap', 1.0]]
    >>> g.n_components
    1
    """

    w: object
    edges: pd.DataFrame
    tolerance_m: float

    @property
    def added(self) -> pd.DataFrame:
        return self.edges[self.edges["kind"] != "touching"].reset_index(drop=True)

    @property
    def neighbors(self) -> dict:
        return {k: list(v) for k, v in self.w.neighbors.items()}

    @property
    def n_components(self) -> int:
        return int(components(self.neighbors)[0])

    def __repr__(self) -> str:
        counts = self.edges["kind"].value_counts().to_dict()
        return (
            f"Contiguity({self.w.n} areas, {len(self.edges)} links {counts}, tolerance_m={self.tolerance_m}, "
            f"components={self.n_components})"
        )


def contiguity(areas=None, *, vintage: int = 2023, tolerance_m: float = DEFAULT_TOLERANCE_M, links=DEFAULT_LINKS,
               id_column: str = "la_code") -> Contiguity:
    """Contiguity graph of England's upper-tier LAs (or of any polygons you pass).

    Two areas are neighbours when their boundaries are within ``tolerance_m`` metres of each other
    (0 gives plain queen contiguity: shared point or edge), or when the pair is in ``links``.

    Parameters
    ----------
    areas : geopandas.GeoDataFrame, optional
        Polygons with an ``id_column``; default: :func:`cdr.data.england_areas` of ``vintage``.
        A geographic CRS is reprojected to EPSG:27700 so distances are in metres.
    vintage : {2023, 2021}
        Used when ``areas`` is None.
    tolerance_m : float, default 250
        Gaps up to this width (metres) count as touching. The embedded boundaries leave gaps of
        about 20 m (Rutland-Peterborough), 80 m (Croydon-Southwark) and 160 m (Southwark-Westminster).
    links : iterable of tuple
        ``(code_a, code_b, kind, reason)`` links to add; default :data:`DEFAULT_LINKS` (four fixed
        estuary crossings and the Isle of Wight and Isles of Scilly links). Links naming a code
        not in ``areas`` are skipped (a 2021 graph, or your own areas).
    id_column : str, default "la_code"

    Returns
    -------
    Contiguity

    Examples
    --------
    >>> g = contiguity()
    >>> g.n_components, sorted(g.w.neighbors["E06000053"])
    (1, ['E06000052'])
    """
    caller = "contiguity"
    tolerance_m = check.number(tolerance_m, "tolerance_m", caller, minimum=0, example=250, unit="metres")
    links = _check_links(links, caller)
    if areas is None:
        return _england_cached(_check_vintage(vintage, caller), tolerance_m, links)
    check.text(id_column, "id_column", caller)
    check.frame(areas, "areas", caller, columns=[id_column], hint="Name the id column with id_column=.")
    if not hasattr(areas, "geometry"):
        raise ArgumentError(f"{caller}: 'areas' must be a GeoDataFrame with polygons (a geometry column); got a "
                            f"DataFrame without one. Read boundaries with geopandas.read_file.")
    return _build(areas, tolerance_m, links, id_column)


def _check_links(links, caller: str) -> tuple:
    example = "[('E06000046', 'E06000044', 'ferry', 'Isle of Wight')]"
    if isinstance(links, (str, bytes)) or not isinstance(links, Iterable):
        raise ArgumentError(f"{caller}: 'links' must be a list of (code_a, code_b, kind, reason) tuples, e.g. "
                            f"{example}; got {check.describe(links)}.")
    out = []
    for link in links:
        if isinstance(link, str) or not isinstance(link, Iterable) or len(link := tuple(link)) != 4 \
                or not all(isinstance(x, str) for x in link):
            raise ArgumentError(f"{caller}: each of 'links' must be a tuple of four strings (code_a, code_b, kind, "
                                f"reason), e.g. {example}; got {check.describe(link)}.")
        out.append(link)
    return tuple(out)


@functools.lru_cache(maxsize=8)
def _england_cached(vintage, tolerance_m, links):
    from cdr.data._areas import england_areas

    return _build(england_areas(vintage), tolerance_m, links, "la_code")


def _build(areas, tolerance_m, links, id_column):
    import geopandas as gpd
    from libpysal.weights import W

    ids = areas[id_column].astype(str)
    if ids.duplicated().any():
        raise ArgumentError(f"contiguity: duplicate ids in {id_column!r}: {sorted(ids[ids.duplicated()].unique())[:10]}")
    geo = gpd.GeoDataFrame({"id": ids.to_numpy()}, geometry=areas.geometry.to_numpy(), crs=areas.crs)
    if geo.crs is not None and geo.crs.is_geographic:
        geo = geo.to_crs("EPSG:27700")
    geo = geo.sort_values("id", ignore_index=True)
    # Candidate pairs: bounding boxes within the tolerance, then exact distances.
    left, right = geo.sindex.query(geo.geometry, predicate="dwithin", distance=max(tolerance_m, 1e-9))
    mask = left < right
    left, right = left[mask], right[mask]
    geoms = geo.geometry.to_numpy()
    dist = np.array([geoms[i].distance(geoms[j]) for i, j in zip(left, right)], dtype=float)
    touching = np.array([geoms[i].intersects(geoms[j]) for i, j in zip(left, right)], dtype=bool)
    keep = touching | (dist <= tolerance_m)
    edges = pd.DataFrame(
        {
            "la_code_a": geo["id"].to_numpy()[left[keep]],
            "la_code_b": geo["id"].to_numpy()[right[keep]],
            "kind": np.where(touching[keep], "touching", "gap"),
            "reason": np.where(touching[keep], "boundaries touch", f"gap <= {tolerance_m:g} m left by generalisation"),
            "distance_m": np.where(touching[keep], 0.0, dist[keep]),
        }
    )
    index = dict(zip(geo["id"], range(len(geo))))
    named = []
    for a, b, kind, reason in links:
        if a not in index or b not in index:
            continue
        a, b = sorted((a, b))
        named.append((a, b, kind, reason, float(geoms[index[a]].distance(geoms[index[b]]))))
    if named:
        named = pd.DataFrame(named, columns=edges.columns)
        existing = set(zip(edges["la_code_a"], edges["la_code_b"]))
        named = named[[(a, b) not in existing for a, b in zip(named["la_code_a"], named["la_code_b"])]]
        edges = pd.concat([edges, named], ignore_index=True)
    edges = edges.sort_values(["la_code_a", "la_code_b"], ignore_index=True)
    neighbors = {i: [] for i in geo["id"]}
    for a, b in zip(edges["la_code_a"], edges["la_code_b"]):
        neighbors[a].append(b)
        neighbors[b].append(a)
    neighbors = {k: sorted(v) for k, v in neighbors.items()}
    w = W(neighbors, id_order=list(geo["id"]), silence_warnings=True)
    return Contiguity(w=w, edges=edges, tolerance_m=tolerance_m)


def components(neighbors, members=None, *, within=None):
    """Connected components of a neighbour graph (``scipy.sparse.csgraph.connected_components``).

    The one connectivity routine of cdr: the footprint builder's subproblems, the contiguity
    checks of :func:`cdr.footprints.check_design` and ``table()``, and ``Contiguity.n_components``
    all call it (the solver's inner loops use a bitmask search on the same definition, tested
    against this one).

    Parameters
    ----------
    neighbors : dict
        ``id -> iterable of ids`` (links are taken as undirected; ids not in the graph are ignored).
    members : iterable, optional
        Restrict to the subgraph induced by these ids (default: every id of ``neighbors``).
    within : dict, optional
        ``id -> unit``: only links between ids of the same unit count (e.g. a nesting column).

    Returns
    -------
    n : int
        Number of components.
    labels : dict
        ``id -> component number`` (0 .. n-1, numbered by each component's smallest id in sorted order).

    Examples
    --------
    >>> n, labels = components({"a": ["b"], "b": ["a"], "c": []})
    >>> n, labels
    (2, {'a': 0, 'b': 0, 'c': 1})
    >>> components({"a": ["b"], "b": ["a", "c"], "c": ["b"]}, members=["a", "c"])[0]
    2
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ids = sorted(neighbors if members is None else set(members), key=str)
    if not ids:
        return 0, {}
    pos = {k: i for i, k in enumerate(ids)}
    rows, cols = [], []
    for k in ids:
        for x in neighbors.get(k, ()):
            j = pos.get(x)
            if j is None or (within is not None and within[k] != within[x]):
                continue
            rows.append(pos[k])
            cols.append(j)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(ids), len(ids)))
    n, lab = connected_components(graph, directed=False)
    # renumber by first appearance in sorted id order (deterministic, independent of input order)
    order = {}
    for c in lab.tolist():
        order.setdefault(c, len(order))
    return int(n), {k: order[c] for k, c in zip(ids, lab.tolist())}


def is_connected(members, neighbors) -> bool:
    """True if ``members`` induce a connected subgraph of ``neighbors`` (one area, or none, is connected).

    Examples
    --------
    >>> line = {"a": ["b"], "b": ["a", "c"], "c": ["b"]}
    >>> is_connected(["a", "b"], line), is_connected(["a", "c"], line)
    (True, False)
    """
    members = list(members)
    if len(members) <= 1:
        return True
    return components(neighbors, members)[0] == 1
