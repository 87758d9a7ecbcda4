"""AlphaZero loop: every config's smoke variant runs one iteration, resume is exact,
bad configs fail with clear errors before compiling, self-play targets are right."""

import json
import os
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from symbiosis_jax.loops import alphazero  # noqa: E402
from symbiosis_jax.training import driver, read_jsonl  # noqa: E402

CONFIGS = ["alphazero_tictactoe", "alphazero_connect4", "alphazero_othello", "alphazero_go9x9"]


def _config(name, **overrides):
    overrides.setdefault("logging.use_tensorboard", False)
    return driver.load_config(os.path.join(_REPO, "configs", f"{name}.py:smoke"), **overrides)


# Evaluation compiles the arena too: 90-250 s in CI for these boards, so only with -m slow.
@pytest.mark.parametrize("game, evaluate", [("hex", False), pytest.param("hex", True, marks=pytest.mark.slow),
                                            pytest.param("animal_shogi", True, marks=pytest.mark.slow)])
def test_a_pgx_game_without_a_config_runs_from_an_override(game, evaluate, tmp_path):
    """Any game in mcts.PGX_GAMES plays through the loop from another game's config (animal
    shogi's pgx code needs implicit rank promotion; the suite raises)."""
    from symbiosis_jax import mcts
    from symbiosis_jax.games.symmetry import SYMMETRY_GAMES

    # Hex trains on its symmetric copies too (half turns); animal shogi has none defined.
    config = _config("alphazero_connect4", game=game, **{
        "train.augment_symmetries": game in SYMMETRY_GAMES, "selfplay.max_num_steps": mcts.PGX_GAMES[game],
        "eval.every": int(evaluate), "eval.opponents": ("random",), "eval.num_games": 2})
    out = driver.run(config, workdir=str(tmp_path), verbose=False)
    assert out["iteration"] == 1 and out["selfplay/finished_fraction"] == 1.0
    assert np.isfinite(out["train/loss"]) and out["selfplay/num_positions"] > 0
    if evaluate:
        assert 0.0 <= out["eval/random/win_rate"] <= 1.0


@pytest.mark.parametrize("name", CONFIGS)
def test_smoke_variant_runs_one_iteration(name, tmp_path):
    config = _config(name)
    out = driver.run(config, workdir=str(tmp_path), verbose=False)
    assert out["iteration"] == 1
    assert np.isfinite(out["train/loss"]) and out["train/loss"] > 0
    assert out["selfplay/num_positions"] > 0
    assert os.path.exists(tmp_path / "metrics.jsonl")
    assert os.listdir(tmp_path / "checkpoints")
    assert out["plot"] == str(tmp_path / "strength.png") and os.path.getsize(out["plot"]) > 0


def _config_variants(name):
    """A config file's variants: its own VARIANTS, else the AlphaZero configs' (None, "smoke")."""
    import importlib

    from configs import alphazero_common

    return getattr(importlib.import_module(f"configs.{name}"), "VARIANTS", alphazero_common.VARIANTS)


@pytest.mark.parametrize("spec", [f"{n}.py{':' + v if v else ''}" for n in CONFIGS for v in _config_variants(n)])
def test_every_config_variant_validates_at_full_size(spec):
    # The full sizes are never run by the suite; validating them checks the network (built
    # under eval_shape), the search against its tree, the batch sizes and the optimizer.
    config = driver.load_config(os.path.join(_REPO, "configs", spec))
    alphazero.validate_config(config)


def test_time_limit_stops_with_a_last_evaluation_and_checkpoint(tmp_path, capsys):
    # Iteration 1 compiles (seconds), so a 1 s limit ends the run after it, with the last
    # step's log row, evaluation and checkpoint, whatever train.num_iterations says.
    config = _config("alphazero_tictactoe", **{"train.num_iterations": 50, "train.time_limit_s": 1,
                                                "eval.every": 25, "eval.opponents": ("random",),
                                                "logging.log_every": 10, "logging.checkpoint_every": 25})
    out = alphazero.train(config, workdir=str(tmp_path))
    assert out["iteration"] == 1 and out["wall_seconds"] > 1
    rows = read_jsonl(str(tmp_path / "metrics.jsonl"))
    assert [r["step"] for r in rows] == [1] and 0 <= rows[0]["eval/random/win_rate"] <= 1
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1"]
    printed = capsys.readouterr().out
    assert ("[alphazero] training stops after 0.0167 minutes (train.time_limit_s) or at iteration 50, "
            "whichever comes first") in printed
    assert "[alphazero] done: iteration 1 of 50" in printed


