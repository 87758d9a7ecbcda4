"""Properties of the searches: legality at every node, determinism, subtree
reuse, a full tree, terminal roots, a user-defined game, settings errors."""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from symbiosis_jax import mcts
from symbiosis_jax.mcts import gumbel as gumbel_lib

SEARCHES = {
    "puct": functools.partial(mcts.puct_search, dirichlet_fraction=0.25, temperature=0.0),
    "gumbel": functools.partial(mcts.gumbel_search, max_num_considered_actions=4),
}


def _adversarial_net(env, key):
    """A network whose prior favours illegal actions by a wide margin."""

    def evaluate_fn(params, key, states):
        del params
        legal = jax.vmap(env.legal_action_mask)(states)
        noise = jax.random.normal(key, legal.shape)
        logits = jnp.where(legal, noise, 20.0 + noise)
        value = jax.random.uniform(jax.random.fold_in(key, 1), legal.shape[:1], minval=-1, maxval=1)
        return logits, value

    return evaluate_fn


def _terminal_state(env, moves):
    state = env.init(jax.random.key(0))
    for a in moves:
        state, _ = env.step(state, jnp.int32(a))
    assert bool(env.terminated(state))
    return state


@pytest.fixture(scope="module")
def c4_positions(connect_four, random_positions):
    """23 random non-terminal positions and a won one (a vertical four) last."""
    states = random_positions(connect_four, jax.random.key(7), num_positions=23, max_moves=36)
    won = _terminal_state(connect_four, [0, 1, 0, 1, 0, 1, 0])
    return jax.tree.map(lambda x, y: jnp.concatenate([x, y[None]]), states, won)


@pytest.mark.parametrize("variant", list(SEARCHES))
def test_never_selects_illegal_actions(variant, connect_four, c4_positions):
    env = connect_four
    search = jax.jit(
        functools.partial(
            SEARCHES[variant], env=env, evaluate_fn=_adversarial_net(env, None), num_simulations=48
        )
    )
    out = search(None, jax.random.key(0), c4_positions)
    tree = jax.tree.map(np.asarray, out.tree)
    legal_root = np.asarray(jax.vmap(env.legal_action_mask)(c4_positions))
    assert legal_root[np.arange(23), np.asarray(out.action)[:23]].all()
    # The terminal root (last) is left alone: no simulation touches it.
    assert (tree.children_visits[23] == 0).all() and tree.num_used[23] == 1
    assert float(out.root_value[23]) == 0.0
    assert (tree.children_visits[:23, 0].sum(-1) == 48).all()
    tree = jax.tree.map(lambda x: x[:23], tree)
    legal_root = legal_root[:23]
    # Every visited or expanded edge of every node is legal there, and no
    # terminal node has children.
    used = np.arange(tree.node_visits.shape[1])[None, :] < tree.num_used[:, None]
    visited = (tree.children_visits > 0) & used[..., None]
    assert visited.any(axis=(1, 2)).all()
    assert not (visited & ~tree.legal_action_mask).any()
    expanded = tree.children_index >= 0
    assert not (expanded & ~tree.legal_action_mask).any()
    assert not (expanded.any(-1) & tree.terminal).any()
    # The stored legal masks are the environment's.
    np.testing.assert_array_equal(tree.legal_action_mask[:, 0], legal_root)
    # Training targets put no mass on illegal actions.
    assert (np.asarray(out.action_weights)[:23][~legal_root] == 0).all()


@pytest.fixture(scope="module")
def ttt_setup(tic_tac_toe, random_positions, make_linear_net):
    """Six tic-tac-toe positions, a network, and jitted searches of 40 simulations
    in trees of 41 nodes (so that a search after reuse runs out of nodes)."""
    env = tic_tac_toe
    states = random_positions(env, jax.random.key(8), num_positions=6, max_moves=1)
    params, evaluate_fn = make_linear_net(env, jax.random.key(9))
    searches = {
        name: jax.jit(
            functools.partial(fn, env=env, evaluate_fn=evaluate_fn, num_simulations=40, num_nodes=41)
        )
        for name, fn in SEARCHES.items()
    }
    return env, states, params, searches


