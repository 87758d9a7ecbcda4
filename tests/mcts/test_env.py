"""The pgx adapter: every game in `mcts.PGX_GAMES` is two-player, zero-sum and strictly
alternating through `PgxEnv`, as the search assumes, within its listed length.

The suite runs with `jax_numpy_rank_promotion="raise"`: the adapter must trace the games
whose pgx code broadcasts implicitly (`PGX_IMPLICIT_RANK_PROMOTION`) by itself.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from symbiosis_jax import mcts

# Compiling random play costs 2-15 s a game here (animal shogi about 30 s in the suite); the big
# boards and animal shogi run with `-m slow`.
_SLOW = ("go_9x9", "go_19x19", "chess", "shogi", "gardner_chess", "animal_shogi")
GAMES = [pytest.param(g, marks=pytest.mark.slow) if g in _SLOW else g for g in mcts.PGX_GAMES]


def _random_play(env, key, num_games, num_plies):
    """Uniformly random legal play of `num_games` games for `num_plies` plies through the
    adapter; per ply: the mover, whether the game was live, the reward, both players' pgx
    rewards, and the adapter's legal mask."""
    def one(key):
        def body(s, k):
            live = ~env.terminated(s)
            legal = env.legal_action_mask(s)
            action = jax.random.categorical(k, jnp.where(legal, 0.0, -jnp.inf))
            moved, reward = env.step(s, action)
            s2 = jax.tree.map(lambda a, b: jnp.where(live, a, b), moved, s)
            row = (env.current_player(s), live, jnp.where(live, reward, 0.0), s2.rewards, legal.any())
            return s2, row

        k0, k1 = jax.random.split(key)
        final, rows = jax.lax.scan(body, env.init(k0), jax.random.split(k1, num_plies))
        return final, rows

    return jax.jit(jax.vmap(one))(jax.random.split(key, num_games))


@pytest.mark.parametrize("game", GAMES)
def test_listed_games_alternate_and_are_zero_sum(game):
    env = mcts.pgx_env(game)
    assert isinstance(env, mcts.GameEnv) and env.num_actions > 1
    plies = min(mcts.PGX_GAMES[game], 150)
    final, (player, live, reward, rewards, any_legal) = _random_play(env, jax.random.key(0), 8, plies)
    player, live, reward, rewards, any_legal = map(np.asarray, (player, live, reward, rewards, any_legal))
    assert set(np.unique(player)) <= {0, 1}
    # The player to move changes after every action of a live game.
    both_live = live[:, :-1] & live[:, 1:]
    assert both_live.any()
    assert (player[:, 1:] != player[:, :-1])[both_live].all()
    # Zero-sum: the two players' rewards cancel; the adapter returns the mover's.
    np.testing.assert_allclose(rewards.sum(-1), 0.0, atol=1e-6)
    assert set(np.unique(reward)) <= {-1.0, 0.0, 1.0}
    # A live position has a legal move; a finished one has none (the adapter masks pgx's).
    assert any_legal[live].all()
    done = np.asarray(jax.vmap(env.terminated)(final))
    assert not np.asarray(jax.vmap(env.legal_action_mask)(final))[done].any()
    if plies == mcts.PGX_GAMES[game]:  # within its listed length every game has ended
        assert done.all(), f"{game}: a game outlived PGX_GAMES[{game!r}]={plies}"


def test_unlisted_games_are_refused_with_the_list():
    for name in ("backgammon", "2048", "kuhn_poker"):
        with pytest.raises(ValueError, match=rf"name='{name}' is not one of \('tic_tac_toe', 'connect_four', "
                                             r"'othello', 'hex'.*two-player, deterministic and strictly alternating"):
            mcts.pgx_env(name)