def test_strength_plot_reads_evaluations_and_needs_training_rows(tmp_path, monkeypatch):
    import matplotlib.axes

    path = tmp_path / "metrics.jsonl"
    rows = [{"step": 10, "train/loss": 2.0, "train/value_loss": 0.8},
            {"step": 20, "train/loss": 1.5, "train/value_loss": 0.6, "wall_seconds": 60.0,
             "eval/mcts/win_rate": 0.5, "eval/mcts/win_rate_first": 0.75, "eval/mcts/win_rate_second": 0.25}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    lines = {}
    real_plot = matplotlib.axes.Axes.plot

    def recorded(self, x, y, *args, label=None, **kwargs):
        lines[label] = (list(x), list(y))
        return real_plot(self, x, y, *args, label=label, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", recorded)
    out = alphazero.write_strength_plot(str(path), str(tmp_path / "s.png"))
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # The series drawn: win rates at 1 wall minute by side, the losses at their iterations.
    assert lines == {"vs mcts": ([1.0], [0.5]), "vs mcts, agent first": ([1.0], [0.75]),
                     "vs mcts, agent second": ([1.0], [0.25]), "loss": ([10, 20], [2.0, 1.5]),
                     "value loss": ([10, 20], [0.8, 0.6])}
    path.write_text(json.dumps({"step": 0, "eval/mcts/win_rate": 0.5}) + "\n")
    assert alphazero.write_strength_plot(str(path), str(tmp_path / "t.png")) is None


def test_evaluations_between_logged_steps_carry_their_time(tmp_path, capsys):
    """An evaluation on a step that is not logged is still placed on the strength plot's
    wall-clock axis (its row was written without ``wall_seconds`` and the plot skipped it)."""
    config = _config("alphazero_tictactoe", **{
        "train.num_iterations": 2, "logging.log_every": 2, "logging.checkpoint_every": 2, "eval.every": 1,
        "eval.opponents": ("random",), "eval.num_games": 2})
    alphazero.train(config, workdir=str(tmp_path))
    from symbiosis_jax.training.metrics import read_jsonl

    evals = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if "eval/random/win_rate" in r]
    assert [r["step"] for r in evals] == [1, 2]
    assert "train/loss" not in evals[0] and "train/loss" in evals[1]  # step 1: evaluation only
    assert 0 < evals[0]["wall_seconds"] < evals[1]["wall_seconds"]
    # Every evaluation is printed as it happens, and the run ends with a result line.
    out = capsys.readouterr().out
    for r in evals:
        assert f"[alphazero] iteration {r['step']}: {alphazero.evaluation_line(r)}\n" in out
    assert "[alphazero] done: iteration 2 of 2 in " in out
    assert f"; last evaluation: {alphazero.evaluation_line(evals[1])}; plot: {tmp_path}" in out


def test_evaluation_line_hand_worked():
    m = {"eval/mcts/win_rate": 0.625, "eval/mcts/win_rate_first": 0.75, "eval/mcts/win_rate_second": 0.5,
         "eval/mcts/loss_rate": 0.25, "eval/mcts/elo": 99.0, "train/loss": 1.0,
         "eval/every_reply/losses_first": 0, "eval/every_reply/losses_second": 3,
         "eval/every_reply/lines": 600}
    assert alphazero.evaluation_line(m) == (
        "vs mcts: win 62% (first 75%, second 50%), loss 25%; "
        "every reply: lost 0 lines as first and 3 as second, of 600")
    assert alphazero.evaluation_line({"train/loss": 1.0}) == "(no opponents)"


def test_resume_is_exact(tmp_path, capsys):
    straight = _config("alphazero_tictactoe", **{"train.num_iterations": 3})
    alphazero.train(straight, workdir=str(tmp_path / "a"))
    _, _, params_a = alphazero.load_network(straight, str(tmp_path / "a"))

    first = _config("alphazero_tictactoe", **{"train.num_iterations": 2})
    alphazero.train(first, workdir=str(tmp_path / "b"))
    with open(tmp_path / "b" / "metrics.jsonl", "a") as f:  # logged, then killed before its checkpoint
        f.write(json.dumps({"step": 3, "train/loss": -1.0}) + "\n")
    capsys.readouterr()
    out = alphazero.train(straight, workdir=str(tmp_path / "b"), resume=True)
    assert out["iteration"] == 3
    assert f"[alphazero] resumed from {tmp_path / 'b' / 'checkpoints'} at iteration 2\n" in capsys.readouterr().out
    _, _, params_b = alphazero.load_network(straight, str(tmp_path / "b"))
    for a, b in zip(jax.tree.leaves(params_a), jax.tree.leaves(params_b)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Every step is logged once, with the losses of the uninterrupted run.
    def losses(d):
        return [(r["step"], r["train/loss"]) for r in read_jsonl(tmp_path / d / "metrics.jsonl")
                if "train/loss" in r]
    assert losses("a") == losses("b") and [s for s, _ in losses("a")] == [1, 2, 3]


def test_resume_with_a_changed_config_is_rejected_before_building(tmp_path, monkeypatch):
    # Was: the checkpoint restored into the new config's run and training went on silently.
    alphazero.train(_config("alphazero_tictactoe"), workdir=str(tmp_path))
    changed = _config("alphazero_tictactoe", **{"train.num_iterations": 2, "optimizer.learning_rate": 1e-2})

    def no_build(*args, **kwargs):
        raise AssertionError("built before the configs were compared")

    monkeypatch.setattr(alphazero, "init_train_state", no_build)
    with pytest.raises(ValueError, match=r"--resume: the checkpoint in .* different config \("
                                         r"config.optimizer.learning_rate: 0.001 -> 0.01\)"):
        alphazero.train(changed, workdir=str(tmp_path), resume=True)


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"game": "backgammon"}, r"config.game='backgammon' is not one of \('animal_shogi', 'chess', "
                                 r"'connect_four', 'gardner_chess', 'go_19x19', 'go_9x9', 'hex', 'othello', "
                                 r"'shogi', 'tic_tac_toe'\)"),
        ({"network.name": "transformer"}, r"config.network.name='transformer' is not one of \('mlp', 'resnet'\)"),
        ({"selfplay.batch_size": -4}, r"config.selfplay.batch_size=-4 must be a positive int"),
        ({"replay.capacity": 0}, r"config.replay.capacity=0 must be a positive int"),
        ({"train.batch_size": -1}, r"config.train.batch_size=-1 must be a positive int"),
        ({"search.num_simulations": 64}, r"config.search.num_simulations=64 needs 65 tree nodes .*config.search.num_nodes=5"),
        ({"search.algorithm": "alphabeta"}, r"config.search.algorithm='alphabeta' is not one of \('gumbel', 'puct'\)"),
        ({"eval.num_games": 3}, r"config.eval.num_games=3 must be even"),
        ({"game": "animal_shogi", "train.augment_symmetries": True, "selfplay.max_num_steps": 256},
         r"config.train.augment_symmetries=True: game='animal_shogi' has no symmetries defined; allowed: "
         r"\('connect_four', 'go_19x19', 'go_9x9', 'hex', 'othello', 'tic_tac_toe'\)"),
        ({"selfplay.batch_size": 12}, r"config.selfplay.batch_size=12 must be divisible by 8, the number of ways the mesh "
         r"splits a batch \(config.mesh.data x config.mesh.fsdp\)"),
        ({"train.ema_decay": 1.0}, r"config.train.ema_decay=1.0 must be in \[0, 1\)"),
        ({"search.walk_unroll": 0}, r"config.search.walk_unroll=0 must be an int >= 1"),
        ({"mesh.axis_types": "explicit"}, r"config.mesh.axis_types='explicit': the AlphaZero loop runs on 'auto'"),
        ({"eval.num_simulations": -8}, r"config.eval.num_simulations=-8 must be an int >= 0"),
        ({"selfplay.value_target_root_weight": 1.5},
         r"config.selfplay.value_target_root_weight=1.5 must be in \[0, 1\]"),
        # Were a ZeroDivisionError after the first iteration had compiled and run.
        ({"logging.log_every": 0}, r"config.logging.log_every=0 must be a positive int"),
        ({"logging.checkpoint_every": 0}, r"config.logging.checkpoint_every=0 must be a positive int"),
        # Was raised by puct_search while tracing inside the jitted iteration.
        ({"search.algorithm": "puct", "search.dirichlet_alpha": -1.0},
         r"config.search.dirichlet_alpha=-1.0 must be > 0"),
        ({"search.algorithm": "puct", "search.dirichlet_fraction": 2.0},
         r"config.search.dirichlet_fraction=2.0 must be in \[0, 1\]"),
        ({"train.value_coef": -1.0}, r"config.train.value_coef=-1.0 must be >= 0"),
        ({"optimizer.learning_rate": -1.0}, r"optimizer.learning_rate=-1.0 must be a positive float"),
        # Were raised while the network was built under jit, or (num_blocks < 0) not at all.
        ({"network.mlp.hidden_sizes": (0,)}, r"config.network.mlp.hidden_sizes=\(0,\) must be a non-empty tuple"),
        # A section the config does not choose is checked too.
        ({"network.resnet.num_blocks": -1}, r"config.network.resnet.num_blocks=-1 must be an int >= 0"),
    ],
)
def test_bad_config_fails_before_compiling(overrides, message, tmp_path, monkeypatch):
    def no_compile(*args, **kwargs):
        raise AssertionError("compiled before validating")

    monkeypatch.setattr(alphazero, "cached_iteration_fn", no_compile)
    monkeypatch.setattr(alphazero, "init_train_state", no_compile)
    config = _config("alphazero_tictactoe", **overrides)
    with pytest.raises(ValueError, match=message):
        alphazero.train(config, workdir=str(tmp_path))


