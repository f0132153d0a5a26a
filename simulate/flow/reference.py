"""The arbitrary-precision reference: the same hybrid flow with every smooth piece integrated in mpmath.

Everything discrete — guards, event grouping, projection, mode selection, stopping — is the float engine's
code (:class:`~simulate.flow.hybrid.HybridFlow`); only the arithmetic (numpy object arrays of mpmath numbers
at ``dps`` digits, with the loss kernels lambdified from the same symbolic derivation) and the piece
integrator differ. Pieces are integrated by Gragg–Bulirsch–Stoer extrapolation (modified midpoint rule with n
= 2, 4, ..., 2k substeps, Richardson-extrapolated in h^2: order 2k, all coefficients exact rationals, so the
method is accurate to any working precision). Event times are located by regula falsi on exact steps from the
step's start, so a located time is as accurate as the integration itself (~10^-(dps - 8) relative). Small
problems only: every field evaluation is an object-array computation (about a millisecond for m, n ~ 5).
"""

from __future__ import annotations

import time
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from fls.simulate.flow.api import make_coordinates, resolve_stop_rule
from fls.simulate.flow.arithmetic import Arithmetic
from fls.simulate.flow.biased import with_bias
from fls.simulate.flow.events import PieceGuards, StepGuards, crossings, first_event
from fls.simulate.flow.hybrid import HybridFlow
from fls.simulate.flow.piece_end import PieceEnd
from fls.simulate.flow.recording import Recorder, SaveSchedule, run_result
from fls.simulate.flow.smooth import Observer
from fls.simulate.result import RunResult
from fls.simulate.stopping import StopRule
from fls.theory import symbolic as S
from fls.theory.compiled import compile_field, validate_network
from fls.theory.losses import as_sample_weight
from fls.theory.symbolic import LOSSES
from fls.theory.validation import check_choice, check_int, check_positive


