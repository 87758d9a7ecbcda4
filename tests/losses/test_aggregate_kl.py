"""Aggregation modes and KL estimators: hand-worked values, numpy references, edge cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from symbiosis_jax import losses


VALUES = np.array([[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 0.0, 0.0], [5.0, 5.0, 5.0, 5.0]])
MASK = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]])


@pytest.mark.parametrize(
    "mode, expected",
    [
        # (1+2+3+4+10+20) / 6
        ("token-mean", 40.0 / 6.0),
        # mean(2.5, 15); the fully masked row is left out
        ("seq-mean-token-mean", (2.5 + 15.0) / 2.0),
        # mean(10, 30)
        ("seq-mean-token-sum", 20.0),
        # mean(10 / 4, 30 / 4) with the padded length T = 4
        ("seq-mean-token-sum-norm", 5.0),
    ],
)
def test_aggregate_hand_worked(mode, expected):
    got = losses.aggregate(jnp.asarray(VALUES), jnp.asarray(MASK), mode=mode)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_sum_norm_with_constant():
    got = losses.aggregate(
        jnp.asarray(VALUES), jnp.asarray(MASK), mode="seq-mean-token-sum-norm", norm_length=10
    )
    np.testing.assert_allclose(got, (1.0 + 3.0) / 2.0, rtol=1e-6)


def _np_aggregate(values, mask, mode, norm_length=None):
    batch, length = values.shape
    if mode == "token-mean":
        total, count = 0.0, 0.0
        for b in range(batch):
            for t in range(length):
                if mask[b, t]:
                    total += values[b, t]
                    count += 1
        return total / count if count else 0.0
    rows = []
    for b in range(batch):
        row = [values[b, t] for t in range(length) if mask[b, t]]
        if not row:
            continue
        if mode == "seq-mean-token-mean":
            rows.append(sum(row) / len(row))
        elif mode == "seq-mean-token-sum":
            rows.append(sum(row))
        else:
            rows.append(sum(row) / (norm_length or length))
    return sum(rows) / len(rows) if rows else 0.0


@pytest.mark.parametrize("mode", losses.AGGREGATION_MODES)
def test_aggregate_matches_numpy_and_gradient(mode, x64, fd_grad):
    rng = np.random.default_rng(0)
    values = rng.normal(size=(5, 7))
    mask = rng.random((5, 7)) < 0.6
    mask[2] = False
    got = losses.aggregate(jnp.asarray(values), jnp.asarray(mask), mode=mode)
    np.testing.assert_allclose(got, _np_aggregate(values, mask, mode), rtol=1e-12)
    grad = jax.grad(lambda v: losses.aggregate(v, jnp.asarray(mask), mode=mode))(
        jnp.asarray(values)
    )
    expected = fd_grad(lambda v: _np_aggregate(v, mask, mode), values)
    np.testing.assert_allclose(grad, expected, atol=1e-6)


@pytest.mark.parametrize("mode", losses.AGGREGATION_MODES)
def test_no_valid_token_gives_zero_not_nan(mode):
    values = jnp.array([[np.nan, np.inf], [1.0, -np.inf]])
    mask = jnp.zeros((2, 2))
    value, grad = jax.value_and_grad(lambda v: losses.aggregate(v, mask, mode=mode))(values)
    assert float(value) == 0.0
    np.testing.assert_array_equal(grad, np.zeros((2, 2)))


def test_aggregate_bad_input():
    with pytest.raises(ValueError, match=r"mode='foo' is not one of \('token-mean'"):
        losses.aggregate(jnp.zeros((2, 3)), jnp.ones((2, 3)), mode="foo")
    with pytest.raises(ValueError, match="mask has shape"):
        losses.aggregate(jnp.zeros((2, 3)), jnp.ones((2, 4)))
    with pytest.raises(ValueError, match="norm_length"):
        losses.aggregate(
            jnp.zeros((2, 3)), jnp.ones((2, 3)), mode="seq-mean-token-sum-norm", norm_length=0
        )


def test_kl_estimators_hand_worked():
    # logp = log 0.5, ref = log 0.25  ->  log r = log 0.5, r = 0.5.
    logp = jnp.log(jnp.array([0.5]))
    ref = jnp.log(jnp.array([0.25]))
    log_r = np.log(0.5)
    np.testing.assert_allclose(losses.kl_estimate(logp, ref, estimator="k1"), [-log_r], rtol=1e-6)
    np.testing.assert_allclose(
        losses.kl_estimate(logp, ref, estimator="k2"), [0.5 * log_r**2], rtol=1e-6
    )
    np.testing.assert_allclose(
        losses.kl_estimate(logp, ref, estimator="k3"), [0.5 - 1 - log_r], rtol=1e-6
    )
    np.testing.assert_allclose(
        losses.kl_estimate(logp, ref, estimator="k3+"), [0.5 - 1 - log_r], rtol=1e-6
    )


def test_kl_estimators_expectations():
    """Under sampling from pi, k1 and k3 are unbiased for KL(pi || ref); k3 >= 0."""
    p = np.array([0.5, 0.3, 0.2])
    q = np.array([0.2, 0.2, 0.6])
    true_kl = float(np.sum(p * np.log(p / q)))
    logp = jnp.log(jnp.asarray(p))
    ref = jnp.log(jnp.asarray(q))
    for estimator in ("k1", "k3"):
        per_token = np.asarray(losses.kl_estimate(logp, ref, estimator=estimator))
        np.testing.assert_allclose(np.sum(p * per_token), true_kl, rtol=1e-5)
    assert np.all(np.asarray(losses.kl_estimate(logp, ref, estimator="k3")) >= 0)


def test_k3_plus_has_k2_gradient(x64):
    rng = np.random.default_rng(1)
    logp = jnp.asarray(rng.normal(size=(3, 4)))
    ref = jnp.asarray(rng.normal(size=(3, 4)))

    def total(estimator):
        return lambda x: jnp.sum(losses.kl_estimate(x, ref, estimator=estimator))

    np.testing.assert_allclose(jax.grad(total("k3+"))(logp), jax.grad(total("k2"))(logp))
    np.testing.assert_allclose(jax.grad(total("k2"))(logp), logp - ref, rtol=1e-12)
    # k3's own gradient is 1 - exp(ref - logp).
    np.testing.assert_allclose(jax.grad(total("k3"))(logp), 1 - jnp.exp(ref - logp), rtol=1e-12)
    np.testing.assert_allclose(total("k3+")(logp), total("k3")(logp), rtol=1e-12)


def test_kl_bad_input():
    with pytest.raises(ValueError, match=r"estimator='k4' is not one of \('k1', 'k2', 'k3', 'k3\+'\)"):
        losses.kl_estimate(jnp.zeros(3), jnp.zeros(3), estimator="k4")
    with pytest.raises(ValueError, match="ref_logp has shape"):
        losses.kl_estimate(jnp.zeros(3), jnp.zeros(4))