def test_the_former_mirror_field_names_its_replacement():
    config = _config("alphazero_connect4")
    config.train.augment_mirror = True  # a config file written before augment_symmetries
    with pytest.raises(ValueError, match=r"config.train.augment_mirror was replaced by config.train.augment_symmetries"):
        alphazero.validate_config(config)


class _TinyNet(nnx.Module):
    """A network a user adds to NETWORKS: a linear policy and value, with a width to check."""

    def __init__(self, *, obs_shape, num_actions, width: int = 4, value_dims: int = 1, rngs):
        if width <= 0:
            raise ValueError(f"width={width} must be positive")
        self.value_dims = value_dims
        self.hidden = nnx.Linear(int(np.prod(obs_shape)), width, rngs=rngs)
        self.policy = nnx.Linear(width, num_actions, rngs=rngs)
        self.value = nnx.Linear(width, 1, rngs=rngs)

    def __call__(self, obs):
        x = jax.nn.relu(self.hidden(obs.reshape(obs.shape[0], -1).astype(jnp.float32)))
        value = jnp.tanh(self.value(x))
        return self.policy(x), (value[:, 0] if self.value_dims == 1 else value)


@pytest.mark.parametrize(
    "fields,message",
    [
        # Were raised in the first iteration, under jit, after the workdir was written.
        ({"width": 0}, r"config.network.name='tiny' with config.network.tiny=\{'width': 0\} cannot be built and "
                       r"applied to tic_tac_toe observations bool\[2, 3, 3, 2\]: ValueError: width=0 must be positive"),
        ({"value_dims": 2}, r"config.network.name='tiny' returned \(.float32\[2, 9\].?, .float32\[2, 1\].?\) "
                            r"for a batch of 2 tic_tac_toe observations; the loop needs \(logits \[2, 9\], value \[2\]\)"),
    ],
)
def test_a_user_network_is_checked_before_compiling(fields, message, tmp_path, monkeypatch):
    from symbiosis_jax.networks import factory

    monkeypatch.setitem(factory.NETWORKS, "tiny", _TinyNet)

    def no_compile(*args, **kwargs):
        raise AssertionError("compiled before validating")

    monkeypatch.setattr(alphazero, "cached_iteration_fn", no_compile)
    monkeypatch.setattr(alphazero, "init_train_state", no_compile)
    config = _config("alphazero_tictactoe")
    config.network.name = "tiny"
    config.network.tiny = ml_collections.ConfigDict(fields)
    with pytest.raises(ValueError, match=message):
        alphazero.train(config, workdir=str(tmp_path))
    # With good values the same network passes the check.
    config.network.tiny = ml_collections.ConfigDict(dict(width=3))
    alphazero.validate_config(config)
    # default_config gives a registered network a section at its constructor's defaults.
    assert alphazero.default_config(game="hex").network.tiny.to_dict() == {"width": 4, "value_dims": 1}


