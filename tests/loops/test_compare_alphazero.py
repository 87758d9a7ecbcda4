"""`experiments/compare_alphazero.py`: arms and bad input, the per-run numbers, a 2-arm run."""

import json
import math
import os
import sys

import numpy as np
import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for _path in (_REPO, os.path.join(_REPO, "experiments")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import compare_alphazero as ca  # noqa: E402

SMOKE = os.path.join(_REPO, "configs", "alphazero_tictactoe.py:smoke")


def test_parse_arm():
    assert ca.parse_arm("gumbel") == ca.Arm("gumbel", ())
    arm = ca.parse_arm("big:network.mlp.hidden_sizes=(64, 64),search.algorithm=puct")
    assert arm == ca.Arm("big", (("network.mlp.hidden_sizes", "(64, 64)"), ("search.algorithm", "puct")))
    assert arm.label() == "big (network.mlp.hidden_sizes=(64, 64), search.algorithm=puct)"
    assert ca.parse_overrides(" a.b = 1 ,, c=x ", what="--set") == (("a.b", "1"), ("c", "x"))


@pytest.mark.parametrize("argv, match", [
    (["--arm=a b"], r"the arm's name 'a b' must be letters"),
    (["--arm=:search.algorithm=puct"], r"the arm's name '' must be"),
    (["--arm=.."], r"the arm's name '..' must be"),
    (["--arm=x:search.algorithm"], r"'search.algorithm' is not field=value"),
    (["--arm=x", "--arm=x:seed=3"], r"repeat a name"),
    (["--arm=x:search.nope=1"], r"arm 'x': --config.search.nope: search has no field 'nope'"),
    (["--arm=x:search.num_simulations=0"], r"arm 'x': config.search.num_simulations=0 must be a positive"),
    (["--set=search.algorithm=alphabeta"], r"arm 'gumbel': .*search.algorithm"),
    (["--iterations=0"], r"iterations=0 must be an integer >= 1"),
    (["--eval_every=-1"], r"eval_every=-1 must be an integer >= 0"),
    (["--seeds=1,1"], r"repeats a seed"),
    ([f"--config={os.path.join(_REPO, 'configs', 'grpo_arithmetic.py')}:smoke"],
     r"has loop='rlvr'; compare_alphazero compares runs of the alphazero loop"),
])
def test_bad_input_raises_before_anything_runs(argv, match, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=match):
        ca.main([f"--out={out}", f"--config={SMOKE}", *argv])
    assert not out.exists()


def test_make_config_applies_common_then_arm_typed_as_on_the_command_line():
    arm = ca.parse_arm("x:search.num_simulations=6,search.num_nodes=20,search.reuse_tree=True")
    cfg = ca.make_config(SMOKE, arm, seed=7, common=(("search.num_simulations", "5"),
                                                     ("train.batch_size", "32")),
                         iterations=3, eval_every=2)
    assert cfg.seed == 7 and cfg.train.num_iterations == 3 and cfg.eval.every == 2
    assert cfg.search.num_simulations == 6 and cfg.search.num_nodes == 20  # the arm wins over --set
    assert cfg.search.reuse_tree is True and cfg.train.batch_size == 32
    assert cfg.logging.log_every == 1 and cfg.logging.checkpoint_every == 3  # gcd(1, 2); the end only
    assert cfg.logging.progress_bar is False


def _run(arm, seed, evals, *, seconds=20.0):
    """Records of a run evaluated at `evals` = {iteration: (lines first, lines second, loss rate)}."""
    records = []
    for step, (first, second, loss_rate) in sorted(evals.items()):
        records.append({"step": step, "train/loss": 1.0 / step, "selfplay/game_length": 5.0 + step,
                        "wall_seconds": 2.0 * step, "cpu_seconds": 3.0 * step,
                        "eval/every_reply/losses_first": first, "eval/every_reply/losses_second": second,
                        "eval/minimax/win_rate": 0.0, "eval/minimax/loss_rate": loss_rate})
    return ca.RunResult(arm=arm, seed=seed, workdir="", records=records, seconds=seconds)


def test_run_metrics_and_summary_hand_worked():
    # Solved from the first evaluation after which none finds a losing line.
    a = _run("g", 0, {10: (3, 5, 0.5), 20: (0, 0, 0.0), 30: (0, 1, 0.25), 40: (0, 0, 0.0), 50: (0, 0, 0.0)})
    m = ca.run_metrics(a)
    assert m["solved_iteration"] == 40 and m["solved_wall_seconds"] == 80.0
    assert m["final_losing_lines_first"] == 0 and m["final_losing_lines_second"] == 0
    assert m["final_loss_rate/minimax"] == 0.0 and m["final_win_rate/minimax"] == 0.0
    assert m["final_train_loss"] == 1 / 50 and m["final_game_length"] == 55.0 and m["cpu_seconds"] == 150.0
    assert math.isnan(m["reused_root_visits"])
    # The last evaluation loses a line: never solved.
    b = _run("g", 1, {10: (0, 0, 0.0), 20: (2, 0, 0.125)}, seconds=30.0)
    mb = ca.run_metrics(b)
    assert math.isnan(mb["solved_iteration"]) and mb["final_losing_lines_first"] == 2
    # Every evaluation clean: solved at the first.
    assert ca.run_metrics(_run("g", 2, {10: (0, 0, 0.0), 20: (0, 0, 0.0)}))["solved_iteration"] == 10

    s = ca.summarize([a, b])["g"]
    assert s["seeds"] == [0, 1]
    assert s["solved_iteration"]["per_seed"]["0"] == 40 and math.isnan(s["solved_iteration"]["per_seed"]["1"])
    assert s["solved_iteration"]["mean"] == 40  # over the seeds that solved it
    assert s["final_loss_rate/minimax"]["mean"] == pytest.approx(0.0625)
    assert s["final_loss_rate/minimax"]["std"] == pytest.approx(np.sqrt(2) * 0.0625)  # sample std
    assert s["wall_seconds"]["per_seed"] == {"0": 20.0, "1": 30.0}
    row = ca.table({"g": s}).splitlines()[2]
    assert row.startswith("| g | 0,1 | 0/0; 2/0 | 40 / never | 80 / - | 0.0% ± 0.0% | 6.2% ± 8.8% |")
    assert "| 25 (20 / 30) | 105 ± 64 |" in row  # wall mean (per seed); process CPU s 150 and 60


def test_two_arms_one_iteration(tmp_path):
    # The default suite's end-to-end run: one iteration, evaluated against random play only, two
    # arms that differ in the evaluation only, so they share one compiled iteration (the slow test
    # below compares two searches) and train identically. Self-play reuses the tree, so the
    # default suite runs the loop with reuse once (its search is checked in test_alphazero.py).
    arms = (ca.parse_arm("a"), ca.parse_arm("b:eval.num_games=16"))
    results = ca.run_all(out=str(tmp_path), config=SMOKE, arms=arms, seeds=(5,), iterations=1, eval_every=1,
                         common=(("eval.opponents", "('random',)"), ("logging.use_tensorboard", "False"),
                                 ("search.reuse_tree", "True"), ("search.num_nodes", "13")))
    assert [(r.arm, r.seed) for r in results] == [("a", 5), ("b", 5)]
    summary = ca.summarize(results)
    rows = []
    for result, games in zip(results, (8, 16)):
        with open(os.path.join(result.workdir, "config.json")) as f:
            config = json.load(f)
        assert config["eval"]["num_games"] == games and config["eval"]["opponents"] == ["random"]
        (row,) = [r for r in result.records if "eval/random/win_rate" in r]
        assert row["step"] == 1 and (row["eval/random/win_rate"] * games) % 1 == 0  # whole games
        stat = summary[result.arm]["final_win_rate/random"]
        assert stat["per_seed"] == {"5": row["eval/random/win_rate"]} and stat["std"] == 0.0
        assert summary[result.arm]["final_train_loss"]["mean"] == row["train/loss"]
        # Mean root visits a search started with: 0 at a game's first move, more after
        # (each search adds 4 simulations; a game has at most 9 moves).
        assert 0.0 < row["selfplay/reused_root_visits"] < 9 * 4
        rows.append(row)
    assert rows[0]["train/loss"] == rows[1]["train/loss"]  # same seed and training settings
    md = ca.table(summary, arms)
    assert "| vs random: win rate | vs random: loss rate |" in md and "losing lines" not in md


@pytest.mark.slow
def test_two_arms_smoke(tmp_path):
    out = str(tmp_path)
    arms = (ca.parse_arm("gumbel"), ca.parse_arm("puct:search.algorithm=puct"))
    seen = []
    results = ca.run_all(out=out, config=SMOKE, arms=arms, seeds=(3,), iterations=2, eval_every=1,
                         common=(("eval.every_reply", "True"), ("logging.use_tensorboard", "False")),
                         on_run=lambda rs: seen.append(len(rs)))
    assert [(r.seed, r.arm) for r in results] == [(3, "gumbel"), (3, "puct")] and seen == [1, 2]
    paths = ca.write_outputs(out, results, arms=arms, meta={"seeds": [3]})
    with open(paths["png"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(paths["json"]) as f:
        payload = json.load(f)
    assert payload["arms"] == {"gumbel": {}, "puct": {"search.algorithm": "puct"}}
    for arm, algorithm in (("gumbel", "gumbel"), ("puct", "puct")):
        workdir = os.path.join(out, arm, "seed3")
        with open(os.path.join(workdir, "config.json")) as f:
            config = json.load(f)
        assert config["search"]["algorithm"] == algorithm and config["seed"] == 3
        rows = [r for r in ca.comparison.read_records(workdir) if "eval/every_reply/losses_first" in r]
        assert [r["step"] for r in rows] == [1, 2]
        # Independent of run_metrics: the numbers in the JSON are the last evaluation's.
        run = next(r for r in payload["runs"] if r["arm"] == arm)
        assert run["final_losing_lines_first"] == rows[-1]["eval/every_reply/losses_first"]
        assert run["final_losing_lines_second"] == rows[-1]["eval/every_reply/losses_second"]
        assert run["final_loss_rate/minimax"] == rows[-1]["eval/minimax/loss_rate"]
        lines = rows[-1]["eval/every_reply/losses_first"] + rows[-1]["eval/every_reply/losses_second"]
        assert lines > 0  # two iterations of a 16-unit network do not solve the game
    with pytest.raises(ValueError, match="already exist"):
        ca.run_all(out=out, config=SMOKE, arms=arms[:1], seeds=(3,), iterations=1)
