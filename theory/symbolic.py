"""Symbolic derivation of the gradient flow of a two-layer ReLU network (docs/design.md section 2).

Nothing here is typed in by hand: the network f(x) = c * sum_j v_j relu(<w_j, x> + b_j) (the hidden biases b_j
only with ``bias=True``) and the weighted empirical risk R = (1/n) sum_i w_i l(f(x_i), y_i) (sample weights w_i
of mean 1, :mod:`theory.losses`) are written with sympy's indexed sums, and sympy differentiates them. The
derived field is then split, mechanically, into the factors the compiled code needs (see :mod:`theory.compiled`):

    -dR/dW_pq = sum_i w_i [neuron factor]_p [pair factor](P_pi) [sample factor](f_i, y_i) X_iq
    -dR/dv_p  = sum_i w_i [v-neuron factor]_p [v-pair factor](P_pi) [sample factor](f_i, y_i)
    -dR/db_p  = sum_i w_i [neuron factor]_p [pair factor](P_pi) [sample factor](f_i, y_i)       (bias)

with P_pi = <w_p, x_i> + b_p the pre-activation and f_i = f(x_i). The bias derivative is the W derivative with
x_iq replaced by 1 (checked here: the biased network is the bias-free one on inputs (x, 1) with first-layer rows
(w_j, b_j), and the engines use exactly that). The same objects give the conserved quantity
v_p^2 - ||w_p||^2 - b_p^2 (its time derivative simplifies to 0) and the (alpha, c) <-> (sqrt(c) alpha, 1) time
rescaling.

relu'(0) = 0 everywhere: :class:`ReLU` differentiates to ``Heaviside(s, 0)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy as sp

from fls.theory.losses import LOSSES
from fls.theory.validation import ParameterError, check_choice


class ReLU(sp.Function):
    """relu(s) = max(s, 0), with the convention relu'(0) = 0 (derivative ``Heaviside(s, 0)``)."""

    @classmethod
    def eval(cls, s: sp.Expr) -> sp.Expr | None:
        if s.is_number:
            return sp.Max(s, 0)
        coeff, rest = s.as_coeff_Mul() if s.is_Mul else (sp.S.One, s)
        positive = [a for a in sp.Mul.make_args(rest) if a.is_positive]
        scale = coeff * sp.Mul(*positive) if coeff.is_positive else sp.Mul(*positive)
        if positive or (coeff.is_positive and coeff != 1):
            return scale * cls(s / scale)
        return None

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.Heaviside(self.args[0], 0)

    def _eval_rewrite_as_Heaviside(self, s: sp.Expr, **kwargs) -> sp.Expr:
        return s * sp.Heaviside(s, 0)

    def _latex(self, printer) -> str:
        return rf"\operatorname{{relu}}\left({printer._print(self.args[0])}\right)"


class Expit(sp.Function):
    """The logistic sigmoid 1 / (1 + exp(-z)); a named function so the compiled code can use a stable kernel."""

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return Expit(self.args[0]) * (1 - Expit(self.args[0]))

    def _eval_rewrite_as_exp(self, z: sp.Expr, **kwargs) -> sp.Expr:
        return 1 / (1 + sp.exp(-z))

    def _latex(self, printer) -> str:
        return rf"\sigma\left({printer._print(self.args[0])}\right)"


class Softplus(sp.Function):
    """softplus(z) = log(1 + exp(z)); logistic loss is softplus(-u). Named so it compiles to a stable kernel."""

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return Expit(self.args[0])

    def _eval_rewrite_as_exp(self, z: sp.Expr, **kwargs) -> sp.Expr:
        return sp.log(1 + sp.exp(z))

    def _latex(self, printer) -> str:
        return rf"\operatorname{{softplus}}\left({printer._print(self.args[0])}\right)"


def loss_expression(name: str, output: sp.Expr, target: sp.Expr) -> sp.Expr:
    """The loss l(f, y) as a sympy expression of the network ``output`` f and the ``target`` y.

    Margin losses are functions of y f (labels +-1); the squared loss (f - y)^2 / 2 takes real targets.
    """
    check_choice("loss", name, LOSSES)
    return {
        "logistic": Softplus(-target * output),
        "exponential": sp.exp(-target * output),
        "squared": (output - target) ** 2 / 2,
    }[name]


