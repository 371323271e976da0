"""Slope and relative index of inequality with simulated confidence limits (private)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from cdr._base import as_generator
from cdr.rates._core import ci_columns
from cdr._validate import ArgumentError, as_array, as_levels, as_positive, integer, one_of, seed as seed_value

VALUE_TYPES = ("rate", "proportion", "normal")
_BLOCK = 4_000_000  # simulated values held in memory at once


def _slopes(y, a, b):
    """WLS slope of y on b with weights a (rows sum to 1), over the last axis."""
    bc = b - (a * b).sum(axis=-1, keepdims=True)
    return (a * bc * y).sum(axis=-1) / (a * bc**2).sum(axis=-1)


def sii(quantile, value, population, lower=None, upper=None, value_type="rate", multiplier=1, reps=10_000, seed=0,
        *, conf=(0.95, 0.998)) -> pd.DataFrame:
    """Slope (SII) and relative (RII) index of inequality across deprivation quantiles.

    Each quantile is placed at the mid-point of its share of the population, ranked from the most
    deprived (rank 0) to the least deprived (rank 1); the values are regressed on that rank by
    least squares weighted by population. ``SII`` is the modelled value in the most deprived minus
    that in the least deprived (positive: higher in more deprived places); ``RII`` is the SII
    divided by the population-weighted mean value. Confidence limits are percentiles of both over
    `reps` simulations that redraw each quantile's value from a normal distribution with its
    standard error.

    Parameters
    ----------
    quantile : array_like, shape (q,) or (groups, q)
        Quantile labels; 1 is the most deprived (IMD convention), larger is less deprived.
    value : array_like of float, same shape
        The indicator in each quantile (e.g. deaths per 100,000 children).
    population : array_like of float, same shape
        Population of each quantile (persons); > 0.
    lower, upper : array_like of float, optional
        95 % confidence limits of `value`; the standard error is (upper - lower) / (2 x 1.96).
        Required for ``value_type="normal"``. Without them a rate's standard error is
        sqrt(value x multiplier / population) (Poisson) and a proportion's
        multiplier x sqrt(p (1 - p) / population) with p = value / multiplier (binomial).
    value_type : {"rate", "proportion", "normal"}, default "rate"
    multiplier : float, default 1
        The scale of `value` (e.g. 100,000 for rates per 100,000; 100 for percentages).
    reps : int, default 10_000
        Simulations for the confidence limits.
    seed : int or numpy.random.Generator, default 0
    conf : float or tuple of float, default (0.95, 0.998)

    Returns
    -------
    pandas.DataFrame
        Two rows per group (``statistic`` ``"sii"`` then ``"rii"``): ``group`` (row of a 2-D input,
        0 for 1-D), ``statistic``, ``value`` (SII in units of `value`; RII unitless), ``lower_95``,
        ``upper_95``, ``lower_99_8``, ``upper_99_8`` and ``method``.

    Notes
    -----
    Low & Low (2004), J Epidemiol Community Health 58:662-667; the simulation follows
    ``phe_sii`` in PHEindicatormethods (which reports the slope with rank 0 the most deprived and
    no transform here). Any NaN in a group gives NaN rows for it.

    Examples
    --------
    >>> out = sii([1, 2, 3, 4, 5], [40.0, 32.0, 28.0, 24.0, 20.0], [2e6] * 5, multiplier=100_000, reps=2_000)
    >>> out.set_index("statistic")["value"].round(3).tolist()
    [24.0, 0.833]
    """
    caller = "sii"
    seed_value(seed, "seed", caller)
    levels = as_levels(conf, caller)
    scale = as_positive(multiplier, "multiplier", caller)
    one_of(value_type, VALUE_TYPES, "value_type", caller)
    reps = integer(reps, "reps", caller, minimum=100, example=10_000)
    q = as_array(quantile, "quantile", caller, allow_negative=True)
    y = as_array(value, "value", caller, allow_negative=True)
    pop = as_array(population, "population", caller)
    arrays = {"quantile": q, "value": y, "population": pop}
    if lower is not None or upper is not None:
        if lower is None or upper is None:
            raise ArgumentError(f"{caller}: give both 'lower' and 'upper' (95 % limits of value), or neither.")
        arrays["lower"] = as_array(lower, "lower", caller, allow_negative=True)
        arrays["upper"] = as_array(upper, "upper", caller, allow_negative=True)
    elif value_type == "normal":
        raise ArgumentError(f"{caller}: value_type='normal' needs the 95 % limits 'lower' and 'upper' to know each value's standard error.")
    shapes = {k: v.shape for k, v in arrays.items()}
    if len(set(shapes.values())) != 1 or q.ndim not in (1, 2):
        raise ArgumentError(f"{caller}: quantile, value, population (and lower, upper) must share one 1-D or 2-D shape; got {shapes}.")
    if q.shape[-1] < 2:
        raise ArgumentError(f"{caller}: at least 2 quantiles are needed for a slope; got {q.shape[-1]}.")
    arrays = {k: np.atleast_2d(v) for k, v in arrays.items()}
    order = np.argsort(np.where(np.isnan(arrays["quantile"]), np.inf, arrays["quantile"]), axis=-1, kind="stable")
    arrays = {k: np.take_along_axis(v, order, axis=-1) for k, v in arrays.items()}
    y, pop = arrays["value"], arrays["population"]
    if "lower" in arrays:
        se = (arrays["upper"] - arrays["lower"]) / (2 * special.ndtri(0.975))
        how = "from the given 95 % limits"
    elif value_type == "rate":
        se = np.sqrt(np.clip(y, 0, None) * scale / np.where(pop > 0, pop, np.nan))
        how = "Poisson"
    else:
        p = y / scale
        se = scale * np.sqrt(np.clip(p * (1 - p), 0, None) / np.where(pop > 0, pop, np.nan))
        how = "binomial"
    bad = (np.isnan(y) | np.isnan(pop) | np.isnan(se) | np.isnan(arrays["quantile"]) | (pop <= 0)).any(axis=-1)
    total = pop.sum(axis=-1, keepdims=True)
    a = pop / np.where(total > 0, total, 1.0)
    rank = np.cumsum(a, axis=-1) - a / 2
    # Rank 0 = most deprived (quantile 1 first); SII = fitted(0) - fitted(1) = -slope.
    ys, ses = np.where(bad[:, None], 0.0, y), np.where(bad[:, None], 0.0, se)
    index = -_slopes(ys, a, rank)
    mean = (a * ys).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rii = index / mean
    rng = as_generator(seed)
    groups, nq = ys.shape
    block = max(1, _BLOCK // (groups * nq))
    sims, sims_r = [], []
    for start in range(0, reps, block):  # blocks of simulations, not groups
        k = min(block, reps - start)
        draw = ys + ses * rng.standard_normal((k, groups, nq))
        slope = -_slopes(draw, a, rank)
        sims.append(slope)
        with np.errstate(divide="ignore", invalid="ignore"):
            sims_r.append(slope / (a * draw).sum(axis=-1))  # RII of the same draw
    sim, sim_r = np.concatenate(sims, axis=0), np.concatenate(sims_r, axis=0)  # (reps, groups)
    rows = {"group": np.repeat(np.arange(groups), 2), "statistic": np.tile(["sii", "rii"], groups)}
    stat = np.column_stack([index, rii]).ravel()
    rows["value"] = np.where(np.repeat(bad, 2), np.nan, stat)
    names = iter(ci_columns(levels))
    for level in levels:
        tail = (1 - level) / 2
        lo = np.column_stack([np.quantile(sim, tail, axis=0), np.nanquantile(sim_r, tail, axis=0)]).ravel()
        hi = np.column_stack([np.quantile(sim, 1 - tail, axis=0), np.nanquantile(sim_r, 1 - tail, axis=0)]).ravel()
        rows[next(names)] = np.where(np.repeat(bad, 2), np.nan, lo)
        rows[next(names)] = np.where(np.repeat(bad, 2), np.nan, hi)
    method = np.full(2 * groups, f"wls on population mid-rank; {reps} simulations, standard errors {how}", dtype=object)
    method[np.repeat(bad, 2)] = "not computed: missing value, population or standard error"
    rows["method"] = method
    return pd.DataFrame(rows)
