"""A sharded GRPO step equals the unsharded step on 8 fake CPU devices."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from symbiosis_jax import losses, parallel

B, T, V, D, F = 16, 4, 16, 8, 16


class TokenPolicy(nnx.Module):
    """Embedding -> MLP -> vocab logits, every parameter named by logical axes."""

    def __init__(self, *, rngs: nnx.Rngs):
        init = nnx.initializers.normal(0.5)
        self.embed = nnx.Param(
            init(rngs.params(), (V, D)), out_sharding=("vocab", "embed")
        )
        self.w1 = nnx.Param(init(rngs.params(), (D, F)), out_sharding=("embed", "mlp"))
        self.b1 = nnx.Param(jnp.full((F,), 0.1), out_sharding=("mlp",))
        self.w2 = nnx.Param(init(rngs.params(), (F, V)), out_sharding=("mlp", "vocab"))

    def __call__(self, tokens_bt):
        h_btd = self.embed[...][tokens_bt]
        h_btf = jnp.tanh(h_btd @ self.w1[...] + self.b1[...][None, None, :])
        return h_btf @ self.w2[...]  # [B, T, V]


def _batch():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, V, size=(B, T)).astype(np.int32)
    actions = rng.integers(0, V, size=(B, T)).astype(np.int32)
    old_logp = (-np.log(V) + 0.1 * rng.standard_normal((B, T))).astype(np.float32)
    ref_logp = (-np.log(V) + 0.1 * rng.standard_normal((B, T))).astype(np.float32)
    advantages = rng.standard_normal((B,)).astype(np.float32)
    mask = (rng.random((B, T)) < 0.8).astype(np.float32)
    mask[:, 0] = 1.0
    return dict(
        tokens=tokens,
        actions=actions,
        old_logp=old_logp,
        ref_logp=ref_logp,
        advantages=advantages,
        completion_mask=mask,
    )


def _loss_fn(model, batch):
    logits_btv = model(batch["tokens"])
    logp_btv = jax.nn.log_softmax(logits_btv, axis=-1)
    logp_bt = jnp.take_along_axis(logp_btv, batch["actions"][..., None], axis=-1)[..., 0]
    loss, _ = losses.grpo_loss(
        logp_bt,
        batch["old_logp"],
        batch["advantages"],
        batch["completion_mask"],
        ref_logp=batch["ref_logp"],
        beta=0.04,
    )
    return loss


_TX = optax.adamw(1e-2, weight_decay=0.01)


def _train_step(graphdef, state, opt_state, batch):
    """One loss-and-gradient step plus an optimizer update (pure in its inputs)."""

    def loss_of_state(s):
        return _loss_fn(nnx.merge(graphdef, s), batch)

    loss, grads = jax.value_and_grad(loss_of_state)(state)
    updates, opt_state = _TX.update(grads, opt_state, state)
    state = optax.apply_updates(state, updates)
    return loss, grads, state, opt_state


def _model():
    return TokenPolicy(rngs=nnx.Rngs(0))


@pytest.fixture(scope="module")
def reference():
    """Unsharded result: one device, no mesh."""
    with nnx.use_eager_sharding(False):
        model = _model()
    graphdef, state = nnx.split(model)
    opt_state = _TX.init(state)
    batch = jax.tree.map(jnp.asarray, _batch())
    loss, grads, new_state, _ = jax.jit(functools.partial(_train_step, graphdef))(
        state, opt_state, batch
    )
    return jax.device_get((loss, grads, new_state))


def _assert_close(actual, expected):
    a, e = np.asarray(actual), np.asarray(expected)
    scale = max(float(np.max(np.abs(e))), 1e-30)
    np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize(
    "axes, kernel_spec",
    [
        ((("data", 8), ("fsdp", 1), ("tensor", 1)), ("fsdp", "tensor")),
        ((("data", 4), ("fsdp", 1), ("tensor", 2)), ("fsdp", "tensor")),
        ((("data", 2), ("fsdp", 4), ("tensor", 1)), ("fsdp", "tensor")),
        ((("data", -1), ("fsdp", 2), ("tensor", 2)), ("fsdp", "tensor")),
    ],
)
def test_sharded_step_matches_unsharded(reference, axes, kernel_spec):
    ref_loss, ref_grads, ref_state = reference
    mesh = parallel.make_mesh(axes)
    sizes = dict(zip(mesh.axis_names, mesh.axis_sizes))
    model = parallel.create_sharded_model(_model, mesh)
    graphdef, state = nnx.split(model)

    # Parameters really are sharded by their logical axes (no silent replication).
    w1 = state["w1"][...]
    assert w1.sharding.spec == jax.sharding.PartitionSpec(*kernel_spec)
    expected_shard = (D // sizes["fsdp"], F // sizes["tensor"])
    assert {s.data.shape for s in w1.addressable_shards} == {expected_shard}

    state_sh = parallel.state_shardings(state, mesh)
    opt_state = parallel.sharded_optimizer_init(_TX, state, mesh)
    opt_sh = jax.tree.map(lambda x: x.sharding, opt_state)
    assert opt_state[0].mu["w1"][...].sharding.spec == w1.sharding.spec
    assert opt_state[0].count.sharding.spec == jax.sharding.PartitionSpec()
    batch = parallel.shard_batch(_batch(), mesh)
    batch_sh = jax.tree.map(lambda x: x.sharding, batch)
    data_size = sizes["data"] * sizes["fsdp"]
    assert batch["tokens"].sharding.spec == jax.sharding.PartitionSpec(("data", "fsdp"), None)
    assert {s.data.shape for s in batch["tokens"].addressable_shards} == {(B // data_size, T)}

    step = jax.jit(
        functools.partial(_train_step, graphdef),
        in_shardings=(state_sh, opt_sh, batch_sh),
        out_shardings=(parallel.replicated(mesh), state_sh, state_sh, opt_sh),
        donate_argnums=(0, 1),
    )
    loss, grads, new_state, _ = step(state, opt_state, batch)

    assert grads["w2"][...].sharding.spec == jax.sharding.PartitionSpec("tensor", None)
    _assert_close(loss, ref_loss)
    for name in ("embed", "w1", "b1", "w2"):
        _assert_close(grads[name][...], ref_grads[name][...])
        _assert_close(new_state[name][...], ref_state[name][...])
    # The gradient is not trivially zero (the comparison means something).
    assert float(np.max(np.abs(np.asarray(ref_grads["w1"][...])))) > 1e-4


def test_unsharded_reference_matches_numpy(reference):
    """The reference loss itself, recomputed in numpy from the same parameters."""
    ref_loss, _, _ = reference
    with nnx.use_eager_sharding(False):
        model = _model()
    p = {k: np.asarray(getattr(model, k)[...], np.float64) for k in ("embed", "w1", "b1", "w2")}
    b = _batch()
    h = np.tanh(p["embed"][b["tokens"]] @ p["w1"] + p["b1"])
    logits = h @ p["w2"]
    logits = logits - logits.max(-1, keepdims=True)
    logp_all = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    logp = np.take_along_axis(logp_all, b["actions"][..., None], -1)[..., 0]
    ratio = np.exp(logp - b["old_logp"])
    adv = b["advantages"][:, None]
    surrogate = np.minimum(ratio * adv, np.clip(ratio, 0.8, 1.2) * adv)
    log_r = b["ref_logp"] - logp
    kl = np.exp(log_r) - log_r - 1.0
    per_token = -surrogate + 0.04 * kl
    m = b["completion_mask"]
    expected = np.mean((per_token * m).sum(-1) / m.sum(-1))
    np.testing.assert_allclose(float(ref_loss), expected, rtol=1e-5)