# Index symbols and indexed objects of the network: sample i, neuron j, input coordinate k; (p, q) is the
# parameter the derivative is taken with respect to.
n, m, d = sp.symbols("n m d", integer=True, positive=True)
i, j, k, p, q = sp.symbols("i j k p q", integer=True)
W = sp.IndexedBase("W", real=True)
X = sp.IndexedBase("X", real=True)
v = sp.IndexedBase("v", real=True)
y = sp.IndexedBase("y", real=True)
b = sp.IndexedBase("b", real=True)
omega = sp.IndexedBase("w", nonnegative=True)  # sample weights (mean 1)
c = sp.Symbol("c", positive=True)
# Placeholders for the quantities the compiled code computes once per call.
P = sp.Symbol("P", real=True)  # pre-activation <w_p, x_i> (+ b_p)
f = sp.Symbol("f", real=True)  # network output f(x_i)
yi = sp.Symbol("y_i", real=True)
vp = sp.Symbol("v_p", real=True)
xq = sp.Symbol("x_iq", real=True)
bp = sp.Symbol("b_p", real=True)
wi = sp.Symbol("w_i", nonnegative=True)  # the weight of sample i


def _unwrap_index_range(expr: sp.Expr) -> sp.Expr:
    """Drop the Piecewise sympy adds for 'index inside its range' (p <= m, q <= d): indices are always in range."""
    return expr.replace(lambda e: isinstance(e, sp.Piecewise), lambda e: e.args[0][0])


@dataclass(frozen=True)
class Derivation:
    """The derived gradient flow of one loss (with or without hidden biases), as sympy objects.

    Attributes:
        loss_name: which loss; bias: whether the network has hidden biases b_j.
        network: f(x_i) as an indexed sum.
        risk: R = (1/n) sum_i w_i l(f(x_i), y_i), w_i the sample weights (mean 1).
        dW, dv, db: -dR/dW_pq, -dR/dv_p and (bias) -dR/db_p as sympy derived them (indexed sums); db is None
            without biases.
        dW_summand, dv_summand, db_summand: the i-th terms with P, f, y_i, v_p, x_iq placeholders and the
            sample weight w_i.
        factors_W / factors_v / factors_b: (neuron, pair, sample) factors of the summands, x_iq removed from
            dW's and the weight w_i from all (it multiplies the sample factor in the compiled code).
        loss: l(f, y_i); negative_slope: -dl/df, the factor s_i of sample i in the field (before w_i).
        invariant: v_p^2 - sum_q W_pq^2 (- b_p^2 with biases).
        invariant_rate: its time derivative along the flow, simplified (0 when conserved).
        rescaling_residual: F_1(sqrt(c) theta) - F_c(theta)/sqrt(c), simplified (0 when the equivalence holds).
    """

    loss_name: str
    bias: bool
    network: sp.Expr
    risk: sp.Expr
    dW: sp.Expr
    dv: sp.Expr
    db: sp.Expr | None
    dW_summand: sp.Expr
    dv_summand: sp.Expr
    db_summand: sp.Expr | None
    factors_W: tuple[sp.Expr, sp.Expr, sp.Expr]
    factors_v: tuple[sp.Expr, sp.Expr, sp.Expr]
    factors_b: tuple[sp.Expr, sp.Expr, sp.Expr] | None
    loss: sp.Expr
    negative_slope: sp.Expr
    invariant: sp.Expr
    invariant_rate: sp.Expr
    rescaling_residual: sp.Expr


def _summand(derivative: sp.Expr, preactivation: sp.Expr, hidden: sp.Expr) -> sp.Expr:
    """The per-sample term of a derived field, with the inner sums replaced by the placeholders P and f.

    The derivative is -(1/n) Sum_i [...]; inside, sympy leaves sums of Kronecker deltas (from dW_jk / dW_pq),
    which are evaluated here, one sum at a time, before the small per-sample expression is simplified.
    ``preactivation`` is neuron p's <w_p, x_i> (+ b_p) and ``hidden`` the sum over neurons that is f / c.
    """
    outer = [a for a in sp.preorder_traversal(derivative) if isinstance(a, sp.Sum) and a.limits[0][0] == i]
    if len(outer) != 1:
        raise RuntimeError(f"unexpected shape of the derived field: {derivative}")
    term = (
        sp.simplify(derivative / outer[0]) * outer[0].function
    )  # constants in front of the sum over samples
    term = term.replace(
        lambda e: isinstance(e, sp.Sum) and e.has(sp.KroneckerDelta), lambda e: _unwrap_index_range(e.doit())
    )
    term = term.xreplace({hidden: f / c})
    term = term.xreplace({preactivation: P, y[i]: yi, v[p]: vp, X[i, q]: xq, omega[i]: wi, b[p]: bp})
    return sp.simplify(term)


