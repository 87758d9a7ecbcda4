"""Tokenizers: the character tokenizer and `tokenizer.json` through `tokenizers`."""

import json

import pytest

from symbiosis_jax import models


def test_char_tokenizer_round_trip_and_ids():
    tok = models.CharTokenizer()
    assert tok.vocab_size == 32
    assert (tok.pad_id, tok.bos_id, tok.eos_id) == (0, 1, 2)
    text = "(12+3)*4 = 60\n#"
    ids = tok.encode(text, add_bos=True, add_eos=True)
    assert ids[0] == 1 and ids[-1] == 2 and len(ids) == len(text) + 2
    assert ids[1:4] == [3 + 14, 3 + 1, 3 + 2]  # '(' is symbol 14, '1' is 1, '2' is 2
    assert tok.decode(ids) == text
    assert tok.decode(ids, skip_special_tokens=False) == "<bos>" + text + "<eos>"
    assert max(ids) < tok.vocab_size
    with pytest.raises(ValueError, match="'x'"):
        tok.encode("3x")
    with pytest.raises(ValueError, match="symbols"):
        models.CharTokenizer("aa")
    small = models.CharTokenizer("ab")
    assert small.vocab_size == 5 and small.encode("ba") == [4, 3]


def test_tokenizer_json_loads_through_tokenizers(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "[UNK]": 3, "hello": 4, "world": 5, "!": 6}
    raw = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    raw.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    raw.add_special_tokens(["<pad>", "<s>", "</s>"])
    raw.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"pad_token": "<pad>", "bos_token": {"content": "<s>"}, "eos_token": "</s>"}))

    tok = models.load_tokenizer(str(tmp_path))
    assert isinstance(tok, models.HFTokenizer)
    assert (tok.pad_id, tok.bos_id, tok.eos_id) == (0, 1, 2)
    assert tok.vocab_size == 7
    ids = tok.encode("hello world ! moon")
    assert ids == [4, 5, 6, 3] == raw.encode("hello world ! moon").ids
    assert tok.decode([1, 4, 5, 2]) == "hello world"
    assert tok.decode([1, 4], skip_special_tokens=False) == "<s> hello"
    # Overrides win over tokenizer_config.json; a missing token is an error.
    assert models.HFTokenizer.from_file(str(tmp_path / "tokenizer.json"),
                                        eos_token="!").eos_id == 6
    with pytest.raises(ValueError, match="'<eot>'"):
        models.HFTokenizer.from_file(str(tmp_path), eos_token="<eot>")
    with pytest.raises(ValueError, match="no tokenizer.json"):
        models.load_tokenizer(str(tmp_path / "missing"))
    assert isinstance(models.load_tokenizer("char"), models.CharTokenizer)


def test_ascii_tokenizer_round_trips_english_text():
    tok = models.load_tokenizer("ascii")
    text = "State the final answer: 4 - 1 - 7 = ?\n{x_1} [ok] ~`'\"!@$^&;"
    ids = tok.encode(text, add_bos=True, add_eos=True)
    assert tok.vocab_size == 3 + 95 + 1
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id and len(ids) == len(text) + 2
    assert ids[1] == 3 + ord("S") - 32  # ids follow the ASCII order after the 3 specials
    assert tok.decode(ids) == text
    with pytest.raises(ValueError, match="not in the vocabulary"):
        tok.encode("caf\u00e9")
    # Special tokens name strings of a tokenizer.json; a character tokenizer's are fixed.
    with pytest.raises(ValueError, match=r"special tokens \['pad_token'\] apply to a tokenizer.json only"):
        models.load_tokenizer("ascii", pad_token="<pad>")