def test_network_sections_switch_networks_and_name_misplaced_fields():
    # Was: --config.network.name=resnet on the MLP config failed ("hidden_sizes is not a
    # field of the 'resnet' network") although the config said to switch networks that way.
    config = driver.load_config(os.path.join(_REPO, "configs", "alphazero_connect4.py"), **{"network.name": "resnet"})
    alphazero.validate_config(config)
    assert alphazero.network_kwargs(config.network) == {"num_channels": 64, "num_blocks": 5}
    env = alphazero.make_env(config)
    model = alphazero.make_model(config, env)
    assert len(model.blocks) == 5 and model.stem.out_features == 64
    config.network.name = "mlp"
    assert alphazero.network_kwargs(config.network) == {"hidden_sizes": (256, 256)}
    flat = _config("alphazero_tictactoe")
    flat.network.hidden_sizes = (8,)  # a field outside its network's section
    with pytest.raises(ValueError, match=r"config.network.hidden_sizes is not a network of \('mlp', 'resnet'\): "
                                         r"each network's hyperparameters live in its own section, "
                                         r"config.network.<network>.<field>; 'hidden_sizes' is a field of the 'mlp' "
                                         r"network: set config.network.mlp.hidden_sizes"):
        alphazero.validate_config(flat)
    typo = _config("alphazero_tictactoe")
    typo.network.resnet.num_chanels = 8
    with pytest.raises(ValueError, match=r"config.network.resnet.num_chanels is not a field of the 'resnet' network; "
                                         r"fields: \['num_channels', 'num_blocks'\]"):
        alphazero.validate_config(typo)


