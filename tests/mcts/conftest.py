"""Fixtures for the tree-search tests: random positions and a random linear network.

These tests compile with `fast_compiles` (see `FAST_COMPILE_FOLDERS` in tests/conftest.py).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from symbiosis_jax import mcts


def _random_positions(env, key, *, num_positions, max_moves):
    """Non-terminal states after 0..max_moves uniformly random legal moves, leaves [P, ...]."""
    num_tries = 2 * num_positions + 16
    init_key, len_key, play_key = jax.random.split(key, 3)
    states = jax.vmap(env.init)(jax.random.split(init_key, num_tries))
    lengths = jax.random.randint(len_key, (num_tries,), 0, max_moves + 1)

    def play(state, length, key):
        def body(i, s):
            legal = env.legal_action_mask(s)
            action = jax.random.categorical(jax.random.fold_in(key, i), jnp.where(legal, 0.0, -jnp.inf))
            moved, _ = env.step(s, action)
            go = jnp.logical_and(i < length, ~env.terminated(s))
            return jax.tree.map(lambda a, b: jnp.where(go, a, b), moved, s)

        return jax.lax.fori_loop(0, max_moves, body, state)

    states = jax.jit(jax.vmap(play))(states, lengths, jax.random.split(play_key, num_tries))
    alive = np.flatnonzero(~np.asarray(jax.vmap(env.terminated)(states)))
    assert alive.size >= num_positions, "too few non-terminal positions"
    return jax.tree.map(lambda x: x[alive[:num_positions]], states)


@pytest.fixture(scope="session")
def random_positions():
    """Factory: random_positions(env, key, num_positions=, max_moves=) -> states [P, ...]."""
    return _random_positions


def linear_net(env, key, *, scale=1.0):
    """A fixed random linear policy-value head on the flattened observation.

    Random continuous outputs make exact score ties (which mctx breaks with
    random noise, we by lowest index) practically impossible.
    """
    init = env.init(jax.random.key(0))
    num_features = int(np.prod(env.observation(init).shape))
    k1, k2, k3, k4 = jax.random.split(key, 4)
    params = {
        "w_policy": scale * jax.random.normal(k1, (num_features, env.num_actions)),
        "b_policy": scale * jax.random.normal(k2, (env.num_actions,)),
        "w_value": jax.random.normal(k3, (num_features,)) / np.sqrt(num_features),
        "b_value": 0.1 * jax.random.normal(k4, ()),
    }

    def apply_fn(params, obs):
        x = obs.reshape(obs.shape[0], -1).astype(jnp.float32)
        logits = x @ params["w_policy"] + params["b_policy"][None, :]
        return logits, jnp.tanh(x @ params["w_value"] + params["b_value"])

    return params, mcts.make_network_evaluator(env, apply_fn)


@pytest.fixture(scope="session")
def make_linear_net():
    return linear_net


@pytest.fixture(scope="session")
def tic_tac_toe():
    return mcts.pgx_env("tic_tac_toe")


@pytest.fixture(scope="session")
def connect_four():
    return mcts.pgx_env("connect_four")
