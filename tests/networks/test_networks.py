"""Policy-value networks: shapes, a numpy reference for the MLP, learning, clear errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from symbiosis_jax.networks import MLP, ResNet, make_network


def _boards(key, p, shape):
    """Random 0/1 boards. Drawn flat (the same bits as a draw of `shape`): a rank-4 draw
    takes seconds to compile on the CPU."""
    return jax.random.bernoulli(key, p, (int(np.prod(shape)),)).reshape(shape)


def test_mlp_matches_numpy_reference():
    net = make_network("mlp", obs_shape=(3, 3, 2), num_actions=9, hidden_sizes=(16, 8), seed=3)
    obs = _boards(jax.random.PRNGKey(0), 0.3, (5, 3, 3, 2))
    logits, value = net(obs)
    x = np.asarray(obs, np.float64).reshape(5, -1)
    for layer in net.layers:
        x = np.maximum(x @ np.asarray(layer.kernel[...]) + np.asarray(layer.bias[...]), 0.0)
    ref_logits = x @ np.asarray(net.policy_out.kernel[...]) + np.asarray(net.policy_out.bias[...])
    ref_value = np.tanh(x @ np.asarray(net.value_out.kernel[...]) + np.asarray(net.value_out.bias[...]))[:, 0]
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5, atol=1e-5)


def _np_conv_same(x, kernel, bias=None):
    """'SAME' convolution, stride 1: x [B, H, W, C], kernel [kh, kw, C, O] (HWIO)."""
    kh, kw = kernel.shape[:2]
    pad = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    h, w = x.shape[1:3]
    out = sum(np.einsum("bhwc,co->bhwo", pad[:, i:i + h, j:j + w], kernel[i, j])
              for i in range(kh) for j in range(kw))
    return out if bias is None else out + bias


def _np_layer_norm(x, scale, bias, eps=1e-6):
    mean = x.mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(x.var(-1, keepdims=True) + eps) * scale + bias


def test_resnet_matches_numpy_reference():
    """Stem, residual blocks (skip included), both heads, with random values in every
    parameter (layer-norm scales and biases too, which start at 1 and 0)."""
    net = ResNet(obs_shape=(6, 7, 2), num_actions=7, num_channels=4, num_blocks=2, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(net)
    leaves, treedef = jax.tree.flatten(state)
    keys = jax.random.split(jax.random.PRNGKey(4), len(leaves))
    leaves = [0.5 * jax.random.normal(k, (x.size,), x.dtype).reshape(x.shape) + (x if x.ndim > 1 else 0)
              for k, x in zip(keys, leaves)]
    net = nnx.merge(graphdef, jax.tree.unflatten(treedef, leaves))
    obs = _boards(jax.random.PRNGKey(1), 0.3, (3, 6, 7, 2))
    logits, value = net(obs)

    def p(x):
        return np.asarray(x[...], np.float64)

    x = np.asarray(obs, np.float64)
    x = np.maximum(_np_layer_norm(_np_conv_same(x, p(net.stem.kernel)), p(net.stem_norm.scale),
                                  p(net.stem_norm.bias)), 0)
    for blk in net.blocks:
        y = _np_layer_norm(_np_conv_same(x, p(blk.conv1.kernel)), p(blk.norm1.scale), p(blk.norm1.bias))
        y = _np_layer_norm(_np_conv_same(np.maximum(y, 0), p(blk.conv2.kernel)), p(blk.norm2.scale),
                           p(blk.norm2.bias))
        x = np.maximum(x + y, 0)
    pol = np.maximum(_np_conv_same(x, p(net.policy_conv.kernel), p(net.policy_conv.bias)), 0).reshape(3, -1)
    ref_logits = pol @ p(net.policy_out.kernel) + p(net.policy_out.bias)
    v = np.maximum(_np_conv_same(x, p(net.value_conv.kernel), p(net.value_conv.bias)), 0).reshape(3, -1)
    v = np.maximum(v @ p(net.value_hidden.kernel) + p(net.value_hidden.bias), 0)
    ref_value = np.tanh(v @ p(net.value_out.kernel) + p(net.value_out.bias))[:, 0]
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(value, ref_value, rtol=1e-4, atol=1e-5)
    assert np.abs(ref_value).max() > 0.05  # the value head is not stuck at 0


@pytest.mark.parametrize("obs_shape,num_actions", [((6, 7, 2), 7), ((9, 9, 17), 82)])
def test_resnet_shapes_and_jit(obs_shape, num_actions):
    net = ResNet(obs_shape=obs_shape, num_actions=num_actions, num_channels=8, num_blocks=2, rngs=nnx.Rngs(0))
    obs = _boards(jax.random.PRNGKey(1), 0.3, (4, *obs_shape))
    logits, value = net(obs)
    assert logits.shape == (4, num_actions) and logits.dtype == jnp.float32
    assert value.shape == (4,)
    assert np.all(np.abs(np.asarray(value)) <= 1.0)
    graphdef, state = nnx.split(net)
    jit_logits, jit_value = jax.jit(lambda s, o: nnx.merge(graphdef, s)(o))(state, obs)
    np.testing.assert_allclose(jit_logits, logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jit_value, value, rtol=1e-5, atol=1e-5)
    # Different boards give different outputs (the trunk sees the input).
    assert not np.allclose(logits[0], logits[1])


@pytest.mark.parametrize("name,kwargs", [("mlp", {"hidden_sizes": (32,)}), ("resnet", {"num_channels": 8, "num_blocks": 1})])
def test_networks_fit_a_fixed_target(name, kwargs):
    net = make_network(name, obs_shape=(3, 3, 2), num_actions=9, **kwargs)
    graphdef, params = nnx.split(net)
    obs = _boards(jax.random.PRNGKey(2), 0.4, (16, 3, 3, 2))
    target_policy = jax.nn.one_hot(jnp.arange(16) % 9, 9)
    target_value = jnp.where(jnp.arange(16) % 2 == 0, 0.5, -0.5)

    def loss_fn(p):
        logits, value = nnx.merge(graphdef, p)(obs)
        ce = -jnp.sum(target_policy * jax.nn.log_softmax(logits), axis=-1)
        return jnp.mean(ce) + jnp.mean((value - target_value) ** 2)

    opt = optax.adam(1e-2)
    opt_state = opt.init(params)

    @jax.jit
    def step(p, s):
        loss, g = jax.value_and_grad(loss_fn)(p)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s, loss

    first = float(loss_fn(params))
    for _ in range(150):
        params, opt_state, loss = step(params, opt_state)
    assert float(loss) < 0.2 * first


def test_bad_arguments():
    with pytest.raises(ValueError, match="network='transformer' is not one of \\('mlp', 'resnet'\\)"):
        make_network("transformer", obs_shape=(3, 3, 2), num_actions=9)
    with pytest.raises(ValueError, match="obs_shape"):
        make_network("resnet", obs_shape=(9,), num_actions=9)
    with pytest.raises(ValueError, match="hidden_sizes"):
        MLP(obs_shape=(9,), num_actions=9, hidden_sizes=(0,), rngs=nnx.Rngs(0))
    # Were: zero blocks built silently; a zero-width trunk.
    with pytest.raises(ValueError, match=r"num_blocks=-1 must be an int >= 0"):
        make_network("resnet", obs_shape=(3, 3, 2), num_actions=9, num_blocks=-1)
    with pytest.raises(ValueError, match=r"num_channels=0 must be an int >= 1"):
        make_network("resnet", obs_shape=(3, 3, 2), num_actions=9, num_channels=0)


def test_conv_kernel_init_is_flax_lecun_normal_bit_for_bit():
    """The ResNet's kernels are drawn as matrices (fast to compile on the CPU); the numbers
    are exactly those of Flax's default conv init, so seeds give the networks they gave."""
    from symbiosis_jax.networks.resnet import conv_kernel_init

    key = jax.random.key(7)
    np.testing.assert_array_equal(np.asarray(conv_kernel_init(key, (3, 3, 17, 4))),
                                  np.asarray(nnx.initializers.lecun_normal()(key, (3, 3, 17, 4))))
    net = ResNet(obs_shape=(6, 7, 2), num_actions=7, num_channels=8, num_blocks=1, rngs=nnx.Rngs(3))
    ref = nnx.Conv(2, 8, (3, 3), use_bias=False, rngs=nnx.Rngs(3))  # the stem's key is the first drawn
    np.testing.assert_array_equal(np.asarray(net.stem.kernel[...]), np.asarray(ref.kernel[...]))
