"""The release ledger: everything an organisation has published, as equations over shared unknowns.

A statistics bundle is safe only against an attacker who reads *every* bundle ever published. The
ledger is what makes that checkable: each release writes, inside its bundle (``ledger.json``),
every count it published or suppressed and every pure geography piece it relies on, each as an
*unknown* keyed by what it counts, not by the table that showed it::

    deaths|las:3f9c0e1a2b4d|2022-23|age_band=1-4

(measure, the set of LAs it covers, period, breakdown). The same LAs, period and measure from two
footprint designs, a region and England is the *same* unknown, so differencing across bundles is a
set of equations the audit sees. A ledger carries its predecessors' entries forward (a chain never
forgets): a release built on ``b3`` knows ``b1 .. b3``.

Nothing in a ledger narrows a hidden count: a cell is ``published`` (with its value),
``suppressed`` or ``unpublished`` (a piece of a published total that no table shows); true values
of hidden cells are never written.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd

from cdr import _validate as check
from cdr.disclosure._bundle import _unique_equations
from cdr.errors import DisclosureError

__all__ = ["Ledger", "read_ledgers", "LEDGER_FORMAT"]

LEDGER_FORMAT = "cdr-release-ledger"
_VERSION = 1
STATUSES = ("published", "suppressed", "unpublished")
_RANK = {"unpublished": 0, "suppressed": 1, "published": 2}   # what the public knows, least to most


def _cells_frame(rows=()):
    cols = ["cell", "status", "value", "release"]
    frame = pd.DataFrame(list(rows), columns=cols)
    frame["value"] = frame["value"].astype(object)
    return frame


@dataclass
class Ledger:
    """Every cell, equation and rate published by a chain of releases.

    Attributes
    ----------
    releases : list of dict
        One entry per release, oldest first: ``release`` (a content hash), ``title``, ``period``,
        ``level``, ``unit``, ``threshold`` and ``previous`` (the releases it was built on).
    units : dict of str -> list of str
        Unit key (``la:<code>`` or ``las:<hash of the sorted LA codes>``) -> LA codes it covers.
    cells : pandas.DataFrame
        ``cell`` (key), ``status`` (``"published"``, ``"suppressed"``, ``"unpublished"``),
        ``value`` (the published count, None otherwise) and ``release`` (the release that first
        gave the cell this status).
    equations : list of (str, list of str)
        ``total = sum of parts`` among cell keys (additivity, geography, years, merged levels).
    rates : list of dict
        Published rates: ``cell`` (the count), ``rate``, ``population``, ``multiplier``,
        ``decimals``, ``release``. A rate rounded to ``decimals`` with population ``P`` bounds its
        count to ``[(rate - h) P / multiplier, (rate + h) P / multiplier]``, ``h = 0.5 * 10**-decimals``.

    Examples
    --------
    >>> led = Ledger.new({"release": "r1", "title": "demo", "period": "2022-23"},
    ...                  cells=[("deaths|la:E1|2022-23|", "suppressed", None),
    ...                         ("deaths|la:E2|2022-23|", "published", 9),
    ...                         ("deaths|las:ab|2022-23|", "published", 12)],
    ...                  equations=[("deaths|las:ab|2022-23|", ["deaths|la:E1|2022-23|", "deaths|la:E2|2022-23|"])],
    ...                  units={"la:E1": ["E1"], "la:E2": ["E2"], "las:ab": ["E1", "E2"]})
    >>> led.status("deaths|la:E1|2022-23|"), led.published()["deaths|la:E2|2022-23|"]
    ('suppressed', 9)
    """

    releases: list = field(default_factory=list)
    units: dict = field(default_factory=dict)
    cells: pd.DataFrame = field(default_factory=_cells_frame)
    equations: list = field(default_factory=list)
    rates: list = field(default_factory=list)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def new(cls, release, *, cells, equations=(), units=None, rates=()):
        """A one-release ledger.

        Parameters
        ----------
        release : dict
            ``release`` (id) and descriptive fields (``title``, ``period``, ...).
        cells : iterable of (str, str, int or None)
            ``(key, status, published value or None)``.
        equations : iterable of (str, list of str)
        units : dict, optional
            Unit key -> LA codes.
        rates : iterable of dict, optional
            ``cell``, ``rate``, ``population``, ``multiplier``, ``decimals``.

        Returns
        -------
        Ledger

        Examples
        --------
        >>> Ledger.new({"release": "r1"}, cells=[("deaths|la:E1|2022|", "published", 3)]).cells.to_dict("records")
        [{'cell': 'deaths|la:E1|2022|', 'status': 'published', 'value': 3, 'release': 'r1'}]
        """
        rid = str(release["release"])
        rows = []
        for key, status, value in cells:
            if status not in STATUSES:
                raise ValueError(f"Ledger.new: cell {key!r} has status {status!r}; use one of {STATUSES}")
            if (status == "published") != (value is not None):
                raise ValueError(f"Ledger.new: cell {key!r}: a value is given exactly when the status is 'published'")
            rows.append((str(key), status, None if value is None else int(value), rid))
        led = cls(releases=[dict(release)], units={k: sorted(v) for k, v in (units or {}).items()},
                  cells=_cells_frame(rows), equations=[(str(t), [str(p) for p in ps]) for t, ps in equations],
                  rates=[{**r, "release": rid} for r in rates])
        return led._dedup()

    @classmethod
    def from_dict(cls, data, *, source="ledger"):
        """Read a ledger from its JSON form (:meth:`to_dict`).

        Parameters
        ----------
        data : dict
        source : str
            Where it came from (for error messages).

        Returns
        -------
        Ledger

        Examples
        --------
        >>> led = Ledger.new({"release": "r1"}, cells=[("deaths|la:E1|2022|", "suppressed", None)])
        >>> Ledger.from_dict(led.to_dict()).status("deaths|la:E1|2022|")
        'suppressed'
        """
        try:
            if data.get("format") != LEDGER_FORMAT:
                raise KeyError("format")
            cells = _cells_frame((c["cell"], c["status"], c.get("value"), c["release"]) for c in data["cells"])
            bad = ~cells["status"].isin(STATUSES)
            if bad.any():
                raise ValueError(f"unknown status {sorted(set(cells.loc[bad, 'status']))}")
            return cls(releases=list(data["releases"]), units={k: list(v) for k, v in data["units"].items()},
                       cells=cells, equations=[(t, list(p)) for t, p in data["equations"]],
                       rates=list(data.get("rates", [])))._dedup()
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DisclosureError(f"{source} is not a cdr release ledger (format {LEDGER_FORMAT!r}, version "
                                  f"{_VERSION}): {exc!r}. Give the folder of a bundle written by cdr report, its "
                                  "ledger.json, or a --ledger folder of such files.") from exc

    def to_dict(self):
        """The JSON form written to ``ledger.json`` (sorted, so identical ledgers are identical bytes).

        Returns
        -------
        dict

        Examples
        --------
        >>> Ledger.new({"release": "r1"}, cells=[("deaths|la:E1|2022|", "published", 3)]).to_dict()["format"]
        'cdr-release-ledger'
        """
        cells = self.cells.sort_values("cell")
        return {
            "format": LEDGER_FORMAT, "version": _VERSION,
            "about": "Every count published by this release and the releases it was built on, as equations over "
                     "unknowns keyed by measure|LAs|period|breakdown (docs/concepts/disclosure.md). status: "
                     "published (value given), suppressed, or unpublished (a piece of published totals never shown).",
            "releases": self.releases,
            "units": {k: sorted(v) for k, v in sorted(self.units.items())},
            "cells": [{"cell": c, "status": s, "value": (None if v is None or v != v else int(v)), "release": r}
                      for c, s, v, r in cells[["cell", "status", "value", "release"]].itertuples(index=False)],
            "equations": sorted([[t, list(p)] for t, p in self.equations]),
            "rates": sorted(self.rates, key=lambda r: (r["cell"], r.get("release", ""))),
        }

    # -- combining ---------------------------------------------------------------------------
    def merge(self, *others):
        """The union of ledgers (the status that tells the public most wins; values must agree).

        Parameters
        ----------
        *others : Ledger

        Returns
        -------
        Ledger

        Raises
        ------
        cdr.errors.DisclosureError
            A cell published with two different values (a revision: the difference is disclosed).

        Examples
        --------
        >>> a = Ledger.new({"release": "a"}, cells=[("k", "suppressed", None)])
        >>> b = Ledger.new({"release": "b"}, cells=[("k", "published", 7)])
        >>> a.merge(b).cells[["cell", "status", "value", "release"]].values.tolist()
        [['k', 'published', 7, 'b']]
        """
        releases, seen = [], set()
        for led in (self, *others):
            for r in led.releases:
                if r["release"] not in seen:
                    seen.add(r["release"])
                    releases.append(r)
        units = {}
        for led in (self, *others):
            units.update(led.units)
        cells = pd.concat([led.cells for led in (self, *others)], ignore_index=True)
        return Ledger(releases, units, cells, [e for led in (self, *others) for e in led.equations],
                      [r for led in (self, *others) for r in led.rates])._dedup()

    def _dedup(self):
        cells = self.cells
        if len(cells):
            pub = cells[cells["status"] == "published"]
            vals = pub.groupby("cell")["value"].agg(lambda s: sorted({int(v) for v in s}))
            clash = vals[vals.map(len) > 1]
            if len(clash):
                lines = []
                for cid, vs in clash.head(10).items():
                    rel = pub.loc[pub["cell"] == cid, ["value", "release"]].drop_duplicates()
                    lines.append(f"  {cid}: " + ", ".join(f"{int(v)} in release {r}" for v, r in rel.itertuples(index=False)))
                raise DisclosureError(
                    f"{len(clash)} cell(s) were published with different values by releases of this chain "
                    "(revised records):\n" + "\n".join(lines) + "\nPublishing both values discloses the difference; "
                    "publish a revision note instead of a new release on the same chain.")
            order = cells.assign(_rank=cells["status"].map(_RANK), _pos=range(len(cells)))
            order = order.sort_values(["cell", "_rank", "_pos"], ascending=[True, False, True], kind="stable")
            cells = order.drop_duplicates("cell")[["cell", "status", "value", "release"]].reset_index(drop=True)
            cells["value"] = pd.Series([None if v is None or v != v else int(v) for v in cells["value"]],
                                       dtype=object, index=cells.index)
        eqs = _unique_equations(self.equations, drop_identities=True)
        rseen, rates = set(), []
        for r in self.rates:
            key = (r["cell"], float(r["rate"]), float(r["population"]), int(r["decimals"]), float(r["multiplier"]))
            if key not in rseen:
                rseen.add(key)
                rates.append(r)
        return Ledger(self.releases, self.units, cells, eqs, rates)

    # -- queries -----------------------------------------------------------------------------
    def status(self, cell):
        """``"published"``, ``"suppressed"``, ``"unpublished"`` or None (not in the ledger).

        Parameters
        ----------
        cell : str

        Returns
        -------
        str or None

        Examples
        --------
        >>> Ledger().status("deaths|la:E1|2022|") is None
        True
        """
        hit = self.cells.loc[self.cells["cell"] == cell, "status"]
        return None if hit.empty else str(hit.iloc[0])

    def published(self):
        """``{cell: value}`` of every published cell.

        Returns
        -------
        dict

        Examples
        --------
        >>> Ledger.new({"release": "r1"}, cells=[("k", "published", 3)]).published()
        {'k': 3}
        """
        pub = self.cells[self.cells["status"] == "published"]
        return {c: int(v) for c, v in zip(pub["cell"], pub["value"])}

    def release_ids(self):
        """Ids of the releases in the ledger, oldest first.

        Returns
        -------
        list of str

        Examples
        --------
        >>> Ledger.new({"release": "r1"}, cells=[]).release_ids()
        ['r1']
        """
        return [r["release"] for r in self.releases]

    def describe(self, release_id):
        """A short human description of a release (title and period) for messages.

        Parameters
        ----------
        release_id : str

        Returns
        -------
        str

        Examples
        --------
        >>> Ledger.new({"release": "r1", "title": "T", "period": "2022-23"}, cells=[]).describe("r1")
        "release r1 ('T', 2022-23)"
        """
        r = next((r for r in self.releases if r["release"] == release_id), {})
        return f"release {release_id} ({r.get('title', '?')!r}, {r.get('period', '?')})"


def read_ledgers(paths):
    """Read and merge the ledgers at ``paths``: bundle folders, ``ledger.json`` files or ledger folders.

    A bundle folder holds ``ledger.json``; any other folder is an organisation's ledger folder
    (``--ledger DIR``) whose ``*.json`` files are all ledgers (an empty or missing one is an
    empty ledger).

    Parameters
    ----------
    paths : iterable of path

    Returns
    -------
    Ledger

    Raises
    ------
    cdr.errors.DisclosureError
        A path that is not a ledger, or a bundle without one (written by an older cdr).

    Examples
    --------
    >>> read_ledgers([]).release_ids()
    []
    """
    out = Ledger()
    for p in check.paths(paths, "paths", "read_ledgers"):
        files = []
        if p.is_file():
            files = [p]
        elif (p / "ledger.json").is_file():
            files = [p / "ledger.json"]
        elif (p / "manifest.json").is_file():
            raise DisclosureError(
                f"{str(p)!r} is a cdr bundle without a release ledger (ledger.json; written by an older cdr). Its "
                "cells cannot be carried forward safely: rebuild it with this version of cdr (and --previous for "
                "its own predecessors), then build on the rebuilt bundle.")
        elif p.is_dir():
            files = sorted(f for f in p.glob("*.json"))
        else:
            raise DisclosureError(f"release ledger not found: {str(p)!r}; give the folder of an earlier bundle, its "
                                  "ledger.json, or a --ledger folder.")
        for f in files:
            try:
                data = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise DisclosureError(f"cannot read release ledger {str(f)!r}: {exc}") from exc
            out = out.merge(Ledger.from_dict(data, source=repr(str(f))))
    return out
