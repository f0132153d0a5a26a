"""scipy's Radau with its linear systems solved through the Jacobian's structure (docs/flow.md "Cost").

Radau IIA (order 5) solves, at every Newton iteration, (mu / h I - J) x = b for its real root mu and its
complex pair, and factors both matrices again whenever the step grows beyond 1.2 times, at every rejection
and at every new Jacobian. After each event of a stiff run its steps climb back from the transient's 1e-5
to 1e-2, two dense factorizations of the size-square systems per step: on the stored log-coordinate run of
docs/flow.md "Limits" (a state of 880) they were three quarters of its CPU time. Given a
:class:`~simulate.flow.coupled_jacobian.CoupledJacobian`, this class factors the same systems by their
structure (:meth:`CoupledJacobian.shifted_factor`), and is scipy's Radau otherwise: the same Newton
iteration, error estimate and step control, on solves that agree with the dense ones to their rounding.

scipy forms the matrix as ``mu / h * self.I - J`` and hands it to ``self.lu``; here ``self.I`` is
:data:`IDENTITY`, whose product with the shift and difference with J keep the two apart, and ``self.lu``
factors that pair. Any other Jacobian (dense, or None for differences) stays on scipy's own dense path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.integrate import Radau

from fls.simulate.flow.coupled_jacobian import CoupledJacobian, DenseFactor, StructuredFactor


class ShiftedJacobian:
    """shift I - jacobian, unformed: what ``shift * IDENTITY - jacobian`` gives."""

    def __init__(self, shift: complex, jacobian: CoupledJacobian) -> None:
        self.shift, self.jacobian = shift, jacobian


class Shift:
    """shift I, unformed: ``Shift - jacobian`` is a :class:`ShiftedJacobian`."""

    __array_ufunc__ = None  # numpy scalars defer to the reflected operators

    def __init__(self, shift: complex) -> None:
        self.shift = shift

    def __sub__(self, jacobian: CoupledJacobian) -> ShiftedJacobian:
        return ShiftedJacobian(self.shift, jacobian)


class Identity:
    """I, unformed: ``shift * IDENTITY`` is a :class:`Shift`."""

    __array_ufunc__ = None

    def __rmul__(self, shift: complex) -> Shift:
        return Shift(shift)


IDENTITY = Identity()


class CoupledRadau(Radau):
    """scipy's Radau; where ``jac`` returns a :class:`CoupledJacobian`, its systems are factored by
    structure (module docstring). ``structured_factorizations`` and ``dense_factorizations`` count the two
    kinds (``nlu`` counts both, as scipy's)."""

    def __init__(self, fun: Callable, t0: float, y0: np.ndarray, t_bound: float, **options: Any) -> None:
        self.structured_factorizations = self.dense_factorizations = 0
        super().__init__(fun, t0, y0, t_bound, **options)
        if isinstance(self.J, CoupledJacobian):
            self.I, self.lu, self.solve_lu = IDENTITY, self._factor, _solve

    def _validate_jac(self, jac: Any, sparsity: Any) -> tuple[Any, Any]:
        """scipy's, except that a callable's :class:`CoupledJacobian` is kept as it is (not made dense)."""
        if not callable(jac):
            return super()._validate_jac(jac, sparsity)
        J = jac(self.t, self.y)
        if not isinstance(J, CoupledJacobian):
            first = [J]  # scipy's own path, on this first value rather than a second evaluation
            return super()._validate_jac(lambda t, y: first.pop() if first else jac(t, y), sparsity)
        self.njev = 1

        def jac_wrapped(t: float, y: np.ndarray, _: Any = None) -> CoupledJacobian:
            self.njev += 1
            return jac(t, y)

        return jac_wrapped, J

    def _factor(self, system: ShiftedJacobian) -> StructuredFactor | DenseFactor:
        self.nlu += 1
        factor = system.jacobian.shifted_factor(system.shift)
        if factor.structured:
            self.structured_factorizations += 1
        else:
            self.dense_factorizations += 1
        return factor


def _solve(factor: StructuredFactor | DenseFactor, b: np.ndarray) -> np.ndarray:
    return factor.solve(b)