def test_selfplay_targets_follow_the_outcome():
    """Each position's value target is the final reward of the player to move there."""
    config = _config("alphazero_tictactoe")
    env = alphazero.make_env(config)
    graphdef, ts = alphazero.init_train_state(config, env)
    search_fn = alphazero.make_search_fn(config.search, env, lambda p, o: alphazero.apply_fn(graphdef, p, o))
    samples, valid, stats = jax.jit(
        lambda k, p: alphazero.selfplay(k, p, graphdef=graphdef, env=env, search_fn=search_fn, config=config)
    )(jax.random.PRNGKey(3), ts.params)
    valid = np.asarray(valid)
    obs = np.asarray(samples.observation)  # [T, B, 3, 3, 2]: own marks, opponent marks
    z = np.asarray(samples.target_value)
    policy = np.asarray(samples.target_policy)
    assert valid[0].all() and float(stats["selfplay/finished_fraction"]) == 1.0
    for b in range(valid.shape[1]):
        length = int(valid[:, b].sum())
        assert valid[:length, b].all() and not valid[length:, b].any()
        # Replay the final board from the last observation: did its mover win?
        last = obs[length - 1, b]
        np.testing.assert_allclose(policy[:length, b].sum(-1), 1.0, rtol=1e-5)
        # Alternating movers: targets alternate in sign (or are all zero for a draw).
        zs = z[:length, b]
        np.testing.assert_array_equal(zs[1:], -zs[:-1])
        # The last mover either won (target +1), or filled the board for a draw (0).
        if zs[-1] == 0:
            assert length == 9
        else:
            assert zs[-1] == 1.0
        assert last.sum() == length - 1  # marks on the board before the last move
        own, opp = last[..., 0].reshape(9) > 0, last[..., 1].reshape(9) > 0
        assert not _has_line(own) and not _has_line(opp)  # else the game had ended earlier
        # The last move won iff the target says so: some empty cell completes a line of the
        # mover's (at length 9 the one empty cell is the move: it must not, for a draw).
        empty = np.flatnonzero(~own & ~opp)
        wins = [_has_line(own | (np.arange(9) == c)) for c in empty]
        assert any(wins) if zs[-1] == 1.0 else (len(empty) == 1 and not wins[0])


_LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))


def _has_line(marks):
    """Tic-tac-toe: do the marks (bool [9], row-major) hold three in a row?"""
    return any(marks[a] and marks[b] and marks[c] for a, b, c in _LINES)


def test_value_target_mixes_in_the_root_value():
    """With ``value_target_root_weight = w`` the target is ``(1 - w) z + w q``: the same games
    are played (the search does not read w), and at the first move q is the root value of a
    search of the start position with the key self-play uses there."""
    w = 0.25
    config = _config("alphazero_tictactoe")
    mixed = _config("alphazero_tictactoe", **{"selfplay.value_target_root_weight": w})
    env = alphazero.make_env(config)
    graphdef, ts = alphazero.init_train_state(config, env)
    search_fn = alphazero.make_search_fn(config.search, env, lambda p, o: alphazero.apply_fn(graphdef, p, o))
    key = jax.random.PRNGKey(5)

    def play(c):
        return jax.jit(lambda k, p: alphazero.selfplay(k, p, graphdef=graphdef, env=env, search_fn=search_fn,
                                                      config=c))(key, ts.params)

    (plain, valid, _), (mix, valid_m, _) = play(config), play(mixed)
    np.testing.assert_array_equal(np.asarray(valid), np.asarray(valid_m))
    np.testing.assert_array_equal(np.asarray(plain.target_policy), np.asarray(mix.target_policy))
    z, t = np.asarray(plain.target_value), np.asarray(mix.target_value)
    q = (t - (1 - w) * z) / w
    assert np.all(np.abs(q[np.asarray(valid)]) <= 1 + 1e-5)
    # Recompute q at move 0 exactly as self-play draws its keys (see alphazero_selfplay).
    init_key, _, play_key = jax.random.split(key, 3)
    state = jax.vmap(env.init)(jax.random.split(init_key, config.selfplay.batch_size))
    search_key, _ = jax.random.split(jax.random.fold_in(play_key, 0))
    root_value = np.asarray(jax.jit(search_fn)(search_key, ts.params, state).root_value)
    np.testing.assert_allclose(t[0], (1 - w) * z[0] + w * root_value, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("algorithm", ["gumbel", "puct"])
def test_selfplay_reuses_the_played_subtree(algorithm, monkeypatch):
    """With ``search.reuse_tree`` a search starts from the played child's subtree: its root
    already holds that child's visits, so n simulations end with those visits plus n.
    (``search.walk_unroll`` reaches the search too; it changes no result.)"""
    from symbiosis_jax import mcts

    seen = []
    real = getattr(mcts, f"{algorithm}_search")

    def recorded(*args, **kwargs):
        seen.append(kwargs.get("walk_unroll"))
        return real(*args, **kwargs)

    monkeypatch.setattr(mcts, f"{algorithm}_search", recorded)
    n, batch = 8, 4
    over = {"search.algorithm": algorithm, "search.num_simulations": n, "search.num_nodes": 3 * n + 1,
            "search.reuse_tree": True, "search.walk_unroll": 2}
    config = _config("alphazero_tictactoe", **over)
    env = alphazero.make_env(config)
    graphdef, ts = alphazero.init_train_state(config, env)
    search_fn = jax.jit(alphazero.make_search_fn(
        config.search, env, lambda p, o: alphazero.apply_fn(graphdef, p, o)))
    state = jax.vmap(env.init)(jax.random.split(jax.random.PRNGKey(0), batch))
    first = search_fn(jax.random.PRNGKey(1), ts.params, state)
    games = np.arange(batch)
    child = np.asarray(first.tree.children_index)[games, 0, np.asarray(first.action)]
    assert (child > 0).all()  # the played action was searched
    kept = np.asarray(first.tree.node_visits)[games, child]
    assert (kept >= 1).all()
    state = jax.jit(jax.vmap(env.step))(state, first.action)
    tree = jax.jit(mcts.reuse_subtree)(first.tree, first.action)  # op by op: 4-5 s of compiles
    second = search_fn(jax.random.PRNGKey(2), ts.params, state, tree)
    np.testing.assert_array_equal(np.asarray(second.tree.node_visits)[:, 0], kept + n)
    fresh = search_fn(jax.random.PRNGKey(2), ts.params, state)
    np.testing.assert_array_equal(np.asarray(fresh.tree.node_visits)[:, 0], 1 + n)
    assert seen and set(seen) == {2}
    # The loop with reuse runs in test_compare_alphazero.py::test_two_arms_one_iteration.


@pytest.mark.slow
def test_tictactoe_from_scratch_never_loses(tmp_path):
    """The headline result: from random initialisation, the full config (32 simulations)
    loses no line against every reply of the opponent, first or second (about a minute).

    Run as a user runs it: the command line in a process of its own, so on one CPU device,
    not on this test session's 8 fake ones (whose sharded reductions round differently
    and take several times as long on 2 cores).
    """
    import subprocess

    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split()
                                if not f.startswith("--xla_force_host_platform_device_count"))
    proc = subprocess.run(
        [sys.executable, os.path.join(_REPO, "experiments", "train.py"),
         "--config=" + os.path.join(_REPO, "configs", "alphazero_tictactoe.py"),
         "--config.logging.progress_bar=False", f"--workdir={tmp_path}"],
        env=env, capture_output=True, text=True, timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "devices=1 (cpu)" in proc.stdout
    out = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if "eval/every_reply/lines" in r][-1]
    print({k: v for k, v in out.items() if "every_reply" in k or "seconds" in k or "minimax" in k})
    assert out["step"] == 200
    assert out["eval/every_reply/losses_first"] == 0
    assert out["eval/every_reply/losses_second"] == 0
    assert out["eval/minimax/loss_rate"] == 0.0
    assert out["eval/every_reply/lines"] > 300