@pytest.mark.parametrize("variant", list(SEARCHES))
def test_deterministic_under_a_fixed_key(variant, ttt_setup):
    env, states, params, searches = ttt_setup
    a, b, c = (searches[variant](params, jax.random.key(k), states) for k in (5, 5, 6))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # The key matters (root noise), so equality above is not vacuous.
    assert not np.array_equal(np.asarray(a.tree.root_visit_counts), np.asarray(c.tree.root_visit_counts))


@pytest.mark.parametrize("variant", list(SEARCHES))
def test_walk_unroll_gives_the_same_search(variant, ttt_setup, make_linear_net, monkeypatch):
    """Taking 3 tree levels per loop iteration of the descent and the backup changes
    nothing (a finished game's step rewrites what it read): every output, the whole tree
    included, is equal. PUCT also at batch 1, where reads and writes are dynamic slices;
    Gumbel also in the stacked layout of games with more than `UNROLL_MAX` actions."""
    from symbiosis_jax.mcts import peraction

    env, states, params, searches = ttt_setup
    _, evaluate_fn = make_linear_net(env, jax.random.key(9))  # the fixture's network
    search = functools.partial(SEARCHES[variant], env=env, evaluate_fn=evaluate_fn,
                               num_simulations=40, num_nodes=41)
    # (plain search, unrolled search, roots, layout); a fresh jit traces in the layout set.
    cases = [(searches[variant], jax.jit(functools.partial(search, walk_unroll=3)), states, "columns")]
    if variant == "puct":
        one = jax.tree.map(lambda x: x[:1], states)
        cases.append((jax.jit(search), jax.jit(functools.partial(search, walk_unroll=2)), one, "columns"))
    else:
        cases.append((jax.jit(search), jax.jit(functools.partial(search, walk_unroll=3)), states, "stacked"))
    for plain, unrolled, roots, layout in cases:
        if layout == "stacked":
            monkeypatch.setattr(peraction, "UNROLL_MAX", 0)
        a, b = plain(params, jax.random.key(3), roots), unrolled(params, jax.random.key(3), roots)
        assert int(np.max(np.asarray(a.tree.num_used))) > 10  # deep enough to walk several levels
        for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=jax.tree_util.keystr(path))


def test_plain_rows_read_gives_the_same_search(ttt_setup, make_linear_net, monkeypatch):
    """Off the CPU a simulation reads the parent's state rows plainly instead of in a
    conditional (`search.ROWS_READ`); that path, run here on the CPU, gives the same search."""
    from symbiosis_jax.mcts import search as search_lib

    env, states, params, searches = ttt_setup
    _, evaluate_fn = make_linear_net(env, jax.random.key(9))  # the fixture's network
    a = searches["puct"](params, jax.random.key(3), states)
    monkeypatch.setattr(search_lib, "ROWS_READ", "plain")
    b = jax.jit(functools.partial(SEARCHES["puct"], env=env, evaluate_fn=evaluate_fn, num_simulations=40,
                                  num_nodes=41))(params, jax.random.key(3), states)
    for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=jax.tree_util.keystr(path))
    monkeypatch.setattr(search_lib, "ROWS_READ", "sometimes")
    with pytest.raises(ValueError, match="ROWS_READ='sometimes' must be 'auto', 'cond' or 'plain'"):
        mcts.puct_search(params, jax.random.key(3), states, env=env, evaluate_fn=evaluate_fn, num_simulations=4)


def _subtree_nodes(tree, b, start):
    """Node indices of the subtree at `start`, in a canonical (action-path) order."""
    order, stack = [], [start]
    while stack:
        n = stack.pop()
        order.append(n)
        kids = tree.children_index[b, n]
        stack.extend(int(k) for k in kids[::-1] if k >= 0)
    return order


