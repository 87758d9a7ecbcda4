"""experiments/evaluate_alphazero.py: Wilson intervals by hand, and the CLI on a real run."""

import json
import os
import sys

import jax
import numpy as np
import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(_REPO, "experiments"))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

import evaluate_alphazero  # noqa: E402
from absl import flags  # noqa: E402

from symbiosis_jax.loops import alphazero, arena  # noqa: E402
from symbiosis_jax.training import driver  # noqa: E402


def test_wilson_interval_by_hand():
    # 0 of 10: (0, z^2/n / (1 + z^2/n)) = (0, 0.3842 / 1.3842) = (0, 0.2775).
    lo, hi = evaluate_alphazero.wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.38416 / 1.38416, abs=1e-6)
    # 29 of 32: p = 0.90625, z^2/n = 0.12005; centre (p + 0.060025) / 1.12005 = 0.86271,
    # half 1.96 sqrt(p (1 - p) / 32 + 3.8416 / 4096) / 1.12005 = 0.10489.
    lo, hi = evaluate_alphazero.wilson_interval(29, 32)
    assert lo == pytest.approx(0.75782, abs=1e-4) and hi == pytest.approx(0.96760, abs=1e-4)
    with pytest.raises(ValueError, match="n=0 must be positive"):
        evaluate_alphazero.wilson_interval(0, 0)


@pytest.mark.parametrize("flag, message", [
    # Were: ValueError from inside the search after the agent compiled; int()'s bare message.
    ("--baseline_simulations=0", r"--baseline_simulations=0 must be >= 1"),
    ("--agent_simulations=-1", r"--agent_simulations=-1 must be >= 0"),
    ("--steps=1,x", r"--steps='1,x' must be 'latest', 'all' or comma-separated iterations"),
])
def test_cli_rejects_bad_flags_before_reading_the_run(flag, message, tmp_path):
    from absl import app

    flags.FLAGS(["evaluate_alphazero.py", f"--workdir={tmp_path}", flag])
    try:
        with pytest.raises(app.UsageError, match=message):
            evaluate_alphazero.main([])
    finally:
        flags.FLAGS.unparse_flags()


def test_cli_plays_the_checkpoint_against_minimax(tmp_path, capsys):
    config = driver.load_config(os.path.join(_REPO, "configs/alphazero_tictactoe.py:smoke"),
                                **{"logging.use_tensorboard": False})
    driver.run(config, workdir=str(tmp_path), verbose=False)
    flags.FLAGS(["evaluate_alphazero.py", f"--workdir={tmp_path}", "--games=4", "--opponent=minimax",
                 "--seed=7"])
    try:
        evaluate_alphazero.main([])
    finally:
        flags.FLAGS.unparse_flags()
    with open(tmp_path / "evaluate.jsonl") as f:
        (row,) = [json.loads(line) for line in f]
    # The same games played directly through the arena.
    env, graphdef, params = alphazero.load_network(config, str(tmp_path))
    agent = alphazero.search_agent(config, env, graphdef)
    r = arena.play(jax.random.PRNGKey(7), env, agent, arena.minimax_agent(), num_games=4,
                   max_num_steps=config.selfplay.max_num_steps, params_a=params)
    assert row["step"] == 1 and row["games"] == 4
    assert row["wins"] == r.wins.tolist() and row["draws"] == r.draws.tolist()
    assert row["losses"] == r.losses.tolist()
    np.testing.assert_allclose(row["win_rate"], r.wins.sum() / 4)
    assert "iteration 1: W/D/L first" in capsys.readouterr().out


def test_cli_head_to_head_against_another_run(tmp_path):
    """--opponent=run: a run's checkpoint against another run's network, each with its own
    search, from paired random openings; the same games as the arena plays them directly."""
    import shutil

    config = driver.load_config(os.path.join(_REPO, "configs/alphazero_tictactoe.py:smoke"),
                                **{"logging.use_tensorboard": False})
    driver.run(config, workdir=str(tmp_path / "a"), verbose=False)
    # Run b: a's checkpoint with PUCT search in its config (a second training would only
    # cost time); the opponent must play with b's search, not a's.
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    with open(tmp_path / "b" / "config.json") as f:
        b = json.load(f)
    b["search"]["algorithm"] = "puct"
    with open(tmp_path / "b" / "config.json", "w") as f:
        json.dump(b, f)
    runs = {"a": config, "b": alphazero.load_run_config(str(tmp_path / "b"))}
    argv = ["evaluate_alphazero.py", f"--workdir={tmp_path / 'a'}", "--games=8", "--opponent=run",
            f"--opponent_workdir={tmp_path / 'b'}"]
    from absl import app

    for extra, message in (([], r"--opponent=run needs --opening_moves > 0"),
                           (["--opening_moves=2", "--opponent_step=5"], r"no checkpoint 5 in .*have \[1\]")):
        flags.FLAGS(argv + extra)
        try:
            with pytest.raises(app.UsageError, match=message):
                evaluate_alphazero.main([])
        finally:
            flags.FLAGS.unparse_flags()
    flags.FLAGS(argv + ["--opening_moves=2", "--seed=5"])
    try:
        evaluate_alphazero.main([])
    finally:
        flags.FLAGS.unparse_flags()
    with open(tmp_path / "a" / "evaluate.jsonl") as f:
        (row,) = [json.loads(line) for line in f]
    assert row["opponent"] == "run" and row["opponent_step"] == 1 and row["opening_moves"] == 2
    env, graphdef_a, params_a = alphazero.load_network(runs["a"], str(tmp_path / "a"))
    _, graphdef_b, params_b = alphazero.load_network(runs["b"], str(tmp_path / "b"))
    sims = runs["a"].eval.num_simulations or runs["a"].search.num_simulations
    r = arena.play(jax.random.PRNGKey(5), env, alphazero.search_agent(runs["a"], env, graphdef_a, num_simulations=sims),
                   alphazero.search_agent(runs["b"], env, graphdef_b, num_simulations=sims), num_games=8,
                   max_num_steps=runs["a"].selfplay.max_num_steps, params_a=params_a, params_b=params_b,
                   opening_moves=2)
    assert row["wins"] == r.wins.tolist() and row["losses"] == r.losses.tolist() and row["draws"] == r.draws.tolist()
