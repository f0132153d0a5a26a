"""theory: the symbolic two-layer ReLU model under logistic-type losses, its compiled field and its limits.

Entry points: :func:`vector_field` (the derived field, numpy float64), :func:`compile_field` (numpy and batched
torch kernels of the network, risk and field), :func:`derive` (the sympy derivation), :func:`tangent_kernel`
(the closed-form infinite-width tangent kernel), and the modules :mod:`theory.smallinit`, :mod:`theory.lazy`,
:mod:`theory.mixture` for the limits.
"""

from fls.theory.compiled import compile_field, vector_field
from fls.theory.lazy import (
    empirical_tangent_kernel,
    initial_function_covariance,
    kernel_gradient_flow,
    tangent_kernel,
)
from fls.theory.mixture import bayes_error, direction_error, oa_of_split
from fls.theory.smallinit import extreme_vectors, orthogonal_separability
from fls.theory.symbolic import LOSSES, derive
from fls.theory.validation import ParameterError

__all__ = [
    "LOSSES",
    "ParameterError",
    "bayes_error",
    "compile_field",
    "derive",
    "direction_error",
    "empirical_tangent_kernel",
    "extreme_vectors",
    "initial_function_covariance",
    "kernel_gradient_flow",
    "oa_of_split",
    "orthogonal_separability",
    "tangent_kernel",
    "vector_field",
]