def mp_arithmetic(loss: str, dps: int, weights: np.ndarray | None = None) -> Arithmetic:
    """mpmath arithmetic (object arrays), loss kernels from the symbolic derivation, normalized sample
    ``weights`` (None: all 1); call inside workdps."""
    derivation = compile_field(loss).derivation
    namespace = {
        "Expit": lambda z: 1 / (1 + mpmath.exp(-z)),
        "Softplus": lambda z: mpmath.log(1 + mpmath.exp(z)),
        "exp": mpmath.exp,
        "log": mpmath.log,
    }
    sample = np.frompyfunc(
        sp.lambdify((S.f, S.yi), derivation.factors_W[2], modules=[namespace, "mpmath"]), 2, 1
    )
    slope = np.frompyfunc(
        sp.lambdify((S.f, S.yi), sp.diff(derivation.factors_W[2], S.f), modules=[namespace, "mpmath"]), 2, 1
    )
    loss_of = np.frompyfunc(sp.lambdify((S.f, S.yi), derivation.loss, modules=[namespace, "mpmath"]), 2, 1)
    to_mp = np.frompyfunc(mpmath.mpf, 1, 1)

    def convert(a: Any) -> np.ndarray:
        return np.asarray(to_mp(np.asarray(a, dtype=np.float64)), dtype=object)

    scale = 1 if weights is None else convert(weights)


    def lstsq(A: Any, B: Any) -> np.ndarray:
        """A^+ B by the singular value decomposition, singular values below 2^(-prec/2) of the largest cut."""
        A = np.asarray(A, dtype=object)
        U, S, V = mpmath.svd_r(mpmath.matrix(A.tolist()), full_matrices=False)
        cut = max(S) * mpmath.mpf(2) ** (-mpmath.mp.prec // 2) if len(S) else 0
        inverse = [1 / value if value > cut else mpmath.mpf(0) for value in S]
        U = np.array(U.tolist(), dtype=object)
        V = np.array(V.tolist(), dtype=object)  # rows: right singular vectors
        return (V.T * np.array(inverse, dtype=object)) @ (U.T @ B)

    sqrt = np.frompyfunc(mpmath.sqrt, 1, 1)

    return Arithmetic(
        name=f"mpmath-{dps}",
        eps=float(mpmath.mpf(2) ** (-mpmath.mp.prec)),
        sample=lambda f, y: np.asarray(sample(f, y), dtype=object) * scale,
        sample_slope=lambda f, y: np.asarray(slope(f, y), dtype=object) * scale,
        losses=lambda f, y: np.asarray(loss_of(f, y), dtype=object) * scale,
        exp=np.frompyfunc(mpmath.exp, 1, 1),
        log=np.frompyfunc(mpmath.log, 1, 1),
        sqrt=sqrt,
        row_norms=lambda A: sqrt((A * A).sum(-1)),
        lstsq=lstsq,
        convert=convert,
        to_float=lambda a: np.asarray(a, dtype=np.float64),
        weights=weights,
    )


class ExtrapolationPieces:
    """Gragg–Bulirsch–Stoer pieces in mpmath: order 2 * ``columns``, local error per step below ``tol``."""

    implicit = False

    def __init__(self, tol: Any, columns: int = 8, max_step: float = 1.0) -> None:
        self.tol = mpmath.mpf(tol)
        self.sequence = [2 * (k + 1) for k in range(columns)]
        self.max_step = mpmath.mpf(max_step)
        self.ratios = {(a, b): (mpmath.mpf(a) / b) ** 2 - 1 for a in self.sequence for b in self.sequence}

    def state_tolerance(self, y: Any) -> Any:
        """The error per step allowed in each component of y: tol (1 + |y|), as in :meth:`step`."""
        return (1 + np.abs(y)) * self.tol

    def longest_first_step(self, y: Any, f0: Any) -> Any:
        """min_k (1 + |y_k|) / |f0_k|: the longest step whose first-order move changes no component by more than
        its own size plus 1 (the first substep of every extrapolation column moves y by H f0 / n).

        Away from huge fields this exceeds the default first step (0.05) and changes nothing; at a field of
        3e140 (an exponential loss far out, docs/flow.md "Limits", the mpmath reference) it is about 1e-140,
        where a step of 0.05 moved the weights by 1e139 and the outputs' exponentials beyond any number.
        """
        speeds = np.abs(f0)
        moving = speeds > 0
        if not moving.any():
            return mpmath.inf
        return min((1 + np.abs(y[moving])) / speeds[moving])

    def _midpoint(self, fun, y, f0, H, n: int) -> tuple[Any, list[Any]]:
        """Gragg's modified midpoint rule with n substeps; also the states at the even substeps.

        Arrays multiply mpmath scalars from the left (array * scalar): the other order makes mpmath format the
        whole array into an error message before numpy takes over.
        """
        h = H / n
        previous, current = y, y + f0 * h
        evens = [y]
        for k in range(1, n):
            previous, current = current, previous + fun(current) * (2 * h)
            if (k + 1) % 2 == 0:
                evens.append(current)
        return (current + previous + fun(current) * h) / 2, evens

    def step(self, fun, y, f0, H) -> tuple[Any, Any, list[Any]]:
        """(y(t + H), error in tolerance units, approximate states at the finest grid's even substeps).

        A step too long for its field throws its substeps where the field's exponentials are beyond any
        number mpmath can form (exp(1e280): an exponent of 1e280 bits; mpmath raises OverflowError) or leaves
        them non-finite: its error is then infinite, and :meth:`run` retries it shorter.
        """
        table: list[list[Any]] = []
        evens: list[Any] = []
        for j, n in enumerate(self.sequence):
            try:
                value, evens = self._midpoint(fun, y, f0, H, n)
            except OverflowError:
                return y, mpmath.inf, [y]
            row = [value]
            for k in range(1, j + 1):
                row.append(
                    row[k - 1] + (row[k - 1] - table[j - 1][k - 1]) / self.ratios[(n, self.sequence[j - k])]
                )
            table.append(row)
        result = table[-1][-1]
        scale = (1 + np.maximum(np.abs(y), np.abs(result))) * self.tol
        error = max(np.abs(result - table[-1][-2]) / scale)
        return result, error if mpmath.isfinite(error) else mpmath.inf, evens

    def run(
        self, fun, jac, t0, y0, t_bound, guards: PieceGuards | None, first_step, observer: Observer | None
    ):
        """Integrate a piece from (t0, y0) to its first guard event or t_bound (as smooth.ScipyPieces.run)."""
        t, y = mpmath.mpf(t0), y0
        t_bound = mpmath.mpf(t_bound)
        order = 2 * len(self.sequence)
        f0 = fun(y)
        H = min(mpmath.mpf(first_step) if first_step else mpmath.mpf("0.05"), self.longest_first_step(y, f0))
        while t < t_bound:
            H = min(H, self.max_step, t_bound - t)
            y_new, error, evens = self.step(fun, y, f0, H)
            if not error <= 1:
                if mpmath.isinf(error):  # the substeps overflowed: 10x shorter
                    H *= mpmath.mpf("0.1")
                else:
                    H *= max(mpmath.mpf("0.2"), mpmath.mpf("0.9") * error ** (-mpmath.mpf(1) / (order - 1)))
                continue

            def exact(tau, t=t, y=y, f0=f0) -> Any:
                return y if tau == t else self.step(fun, y, f0, tau - t)[0]

            def states(ts, exact=exact) -> np.ndarray:
                return np.stack([exact(mpmath.mpf(tau)) for tau in np.atleast_1d(ts)])

            t_new = t + H
            if guards is not None:
                ts = [t + H * k / (len(evens) - 1) for k in range(len(evens) - 1)] + [t_new]
                G = guards.evaluate(np.stack(evens[:-1] + [y_new]))  # evens[0] is y: exact, as is y_new
                xtol = 16 * guards.coords.arith.eps * max(abs(t_new), H)
                _, crossed, wrong_way = crossings(G, guards.thresholds)
                if crossed.any() or wrong_way.any():
                    # The inner samples are second-order approximations: redo the search on exact states.
                    G = np.concatenate([G[:1], guards.evaluate(states(ts[1:-1])), G[-1:]])
                    step = StepGuards(guards, ts, G, exact)
                    event = first_event(step, xtol, refine_dips=False)
                    if event is not None:
                        y_event = step.state(event[0])
                        if observer is not None:
                            observer(t, event[0], y_event, states)
                        return PieceEnd("event", event[0], y_event, float(H), event[1], event[2])
            if observer is not None:
                observer(t, t_new, y_new, states)
            t, y, f0 = t_new, y_new, fun(y_new)
            H *= min(
                mpmath.mpf(4),
                mpmath.mpf("0.9") * max(error, mpmath.mpf(10) ** -30) ** (-mpmath.mpf(1) / (order - 1)),
            )
        return PieceEnd("t_bound", t, y, float(H))


def reference_flow(
    W0: Any,
    v0: Any,
    X: Any,
    y: Any,
    *,
    c: float = 1.0,
    loss: str = "logistic",
    target_risk: float | None = None,
    stop_rule: StopRule | None = None,
    t_max: float,
    dps: int = 40,
    columns: int = 8,
    coords: str = "plain",
    b0: Any = None,
    sample_weight: Any = None,
) -> RunResult:
    """The flow of :func:`simulate.flow.integrate_flow` at ``dps`` decimal digits (engine 'flow-mpmath'), with
    hidden biases ``b0`` and ``sample_weight`` as there.

    Local error per step ~10^-(dps - 8); ``info`` holds the final state and stop time as mpmath numbers
    (``W_mp``, ``v_mp``, ``t_stop_mp``). Steps are at most 1 time unit (the guards are sampled on each).
    """
    if b0 is not None:
        return with_bias(
            reference_flow, W0, b0, v0, X, y, c=c, loss=loss, target_risk=target_risk, stop_rule=stop_rule,
            t_max=t_max, dps=dps, columns=columns, coords=coords, sample_weight=sample_weight,
        )  # fmt: skip
    started = time.perf_counter()
    W, v, X, y, c = validate_network(W0, v0, X, y, c=c, loss=loss)
    loss = check_choice("loss", loss, LOSSES)
    weights = as_sample_weight(sample_weight, X.shape[0])
    t_max = check_positive("t_max", t_max)
    dps = check_int("dps", dps, minimum=20)
    rule = resolve_stop_rule(target_risk, stop_rule, y)
    with mpmath.workdps(dps):
        arithmetic = mp_arithmetic(loss, dps, weights)
        coordinates = make_coordinates(coords, W, v, X, y, c, arithmetic)
        integrator = ExtrapolationPieces(mpmath.mpf(10) ** (8 - dps), columns=columns)
        flow = HybridFlow(coordinates, integrator, rule, loss)
        recorder = Recorder(SaveSchedule.every_step(), coordinates, loss)
        outcome = flow.run(mpmath.mpf(0), coordinates.pack(W, v), mpmath.mpf(t_max), recorder)
        recorder.finish(outcome.t, outcome.y)
        W_mp, v_mp = coordinates.network(outcome.y)
    info = {
        "dps": dps,
        "loss": loss,
        "c": c,
        "W_mp": W_mp,
        "v_mp": v_mp,
        "t_stop_mp": outcome.t,
        "stop_rule": rule.describe() if rule is not None else None,
    }
    return run_result(
        outcome,
        recorder,
        engine="flow-mpmath",
        wall_time=time.perf_counter() - started,
        dense=None,
        info=info,
    )
