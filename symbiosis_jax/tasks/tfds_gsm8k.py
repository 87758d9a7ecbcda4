"""A TFDS builder for a local GSM8K-style JSONL file, stored as array_record (no TensorFlow).

The user supplies `train.jsonl` (and optionally `test.jsonl`) in a directory; the builder writes
array_record shards that are read back with `as_data_source()` (random access, no TensorFlow).
`tensorflow_datasets` is imported only when these functions run.

Example:
    builder = prepare_gsm8k(manual_dir="~/gsm8k", data_dir="~/tfds")
    problems = load_problems(data_dir="~/tfds", split="train")
"""

from __future__ import annotations

import functools
import json
import pathlib

from symbiosis_jax.tasks import base, gsm8k

_SPLITS = ("train", "test")


@functools.lru_cache(maxsize=None)
def _builder_class():
    import tensorflow_datasets as tfds  # imported on use: heavy

    class Gsm8kJsonl(tfds.core.GeneratorBasedBuilder):
        """GSM8K-style word problems from a local JSONL file."""

        VERSION = tfds.core.Version("1.0.0")
        # No checksums file beside this module; skipping the lookup also avoids TFDS's
        # optional `importlib_resources` import, which this environment lacks.
        code_path = None
        MANUAL_DOWNLOAD_INSTRUCTIONS = (
            "Place train.jsonl (and optionally test.jsonl) in the manual directory: one JSON "
            "object per line with 'question' and 'answer' fields, the answer ending in "
            "'#### <final answer>'.")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                description="GSM8K-style word problems from a local JSONL file.",
                features=tfds.features.FeaturesDict({
                    "question": tfds.features.Text(),
                    "answer": tfds.features.Text(),
                    "final_answer": tfds.features.Text(),
                }),
                supervised_keys=None,
            )

        def _split_generators(self, dl_manager):
            manual = pathlib.Path(dl_manager.manual_dir)
            splits = {s: self._generate_examples(manual / f"{s}.jsonl")
                      for s in _SPLITS if (manual / f"{s}.jsonl").exists()}
            if "train" not in splits:
                raise ValueError(f"manual_dir={str(manual)!r} has no train.jsonl")
            return splits

        def _generate_examples(self, path):
            for problem_index, problem in enumerate(gsm8k.load_jsonl(path)):
                yield problem_index, {"question": problem.prompt,
                                      "answer": problem.demonstration,
                                      "final_answer": problem.answer}

    return Gsm8kJsonl


def prepare_gsm8k(*, manual_dir: str | pathlib.Path, data_dir: str | pathlib.Path):
    """Builds (or reuses) the array_record dataset from `manual_dir/{train,test}.jsonl`.

    Args:
        manual_dir: directory holding `train.jsonl` and optionally `test.jsonl`.
        data_dir: TFDS data directory to write to.

    Returns:
        The prepared `tfds` builder.
    """
    import tensorflow_datasets as tfds

    manual_dir = pathlib.Path(manual_dir).expanduser()
    if not (manual_dir / "train.jsonl").exists():
        raise ValueError(f"manual_dir={str(manual_dir)!r} must contain train.jsonl")
    builder = _builder_class()(data_dir=str(pathlib.Path(data_dir).expanduser()),
                               file_format="array_record")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
    return builder


def load_problems(*, data_dir: str | pathlib.Path, split: str = "train") -> list[base.Problem]:
    """Reads a prepared split back as problems, without TensorFlow.

    Args:
        data_dir: the TFDS data directory given to `prepare_gsm8k`.
        split: 'train' or 'test'.

    Returns:
        The split's problems in stored order.
    """
    if split not in _SPLITS:
        raise ValueError(f"split={split!r} is not one of {_SPLITS}")
    builder = _builder_class()(data_dir=str(pathlib.Path(data_dir).expanduser()),
                               file_format="array_record")
    source = builder.as_data_source(split=split)

    def text(x):
        return x.decode("utf-8") if isinstance(x, bytes) else str(x)

    return [base.Problem(prompt=text(r["question"]), answer=text(r["final_answer"]),
                         demonstration=text(r["answer"])) for r in source]


def write_jsonl(problems, path: str | pathlib.Path) -> None:
    """Writes `(question, answer)` records as GSM8K-style JSONL (used to make test data)."""
    with open(path, "w", encoding="utf-8") as f:
        for question, answer in problems:
            f.write(json.dumps({"question": question, "answer": answer}) + "\n")
