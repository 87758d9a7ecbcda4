"""`PerAction`, the per-action layout that selection scores in, against plain arrays and NumPy.

The search scores nodes with `PerAction` values (A columns [B], or one stacked
array [A, B] past `UNROLL_MAX` actions); these tests pin its arithmetic and
reductions to the array formulas, and the selection scores built on it to an
independent NumPy reference of the paper's formulas.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from symbiosis_jax import mcts
from symbiosis_jax.mcts import peraction, qtransforms
from symbiosis_jax.mcts.gumbel import gumbel_interior_scores
from symbiosis_jax.mcts.peraction import PerAction
from symbiosis_jax.mcts.puct import puct_scores


@pytest.fixture(params=["columns", "stacked"])
def layout(request, monkeypatch):
    if request.param == "stacked":
        monkeypatch.setattr(peraction, "UNROLL_MAX", 0)
    return request.param


def test_layout_follows_the_number_of_actions():
    assert not PerAction.from_array(jnp.zeros((3, peraction.UNROLL_MAX))).stacked
    wide = PerAction.from_array(jnp.zeros((3, peraction.UNROLL_MAX + 1)))
    assert wide.stacked and wide.parts[0].shape == (peraction.UNROLL_MAX + 1, 3)


def test_reductions_and_arithmetic_match_arrays(layout):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((5, 7)) * rng.choice([1e-3, 1.0, 1e3], (5, 7))).astype(np.float32)
    x[1, 4] = x[1, 2] = x[1].max() + 1  # a tie: the lowest index wins
    x[2] = -np.inf  # no finite value: action 0, as jnp.argmax
    y = rng.standard_normal((5, 7)).astype(np.float32)
    row = rng.standard_normal(5).astype(np.float32)
    p, q = PerAction.from_array(x), PerAction.from_array(y)
    assert p.stacked == (layout == "stacked")
    np.testing.assert_array_equal(p.to_array(), x)
    np.testing.assert_array_equal(p.max(), x.max(-1))
    np.testing.assert_array_equal(p.min(), x.min(-1))
    np.testing.assert_array_equal(p.argmax(), [int(np.argmax(r)) for r in x])
    assert int(p.argmax()[1]) == 2 and int(p.argmax()[2]) == 0
    np.testing.assert_allclose(q.sum(), y.sum(-1), rtol=1e-6)
    np.testing.assert_array_equal((q * row - 2.0).to_array(), y * row[:, None] - 2.0)
    np.testing.assert_array_equal((row / (q + 3.0)).to_array(), row[:, None] / (y + 3.0))
    np.testing.assert_array_equal(
        peraction.where(q > 0, q, row).to_array(), np.where(y > 0, y, row[:, None])
    )
    np.testing.assert_array_equal(peraction.maximum(0.5, q).to_array(), np.maximum(0.5, y))
    np.testing.assert_allclose(
        peraction.softmax(q).to_array(), jax.nn.softmax(jnp.asarray(y)), rtol=2e-7, atol=0
    )
    legal = PerAction.from_array(jnp.asarray(y > 0))
    want = [int(np.argmax(np.where(m, r, -np.inf))) for r, m in zip(y, y > 0)]
    np.testing.assert_array_equal(peraction.masked_argmax(q, legal), want)


def test_integer_sums_are_exact_and_sum_and_max_agree(layout):
    visits = jnp.asarray(np.random.default_rng(1).integers(0, 1000, (6, 7)), jnp.int32)
    total, largest = qtransforms.sum_and_max(PerAction.from_array(visits))
    np.testing.assert_array_equal(total, np.asarray(visits).sum(-1))
    np.testing.assert_array_equal(largest, np.asarray(visits).max(-1))


def test_an_operand_of_another_shape_is_an_error():
    p = PerAction.from_array(jnp.zeros((4, 7)))
    with pytest.raises(ValueError, match=r"batch shape \(4,\)"):
        p + jnp.zeros((4, 7))


def _random_nodes(seed, batch=64, num_actions=7):
    rng = np.random.default_rng(seed)
    visits = rng.integers(0, 4, (batch, num_actions)) * (rng.uniform(size=(batch, num_actions)) < 0.6)
    logits = rng.standard_normal((batch, num_actions)).astype(np.float32)
    legal = rng.uniform(size=(batch, num_actions)) < 0.8
    legal[:, 0] = True
    logits = np.where(legal, logits - logits.max(-1, keepdims=True), np.finfo(np.float32).min)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs = (probs / probs.sum(-1, keepdims=True)).astype(np.float32)
    return qtransforms.NodeStats(
        visits=jnp.asarray(1 + visits.sum(-1), jnp.int32),
        value=jnp.asarray(rng.uniform(-1, 1, batch), jnp.float32),
        raw_value=jnp.asarray(rng.uniform(-1, 1, batch), jnp.float32),
        prior_logits=jnp.asarray(logits),
        children_visits=jnp.asarray(visits, jnp.int32),
        qvalues=jnp.asarray(rng.uniform(-1, 1, (batch, num_actions)), jnp.float32),
        legal_action_mask=jnp.asarray(legal),
        prior_probs=jnp.asarray(probs),
    )


def _numpy_gumbel_interior(node):
    """pi' - N / (1 + sum N) from the paper's formulas, in float64 (Danihelka et al. 2022, App. D)."""
    n = np.asarray(node.children_visits, np.float64)
    q = np.asarray(node.qvalues, np.float64)
    p = np.maximum(np.asarray(node.prior_probs, np.float64), np.finfo(np.float32).tiny)
    total = n.sum(-1)
    visited = n > 0
    sum_p = np.where(visited, p, 0).sum(-1)
    weighted = np.where(visited, p * q, 0).sum(-1) / np.where(sum_p > 0, sum_p, 1)
    mixed = (np.asarray(node.raw_value, np.float64) + total * weighted) / (total + 1)
    completed = np.where(visited, q, mixed[:, None])
    low, high = completed.min(-1, keepdims=True), completed.max(-1, keepdims=True)
    completed = (completed - low) / np.maximum(high - low, 1e-8)
    sigma = (50 + n.max(-1, keepdims=True)) * 0.1 * completed
    x = np.asarray(node.prior_logits, np.float64) + sigma
    improved = np.exp(x - x.max(-1, keepdims=True))
    improved /= improved.sum(-1, keepdims=True)
    return improved - n / (1 + total[:, None])


def _numpy_puct(node, pb_c_init=1.25, pb_c_base=19652.0):
    """qtransform_by_parent_and_siblings(Q) + sqrt(N) c(N) P / (1 + N(a)), in float64."""
    n = np.asarray(node.children_visits, np.float64)
    q = np.asarray(node.qvalues, np.float64)
    value = np.asarray(node.value, np.float64)[:, None]
    visited = n > 0
    low = np.minimum(value, np.where(visited, q, value).min(-1, keepdims=True))
    high = np.maximum(value, np.where(visited, q, value).max(-1, keepdims=True))
    qt = (np.where(visited, q, low) - low) / np.maximum(high - low, 1e-8)
    parent = np.asarray(node.visits, np.float64)[:, None]
    c = pb_c_init + np.log((parent + pb_c_base + 1) / pb_c_base)
    return qt + np.sqrt(parent) * c * np.asarray(node.prior_probs, np.float64) / (n + 1)


@pytest.mark.parametrize("num_actions", [7, 20])
def test_selection_scores_match_a_numpy_reference(num_actions):
    # 7 actions: columns; 20 > UNROLL_MAX: the stacked layout.
    node = _random_nodes(2, num_actions=num_actions)
    legal = np.asarray(node.legal_action_mask)
    cases = [
        (functools.partial(
            gumbel_interior_scores, qtransform_fn=qtransforms.qtransform_completed_by_mix_value
        ), _numpy_gumbel_interior(node)),
        (functools.partial(
            puct_scores, pb_c_init=1.25, pb_c_base=19652.0,
            qtransform_fn=qtransforms.qtransform_by_parent_and_siblings,
        ), _numpy_puct(node)),
    ]
    for score_fn, want in cases:
        batched = jax.jit(lambda n, f=score_fn: f(qtransforms.as_per_action(n)).to_array())(node)
        per_node = jax.jit(jax.vmap(score_fn))(node)  # arrays [A] in, [A] out
        np.testing.assert_allclose(batched, want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(per_node, batched, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(
            peraction.masked_argmax(
                PerAction.from_array(batched), PerAction.from_array(node.legal_action_mask)
            ),
            np.argmax(np.where(legal, want, -np.inf), -1),
        )


@pytest.mark.parametrize("variant", ["puct", "gumbel"])
def test_a_user_written_qtransform_is_batched_with_vmap(variant, tic_tac_toe, random_positions, make_linear_net):
    # A plain function of one node's arrays [A] (not marked as taking PerAction
    # values) goes through apply_qtransform's vmap; wrapping the default in one
    # must give the default's search.
    env = tic_tac_toe
    states = random_positions(env, jax.random.key(5), num_positions=16, max_moves=5)
    params, evaluate_fn = make_linear_net(env, jax.random.key(6))
    if variant == "puct":
        search = functools.partial(mcts.puct_search, dirichlet_fraction=0.0)
        default = qtransforms.qtransform_by_parent_and_siblings
    else:
        search = functools.partial(mcts.gumbel_search, gumbel_scale=0.0)
        default = qtransforms.qtransform_completed_by_mix_value

    def user_fn(node):
        assert node.prior_logits.shape == (env.num_actions,)
        return default(node)

    outs = [
        jax.jit(functools.partial(
            search, env=env, evaluate_fn=evaluate_fn, num_simulations=24, qtransform_fn=fn
        ))(params, jax.random.key(7), states)
        for fn in (default, user_fn)
    ]
    np.testing.assert_array_equal(outs[0].tree.root_visit_counts, outs[1].tree.root_visit_counts)
    np.testing.assert_array_equal(outs[0].action, outs[1].action)
    np.testing.assert_allclose(outs[0].action_weights, outs[1].action_weights, rtol=1e-6, atol=1e-7)