@pytest.mark.parametrize("variant", list(SEARCHES))
def test_reuse_subtree_keeps_the_child_statistics(variant, ttt_setup):
    env, states, params, searches = ttt_setup
    search = searches[variant]
    out = search(params, jax.random.key(0), states)
    keep = jnp.array([True, True, True, True, True, False])
    new = jax.jit(mcts.reuse_subtree)(out.tree, out.action, keep=keep)
    old_t, new_t = jax.tree.map(np.asarray, out.tree), jax.tree.map(np.asarray, new)
    per_node = ["node_visits", "raw_values", "node_values", "terminal"]
    per_row = ["children_visits", "children_qvalues", "children_prior_logits", "legal_action_mask"]
    for b in range(5):
        child = int(old_t.children_index[b, 0, int(out.action[b])])
        assert child > 0
        old_nodes = _subtree_nodes(old_t, b, child)
        new_nodes = _subtree_nodes(new_t, b, 0)
        assert len(new_nodes) == len(old_nodes) == int(new_t.num_used[b])
        assert sorted(new_nodes) == list(range(len(new_nodes)))
        for field in per_node + per_row:
            x, y = getattr(old_t, field)[b], getattr(new_t, field)[b]
            np.testing.assert_array_equal(x[old_nodes], y[new_nodes], err_msg=field)
        for x, y in zip(jax.tree.leaves(old_t.states), jax.tree.leaves(new_t.states)):
            np.testing.assert_array_equal(x[b][old_nodes], y[b][new_nodes])
        # Parent links point into the new numbering, the root has none.
        assert new_t.parents[b, 0] == -1
        for n in new_nodes[1:]:
            p = new_t.parents[b, n]
            assert new_t.children_index[b, p, new_t.action_from_parent[b, n]] == n
        # Freed slots are empty.
        assert (new_t.node_visits[b, len(new_nodes):] == 0).all()
        assert (new_t.children_index[b, len(new_nodes):] == -1).all()
    assert int(new_t.num_used[5]) == 0

    # The next search keeps the reused visits and adds its own, although some of
    # the 41-node trees fill up: leaves that find no free node are backed up unstored.
    next_states = jax.vmap(lambda s, a: env.step(s, a)[0])(states, out.action)
    again = search(params, jax.random.key(1), next_states, tree=new)
    kept = new_t.children_visits[:, 0].sum(-1)
    np.testing.assert_array_equal(np.asarray(again.tree.root_visit_counts).sum(-1), kept + 40)
    assert kept[5] == 0 and kept[:5].min() > 0
    num_used = np.asarray(again.tree.num_used)[:5]
    assert (num_used <= 41).all() and (num_used == 41).any(), num_used
    assert np.isfinite(np.asarray(again.tree.children_qvalues)).all()
    # The reused root kept its statistics until the new search added to them.
    assert (np.asarray(again.tree.node_visits[:5, 0]) == new_t.node_visits[:5, 0] + 40).all()

    # An empty tree (the start of a scan carry) gives the same search as no tree.
    empty = mcts.empty_tree(states, num_nodes=41, num_actions=env.num_actions)
    from_empty = search(params, jax.random.key(0), states, tree=empty)
    for x, y in zip(jax.tree.leaves(from_empty), jax.tree.leaves(out)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-6)


class _Nim(NamedTuple):
    stones: jax.Array  # int32[]


class SubtractionGame:
    """A user-defined `GameEnv`: take 1-3 stones, whoever takes the last wins.

    The player to move wins iff stones % 4 != 0, by taking stones % 4.
    """

    num_actions = 3

    def init(self, key):
        del key
        return _Nim(jnp.int32(10))

    def step(self, state, action):
        stones = state.stones - (action + 1)
        return _Nim(stones), jnp.where(stones == 0, 1.0, 0.0)

    def observation(self, state):
        return jax.nn.one_hot(state.stones, 16)

    def legal_action_mask(self, state):
        return jnp.arange(3) < jnp.minimum(state.stones, 3)

    def terminated(self, state):
        return state.stones == 0


@pytest.mark.parametrize("variant", list(SEARCHES))
def test_user_defined_game(variant):
    env = SubtractionGame()
    assert isinstance(env, mcts.GameEnv)
    stones = jnp.array([9, 2, 3, 5, 6, 7])  # (1 stone would leave a single legal move)
    evaluate_fn = mcts.make_rollout_evaluator(env, num_rollouts=8)
    # No root noise: pure MCTS with 200 simulations, judged on its best move.
    search = jax.jit(
        functools.partial(
            SEARCHES[variant], env=env, evaluate_fn=evaluate_fn, num_simulations=200,
            **({"dirichlet_fraction": 0.0} if variant == "puct" else {"gumbel_scale": 0.0}),
        )
    )
    out = search(None, jax.random.key(0), _Nim(stones))
    np.testing.assert_array_equal(np.asarray(out.action) + 1, np.asarray(stones) % 4)


