"""GSPO and GSPO-token: sequence-level ratio, numpy reference and their equivalence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from symbiosis_jax import losses


def _np_gspo(logp, old, adv, mask, *, eps_low, eps_high):
    """Naive GSPO: one clipped term per sequence, averaged over non-empty sequences."""
    terms = []
    for b in range(logp.shape[0]):
        diffs = [logp[b, t] - old[b, t] for t in range(logp.shape[1]) if mask[b, t]]
        if not diffs:
            continue
        s = np.exp(sum(diffs) / len(diffs))
        terms.append(-min(s * adv[b], min(max(s, 1 - eps_low), 1 + eps_high) * adv[b]))
    return sum(terms) / len(terms)


def _batch(seed, scale):
    rng = np.random.default_rng(seed)
    logp = -rng.random((5, 7)) * 2
    old = logp + rng.normal(size=logp.shape) * scale
    adv = rng.normal(size=5)
    mask = rng.random((5, 7)) < 0.7
    mask[:, 0] = True
    mask[3] = False
    return logp, old, adv, mask


@pytest.mark.parametrize("scale, eps", [(0.1, (0.2, 0.25)), (0.02, (3e-4, 4e-4))])
def test_gspo_matches_numpy(scale, eps, x64, fd_grad):
    logp, old, adv, mask = _batch(0, scale)
    eps_low, eps_high = eps

    def jax_loss(x):
        return losses.gspo_loss(
            x, jnp.asarray(old), jnp.asarray(adv), jnp.asarray(mask),
            epsilon_low=eps_low, epsilon_high=eps_high,
        )[0]

    def np_loss(x):
        return _np_gspo(x, old, adv, mask, eps_low=eps_low, eps_high=eps_high)

    value, grad = jax.jit(jax.value_and_grad(jax_loss))(jnp.asarray(logp))
    np.testing.assert_allclose(value, np_loss(logp), rtol=1e-9)
    np.testing.assert_allclose(grad, fd_grad(np_loss, logp), atol=1e-6)


def test_gspo_hand_worked():
    # Token log-ratios (0.1, 0.3): s = exp(0.2) = 1.2214 > 1 + 4e-4.
    logp = jnp.array([[0.1, 0.3, 0.0], [0.1, 0.3, 0.0]])
    old = jnp.zeros((2, 3))
    mask = jnp.array([[1, 1, 0], [1, 1, 0]])
    loss, metrics = jax.jit(losses.gspo_loss)(logp, old, jnp.array([1.0, -1.0]), mask)
    # A = +1: clipped at 1.0004 -> -1.0004; A = -1: -min(-1.2214, -1.0004) = 1.2214.
    np.testing.assert_allclose(loss, (-1.0004 + np.exp(0.2)) / 2, rtol=1e-6)
    np.testing.assert_allclose(metrics["clip_fraction_high"], 0.5)
    np.testing.assert_allclose(metrics["ratio_mean"], np.exp(0.2), rtol=1e-6)
    grad = jax.jit(jax.grad(lambda x: losses.gspo_loss(x, old, jnp.array([1.0, -1.0]), mask)[0]))(logp)
    # Row 0 is clipped (no gradient); row 1: d/dlogp_t [s] / 2 = s / 2 / 2 per valid token.
    s = np.exp(0.2)
    np.testing.assert_allclose(grad, [[0, 0, 0], [s / 4, s / 4, 0]], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("scale", [0.01, 0.3])
def test_gspo_and_gspo_token_agree(scale, x64):
    logp, old, adv, mask = _batch(1, scale)
    args = (jnp.asarray(old), jnp.asarray(adv), jnp.asarray(mask))
    outs = []
    for fn in (losses.gspo_loss, losses.gspo_token_loss):
        outs.append(jax.jit(jax.value_and_grad(lambda x: fn(x, *args, epsilon_low=0.1, epsilon_high=0.1)[0]))(jnp.asarray(logp)))
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-12)
    np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-10, atol=1e-14)


def test_gspo_token_per_token_advantages(x64):
    """GSPO-token with [B, T] advantages: value uses s_i, gradient -A_t s_i / |y_i| / B'."""
    logp, old, _, mask = _batch(2, 0.05)
    rng = np.random.default_rng(9)
    adv = rng.normal(size=logp.shape)
    eps = 0.03
    value, grad = jax.jit(jax.value_and_grad(
        lambda x: losses.gspo_token_loss(
            x, jnp.asarray(old), jnp.asarray(adv), jnp.asarray(mask), epsilon_low=eps, epsilon_high=eps
        )[0]
    ))(jnp.asarray(logp))
    rows = [b for b in range(5) if mask[b].any()]
    expected_value, expected_grad = 0.0, np.zeros_like(logp)
    for b in rows:
        n = mask[b].sum()
        s = np.exp(sum(logp[b, t] - old[b, t] for t in range(7) if mask[b, t]) / n)
        for t in range(7):
            if not mask[b, t]:
                continue
            a = adv[b, t]
            clipped = min(max(s, 1 - eps), 1 + eps)
            expected_value += -min(s * a, clipped * a) / n / len(rows)
            unclipped_active = s * a <= clipped * a
            expected_grad[b, t] = -a * s / n / len(rows) if unclipped_active else 0.0
    np.testing.assert_allclose(value, expected_value, rtol=1e-10)
    np.testing.assert_allclose(grad, expected_grad, atol=1e-12)


def test_gspo_padding_invariance():
    logp, old, adv, mask = _batch(4, 0.1)
    garbage = np.full((5, 3), np.nan)

    def run(lp, ol, mk):
        return jax.jit(jax.value_and_grad(
            lambda x: losses.gspo_loss(x, jnp.asarray(ol), jnp.asarray(adv), jnp.asarray(mk))[0]
        ))(jnp.asarray(lp))

    v, g = run(logp, old, mask)
    vp, gp = run(
        np.concatenate([logp, garbage], 1),
        np.concatenate([old, garbage], 1),
        np.concatenate([mask, np.zeros((5, 3), bool)], 1),
    )
    np.testing.assert_allclose(vp, v, rtol=1e-6)
    np.testing.assert_allclose(gp[:, :7], g, rtol=1e-6)
    np.testing.assert_array_equal(gp[:, 7:], 0.0)


def test_gspo_bad_input():
    z = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match=r"expected \[B\] for gspo_loss"):
        losses.gspo_loss(z, z, z, z)
    with pytest.raises(ValueError, match="epsilon_low=0"):
        losses.gspo_loss(z, z, jnp.ones(2), z, epsilon_low=0.0)
    with pytest.raises(ValueError, match="ref_logp is required"):
        losses.gspo_token_loss(z, z, jnp.ones(2), z, beta=0.1)
