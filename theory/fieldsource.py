"""The Python source of the compiled field's elementwise kernels, printed from the sympy derivation.

:func:`theory.symbolic.derive` splits each summand of the field into neuron, pair and sample factors
(docs/design.md section 2). The compiled layout (:mod:`theory.compiled`) evaluates the pair factors as in-place
array passes and needs, per loss, five elementwise functions of the remaining placeholders:

    neuron_W(v_p, c, n), neuron_v(c, n)   the neuron factors of W' and v'
    sample(f, y_i)                         s = -dl/df (f, y_i), the sample factor (the same for W' and v')
    sample_slope(f, y_i)                   ds/df, for the flow engine's analytic Jacobian
    loss(f, y_i)                           l(f, y_i)

The sample weight w_i is a plain factor of every summand (the risk is linear in it), so it is not part of a
kernel: the compiled code multiplies s by it. With hidden biases the same five kernels serve: the derivation
checks that the bias field is the W field on the constant input 1, so the compiled code runs the bias-free
layout on inputs (x, 1) and rows (w_j, b_j) (:mod:`theory.augment`).

Each is printed as the text of a Python function (sympy's lambda printer, the one ``sympy.lambdify`` uses) whose
named special functions (``Expit``, ``Softplus``, ``exp``, ``log``) are looked up when the text is executed, so
one source serves numpy, torch and any other namespace. The text is what :mod:`theory.fieldcache` stores.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.lambdarepr import LambdaPrinter

from fls.theory import symbolic as S


def kernel_expressions(derivation: S.Derivation) -> dict[str, tuple[tuple[sp.Symbol, ...], sp.Expr]]:
    """The (arguments, expression) of each kernel of :data:`theory.fieldcache.KERNEL_NAMES`, after checking that
    the derivation has the layout the compiled code assumes (one sample factor; pair factors Heaviside(P, 0) and
    ReLU(P); with biases, the bias factors equal the W factors)."""
    nW, pW, sW = derivation.factors_W
    nv, pv, sv = derivation.factors_v
    if derivation.factors_b is not None and derivation.factors_b != derivation.factors_W:
        raise RuntimeError(
            f"the bias factors {derivation.factors_b} differ from the W factors; the augmented layout needs them equal"
        )
    if sp.simplify(sW - sv) != 0:
        raise RuntimeError(
            "the W and v fields have different sample factors; the compiled layout assumes one"
        )
    if pW != sp.Heaviside(S.P, 0) or pv != S.ReLU(S.P):
        raise RuntimeError(
            f"the pair factors are {pW} and {pv}; the compiled layout assumes Heaviside(P, 0) and ReLU(P)"
        )
    expressions = {
        "neuron_W": ((S.vp, S.c, S.n), nW),
        "neuron_v": ((S.c, S.n), nv),
        "sample": ((S.f, S.yi), sW),
        "sample_slope": ((S.f, S.yi), sp.diff(sW, S.f)),
        "loss": ((S.f, S.yi), derivation.loss),
    }
    return expressions


def function_source(name: str, arguments: tuple[sp.Symbol, ...], expression: sp.Expr) -> str:
    """``def name(arguments): return expression`` as Python text, named functions left as calls by name."""
    printer = LambdaPrinter(
        {"allow_unknown_functions": True, "fully_qualified_modules": False, "inline": True}
    )
    parameters = ", ".join(str(argument) for argument in arguments)
    return f"def {name}({parameters}):\n    return {printer.doprint(expression)}\n"


def kernel_sources(loss: str, bias: bool = False) -> dict[str, str]:
    """The source of every kernel of the derived field of ``loss`` (with hidden biases when ``bias``), by name."""
    expressions = kernel_expressions(S.derive(loss, bias))
    return {name: function_source(name, arguments, expr) for name, (arguments, expr) in expressions.items()}