def _random_play_value(game_cells, mover):
    """Exact expected outcome of uniformly random tic-tac-toe play, for `mover`."""
    lines = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]
    empty = [i for i in range(9) if game_cells[i] == 0]
    total = 0.0
    for a in empty:
        cells = list(game_cells)
        cells[a] = mover
        if any(all(cells[i] == mover for i in line) for line in lines):
            total += 1.0
        elif len(empty) > 1:
            total -= _random_play_value(cells, 3 - mover)
    return total / len(empty)


def test_rollout_evaluator_estimates_random_play(tic_tac_toe):
    env = tic_tac_toe
    moves = [4, 0]  # X: 4, O: 0; X to move, seven empty cells
    state = env.init(jax.random.key(0))
    for a in moves:
        state, _ = env.step(state, jnp.int32(a))
    cells = [0] * 9
    for i, a in enumerate(moves):
        cells[a] = 1 + i % 2
    exact = _random_play_value(cells, 1)
    # Far from 0 and from -exact: zeros or the opponent's point of view would fail.
    assert exact > 0.4
    num_rollouts = 4000
    evaluate_fn = mcts.make_rollout_evaluator(env, num_rollouts=num_rollouts)
    states = jax.tree.map(lambda x: x[None], state)
    logits, value = jax.jit(evaluate_fn)(None, jax.random.key(1), states)
    np.testing.assert_array_equal(logits, np.zeros((1, 9)))
    assert abs(float(value[0]) - exact) < 4 / np.sqrt(num_rollouts), (float(value[0]), exact)


def test_halving_schedule_matches_mctx():
    from mctx._src import seq_halving

    for m in range(0, 17):
        for n in (1, 7, 32, 50, 128):
            assert gumbel_lib.halving_schedule(m, n) == seq_halving.get_sequence_of_considered_visits(m, n)
    assert gumbel_lib.halving_schedule(4, 12) == (0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4)


def test_halving_schedule_rounds_hand_worked():
    """m = 7, n = 32: ceil(log2 7) = 3 phases of floor(32 / (3 k)) rounds over k = 7, 3, 2, 2.

    A round is a run of simulations with one target visit count. It is "full"
    when exactly as many considered actions have that count as the round has
    simulations (each is then visited once, in any order) and "halving" when
    it must choose among more (the first round of a phase).
    """
    schedule = gumbel_lib.halving_schedule(7, 32)
    assert schedule == (
        (0,) * 7                                   # k = 7: floor(32 / 21) = 1 round
        + (1, 1, 1, 2, 2, 2, 3, 3, 3)              # k = 3: floor(32 / 9) = 3 rounds
        + (4, 4, 5, 5, 6, 6, 7, 7, 8, 8)           # k = 2: floor(32 / 6) = 5 rounds
        + (9, 9, 10, 10, 11, 11)                   # k = 2 again, cut at 32 simulations
    )
    # Replay the visits: (target, round length, actions holding the target before the round).
    visits = [0] * 7
    rounds = []
    start = 0
    while start < len(schedule):
        end = start
        while end < len(schedule) and schedule[end] == schedule[start]:
            end += 1
        holders = [a for a, v in enumerate(visits) if v == schedule[start]]
        rounds.append((schedule[start], end - start, len(holders)))
        for a in holders[: end - start]:
            visits[a] += 1
        start = end
    assert rounds == [
        (0, 7, 7), (1, 3, 7), (2, 3, 3), (3, 3, 3), (4, 2, 3), (5, 2, 2), (6, 2, 2),
        (7, 2, 2), (8, 2, 2), (9, 2, 2), (10, 2, 2), (11, 2, 2),
    ]
    assert sorted(visits) == [1, 1, 1, 1, 4, 12, 12]
    full = [length for _, length, holders in rounds if length == holders]
    assert (sum(full), len(full)) == (27, 10)  # 27 of 32 simulations in 10 order-free rounds


