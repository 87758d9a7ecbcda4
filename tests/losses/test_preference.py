"""DPO family, SPIN and Bradley-Terry against numpy references and known limits."""

import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from symbiosis_jax import losses


def _log_sigmoid(x):
    return -np.log1p(np.exp(-x))


def _np_losses(kind, pc, pr, rc, rr, beta, eps=0.0, lc=None, lr=None):
    out = []
    for i in range(len(pc)):
        chosen, rejected = pc[i] - rc[i], pr[i] - rr[i]
        if lc is not None:
            chosen, rejected = chosen / lc[i], rejected / lr[i]
        h = chosen - rejected
        if kind == "dpo":
            out.append(-(1 - eps) * _log_sigmoid(beta * h) - eps * _log_sigmoid(-beta * h))
        elif kind == "robust":
            out.append((-(1 - eps) * _log_sigmoid(beta * h) + eps * _log_sigmoid(-beta * h)) / (1 - 2 * eps))
        elif kind == "ipo":
            out.append((h - 1 / (2 * beta)) ** 2)
        elif kind == "hinge":
            out.append(max(0.0, 1 - beta * h))
    return sum(out) / len(out)


def _inputs(seed, batch=6):
    rng = np.random.default_rng(seed)
    return [-rng.random(batch) * 20 for _ in range(4)]


CASES = [
    ("dpo", losses.dpo_loss, dict(beta=0.1), dict(beta=0.1)),
    ("cdpo", losses.conservative_dpo_loss, dict(beta=0.3, label_smoothing=0.2), dict(beta=0.3, eps=0.2)),
    ("dpo_ls", losses.dpo_loss, dict(beta=0.5, label_smoothing=0.1), dict(beta=0.5, eps=0.1)),
    ("robust", losses.robust_dpo_loss, dict(beta=0.2, label_smoothing=0.1), dict(beta=0.2, eps=0.1)),
    ("ipo", losses.ipo_loss, dict(beta=0.1), dict(beta=0.1)),
    ("hinge", losses.preference_hinge_loss, dict(beta=0.1), dict(beta=0.1)),
]


@pytest.mark.parametrize("name, fn, kwargs, ref_kwargs", CASES, ids=[c[0] for c in CASES])
def test_matches_numpy_value_and_gradient(name, fn, kwargs, ref_kwargs, x64, fd_grad):
    pc, pr, rc, rr = _inputs(zlib.crc32(name.encode()) % 100)  # per case, the same in every run
    kind = {"cdpo": "dpo", "dpo_ls": "dpo"}.get(name, name)
    jax_fn = jax.jit(jax.value_and_grad(lambda c, r: fn(c, r, jnp.asarray(rc), jnp.asarray(rr), **kwargs)[0], argnums=(0, 1)))
    value, (grad_c, grad_r) = jax_fn(jnp.asarray(pc), jnp.asarray(pr))
    np.testing.assert_allclose(value, _np_losses(kind, pc, pr, rc, rr, **ref_kwargs), rtol=1e-10)
    np.testing.assert_allclose(grad_c, fd_grad(lambda c: _np_losses(kind, c, pr, rc, rr, **ref_kwargs), pc), atol=1e-6)
    np.testing.assert_allclose(grad_r, fd_grad(lambda r: _np_losses(kind, pc, r, rc, rr, **ref_kwargs), pr), atol=1e-6)


def test_ipo_length_normalised(x64, fd_grad):
    pc, pr, rc, rr = _inputs(3)
    lc = np.array([3, 5, 7, 2, 9, 4])
    lr = np.array([4, 4, 6, 8, 1, 2])
    fn = lambda c: losses.ipo_loss(
        c, jnp.asarray(pr), jnp.asarray(rc), jnp.asarray(rr), beta=0.2,
        chosen_lengths=jnp.asarray(lc), rejected_lengths=jnp.asarray(lr),
    )[0]
    ref = lambda c: _np_losses("ipo", c, pr, rc, rr, 0.2, lc=lc, lr=lr)
    np.testing.assert_allclose(fn(jnp.asarray(pc)), ref(pc), rtol=1e-10)
    np.testing.assert_allclose(jax.grad(fn)(jnp.asarray(pc)), fd_grad(ref, pc), atol=1e-6)


