"""The secondary objective: within-footprint sum of squares of the (scaled) feature vectors.

One bookkeeping, :class:`State` (labels plus per-footprint counts, feature sums, sums of squares,
deaths and population), used by every improvement step (attaching leftovers, the descent, the
merges and the annealing), and one formula, :func:`sse`, used by the state, the annealing's
incremental deltas and the per-footprint table.
"""
from __future__ import annotations

import numpy as np

__all__ = ["sse", "within_ss", "State"]


def sse(count, total, sumsq) -> float:
    """Within sum of squares of a group from its size, feature sums and sum of squared norms.

    ``sum_i |f_i - mean|^2 = sum_i |f_i|^2 - |sum_i f_i|^2 / count`` (0 for an empty group).

    Examples
    --------
    >>> sse(2, [4.0], 10.0)   # values 1 and 3: (1-2)^2 + (3-2)^2
    2.0
    """
    if count <= 0:
        return 0.0
    return float(sumsq - sum(x * x for x in total) / count)


def within_ss(features) -> float:
    """Within sum of squares of one group of feature rows (``n x k`` array)."""
    f = np.asarray(features, dtype=float)
    if f.size == 0:
        return 0.0
    return sse(len(f), f.sum(axis=0), float((f * f).sum()))


class State:
    """Labels plus per-footprint sums for O(k) objective deltas."""

    def __init__(self, prob, labels):
        self.prob = prob
        self.labels = labels
        k = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
        f = prob.features
        self.cnt = np.zeros(k)
        self.sum = np.zeros((k, f.shape[1]))
        self.sq = np.zeros(k)
        self.d = np.zeros(k)
        self.pop = np.zeros(k)
        for i, lab in enumerate(labels):
            if lab >= 0:
                self._add(i, lab)

    def _add(self, i, lab, sign=1.0):
        f = self.prob.features[i]
        self.cnt[lab] += sign
        self.sum[lab] += sign * f
        self.sq[lab] += sign * float(f @ f)
        self.d[lab] += sign * self.prob.d[i]
        self.pop[lab] += sign * self.prob.pop[i]

    def cost(self, lab):
        return sse(self.cnt[lab], self.sum[lab], self.sq[lab])

    def delta_add(self, i, lab):
        f = self.prob.features[i]
        return sse(self.cnt[lab] + 1, self.sum[lab] + f, self.sq[lab] + f @ f) - self.cost(lab)

    def delta_remove(self, i, lab):
        f = self.prob.features[i]
        return sse(self.cnt[lab] - 1, self.sum[lab] - f, self.sq[lab] - f @ f) - self.cost(lab)

    def move(self, i, to):
        frm = self.labels[i]
        if frm >= 0:
            self._add(i, frm, -1.0)
        self.labels[i] = to
        self._add(i, to)

    def reset(self, labels):
        """Start again from ``labels`` (sums recomputed from scratch)."""
        self.__init__(self.prob, np.asarray(labels, dtype=np.int64))

    def as_lists(self):
        """Plain-list copies of the sums (the annealing's fast inner loop works on these)."""
        return (self.cnt.astype(int).tolist(), self.sum.tolist(), self.sq.tolist(), self.d.tolist(), self.pop.tolist())

    def total(self):
        return float(sum(self.cost(k) for k in range(len(self.cnt))))
