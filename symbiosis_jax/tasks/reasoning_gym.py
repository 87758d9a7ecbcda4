"""Adapter for reasoning-gym's offline procedural generators (used only if installed).

`reasoning_gym.create_dataset(name, size=..., seed=...)` yields entries with `question`, `answer`
and `metadata`; its `score_answer(answer, entry)` gives a score in [0, 1]. This adapter turns that
into a `Task`. The package is optional and imported on first use.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from symbiosis_jax.tasks import base


def is_available() -> bool:
    """True when the `reasoning_gym` package can be imported."""
    try:
        import reasoning_gym  # noqa: F401
    except ImportError:
        return False
    return True


@dataclasses.dataclass(frozen=True)
class ReasoningGymTask:
    """A reasoning-gym dataset as a task.

    Attributes:
        dataset_name: a reasoning-gym dataset name, e.g. 'basic_arithmetic'.
        size: how many entries to generate up front.
        seed: the generator's seed.
        pass_threshold: a score at or above this counts as passed.
    """

    dataset_name: str = "basic_arithmetic"
    size: int = 1000
    seed: int = 0
    pass_threshold: float = 1.0
    name: str = "reasoning_gym"

    def __post_init__(self):
        if self.size < 1:
            raise ValueError(f"size={self.size} must be >= 1")
        if not is_available():
            raise ValueError(
                "task 'reasoning_gym' needs the optional package reasoning-gym "
                "(pip install reasoning-gym)")
        from reasoning_gym.factory import DATASETS

        if self.dataset_name not in DATASETS:
            raise ValueError(f"dataset_name={self.dataset_name!r} is not a reasoning-gym dataset; "
                             f"allowed: {tuple(sorted(DATASETS))}")

    @functools.cached_property
    def _dataset(self):
        import reasoning_gym

        return reasoning_gym.create_dataset(self.dataset_name, size=self.size, seed=self.seed)

    def sample(self, rng: np.random.Generator, num_problems: int) -> list[base.Problem]:
        """Draws `num_problems` entries uniformly with replacement."""
        out = []
        for i in rng.integers(0, self.size, size=num_problems).tolist():
            entry = self._dataset[i]
            out.append(base.Problem(prompt=entry["question"], answer=str(entry["answer"]),
                                    demonstration=str(entry["answer"]), meta=(("index", i),)))
        return out

    def verify(self, problem: base.Problem, completion: str) -> base.Verdict:
        """Scores with reasoning-gym's own `score_answer`, mapping any error to reward 0."""
        try:
            entry = self._dataset[problem.meta_dict()["index"]]
            score = float(self._dataset.score_answer(str(completion).strip(), entry))
        except Exception:  # noqa: BLE001 (a verifier never raises)
            return base.Verdict(0.0, False)
        score = min(max(score, 0.0), 1.0)
        return base.Verdict(score, score >= self.pass_threshold)
