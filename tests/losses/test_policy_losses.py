"""Token-level clipped policy losses (PPO policy term, GRPO, DAPO, Dr. GRPO).

Checks against a naive numpy reference written here (loops over rows and
tokens), finite-difference gradients in float64, hand-worked cases, jit,
padding invariance and the on-policy limit.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from symbiosis_jax import losses


def _np_kl(logp, ref, estimator):
    log_r = ref - logp
    if estimator == "k1":
        return -log_r
    if estimator == "k2":
        return 0.5 * log_r**2
    return np.exp(log_r) - 1 - log_r  # k3 (and the value of k3+)


def _np_policy_loss(
    logp, old, adv, mask, ref=None, *, eps_low, eps_high, dual=None, beta=0.0,
    estimator="k3", aggregation="token-mean", norm_length=None,
):
    """Naive reference: per-token PPO-clip objective, KL outside the clip, aggregated."""
    batch, length = logp.shape
    per_token = np.zeros((batch, length))
    for b in range(batch):
        for t in range(length):
            if not mask[b, t]:
                continue
            a = adv[b] if adv.ndim == 1 else adv[b, t]
            ratio = np.exp(logp[b, t] - old[b, t])
            objective = min(ratio * a, min(max(ratio, 1 - eps_low), 1 + eps_high) * a)
            loss = -objective
            if dual is not None and a < 0:
                loss = min(loss, -dual * a)
            if beta:
                loss += beta * _np_kl(logp[b, t], ref[b, t], estimator)
            per_token[b, t] = loss
    rows, total, count = [], 0.0, 0
    for b in range(batch):
        valid = [per_token[b, t] for t in range(length) if mask[b, t]]
        total += sum(valid)
        count += len(valid)
        if not valid:
            continue
        if aggregation == "seq-mean-token-mean":
            rows.append(sum(valid) / len(valid))
        elif aggregation == "seq-mean-token-sum":
            rows.append(sum(valid))
        elif aggregation == "seq-mean-token-sum-norm":
            rows.append(sum(valid) / (norm_length or length))
    if aggregation == "token-mean":
        return total / count
    return sum(rows) / len(rows)


def _clip_branches(logp, old, adv, mask, *, eps_low, eps_high, dual=None, **_):
    """Which branches of the clipped objective the valid tokens take: 'high' (ratio above
    1 + eps_high, A > 0), 'low' (below 1 - eps_low, A < 0), 'dual' (the dual clip's bound)."""
    hit = set()
    for b, t in zip(*np.nonzero(mask)):
        a = adv[b] if adv.ndim == 1 else adv[b, t]
        ratio = np.exp(logp[b, t] - old[b, t])
        if ratio > 1 + eps_high and a > 0:
            hit.add("high")
        if ratio < 1 - eps_low and a < 0:
            hit.add("low")
        objective = min(ratio * a, min(max(ratio, 1 - eps_low), 1 + eps_high) * a)
        if dual is not None and a < 0 and -objective > -dual * a:
            hit.add("dual")
    return hit


def _random_batch(seed, batch=4, length=6, per_token_adv=False):
    rng = np.random.default_rng(seed)
    logp = -rng.random((batch, length)) * 3
    old = logp + rng.normal(size=(batch, length)) * 0.3
    ref = logp + rng.normal(size=(batch, length)) * 0.3
    adv = rng.normal(size=(batch, length) if per_token_adv else (batch,))
    mask = rng.random((batch, length)) < 0.75
    mask[:, 0] = True
    mask[-1] = False  # a fully masked row
    return logp, old, adv, mask, ref


CASES = [
    ("grpo", losses.grpo_loss, dict(eps_low=0.2, eps_high=0.2, beta=0.04, estimator="k3",
                                    aggregation="seq-mean-token-mean"), {}),
    ("grpo_k1_dual", losses.grpo_loss, dict(eps_low=0.2, eps_high=0.2, beta=0.1, estimator="k1",
                                            aggregation="seq-mean-token-mean", dual=3.0),
     dict(beta=0.1, kl_estimator="k1", dual_clip=3.0)),
    ("dapo", losses.dapo_loss, dict(eps_low=0.2, eps_high=0.28, aggregation="token-mean"), {}),
    ("dr_grpo", losses.dr_grpo_loss, dict(eps_low=0.2, eps_high=0.2,
                                          aggregation="seq-mean-token-sum-norm"), {}),
    ("dr_grpo_L", losses.dr_grpo_loss, dict(eps_low=0.2, eps_high=0.2, norm_length=16,
                                            aggregation="seq-mean-token-sum-norm"),
     dict(norm_length=16)),
    ("ppo_dual", losses.ppo_policy_loss, dict(eps_low=0.1, eps_high=0.3, dual=2.0,
                                              aggregation="seq-mean-token-sum"),
     dict(epsilon_low=0.1, epsilon_high=0.3, dual_clip=2.0, aggregation="seq-mean-token-sum")),
]


@pytest.mark.parametrize("name, fn, ref_kwargs, kwargs", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("per_token_adv", [False, True])
def test_value_and_gradient_match_numpy(name, fn, ref_kwargs, kwargs, per_token_adv, x64, fd_grad):
    logp, old, adv, mask, ref = _random_batch(4, per_token_adv=per_token_adv)
    # Larger ratios so that all clip branches are exercised (checked: with seed 4 every case
    # takes both clips, and the dual clip where there is one).
    old = logp + np.random.default_rng(5).normal(size=logp.shape) * 0.8
    want = {"high", "low"} | ({"dual"} if ref_kwargs.get("dual") else set())
    assert _clip_branches(logp, old, adv, mask, **ref_kwargs) == want
    use_ref = ref_kwargs.get("beta", 0.0) > 0
    extra = dict(kwargs, ref_logp=jnp.asarray(ref)) if use_ref else kwargs

    def jax_loss(x):
        return fn(x, jnp.asarray(old), jnp.asarray(adv), jnp.asarray(mask), **extra)[0]

    def np_loss(x):
        return _np_policy_loss(x, old, adv, mask, ref, **ref_kwargs)

    value, grad = jax.jit(jax.value_and_grad(jax_loss))(jnp.asarray(logp))
    np.testing.assert_allclose(value, np_loss(logp), rtol=1e-9)
    np.testing.assert_allclose(grad, fd_grad(np_loss, logp), atol=1e-6)


def test_k3_plus_gradient_is_k2_gradient(x64, fd_grad):
    logp, old, adv, mask, ref = _random_batch(7)

    def jax_loss(x, estimator):
        return losses.grpo_loss(
            x, jnp.asarray(old), jnp.asarray(adv), jnp.asarray(mask),
            ref_logp=jnp.asarray(ref), beta=0.5, kl_estimator=estimator,
        )[0]

    kw = dict(eps_low=0.2, eps_high=0.2, beta=0.5, aggregation="seq-mean-token-mean")
    value, grad = jax.jit(jax.value_and_grad(lambda x: jax_loss(x, "k3+")))(jnp.asarray(logp))
    np.testing.assert_allclose(value, _np_policy_loss(logp, old, adv, mask, ref, estimator="k3", **kw), rtol=1e-9)
    expected = fd_grad(lambda x: _np_policy_loss(x, old, adv, mask, ref, estimator="k2", **kw), logp)
    np.testing.assert_allclose(grad, expected, atol=1e-6)


def test_hand_worked_clipping_and_metrics():
    # ratios 1.5 and 0.5 (old_logp = 0), eps = 0.2.
    logp = jnp.log(jnp.array([[1.5, 0.5], [1.5, 0.5]]))
    old = jnp.zeros((2, 2))
    mask = jnp.ones((2, 2))
    # A = +1: -(min(1.5, 1.2), min(0.5, 0.8)) = (-1.2, -0.5), upper clip on token 0.
    # A = -1: -(min(-1.5, -1.2), min(-0.5, -0.8)) = (1.5, 0.8), lower clip on token 1.
    loss, metrics = jax.jit(lambda *a: losses.dapo_loss(*a, epsilon_high=0.2))(
        logp, old, jnp.array([1.0, -1.0]), mask
    )
    np.testing.assert_allclose(loss, (-1.2 - 0.5 + 1.5 + 0.8) / 4, rtol=1e-6)
    np.testing.assert_allclose(metrics["clip_fraction_high"], 0.25)
    np.testing.assert_allclose(metrics["clip_fraction_low"], 0.25)
    np.testing.assert_allclose(metrics["clip_fraction"], 0.5)
    np.testing.assert_allclose(metrics["ratio_mean"], 1.0, rtol=1e-6)
    np.testing.assert_allclose(metrics["ratio_min"], 0.5, rtol=1e-6)
    np.testing.assert_allclose(metrics["ratio_max"], 1.5, rtol=1e-6)
    # approx KL(old || new) (k3 with r = old/new): mean of (1/r - 1 + log r).
    expected_kl = np.mean([1 / 1.5 - 1 + np.log(1.5), 2 - 1 + np.log(0.5)])
    np.testing.assert_allclose(metrics["approx_kl"], expected_kl, rtol=1e-5)
    # Dual clip c = 1.4 caps the A = -1, ratio 1.5 token at 1.4.
    loss, metrics = jax.jit(lambda *a: losses.dapo_loss(*a, epsilon_high=0.2, dual_clip=1.4))(
        logp, old, jnp.array([1.0, -1.0]), mask
    )
    np.testing.assert_allclose(loss, (-1.2 - 0.5 + 1.4 + 0.8) / 4, rtol=1e-6)
    np.testing.assert_allclose(metrics["dual_clip_fraction"], 0.25)
    # DAPO's clip-higher (0.28) lets the A = +1 ratio go to 1.28.
    loss, _ = losses.dapo_loss(logp[:1], old[:1], jnp.array([1.0]), mask[:1])
    np.testing.assert_allclose(loss, (-1.28 - 0.5) / 2, rtol=1e-6)


def test_dr_grpo_hand_worked():
    # On-policy, L = T = 4. Row 0: 2 tokens, A = 1 -> sum -2, / 4 = -0.5.
    # Row 1: 3 tokens, A = -0.5 -> sum 1.5, / 4 = 0.375. Mean over rows: -0.0625.
    logp = jnp.zeros((2, 4))
    mask = jnp.array([[1, 1, 0, 0], [1, 1, 1, 0]])
    loss, _ = losses.dr_grpo_loss(logp, logp, jnp.array([1.0, -0.5]), mask)
    np.testing.assert_allclose(loss, -0.0625, rtol=1e-6)
    # The same with GRPO's per-sequence mean: (-1 + 0.5) / 2.
    loss, _ = losses.grpo_loss(logp, logp, jnp.array([1.0, -0.5]), mask, beta=0.0)
    np.testing.assert_allclose(loss, -0.25, rtol=1e-6)


def test_bfloat16_inputs_are_computed_in_float32():
    logp, old, adv, mask, _ = _random_batch(8)
    as16 = lambda x: jnp.asarray(x, jnp.bfloat16)
    loss16, _ = losses.dapo_loss(as16(logp), as16(old), jnp.asarray(adv), jnp.asarray(mask))
    assert loss16.dtype == jnp.float32
    rounded = [np.asarray(as16(x).astype(jnp.float32), np.float64) for x in (logp, old)]
    expected = _np_policy_loss(*rounded, adv, mask, eps_low=0.2, eps_high=0.28)
    np.testing.assert_allclose(loss16, expected, rtol=1e-5)


def test_grpo_hand_worked_kl_term():
    # On-policy (ratio 1), A = 0: the loss is beta * mean k3. ref/pi = 0.5 on one token, 1 on the other.
    logp = jnp.log(jnp.array([[0.5, 0.25]]))
    ref = jnp.log(jnp.array([[0.25, 0.25]]))
    loss, metrics = losses.grpo_loss(logp, logp, jnp.zeros(1), jnp.ones((1, 2)), ref_logp=ref)
    k3 = 0.5 - 1 - np.log(0.5)
    np.testing.assert_allclose(loss, 0.04 * k3 / 2, rtol=1e-6)
    np.testing.assert_allclose(metrics["kl"], k3 / 2, rtol=1e-6)
    np.testing.assert_allclose(metrics["pg_loss"], 0.0, atol=1e-7)


@pytest.mark.parametrize("aggregation", losses.AGGREGATION_MODES)
def test_on_policy_gradient_is_score_function_gradient(aggregation, x64):
    """At ratio 1 the clipped loss's gradient is -A times the aggregation weight."""
    logp, _, adv, mask, _ = _random_batch(11)
    grad = jax.jit(jax.grad(
        lambda x: losses.clipped_policy_loss(
            x, x, jnp.asarray(adv), jnp.asarray(mask), aggregation=aggregation
        )[0]
    ))(jnp.asarray(logp))
    counts = mask.sum(1)
    valid_rows = (counts > 0).sum()
    length = mask.shape[1]
    weights = {
        "token-mean": mask / mask.sum(),
        "seq-mean-token-mean": mask / np.maximum(counts, 1)[:, None] / valid_rows,
        "seq-mean-token-sum": mask / valid_rows,
        "seq-mean-token-sum-norm": mask / length / valid_rows,
    }[aggregation]
    np.testing.assert_allclose(grad, -adv[:, None] * weights, atol=1e-12)


@pytest.mark.parametrize(
    "fn", [losses.grpo_loss, losses.dapo_loss, losses.dr_grpo_loss, losses.ppo_policy_loss]
)
def test_padding_never_changes_value_or_gradient(fn):
    logp, old, adv, mask, ref = _random_batch(3, per_token_adv=True)
    kwargs = dict(ref_logp=jnp.asarray(ref)) if fn is losses.grpo_loss else {}
    if fn is losses.dr_grpo_loss:
        kwargs["norm_length"] = 8  # the constant must not follow the padded length
    pad = 5
    garbage = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30])[None, :].repeat(logp.shape[0], 0)

    def padded(x):
        return jnp.asarray(np.concatenate([x, garbage], axis=1))

    def value_grad(lp, ol, ad, mk, **kw):
        return jax.jit(jax.value_and_grad(lambda x: fn(x, ol, ad, mk, **kw)[0]))(lp)

    value, grad = value_grad(jnp.asarray(logp), jnp.asarray(old), jnp.asarray(adv), jnp.asarray(mask), **kwargs)
    padded_kwargs = dict(kwargs)
    if "ref_logp" in kwargs:
        padded_kwargs["ref_logp"] = padded(ref)
    mask_padded = jnp.asarray(np.concatenate([mask, np.zeros((mask.shape[0], pad), bool)], axis=1))
    value_p, grad_p = value_grad(padded(logp), padded(old), padded(adv), mask_padded, **padded_kwargs)
    np.testing.assert_allclose(value_p, value, rtol=1e-6)
    np.testing.assert_allclose(grad_p[:, : logp.shape[1]], grad, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(grad_p[:, logp.shape[1]:], 0.0)


def test_jit_equals_no_jit():
    logp, old, adv, mask, ref = _random_batch(4)
    args = [jnp.asarray(a, jnp.float32) for a in (logp, old, adv)] + [jnp.asarray(mask)]
    fn = functools.partial(losses.grpo_loss, ref_logp=jnp.asarray(ref, jnp.float32), beta=0.1, dual_clip=3.0)
    eager = jax.value_and_grad(lambda *a: fn(*a)[0])(*args)
    jitted = jax.jit(jax.value_and_grad(lambda *a: fn(*a)[0]))(*args)
    np.testing.assert_allclose(jitted[0], eager[0], rtol=1e-5)
    np.testing.assert_allclose(jitted[1], eager[1], rtol=1e-5, atol=1e-7)
    metrics_eager = fn(*args)[1]
    metrics_jit = jax.jit(lambda *a: fn(*a)[1])(*args)
    for key, value in metrics_eager.items():
        assert value.shape == ()
        np.testing.assert_allclose(metrics_jit[key], value, rtol=1e-5, atol=1e-7)


def test_traced_beta_under_jit():
    logp, old, adv, mask, ref = (jnp.asarray(a, jnp.float32) for a in _random_batch(6))
    f = jax.jit(lambda beta: losses.grpo_loss(logp, old, adv, mask, ref_logp=ref, beta=beta)[0])
    np.testing.assert_allclose(
        f(0.3), losses.grpo_loss(logp, old, adv, mask, ref_logp=ref, beta=0.3)[0], rtol=1e-6
    )


def test_no_valid_tokens_gives_zero():
    z = jnp.zeros((2, 3))
    loss, metrics = jax.jit(lambda a, b: losses.grpo_loss(a, a, b, a, ref_logp=a))(z, jnp.ones(2))
    assert float(loss) == 0.0
    # Every metric of an empty batch is 0 (sums and means over no tokens, ratio extremes included).
    assert {name: float(value) for name, value in metrics.items()} == dict.fromkeys(metrics, 0.0)


def test_bad_input():
    z = jnp.zeros((2, 3))
    a = jnp.ones(2)
    with pytest.raises(ValueError, match="aggregation='mean' is not one of"):
        losses.grpo_loss(z, z, a, z, ref_logp=z, aggregation="mean")
    with pytest.raises(ValueError, match="kl_estimator='kl' is not one of"):
        losses.grpo_loss(z, z, a, z, ref_logp=z, kl_estimator="kl")
    with pytest.raises(ValueError, match="epsilon_low=0"):
        losses.grpo_loss(z, z, a, z, ref_logp=z, epsilon_low=0)
    with pytest.raises(ValueError, match="epsilon_high=-0.1"):
        losses.dapo_loss(z, z, a, z, epsilon_high=-0.1)
    with pytest.raises(ValueError, match="beta=-1"):
        losses.grpo_loss(z, z, a, z, ref_logp=z, beta=-1)
    with pytest.raises(ValueError, match="ref_logp is required when beta=0.04"):
        losses.grpo_loss(z, z, a, z)
    with pytest.raises(ValueError, match="dual_clip=1.0 must be > 1"):
        losses.ppo_policy_loss(z, z, a, z, dual_clip=1.0)
    with pytest.raises(ValueError, match=r"old_logp has shape \(2, 4\)"):
        losses.dapo_loss(z, jnp.zeros((2, 4)), a, z)
    with pytest.raises(ValueError, match=r"advantages has shape \(3,\)"):
        losses.dapo_loss(z, z, jnp.ones(3), z)
    with pytest.raises(ValueError, match="entropy is required"):
        losses.clipped_policy_loss(z, z, a, z, entropy_coef=0.1)
