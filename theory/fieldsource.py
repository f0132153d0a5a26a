"""The Python source of the compiled field's elementwise kernels, printed from the sympy derivation.

:func:`theory.symbolic.derive` splits each summand of the field into neuron, pair and sample factors
(docs/design.md section 2). The compiled layout (:mod:`theory.compiled`) evaluates the pair factors as in-place
array passes and needs, per loss, five elementwise functions of the remaining placeholders:

    neuron_W(v_p, c, n), neuron_v(c, n)   the neuron factors of W' and v'
    sample(f, y_i)                         s = -l'(y_i f) y_i, the sample factor (the same for W' and v')
    sample_slope(f, y_i)                   ds/df, for the flow engine's analytic Jacobian
    loss(u)                                l(u) on the margin u = y f

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
    ReLU(P))."""
    nW, pW, sW = derivation.factors_W
    nv, pv, sv = derivation.factors_v
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
        "loss": ((S.u,), derivation.loss),
    }
    return expressions


def function_source(name: str, arguments: tuple[sp.Symbol, ...], expression: sp.Expr) -> str:
    """``def name(arguments): return expression`` as Python text, named functions left as calls by name."""
    printer = LambdaPrinter(
        {"allow_unknown_functions": True, "fully_qualified_modules": False, "inline": True}
    )
    parameters = ", ".join(str(argument) for argument in arguments)
    return f"def {name}({parameters}):\n    return {printer.doprint(expression)}\n"


def kernel_sources(loss: str) -> dict[str, str]:
    """The source of every kernel of the derived field of ``loss``, by kernel name."""
    expressions = kernel_expressions(S.derive(loss))
    return {name: function_source(name, arguments, expr) for name, (arguments, expr) in expressions.items()}