@pytest.mark.parametrize("beta", [0.01, 0.1, 1.0, 10.0])
def test_dpo_policy_equals_reference_is_log2(beta):
    pc, pr, _, _ = _inputs(0)
    loss, metrics = losses.dpo_loss(
        jnp.asarray(pc), jnp.asarray(pr), jnp.asarray(pc), jnp.asarray(pr), beta=beta
    )
    np.testing.assert_allclose(loss, np.log(2.0), rtol=1e-6)
    np.testing.assert_allclose(metrics["reward_margin"], 0.0, atol=1e-6)
    # At h = 0 the label-smoothed variants are log 2 too: ((1-eps) - eps) log 2 / (1 - 2 eps).
    same = (jnp.asarray(pc), jnp.asarray(pr), jnp.asarray(pc), jnp.asarray(pr))
    for fn in (losses.conservative_dpo_loss, losses.robust_dpo_loss):
        np.testing.assert_allclose(fn(*same, beta=beta, label_smoothing=0.3)[0], np.log(2.0), rtol=1e-6)


def test_dpo_hand_worked_and_metrics():
    # h = (−1 − (−2)) − (−3 − (−2)) = 1 − (−1) = 2; beta = 0.5: loss = −log σ(1).
    loss, m = losses.dpo_loss(
        jnp.array([-1.0, -2.0]), jnp.array([-3.0, -1.0]), jnp.array([-2.0, -2.0]),
        jnp.array([-2.0, -2.0]), beta=0.5,
    )
    # Second pair: h = 0 − 1 = −1 -> −log σ(−0.5).
    np.testing.assert_allclose(loss, (np.log1p(np.exp(-1.0)) + np.log1p(np.exp(0.5))) / 2, rtol=1e-6)
    np.testing.assert_allclose(m["rewards_chosen"], 0.5 * (1.0 + 0.0) / 2, rtol=1e-6)
    np.testing.assert_allclose(m["rewards_rejected"], 0.5 * (-1.0 + 1.0) / 2, atol=1e-7)
    np.testing.assert_allclose(m["reward_margin"], 0.5 * (2.0 - 1.0) / 2, rtol=1e-6)
    np.testing.assert_allclose(m["accuracy"], 0.5)
    np.testing.assert_allclose(m["logit_mean"], 0.5, rtol=1e-6)


def test_ipo_and_hinge_hand_worked():
    args = [jnp.array([-1.0]), jnp.array([-3.0]), jnp.array([-2.0]), jnp.array([-2.0])]  # h = 2
    np.testing.assert_allclose(losses.ipo_loss(*args, beta=0.1)[0], (2 - 5) ** 2, rtol=1e-6)
    np.testing.assert_allclose(losses.preference_hinge_loss(*args, beta=0.1)[0], 0.8, rtol=1e-6)
    np.testing.assert_allclose(losses.preference_hinge_loss(*args, beta=1.0)[0], 0.0)


def test_robust_dpo_is_unbiased_under_flips():
    """With flip rate eps, E[robust loss of the noisy label] = clean DPO loss (Chowdhury et al.)."""
    pc, pr, rc, rr = (jnp.asarray(x) for x in _inputs(5))
    eps = 0.2
    clean, _ = losses.dpo_loss(pc, pr, rc, rr, beta=0.3)
    kept, _ = losses.robust_dpo_loss(pc, pr, rc, rr, beta=0.3, label_smoothing=eps)
    flipped, _ = losses.robust_dpo_loss(pr, pc, rr, rc, beta=0.3, label_smoothing=eps)
    np.testing.assert_allclose((1 - eps) * kept + eps * flipped, clean, rtol=1e-5)


