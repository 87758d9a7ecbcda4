"""GSM8K-style answer extraction and a task over a local JSONL file.

Answers are taken from the last `#### 42` marker or the last `\\boxed{42}`; numbers are compared
exactly after normalisation (`1,234` = `1234` = `1234.0` = `$1234`). The JSONL file has one object per
line with `question` and `answer` fields, the answer ending in `#### <final answer>` as in GSM8K.
Nothing is downloaded: the user supplies the file.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re
from fractions import Fraction

import numpy as np

from symbiosis_jax.tasks import base

_HASH_RE = re.compile(r"####[ \t]*(\S*)")
_NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_MAX_TEXT = 100_000


def _boxed_contents(text: str) -> list[tuple[int, str]]:
    """Returns `(position, contents)` of every `\\boxed{...}` (balanced braces) in `text`."""
    out = []
    start = 0
    while True:
        i = text.find("\\boxed{", start)
        if i < 0:
            return out
        j = i + len("\\boxed{")
        depth = 1
        k = j
        while k < len(text) and depth:
            if text[k] == "{":
                depth += 1
            elif text[k] == "}":
                depth -= 1
            k += 1
        if depth == 0:
            out.append((i, text[j:k - 1]))
        start = j


def extract_answer(text: str, *, fallback_last_number: bool = False) -> str | None:
    """Extracts the final answer from a solution text.

    Args:
        text: any string.
        fallback_last_number: when neither marker is present, use the last number in the text.

    Returns:
        The answer text (stripped), or None when none is found. When several markers appear,
        the last one in the text wins; `####` takes the next whitespace-free word.
    """
    if not isinstance(text, str):
        return None
    text = text[:_MAX_TEXT]
    candidates = []
    for m in _HASH_RE.finditer(text):
        candidates.append((m.start(), m.group(1).strip()))
    for position, content in _boxed_contents(text):
        candidates.append((position, content.strip()))
    candidates = [c for c in candidates if c[1]]
    if candidates:
        return max(candidates, key=lambda c: c[0])[1]
    if fallback_last_number:
        numbers = _NUMBER_RE.findall(text)
        if numbers:
            return numbers[-1]
    return None


def normalize_number(text: str) -> Fraction | None:
    """Parses a number written as in math word problems.

    Strips `$`, `%`, commas and surrounding spaces and a trailing period; accepts integers,
    decimals and simple fractions `a/b`. Returns None for anything else.
    """
    if not isinstance(text, str):
        return None
    s = text.strip().replace(",", "").replace("$", "").replace("%", "").strip()
    if s.endswith("."):
        s = s[:-1]
    if len(s) > 64 or not s:
        return None
    m = re.fullmatch(r"(-?\d+)\s*/\s*(\d+)", s)
    try:
        if m:
            if int(m.group(2)) == 0:
                return None
            return Fraction(int(m.group(1)), int(m.group(2)))
        if re.fullmatch(r"-?(\d+(\.\d*)?|\.\d+)", s):
            return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None
    return None


def answers_match(predicted: str | None, reference: str) -> bool:
    """True when two answers agree: numerically if both are numbers, else as stripped text."""
    if predicted is None:
        return False
    a, b = normalize_number(predicted), normalize_number(reference)
    if a is not None and b is not None:
        return a == b
    return predicted.strip() == reference.strip()


def load_jsonl(path: str | pathlib.Path, *, question_key: str = "question",
               answer_key: str = "answer") -> list[base.Problem]:
    """Reads a GSM8K-style JSONL file into problems.

    Args:
        path: file with one JSON object per line.
        question_key: field holding the question.
        answer_key: field holding the worked solution ending in `#### <answer>`.

    Returns:
        Problems whose `answer` is the extracted final answer and whose `demonstration` is the full
        solution text.

    Raises:
        ValueError: naming the line when a record lacks a field or a final answer.
    """
    problems = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            if question_key not in record or answer_key not in record:
                raise ValueError(
                    f"{path}:{lineno}: record needs fields {question_key!r} and {answer_key!r}, "
                    f"has {sorted(record)}")
            final = extract_answer(record[answer_key])
            if final is None:
                raise ValueError(f"{path}:{lineno}: answer has no '#### <answer>' or \\boxed{{}}")
            problems.append(base.Problem(prompt=record[question_key], answer=final,
                                         demonstration=record[answer_key]))
    return problems


@dataclasses.dataclass(frozen=True)
class GSM8KTask:
    """A word-problem task over a fixed list of problems.

    Attributes:
        problems: the pool, e.g. from `load_jsonl` or the TFDS builder.
        fallback_last_number: see `extract_answer`.
        format_reward: reward in [0, 1) for a completion with an extractable but wrong answer.
    """

    problems: tuple = ()
    fallback_last_number: bool = False
    format_reward: float = 0.0
    name: str = "gsm8k"

    def __post_init__(self):
        if not self.problems:
            raise ValueError("problems must be a non-empty sequence of Problem")
        if not 0.0 <= self.format_reward < 1.0:
            raise ValueError(f"format_reward={self.format_reward} must be in [0, 1)")

    @classmethod
    def from_jsonl(cls, path: str | pathlib.Path, **kwargs) -> "GSM8KTask":
        """Builds the task from a local JSONL file (see `load_jsonl`)."""
        return cls(problems=tuple(load_jsonl(path)), **kwargs)

    def sample(self, rng: np.random.Generator, num_problems: int) -> list[base.Problem]:
        """Draws `num_problems` problems uniformly with replacement."""
        idx = rng.integers(0, len(self.problems), size=num_problems)
        return [self.problems[i] for i in idx.tolist()]

    def verify(self, problem: base.Problem, completion: str) -> base.Verdict:
        """Scores `completion`; see `base.Task.verify`."""
        predicted = extract_answer(completion, fallback_last_number=self.fallback_last_number)
        if predicted is None:
            return base.Verdict(0.0, False)
        if answers_match(predicted, problem.answer):
            return base.Verdict(1.0, True)
        return base.Verdict(float(self.format_reward), False)