def test_resignation_ends_games_with_a_loss_for_the_resigner():
    # A threshold of 1 makes every player resign at once (no game is exempt).
    config = _config(
        "alphazero_tictactoe", **{"selfplay.resign_threshold": 1.0, "selfplay.resign_disabled_fraction": 0.0}
    )
    env = alphazero.make_env(config)
    graphdef, ts = alphazero.init_train_state(config, env)
    search_fn = alphazero.make_search_fn(config.search, env, lambda p, o: alphazero.apply_fn(graphdef, p, o))
    samples, valid, stats = alphazero.selfplay(
        jax.random.PRNGKey(0), ts.params, graphdef=graphdef, env=env, search_fn=search_fn, config=config
    )
    valid = np.asarray(valid)
    assert valid[0].all() and not valid[1:].any()
    np.testing.assert_array_equal(np.asarray(samples.target_value)[0], -1.0)
    assert float(stats["selfplay/resign_fraction"]) == 1.0


def test_moving_average_of_parameters_by_hand():
    """With ``train.ema_decay = d`` the evaluated parameters after two iterations are
    ``d^2 p0 + d (1 - d) p1 + (1 - d) p2`` of the trained parameters p0, p1, p2."""
    from symbiosis_jax.parallel import make_mesh

    d = 0.75
    config = _config("alphazero_tictactoe", **{"train.ema_decay": d})
    env = alphazero.make_env(config)
    mesh = make_mesh(config.mesh, devices=jax.devices()[:1])
    # Placed as `train` places it: an unplaced state would come back on the mesh and the
    # second iteration would compile again.
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    graphdef, ts = alphazero.init_train_state(config, env, sharding=replicated)
    iteration = alphazero.make_iteration_fn(config, env, graphdef, mesh)
    trained = [jax.device_get(ts.params)]
    for _ in range(2):
        ts, _ = iteration(jax.random.PRNGKey(0), ts)
        trained.append(jax.device_get(ts.params))
    p0, p1, p2 = (jax.tree.leaves(p) for p in trained)
    for e, a, b, c in zip(jax.tree.leaves(jax.device_get(ts.ema_params)), p0, p1, p2):
        assert not np.allclose(a, c)  # training moved the parameters
        np.testing.assert_allclose(e, d * d * a + d * (1 - d) * b + (1 - d) * c, rtol=1e-5, atol=1e-7)
    # With decay 0 (the default) the average is the trained parameters: checked in
    # test_sharded_iteration_equals_single_device, which already runs such an iteration.


