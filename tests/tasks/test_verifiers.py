"""Verifier tests: hand-worked cases, a naive reference, and fuzzing with random strings."""

import random
import string
from fractions import Fraction

import numpy as np
import pytest

from symbiosis_jax import tasks


def _random_strings(seed, n=400):
    rng = random.Random(seed)
    alphabet = string.printable + "٣½×÷−—\u0000\u202e🙂{}\\#" + "0123456789" * 3 + "+-*/()" * 3
    out = ["", " ", "\n", "####", "\\boxed{", "\\boxed{}", "((((((", ")" * 50, "1" * 5000,
           "(" * 1000 + "1" + ")" * 1000, "1/0", "-", "--1", "9" * 300 + "*" + "9" * 300]
    for _ in range(n):
        out.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))))
    return out


def _all_tasks():
    problems = (tasks.Problem("q", "42", "#### 42"), tasks.Problem("q", "3.5", "#### 3.5"))
    return [tasks.ArithmeticTask(num_digits=2, operations=("+", "*", "-")),
            tasks.ArithmeticTask(num_digits=3, format_reward=0.1),
            tasks.ArithmeticTask(num_digits=2, reverse_answer=True, operations=("+", "-")),
            tasks.CountdownTask(format_reward=0.1), tasks.CountdownTask(use_all=False),
            tasks.GSM8KTask(problems=problems, fallback_last_number=True)]


@pytest.mark.parametrize("task", _all_tasks(), ids=lambda t: t.name)
def test_fuzz_never_raises_and_reward_in_range(task):
    problems = task.sample(np.random.default_rng(0), 4)
    for s in _random_strings(1):
        for p in problems:
            v = task.verify(p, s)
            assert isinstance(v, tasks.Verdict)
            assert 0.0 <= v.reward <= 1.0
            assert v.passed == (v.reward == 1.0)
    # Non-strings are garbage too.
    assert task.verify(problems[0], None).reward == 0.0


@pytest.mark.parametrize("task", _all_tasks(), ids=lambda t: t.name)
def test_demonstrations_pass(task):
    for p in task.sample(np.random.default_rng(3), 50):
        assert task.verify(p, p.demonstration) == tasks.Verdict(1.0, True), p


def test_arithmetic_hand_worked():
    task = tasks.ArithmeticTask(num_digits=2, operations=("+",))
    p = tasks.Problem("12+34=", "46", "46")
    assert task.verify(p, "46").passed
    assert task.verify(p, " 46 ").passed
    assert task.verify(p, "046").passed
    assert not task.verify(p, "46x").passed           # strict: must stop after the answer
    assert not task.verify(p, "47").passed
    assert not task.verify(p, "4 6").passed
    assert tasks.ArithmeticTask(strict=False).verify(p, "46x").passed
    assert tasks.ArithmeticTask(format_reward=0.2).verify(p, "47").reward == pytest.approx(0.2)
    assert tasks.ArithmeticTask(format_reward=0.2).verify(p, "ab").reward == 0.0


def test_arithmetic_reversed_answers():
    task = tasks.ArithmeticTask(num_digits=2, operations=("+", "-"), reverse_answer=True)
    assert task.verify(tasks.Problem("15+17=", "23"), "23").passed          # 32 reversed
    assert not task.verify(tasks.Problem("15+17=", "23"), "32").passed
    p = tasks.Problem("10+20=", "03")                                        # 30 reversed
    assert task.verify(p, "03").passed
    assert not task.verify(p, "3").passed and not task.verify(p, "30").passed
    for q in task.sample(np.random.default_rng(5), 100):
        a, op, b = q.prompt[:-1].partition("+") if "+" in q.prompt else q.prompt[:-1].partition("-")
        want = int(a) + int(b) if op == "+" else int(a) - int(b)
        sign = "-" if want < 0 else ""
        assert q.answer == sign + str(abs(want))[::-1]


def test_arithmetic_sampling_matches_numpy_reference():
    task = tasks.ArithmeticTask(num_digits=3, operations=("+", "*"), min_digits=2)
    problems = task.sample(np.random.default_rng(7), 200)
    for p in problems:
        op = "+" if "+" in p.prompt else "*"
        a, b = p.prompt[:-1].split(op)
        assert 10 <= int(a) < 1000 and 10 <= int(b) < 1000
        assert int(p.answer) == (int(a) + int(b) if op == "+" else int(a) * int(b))
    # Deterministic in the generator's seed.
    assert problems == task.sample(np.random.default_rng(7), 200)
    assert {("+" in p.prompt) for p in problems} == {True, False}


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_digits=0), r"num_digits=0 must be >= 1"),
    (dict(operations=("^",)), r"operations=\('\^',\) must be a non-empty subset of"),
    (dict(operations=()), r"operations=\(\) must be a non-empty subset of"),
    (dict(min_digits=3, num_digits=2), r"min_digits=3 must be in \[1, num_digits=2\]"),
    (dict(format_reward=1.0), r"format_reward=1.0 must be in \[0, 1\)"),
])
def test_arithmetic_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tasks.ArithmeticTask(**kwargs)


def test_countdown_parser_values():
    cases = {"1+2*3": 7, "(1+2)*3": 9, "8/4/2": 1, "2*(3+4)-5": 9, " 7 - 3 - 2 ": 2,
             "6/4": Fraction(3, 2), "((((5))))": 5, "10-2*3+4/2": 6}
    for text, want in cases.items():
        value, _ = tasks.parse_expression(text)
        assert value == want, text
    assert tasks.parse_expression("3*(12-5)")[1] == [3, 12, 5]


