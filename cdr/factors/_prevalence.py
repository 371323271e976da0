"""Prevalence of modifiable factors among completed reviews, overall and per domain."""
from __future__ import annotations

import numpy as np
import pandas as pd

from cdr.factors import _records as R
from cdr._validate import as_by, frame, strings
from cdr.errors import ArgumentError

MEASURES = ("modifiable", *R.DOMAIN_ORDER)


def _check_domain(domain, caller):
    if domain is None:
        return ["modifiable"]
    if domain == "all":
        return list(MEASURES)
    wanted = strings(domain, "domain", caller, example="'modifiable' or ['domain_child', 'domain_service']")
    bad = [d for d in wanted if d not in MEASURES]
    if bad:
        raise ArgumentError(f"{caller}: 'domain' must be None, 'all' or names from {MEASURES}; got {bad}.")
    return [m for m in MEASURES if m in wanted]


def prevalence(records, by=(), level="la", design=None, domain=None, conf=0.95, *, vintage=2023):
    """Share of completed reviews with modifiable factors, with Wilson confidence limits.

    Among reviews completed (``review_completed`` set), the share judged to have modifiable factors
    (``modifiable == "yes"``) out of those with a yes/no judgement; optionally the same for each of
    the four domains (share of reviews with a factor scored ``may_have_contributed`` or
    ``sufficient``). Reviews still pending, and reviews without enough information for a judgement,
    are counted in their own columns, never dropped silently.

    Parameters
    ----------
    records : pandas.DataFrame
        Child death records with the contract columns (``cdr.read_records``): at least ``la_code``
        (unless ``level="nation"``), ``review_completed`` (or ``reviewed``), ``modifiable`` and, for
        domains, ``domain_child`` … ``domain_service``. ``age_band`` is derived from ``age_days`` and
        ``imd_quintile`` (1 = most deprived) from ``imd_decile`` when absent. Not modified.
    by : sequence of str, default ()
        Grouping columns besides the level key, e.g. ``["category"]``, ``["age_band", "sex"]``,
        ``["imd_quintile"]``. ``category``, ``age_band``, ``sex``, ``imd_quintile`` and ``imd_decile``
        show every canonical level, with zero counts where no deaths fall in it.
    level : {"la", "footprint", "region", "nation"}, default "la"
        Geography of the rows: key column ``la_code``, ``footprint_id``, ``region_code`` or
        ``nation_code`` (``"E92000001"``, England).
    design : FootprintDesign, pandas.Series or pandas.DataFrame, optional
        la_code → footprint_id; required for ``level="footprint"``.
    domain : None, "all", str or list of str, default None
        None: the overall modifiable judgement only; "all": it and the four domains; or the names
        (``"modifiable"``, ``"domain_child"``, ``"domain_social"``, ``"domain_physical"``,
        ``"domain_service"``) to report.
    conf : float or tuple of float, default 0.95
        Confidence level(s) in (0, 1) for the Wilson score interval.
    vintage : int, default 2023
        Geography vintage of ``la_code`` (for the LA → region lookup).

    Returns
    -------
    pandas.DataFrame
        One row per level unit × group × measure, sorted by measure then groups:

        - the key column and the `by` columns, unchanged;
        - ``measure``: ``"modifiable"`` or a domain column name;
        - ``n_total``: deaths in the group; ``n_pending``: reviews not completed;
          ``n_reviewed``: reviews completed (``n_total = n_reviewed + n_pending``);
        - ``n_insufficient``: completed reviews without a judgement — ``insufficient_information``
          (or missing) for ``modifiable``, ``not_available`` (or missing) for a domain;
        - ``n_judged``: the denominator, ``n_reviewed - n_insufficient``;
        - ``count``: reviews with modifiable factors (domains: a factor scored
          ``may_have_contributed`` or ``sufficient``);
        - ``value``: ``count / n_judged`` (a proportion, 0-1), NaN where ``n_judged == 0``;
        - ``lower_95``, ``upper_95`` (one pair per level in `conf`): Wilson limits, proportion scale;
        - ``method``: ``"wilson"``; ``note``: why a value is NaN, else empty.

        ``.attrs`` holds ``synthetic`` (True if any record is synthetic), ``level``, ``conf`` and
        ``definition``.

    Notes
    -----
    The denominator follows the DfE child death review releases (e.g. OSR14/2012), which base the
    modifiable percentage on reviews "where there was sufficient information available for the CDOP
    to determine if there were modifiable factors". ``insufficient_information`` is therefore
    reported (``n_insufficient``) but not in the denominator; the same rule applies to a domain
    scored ``not_available`` (Form C code 0). Wilson (1927), JASA 22:209-212; the R equivalent is
    ``PHEindicatormethods::phe_proportion(..., confidence = 0.95)``.

    Examples
    --------
    >>> import pandas as pd
    >>> recs = pd.DataFrame({
    ...     "la_code": ["E06000001"] * 5,
    ...     "category": ["infection"] * 5,
    ...     "review_completed": pd.to_datetime(["2023-01-01"] * 4 + [None]),
    ...     "modifiable": ["yes", "no", "no", "insufficient_information", None]})
    >>> t = prevalence(recs, by=["category"], level="nation")
    >>> t.loc[t.category == "infection",
    ...       ["n_total", "n_pending", "n_insufficient", "n_judged", "count"]].iloc[0].tolist()
    [5, 1, 1, 3, 1]
    >>> round(float(t.loc[t.category == "infection", "lower_95"].iloc[0]), 4)
    0.0615
    """
    caller = "prevalence"
    key = R.check_level(level, caller)
    confs = R.check_conf(conf, caller)
    by = as_by(by, caller)
    if key in by:
        raise ArgumentError(f"{caller}: {key!r} is the level key; do not also list it in 'by'.")
    measures = _check_domain(domain, caller)
    rec = R.prepare(records, caller=caller, need=[level], design=design, vintage=vintage,
                    domains=[m for m in measures if m != "modifiable"])
    frame(rec, "records", caller, columns={"by": by, "domain": measures})
    keys = [key, *by]
    groups = pd.DataFrame({
        key: pd.Categorical(rec[key].astype(str)) if key != "nation_code" else rec[key].astype(str),
        **{b: R.ordered_categorical(rec[b], b) for b in by},
    })
    for col in keys:  # plain columns: make categorical so empty groups are kept consistently
        if not isinstance(groups[col].dtype, pd.CategoricalDtype):
            groups[col] = pd.Categorical(groups[col])
    reviewed = rec["reviewed"].to_numpy(bool)
    parts = []
    for measure in measures:
        values = rec[measure]
        if measure == "modifiable":
            yes = values.eq("yes").to_numpy(bool)
            judged = values.isin(["yes", "no"]).to_numpy(bool)
        else:
            yes = values.isin(list(R.CONTRIBUTORY)).to_numpy(bool)
            judged = values.isin(list(R.JUDGED_DOMAIN)).to_numpy(bool)
        flags = pd.DataFrame({
            "n_total": np.ones(len(rec), dtype=np.int64),
            "n_pending": (~reviewed).astype(np.int64),
            "n_reviewed": reviewed.astype(np.int64),
            "n_insufficient": (reviewed & ~judged).astype(np.int64),
            "n_judged": (reviewed & judged).astype(np.int64),
            "count": (reviewed & yes).astype(np.int64),
        }, index=groups.index)
        table = pd.concat([groups, flags], axis=1).groupby(keys, observed=False, sort=True).sum()
        table = table.reset_index()
        table.insert(len(keys), "measure", measure)
        parts.append(table)
    out = pd.concat(parts, ignore_index=True)
    for col in keys:
        out[col] = out[col].astype(object) if col != "imd_quintile" and col != "imd_decile" else \
            out[col].astype("Int64")
    with np.errstate(invalid="ignore", divide="ignore"):
        out["value"] = np.where(out["n_judged"] > 0, out["count"] / out["n_judged"].where(out["n_judged"] > 0), np.nan)
    names = R.ci_columns(confs)
    for i, c in enumerate(confs):
        lower, upper = R.wilson(out["count"].to_numpy(), out["n_judged"].to_numpy(), c)
        out[names[2 * i]], out[names[2 * i + 1]] = lower, upper
    out["method"] = "wilson"
    out["note"] = np.where(out["n_total"] == 0, "no deaths in group",
                           np.where(out["n_judged"] == 0, "no completed review with a judgement", ""))
    out.attrs.update({
        "synthetic": R.is_synthetic(records),
        "level": level,
        "conf": confs,
        "definition": ("value = count / n_judged among completed reviews; insufficient_information "
                       "(domains: not_available) excluded from the denominator and reported in "
                       "n_insufficient; pending reviews in n_pending"),
    })
    return out
