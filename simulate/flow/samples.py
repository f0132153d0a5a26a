"""Samples that share an activation surface: repeated samples and positive multiples, merged into one.

When x_i = c_i x_r with c_i > 0 (a repeated sample, c_i = 1, or a rescaled one), relu(<w, x_i>) = c_i
relu(<w, x_r>) for every w: the two pairs of a neuron are on the same side of the same surface at all times.
Their gates are then one gate, and on the surface one Filippov weight: the one-sided fields of the neuron
differ by the whole group's jump, so the convex combination of docs/design.md section 2 has a single mu for the
group (independent weights per sample would be a larger set than the Filippov one, and the sliding map (1)
of :mod:`simulate.flow.modes` would be singular). The flow is therefore integrated on the distinct surfaces
only, with representatives x_r (the first sample of each group) and, for each group g, the sample factor

    S_g = sum_{i in g} c_i s_i,        s_i = -l'(y_i f_i) y_i,        f_i = c_i f_r,

which is the group's coefficient of x_r in sum_i s_i gate_i x_i (docs/flow.md, "Repeated samples"). The field,
the risk and the stopping rules are unchanged; the guards, the events and the modes run on the
representatives. Samples are merged when their unit vectors agree to :data:`SAME_DIRECTION` (exact copies and
multiples agree to a few roundoffs); opposite multiples (c_i < 0) share a surface but not a side and stay
separate samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fls.simulate.flow.arithmetic import Arithmetic

#: Two samples are one surface when their unit vectors differ by at most this (Euclidean) distance.
SAME_DIRECTION = 1e-12


class SampleGroups:
    """The representatives of the distinct surfaces of X (n, d) and the map between them and the samples.

    Attributes:
        X: the representatives (k, d), in the arithmetic, in order of first appearance.
        index: the sample index of each representative (k,) (events name a group by it).
        group: the group of each sample (n,).
        merged: whether any two samples were merged (else every map below is the identity).
    """

    def __init__(self, X: Any, y: Any, arithmetic: Arithmetic) -> None:
        self.arith, self.y = arithmetic, y
        X_float = arithmetic.to_float(X)
        units = X_float / np.linalg.norm(X_float, axis=1, keepdims=True)
        group = np.full(len(X_float), -1)
        index: list[int] = []
        for i, unit in enumerate(units):
            if group[i] >= 0:
                continue
            same = (group < 0) & (np.linalg.norm(units - unit, axis=1) <= SAME_DIRECTION)
            group[same] = len(index)
            index.append(i)
        self.group, self.index = group, np.asarray(index)
        self.merged = len(index) < len(X_float)
        self.X = X[self.index] if self.merged else X
        if self.merged:
            norms = arithmetic.row_norms(X)
            coefficients = norms / norms[self.index][group]  # c_i = ||x_i|| / ||x_r||
            # spread (k, n): f_i = c_i f_r is f @ spread, S_g = sum_{i in g} c_i s_i is s @ spread^T
            self.spread = arithmetic.convert(np.zeros((len(index), len(X_float))))
            self.spread[group, np.arange(len(X_float))] = coefficients

    def outputs(self, f: Any) -> Any:
        """The outputs of every sample (..., n) from those of the representatives f (..., k)."""
        return f @ self.spread if self.merged else f

    def factors(self, f: Any) -> Any:
        """The groups' sample factors S (..., k) from the representatives' outputs f (..., k)."""
        s = self.arith.sample(self.outputs(f), self.y)
        return s @ self.spread.T if self.merged else s

    def slopes(self, f: np.ndarray, slope: Any) -> np.ndarray:
        """dS_g / df_g (k,) = sum_{i in g} c_i^2 s'(c_i f_g), from ``slope`` (f, y) -> ds/df (float64)."""
        values = slope(self.outputs(f), self.y)
        return values @ (self.spread**2).T if self.merged else values