@pytest.mark.parametrize("text", [
    "", "1+", "+1", "-1+2", "(1+2", "1+2)", "1 2", "1**2", "2^3", "1/0", "1/(2-2)", "abs(1)",
    "__import__('os')", "1.5+1", "1e3", "x", "1+2=3", "()", "٣+1", "1,2", "1%2",
    "(" * 40 + "1" + ")" * 40])
def test_countdown_parser_rejects(text):
    with pytest.raises(tasks.CountdownParseError):
        tasks.parse_expression(text)


def test_countdown_verifier_rules():
    task = tasks.CountdownTask(num_numbers=3, use_all=True)
    p = tasks.Problem("3 5 7>22:", "22", "3*5+7", meta=(("numbers", (3, 5, 7)), ("target", 22)))
    assert task.verify(p, "3*5+7").passed
    assert task.verify(p, "7+5*3").passed
    assert task.verify(p, "(7 + (5 * 3))").passed
    assert not task.verify(p, "15+7").passed                 # 15 is not a given number
    assert not task.verify(p, "3*5+7+0").passed              # 0 is not given
    assert not task.verify(p, "3*5+7*1").passed              # 1 is not given
    assert task.verify(p, " 3 * 5 + 7 ").passed              # spaces are fine
    assert not task.verify(p, "3*5+7;").passed               # ';' is not allowed
    assert not task.verify(p, "3*5*7").passed                # wrong value
    assert not task.verify(p, "22").passed
    q = tasks.Problem("3 3 4>10:", "10", "3+3+4", meta=(("numbers", (3, 3, 4)), ("target", 10)))
    assert task.verify(q, "3+3+4").passed
    assert not task.verify(q, "3+3+3+1").passed              # 3 used more often than given
    assert not task.verify(q, "4+3*2").passed
    # use_all=False accepts a subset; use_all=True does not.
    r = tasks.Problem("2 5 9>10:", "10", "2*5", meta=(("numbers", (2, 5, 9)), ("target", 10)))
    assert not task.verify(r, "2*5").passed
    assert tasks.CountdownTask(use_all=False).verify(r, "2*5").passed
    assert tasks.CountdownTask(format_reward=0.1).verify(r, "2*5*9").reward == pytest.approx(0.1)


def test_countdown_problems_are_solvable_positive_integers():
    task = tasks.CountdownTask(num_numbers=4, max_number=12, max_target=200)
    for p in task.sample(np.random.default_rng(11), 100):
        meta = p.meta_dict()
        assert len(meta["numbers"]) == 4 and all(1 <= n <= 12 for n in meta["numbers"])
        assert 1 <= meta["target"] <= 200
        value, used = tasks.parse_expression(p.demonstration)
        assert value == meta["target"] and sorted(used) == sorted(meta["numbers"])
        assert p.prompt == " ".join(map(str, meta["numbers"])) + f">{meta['target']}:"


def test_gsm8k_extraction():
    assert tasks.extract_answer("blah\n#### 72") == "72"
    assert tasks.extract_answer("#### 1,234") == "1,234"
    assert tasks.extract_answer("so \\boxed{\\frac{1}{2}}.") == "\\frac{1}{2}"
    assert tasks.extract_answer("\\boxed{1} then \\boxed{2}") == "2"
    assert tasks.extract_answer("\\boxed{5} and finally #### 6") == "6"
    assert tasks.extract_answer("#### 6, or \\boxed{7}") == "7"
    assert tasks.extract_answer("no marker 3 and 4") is None
    assert tasks.extract_answer("no marker 3 and 4.5", fallback_last_number=True) == "4.5"
    assert tasks.extract_answer("\\boxed{unclosed") is None
    assert tasks.extract_answer("####") is None


def test_gsm8k_number_normalisation():
    n = tasks.normalize_number
    assert n("1,234") == 1234 and n("$5") == 5 and n("5.") == 5 and n("50%") == 50
    assert n("3.50") == Fraction(7, 2) and n("-2") == -2 and n("3/4") == Fraction(3, 4)
    assert n("1/0") is None and n("abc") is None and n("") is None and n("1e5") is None
    assert tasks.answers_match("1,234.0", "1234")
    assert not tasks.answers_match("1234.5", "1234")
    assert tasks.answers_match("yes", " yes ")
    assert not tasks.answers_match(None, "1")


def test_gsm8k_task_from_jsonl(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"question": "2+3?", "answer": "2 plus 3 is 5.\\n#### 5"}\n'
                    '\n{"question": "Half of 7?", "answer": "#### 3.5"}\n')
    task = tasks.make_task("gsm8k", path=path)
    assert [p.answer for p in task.problems] == ["5", "3.5"]
    p = task.problems[0]
    assert task.verify(p, "The answer is #### 5").passed
    assert task.verify(p, "so \\boxed{5.0}").passed
    assert not task.verify(p, "#### 6").passed
    assert not task.verify(p, "5").passed          # no marker, no fallback
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "no final answer"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        tasks.load_jsonl(bad)


def test_verify_batch_and_registry():
    task = tasks.make_task("arithmetic", num_digits=1)
    problems = [tasks.Problem("1+2=", "3"), tasks.Problem("4+4=", "8")]
    rewards, passed = tasks.verify_batch(task, problems, ["3", "9"])
    np.testing.assert_array_equal(rewards, np.array([1.0, 0.0], np.float32))
    np.testing.assert_array_equal(passed, np.array([True, False]))
    with pytest.raises(ValueError, match="task='chess' is not one of"):
        tasks.make_task("chess")
    with pytest.raises(ValueError, match="bad arguments"):
        tasks.make_task("arithmetic", digits=2)
    with pytest.raises(ValueError):
        tasks.verify_batch(task, problems, ["3"])
