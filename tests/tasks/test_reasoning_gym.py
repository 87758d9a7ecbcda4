"""reasoning-gym adapter: answers checked against an independent evaluation of the question,
garbage never raises, and one RL step of the loop runs on a reasoning-gym dataset."""

import ast
import json
import os
import random
import string
import sys
from fractions import Fraction

import numpy as np
import pytest

pytest.importorskip("reasoning_gym")

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from symbiosis_jax import tasks  # noqa: E402

_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
        ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}


def _value(expr: str) -> Fraction:
    """Exact value of an integer expression with + - * / and parentheses (our own reference)."""

    def walk(node):
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = walk(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return Fraction(node.value)
        raise ValueError(f"unexpected node {ast.dump(node)}")

    return walk(ast.parse(expr, mode="eval").body)


def test_chain_sum_answers_match_an_independent_evaluation():
    task = tasks.make_task("reasoning_gym", dataset_name="chain_sum", size=50, seed=3)
    problems = task.sample(np.random.default_rng(0), 20)
    assert len({p.meta_dict()["index"] for p in problems}) > 5
    for p in problems:
        expr = p.prompt.rsplit(":", 1)[1].strip().rstrip("=").strip()
        value = _value(expr)
        assert value.denominator == 1 and int(p.answer) == value
        good = task.verify(p, f" {int(value)}\n")
        assert good.reward == 1.0 and good.passed
        bad = task.verify(p, str(int(value) + 1))
        assert bad.reward < 1.0 and not bad.passed


def test_same_seed_same_problems_and_garbage_never_raises():
    a = tasks.ReasoningGymTask(dataset_name="basic_arithmetic", size=20, seed=1)
    b = tasks.ReasoningGymTask(dataset_name="basic_arithmetic", size=20, seed=1)
    pa = a.sample(np.random.default_rng(5), 8)
    assert [p.prompt for p in pa] == [p.prompt for p in b.sample(np.random.default_rng(5), 8)]
    rng = random.Random(0)
    for _ in range(200):
        s = "".join(rng.choice(string.printable + "½🙂\u0000") for _ in range(rng.randint(0, 30)))
        v = a.verify(pa[0], s)
        assert 0.0 <= v.reward <= 1.0 and v.passed == (v.reward >= 1.0)
    # A problem that does not come from this dataset scores 0 instead of raising.
    assert a.verify(tasks.Problem("q", "1", "1"), "1").reward == 0.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="size=0 must be >= 1"):
        tasks.ReasoningGymTask(size=0)
    with pytest.raises(ValueError, match="'no_such_dataset'"):
        tasks.make_task("reasoning_gym", dataset_name="no_such_dataset")


def test_one_rl_step_on_a_reasoning_gym_dataset(tmp_path):
    from symbiosis_jax.training import driver

    config = driver.load_config(os.path.join(_REPO, "configs/grpo_arithmetic.py:smoke"))
    config.task = dict(name="reasoning_gym", kwargs=dict(dataset_name="chain_sum", size=64, seed=0))
    config.tokenizer = "ascii"
    config.max_prompt_length = 128
    config.max_new_tokens = 6
    config.log.tensorboard = False
    driver.run(config, workdir=str(tmp_path), verbose=False)
    with open(tmp_path / "metrics.jsonl") as f:
        step1 = [r for r in map(json.loads, f) if r["step"] == 1]
    assert len(step1) == 1 and 0.0 <= step1[0]["reward_mean"] <= 1.0
    # A near-uniform policy over the 99 ascii ids has entropy close to log 99 = 4.60 nats.
    assert 3.5 < step1[0]["entropy"] <= np.log(99) + 1e-4
