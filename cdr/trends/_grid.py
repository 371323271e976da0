"""Vectorised grid search over joinpoint locations (private).

Two engines share one list of candidate joinpoint placements:

- :func:`wls_grid` — weighted least squares on ln(rate). For a fixed placement the weighted design
  has an orthonormal basis ``Q`` (batched QR), and the residual sum of squares of any response
  vector is ``||y_w||^2 - ||Q^T y_w||^2``. One batched matrix product scores every placement for
  many responses at once (the observed series and thousands of permuted series).
- :func:`poisson_grid` — log-linear GLM with an offset (Poisson, or negative binomial NB2 with a fixed
  ``alpha``) and optional covariate columns, fitted for every placement at once by batched
  iteratively reweighted least squares.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from cdr.errors import ArgumentError

__all__ = ["placements", "design", "wls_grid", "poisson_grid", "max_feasible", "nb_deviance"]

_CHUNK_ELEMENTS = 4_000_000  # floats per working array (~32 MB)


@lru_cache(maxsize=256)
def _placements(n: int, k: int, min_end: int, min_between: int) -> np.ndarray:
    if k == 0:
        return np.zeros((1, 0), dtype=np.int64)
    lo, hi = min_end, n - 1 - min_end
    if hi < lo:
        return np.zeros((0, k), dtype=np.int64)
    combos = np.arange(lo, hi + 1, dtype=np.int64)[:, None]
    for _ in range(1, k):  # extend each placement by every admissible next joinpoint
        first_next = combos[:, -1] + min_between + 1
        reps = np.clip(hi - first_next + 1, 0, None)
        if reps.sum() == 0:
            return np.zeros((0, k), dtype=np.int64)
        base = np.repeat(combos, reps, axis=0)
        offsets = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
        combos = np.column_stack([base, np.repeat(first_next, reps) + offsets])
    combos.setflags(write=False)
    return combos


def placements(n, k, min_end, min_between) -> np.ndarray:
    """Index arrays (m, k) of every admissible placement of k joinpoints at observed times.

    Observation i (0-based) may hold a joinpoint if at least ``min_end`` observations lie before
    the first and after the last joinpoint, and at least ``min_between`` strictly between two
    joinpoints (observations on a joinpoint are not counted).
    """
    return _placements(int(n), int(k), int(min_end), int(min_between))


def max_feasible(n, min_end, min_between) -> int:
    """Largest number of joinpoints that fits ``n`` observations under the spacing rules."""
    span = n - 1 - 2 * min_end          # index range available to joinpoints, minus one
    if span < 0:
        return 0
    return span // (min_between + 1) + 1


def design(x, taus, Z=None) -> np.ndarray:
    """Design matrix [1, x, (x - tau_1)+, ..., Z] for one placement (x in the caller's units)."""
    x = np.asarray(x, dtype=float)
    cols = [np.ones_like(x), x] + [np.clip(x - t, 0.0, None) for t in np.atleast_1d(taus)]
    if Z is not None and np.size(Z):
        cols += list(np.asarray(Z, dtype=float).reshape(len(x), -1).T)
    return np.column_stack(cols)


def _batched_design(xs, combos, Z=None) -> np.ndarray:
    """(m, n, 2 + k + q) designs for all placements; ``xs`` already centred/scaled; ``Z`` (n, q) last."""
    m, k = combos.shape
    n = len(xs)
    q = 0 if Z is None else Z.shape[1]
    X = np.empty((m, n, 2 + k + q))
    X[:, :, 0] = 1.0
    X[:, :, 1] = xs
    for j in range(k):
        X[:, :, 2 + j] = np.clip(xs[None, :] - xs[combos[:, j]][:, None], 0.0, None)
    if q:
        X[:, :, 2 + k:] = Z[None, :, :]
    return X


def _scale(x):
    x = np.asarray(x, dtype=float)
    centre = x.mean()
    spread = x.std() or 1.0
    return (x - centre) / spread


def wls_grid(x, y, w, k, min_end, min_between, Y=None):
    """Best placement of k joinpoints by weighted least squares.

    Parameters
    ----------
    x, y, w : ndarray (n,)
        Times, responses (ln rate) and weights.
    Y : ndarray (n, B), optional
        Further responses sharing ``x`` and ``w`` (e.g. permuted series); scored in one pass.

    Returns
    -------
    combo : ndarray (k,) of int
        Indices of the joinpoints minimising the weighted SSE of ``y``.
    sse : float
        That minimum.
    sse_many : ndarray (B,) or None
        Minimum weighted SSE for each column of ``Y``.
    """
    combos = placements(len(x), k, min_end, min_between)
    if len(combos) == 0:
        raise ArgumentError(f"no admissible placement of {k} joinpoints in {len(x)} observations")
    xs = _scale(x)
    sw = np.sqrt(np.asarray(w, dtype=float))
    yw = np.asarray(y, dtype=float) * sw
    Yw = None if Y is None else np.asarray(Y, dtype=float) * sw[:, None]
    n, p = len(x), 2 + k
    B = 0 if Yw is None else Yw.shape[1]
    per_combo = n * p + p * (B + 1)
    step = max(1, _CHUNK_ELEMENTS // per_combo)
    best_sse, best_combo = np.inf, None
    best_many = None if Yw is None else np.full(B, np.inf)
    total_y = yw @ yw
    total_Y = None if Yw is None else np.einsum("nb,nb->b", Yw, Yw)
    for start in range(0, len(combos), step):
        chunk = combos[start:start + step]
        Xw = _batched_design(xs, chunk) * sw[None, :, None]
        Q, _ = np.linalg.qr(Xw)  # (m, n, p)
        proj = np.einsum("mnp,n->mp", Q, yw)
        sse = total_y - np.einsum("mp,mp->m", proj, proj)
        i = int(np.argmin(sse))
        if sse[i] < best_sse:
            best_sse, best_combo = float(sse[i]), chunk[i]
        if Yw is not None:
            P = np.matmul(np.swapaxes(Q, 1, 2), Yw[None])  # (m, p, B)
            ss = np.einsum("mpb,mpb->mb", P, P)
            best_many = np.minimum(best_many, total_Y - ss.max(axis=0))
    return np.asarray(best_combo, dtype=np.int64), max(best_sse, 0.0), best_many


def nb_deviance(y, mu, alpha):
    """Deviance of a log-linear model: Poisson (``alpha=0``) or NB2 with fixed ``alpha`` (broadcasts)."""
    y = np.asarray(y, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ylog = np.where(y > 0, y * np.log(y / mu), 0.0)
        if alpha > 0:
            r = 1.0 / alpha
            term = ylog - (y + r) * np.log((1.0 + alpha * y) / (1.0 + alpha * mu))
        else:
            term = ylog - (y - mu)
    return 2.0 * np.sum(term, axis=-1)


def _irls_poisson(X, y, offset, n_iter=30, tol=1e-10, alpha=0.0):
    """Batched IRLS of a log-link GLM: Poisson, or NB2 with fixed ``alpha`` (IRLS weight mu/(1 + alpha mu)).

    X (m, n, p); y (B, n); returns deviance (B, m) and beta (B, m, p).
    """
    B, n = y.shape
    m, _, p = X.shape
    eta = np.broadcast_to(np.log(y + 0.5)[:, None, :], (B, m, n)).copy()
    beta = np.zeros((B, m, p))
    ridge = 1e-10 * np.eye(p)
    for _ in range(n_iter):
        mu = np.exp(eta)
        z = eta - offset + (y[:, None, :] - mu) / mu
        wt = mu / (1.0 + alpha * mu) if alpha > 0 else mu
        XtWX = np.einsum("mni,bmn,mnj->bmij", X, wt, X) + ridge
        XtWz = np.einsum("mni,bmn->bmi", X, wt * z)
        new = np.linalg.solve(XtWX, XtWz[..., None])[..., 0]
        delta = np.max(np.abs(new - beta))
        beta = new
        eta = np.einsum("mnp,bmp->bmn", X, beta) + offset
        if delta < tol:
            break
    mu = np.exp(eta)
    dev = nb_deviance(y[:, None, :], mu, alpha)
    return dev, beta


def poisson_grid(x, counts, offset, k, min_end, min_between, Ycounts=None, Z=None, alpha=0.0):
    """Best placement of k joinpoints in a log-linear GLM with offset (minimum deviance).

    Poisson when ``alpha == 0``, else negative binomial (NB2) with that fixed ``alpha``; ``Z`` (n, q)
    are extra covariate columns (e.g. a level shift). Returns ``(combo, deviance, dev_many)`` like
    :func:`wls_grid`; ``Ycounts`` is (n, B).
    """
    combos = placements(len(x), k, min_end, min_between)
    if len(combos) == 0:
        raise ArgumentError(f"no admissible placement of {k} joinpoints in {len(x)} observations")
    xs = _scale(x)
    Z = None if Z is None or np.size(Z) == 0 else np.asarray(Z, dtype=float).reshape(len(x), -1)
    offset = np.asarray(offset, dtype=float)
    y = np.asarray(counts, dtype=float)[None, :]
    n, p = len(x), 2 + k + (0 if Z is None else Z.shape[1])
    step = max(1, _CHUNK_ELEMENTS // (n * p * p))
    best_dev, best_combo = np.inf, None
    for start in range(0, len(combos), step):
        chunk = combos[start:start + step]
        dev, _ = _irls_poisson(_batched_design(xs, chunk, Z), y, offset, alpha=alpha)
        i = int(np.argmin(dev[0]))
        if dev[0, i] < best_dev:
            best_dev, best_combo = float(dev[0, i]), chunk[i]
    many = None
    if Ycounts is not None:
        Yc = np.asarray(Ycounts, dtype=float).T  # (B, n)
        many = np.full(Yc.shape[0], np.inf)
        bstep = max(1, _CHUNK_ELEMENTS // (len(combos) * n * p))
        cstep = max(1, _CHUNK_ELEMENTS // (max(1, min(bstep, Yc.shape[0])) * n * p * p))
        for b0 in range(0, Yc.shape[0], bstep):
            yb = Yc[b0:b0 + bstep]
            for start in range(0, len(combos), cstep):
                chunk = combos[start:start + cstep]
                dev, _ = _irls_poisson(_batched_design(xs, chunk, Z), yb, offset, n_iter=25, tol=1e-8,
                                       alpha=alpha)
                many[b0:b0 + bstep] = np.minimum(many[b0:b0 + bstep], dev.min(axis=1))
    return np.asarray(best_combo, dtype=np.int64), max(best_dev, 0.0), many
