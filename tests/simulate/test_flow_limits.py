"""The engine against the limits it must reproduce: GD as eta -> 0, the small-init tanh law, targets."""

import warnings

import numpy as np
import pytest

from fls.simulate.data import make_data
from fls.simulate.flow import integrate_flow
from fls.simulate.flow.baselines import euler
from fls.simulate.flow.problems import stall_problem
from fls.simulate.initialization import init_params
from fls.theory.compiled import compile_field
from fls.theory.smallinit import alignment_rates, class_sums, tanh_alignment

FIELD = compile_field("logistic")


def state(run) -> np.ndarray:
    return np.concatenate([run.W.ravel(), run.v])


def test_gradient_descent_converges_to_the_flow_at_first_order():
    """Stall problem (40 crossings, 2 sliding entries by t = 4): ||GD_eta(t) - flow(t)|| / eta -> constant."""
    W, v, X, y = stall_problem(1.0)
    flow = integrate_flow(W, v, X, y, t_max=4.0, rtol=1e-12, atol=1e-14)
    assert flow.sliding_entries > 0 and flow.switches > 0
    exact = state(flow)
    etas = np.array([1e-3, 5e-4, 2.5e-4])
    errors = np.array([np.max(np.abs(state(euler(W, v, X, y, eta=eta, t=4.0)) - exact)) for eta in etas])
    errors /= np.max(np.abs(exact))
    print("\nGD relative error / eta:", errors / etas)
    slope = np.polyfit(np.log(etas), np.log(errors), 1)[0]
    assert 0.9 < slope < 1.3
    assert np.all(np.diff(errors) < 0) and (errors / etas).max() < 1.25 * (errors / etas).min()


@pytest.fixture(scope="module")
def separable():
    data = make_data("gaussian_mixture", preset="separable", seed=0, n_test=10)
    assert data.orthogonally_separable
    return data.X, data.y


@pytest.mark.parametrize("alpha, tolerance", [(1e-2, 1e-3), (1e-4, 1e-6), (1e-8, 1e-6)])
def test_alignment_follows_the_tanh_law(separable, alpha, tolerance):
    """A positive neuron active on exactly the positive points aligns as the closed-form tanh law

        psi(t) = tanh(lambda+ (t - t0) + artanh psi0),

    checked while the output is small (max |f| <= 1e-2, so r_i = 1/2 up to 0.25 %).
    """
    X, y = separable
    rate, _ = alignment_rates(X, y)
    x_plus, _ = class_sums(X, y)
    W, v = init_params(10, X.shape[1], alpha=alpha, scheme="random_sign", seed=1)
    times = np.linspace(0.0, 6.0 * np.log(1 / alpha), 300)
    result = integrate_flow(W, v, X, y, t_max=times[-1], save_at=times)
    assert result.engine == "flow-logcoords"
    psi = (result.W_t / np.linalg.norm(result.W_t, axis=2, keepdims=True)) @ (x_plus / np.linalg.norm(x_plus))
    small = np.array(
        [np.abs(FIELD.output(W_k, v_k, X)).max() <= 1e-2 for W_k, v_k in zip(result.W_t, result.v_t)]
    )
    checked = 0
    for j in np.flatnonzero(v > 0):
        on_positives = np.all((result.W_t[:, j] @ X.T > 0) == (y > 0), axis=1) & small
        if not on_positives.any():
            continue
        window = np.flatnonzero(on_positives)
        k0 = window[0]
        law = tanh_alignment(times[window], rate=rate, psi0=psi[k0, j], t0=times[k0])
        assert np.max(np.abs(psi[window, j] - law)) < tolerance
        assert psi[window[-1], j] > 0.9 or times[window[-1]] - times[k0] > 5 / rate
        checked += 1
    assert checked >= 2


def test_escape_time_grows_as_log_one_over_alpha(separable):
    """The small-norm phase ends (R <= 0.6) at t ~ log(1/alpha) / lambda+ + O(1)."""
    X, y = separable
    rate, _ = alignment_rates(X, y)
    escape = {}
    for alpha in (1e-4, 1e-8):
        W, v = init_params(10, X.shape[1], alpha=alpha, scheme="random_sign", seed=1)
        escape[alpha] = integrate_flow(W, v, X, y, target_risk=0.6, t_max=1e3).t_stop
    slope = (escape[1e-8] - escape[1e-4]) / np.log(1e4)
    assert slope == pytest.approx(1 / rate, rel=0.05)


@pytest.mark.parametrize("alpha", [1e-12, 1e-3, 0.1, 1.0])
def test_stall_problem_reaches_its_target(alpha):
    W, v, X, y = stall_problem(alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = integrate_flow(W, v, X, y, target_risk=1e-2, t_max=1e4)
    assert result.status == "target_reached"
    assert result.switches > 50 and result.sliding_entries > 0
    assert result.engine == ("flow-logcoords" if alpha < 0.1 else "flow")


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [1e-12, 10.0])
def test_low_signal_mixture_reaches_the_target_at_extreme_scales_without_warnings(alpha):
    data = make_data("gaussian_mixture", preset="low_signal", seed=0, n_test=10)
    W, v = init_params(100, 100, alpha=alpha, scheme="random_sign", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = integrate_flow(W, v, data.X, data.y, target_risk=0.05, t_max=1e5)
    assert result.status == "target_reached"
    assert FIELD.risk(result.W, result.v, data.X, data.y) == pytest.approx(0.05, rel=1e-8)
