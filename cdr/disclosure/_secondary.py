"""Secondary suppression: choose further cells so that the audit passes, losing little information.

Two searches share one audit (:func:`cdr.disclosure.audit`); both are in ``_search.py``:

- ``"optimal"``: Fischetti-Salazar cutting planes over a binary suppress/publish integer program
  (scipy ``milp``/HiGHS). Each master pattern is audited; each failing cell adds a capacity cut
  from the dual of the attacker's LP (or, where only integrality fails, a cover cut). Valid cuts
  only, so the first pattern that passes is optimal for the cost (``spec["search"]["proven_optimal"]``).
- ``"heuristic"``: deterministic. Primary cells one at a time get the cheapest deviation that lifts
  them to the threshold (one warm-started LP each; already hidden cells are almost free); every
  cell that moves is hidden; then audit and repair with small integer programs to a fixed point,
  then removal of secondary cells the audit shows are not needed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cdr.disclosure._audit import _PASSING, KINDS, audit, certificate, explain
from cdr.disclosure._search import _Attacker, _heuristic, _optimal
from cdr.disclosure._bundle import Bundle
from cdr.disclosure._primary import DEFAULT_THRESHOLD, _threshold, primary_suppression, rate_rules
from cdr.errors import ArgumentError, ArgumentTypeError, DisclosureError

__all__ = ["secondary_suppression", "protect", "SuppressionResult", "compare_aggregations"]


def _check_bundle(bundle, caller):
    if not isinstance(bundle, Bundle):
        raise ArgumentTypeError(f"{caller}: 'bundle' must be a cdr.disclosure.Bundle (Bundle.from_tables(...)); "
                                f"got {type(bundle).__name__}.")


def _prepare(bundle, threshold):
    cells = bundle.cells.copy()
    for col in ("locked", "previously_suppressed"):
        if col not in cells.columns:
            cells[col] = False
    kind = cells["kind"].fillna("cell").astype(str) if "kind" in cells.columns else pd.Series("cell", index=cells.index)
    bad = ~kind.isin(KINDS)
    if bad.any():
        rows = cells.loc[bad, ["cell"]].assign(kind=kind[bad]).head(5).to_dict("records")
        raise ArgumentError(f"secondary_suppression: Bundle.cells 'kind' must be 'cell' or 'unpublished'; got {rows}")
    cells["kind"] = kind
    # an unpublished part is never shown (hidden for free), unless an earlier release published it
    cells["part"] = (kind == "unpublished") & ~(cells["locked"] & ~cells["previously_suppressed"])
    cells["small"] = primary_suppression(cells["value"], threshold=threshold)
    cells["primary"] = cells["small"] & ~cells["locked"] & ~cells["part"]
    must = cells["primary"] | (cells["locked"] & cells["previously_suppressed"]) | cells["part"]
    cells["must"] = must
    cells["eligible"] = ~cells["locked"] & (cells["value"] > 0) & ~cells["part"]
    return cells


@dataclass(frozen=True, repr=False)
class SuppressionResult:
    """A protected bundle: what to publish, why each cell is hidden, and the audit certificate.

    Attributes
    ----------
    cells : pandas.DataFrame
        ``cell``, ``value`` (true), ``published`` (NaN where suppressed), ``suppressed`` (bool),
        ``suppression`` (``"primary"``, ``"secondary"``, ``"previous_release"``, ``"unpublished"``
        for an unpublished part, or ``""``), ``locked``, ``kind``.
    audit : pandas.DataFrame
        :func:`cdr.disclosure.audit` of the published bundle (``.attrs["passed"]``).
    bundle : Bundle
    method : str
        ``"optimal"`` or ``"heuristic"`` (the one actually used), with ``spec["fallback"]`` saying why
        an optimal run fell back.
    information_loss : dict
        ``n_cells``, ``n_suppressed``, ``n_primary``, ``n_secondary``, ``value_secondary`` (sum of
        secondarily suppressed counts), ``share_cells_suppressed`` and ``n_unpublished`` (unpublished
        parts; not counted in the other numbers).
    spec : dict
        Arguments, timings (s) and the cdr version.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"sex": ["male", "female", "all"], "deaths": [3, 9, 12]})
    >>> res = protect(Bundle.from_tables({"by_sex": t}, dims=["sex"]), threshold=5)
    >>> res.cells[["cell", "published", "suppression"]].values.tolist()   # 9 hidden to protect 3
    [['sex=male', nan, 'primary'], ['sex=female', nan, 'secondary'], ['total', 12.0, '']]
    >>> res.passed, res.information_loss["n_suppressed"]
    (True, 2)
    """

    cells: pd.DataFrame
    audit: pd.DataFrame
    bundle: Bundle
    method: str
    information_loss: dict
    spec: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.audit.attrs.get("passed", False))

    def to_frame(self) -> pd.DataFrame:
        return self.cells.copy()

    def tables(self) -> dict:
        """Each input table with ``published``, ``suppressed`` and ``suppression`` columns added."""
        info = self.cells.set_index("cell")[["published", "suppressed", "suppression"]]
        return {name: frame.join(info, on="cell") for name, frame in self.bundle.tables.items()}

    def rates(self) -> pd.DataFrame:
        """Declared rates with ``publish``, ``flag`` (``"u"``), ``reason`` and ``published_rate``."""
        rates = self.bundle.rates
        if len(rates) == 0:
            return rates.assign(publish=[], flag=[], reason=[], published_rate=[])
        info = self.cells.set_index("cell")
        counts = info.loc[rates["count_cell"], "value"].to_numpy()
        sup = info.loc[rates["count_cell"], "suppressed"].to_numpy()
        parts = []
        for kind, idx in rates.groupby("kind").groups.items():
            loc = rates.index.get_indexer(idx)
            rules = rate_rules(counts[loc], kind=kind, suppressed=sup[loc])
            rules.index = idx
            parts.append(rules)
        out = rates.join(pd.concat(parts))
        rounded = [round(r, int(d)) for r, d in zip(out["rate"], out["decimals"])]
        out["published_rate"] = np.where(out["publish"], rounded, np.nan)
        return out

    def audit_rates(self) -> pd.DataFrame:
        """The published rates in the form :func:`audit` takes."""
        r = self.rates()
        return pd.DataFrame({"count_cell": r["count_cell"], "population": r["population"],
                             "rate": r["published_rate"], "multiplier": r["multiplier"],
                             "decimals": r["decimals"]})

    def certificate(self) -> dict:
        """JSON-serialisable audit certificate for the release manifest."""
        return {**certificate(self.audit), "method": self.method, "information_loss": self.information_loss,
                "timings_s": self.spec.get("timings_s", {})}

    def explain(self, cell) -> pd.DataFrame:
        """Which published cells/equations pin a suppressed cell (see :func:`cdr.disclosure.explain`)."""
        cells = pd.DataFrame({"cell": self.cells["cell"], "value": self.cells["published"],
                              "primary": self.cells["suppression"] == "primary",
                              "kind": self.cells["kind"] if "kind" in self.cells else "cell"})
        return explain(cells, self.bundle.equations, cell, rates=self.audit_rates())

    def summary(self):
        from cdr._base import Summary

        loss = self.information_loss
        lines = [
            f"method: {self.method}; threshold: counts 1..{self.spec.get('threshold', 5) - 1} suppressed",
            f"cells: {loss['n_cells']}; suppressed {loss['n_suppressed']} ({loss['n_primary']} primary, "
            f"{loss['n_secondary']} secondary, {loss['value_secondary']} deaths hidden by secondary suppression)",
            f"audit: {'PASSED' if self.passed else 'FAILED'}",
        ]
        counts = self.audit["status"].value_counts().rename_axis("status").reset_index(name="cells")
        return Summary("Disclosure control", lines, {"audit status": counts})

    def __repr__(self):
        loss = self.information_loss
        return (f"SuppressionResult(method={self.method!r}, cells={loss['n_cells']}, "
                f"suppressed={loss['n_suppressed']}, secondary={loss['n_secondary']}, passed={self.passed})")


def secondary_suppression(bundle, *, threshold=DEFAULT_THRESHOLD, method="auto", cost="value",
                          max_optimal=300, time_limit=30.0, executor=None, max_iter=500,
                          cleanup=None):
    """Primary and secondary suppression of a bundle so that the independent audit passes.

    Parameters
    ----------
    bundle : Bundle
        All tables of the release with their equations (:meth:`Bundle.from_tables`). Cells with
        ``kind == "unpublished"`` in ``bundle.cells`` (:meth:`Bundle.add_unpublished`) are parts
        of published totals that are never shown: they are hidden for free, the attacker bounds
        them below by 0, and only the small ones (1 .. ``threshold - 1``) are protected, like
        primary cells that are already hidden.
    threshold : int, default 5
        Counts 1 .. ``threshold - 1`` are suppressed (primary).
    method : {"auto", "optimal", "heuristic"}, default "auto"
        ``"auto"`` uses the integer program when at most `max_optimal` cells could be chosen,
        otherwise the heuristic. An optimal run that hits `time_limit` falls back to the heuristic
        (said in ``result.spec["fallback"]``).
    cost : {"value", "cells"} or dict, default "value"
        Information loss to minimise: the suppressed total count (cells with larger counts cost
        more, so margins are kept), the number of cells, or a ``{cell: cost}`` mapping.
    max_optimal : int, default 300
        Largest number of free cells (positive, not primary, not locked) for ``"auto"`` to choose
        the integer program.
    time_limit : float, default 30.0
        Seconds for the optimal search (the heuristic has no time limit: it is deterministic and
        always runs to its fixed point; the final audit always runs).
    max_iter : int, default 500
        Cutting-plane iterations of the optimal search before it falls back to the heuristic.
    cleanup : bool, optional
        Whether the heuristic tries to publish again each secondary cell, most costly first,
        keeping each removal the audit allows (default: when the bundle has at most 1,000 cells;
        each try is one audit of the changed component).
    executor : concurrent.futures.Executor, optional
        Used by the final audit.

    Returns
    -------
    SuppressionResult

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"sex": ["male", "female", "unknown", "all"], "deaths": [3, 9, 14, 26]})
    >>> r = secondary_suppression(Bundle.from_tables({"by_sex": t}, dims=["sex"]))
    >>> r.cells[["cell", "suppression"]].to_dict("records")
    [{'cell': 'sex=male', 'suppression': 'primary'}, {'cell': 'sex=female', 'suppression': 'secondary'}, {'cell': 'sex=unknown', 'suppression': ''}, {'cell': 'total', 'suppression': ''}]
    >>> r.passed
    True
    """
    _check_bundle(bundle, "secondary_suppression")
    threshold = _threshold(threshold, "secondary_suppression")
    if method not in ("auto", "optimal", "heuristic"):
        raise ArgumentError(f"secondary_suppression: 'method' must be 'auto', 'optimal' or 'heuristic'; got {method!r}")
    start = time.monotonic()
    deadline = start + float(time_limit)
    cells = _prepare(bundle, threshold)
    if isinstance(cost, dict):
        costs = {c: float(cost.get(c, v)) for c, v in zip(cells["cell"], cells["value"])}
    elif cost == "value":
        costs = {c: float(v) + 1e-3 for c, v in zip(cells["cell"], cells["value"])}
    elif cost == "cells":
        costs = {c: 1.0 for c in cells["cell"]}
    else:
        raise ArgumentError(f"secondary_suppression: 'cost' must be 'value', 'cells' or a dict; got {cost!r}")
    attacker = _Attacker(cells, bundle.equations, threshold)
    n_free = int((cells["eligible"] & ~cells["must"]).sum())
    use = method if method != "auto" else ("optimal" if n_free <= max_optimal else "heuristic")
    if cleanup is None:
        cleanup = len(cells) <= 1000
    spec = {"threshold": threshold, "method": method, "cost": cost if not isinstance(cost, dict) else "custom",
            "max_optimal": max_optimal, "time_limit": time_limit, "max_iter": max_iter, "cleanup": cleanup}
    suppressed = None
    if use == "optimal":
        suppressed, info = _optimal(cells, bundle.equations, attacker, costs, deadline, max_iter=max_iter)
        spec["search"] = info
        if suppressed is None:
            spec["fallback"] = f"integer program stopped ({info.get('stopped')}); heuristic used"
            use = "heuristic"
    if suppressed is None:
        suppressed, info = _heuristic(cells, bundle.equations, attacker, costs, cleanup=cleanup)
        spec["search"] = {**spec.get("search", {}), **info}
    spec["search"]["audits"] = attacker.calls
    t_search = time.monotonic() - start
    cells["suppressed"] = cells["cell"].isin(suppressed) | cells["part"]
    cells["published"] = np.where(cells["suppressed"], np.nan, cells["value"].astype(float))
    cells["suppression"] = np.select(
        [cells["part"], cells["suppressed"] & cells["locked"], cells["suppressed"] & cells["primary"],
         cells["suppressed"]],
        ["unpublished", "previous_release", "primary", "secondary"], "")
    t0 = time.monotonic()
    result_cells = cells[["cell", "value", "published", "suppressed", "suppression", "locked", "tables", "kind"]]
    tmp = SuppressionResult(result_cells, pd.DataFrame(), bundle, use, {}, spec)
    audit_rates = tmp.audit_rates() if len(bundle.rates) else None
    aud = audit(pd.DataFrame({"cell": cells["cell"], "value": cells["published"], "primary": cells["small"],
                              "kind": cells["kind"]}),
                bundle.equations, threshold=threshold, rates=audit_rates, executor=executor)
    secondary = cells["suppression"] == "secondary"
    shown = ~cells["part"]
    loss = {
        "n_cells": int(shown.sum()), "n_suppressed": int((cells["suppressed"] & shown).sum()),
        "n_primary": int((cells["suppression"] == "primary").sum()), "n_secondary": int(secondary.sum()),
        "value_secondary": int(cells.loc[secondary, "value"].sum()),
        "share_cells_suppressed": float((cells["suppressed"] & shown).sum() / shown.sum()) if shown.any() else 0.0,
    }
    if cells["part"].any():
        loss["n_unpublished"] = int(cells["part"].sum())
    from cdr._base import version_stamp

    spec["timings_s"] = {"search": round(t_search, 3), "audit": round(time.monotonic() - t0, 3)}
    spec.update(version_stamp())
    return SuppressionResult(result_cells, aud, bundle, use, loss, spec)


def protect(bundle, *, threshold=DEFAULT_THRESHOLD, method="auto", strict=True, **kwargs):
    """Suppress a bundle and refuse (raise) if the independent audit fails.

    The one call ``cdr report`` makes: tables in (as a :class:`Bundle`), protected tables and an
    audit certificate out (``result.tables()``, ``result.rates()``, ``result.certificate()``).

    Parameters
    ----------
    bundle : Bundle
    threshold, method
        As for :func:`secondary_suppression`; other keyword arguments are passed on.
    strict : bool, default True
        Raise :class:`cdr.errors.DisclosureError` (with the audit and an explanation of the
        failing cells) when the audit fails, e.g. because a previous release locks cells.

    Returns
    -------
    SuppressionResult

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"sex": ["male", "female", "all"], "deaths": [3, 9, 12]})
    >>> protect(Bundle.from_tables({"by_sex": t}, dims=["sex"])).certificate()["passed"]
    True
    """
    _check_bundle(bundle, "protect")
    result = secondary_suppression(bundle, threshold=threshold, method=method, **kwargs)
    if strict and not result.passed:
        failing = result.audit[~result.audit["status"].isin(_PASSING)]
        lines = []
        for r in failing.head(10).itertuples():
            why = result.explain(r.cell)
            pins = "; ".join(f"{e.source} {e.index} (published {e.published})" for e in why.itertuples())
            lines.append(f"  {r.cell}: [{r.lower:g}, {r.upper:g}] {r.status} - pinned by {pins or 'bounds'}")
        raise DisclosureError(
            f"protect: the bundle fails the disclosure audit: {len(failing)} suppressed cells can be "
            "recovered or shown to be small.\n" + "\n".join(lines) +
            "\nCells locked by a previous release cannot be re-suppressed; merge categories or years "
            "(Bundle.merge) or drop a table.", audit=result.audit)
    return result


def compare_aggregations(bundle, options, *, threshold=DEFAULT_THRESHOLD, method="auto", **kwargs):
    """Information loss of suppression versus merging levels (categories, years).

    Parameters
    ----------
    bundle : Bundle
        The release as is (:meth:`Bundle.from_tables`).
    options : dict of str -> (str, dict)
        ``{name: (dim, {old_level: new_level})}``; ``"as is"`` (no merge) is always included.
    threshold : int, default 5
        Counts 1 .. ``threshold - 1`` are suppressed (primary).
    method : {"auto", "optimal", "heuristic"}, default "auto"
        Secondary suppression method (:func:`secondary_suppression`).
    **kwargs
        Passed to :func:`secondary_suppression` (e.g. ``cost``, ``time_limit`` in seconds).

    Returns
    -------
    pandas.DataFrame
        One row per option: ``option``, ``n_cells``, ``n_suppressed``, ``n_primary``,
        ``n_secondary``, ``value_secondary`` (sum of the secondarily suppressed counts, deaths),
        ``share_cells_suppressed`` (fraction, 0-1), ``passed``, ``method``.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"category": ["infection", "malignancy", "trauma", "all"],
    ...                   "deaths": [2, 10, 8, 20]})
    >>> b = Bundle.from_tables({"by_category": t}, dims=["category"])
    >>> out = compare_aggregations(b, {"merged": ("category", {"infection": "other", "trauma": "other"})})
    >>> out[["option", "n_cells", "n_suppressed", "passed"]].values.tolist()
    [['as is', 4, 2, True], ['merged', 3, 0, True]]
    """
    _check_bundle(bundle, "compare_aggregations")
    if not isinstance(options, dict):
        raise ArgumentTypeError(f"compare_aggregations: 'options' must be a dict of name -> (dim, mapping); "
                                f"got {type(options).__name__}.")
    rows = []
    for name, b in [("as is", bundle)] + [(k, bundle.merge(d, m)) for k, (d, m) in options.items()]:
        r = secondary_suppression(b, threshold=threshold, method=method, **kwargs)
        rows.append({"option": name, **r.information_loss, "passed": r.passed, "method": r.method})
    return pd.DataFrame(rows)
