"""Samples that share an activation surface (repeated samples and multiples of each other), merged into one.

When x_i = c_i x_r (a repeated sample, c_i = 1, a rescaled one, c_i > 0, or an opposite one, c_i < 0), the
pairs (j, i) and (j, r) of every neuron sit on the same surface <w_j, x_r> = 0 at all times: on the same side
when c_i > 0, on opposite sides when c_i < 0. Their gates are one gate g (1 - g for opposite samples), and on
the surface one Filippov weight: the one-sided fields of the neuron differ by the whole group's jump, so the
convex combination of docs/design.md section 2 has a single mu for the group (independent weights per sample
would be a larger set than the Filippov one, and the sliding map (1) of :mod:`simulate.flow.modes` singular).
The flow is therefore integrated on the distinct surfaces only, with representatives x_r (the first sample of
each group). With s_i = -l'(y_i f_i) y_i, group g's coefficient of x_r in sum_i s_i gate_i x_i is

    N_g + gate_g S_g,     P_g = sum_{c_i > 0} c_i s_i,   N_g = sum_{c_i < 0} c_i s_i,   S_g = P_g - N_g,

(S_g: the jump across the surface; N_g: what the opposite samples add on the inactive side, 0 when there are
none), and the outputs are f_i = c_i F_r for c_i > 0 and |c_i| (F_r - L_r) for c_i < 0, with F_r the
representative's output and L_r = c sum_j v_j <w_j, x_r> (relu(-u) = relu(u) - u). docs/flow.md, "Repeated
and collinear samples". Samples are merged when their unit vectors agree (or are opposite) to
:data:`SAME_DIRECTION`: exact copies and multiples agree to a few roundoffs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fls.simulate.flow.arithmetic import Arithmetic

#: Two samples are one surface when their unit vectors differ by at most this (Euclidean) distance.
SAME_DIRECTION = 1e-12


class SampleGroups:
    """The representatives of the distinct surfaces of X (n, d) and the maps between them and the samples.

    Attributes:
        X: the representatives (k, d), in the arithmetic, in order of first appearance.
        index: the sample index of each representative (k,) (events name a group by it).
        group: the group of each sample (n,).
        merged: whether any two samples were merged (else every map below is the identity).
        opposite: whether a group holds opposite samples (then the outputs need L and the factors have N).
    """

    def __init__(self, X: Any, y: Any, arithmetic: Arithmetic) -> None:
        self.arith, self.y = arithmetic, y
        X_float = arithmetic.to_float(X)
        units = X_float / np.linalg.norm(X_float, axis=1, keepdims=True)
        group, sign = np.full(len(X_float), -1), np.ones(len(X_float))
        index: list[int] = []
        for i, unit in enumerate(units):
            if group[i] >= 0:
                continue
            for direction in (1.0, -1.0):
                same = (group < 0) & (np.linalg.norm(units - direction * unit, axis=1) <= SAME_DIRECTION)
                group[same], sign[same] = len(index), direction
            index.append(i)
        self.group, self.index = group, np.asarray(index)
        self.merged = len(index) < len(X_float)
        self.opposite = bool(np.any(sign < 0))
        self.X = X[self.index] if self.merged else X
        if self.merged:
            norms = arithmetic.row_norms(X)
            scales = norms / norms[self.index][group]  # |c_i| = ||x_i|| / ||x_r||
            # (k, n) maps: F @ positive gives c_i F_r on the samples with c_i > 0, (F - L) @ negative gives
            # |c_i| (F_r - L_r) on the others; s @ positive^T is P, s @ negative^T is -N.
            columns = np.arange(len(X_float))
            self.positive = arithmetic.convert(np.zeros((len(index), len(X_float))))
            self.negative = arithmetic.convert(np.zeros((len(index), len(X_float))))
            self.positive[group[sign > 0], columns[sign > 0]] = scales[sign > 0]
            self.negative[group[sign < 0], columns[sign < 0]] = scales[sign < 0]

    def outputs(self, F: Any, L: Any = None) -> Any:
        """The outputs of every sample (..., n) from the representatives' F and L (..., k) (L: only when
        :attr:`opposite`)."""
        if not self.merged:
            return F
        f = F @ self.positive
        return f + (F - L) @ self.negative if self.opposite else f

    def factors(self, f: Any) -> tuple[Any, Any]:
        """(S, N) (..., k) from every sample's output f (..., n); N is None when no group has opposite samples."""
        s = self.arith.sample(f, self.y)
        if not self.merged:
            return s, None
        P = s @ self.positive.T
        if not self.opposite:
            return P, None
        minus_N = s @ self.negative.T
        return P + minus_N, -minus_N
