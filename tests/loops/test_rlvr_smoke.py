"""One RL step of every RLVR config's `smoke` variant, through the real entry point."""

import json
import os
import sys

import numpy as np
import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from symbiosis_jax.training import driver  # noqa: E402

CONFIGS = ["grpo", "dapo", "gspo", "dr_grpo"]


def _records(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("name", CONFIGS)
def test_smoke_config_runs_one_step(name, tmp_path, capsys):
    config = driver.load_config(os.path.join(_REPO, f"configs/{name}_arithmetic.py:smoke"))
    assert config.loop == "rlvr" and config.rl.loss == name
    result = driver.run(config, workdir=str(tmp_path), verbose=False)
    records = _records(tmp_path)
    step1 = [r for r in records if r["step"] == 1]
    assert len(step1) == 1
    r = step1[0]
    for key in ("reward_mean", "train/pass@1", "eval/pass@1", "response_length", "entropy",
                "clip_fraction", "ratio_mean", "ratio_min", "ratio_max", "time/sample",
                "time/verify", "time/update", "grad_norm", "kl"):
        assert key in r, key
    assert 0.0 <= r["reward_mean"] <= 1.0
    assert 1.0 <= r["response_length"] <= config.max_new_tokens
    # mu = 1, one minibatch: the behaviour policy is the current one, so every ratio is 1
    # and nothing is clipped.
    assert r["ratio_mean"] == pytest.approx(1.0, abs=1e-6)
    assert r["ratio_min"] == pytest.approx(1.0, abs=1e-6)
    assert r["clip_fraction"] == 0.0
    # The entropy of a near-uniform policy over 32 tokens is close to log 32 = 3.47 nats.
    assert 2.5 < r["entropy"] <= np.log(32) + 1e-4
    assert r["time/sample"] > 0 and r["time/update"] > 0
    # SFT steps are logged at negative steps, eval at step 0 and 1.
    assert any(rec["step"] < 0 and "sft_loss" in rec for rec in records)
    assert [rec["step"] for rec in records if "eval/pass@1" in rec] == [0, 1]
    # Each evaluation is printed too (step 0 before RL, then the run's).
    out = capsys.readouterr().out
    assert f"[rlvr] RL step 1: held-out pass@1 {r['eval/pass@1']:.1%}\n" in out
    assert os.path.exists(tmp_path / "curves.png")
    assert os.listdir(tmp_path / "tb")
    assert os.path.isdir(tmp_path / "checkpoints" / "1")
    assert set(result) >= {"before/pass@1", "after/pass@1", "plot"}
    if name == "dapo":
        assert 1 <= r["sampling_rounds"] <= 1 + config.rl.max_refill_rounds


def test_entry_point_with_overrides(tmp_path):
    sys.path.insert(0, os.path.join(_REPO, "experiments"))
    try:
        import train as entry  # experiments/train.py
    finally:
        sys.path.pop(0)
    result = entry.main_from_argv([
        "train.py", f"--config={_REPO}/configs/grpo_arithmetic.py:smoke",
        f"--workdir={tmp_path}", "--config.rl.num_steps=2", "--config.sft.num_steps=0"])
    records = _records(tmp_path)
    assert not any(rec["step"] < 0 for rec in records)      # no SFT
    assert "before/pass@1" in result and "after/pass@1" in result
    with open(tmp_path / "config.json") as f:
        saved = json.load(f)
    assert saved["rl"]["num_steps"] == 2 and saved["sft"]["num_steps"] == 0
    assert [rec["step"] for rec in records if "reward_mean" in rec] == [1, 2]


def test_countdown_smoke_config_runs_one_step(tmp_path):
    """configs/grpo_countdown.py: the countdown task through the same loop (one RL step)."""
    config = driver.load_config(os.path.join(_REPO, "configs/grpo_countdown.py:smoke"))
    assert config.task.name == "countdown" and config.rl.loss == "grpo"
    driver.run(config, workdir=str(tmp_path), verbose=False)
    step1 = [r for r in _records(tmp_path) if r["step"] == 1]
    assert len(step1) == 1
    assert 0.0 <= step1[0]["reward_mean"] <= 1.0
    assert 1.0 <= step1[0]["response_length"] <= config.max_new_tokens