def _split(summand: sp.Expr, *, strip: sp.Symbol | None = None) -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """Split a product into (neuron factor, pair factor, sample factor) by the placeholders each factor holds.

    The sample weight w_i is divided out first (it must be a plain factor: the risk is linear in it), and so is
    ``strip`` (x_iq in dW: it becomes the matmul with X). Neuron factors depend on v_p only, pair factors on P,
    sample factors on f and y_i; constants (c, 1/n, signs) go to the neuron factor.
    """
    summand = sp.simplify(summand / wi)
    if summand.has(wi):
        raise RuntimeError(f"the sample weight is not a plain factor of {summand}; cannot compile")
    if strip is not None:
        summand = sp.simplify(summand / strip)
    neuron, pair, sample = sp.S.One, sp.S.One, sp.S.One
    for factor in sp.Mul.make_args(sp.factor_terms(summand)):
        free = factor.free_symbols
        if P in free:
            if free & {f, yi, vp}:
                raise RuntimeError(f"factor {factor} mixes a pair quantity with others; cannot compile")
            pair *= factor
        elif free & {f, yi}:
            if vp in free:
                raise RuntimeError(f"factor {factor} mixes a neuron and a sample quantity; cannot compile")
            sample *= factor
        else:
            neuron *= factor
    return neuron, pair, sample


def _rescaling_residual(summand: sp.Expr) -> sp.Expr:
    """F_1(sqrt(c) theta) - F_c(theta) / sqrt(c) for one summand of the field (0 when the equivalence holds)."""
    unit = summand.xreplace({c: sp.S.One})
    at_scaled = unit.xreplace({P: sp.sqrt(c) * P, vp: sp.sqrt(c) * vp, bp: sp.sqrt(c) * bp})
    at_scaled = at_scaled.replace(
        lambda e: isinstance(e, sp.Heaviside) and e.args[0] == sp.sqrt(c) * P, lambda e: sp.Heaviside(P, 0)
    )
    return sp.simplify(at_scaled - summand / sp.sqrt(c))


@cache
def derive(loss: str = "logistic", bias: bool = False) -> Derivation:
    """Derive the gradient flow of f = c sum_j v_j relu(<w_j, x> + b_j) (b = 0 unless ``bias``) under the
    weighted mean ``loss`` on (X, y)."""
    check_choice("loss", loss, LOSSES)
    if not isinstance(bias, bool):
        raise ParameterError(f"bias must be True or False, got {bias!r}")
    inner_j = sp.Sum(W[j, k] * X[i, k], (k, 1, d)) + (b[j] if bias else 0)
    preactivation = sp.Sum(W[p, k] * X[i, k], (k, 1, d)) + (b[p] if bias else 0)
    hidden = sp.Sum(v[j] * ReLU(inner_j), (j, 1, m))
    network = c * hidden
    risk = sp.Sum(omega[i] * loss_expression(loss, network, y[i]), (i, 1, n)) / n
    dW = -sp.diff(risk, W[p, q])
    dv = -sp.diff(risk, v[p])
    dW_summand = _summand(dW, preactivation, hidden)
    dv_summand = _summand(dv, preactivation, hidden)
    factors_W = _split(dW_summand, strip=xq)
    factors_v = _split(dv_summand)
    db = db_summand = factors_b = None
    if bias:
        db = -sp.diff(risk, b[p])
        db_summand = _summand(db, preactivation, hidden)
        factors_b = _split(db_summand)
        if sp.simplify(db_summand - dW_summand / xq) != 0:
            raise RuntimeError("the bias field is not the W field on the constant input 1; cannot augment")

    # Conserved quantity: d/dt (v_p^2 - sum_q W_pq^2 - b_p^2) = 2 v_p v_p' - 2 sum_q W_pq W_pq' - 2 b_p b_p',
    # and sum_q W_pq x_iq = P - b_p, so per sample the rate is 2 v_p dv - 2 (P - b_p) dW / x_iq - 2 b_p db.
    invariant = v[p] ** 2 - sp.Sum(W[p, q] ** 2, (q, 1, d)) - (b[p] ** 2 if bias else 0)
    rate = 2 * vp * dv_summand - 2 * (P - (bp if bias else 0)) * sp.simplify(dW_summand / xq)
    if bias:
        rate -= 2 * bp * db_summand
    invariant_rate = sp.simplify(rate.rewrite(sp.Heaviside))

    # Rescaling: the c-model's field at theta, divided by sqrt(c), equals the c = 1 model's field at
    # sqrt(c) theta (same outputs f by 2-homogeneity, P -> sqrt(c) P, v_p -> sqrt(c) v_p, b_p -> sqrt(c) b_p).
    summands = [dW_summand, dv_summand] + ([db_summand] if bias else [])
    rescaling_residual = sp.Matrix([_rescaling_residual(term) for term in summands])

    loss_f = loss_expression(loss, f, yi)
    return Derivation(
        loss_name=loss,
        bias=bias,
        network=network,
        risk=risk,
        dW=dW,
        dv=dv,
        db=db,
        dW_summand=dW_summand,
        dv_summand=dv_summand,
        db_summand=db_summand,
        factors_W=factors_W,
        factors_v=factors_v,
        factors_b=factors_b,
        loss=loss_f,
        negative_slope=sp.simplify(-sp.diff(loss_f, f)),
        invariant=invariant,
        invariant_rate=invariant_rate,
        rescaling_residual=rescaling_residual,
    )