def test_iteration_places_an_unplaced_state_and_compiles_once(monkeypatch):
    """The iteration declares its shardings: a state built on the default device (not placed
    on the mesh) is placed by the first call, comes back replicated over the mesh, and the
    next call reuses the compiled iteration (one trace, not two)."""
    from symbiosis_jax.parallel import make_mesh

    traces = []
    real = alphazero.selfplay

    def counted(*args, **kwargs):
        traces.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(alphazero, "selfplay", counted)
    config = _config("alphazero_tictactoe")
    env = alphazero.make_env(config)
    mesh = make_mesh(config.mesh, devices=jax.devices()[:2])
    graphdef, ts = alphazero.init_train_state(config, env)  # default device
    iteration = alphazero.make_iteration_fn(config, env, graphdef, mesh)
    for _ in range(2):
        ts, _ = iteration(jax.random.PRNGKey(0), ts)
    assert len(traces) == 1
    assert int(ts.iteration) == 2
    for leaf in jax.tree.leaves(ts):
        assert leaf.sharding.is_equivalent_to(jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()),
                                              leaf.ndim)


@pytest.mark.parametrize("reuse_tree, augment, data, fsdp", [(False, False, 8, 1), (True, True, 4, 2)])
def test_sharded_iteration_equals_single_device(reuse_tree, augment, data, fsdp):
    """One iteration on a mesh of 8 devices (data x fsdp; games and minibatches are split
    over both) equals the one-device run; with ``train.ema_decay = 0`` (the default) the
    evaluated parameters are the trained ones."""
    from symbiosis_jax.parallel import make_mesh

    config = _config("alphazero_tictactoe", **{"search.reuse_tree": reuse_tree, "search.num_nodes": 13,
                                                "train.augment_symmetries": augment})
    assert config.train.ema_decay == 0.0
    env = alphazero.make_env(config)
    results = []
    for devices, (d, f) in ((jax.devices()[:1], (1, 1)), (jax.devices()[:8], (data, fsdp))):
        mesh = make_mesh((("data", d), ("fsdp", f), ("tensor", 1)), devices=devices)
        replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
        graphdef, ts = alphazero.init_train_state(config, env, sharding=replicated)
        ts, metrics = alphazero.make_iteration_fn(config, env, graphdef, mesh)(jax.random.PRNGKey(0), ts)
        for e, p in zip(jax.tree.leaves(ts.ema_params), jax.tree.leaves(ts.params)):
            np.testing.assert_array_equal(np.asarray(e), np.asarray(p))
        results.append((jax.device_get(ts.params), jax.device_get(metrics)))
    (p1, m1), (p8, m8) = results
    for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p8)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    assert float(m1["selfplay/num_positions"]) == float(m8["selfplay/num_positions"])
    np.testing.assert_allclose(float(m1["train/loss"]), float(m8["train/loss"]), rtol=1e-5)
    if reuse_tree:
        assert float(m1["selfplay/reused_root_visits"]) == float(m8["selfplay/reused_root_visits"]) > 0
    else:
        assert "selfplay/reused_root_visits" not in m1 and "selfplay/reused_root_visits" not in m8
