"""Multi-digit arithmetic: `"12+34="` -> `"46"`, generated on the fly.

The verifier reads the integer at the start of the completion; with `strict=True` (default)
anything after it other than whitespace fails the problem, so the policy must also learn to stop.

With `reverse_answer=True` the answer is written least-significant digit first (`"12+34="` ->
`"64"`, `"15+17="` -> `"23"`): each digit then depends only on the operands and the digit before
it, the format in which small transformers learn addition quickly (Lee et al., "Teaching
arithmetic to small transformers", arXiv:2307.03381).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from symbiosis_jax.tasks import base

_OPERATIONS = {"+": lambda a, b: a + b, "*": lambda a, b: a * b, "-": lambda a, b: a - b}


@dataclasses.dataclass(frozen=True)
class ArithmeticTask:
    """Integer arithmetic on operands of up to `num_digits` digits.

    Attributes:
        num_digits: digits per operand; operands are uniform in [0, 10**num_digits).
        operations: operators to draw from, a subset of ('+', '*', '-').
        min_digits: smallest digit count per operand (operands >= 10**(min_digits-1)).
        strict: a completion passes only if the answer is followed by nothing but whitespace.
        format_reward: reward in [0, 1) for a completion that starts with an integer but is wrong.
        reverse_answer: write the answer's digits least-significant first (sign first).
    """

    num_digits: int = 2
    operations: tuple = ("+",)
    min_digits: int = 1
    strict: bool = True
    format_reward: float = 0.0
    reverse_answer: bool = False
    name: str = "arithmetic"

    def __post_init__(self):
        if self.num_digits < 1:
            raise ValueError(f"num_digits={self.num_digits} must be >= 1")
        if not 1 <= self.min_digits <= self.num_digits:
            raise ValueError(
                f"min_digits={self.min_digits} must be in [1, num_digits={self.num_digits}]")
        if not self.operations or any(op not in _OPERATIONS for op in self.operations):
            raise ValueError(
                f"operations={self.operations!r} must be a non-empty subset of "
                f"{tuple(_OPERATIONS)}")
        if not 0.0 <= self.format_reward < 1.0:
            raise ValueError(f"format_reward={self.format_reward} must be in [0, 1)")

    def sample(self, rng: np.random.Generator, num_problems: int) -> list[base.Problem]:
        """Draws `num_problems` problems; see `base.Task.sample`."""
        low = 0 if self.min_digits == 1 else 10 ** (self.min_digits - 1)
        high = 10 ** self.num_digits
        a = rng.integers(low, high, size=num_problems)
        b = rng.integers(low, high, size=num_problems)
        ops = rng.integers(0, len(self.operations), size=num_problems)
        problems = []
        for x, y, o in zip(a.tolist(), b.tolist(), ops.tolist()):
            op = self.operations[o]
            answer = _format(_OPERATIONS[op](x, y), self.reverse_answer)
            problems.append(base.Problem(prompt=f"{x}{op}{y}=", answer=answer,
                                         demonstration=answer))
        return problems

    def verify(self, problem: base.Problem, completion: str) -> base.Verdict:
        """Scores `completion`; see `base.Task.verify`."""
        if not isinstance(completion, str):
            return base.Verdict(0.0, False)
        text = completion.lstrip(" ")
        rest = _after_int(text)
        number = text[:len(text) - len(rest)]
        if not number.lstrip("+-") or len(number) > 1000:   # int() refuses > 4300 digits
            return base.Verdict(float(self.format_reward) if number.lstrip("+-") else 0.0,
                                False)
        if self.reverse_answer:
            correct = number == problem.answer     # digit order matters, zeros included
        else:
            correct = str(int(number)) == problem.answer
        if correct and self.strict:
            correct = rest.strip() == ""
        if correct:
            return base.Verdict(1.0, True)
        return base.Verdict(float(self.format_reward), False)


def _format(value: int, reverse: bool) -> str:
    if not reverse:
        return str(value)
    sign = "-" if value < 0 else ""
    return sign + str(abs(value))[::-1]


def _after_int(s: str) -> str:
    i = 1 if s[:1] in ("-", "+") else 0
    while i < len(s) and "0" <= s[i] <= "9":
        i += 1
    return s[i:]
