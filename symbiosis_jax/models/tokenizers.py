"""Tokenizers: a character-level one for synthetic tasks, and `tokenizer.json`.

Both expose the same small interface: `encode(str) -> list[int]`,
`decode(ids) -> str`, `vocab_size`, and `pad_id`, `bos_id`, `eos_id` (None
where a tokenizer has no such token).
"""

from __future__ import annotations

import json
import os
from typing import Iterable, Sequence

# 29 symbols + 3 specials = 32 ids: enough for arithmetic and countdown prompts.
DEFAULT_SYMBOLS = "0123456789+-*/()= ,.:?#\n<>|_%"
# Printable ASCII and the newline: enough for English prompts (e.g. reasoning-gym's).
ASCII_SYMBOLS = "".join(chr(c) for c in range(32, 127)) + "\n"
_SPECIALS = ("<pad>", "<bos>", "<eos>")


class CharTokenizer:
    """One id per character, with ids 0, 1, 2 for pad, bos and eos.

    Args:
        symbols: the characters, in id order (ids start at 3); no repeats.
    """

    def __init__(self, symbols: str = DEFAULT_SYMBOLS):
        if not symbols or len(set(symbols)) != len(symbols):
            raise ValueError(f"symbols={symbols!r} must be non-empty with no repeats")
        self.symbols = symbols
        self.pad_id, self.bos_id, self.eos_id = 0, 1, 2
        self._to_id = {ch: i + len(_SPECIALS) for i, ch in enumerate(symbols)}

    @property
    def vocab_size(self) -> int:
        return len(_SPECIALS) + len(self.symbols)

    def encode(self, text: str, *, add_bos: bool = False, add_eos: bool = False
               ) -> list[int]:
        """Ids of the characters of `text` (optionally framed by bos/eos)."""
        try:
            ids = [self._to_id[ch] for ch in text]
        except KeyError as err:
            raise ValueError(f"character {err.args[0]!r} in text={text!r} is not in "
                             f"the vocabulary {self.symbols!r}") from None
        return ([self.bos_id] if add_bos else []) + ids + (
            [self.eos_id] if add_eos else [])

    def decode(self, ids: Iterable[int], *, skip_special_tokens: bool = True) -> str:
        """The text of `ids`; specials are dropped (or spelt `<pad>` etc.)."""
        out = []
        for i in ids:
            i = int(i)
            if i < len(_SPECIALS):
                if not skip_special_tokens:
                    out.append(_SPECIALS[i])
            elif i < self.vocab_size:
                out.append(self.symbols[i - len(_SPECIALS)])
            else:
                raise ValueError(f"id {i} is outside 0..{self.vocab_size - 1}")
        return "".join(out)


class HFTokenizer:
    """A `tokenizers.Tokenizer` loaded from a local `tokenizer.json`.

    Special ids come from the arguments, else from a `tokenizer_config.json`
    beside the file (`pad_token`, `bos_token`, `eos_token`), else None.
    """

    def __init__(self, tokenizer, *, pad_token: str | None = None,
                 bos_token: str | None = None, eos_token: str | None = None):
        self.tokenizer = tokenizer
        self.pad_id = self._id(pad_token)
        self.bos_id = self._id(bos_token)
        self.eos_id = self._id(eos_token)

    def _id(self, token):
        if token is None:
            return None
        i = self.tokenizer.token_to_id(token)
        if i is None:
            raise ValueError(f"special token {token!r} is not in the vocabulary")
        return i

    @classmethod
    def from_file(cls, path: str, **special_tokens) -> "HFTokenizer":
        """Loads `path` (a `tokenizer.json`, or a directory holding one)."""
        import tokenizers  # local import keeps `import symbiosis_jax` light

        if os.path.isdir(path):
            path = os.path.join(path, "tokenizer.json")
        if not os.path.isfile(path):
            raise ValueError(f"no tokenizer.json at {path!r}")
        config_path = os.path.join(os.path.dirname(path), "tokenizer_config.json")
        if os.path.isfile(config_path):
            with open(config_path, encoding="utf-8") as f:
                tok_config = json.load(f)
            for name in ("pad_token", "bos_token", "eos_token"):
                value = tok_config.get(name)
                if isinstance(value, dict):
                    value = value.get("content")
                if name not in special_tokens and value is not None:
                    special_tokens[name] = value
        return cls(tokenizers.Tokenizer.from_file(path), **special_tokens)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, *, add_special_tokens: bool = False) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode([int(i) for i in ids],
                                     skip_special_tokens=skip_special_tokens)


def load_tokenizer(path: str | None = None, **special_tokens):
    """`CharTokenizer()` when `path` is None or 'char' (digits and arithmetic symbols),
    `CharTokenizer(ASCII_SYMBOLS)` for 'ascii' (printable ASCII and newline), else
    `HFTokenizer.from_file(path)`.

    Args:
        path: None, 'char' or 'ascii' for a character tokenizer, else a `tokenizer.json`
            or a directory holding one.
        **special_tokens: `pad_token`, `bos_token`, `eos_token` strings passed to
            `HFTokenizer.from_file`, taking precedence over a `tokenizer_config.json`
            beside the file; not for the character tokenizers (fixed ids 0, 1, 2).

    Returns:
        A `CharTokenizer` or an `HFTokenizer`.

    Raises:
        ValueError: `path` names no `tokenizer.json`, a special token is not in its
            vocabulary, or special tokens are given for a character tokenizer.
    """
    if (path is None or path in ("char", "ascii")) and special_tokens:
        raise ValueError(f"special tokens {sorted(special_tokens)} apply to a tokenizer.json only; the "
                         f"character tokenizer {path or 'char'!r} has fixed pad/bos/eos ids 0, 1, 2")
    if path is None or path == "char":
        return CharTokenizer()
    if path == "ascii":
        return CharTokenizer(ASCII_SYMBOLS)
    return HFTokenizer.from_file(path, **special_tokens)
