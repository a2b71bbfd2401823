"""Tokenizer and packed token files: the paper's T5 tokenizer where the hub is reachable, otherwise a
byte-level BPE trained with ``tokenizers`` on the training split; each split packed into one flat token
array (documents joined by EOS) that streams memory-map. Everything is cached under ``cache_root()``,
keyed by the corpus content and the settings."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark import BenchError
from benchmark.data.corpus import Corpus, hub_reachable, limit_chars, load_texts
from benchmark.files import atomic_write, atomic_write_json, cache_root
from benchmark.hashing import content_hash, file_hash

EOS = "<|endoftext|>"


def train_tokenizer(texts: list[str], vocab_size: int, path: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    atomic_write(path, tok.to_str(pretty=True))
    return tok


@dataclass
class PreparedData:
    """Packed train and validation token files plus everything a run record needs to know about them."""

    corpus: Corpus
    vocab_size: int
    tokenizer_path: str
    train_path: str
    validation_path: str
    info: dict = field(default_factory=dict)

    def describe(self) -> dict:
        return {**self.corpus.describe(), "vocab_size": self.vocab_size, **self.info}


def load_pretrained_tokenizer(name: str | None):
    """A hub tokenizer (the paper's T5) when the hub is reachable, else None (a BPE is trained instead)."""
    if not name or not hub_reachable():
        return None
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_pretrained(name)
    except Exception as exc:  # the hub client raises many types
        warnings.warn(f"could not load tokenizer {name} ({exc}); training a byte-level BPE instead", stacklevel=2)
        return None


def prepare(
    corpus: Corpus,
    vocab_size: int,
    train_chars: int | None,
    validation_chars: int | None,
    tokenizer_chars: int,
    pretrained_tokenizer: str | None = None,
) -> PreparedData:
    """Load the pretrained tokenizer where it can be loaded, else train (or load the cached) byte-level
    BPE; pack both splits; cache everything under ``cache_root()``."""
    pretrained = load_pretrained_tokenizer(pretrained_tokenizer)
    tok_name = pretrained_tokenizer if pretrained is not None else "bpe"
    key = content_hash([corpus.fingerprint(), vocab_size, train_chars, validation_chars, tokenizer_chars, tok_name])
    folder = cache_root() / "data" / f"{corpus.name}-{key}"
    tok_path, meta_path = folder / "tokenizer.json", folder / "meta.json"
    paths = {split: folder / f"{split}.bin" for split in ("train", "validation")}
    if meta_path.exists() and all(p.exists() for p in paths.values()) and tok_path.exists():
        info = json.loads(meta_path.read_text())
    else:
        texts = {"train": load_texts(corpus, "train", train_chars)}
        texts["validation"] = load_texts(corpus, "validation", validation_chars)
        if pretrained is not None:
            tok = pretrained
            atomic_write(tok_path, tok.to_str(pretty=True))
            described = f"{pretrained_tokenizer} ({tok.get_vocab_size()} tokens)"
        else:
            tok = _bpe(tok_path, limit_chars(texts["train"], tokenizer_chars), vocab_size)
            described = f"byte-level BPE ({vocab_size}) trained on {corpus.name}"
        info = {"cache_key": key, "tokenizer": described}
        for split, docs in texts.items():
            info.update(_pack_split(tok, docs, vocab_size, paths[split], split, described))
        atomic_write_json(meta_path, info)
    if "tokens_sha256" not in info:  # what every rank of a multi-process run must agree on
        info["tokens_sha256"] = file_hash(paths["train"], paths["validation"])
        atomic_write_json(meta_path, info)
    return PreparedData(corpus, vocab_size, str(tok_path), str(paths["train"]), str(paths["validation"]), info)


def _bpe(path: Path, texts: list[str], vocab_size: int):
    """The cached byte-level BPE at ``path``, trained on ``texts`` when absent."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(path)) if path.exists() else train_tokenizer(texts, vocab_size, path)


def _pack_split(tok, docs: list[str], vocab_size: int, path: Path, split: str, described: str) -> dict:
    """Pack one split and check its ids fit the model's vocabulary; what the run record says of it."""
    eos = tok.token_to_id(EOS)
    if eos is None:
        eos = tok.token_to_id("</s>")  # T5's end of sequence
    n_tokens = _pack(tok, docs, eos, vocab_size, path)
    top = int(np.memmap(path, dtype=token_dtype(vocab_size), mode="r").max(initial=0))
    if top >= vocab_size:
        raise BenchError(f"tokenizer {described} produced id {top}, beyond the model's vocab of {vocab_size}")
    return {f"{split}_documents": len(docs), f"{split}_chars": sum(map(len, docs)), f"{split}_tokens": n_tokens}


def token_dtype(vocab_size: int):
    return np.uint16 if vocab_size <= np.iinfo(np.uint16).max + 1 else np.uint32


def _pack(tok, docs: list[str], eos: int, vocab_size: int, path: Path) -> int:
    """Documents joined by EOS into one flat token array, written atomically."""
    dtype = token_dtype(vocab_size)
    total = 0

    def write(f) -> None:
        nonlocal total
        for start in range(0, len(docs), 256):
            for enc in tok.encode_batch(docs[start : start + 256]):
                ids = np.asarray([*enc.ids, eos], dtype=dtype)
                f.write(ids.tobytes())
                total += ids.size

    atomic_write(path, write)
    return total
