"""The one result record every engine returns (flow, train, kernel), so compare/ never cares which made it.

Mirrors scipy's ``solve_ivp`` result: a run always says why it stopped (``status`` and ``message``) and what it
cost (``rhs_evals``, ``wall_time``), plus the diagnostics a non-smooth flow needs (``switches``, ``sliding_entries``,
``invariant_drift``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The statuses a run can end with. Only ``target_reached`` and ``t_max`` carry a usable final state:
#: ``not_reached`` (the target is provably or practically unattainable before t_max), ``diverged`` (NaN or inf)
#: and ``failed`` (an exception inside the engine, message says which) are never written as results.
STATUSES = ("target_reached", "t_max", "not_reached", "diverged", "failed")


@dataclass
class RunResult:
    """Outcome of one run of any engine.

    Attributes:
        status: one of :data:`STATUSES`.
        message: a human-readable reason for the status.
        engine: which engine produced it (``"flow"``, ``"flow-logcoords"``, ``"train-gd"``, ``"kernel"`` ...).
        t_stop: gradient-flow time at which the run stopped (``k * eta`` for discrete runs).
        W, v: final parameters, shapes (m, d) and (m,).
        t: times of the saved trajectory, shape (T,).
        risk: training risk at those times, shape (T,).
        W_t, v_t: saved states, shapes (T, m, d) and (T, m); may be None when not requested.
        b, b_t: hidden biases (m,) and their saved states (T, m) for a network with biases, else None.
        rhs_evals: vector-field (or gradient) evaluations spent.
        switches: activation crossings handled (flow engine; 0 for discrete engines).
        sliding_entries: sliding-mode entries (flow engine; 0 for discrete engines).
        invariant_drift: max over time and neurons of |(v_j^2 - ||w_j||^2)(t) - (v_j^2 - ||w_j||^2)(0)|.
        wall_time: seconds spent in the engine.
        dense: optional callable t -> (W, v), or (W, v, b) with biases, evaluating the trajectory between saved
            times.
        f_train, f_test: the fitted function on the training and test inputs, for the kernel engine (whose
            result has no network: W and v are empty); None for the network engines, whose outputs follow
            from W and v.
        info: engine-specific extras (step size, tolerances, per-member data, ...).
    """

    status: str
    message: str
    engine: str
    t_stop: float
    W: np.ndarray
    v: np.ndarray
    t: np.ndarray
    risk: np.ndarray
    W_t: np.ndarray | None = None
    v_t: np.ndarray | None = None
    rhs_evals: int = 0
    switches: int = 0
    sliding_entries: int = 0
    invariant_drift: float = 0.0
    wall_time: float = 0.0
    dense: Callable[[float], tuple[np.ndarray, ...]] | None = field(default=None, repr=False)
    f_train: np.ndarray | None = field(default=None, repr=False)
    f_test: np.ndarray | None = field(default=None, repr=False)
    info: dict[str, Any] = field(default_factory=dict)
    b: np.ndarray | None = None
    b_t: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status = {self.status!r} is not one of {STATUSES}")

    @property
    def ok(self) -> bool:
        """True when the final state is a result (the run reached its target or ran to t_max)."""
        return self.status in ("target_reached", "t_max")

    def summary(self) -> dict[str, Any]:
        """Scalar fields only, for a run table."""
        return {
            "status": self.status,
            "message": self.message,
            "engine": self.engine,
            "t_stop": float(self.t_stop),
            "final_risk": float(self.risk[-1]) if len(self.risk) else float("nan"),
            "rhs_evals": int(self.rhs_evals),
            "switches": int(self.switches),
            "sliding_entries": int(self.sliding_entries),
            "invariant_drift": float(self.invariant_drift),
            "wall_time": float(self.wall_time),
        }
