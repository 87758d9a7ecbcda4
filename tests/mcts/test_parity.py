"""Parity with mctx: same network outputs, environment step and constants.

The variants with root noise (Dirichlet, Gumbel) also match, because the keys
are split as mctx splits them; they are marked slow to keep the suite short.

Both searches see the same masked logits and values (built by
`symbiosis_jax.mcts.mctx_compat`). mctx breaks score ties with 1e-7 random
noise and we break them by the lowest index; a random linear network with a
bias gives continuous, distinct scores, so ties (and thus differences) do not
arise. mctx masks illegal actions only at the root, but below the root an
illegal action has prior 0 and unvisited Q-score 0 while every legal one
scores > 0, so it is never chosen there either.
"""

import functools

import jax
import mctx
import numpy as np
import pytest

from symbiosis_jax import mcts
from symbiosis_jax.mcts import mctx_compat, peraction

NUM_POSITIONS = 100
NUM_SIMULATIONS = 32


_MAX_MOVES = {"tic_tac_toe": 7, "connect_four": 30}
_CACHE = {}

# Selection scores nodes with A <= peraction.UNROLL_MAX actions column by
# column and wider ones (othello, go) as one stacked array; "stacked" runs the
# latter layout on these games by lowering the threshold.
GAMES_AND_LAYOUTS = [
    ("tic_tac_toe", "columns"),
    ("connect_four", "columns"),
    ("connect_four", "stacked"),
    pytest.param("tic_tac_toe", "stacked", marks=pytest.mark.slow),
]


@pytest.fixture
def use_layout(monkeypatch):
    def use(layout):
        if layout == "stacked":
            monkeypatch.setattr(peraction, "UNROLL_MAX", 0)

    return use


def _setup(game, random_positions, make_linear_net):
    """Positions, network and mctx inputs for `game`, built once per session."""
    if game not in _CACHE:
        env = mcts.pgx_env(game)
        states = random_positions(
            env, jax.random.key(1), num_positions=NUM_POSITIONS, max_moves=_MAX_MOVES[game]
        )
        params, evaluate_fn = make_linear_net(env, jax.random.key(2))
        root, invalid = mctx_compat.mctx_root(env, evaluate_fn, params, jax.random.key(0), states)
        recurrent_fn = mctx_compat.mctx_recurrent_fn(env, evaluate_fn)
        _CACHE[game] = env, states, params, evaluate_fn, root, invalid, recurrent_fn
    return _CACHE[game]


@pytest.mark.parametrize("game, layout", GAMES_AND_LAYOUTS)
@pytest.mark.parametrize(
    "dirichlet_fraction", [0.0, pytest.param(0.25, marks=pytest.mark.slow)]
)
def test_puct_matches_mctx_muzero_policy(
    game, layout, dirichlet_fraction, random_positions, make_linear_net, use_layout
):
    use_layout(layout)
    env, states, params, evaluate_fn, root, invalid, recurrent_fn = _setup(
        game, random_positions, make_linear_net
    )
    key = jax.random.key(3)
    theirs = jax.jit(
        functools.partial(
            mctx.muzero_policy, recurrent_fn=recurrent_fn, num_simulations=NUM_SIMULATIONS,
            dirichlet_fraction=dirichlet_fraction, dirichlet_alpha=0.3, temperature=1.0,
        )
    )(params, key, root, invalid_actions=invalid)
    ours = jax.jit(
        functools.partial(
            mcts.puct_search, env=env, evaluate_fn=evaluate_fn, num_simulations=NUM_SIMULATIONS,
            dirichlet_fraction=dirichlet_fraction, dirichlet_alpha=0.3, temperature=1.0,
        )
    )(params, key, states)
    their_visits = np.asarray(theirs.search_tree.summary().visit_counts)
    our_visits = np.asarray(ours.tree.root_visit_counts)
    mismatched = np.flatnonzero((their_visits != our_visits).any(-1))
    assert mismatched.size == 0, (mismatched, their_visits[mismatched[:3]], our_visits[mismatched[:3]])
    assert our_visits.sum(-1).tolist() == [NUM_SIMULATIONS] * NUM_POSITIONS
    np.testing.assert_array_equal(np.asarray(ours.action), np.asarray(theirs.action))
    np.testing.assert_allclose(ours.action_weights, theirs.action_weights, rtol=0, atol=0)
    np.testing.assert_allclose(
        ours.root_value, theirs.search_tree.summary().value, rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("game, layout", GAMES_AND_LAYOUTS)
@pytest.mark.parametrize("gumbel_scale", [0.0, pytest.param(1.0, marks=pytest.mark.slow)])
def test_gumbel_matches_mctx_gumbel_muzero_policy(
    game, layout, gumbel_scale, random_positions, make_linear_net, use_layout
):
    use_layout(layout)
    env, states, params, evaluate_fn, root, invalid, recurrent_fn = _setup(
        game, random_positions, make_linear_net
    )
    key = jax.random.key(4)
    considered = 4
    theirs = jax.jit(
        functools.partial(
            mctx.gumbel_muzero_policy, recurrent_fn=recurrent_fn,
            num_simulations=NUM_SIMULATIONS, max_num_considered_actions=considered,
            gumbel_scale=gumbel_scale,
        )
    )(params, key, root, invalid_actions=invalid)
    ours = jax.jit(
        functools.partial(
            mcts.gumbel_search, env=env, evaluate_fn=evaluate_fn,
            num_simulations=NUM_SIMULATIONS, max_num_considered_actions=considered,
            gumbel_scale=gumbel_scale,
        )
    )(params, key, states)
    np.testing.assert_array_equal(
        np.asarray(ours.tree.root_visit_counts), np.asarray(theirs.search_tree.summary().visit_counts)
    )
    np.testing.assert_array_equal(np.asarray(ours.action), np.asarray(theirs.action))
    np.testing.assert_allclose(ours.action_weights, theirs.action_weights, rtol=1e-6, atol=1e-7)