def test_bad_settings_raise_before_compiling(tic_tac_toe):
    env = tic_tac_toe
    states = jax.vmap(env.init)(jax.random.split(jax.random.key(0), 2))
    ev = mcts.make_rollout_evaluator(env)
    run = functools.partial(mcts.puct_search, None, jax.random.key(0), states, env=env, evaluate_fn=ev)
    with pytest.raises(ValueError, match="num_nodes=8 cannot hold num_simulations=8"):
        run(num_simulations=8, num_nodes=8)
    with pytest.raises(ValueError, match="num_simulations=0"):
        run(num_simulations=0)
    with pytest.raises(ValueError, match="max_depth=0"):
        run(num_simulations=4, max_depth=0)
    with pytest.raises(ValueError, match="walk_unroll=0 must be an int >= 1"):
        run(num_simulations=4, walk_unroll=0)
    with pytest.raises(ValueError, match=r"max_value=1.0 must be greater than min_value=1.0"):  # was NaN
        run(num_simulations=4, qtransform_fn=functools.partial(mcts.qtransform_by_min_max, min_value=1.0,
                                                               max_value=1.0))
    with pytest.raises(ValueError, match="dirichlet_fraction=1.5"):
        run(num_simulations=4, dirichlet_fraction=1.5)
    with pytest.raises(ValueError, match="temperature=-1"):
        run(num_simulations=4, temperature=-1.0)
    with pytest.raises(ValueError, match=r"pb_c_base=0.0 must be > 0"):  # was NaN scores
        run(num_simulations=4, pb_c_base=0.0)
    with pytest.raises(ValueError, match="max_num_considered_actions=0"):
        mcts.gumbel_search(
            None, jax.random.key(0), states, env=env, evaluate_fn=ev, num_simulations=4,
            max_num_considered_actions=0,
        )
    with pytest.raises(ValueError, match=r"gumbel_scale=-1.0 must be >= 0"):
        mcts.gumbel_search(
            None, jax.random.key(0), states, env=env, evaluate_fn=ev, num_simulations=4, gumbel_scale=-1.0
        )
    with pytest.raises(ValueError, match="lacks 'init'"):
        mcts.puct_search(None, jax.random.key(0), states, env=object(), evaluate_fn=ev, num_simulations=4)
    with pytest.raises(ValueError, match="'backgammon' is not one of"):
        mcts.pgx_env("backgammon")
    with pytest.raises(ValueError, match="num_rollouts=0"):
        mcts.make_rollout_evaluator(env, num_rollouts=0)
    # Was an IndexError from inside the evaluator: one state without its batch axis.
    one = env.init(jax.random.key(0))
    for search in (mcts.puct_search, mcts.gumbel_search):
        with pytest.raises(ValueError, match=r"root_states must be a batch of states, every leaf with the same"):
            search(None, jax.random.key(0), one, env=env, evaluate_fn=ev, num_simulations=4)


# About 30 s each in the suite; hex also plays through the search in the default suite, in
# tests/loops/test_alphazero.py::test_a_pgx_game_without_a_config_runs_from_an_override.
@pytest.mark.slow
@pytest.mark.parametrize("game", ["othello", "go_9x9", "hex"])
def test_other_pgx_games(game):
    # pgx's go broadcasts implicitly, which the suite-wide "raise" setting rejects: the
    # adapter allows it for that game's own code.
    env = mcts.pgx_env(game)
    states = jax.vmap(env.init)(jax.random.split(jax.random.key(0), 2))
    evaluate_fn = mcts.make_rollout_evaluator(env, max_steps=400)
    for search in SEARCHES.values():
        out = jax.jit(functools.partial(search, env=env, evaluate_fn=evaluate_fn, num_simulations=16))(
            None, jax.random.key(1), states
        )
        legal = np.asarray(jax.vmap(env.legal_action_mask)(states))
        assert legal[np.arange(2), np.asarray(out.action)].all()
        assert (np.asarray(out.tree.root_visit_counts).sum(-1) == 16).all()
