"""Resume exactness: N steps straight equals N/2 steps, stop, resume to N (bit for bit)."""

import json
import os
import sys

import jax
import numpy as np
import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from symbiosis_jax.loops import rlvr  # noqa: E402
from symbiosis_jax.training import driver  # noqa: E402


def _config(num_steps):
    config = driver.load_config(os.path.join(_REPO, "configs/grpo_arithmetic.py:smoke"))
    config.rl.num_steps = num_steps
    config.optimizer.total_steps = 4       # same schedule whatever the run length
    config.optimizer.warmup_steps = 1
    config.eval.every = 100                # evaluate only at the end of each run
    config.checkpoint.every = 1
    config.log.plot = False
    config.log.tensorboard = False
    return config


def _np(tree):
    return jax.tree.map(np.asarray, jax.device_get(tree))


def test_interrupted_and_resumed_run_ends_with_identical_state(tmp_path):
    straight = rlvr.fit(_config(4), workdir=str(tmp_path / "straight"))
    rlvr.fit(_config(2), workdir=str(tmp_path / "split"))           # "interrupted" at 2
    with open(tmp_path / "split" / "metrics.jsonl", "a") as f:      # step 3 logged, then killed
        f.write(json.dumps({"step": 3, "reward_mean": -1.0, "loss": -1.0}) + "\n")  # before its checkpoint
    resumed = rlvr.fit(_config(4), workdir=str(tmp_path / "split"), resume=True)
    assert resumed.eval_before is None                               # no SFT, no step-0 eval
    assert int(straight.state.step) == int(resumed.state.step) == 4
    a, b = _np(straight.state), _np(resumed.state)
    jax.tree.map(np.testing.assert_array_equal, a.params, b.params)
    jax.tree.map(np.testing.assert_array_equal, a.opt_state, b.opt_state)
    jax.tree.map(np.testing.assert_array_equal, a.ref_params, b.ref_params)
    # The training moved the parameters (the test would be vacuous otherwise).
    init = _np(rlvr._runner_for(_config(4)).init_params)  # noqa: SLF001
    assert any(not np.array_equal(x, y)
               for x, y in zip(jax.tree.leaves(init), jax.tree.leaves(a.params)))
    # Logged steps continue where they stopped, each once, with the same rewards.
    def rows(d):
        with open(tmp_path / d / "metrics.jsonl") as f:
            rows = [r for r in map(json.loads, f) if r["step"] > 0]
        assert len({r["step"] for r in rows}) == len(rows), [r["step"] for r in rows]
        return {r["step"]: r for r in rows}
    s, r = rows("straight"), rows("split")
    assert sorted(s) == sorted(r) == [1, 2, 3, 4]
    for step in (1, 2, 3, 4):
        assert s[step]["reward_mean"] == r[step]["reward_mean"]
        assert s[step]["loss"] == r[step]["loss"]


def test_resume_without_checkpoint_starts_fresh(tmp_path, capsys):
    config = _config(1)         # same compiled runner as the test above
    result = rlvr.fit(config, workdir=str(tmp_path), resume=True)
    assert "no checkpoint" in capsys.readouterr().out
    assert int(result.state.step) == 1
    assert os.path.isdir(tmp_path / "checkpoints" / "1")


def test_resume_with_a_changed_config_is_rejected_before_building(tmp_path, monkeypatch):
    # Was: the checkpoint restored into the new config's run and training went on silently.
    rlvr.fit(_config(1), workdir=str(tmp_path))      # same compiled runner as above
    changed = _config(2)
    changed.optimizer.learning_rate = 1e-2
    changed.rl.loss = "dapo"

    def no_build(*args, **kwargs):
        raise AssertionError("the runner was built before the configs were compared")

    monkeypatch.setattr(rlvr, "_runner_for", no_build)
    with pytest.raises(ValueError, match=r"--resume: the checkpoint in .* different config \("
                                         r"config.optimizer.learning_rate: 0.0005 -> 0.01; "
                                         r"config.rl.loss: 'grpo' -> 'dapo'\)"):
        rlvr.fit(changed, workdir=str(tmp_path), resume=True)


def test_runner_reused_across_seeds_runs_like_a_fresh_one(tmp_path):
    """Configs differing only in seed share one compiled runner, reseeded: same result."""
    c0, c1 = _config(2), _config(2)
    c1.seed = c0.seed + 1
    rlvr._RUNNERS.clear()  # noqa: SLF001
    seed0 = rlvr.fit(c0, workdir=str(tmp_path / "seed0"))
    runner = rlvr._runner_for(c0)  # noqa: SLF001
    reused = rlvr.fit(c1, workdir=str(tmp_path / "reused"))
    assert rlvr._runner_for(c1) is runner  # noqa: SLF001  (no second runner, no recompile)
    rlvr._RUNNERS.clear()  # noqa: SLF001
    fresh = rlvr.fit(c1, workdir=str(tmp_path / "fresh"))
    assert rlvr._runner_for(c1) is not runner  # noqa: SLF001
    a, b, z = _np(reused.state.params), _np(fresh.state.params), _np(seed0.state.params)
    jax.tree.map(np.testing.assert_array_equal, a, b)
    assert any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(z)))
