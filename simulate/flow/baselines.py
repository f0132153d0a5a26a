"""What the hybrid engine is compared with: a plain ODE solver on the unswitched field, and Euler (GD).

Both use the compiled field of :mod:`theory.compiled` with relu'(0) = 0 and no knowledge of the activation
surfaces. ``plain_ode_flow`` is capped (evaluations and seconds), because on problems with sliding it stalls:
its step size collapses where the field jumps across a surface it keeps crossing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp

from fls.theory.compiled import compile_field
from fls.theory.validation import check_int, check_positive


@dataclass(frozen=True)
class BaselineRun:
    """A baseline's end: status 'target_reached', 't_max' or 'stalled' (cap hit), time, state, cost."""

    status: str
    t: float
    W: np.ndarray | None
    v: np.ndarray | None
    rhs_evals: int
    wall_time: float


class _CapReached(Exception):
    pass


def plain_ode_flow(
    W0: np.ndarray,
    v0: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    *,
    t_max: float,
    c: float = 1.0,
    loss: str = "logistic",
    target_risk: float | None = None,
    method: str = "DOP853",
    rtol: float = 1e-10,
    atol: float = 1e-12,
    max_evals: int = 200_000,
    max_seconds: float = 120.0,
) -> BaselineRun:
    """scipy ``solve_ivp`` on theta' = -grad R (relu'(0) = 0), with the target as a terminal event; capped."""
    t_max, max_seconds = check_positive("t_max", t_max), check_positive("max_seconds", max_seconds)
    max_evals = check_int("max_evals", max_evals)
    field = compile_field(loss)
    m, d = W0.shape

    def split(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return z[: m * d].reshape(m, d), z[m * d :]

    counter = {"evals": 0, "t": 0.0}
    started = time.perf_counter()

    def rhs(t: float, z: np.ndarray) -> np.ndarray:
        counter["evals"] += 1
        counter["t"] = max(counter["t"], t)
        if counter["evals"] > max_evals or time.perf_counter() - started > max_seconds:
            raise _CapReached
        dW, dv = field.field(*split(z), X, y, c)
        return np.concatenate([dW.ravel(), dv])

    events = None
    if target_risk is not None:

        def reached(t: float, z: np.ndarray) -> float:
            return float(field.risk(*split(z), X, y, c)) - target_risk

        reached.terminal = True
        events = reached
    try:
        sol = solve_ivp(
            rhs,
            (0.0, t_max),
            np.concatenate([W0.ravel(), v0]),
            method=method,
            rtol=rtol,
            atol=atol,
            events=events,
            t_eval=[t_max],  # keep only the end state, not every step (gigabytes on a stalling run)
        )
    except _CapReached:
        return BaselineRun(
            "stalled", counter["t"], None, None, counter["evals"], time.perf_counter() - started
        )
    if sol.status == 1:  # the target, a terminal event: its state is the end state
        t_end, z = float(sol.t_events[0][-1]), sol.y_events[0][-1]
    elif sol.status == 0:
        t_end, z = float(sol.t[-1]), sol.y[:, -1]
    else:
        return BaselineRun(
            "stalled", counter["t"], None, None, counter["evals"], time.perf_counter() - started
        )
    W, v = split(z)
    status = "target_reached" if sol.status == 1 else "t_max"
    return BaselineRun(status, t_end, W, v, counter["evals"], time.perf_counter() - started)


def euler(
    W0: np.ndarray,
    v0: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    *,
    eta: float,
    t: float,
    c: float = 1.0,
    loss: str = "logistic",
) -> BaselineRun:
    """Fixed-step Euler on the field = full-batch gradient descent with step eta, round(t / eta) steps."""
    eta, t = check_positive("eta", eta), check_positive("t", t)
    field = compile_field(loss)
    W, v = W0.copy(), v0.copy()
    steps = round(t / eta)
    started = time.perf_counter()
    for _ in range(steps):
        dW, dv = field.field(W, v, X, y, c)
        W += eta * dW
        v += eta * dv
    return BaselineRun("t_max", steps * eta, W, v, steps, time.perf_counter() - started)
