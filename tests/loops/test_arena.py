"""Arena and Elo: hand-worked Elo, known random-play statistics, exact every-reply counts."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pgx
import pytest

from symbiosis_jax.loops import arena

LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]


def winner(board):
    """Plain python: the player (0 = X, 1 = O) with three in a line on a board of 9 cells
    (-1 = empty), else -1."""
    for a, c, d in LINES:
        if board[a] >= 0 and board[a] == board[c] == board[d]:
            return board[a]
    return -1


def test_elo_difference_by_hand():
    assert arena.elo_difference(5, 0, 5) == pytest.approx(0.0)
    assert arena.elo_difference(3, 0, 1) == pytest.approx(400 * math.log10(3))  # 75%: +190.8
    assert arena.elo_difference(1, 2, 1) == pytest.approx(0.0)
    # A perfect score is clipped half a game from the limit: 9.5 / 10.
    assert arena.elo_difference(10, 0, 0) == pytest.approx(400 * math.log10(19))
    assert arena.elo_difference(0, 0, 10) == pytest.approx(-400 * math.log10(19))
    with pytest.raises(ValueError, match="must be positive"):
        arena.elo_difference(0, 0, 0)


def test_elo_ratings_recover_true_ratings():
    true = np.array([0.0, 200.0, -150.0])
    games = np.full((3, 3), 1e6) * (1 - np.eye(3))
    expected = 1 / (1 + 10 ** ((true[None, :] - true[:, None]) / 400))
    ratings = arena.elo_ratings(expected * games, games, num_iters=500)
    np.testing.assert_allclose(ratings, true, atol=0.5)


def test_random_play_statistics_and_minimax_never_loses():
    env = pgx.make("tic_tac_toe")
    res = arena.play(jax.random.PRNGKey(0), env, arena.random_agent(), arena.random_agent(),
                     num_games=2000, max_num_steps=9)
    assert res.num_games == 2000
    # Uniformly random tic-tac-toe: the first player wins 58.5%, the second 28.8%, draws 12.7%.
    n = 1000
    assert abs(res.wins[0] / n - 0.585) < 0.05
    assert abs(res.losses[0] / n - 0.288) < 0.05
    assert abs(res.losses[1] / n - 0.585) < 0.05
    res = arena.play(jax.random.PRNGKey(1), env, arena.minimax_agent(), arena.random_agent(),
                     num_games=400, max_num_steps=9)
    assert int(np.sum(res.losses)) == 0 and res.wins[0] > 180 and res.wins[1] > 120
    summary = res.summary()
    assert summary["loss_rate"] == 0.0 and summary["elo"] > 300
    with pytest.raises(ValueError, match="num_games=3 must be a positive even number"):
        arena.play(jax.random.PRNGKey(0), env, arena.random_agent(), arena.random_agent(),
                   num_games=3, max_num_steps=9)


def _first_legal_agent(params, key, state):
    del params, key
    return jnp.argmax(state.legal_action_mask, axis=-1).astype(jnp.int32)


def _first_legal_from_openings():
    """Plain python: X's result over every 2-ply opening (X, then O, uniformly at random),
    both sides then playing their first empty cell. Returns (P(X wins), P(X loses))."""
    results = []
    for x in range(9):
        for o in range(9):
            if o == x:
                continue
            board, mover = [-1] * 9, 0
            board[x], board[o] = 0, 1
            while winner(board) < 0 and -1 in board:
                board[board.index(-1)] = mover
                mover = 1 - mover
            results.append(winner(board))
    return results.count(0) / len(results), results.count(1) / len(results)


def test_paired_random_openings():
    """Two deterministic agents: the opening plies make the games differ, each opening is
    played from both seats (so one agent against itself scores exactly even), and the
    first mover's results match a plain-python walk over every opening."""
    env = pgx.make("tic_tac_toe")
    res = arena.play(jax.random.PRNGKey(3), env, _first_legal_agent, _first_legal_agent, num_games=800,
                     max_num_steps=9, opening_moves=2)
    assert int(res.wins[0]) == int(res.losses[1]) and int(res.losses[0]) == int(res.wins[1])
    assert int(res.draws[0]) == int(res.draws[1])
    p_win, p_loss = _first_legal_from_openings()  # 44 and 20 of the 72 openings
    n = 400
    for count, p in ((res.wins[0], p_win), (res.losses[0], p_loss)):
        assert abs(int(count) / n - p) < 4 * math.sqrt(p * (1 - p) / n), (int(count), p)
    # Without openings the two agents replay one game per seating.
    res = arena.play(jax.random.PRNGKey(3), env, _first_legal_agent, _first_legal_agent, num_games=8,
                     max_num_steps=9)
    assert sorted(np.asarray(res.wins).tolist() + np.asarray(res.losses).tolist()) == [0, 0, 4, 4]
    with pytest.raises(ValueError, match=r"opening_moves=9 must be an int in \[0, max_num_steps=9\)"):
        arena.play(jax.random.PRNGKey(0), env, _first_legal_agent, _first_legal_agent, num_games=2,
                   max_num_steps=9, opening_moves=9)


def _reference_every_reply(agent_first):
    """Plain-python game tree: the agent plays its first empty cell, the opponent every move."""
    counts = {"wins": 0, "draws": 0, "losses": 0}

    def walk(board, mover):  # mover 0 = X
        agent_color = 0 if agent_first else 1
        if mover == agent_color:
            moves = [board.index(-1)]
        else:
            moves = [i for i in range(9) if board[i] < 0]
        for m in moves:
            child = list(board)
            child[m] = mover
            w = winner(child)
            if w >= 0:
                counts["wins" if w == agent_color else "losses"] += 1
            elif -1 not in child:
                counts["draws"] += 1
            else:
                walk(child, 1 - mover)

    walk([-1] * 9, 0)
    return counts


def test_every_reply_matches_reference_tree_walk():
    result = arena.tic_tac_toe_every_reply(_first_legal_agent, pad_to=1024)
    for side, first in ((0, True), (1, False)):
        ref = _reference_every_reply(first)
        assert (int(result.wins[side]), int(result.draws[side]), int(result.losses[side])) == (
            ref["wins"], ref["draws"], ref["losses"]), side
    assert result.losses[0] > 0  # this naive agent is beaten by some line
    perfect = arena.tic_tac_toe_every_reply(arena.minimax_agent(), pad_to=1024)
    assert perfect.losses.tolist() == [0, 0]


def test_record_game_replays_a_legal_game_and_compiles_each_agent_once():
    # Parameters restored from a checkpoint live on the run's mesh, so an agent's action (and
    # the state stepped with it) carries that sharding; the host loop must still call each
    # agent with one input type, or every agent compiles twice.
    env = pgx.make("tic_tac_toe")
    mesh = jax.make_mesh((len(jax.devices()),), ("data",))
    params = jax.device_put(jnp.zeros(9), jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
    traces = []

    def prefer_high_cells(params, key, state):  # deterministic: the last legal cell
        del key
        traces.append(1)
        scores = jnp.where(state.legal_action_mask, params + jnp.arange(9.0), -1.0)
        return jnp.argmax(scores, axis=-1).astype(jnp.int32)

    states, actions, rewards = arena.record_game(jax.random.PRNGKey(0), env, prefer_high_cells,
                                                 _first_legal_agent, params_first=params)
    # X takes 8, 7, 6, O takes 0, 1: X completes the bottom row on its third move.
    assert actions == [8, 0, 7, 1, 6]
    assert len(states) == len(actions) + 1 and bool(states[-1].terminated)
    np.testing.assert_array_equal(rewards, [1.0, -1.0])
    assert len(traces) == 1
