"""The width-independent bookkeeping of the flow engine (docs/flow.md, "Cost"): screened step guards, outputs
summed either way, in-place mode updates, pieces kept as row diffs, checkpoints within a budget, dense output
replayed through many pieces, and the event-state finiteness check."""

import numpy as np
import pytest

from fls.simulate.flow import carried_outputs, integrate_flow, polynomial_guards
from fls.simulate.flow.api import dense_evaluator, make_coordinates
from fls.simulate.flow.arithmetic import float_arithmetic
from fls.simulate.flow.coords import PlainCoordinates
from fls.simulate.flow.events import PieceGuards
from fls.simulate.flow.hybrid import HybridFlow
from fls.simulate.flow.logcoords import LogCoordinates
from fls.simulate.flow.modes import ACTIVE, INACTIVE, SLIDING, Mode, SlidingWeights
from fls.simulate.flow.piece_end import FiniteField
from fls.simulate.flow.polynomial_guards import PolynomialStepGuards
from fls.simulate.flow.problems import stall_problem
from fls.simulate.flow.recording import Recorder, SaveSchedule
from fls.simulate.flow.smooth import piece_integrator
from fls.simulate.flow.spancoords import SpanCoordinates
from fls.simulate.initialization import init_params
from fls.simulate.stopping import TargetRisk

ARITH = float_arithmetic("logistic")


def random_sides(rng: np.random.Generator, m: int, n: int, d: int) -> np.ndarray:
    """Random sides (m, n) with at most d - 1 sliding pairs per neuron."""
    sliding = (rng.random((m, n)) < 0.2) & (np.arange(n) < d - 1)
    return np.where(sliding, SLIDING, np.where(rng.random((m, n)) < 0.5, ACTIVE, INACTIVE)).astype(np.int8)


def coordinates(kind: str, rng: np.random.Generator, m: int, n: int, d: int):
    """Coordinates of the given kind on random data, and a random state's W (m, d)."""
    X = rng.standard_normal((n, d))
    y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    W = rng.standard_normal((m, d))
    if kind == "plain":
        return PlainCoordinates(X, y, 1.0, m, ARITH), W
    if kind == "span":
        return SpanCoordinates(X, y, 1.0, W, ARITH), W
    return LogCoordinates(X, y, 1.0, rng.choice([-1.0, 1.0], m), ARITH), W


