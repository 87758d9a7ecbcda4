"""The TFDS builder writes array_record shards and reads them back without TensorFlow."""

import sys

from symbiosis_jax.tasks import tfds_gsm8k


def test_prepare_and_load_roundtrip(tmp_path):
    records = [(f"What is {i}+{i}?", f"Double it.\n#### {2 * i}") for i in range(7)]
    tfds_gsm8k.write_jsonl(records, tmp_path / "train.jsonl")
    tfds_gsm8k.write_jsonl(records[:2], tmp_path / "test.jsonl")
    tfds_gsm8k.prepare_gsm8k(manual_dir=tmp_path, data_dir=tmp_path / "tfds")
    train = tfds_gsm8k.load_problems(data_dir=tmp_path / "tfds", split="train")
    test = tfds_gsm8k.load_problems(data_dir=tmp_path / "tfds", split="test")
    assert len(test) == 2
    assert sorted((p.prompt, p.demonstration) for p in train) == sorted(records)
    for p in train:
        i = int(p.prompt.split()[2].split("+")[0])
        assert p.answer == str(2 * i)
    assert list((tmp_path / "tfds").rglob("*.array_record*"))
    assert "tensorflow" not in sys.modules
