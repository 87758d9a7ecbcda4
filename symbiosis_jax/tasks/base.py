"""The task interface: a prompt source plus a verifier.

A task is host-side Python: it makes `Problem`s from a numpy `Generator` (synthetic tasks) or reads
them from a file (text datasets), and scores any completion string with a `Verdict`. Verifiers are
total functions: garbage, empty strings and unicode all give a verdict, never an exception.

These records hold Python strings, so they are frozen standard dataclasses rather than pytrees; they
never enter a jitted function.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Problem:
    """One prompt with what its verifier needs.

    Attributes:
        prompt: text given to the model.
        answer: the reference answer (canonical text), used by the verifier and for SFT.
        demonstration: a full correct completion for SFT warm-starts (usually `answer`).
        meta: task-specific data the verifier uses (e.g. the countdown numbers), as a tuple of
            `(key, value)` pairs so the record stays hashable.
    """

    prompt: str
    answer: str
    demonstration: str = ""
    meta: tuple = ()

    def meta_dict(self) -> dict:
        """Returns `meta` as a dict."""
        return dict(self.meta)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A verifier's judgement of one completion.

    Attributes:
        reward: score in [0, 1].
        passed: True when the completion is fully correct (what pass@k counts).
    """

    reward: float
    passed: bool


class Task(Protocol):
    """What the RLVR loop needs from a task."""

    name: str

    def sample(self, rng: np.random.Generator, num_problems: int) -> list[Problem]:
        """Returns `num_problems` problems drawn with `rng`."""

    def verify(self, problem: Problem, completion: str) -> Verdict:
        """Scores `completion` (any string) for `problem`; never raises."""


def verify_batch(task: Task, problems: Sequence[Problem], completions: Sequence[str]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Verifies completions against problems, one completion per problem.

    Args:
        task: the task whose verifier to use.
        problems: `B` problems.
        completions: `B` completion strings.

    Returns:
        `(rewards_b, passed_b)`: float32 `[B]` rewards in [0, 1] and bool `[B]` pass flags.
    """
    if len(problems) != len(completions):
        raise ValueError(
            f"problems and completions must have equal length, got {len(problems)} and "
            f"{len(completions)}")
    rewards = np.zeros((len(problems),), np.float32)
    passed = np.zeros((len(problems),), bool)
    for i, (problem, completion) in enumerate(zip(problems, completions)):
        verdict = task.verify(problem, completion)
        rewards[i] = verdict.reward
        passed[i] = verdict.passed
    return rewards, passed


def parse_leading_int(text: str) -> int | None:
    """Parses an optionally signed integer at the start of `text` (after spaces).

    Args:
        text: any string.

    Returns:
        The integer, or None when `text` does not start with one. Digits only in ASCII, so
        unicode digits such as '٣' are not numbers here.
    """
    s = text.lstrip(" ")
    i = 0
    if s[:1] in ("-", "+"):
        i = 1
    j = i
    while j < len(s) and "0" <= s[j] <= "9":
        j += 1
    if j == i or j - i > 4000:
        return None
    return int(s[:j])
