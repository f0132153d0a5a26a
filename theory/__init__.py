"""theory: the symbolic two-layer ReLU model under logistic-type losses, its compiled field and its limits.

Entry points: :func:`vector_field` (the derived field, numpy float64), :func:`compile_field` (numpy and batched
torch kernels of the network, risk and field), :func:`derive` (the sympy derivation), :func:`tangent_kernel`
(the closed-form infinite-width tangent kernel), and the modules :mod:`theory.smallinit`, :mod:`theory.lazy`,
:mod:`theory.mixture` for the limits.

The names are imported from their modules on first access (:mod:`fls.lazyexports`), so ``import fls.theory``
imports neither sympy nor torch (docs/design.md section 1).
"""

from fls.lazyexports import lazy_exports

#: Each public name and the module that defines it.
_ORIGINS = {
    "LOSSES": "fls.theory.losses",
    "ParameterError": "fls.theory.validation",
    "bayes_error": "fls.theory.mixture",
    "compile_field": "fls.theory.compiled",
    "derive": "fls.theory.symbolic",
    "direction_error": "fls.theory.mixture",
    "empirical_tangent_kernel": "fls.theory.lazy",
    "extreme_vectors": "fls.theory.smallinit",
    "initial_function_covariance": "fls.theory.lazy",
    "kernel_gradient_flow": "fls.theory.lazy",
    "oa_of_split": "fls.theory.mixture",
    "orthogonal_separability": "fls.theory.smallinit",
    "tangent_kernel": "fls.theory.lazy",
    "vector_field": "fls.theory.compiled",
}

__all__ = list(_ORIGINS)
__getattr__, __dir__ = lazy_exports(__name__, _ORIGINS)
