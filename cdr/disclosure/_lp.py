"""A persistent HiGHS model: build once, change costs and bounds, re-solve from the last basis.

Uses the HiGHS Python API (``highspy``) when installed, otherwise the same compiled binding that
scipy ships for ``linprog(method="highs")`` (``scipy.optimize._highspy``). Re-solving after a cost
or bound change starts from the previous optimal basis (warm start), which is what makes one
bound per suppressed cell cheap: a few simplex pivots instead of a fresh solve.
"""
from __future__ import annotations

import numpy as np
from scipy import sparse

try:  # the HiGHS Python API, if installed
    from highspy import _core as _hc
    _BACKEND = "highspy"
except ImportError:  # pragma: no cover - depends on the environment
    from scipy.optimize._highspy import _core as _hc
    _BACKEND = "scipy"

INF = float(_hc.kHighsInf)

__all__ = ["Model", "INF"]


class Model:
    """min c.x subject to row_lo <= A x <= row_hi, col_lo <= x <= col_hi (x integer if asked)."""

    def __init__(self, a, row_lo, row_hi, col_lo, col_hi, cost=None, *, integer=False, time_limit=None):
        a = sparse.csr_matrix(a, dtype=float)
        m, n = a.shape
        self.n = n
        h = self.h = _hc._Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("random_seed", 0)
        if time_limit is not None:
            h.setOptionValue("time_limit", float(time_limit))
        lp = _hc.HighsLp()
        lp.num_col_, lp.num_row_ = n, m
        lp.col_cost_ = np.zeros(n) if cost is None else np.asarray(cost, float)
        lp.col_lower_ = self._inf(col_lo, n)
        lp.col_upper_ = self._inf(col_hi, n)
        lp.row_lower_ = self._inf(row_lo, m)
        lp.row_upper_ = self._inf(row_hi, m)
        mat = lp.a_matrix_
        mat.format_ = _hc.MatrixFormat.kRowwise
        mat.start_ = a.indptr.astype(np.int32)
        mat.index_ = a.indices.astype(np.int32)
        mat.value_ = a.data.astype(float)
        mat.num_row_, mat.num_col_ = m, n
        lp.a_matrix_ = mat
        if integer:
            lp.integrality_ = [_hc.HighsVarType.kInteger] * n
        h.passModel(lp)

    @staticmethod
    def _inf(v, k):
        v = np.broadcast_to(np.asarray(v, float), (k,)).copy()
        v[v == np.inf] = INF
        v[v == -np.inf] = -INF
        return v

    def set_cost(self, idx, values):
        idx = np.atleast_1d(np.asarray(idx, np.int32))
        self.h.changeColsCost(len(idx), idx, np.broadcast_to(np.asarray(values, float), idx.shape).copy())

    def set_bounds(self, idx, lo, hi):
        idx = np.atleast_1d(np.asarray(idx, np.int32))
        self.h.changeColsBounds(len(idx), idx, self._inf(np.broadcast_to(lo, idx.shape), len(idx)),
                                self._inf(np.broadcast_to(hi, idx.shape), len(idx)))

    def solve(self):
        """Returns (status, x, objective); status in {"optimal", "infeasible", "unbounded", "other"}."""
        self.h.run()
        s = self.h.getModelStatus()
        if s == _hc.HighsModelStatus.kOptimal:
            sol = self.h.getSolution()
            return "optimal", np.asarray(sol.col_value), float(self.h.getInfo().objective_function_value)
        if s == _hc.HighsModelStatus.kInfeasible:
            return "infeasible", None, np.nan
        if s in (_hc.HighsModelStatus.kUnbounded, _hc.HighsModelStatus.kUnboundedOrInfeasible):
            return "unbounded", None, -np.inf
        sol = self.h.getSolution()
        x = np.asarray(sol.col_value) if sol.value_valid else None
        return "other", x, np.nan

    def col_duals(self):
        return np.asarray(self.h.getSolution().col_dual)

    def row_duals(self):
        return np.asarray(self.h.getSolution().row_dual)
