"""Verifiable tasks: prompt sources plus verifiers returning a reward in [0, 1] and a pass flag.

Synthetic tasks (arithmetic, countdown) are generated on the fly from a numpy `Generator`; text
datasets (GSM8K-style) come from a local JSONL file, directly or through the TFDS builder in
`tfds_gsm8k` (array_record, no TensorFlow). `make_task(name, **kwargs)` builds one by name.
"""

from symbiosis_jax.tasks.arithmetic import ArithmeticTask
from symbiosis_jax.tasks.base import Problem, Task, Verdict, parse_leading_int, verify_batch
from symbiosis_jax.tasks.countdown import CountdownParseError, CountdownTask, parse_expression
from symbiosis_jax.tasks.gsm8k import (GSM8KTask, answers_match, extract_answer, load_jsonl,
                                       normalize_number)
from symbiosis_jax.tasks.reasoning_gym import ReasoningGymTask

TASKS = {
    "arithmetic": ArithmeticTask,
    "countdown": CountdownTask,
    "gsm8k": GSM8KTask.from_jsonl,
    "reasoning_gym": ReasoningGymTask,
}


def make_task(name: str, **kwargs) -> Task:
    """Builds a task by name.

    Args:
        name: one of `TASKS` ('arithmetic', 'countdown', 'gsm8k', 'reasoning_gym').
        **kwargs: the task's fields (for 'gsm8k': `path` to the JSONL file and options).

    Raises:
        ValueError: for an unknown name or bad fields.
    """
    if name not in TASKS:
        raise ValueError(f"task={name!r} is not one of {tuple(TASKS)}")
    try:
        return TASKS[name](**kwargs)
    except TypeError as e:
        raise ValueError(f"bad arguments for task {name!r}: {e}") from e


__all__ = [
    "ArithmeticTask", "CountdownParseError", "CountdownTask", "GSM8KTask", "Problem",
    "ReasoningGymTask", "TASKS", "Task", "Verdict", "answers_match", "extract_answer",
    "load_jsonl", "make_task", "normalize_number", "parse_expression", "parse_leading_int",
    "verify_batch",
]
