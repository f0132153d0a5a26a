"""theory: the symbolic two-layer ReLU model (margin and squared losses, sample weights, hidden biases), its
compiled field and its limits.

Entry points: :func:`vector_field` (the derived field, numpy float64), :func:`compile_field` (numpy and batched
torch kernels of the network, risk and field), :func:`derive` (the sympy derivation), :func:`tangent_kernel`
(the closed-form infinite-width tangent kernel), and the modules :mod:`theory.smallinit`, :mod:`theory.lazy`,
:mod:`theory.mixture` for the limits.

The names are imported from their modules on first access (:mod:`fls.lazyexports`), so ``import fls.theory``
imports neither sympy nor torch (docs/design.md section 1).
"""

from fls.lazyexports import lazy_exports

#: The modules that define the public names, and the names each gives this package.
_EXPORTS = {
    "fls.theory.compiled": ("compile_field", "vector_field"),
    "fls.theory.lazy": (
        "empirical_tangent_kernel",
        "initial_function_covariance",
        "kernel_gradient_flow",
        "tangent_kernel",
    ),
    "fls.theory.losses": ("LOSSES", "TARGET_KINDS", "as_sample_weight", "as_targets"),
    "fls.theory.mixture": ("bayes_error", "direction_error", "oa_of_split"),
    "fls.theory.augment": ("augment_inputs", "augment_weights", "split_weights"),
    "fls.theory.smallinit": ("extreme_vectors", "orthogonal_separability"),
    "fls.theory.symbolic": ("derive",),
    "fls.theory.validation": ("ParameterError",),
}


__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