def test_references_get_no_gradient():
    pc, pr, rc, rr = (jnp.asarray(x) for x in _inputs(6))
    for fn in (losses.dpo_loss, losses.ipo_loss, losses.robust_dpo_loss, losses.preference_hinge_loss, losses.spin_loss):
        grads = jax.grad(lambda a, b: fn(pc, pr, a, b)[0], argnums=(0, 1))(rc, rr)
        np.testing.assert_array_equal(grads[0], 0.0)
        np.testing.assert_array_equal(grads[1], 0.0)


def test_spin_is_dpo_with_real_vs_generated():
    pc, pr, rc, rr = (jnp.asarray(x) for x in _inputs(7))
    loss, metrics = losses.spin_loss(pc, pr, rc, rr, beta=0.1)
    dpo, dpo_metrics = losses.dpo_loss(pc, pr, rc, rr, beta=0.1)
    np.testing.assert_allclose(loss, dpo, rtol=1e-6)
    np.testing.assert_allclose(metrics["rewards_real"], dpo_metrics["rewards_chosen"], rtol=1e-6)
    np.testing.assert_allclose(metrics["rewards_generated"], dpo_metrics["rewards_rejected"], rtol=1e-6)
    # Hand-worked: previous iterate = current player -> log 2.
    np.testing.assert_allclose(losses.spin_loss(pc, pr, pc, pr)[0], np.log(2.0), rtol=1e-6)


def test_bradley_terry_hand_worked(x64):
    chosen = jnp.array([2.0, 0.0])
    rejected = jnp.array([1.0, 1.0])
    loss, m = losses.bradley_terry_loss(chosen, rejected)
    np.testing.assert_allclose(loss, (np.log1p(np.exp(-1.0)) + np.log1p(np.exp(1.0))) / 2, rtol=1e-12)
    np.testing.assert_allclose(m["accuracy"], 0.5)
    np.testing.assert_allclose(m["reward_margin"], 0.0)
    margin = jnp.array([0.5, 0.0])
    loss, m = losses.bradley_terry_loss(chosen, rejected, margin=margin, center_rewards_coef=0.01)
    expected_bt = (np.log1p(np.exp(-0.5)) + np.log1p(np.exp(1.0))) / 2
    np.testing.assert_allclose(m["bt_loss"], expected_bt, rtol=1e-12)
    np.testing.assert_allclose(loss, expected_bt + 0.01 * (9.0 + 1.0) / 2, rtol=1e-12)
    # d/dr_w of -log σ(r_w - r_l) = -σ(r_l - r_w); batch mean halves it.
    grad = jax.grad(lambda c: losses.bradley_terry_loss(c, rejected)[0])(chosen)
    np.testing.assert_allclose(grad, -1 / (1 + np.exp([1.0, -1.0])) / 2, rtol=1e-12)


def test_bad_input():
    x = jnp.zeros(3)
    with pytest.raises(ValueError, match="beta=-0.1"):
        losses.dpo_loss(x, x, x, x, beta=-0.1)
    with pytest.raises(ValueError, match=r"label_smoothing=0.5 must be in \[0.0, 0.5\)"):
        losses.robust_dpo_loss(x, x, x, x, label_smoothing=0.5)
    with pytest.raises(ValueError, match="beta=0"):
        losses.ipo_loss(x, x, x, x, beta=0.0)
    with pytest.raises(ValueError, match=r"ref_rejected_logp has shape \(4,\)"):
        losses.dpo_loss(x, x, x, jnp.zeros(4))
    with pytest.raises(ValueError, match="chosen_lengths and rejected_lengths"):
        losses.ipo_loss(x, x, x, x, chosen_lengths=jnp.ones(3))
    with pytest.raises(ValueError, match="margin has shape"):
        losses.bradley_terry_loss(x, x, margin=jnp.zeros(2))
    with pytest.raises(ValueError, match=r"policy_generated_logp has shape"):
        losses.spin_loss(x, jnp.zeros((3, 1)), x, x)
