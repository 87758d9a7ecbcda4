"""The per-node storage and the fused reductions used by selection.

Selection reads the stored prior probabilities and one-pass reductions instead
of recomputing them; these tests pin both to the plain formulas bit for bit.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from symbiosis_jax import mcts
from symbiosis_jax.mcts import qtransforms


def test_sum_and_max_hand_worked():
    x = jnp.array([[3, 0, 7, 1], [0, 0, 0, 0], [-5, 2, -1, 2]], jnp.int32)
    total, largest = jax.jit(qtransforms.sum_and_max)(x)
    np.testing.assert_array_equal(total, [11, 0, -2])
    np.testing.assert_array_equal(largest, [7, 0, 2])


def test_min_and_max_match_jnp_on_random_rows():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((64, 7)) * rng.choice([1e-3, 1.0, 1e3], (64, 7))).astype(np.float32)
    x[3, 2] = -np.inf
    x[5] = np.float32(-0.0)
    low, high = jax.jit(qtransforms.min_and_max)(jnp.asarray(x))
    np.testing.assert_array_equal(low, x.min(-1))
    np.testing.assert_array_equal(high, x.max(-1))
    assert float(low[3]) == -np.inf


def test_completed_q_and_total_visits_matches_the_qtransform():
    rng = np.random.default_rng(1)
    visits = jnp.asarray(rng.integers(0, 4, (32, 7)), jnp.int32)
    node = qtransforms.NodeStats(
        visits=1 + visits.sum(-1),
        value=jnp.asarray(rng.uniform(-1, 1, 32), jnp.float32),
        raw_value=jnp.asarray(rng.uniform(-1, 1, 32), jnp.float32),
        prior_logits=jnp.asarray(rng.standard_normal((32, 7)), jnp.float32),
        children_visits=visits,
        qvalues=jnp.asarray(rng.uniform(-1, 1, (32, 7)), jnp.float32),
        legal_action_mask=jnp.ones((32, 7), bool),
    )
    sigma, total = jax.jit(jax.vmap(qtransforms.completed_q_and_total_visits))(node)
    want = jax.jit(jax.vmap(qtransforms.qtransform_completed_by_mix_value))(node)
    np.testing.assert_array_equal(sigma, want)
    np.testing.assert_array_equal(total, np.asarray(visits).sum(-1))
    # Stored probabilities give the recomputed softmax's values: the same bits with jax 0.10,
    # within an ulp or two with 0.11 (XLA fuses the two softmaxes differently).
    with_probs = node._replace(prior_probs=jax.nn.softmax(node.prior_logits))
    np.testing.assert_allclose(
        jax.jit(jax.vmap(qtransforms.qtransform_completed_by_mix_value))(with_probs), want,
        rtol=1e-6, atol=0,
    )


def test_tree_stores_softmax_of_the_prior_and_legality(connect_four, random_positions, make_linear_net):
    env = connect_four
    states = random_positions(env, jax.random.key(3), num_positions=3, max_moves=30)
    params, evaluate_fn = make_linear_net(env, jax.random.key(4))
    search = jax.jit(functools.partial(
        mcts.gumbel_search, env=env, evaluate_fn=evaluate_fn, num_simulations=16
    ))
    tree = jax.tree.map(np.asarray, search(params, jax.random.key(5), states).tree)
    used = np.arange(tree.num_nodes)[None, :] < tree.num_used[:, None]
    logits = tree.children_prior_logits[used]
    np.testing.assert_array_equal(
        tree.children_prior_probs[used], np.asarray(jax.jit(jax.nn.softmax)(logits))
    )
    legal = tree.legal_action_mask[used]
    assert legal.dtype == bool
    np.testing.assert_array_equal(logits == np.finfo(np.float32).min, ~legal)
    # The root's row agrees with the environment's mask.
    np.testing.assert_array_equal(
        tree.legal_action_mask[:, 0], np.asarray(jax.vmap(env.legal_action_mask)(states))
    )