def assert_full_reach_test(coords, guards, step: PolynomialStepGuards, C: np.ndarray) -> None:
    """The step's candidates are the pairs of the full test |D(0)| <= sum_k |D_k| and those whose guard starts
    below 0 by less than its threshold (sliding pairs left out), and their polynomials the full coefficients,
    scaled."""
    pre, _, norms = coords.polynomial_parts(C)
    start = (guards.side_over_x * pre[0] / norms[:, None]).reshape(-1)
    past = (start < 0) & (start >= -guards.thresholds[: guards.n_pairs])
    full = (np.abs(pre[0]) <= np.abs(pre[1:]).sum(axis=0)).reshape(-1) | past
    full[guards.sliding_columns] = False
    assert np.array_equal(step.candidates, np.flatnonzero(full))
    j = step.candidates // coords.n
    expected = pre.reshape(len(C), -1)[:, step.candidates] * guards.side_over_x.reshape(-1)[step.candidates]
    np.testing.assert_allclose(step.pair_coefficients, expected / norms[j], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", ["plain", "span", "log"])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("stop_rule", [None, TargetRisk(0.1)])
def test_screened_step_guards_keep_exactly_the_pairs_of_the_full_reach_test(kind, seed, stop_rule):
    """The Cauchy-Schwarz screen drops only pairs the full test |D(0)| <= sum_k |D_k| drops, and the kept pairs'
    polynomials equal the full coefficients (scaled); steps from tiny to large, so both sides are exercised.
    With a stopping rule the output guards form every pair's coefficients and the screen reads its candidates
    from them (plain and data-span coordinates): the same pairs, the same polynomials."""
    rng = np.random.default_rng(seed)
    m, n, d = 30, 6, 4
    coords, _ = coordinates(kind, rng, m, n, d)
    sides = random_sides(rng, m, n, d)
    weights = SlidingWeights(Mode.of_sides(sides), coords.X @ coords.X.T, ARITH)
    for size in (1e-4, 1e-2, 0.3):
        guards = PieceGuards(coords, weights, stop_rule)  # a first step: no margins yet
        C = rng.standard_normal((4, coords.size)) * np.array([1.0, size, size / 3, size / 9])[:, None]
        step = PolynomialStepGuards(guards, 0.0, 1.0, np.linspace(0, 1, 7), C, lambda t: None)
        assert_full_reach_test(coords, guards, step, C)


@pytest.mark.parametrize("kind", ["plain", "span", "log"])
@pytest.mark.parametrize("seed", range(3))
def test_margins_across_steps_and_events_keep_exactly_the_pairs_of_the_full_reach_test(kind, seed, monkeypatch):
    """Steps that continue each other (from the last one's end or from inside it, as after an event) skip the
    neurons whose kept margins exceed their excursion: the candidates stay those of the full test, also after
    an event that moves one neuron's row next to a surface (its margin forgotten) and after a step that does
    not start inside the last one (every margin forgotten)."""
    monkeypatch.setattr(polynomial_guards, "MARGIN_MIN_PAIRS", 0)  # margins at any size
    rng = np.random.default_rng(seed)
    m, n, d = 40, 6, 4
    coords, _ = coordinates(kind, rng, m, n, d)
    weights = SlidingWeights(Mode.of_sides(random_sides(rng, m, n, d)), coords.X @ coords.X.T, ARITH)
    guards = PieceGuards(coords, weights, None)
    Y, t = rng.standard_normal(coords.size), 0.0
    skipped = 0
    for k in range(24):
        size = 10.0 ** rng.uniform(-4, -1.5)
        higher = rng.standard_normal((3, coords.size)) * size * np.array([1, 0.3, 0.1])[:, None]
        C = np.concatenate([Y[None], higher])
        h = rng.uniform(0.1, 1.0)
        step = PolynomialStepGuards(guards, t, h, np.linspace(0, 1, 7), C, lambda t: None)
        assert_full_reach_test(coords, guards, step, C)
        skipped += int(np.sum(guards.margins.margin > guards.margins.moved))
        theta = 1.0 if k % 3 else rng.uniform(0.2, 0.9)  # cut short at an event: the next step from there
        Y, t = (theta ** np.arange(4)) @ C, t + theta * h
        if k == 11:  # an event projects neuron 5 onto the surface of sample 2
            rows = coords.row_block(Y)
            target = coords.X[2] if kind != "span" else coords.gram[2]
            rows[5] -= target * ((rows[5] @ target) / (target @ target)) * (1 - 1e-9)
            guards = PieceGuards(coords, weights, None, guards, [5])
        if k == 17:  # steps the margins did not see (another integrator): a start outside the last step
            coords.row_block(Y)[:] += rng.standard_normal((m, coords.row))
            t += 2.0
    assert skipped > 0  # the margins did skip neurons




@pytest.mark.parametrize("margins", [0, polynomial_guards.MARGIN_MIN_PAIRS])
def test_a_pair_past_its_surface_by_roundoff_is_a_candidate_however_slowly_it_moves(margins, monkeypatch):
    """A pair 1e-15 past its surface (in cosine units) that moves on by 1e-17 per step cannot change sign in
    any one step, but it is sampled at every step (with and without neuron margins): the wrong-way crossing
    test reports it when it reaches its threshold (docs/flow.md, "Drift past a surface")."""
    monkeypatch.setattr(polynomial_guards, "MARGIN_MIN_PAIRS", margins)
    rng = np.random.default_rng(4)
    m, n, d = 8, 5, 3
    coords, W = coordinates("plain", rng, m, n, d)
    x = coords.X[2]
    W[5] -= x * (W[5] @ x) / (x @ x)  # on the surface of sample 2
    sides = np.where(W @ coords.X.T > 0, ACTIVE, INACTIVE).astype(np.int8)
    sides[5, 2] = ACTIVE
    W[5] -= 1e-15 * np.linalg.norm(W[5]) * x / np.linalg.norm(x)  # past it, on the inactive side
    guards = PieceGuards(coords, SlidingWeights(Mode.of_sides(sides), coords.X @ coords.X.T, ARITH), None)
    Y = coords.pack(W, np.ones(m))
    for k in range(3):
        drift = -1e-17 * np.linalg.norm(W[5]) * np.outer(np.arange(m) == 5, x)
        C = np.zeros((4, coords.size))
        C[0], C[1] = Y, coords.pack(drift, np.zeros(m))
        step = PolynomialStepGuards(guards, float(k), 1.0, np.linspace(0, 1, 7), C, lambda t: None)
        assert 5 * n + 2 in step.candidates.tolist()
        Y = C[0] + C[1]


@pytest.mark.parametrize("d", [3, 40])
def test_log_step_outputs_either_way_equal_the_outputs_of_the_states(d):
    """Outputs along a log-coordinate step, summed over neurons first (small d) or from the active pairs'
    coefficients (large d), equal the network outputs at the dense output's states."""
    rng = np.random.default_rng(d)
    m, n = 25, 8
    coords, W = coordinates("log", rng, m, n, d)
    weights = SlidingWeights(Mode.of_sides(random_sides(rng, m, n, d)), coords.X @ coords.X.T, ARITH)
    guards = PieceGuards(coords, weights, TargetRisk(0.1))
    Y0 = coords.pack(W, np.abs(W).sum(axis=1))
    C = np.stack([Y0] + [rng.standard_normal(coords.size) * 0.1 / k for k in (1, 2, 3)])
    fractions = np.linspace(0.0, 1.0, 7)
    step = PolynomialStepGuards(guards, 0.0, 1.0, fractions, C, lambda t: None)
    assert (step.active_pre is None) == (d == 3)
    states = (fractions[:, None] ** np.arange(4)) @ C
    expected = coords.output(states, weights)
    np.testing.assert_allclose(step._outputs_along(fractions), expected, rtol=1e-12, atol=1e-14)


def test_in_place_event_updates_equal_fresh_weights_and_guards():
    """The loop updates the mode, the sliding weights' gates and the pair guards in place in the changed rows;
    the result equals weights and guards built anew, including neurons that stop or start sliding."""
    rng = np.random.default_rng(3)
    m, n, d = 8, 7, 4
    coords, _ = coordinates("plain", rng, m, n, d)
    gram = coords.X @ coords.X.T
    sides = random_sides(rng, m, n, d)
    sides[0, :] = ACTIVE
    sides[0, 0] = SLIDING  # neuron 0 slides before the event, not after
    mode = Mode.of_sides(sides)
    weights = SlidingWeights(mode, gram, ARITH, {})
    guards = PieceGuards(coords, weights, TargetRisk(0.1))
    rows = {0: np.full(n, ACTIVE, dtype=np.int8), 3: random_sides(rng, 1, n, d)[0]}
    mode.update_rows(rows)
    updated = SlidingWeights(mode, gram, ARITH, {}, weights, sorted(rows))
    updated_guards = PieceGuards(coords, updated, TargetRisk(0.1), guards, sorted(rows))
    fresh_mode = Mode.of_sides(mode.side.copy())
    fresh = SlidingWeights(fresh_mode, gram, ARITH)
    assert np.array_equal(mode.active, fresh_mode.active) and np.array_equal(mode.sliding, fresh_mode.sliding)
    s = rng.uniform(0.1, 1.0, n) * rng.choice([-1.0, 1.0], n)
    np.testing.assert_allclose(updated.weighted_gates(s), fresh.weighted_gates(s), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(updated.mu(s), fresh.mu(s), rtol=1e-13, atol=1e-13)
    for neurons in ([0], [3, 5], list(range(m))):
        assert np.array_equal(updated.neuron_gates(s, None, neurons), updated.weighted_gates(s)[neurons])
    Ys = rng.standard_normal((3, coords.size))
    fresh_guards = PieceGuards(coords, fresh, TargetRisk(0.1))
    assert np.array_equal(updated_guards.evaluate(Ys), fresh_guards.evaluate(Ys))


@pytest.mark.parametrize("kind", ["plain", "span", "log"])
@pytest.mark.parametrize("merged", [False, True])
def test_event_outputs_updated_by_the_touched_neurons_equal_the_outputs_recomputed(kind, merged):
    """An event's outputs after the projection are the piece end's outputs plus the touched neurons' change
    (``Coordinates.neuron_outputs``): equal to the outputs of the projected state, with merged repeated and
    opposite samples too, and the event selects the same modes either way."""
    rng = np.random.default_rng(11)
    m, n, d = 12, 7, 4
    coords, W = coordinates(kind, rng, m, n, d)
    if merged:  # a repeated sample, a scaled copy and an opposite one: merged into one surface
        X = np.concatenate([coords.X, coords.X[:1], 2 * coords.X[1:2], -coords.X[2:3]])
        y = np.concatenate([coords.y, coords.y[:1], coords.y[1:2], -coords.y[2:3]])
        coords = {
            "plain": lambda: PlainCoordinates(X, y, 1.0, m, ARITH),
            "span": lambda: SpanCoordinates(X, y, 1.0, W, ARITH),
            "log": lambda: LogCoordinates(X, y, 1.0, coords.sign, ARITH),
        }[kind]()
        assert coords.samples.merged and coords.samples.opposite
    sides = random_sides(rng, m, coords.n, d)
    weights = SlidingWeights(Mode.of_sides(sides), coords.X @ coords.X.T, ARITH)
    Y = rng.standard_normal(coords.size)
    everyone = list(range(m))
    np.testing.assert_allclose(
        coords.neuron_outputs(Y, weights, everyone), coords.output(Y, weights), rtol=1e-12, atol=1e-12
    )
    touching = np.zeros((m, coords.n), dtype=bool)
    touching[[1, 4, 4, 9], [0, 2, 3, 1]] = True
    flow = HybridFlow(coords, piece_integrator("RK23", 1e-8, 1e-10), None, "logistic")
    known = coords.output(Y, weights)
    mode_known, mode_fresh = Mode.of_sides(sides.copy()), Mode.of_sides(sides.copy())
    Y_known, _, changed = flow.apply_event(Y, mode_known, weights, touching, {}, 0.0, outputs=known)
    Y_fresh, _, _ = flow.apply_event(Y, mode_fresh, weights, touching, {}, 0.0)
    assert np.array_equal(Y_known, Y_fresh) and np.array_equal(mode_known.side, mode_fresh.side)
    moved = known + coords.neuron_outputs(Y_known, weights, changed) - coords.neuron_outputs(Y, weights, changed)
    np.testing.assert_allclose(moved, coords.output(Y_known, weights), rtol=1e-12, atol=1e-12)


class ModeKeepingRecorder(Recorder):
    """A recorder that also keeps a full copy of every piece's mode at its start (the bookkeeping the engine
    no longer does), to check the row diffs against."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.full_modes: list[np.ndarray] = []

    def begin_piece(self, index, t, Y, mode, changed) -> None:
        self.full_modes.append(mode.side.copy())
        super().begin_piece(index, t, Y, mode, changed)


def wide_run(budget: int, times: np.ndarray, coords: str = "plain", method: str = "RK23"):
    """(flow, outcome, recorder, integrator) of m = 60 neurons on the stall data to t = 30 (about 700 events,
    100 sliding entries), saving the states at ``times``, with checkpoints within ``budget`` bytes."""
    _, _, X, y = stall_problem(1.0)
    W, v = init_params(60, 3, alpha=1e-2 / np.sqrt(60), scheme="random_sign", seed=0)
    arith = float_arithmetic("logistic")
    coordinates_ = make_coordinates(coords, W, v, X, y, 1.0, arith, implicit=False)
    integrator = piece_integrator(method, 1e-9, 1e-12)
    flow = HybridFlow(coordinates_, integrator, None, "logistic")
    recorder = ModeKeepingRecorder(SaveSchedule.at(times), coordinates_, "logistic", budget=budget)
    outcome = flow.run(0.0, coordinates_.pack(W, v), 30.0, recorder)
    recorder.finish(outcome.t, outcome.y)
    return flow, outcome, recorder, integrator


def test_row_diffs_replayed_give_every_piece_mode_and_memory_stays_bounded():
    """Replaying the pieces' row diffs from the first checkpoint's mode gives the mode of every piece; a piece
    keeps O(touched neurons (n + row)) numbers, and the checkpoints stay within their byte budget (thinned,
    with a doubled interval, when it is exceeded)."""
    budget = 40_000
    flow, outcome, recorder, _ = wide_run(budget, np.array([30.0]))
    assert outcome.status == "t_max" and outcome.counts.events > 500
    assert len(recorder.pieces) == len(recorder.full_modes) == outcome.counts.events + 1
    side = recorder.checkpoints[0][3].copy()
    assert recorder.checkpoints[0][2] == 0 and np.array_equal(side, recorder.full_modes[0])
    for k, (_, neurons, sides, rows) in enumerate(recorder.pieces[1:], start=1):
        side[neurons] = sides
        assert np.array_equal(side, recorder.full_modes[k]), k
        assert rows.shape == (len(neurons), flow.coords.row) and sides.shape == (len(neurons), side.shape[1])
    touched = sum(len(neurons) for _, neurons, _, _ in recorder.pieces)
    assert touched <= 2 * len(recorder.pieces)  # an event touches a neuron or two, not the network (m = 60)
    one = recorder.checkpoints[0][1].nbytes + side.nbytes
    assert sum(Y.nbytes + s.nbytes for _, Y, _, s in recorder.checkpoints) <= budget + one
    assert recorder.checkpoint_every > 16  # thinned at least once


@pytest.mark.parametrize(("coords", "method"), [("plain", "RK23"), ("span", "RK45"), ("log", "DOP853")])
def test_dense_output_replays_many_pieces_to_the_run_states(coords, method):
    """dense(t) from a checkpoint hundreds of pieces back (a budget of a few checkpoints) equals the states the
    run itself saved at those times, to the tolerance; so does dense output with a checkpoint at every piece."""
    times = np.linspace(0.0, 30.0, 13)
    for budget in (30_000, 1 << 27):
        flow, outcome, recorder, integrator = wide_run(budget, times, coords, method)
        if budget < 1 << 20:
            assert recorder.checkpoint_every >= 64
        dense = dense_evaluator(flow, outcome, recorder, integrator)
        for k in (1, 4, 7, 11, 12):
            W_k, v_k = dense(times[k])
            np.testing.assert_allclose(W_k, recorder.W[k], rtol=1e-6, atol=1e-8)
            np.testing.assert_allclose(v_k, recorder.v[k], rtol=1e-6, atol=1e-8)


def test_event_state_finiteness_check_is_not_an_evaluation_and_matches_the_field():
    """The piece field's own finiteness test (sample factors only) is not counted as an evaluation, says True
    where the field is finite and False where the exponential loss overflows."""
    rng = np.random.default_rng(0)
    m, n, d = 4, 5, 3
    X, y = rng.standard_normal((n, d)), np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    coords = PlainCoordinates(X, y, 1.0, m, float_arithmetic("exponential"))
    flow = HybridFlow(coords, piece_integrator("RK23", 1e-8, 1e-10), None, "exponential")
    W = rng.standard_normal((m, d))
    mode = Mode(W @ X.T > 0, np.zeros((m, n), dtype=bool))
    field = FiniteField(flow.field(SlidingWeights(mode, X @ X.T, coords.arith)))
    with np.errstate(over="ignore", invalid="ignore"):
        for scale, finite in ((1.0, True), (100.0, False)):  # f ~ scale^2: exp(f) overflows for y_i = -1
            Y = coords.pack(scale * W, scale * np.ones(m))
            full = field.fun(Y)
            assert np.isfinite(full @ full) == finite
            before = flow.counts.rhs_evals
            assert field.finite_at(Y) == finite
            assert flow.counts.rhs_evals == before


@pytest.mark.parametrize("coords", ["plain", "span", "log"])
def test_a_run_with_margins_takes_the_same_events_and_states_as_one_without(coords, monkeypatch):
    """The margins only skip neurons that cannot reach a surface: the same run (about 700 events, sliding
    entries and exits) with them at any size and without them takes the same events, and ends in the same
    state to roundoff."""
    times = np.array([10.0, 30.0])
    monkeypatch.setattr(polynomial_guards, "MARGIN_MIN_PAIRS", 0)
    _, with_margins, kept, _ = wide_run(2**30, times, coords)
    monkeypatch.setattr(polynomial_guards, "MARGIN_MIN_PAIRS", 10**12)
    _, without, plain, _ = wide_run(2**30, times, coords)
    assert with_margins.counts.events == without.counts.events > 500
    assert with_margins.counts.switches == without.counts.switches
    assert with_margins.counts.sliding_entries == without.counts.sliding_entries > 0
    np.testing.assert_allclose(kept.W[-1], plain.W[-1], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(kept.v[-1], plain.v[-1], rtol=1e-12, atol=1e-14)


def test_dense_output_keeps_sliding_pairs_on_their_surfaces():
    """A replayed piece starts from the event's projected rows, not from the re-integrated ones: in plain
    coordinates every Runge-Kutta step keeps the linear invariant w_j . x_i of a sliding pair (its field is
    tangent to the surface), so dense(t) inside a sliding episode has w_j . x_i = 0 to roundoff, where a replay
    that kept its own state at the entry would carry the event's location error (~ the event tolerance) on."""
    flow, outcome, recorder, integrator = wide_run(30_000, np.array([30.0]))
    assert recorder.checkpoint_every >= 64  # replays run through dozens of pieces from a checkpoint
    dense = dense_evaluator(flow, outcome, recorder, integrator)
    X = flow.coords.X_all
    starts = [float(start) for start, _, _, _ in recorder.pieces] + [float(outcome.t)]
    checked = 0
    for k, sides in enumerate(recorder.full_modes):
        neurons, samples = np.nonzero(sides == SLIDING)
        if len(neurons) == 0 or starts[k + 1] <= starts[k] or k % 5:
            continue
        W, _ = dense(0.5 * (starts[k] + starts[k + 1]))
        scale = np.linalg.norm(W[neurons], axis=1) * np.linalg.norm(X[samples], axis=1)
        off = np.abs(np.einsum("kd,kd->k", W[neurons], X[samples])) / scale
        assert off.max() < 1e-12, (k, off.max())
        checked += len(neurons)
    assert checked > 50


@pytest.mark.parametrize("coords", ["auto", "plain"])
def test_outputs_carried_to_a_piece_start_agree_with_a_fresh_evaluation(monkeypatch, coords):
    """Stall data at m = 1000 (20 000 pairs, where outputs are carried), t <= 0.3: at every piece that starts
    at an event, the outputs carried from it (the event's outputs plus the touched neurons' change under the
    new mode, docs/flow.md "Cost") equal the outputs evaluated afresh at the start under the new mode, to a few
    roundoffs of the terms summed, 64 eps sum_j |c amp_j A_ji D_ji|."""
    compared = []
    at_start = carried_outputs.CarriedOutputs.at_start

    def checked(self, coords, Y, weights):
        carried = at_start(self, coords, Y, weights)
        if carried is not None:
            D, amp, _ = coords.parts(Y[None])
            fresh = coords.output(Y[None], weights)
            size = np.abs(coords.c) * (np.abs(amp)[..., None, :] @ np.abs(weights.active * D))[..., 0, :]
            assert np.all(np.abs(carried - fresh) <= 64 * np.finfo(float).eps * size), (carried, fresh)
            compared.append(bool(np.any(carried != fresh)))
        return carried

    monkeypatch.setattr(carried_outputs.CarriedOutputs, "at_start", checked)
    _, _, X, y = stall_problem(1.0)
    W, v = init_params(1000, 3, alpha=1e-3 / np.sqrt(1000), scheme="random_sign", seed=0)
    run = integrate_flow(W, v, X, y, t_max=0.3, method="RK23", rtol=1e-7, atol=1e-10, coords=coords)
    assert run.status == "t_max" and len(compared) > 50


@pytest.mark.parametrize("kind", ["plain", "span", "log"])
def test_the_field_from_given_outputs_is_the_field_and_log_coordinates_read_them(kind):
    """rhs(Y, weights, outputs) with every sample's outputs at Y is rhs(Y, weights) bit for bit; log coordinates
    form no pre-activation then (the restart's backward half, docs/flow.md "Cost") and so follow the outputs
    given (other outputs, another field), while plain and data-span coordinates evaluate in full."""
    rng = np.random.default_rng(3)
    for m, n, d in ((7, 5, 3), (40, 12, 20)):
        coords, W = coordinates(kind, rng, m, n, d)
        Y = coords.pack(W, np.linalg.norm(W, axis=1) * coords.signs(coords.pack(W, np.ones(m))))
        sides = random_sides(rng, m, n, d)
        weights = SlidingWeights(Mode(sides == ACTIVE, sides == SLIDING), coords.X @ coords.X.T, ARITH)
        outputs = coords.output(Y, weights)
        np.testing.assert_array_equal(coords.rhs(Y, weights, outputs), coords.rhs(Y, weights))
        moved = coords.rhs(Y, weights, outputs + 1.0)
        assert np.array_equal(moved, coords.rhs(Y, weights)) == (kind != "log")


def test_a_run_whose_restarts_read_the_carried_outputs_equals_one_that_evaluates_them(monkeypatch):
    """Stall data at m = 1000 in log coordinates (20 000 pairs: outputs carried), t <= 0.3: every piece that
    starts at an event evaluates only the backward half of its first field, from the carried outputs; the run
    takes the same events as one whose restarts evaluate in full, and ends in the same state to roundoff."""
    given = []
    rhs_and_factors = LogCoordinates.rhs_and_factors  # what a piece's field calls

    def counted(self, Y, weights, outputs=None, out=None):
        given.append(outputs is not None)
        return rhs_and_factors(self, Y, weights, outputs, out)

    monkeypatch.setattr(LogCoordinates, "rhs_and_factors", counted)
    _, _, X, y = stall_problem(1.0)
    W, v = init_params(1000, 3, alpha=1e-3 / np.sqrt(1000), scheme="random_sign", seed=0)
    options = {"t_max": 0.3, "method": "RK23", "rtol": 1e-7, "atol": 1e-10}
    run = integrate_flow(W, v, X, y, **options)
    assert sum(given) == run.info["events"] > 50
    monkeypatch.setattr(LogCoordinates, "velocity_parts", lambda self, Y: None)
    full = integrate_flow(W, v, X, y, **options)
    assert (full.info["events"], full.rhs_evals) == (run.info["events"], run.rhs_evals)
    np.testing.assert_allclose(run.W, full.W, rtol=1e-13, atol=1e-13 * np.abs(full.W).max())
