"""experiments/value_diagnostic.py: explained variance by hand, the buffer's order, the CLI on a run."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(_REPO, "experiments"))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

import value_diagnostic  # noqa: E402

from symbiosis_jax import losses  # noqa: E402
from symbiosis_jax.loops import alphazero  # noqa: E402
from symbiosis_jax.loops import replay as replay_lib  # noqa: E402
from symbiosis_jax.loops.alphazero_selfplay import Sample  # noqa: E402
from symbiosis_jax.training import driver  # noqa: E402
from symbiosis_jax.training.checkpoint import CHECKPOINT_DIR, Checkpointer  # noqa: E402


def test_score_by_hand():
    target = np.array([1.0, -1.0, 1.0, 1.0, -0.5, 0.5])
    pred = np.array([0.5, -0.5, 0.5, 0.0, 0.0, 0.5])
    pieces = np.array([1, 2, 5, 6, 9, 10])
    out = value_diagnostic.score(pred, target, pieces, [5, 9])
    # All: squared errors (0.25, 0.25, 0.25, 1, 0.25, 0) / 6 = 2 / 6; targets' mean 1/3, variance
    # ((2/3)^2 * 3 + (4/3)^2 + (5/6)^2 + (1/6)^2) / 6 = 23/36.
    var = 23 / 36
    assert out["squared_error"] == pytest.approx(2 / 6) and out["target_variance"] == pytest.approx(var)
    assert out["explained"] == pytest.approx(1 - (2 / 6) / var)
    # Pieces [0, 5): targets (1, -1), variance 1, errors 0.25 -> 0.75. [5, 9): targets (1, 1), constant -> NaN.
    # [9, end): targets (-0.5, 0.5), variance 0.25, errors (0.25, 0) -> 1 - 0.125 / 0.25 = 0.5.
    assert out["explained_pieces_0_5"] == pytest.approx(0.75)
    assert np.isnan(out["explained_pieces_5_9"])
    assert out["explained_pieces_9_end"] == pytest.approx(0.5)
    # Against the outcome: signs (1, -1, 1, 1, -1, 1), mean 1/3, variance 8/9; errors
    # (0.25, 0.25, 0.25, 1, 1, 0.25) / 6 = 0.5.
    assert out["explained_outcome"] == pytest.approx(1 - 0.5 / (8 / 9))


def test_buffer_in_order_starts_at_the_oldest():
    def samples(values):
        values = jnp.asarray(values, jnp.float32)
        return Sample(observation=jnp.stack([values, -values], -1), legal_action_mask=jnp.ones((len(values), 2), bool),
                      target_policy=jnp.full((len(values), 2), 0.5), target_value=values)

    buf = replay_lib.replay_init(jax.tree.map(lambda x: x[0], samples([0.0])), capacity=4)
    part = replay_lib.replay_add(buf, samples([0, 1, 2]), jnp.ones(3, bool))
    np.testing.assert_array_equal(value_diagnostic.buffer_in_order(part)[1], [0, 1, 2])
    full = replay_lib.replay_add(part, samples([3, 4, 5]), jnp.ones(3, bool))
    obs, target = value_diagnostic.buffer_in_order(full)
    np.testing.assert_array_equal(target, [2, 3, 4, 5])  # 0 and 1 were overwritten
    np.testing.assert_array_equal(obs[:, 1], [-2, -3, -4, -5])


def test_cli_on_a_run_equals_the_loss_on_the_restored_buffer(tmp_path):
    config = driver.load_config(os.path.join(_REPO, "configs/alphazero_tictactoe.py:smoke"),
                                **{"logging.use_tensorboard": False, "train.num_iterations": 2})
    driver.run(config, workdir=str(tmp_path), verbose=False)
    script = os.path.join(_REPO, "experiments", "value_diagnostic.py")
    bad = subprocess.run([sys.executable, script, f"--workdir={tmp_path}", "--phases=5,3"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "--phases='5,3' must be increasing positive integers" in bad.stderr
    done = subprocess.run([sys.executable, script, f"--workdir={tmp_path}", "--steps=2", "--holdout=0.5",
                           "--phases=4", "--fit_steps=3"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("iteration 2: targets' variance")
    with open(tmp_path / "value_diagnostic.jsonl") as f:
        row = json.loads(f.read())
    # Independently: restore the buffer, take its newest half in insertion order, and score
    # the evaluated network with the loss function.
    graphdef, target_state = alphazero.abstract_train_state(config, alphazero.make_env(config))
    with Checkpointer(os.path.join(tmp_path, CHECKPOINT_DIR), max_to_keep=None) as ckpt:
        ts, _ = ckpt.restore(2, target=target_state)
    n = int(ts.replay.size)
    assert n < ts.replay.data.target_value.shape[0]  # not full: insertion order is slot order
    newest = slice(int(round(n * 0.5)), n)
    obs, target = ts.replay.data.observation[:n][newest], ts.replay.data.target_value[:n][newest]
    logits, value = alphazero.apply_fn(graphdef, ts.ema_params, obs)
    legal = jnp.ones(logits.shape, bool)
    _, m = losses.alphazero_loss(logits, value, jax.nn.softmax(logits), target, legal)
    assert row["positions"] == n and row["scored"] == n - newest.start
    assert row["network"]["squared_error"] == pytest.approx(float(m["value_loss"]), rel=1e-5)
    assert row["network"]["explained"] == pytest.approx(float(m["value_explained_variance"]), rel=1e-4, abs=1e-6)
    assert set(row["network"]) >= {"explained_pieces_0_4", "explained_pieces_4_end", "explained_outcome"}
    assert set(row["fresh_fit"]) == set(row["network"]) and "fresh_fit_on_its_data" in row
