"""The small-alpha prediction of claim (d): the network reduced to its extreme vectors (docs/design.md section
2, small-initialization limit), trained to the run's target on its own.

Derivation. While |f| << 1 a balanced neuron j (v_j = s_j ||w_j||) splits into a direction u_j and a norm r_j:

    u_j' = c s_j (I - u_j u_j^T) g(u_j),        (log r_j)' = c s_j H(u_j),        H(u) = <u, g(u)>,

and u_j comes to rest at an extreme vector u*_k (an attracting stationary point of its sign; the exact
follower :class:`theory.directionflow.DirectionFlow` names it by its mode: the active points A_k and the
sliding points S_k, u*_k = s P_S g_A / ||P_S g_A||). Neurons with one direction u and one sign s stay
collinear for gradient flow and for gradient descent alike: with w_j = r_j u and v_j = s r_j, the updates of
(w_j / r_j, v_j / r_j) do not depend on r_j, and f = c sum_j v_j relu(<w_j, x>) = c s (sum_j r_j^2) relu(<u, x>).
So the neurons of one extreme vector act as one neuron of mass a_k = sum_j r_j^2 (norm sqrt(a_k)), exactly,
and the network is, once its directions have settled,

    f(x) = c sum_k s_k a_k relu(<u*_k, x>)        (K effective neurons, K = the distinct extreme vectors).

The masses are the theory's: every neuron of the run's own initialization is carried by the directional flow
(directions and log-norms, :func:`aligned_network`) for :data:`DIRECTIONAL_FRACTION` of the predicted escape
time (:func:`compare.limits.predicted_escape_time`), where |f| is still small; its rest point is then found
exactly from where it stands, and the neurons are grouped by (sign, A_k, S_k). The reduced network (K neurons
at u*_k, norms sqrt(a_k), balanced) is trained to the run's target by the run's own step policy and stop
rule (:func:`compare.staged.train_staged`); its test error is the prediction. It never sees the full
network after the initialization: what it shares with the full runs is the data, the initial directions and
norms, and the trainer.

What it leaves out, and so what claim (d) measures: the neurons that have not reached their rest point by
then (their direction is set to it, and their mass to what they have), the dead ones (g = 0 at their rest:
they never grow and are dropped) and the few the follower cannot settle (dropped and counted). Grouping
matters: on the low_signal mixture (n = 40, m = 100, alpha = 1e-4, 16 seeds) the full runs err 0.0841 on
average and the reduced network (K = 3 to 20 neurons) 0.0843, while merging each sign's neurons into its
heaviest extreme vector (a two-neuron model) predicts 0.108 (tests/compare/test_extremenet.py checks both
against the full runs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fls.compare import metrics
from fls.compare.inputs import training_settings
from fls.compare.limits import predicted_escape_time
from fls.compare.staged import train_staged
from fls.compare.vocabulary import ALPHA_KEY, C_KEY
from fls.simulate.data import Dataset
from fls.theory.directionflow import DirectionFlow
from fls.theory.smallinit import alignment_rates, directional_field, log_norm_rate, pulled_data

#: Directional-flow step in units of 1 / lambda+, and the fraction of the escape time the flow is followed.
DIRECTIONAL_STEP, DIRECTIONAL_FRACTION = 0.1, 0.8

#: Stationarity tolerance of the rest points (relative to the scale of g, as theory.smallinit.extreme_vectors).
REST_TOL = 1e-10


@dataclass(frozen=True)
class ExtremeNetwork:
    """A network reduced to its extreme vectors: K effective neurons.

    Attributes:
        directions: the unit extreme vectors u*_k, shape (K, d).
        signs: s_k in {+1, -1}, shape (K,).
        masses: a_k = sum of r_j^2 over the neurons resting at u*_k, shape (K,).
        counts: the neurons merged into each, shape (K,).
        dropped: neurons left out (dead: g = 0 at their rest; or not settled by the follower).
    """

    directions: np.ndarray
    signs: np.ndarray
    masses: np.ndarray
    counts: np.ndarray
    dropped: int

    def parameters(self, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(W, v) of the balanced network w_k = sqrt(a_k) u*_k, v_k = s_k sqrt(a_k), padded with zero neurons
        (which gradient descent leaves at zero) to ``width`` rows."""
        W, v = np.zeros((width, self.directions.shape[1])), np.zeros(width)
        norms = np.sqrt(self.masses)
        W[: len(norms)] = norms[:, None] * self.directions
        v[: len(norms)] = self.signs * norms
        return W, v


