"""make_optimizer / make_schedule against hand-worked values and a numpy AdamW."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from symbiosis_jax.training import make_optimizer, make_schedule


def _cfg(**kw):
    base = dict(
        learning_rate=1e-2, schedule="cosine", warmup_steps=2, total_steps=10,
        min_lr_ratio=0.1, weight_decay=0.1, weight_decay_on="matrices",
        b1=0.9, b2=0.99, eps=1e-8, max_grad_norm=1.0,
    )
    base.update(kw)
    return ml_collections.ConfigDict(base)


def test_schedule_warmup_then_cosine():
    sched = make_schedule(_cfg())
    # warm-up: 0, 0.005 at steps 0, 1; peak at 2.
    np.testing.assert_allclose(float(sched(0)), 0.0, atol=1e-12)
    np.testing.assert_allclose(float(sched(1)), 0.005, rtol=1e-6)
    np.testing.assert_allclose(float(sched(2)), 0.01, rtol=1e-6)
    # cosine over 8 steps from 0.01 down to 0.001: step 6 is the midpoint.
    np.testing.assert_allclose(float(sched(6)), 0.001 + 0.009 * 0.5, rtol=1e-6)
    s = 4
    expected = 0.01 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - 2) / 8)))
    np.testing.assert_allclose(float(sched(s)), expected, rtol=1e-6)
    np.testing.assert_allclose(float(sched(10)), 0.001, rtol=1e-6)
    np.testing.assert_allclose(float(sched(50)), 0.001, rtol=1e-6)


def test_constant_schedule_without_warmup():
    sched = make_schedule(_cfg(schedule="constant", warmup_steps=0, total_steps=None))
    assert float(sched(0)) == pytest.approx(0.01)
    assert float(sched(1000)) == pytest.approx(0.01)


def _numpy_adamw(params, grads_seq, *, lr_fn, b1, b2, eps, wd, clip, decay_mask):
    p = {k: v.astype(np.float64) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(x) for k, x in p.items()}
    for t, g in enumerate(grads_seq):
        g = {k: x.astype(np.float64) for k, x in g.items()}
        norm = math.sqrt(sum(float((x**2).sum()) for x in g.values()))
        if clip and norm > clip:
            g = {k: x * clip / norm for k, x in g.items()}
        lr = lr_fn(t)
        for k in p:
            m[k] = b1 * m[k] + (1 - b1) * g[k]
            v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
            mhat = m[k] / (1 - b1 ** (t + 1))
            vhat = v[k] / (1 - b2 ** (t + 1))
            upd = mhat / (np.sqrt(vhat) + eps)
            if decay_mask[k]:
                upd = upd + wd * p[k]
            p[k] = p[k] - lr * upd
    return p


@pytest.mark.parametrize("weight_decay_on", ["matrices", "all"])
def test_adamw_matches_numpy_reference(weight_decay_on):
    cfg = _cfg(weight_decay_on=weight_decay_on, max_grad_norm=0.5)
    tx = make_optimizer(cfg)
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((3, 2)).astype(np.float32), "b": rng.standard_normal(2).astype(np.float32)}
    grads_seq = [
        {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()} for _ in range(4)
    ]
    p = jax.tree.map(jnp.asarray, params)
    state = tx.init(p)
    update = jax.jit(tx.update)
    for g in grads_seq:
        upd, state = update(jax.tree.map(jnp.asarray, g), state, p)
        p = jax.tree.map(lambda a, b: a + b, p, upd)
    sched = make_schedule(cfg)
    expected = _numpy_adamw(
        params, grads_seq, lr_fn=lambda t: float(sched(t)), b1=0.9, b2=0.99, eps=1e-8, wd=0.1,
        clip=0.5, decay_mask={"w": True, "b": weight_decay_on == "all"},
    )
    for k in params:
        np.testing.assert_allclose(np.asarray(p[k]), expected[k], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("max_grad_norm", [0.0, None, 1.0])
def test_max_grad_norm_zero_or_none_turns_clipping_off(max_grad_norm):
    # Adam's first step ignores the gradient's scale, so two steps of different sizes
    # (norms 200 and 2): clipping both to norm 1 gives another second step than no clipping.
    cfg = _cfg(max_grad_norm=max_grad_norm, weight_decay=0.0, warmup_steps=0, schedule="constant",
               total_steps=None)
    tx = make_optimizer(cfg)
    params = {"w": np.zeros((2, 2), np.float32)}
    grads_seq = [{"w": np.full((2, 2), 100.0, np.float32)}, {"w": np.full((2, 2), 1.0, np.float32)}]
    p, state = jax.tree.map(jnp.asarray, params), tx.init(params)
    for g in grads_seq:
        upd, state = tx.update(jax.tree.map(jnp.asarray, g), state, p)
        p = jax.tree.map(lambda a, b: a + b, p, upd)
    def reference(clip):
        return _numpy_adamw(params, grads_seq, lr_fn=lambda t: 0.01, b1=0.9, b2=0.99, eps=1e-8, wd=0.0,
                            clip=clip, decay_mask={"w": False})["w"]

    np.testing.assert_allclose(np.asarray(p["w"]), reference(max_grad_norm or 0.0), rtol=1e-5)
    # The references with and without clipping differ, so the comparison tells them apart.
    assert np.abs(reference(1.0) - reference(0.0)).max() > 1e-3


@pytest.mark.parametrize(
    "override, match",
    [
        (dict(learning_rate=0.0), r"optimizer.learning_rate=0.0 must be a positive float"),
        (dict(schedule="linear"), r"optimizer.schedule='linear' is not one of \('cosine', 'constant'\)"),
        (dict(warmup_steps=-1), r"optimizer.warmup_steps=-1 must be an int >= 0"),
        (dict(total_steps=2), r"optimizer.total_steps=2 must be an int > warmup_steps=2"),
        (dict(b2=1.0), r"optimizer.b2=1.0 must lie in \[0, 1\)"),
        (dict(weight_decay=-0.1), r"optimizer.weight_decay=-0.1 must be >= 0"),
        (dict(weight_decay_on="bias"), r"optimizer.weight_decay_on='bias' is not one of"),
        (dict(min_lr_ratio=2.0), r"optimizer.min_lr_ratio=2.0 must lie in \[0, 1\]"),
        (dict(max_grad_norm=-1.0), r"optimizer.max_grad_norm=-1.0 must be > 0"),
        # Were accepted (a bool is an int) or a TypeError from a comparison.
        (dict(warmup_steps=True), r"optimizer.warmup_steps=True must be a number"),
        (dict(b1="0.9"), r"optimizer.b1='0.9' must be a number"),
        (dict(max_grad_norm="off"), r"optimizer.max_grad_norm='off' must be a number or None"),
    ],
)
def test_validation_names_the_field(override, match):
    with pytest.raises(ValueError, match=match):
        make_optimizer(_cfg(**override))


def test_unknown_and_missing_fields():
    with pytest.raises(ValueError, match=r"unknown fields \['lr'\]"):
        make_optimizer({"learning_rate": 1e-3, "lr": 1e-3, "total_steps": 10})
    with pytest.raises(ValueError, match=r"needs learning_rate"):
        make_optimizer({"total_steps": 10})


def test_common_optimizer_config_is_valid():
    from configs import common

    cfg = common.optimizer_config(learning_rate=3e-4, warmup_steps=3, total_steps=20, weight_decay=0.1,
                                  max_grad_norm=1.0)
    tx = make_optimizer(cfg)
    # 12 steps (warm-up and cosine, clipped and not) against the numpy AdamW with the config's values.
    rng = np.random.default_rng(1)
    params = {"w": rng.standard_normal((2, 2)).astype(np.float32), "b": rng.standard_normal(2).astype(np.float32)}
    grads_seq = [{k: (0.2 + 2.0 * (t % 2)) * rng.standard_normal(v.shape).astype(np.float32)
                  for k, v in params.items()} for t in range(12)]
    p, state = jax.tree.map(jnp.asarray, params), tx.init(params)
    update = jax.jit(tx.update)
    for g in grads_seq:
        upd, state = update(jax.tree.map(jnp.asarray, g), state, p)
        p = jax.tree.map(lambda a, b: a + b, p, upd)
    sched = make_schedule(cfg)
    assert float(sched(0)) == 0.0 and float(sched(3)) == pytest.approx(3e-4)
    expected = _numpy_adamw(params, grads_seq, lr_fn=lambda t: float(sched(t)), b1=cfg.b1, b2=cfg.b2,
                            eps=cfg.eps, wd=0.1, clip=1.0,
                            decay_mask={"w": True, "b": cfg.weight_decay_on == "all"})
    for k in params:
        np.testing.assert_allclose(np.asarray(p[k]), expected[k], rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match=r"optimizer_config: unknown field 'lr'"):
        common.optimizer_config(lr=1.0)
