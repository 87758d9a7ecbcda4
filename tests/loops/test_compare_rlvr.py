"""`experiments/compare_rlvr.py`: bad input, the per-run numbers, and a 2-seed x 2-loss run."""

import json
import os
import sys

import numpy as np
import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for _path in (_REPO, os.path.join(_REPO, "experiments")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import compare_rlvr  # noqa: E402


@pytest.mark.parametrize("argv, match", [
    (["--losses=grpo,ppo"], "loss 'ppo' is not one of"),
    (["--losses="], "losses is empty"),
    (["--seeds="], "--seeds='' is empty"),
    (["--seeds=0,x"], "must be comma-separated integers"),
    (["--seeds=1,1"], "repeats a seed"),
    (["--steps=0"], "steps=0 must be an integer >= 1"),
    (["--sft_steps=-1"], "sft_steps=-1 must be an integer >= 0"),
    (["--variant=huge"], "variant 'huge' is not one of"),
])
def test_bad_input_raises_before_anything_runs(argv, match, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=match):
        compare_rlvr.main([f"--out={out}", *argv])
    assert not out.exists()


@pytest.mark.parametrize("steps, warmup", [(2, 0), (50, 5), (300, 20), (None, 20)])
def test_steps_caps_the_learning_rate_warmup(steps, warmup):
    # Was: --steps=2 left the configs' 20 warm-up steps, and the cosine schedule's check
    # (total_steps > warmup_steps) raised. The cap is steps // 10; from 200 steps the configs'
    # 20 stay.
    planned = compare_rlvr.make_configs(losses=("grpo", "dapo"), seeds=(0, 1), steps=steps,
                                        sft_steps=20)
    assert len(planned) == 4
    for _, _, config in planned:
        assert config.optimizer.warmup_steps == warmup
        assert config.optimizer.total_steps == (2000 if steps is None else steps)
        assert config.rl.num_steps == config.optimizer.total_steps


def test_out_that_is_a_file_is_rejected(tmp_path):
    # Was: FileExistsError from os.makedirs.
    (tmp_path / "afile").write_text("")
    with pytest.raises(ValueError, match=r"out='.*afile' is a file, not a directory"):
        compare_rlvr.main([f"--out={tmp_path / 'afile'}", "--variant=smoke", "--steps=1"])


def test_run_all_rejects_empty_seeds_and_existing_runs(tmp_path):
    with pytest.raises(ValueError, match="seeds is empty"):
        compare_rlvr.run_all(out=str(tmp_path), seeds=(), variant="smoke")
    (tmp_path / "grpo" / "seed0").mkdir(parents=True)
    with pytest.raises(ValueError, match="already exist"):
        compare_rlvr.run_all(out=str(tmp_path), losses=("grpo",), seeds=(0,), variant="smoke")


def _fake_run(seed, evals, rounds, *, samples_per_round=16):
    """Records of a 4-step run: `evals` = {step: pass@1}, `rounds[s - 1]` rounds at step s."""
    records = [{"step": -1, "sft_loss": 1.0}]
    records.append({"step": 0, "eval/pass@1": evals[0], "eval/pass@8": 0.5})
    for step, n in enumerate(rounds, start=1):
        row = {"step": step, "entropy": 1.0 - 0.1 * step, "kl": 0.01 * step,
               "sampling_rounds": n, "time/step": 0.1 * step}
        if step in evals:
            row.update({"eval/pass@1": evals[step], "eval/pass@8": 0.5 + 0.1 * step})
        records.append(row)
    return compare_rlvr.RunResult(loss="dapo", seed=seed, workdir="", records=records,
                                  seconds=10.0 + seed, samples_per_round=samples_per_round,
                                  num_steps=len(rounds))


def test_run_metrics_and_summary_hand_worked():
    # Rounds 1, 3, 2, 1 of 16 samples: 16, 64, 96, 112 drawn after steps 1-4. The budget of a
    # run without refills is 4 * 16 = 64, reached at step 2, so "equal samples" is step 2's eval.
    a = _fake_run(0, {0: 0.125, 2: 0.5, 4: 0.375}, [1, 3, 2, 1])
    m = compare_rlvr.run_metrics(a)
    assert m["start_pass@1"] == 0.125 and m["final_pass@1"] == 0.375
    assert m["best_pass@1"] == 0.5 and m["best_step"] == 2
    assert m["equal_samples_budget"] == 64
    assert m["pass@1_equal_samples"] == 0.5 and m["equal_samples_step"] == 2
    assert m["samples_per_step"] == 28.0            # 112 samples / 4 steps
    assert m["final_pass@k"] == pytest.approx(0.9) and m["pass_k"] == 8
    assert m["final_entropy"] == pytest.approx(0.6) and m["final_kl"] == pytest.approx(0.04)
    assert m["median_step_seconds"] == pytest.approx(0.25)  # median of 0.1, 0.2, 0.3, 0.4
    # Three rounds at step 1 already exceed the budget at step 2 (48 + 16 + 16 = 80 > 64):
    # only step 0's eval is within it.
    b = _fake_run(1, {0: 0.25, 2: 0.75, 4: 0.625}, [3, 2, 1, 1])
    mb = compare_rlvr.run_metrics(b)
    assert mb["pass@1_equal_samples"] == 0.25 and mb["equal_samples_step"] == 0

    s = compare_rlvr.summarize([a, b])["dapo"]
    assert s["seeds"] == [0, 1]
    assert s["final_pass@1"]["mean"] == pytest.approx(0.5)
    assert s["final_pass@1"]["std"] == pytest.approx(np.sqrt(2) * 0.125)   # sample std
    assert s["final_pass@1"]["per_seed"] == {"0": 0.375, "1": 0.625}
    assert s["best_pass@1"]["mean"] == pytest.approx(0.625)
    assert s["samples_per_step"]["mean"] == pytest.approx((28 + 28) / 2)
    assert s["wall_seconds"]["min"] == 10.0 and s["wall_seconds"]["max"] == 11.0
    row = compare_rlvr.table({"dapo": s}).splitlines()[2]
    assert "| 50.0% ± 17.7 (37.5-62.5) | 37.5 / 62.5 |" in row


def _read(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_two_seeds_two_losses_smoke(tmp_path):
    out = str(tmp_path)
    losses, seeds, steps = ("grpo", "dapo"), (0, 1), 2
    # One-digit sums and 100 SFT steps: some groups mix right and wrong answers, so DAPO's
    # refills vary from step to step.
    overrides = {"task.kwargs.num_digits": 1, "task.kwargs.min_digits": 1,
                 "sft.learning_rate": 3e-3, "log.tensorboard": False, "log.plot": False}
    seen = []
    results = compare_rlvr.run_all(
        out=out, losses=losses, seeds=seeds, steps=steps, sft_steps=100, variant="smoke",
        overrides=overrides,
        on_run=lambda rs: seen.append(compare_rlvr.write_outputs(out, rs)["md"]))
    assert [(r.seed, r.loss) for r in results] == [(0, "grpo"), (0, "dapo"), (1, "grpo"),
                                                   (1, "dapo")]
    assert len(seen) == 4                           # the outputs are rewritten after every run
    paths = compare_rlvr.write_outputs(out, results, meta={"seeds": list(seeds)})
    with open(paths["png"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(paths["json"]) as f:
        summary = json.load(f)["summary"]
    with open(paths["md"]) as f:
        md = f.read()

    # Independent recomputation from each run's metrics.jsonl.
    sft_losses = {}
    for loss in losses:
        finals, bests, entropies, kls, samples = [], [], [], [], []
        for seed in seeds:
            workdir = os.path.join(out, loss, f"seed{seed}")
            with open(os.path.join(workdir, "config.json")) as f:
                config = json.load(f)
            assert config["seed"] == seed and config["rl"]["num_steps"] == steps
            records = _read(workdir)
            ev = [r for r in records if r["step"] >= 0 and "eval/pass@1" in r]
            assert [r["step"] for r in ev] == [0, 1, 2]
            finals.append(ev[-1]["eval/pass@1"])
            bests.append(max(r["eval/pass@1"] for r in ev))
            last = [r for r in records if r["step"] == steps][0]
            entropies.append(last["entropy"])
            kls.append(last["kl"])
            per_round = config["rl"]["num_prompts"] * config["rl"]["group_size"]
            samples.append(np.mean([r["sampling_rounds"] * per_round for r in records
                                    if r["step"] >= 1]))
            sft_losses[(loss, seed)] = [r["sft_loss"] for r in records if "sft_loss" in r]
        s = summary[loss]
        assert s["final_pass@1"]["mean"] == pytest.approx(np.mean(finals), abs=1e-12)
        assert s["final_pass@1"]["per_seed"] == {str(k): v for k, v in zip(seeds, finals)}
        assert s["best_pass@1"]["mean"] == pytest.approx(np.mean(bests), abs=1e-12)
        assert s["final_entropy"]["mean"] == pytest.approx(np.mean(entropies), abs=1e-12)
        assert s["final_kl"]["mean"] == pytest.approx(np.mean(kls), abs=1e-12)
        assert s["samples_per_step"]["mean"] == pytest.approx(np.mean(samples), abs=1e-9)
        assert f"| {loss} | 0,1 | " in md
        assert f"| {np.mean(finals):.1%} ± " in md.split(f"| {loss} |")[1].splitlines()[0]
    # GRPO draws 4 x 4 samples per step; DAPO at least that and at most 4 rounds of them.
    assert summary["grpo"]["samples_per_step"]["mean"] == 16
    assert 16 < summary["dapo"]["samples_per_step"]["mean"] <= 64  # it did refill
    dapo_rounds = [r["sampling_rounds"] for seed in seeds
                   for r in _read(os.path.join(out, "dapo", f"seed{seed}")) if r["step"] >= 1]
    assert max(dapo_rounds) > 1 and all(r >= 1 for r in dapo_rounds)
    for value in summary["dapo"]["samples_per_step"]["per_seed"].values():
        assert value * steps % 16 == 0             # whole rounds of 16 samples
    assert f"| {summary['dapo']['final_entropy']['mean']:.3f} |" in md
    # One SFT warm-start per seed, shared by the losses of that seed.
    for seed in seeds:
        assert sft_losses[("grpo", seed)] == sft_losses[("dapo", seed)]
    assert sft_losses[("grpo", 0)] != sft_losses[("grpo", 1)]


def test_samples_drawn_and_window_means_hand_worked():
    a = _fake_run(0, {0: 0.125, 2: 0.5, 4: 0.375}, [1, 3, 2, 1])
    assert compare_rlvr._samples_drawn(a) == {0: 0, 1: 16, 2: 64, 3: 96, 4: 112}
    points = {1: 1.0, 2: 3.0, 3: 5.0, 4: 7.0, 5: 9.0}
    # Windows of 5 // 2 = 2 steps; the last window holds what is left.
    assert compare_rlvr._window_means(points, num_windows=2) == {2: 2.0, 4: 6.0, 5: 9.0}
    assert compare_rlvr._window_means(points, num_windows=100) == points


def test_a_loss_added_to_the_loop_runs_with_grpos_config(monkeypatch):
    # A new loss is one entry in the loop's table; without a configs/<loss>_arithmetic.py the
    # comparison runs GRPO's config with rl.loss set to it (it had its own hard-coded list).
    from symbiosis_jax import losses
    from symbiosis_jax.loops import rlvr_config

    monkeypatch.setitem(rlvr_config.LOSSES, "grpo_copy", losses.grpo_loss)
    planned = compare_rlvr.make_configs(losses=("dr_grpo", "grpo_copy"), seeds=(0,), steps=None,
                                        sft_steps=None, variant="smoke")
    assert [(loss, c.name, c.rl.loss) for _, loss, c in planned] == [
        ("dr_grpo", "dr_grpo_arithmetic", "dr_grpo"), ("grpo_copy", "grpo_arithmetic", "grpo_copy")]
    # Its advantages are std-normalised like every loss but Dr. GRPO's.
    assert rlvr_config.loss_settings(planned[1][2])[2] is True
    assert rlvr_config.loss_settings(planned[0][2])[2] is False