def aligned_network(
    dataset: Dataset, W0: np.ndarray, v0: np.ndarray, *, c: float, duration: float, lambda_plus: float
) -> tuple[np.ndarray, np.ndarray]:
    """The balanced network (W0, v0) carried by the directional flow for ``duration``: directions by explicit
    steps u <- normalize(u + h u'), log-norms by log||w|| += h c sign(v) H(u), h = DIRECTIONAL_STEP / lambda+
    (theory.smallinit.directional_field and log_norm_rate); v keeps its sign and v_j = +-||w_j||."""
    signs = np.where(v0 > 0, 1.0, -1.0)
    norms = np.linalg.norm(W0, axis=1)
    live = norms > 0
    U, log_norm = W0[live] / norms[live, None], np.log(norms[live])
    steps = max(1, int(np.ceil(duration * lambda_plus / DIRECTIONAL_STEP)))
    h = duration / steps
    for _ in range(steps):
        velocity = directional_field(U, dataset.X, dataset.y, sign=signs[live], c=c)
        log_norm = log_norm + h * log_norm_rate(U, dataset.X, dataset.y, sign=signs[live], c=c)
        U = U + h * velocity
        U /= np.linalg.norm(U, axis=1, keepdims=True)
    W, v = np.zeros_like(W0), np.zeros_like(v0)
    W[live] = np.exp(log_norm)[:, None] * U
    v[live] = signs[live] * np.exp(log_norm)
    return W, v


def group_by_rest(dataset: Dataset, W: np.ndarray, v: np.ndarray) -> ExtremeNetwork:
    """The balanced network (W, v) reduced to its extreme vectors (module docstring): each neuron's rest point
    found exactly from its direction, neurons grouped by (sign, active points, sliding points), masses summed."""
    X, pull = pulled_data(dataset.X, dataset.y)
    max_events = 20 * X.shape[0] + 100
    flows = {sign: DirectionFlow(X, pull, sign, tol=REST_TOL) for sign in (1, -1)}
    groups: dict[tuple, list] = {}
    dropped = 0
    for w, out in zip(W, v, strict=True):
        norm = float(np.linalg.norm(w))
        if norm == 0.0:
            continue
        sign = 1 if out > 0 else -1
        rest = flows[sign].run(w / norm, max_events)
        if rest.kind != "point":
            dropped += 1
            continue
        group = groups.setdefault((sign, rest.active, rest.sliding), [rest.direction, 0.0, 0])
        group[1] += norm**2
        group[2] += 1
    keys = list(groups)
    return ExtremeNetwork(
        directions=np.array([groups[k][0] for k in keys]).reshape(len(keys), X.shape[1]),
        signs=np.array([k[0] for k in keys], dtype=float),
        masses=np.array([groups[k][1] for k in keys]),
        counts=np.array([groups[k][2] for k in keys], dtype=int),
        dropped=dropped,
    )


def extreme_network(
    dataset: Dataset, W0: np.ndarray, v0: np.ndarray, *, alpha: float, c: float
) -> ExtremeNetwork | None:
    """The run's initialization (W0, v0) at scale ``alpha`` reduced to its extreme vectors after
    DIRECTIONAL_FRACTION of the predicted escape time (module docstring); None when the network starts
    already escaped (no small-norm phase)."""
    rate = alignment_rates(dataset.X, dataset.y, c=c)[0]
    escape = predicted_escape_time(rate, alpha=alpha, width=len(v0), c=c)
    if not np.isfinite(escape):
        return None
    W, v = aligned_network(dataset, W0, v0, c=c, duration=DIRECTIONAL_FRACTION * escape, lambda_plus=rate)
    return group_by_rest(dataset, W, v)


def reduced_network_errors(
    datasets: Sequence[Dataset],
    networks: Sequence[ExtremeNetwork | None],
    run: Mapping[str, Any],
) -> np.ndarray:
    """Test error of each data set's reduced network trained as one ensemble (zero-padded to the widest) with
    the training settings of ``run``; NaN where there is no network or it does not reach its target."""
    c = float(run[C_KEY])
    errors = np.full(len(datasets), np.nan)
    usable = [i for i, network in enumerate(networks) if network is not None and len(network.masses)]
    if not usable:
        return errors
    width = max(len(networks[i].masses) for i in usable)
    starts = [networks[i].parameters(width) for i in usable]
    results, _ = train_staged(
        np.stack([W for W, _ in starts]),
        np.stack([v for _, v in starts]),
        np.stack([datasets[i].X for i in usable]),
        np.stack([datasets[i].y for i in usable]),
        c=np.full(len(usable), c),
        **training_settings(run),
        batch_size=None,
        seeds=[0] * len(usable),
    )
    for i, result in zip(usable, results, strict=True):
        if result.ok:
            scores = metrics.network_outputs(result.W, result.v, datasets[i].X_test, c)
            errors[i] = metrics.error_rate(scores, datasets[i].y_test)[0]
    return errors


def small_alpha_prediction(
    datasets: Sequence[Dataset],
    initializations: Sequence[tuple[np.ndarray, np.ndarray]],
    run: Mapping[str, Any],
) -> tuple[np.ndarray, np.ndarray]:
    """Per data set: the test error of its reduced network at alpha = run[ALPHA_KEY] (module docstring) and
    the number K of its effective neurons (NaN where the run starts already escaped)."""
    alpha, c = float(run[ALPHA_KEY]), float(run[C_KEY])
    networks = [
        extreme_network(dataset, W0, v0, alpha=alpha, c=c)
        for dataset, (W0, v0) in zip(datasets, initializations, strict=True)
    ]
    sizes = np.array([np.nan if n is None else float(len(n.masses)) for n in networks])
    return reduced_network_errors(datasets, networks, run), sizes
