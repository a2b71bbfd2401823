"""Corpora, tokenizer and packed token streams.

Text comes from local JSON-lines / text / parquet files through Hugging Face ``datasets``, from a hub
dataset by name where a network exists, or (CPU presets only) from the ``pydoc_data`` topics that ship
with Python. A byte-level BPE is trained with ``tokenizers`` on the training split and cached; the token
stream of each split is packed into one flat memory-mapped array. Every micro-batch is a pure function
of (seed, stream, index), so runs are deterministic and resumable without replaying a loader.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import warnings
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from benchmark import BenchError

log = logging.getLogger(__name__)

EOS = "<|endoftext|>"
DATA_SUFFIXES = (".jsonl.gz", ".jsonl", ".json", ".json.gz", ".txt", ".parquet")
VALIDATION_PREFIXES = ("validation", "valid", "val", "test")
HELD_OUT_FRACTION = 0.05

# Named corpora users can pass to --data besides a path.
HUB_CORPORA = {"c4": ("allenai/c4", "en")}
BUILTIN_CORPORA = ("pydoc-topics",)


def cache_root() -> Path:
    return Path(os.environ.get("OPTBENCH_CACHE", Path.home() / ".cache" / "optbench"))


@dataclass(frozen=True)
class Corpus:
    """Where the text comes from; ``describe()`` goes into every run record."""

    name: str
    kind: str  # "files", "hub" or "builtin"
    train_files: tuple[str, ...] = ()
    validation_files: tuple[str, ...] = ()
    hub_id: tuple[str, str] | None = None

    def describe(self) -> dict:
        out = asdict(self)
        out["validation"] = "files" if self.validation_files else f"held-out {HELD_OUT_FRACTION:.0%} of documents"
        return out

    def key(self) -> str:
        return f"{self.name}:{self.fingerprint()[:10]}"

    def fingerprint(self) -> str:
        h = hashlib.sha256(json.dumps([self.name, self.kind, self.hub_id]).encode())
        for path in (*self.train_files, *self.validation_files):
            h.update(Path(path).name.encode())
            h.update(_file_digest(path).encode())
        return h.hexdigest()[:16]


@lru_cache(maxsize=64)
def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(DATA_SUFFIXES))


def corpus_from_path(path: str | os.PathLike) -> Corpus:
    p = Path(path).expanduser()
    if not p.exists():
        raise BenchError(f"data path {str(path)!r} does not exist")
    if p.is_file():
        if not p.name.endswith(DATA_SUFFIXES) or not os.access(p, os.R_OK):
            raise BenchError(f"data file {str(path)!r} is not a readable {'/'.join(DATA_SUFFIXES)} file")
        return Corpus(name=p.name.split(".")[0], kind="files", train_files=(str(p.resolve()),))
    files = _data_files(p)
    unreadable = [f for f in files if not os.access(f, os.R_OK)]
    if not files or unreadable:
        raise BenchError(f"data folder {str(path)!r} holds no readable {'/'.join(DATA_SUFFIXES)} files")
    val = [f for f in files if f.name.lower().startswith(VALIDATION_PREFIXES)]
    train = [f for f in files if f not in val]
    if not train:
        raise BenchError(f"data folder {str(path)!r} has validation files but no training files")
    return Corpus(
        name=p.resolve().name,
        kind="files",
        train_files=tuple(str(f.resolve()) for f in train),
        validation_files=tuple(str(f.resolve()) for f in val),
    )


def hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("OPTBENCH_OFFLINE") == "1":
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def resolve_corpus(data: str | None, hub_corpus: str | None, allow_builtin: bool) -> Corpus:
    """--data (path or corpus name), else $OPTBENCH_DATA, else the preset's hub corpus, else the builtin."""
    data = data or os.environ.get("OPTBENCH_DATA") or None
    if data:
        if data in HUB_CORPORA:
            return Corpus(name=data, kind="hub", hub_id=HUB_CORPORA[data])
        if data in BUILTIN_CORPORA:
            return Corpus(name=data, kind="builtin")
        if not any(sep in data for sep in ("/", os.sep, ".")) and not Path(data).exists():
            valid = ", ".join([*HUB_CORPORA, *BUILTIN_CORPORA])
            raise BenchError(f"unknown corpus {data!r}; valid corpora: {valid}, or a path to text files")
        return corpus_from_path(data)
    if hub_corpus and hub_reachable():
        return Corpus(name=hub_corpus, kind="hub", hub_id=HUB_CORPORA[hub_corpus])
    if allow_builtin:
        warnings.warn(
            "no --data given and no hub reachable: using the small pydoc_data topics corpus that ships with "
            "Python (pass --data PATH for real text)",
            stacklevel=2,
        )
        return Corpus(name="pydoc-topics", kind="builtin")
    raise BenchError(f"no corpus: the hub corpus {hub_corpus!r} is unreachable; pass --data PATH")


def _limit(texts, max_chars: int | None) -> list[str]:
    out, total = [], 0
    for text in texts:
        if not text:
            continue
        out.append(text)
        total += len(text)
        if max_chars is not None and total >= max_chars:
            break
    return out


def load_texts(corpus: Corpus, split: str, max_chars: int | None = None) -> list[str]:
    """Documents of one split, in the corpus' fixed order, up to ``max_chars`` characters."""
    if corpus.kind == "builtin":
        from pydoc_data.topics import topics

        docs = [topics[k] for k in sorted(topics)]
        return _limit(_held_out(docs, split), max_chars)
    import datasets

    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    if corpus.kind == "hub":
        name, config = corpus.hub_id
        stream = datasets.load_dataset(name, config, split=split, streaming=True)
        return _limit((row["text"] for row in stream), max_chars)
    files = corpus.validation_files if split == "validation" and corpus.validation_files else corpus.train_files
    docs = _load_files(files)
    if not corpus.validation_files:
        docs = _held_out(docs, split)
    return _limit(docs, max_chars)


def _load_files(files: tuple[str, ...]) -> list[str]:
    import datasets

    first = files[0]
    if first.endswith(".parquet"):
        builder = "parquet"
    elif first.endswith(".txt"):
        builder = "text"
    else:
        builder = "json"
    kwargs = {"sample_by": "document"} if builder == "text" else {}
    try:
        ds = datasets.load_dataset(builder, data_files=list(files), split="train", **kwargs)
    except Exception as exc:  # datasets raises many types for malformed files
        raise BenchError(f"could not read {first!r} as {builder}: {exc}".splitlines()[0]) from exc
    if "text" not in ds.column_names:
        raise BenchError(f"{first!r} has no 'text' field (columns: {', '.join(ds.column_names)})")
    return ds["text"]


def _held_out(docs: list[str], split: str) -> list[str]:
    """Deterministic document-level split: a document's hash puts it in validation or train."""

    def is_val(text: str) -> bool:
        return int(hashlib.md5(text.encode()).hexdigest()[:8], 16) % 1000 < HELD_OUT_FRACTION * 1000

    if len(docs) < 2:
        raise BenchError("a corpus without validation files needs at least two documents to hold one out")
    if not any(is_val(d) for d in docs):  # tiny corpora: hold out the last document instead
        return docs[-1:] if split == "validation" else docs[:-1]
    return [d for d in docs if is_val(d) == (split == "validation")]


# ---------------------------------------------------------------------------------------------- tokenizer


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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tok.save(str(tmp))
    os.replace(tmp, path)
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
    from tokenizers import Tokenizer

    pretrained = load_pretrained_tokenizer(pretrained_tokenizer)
    tok_name = pretrained_tokenizer if pretrained is not None else "bpe"
    key = hashlib.sha256(
        json.dumps([corpus.fingerprint(), vocab_size, train_chars, validation_chars, tokenizer_chars, tok_name])
        .encode()
    ).hexdigest()[:16]
    folder = cache_root() / "data" / f"{corpus.name}-{key}"
    tok_path = folder / "tokenizer.json"
    paths = {split: folder / f"{split}.bin" for split in ("train", "validation")}
    meta_path = folder / "meta.json"
    if meta_path.exists() and all(p.exists() for p in paths.values()) and tok_path.exists():
        info = json.loads(meta_path.read_text())
    else:
        texts = {"train": load_texts(corpus, "train", train_chars)}
        texts["validation"] = load_texts(corpus, "validation", validation_chars)
        if pretrained is not None:
            tok = pretrained
            tok_path.parent.mkdir(parents=True, exist_ok=True)
            tok.save(str(tok_path))
            described = f"{pretrained_tokenizer} ({tok.get_vocab_size()} tokens)"
        else:
            if tok_path.exists():
                tok = Tokenizer.from_file(str(tok_path))
            else:
                tok = train_tokenizer(_limit(texts["train"], tokenizer_chars), vocab_size, tok_path)
            described = f"byte-level BPE ({vocab_size}) trained on {corpus.name}"
        eos = tok.token_to_id(EOS)
        if eos is None:
            eos = tok.token_to_id("</s>")  # T5's end of sequence
        info = {"cache_key": key, "tokenizer": described}
        for split, docs in texts.items():
            n_tokens = _pack(tok, docs, eos, vocab_size, paths[split])
            top = int(np.memmap(paths[split], dtype=_token_dtype(vocab_size), mode="r").max(initial=0))
            if top >= vocab_size:
                raise BenchError(f"tokenizer {described} produced id {top}, beyond the model's vocab of {vocab_size}")
            info[f"{split}_documents"] = len(docs)
            info[f"{split}_chars"] = sum(map(len, docs))
            info[f"{split}_tokens"] = n_tokens
        _write_json(meta_path, info)
    if "tokens_digest" not in info:  # what every rank of a multi-process run must agree on
        info["tokens_digest"] = _digest(paths["train"], paths["validation"])
        _write_json(meta_path, info)
    return PreparedData(corpus, vocab_size, str(tok_path), str(paths["train"]), str(paths["validation"]), info)


def _digest(*paths: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    for path in paths:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 24):
                h.update(chunk)
    return h.hexdigest()


def _token_dtype(vocab_size: int):
    return np.uint16 if vocab_size <= np.iinfo(np.uint16).max + 1 else np.uint32


def _pack(tok, docs: list[str], eos: int, vocab_size: int, path: Path) -> int:
    """Documents joined by EOS into one flat token array, written atomically."""
    dtype = _token_dtype(vocab_size)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    total = 0
    with open(tmp, "wb") as f:
        for start in range(0, len(docs), 256):
            for enc in tok.encode_batch(docs[start : start + 256]):
                ids = np.asarray([*enc.ids, eos], dtype=dtype)
                f.write(ids.tobytes())
                total += ids.size
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return total


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------- streams


class PackedSequences:
    """Non-overlapping windows of ``seq_len + 1`` tokens (inputs and shifted targets) over a token file."""

    def __init__(self, path: str, seq_len: int, vocab_size: int) -> None:
        self.tokens = np.memmap(path, dtype=_token_dtype(vocab_size), mode="r")
        self.seq_len = seq_len
        self.num_sequences = (len(self.tokens) - 1) // seq_len
        if self.num_sequences < 1:
            raise BenchError(f"{path}: {len(self.tokens)} tokens are too few for sequences of {seq_len}")

    def get(self, indices: np.ndarray) -> torch.Tensor:
        T = self.seq_len
        rows = np.stack([self.tokens[i * T : i * T + T + 1] for i in indices]).astype(np.int64)
        return torch.from_numpy(rows)  # (n, T+1)


class MicroBatchStream:
    """The g-th micro-batch of a stream: sequences taken in a per-epoch permutation drawn from
    (seed, stream, epoch). Distinct streams (training, line search) never share a permutation."""

    def __init__(self, seqs: PackedSequences, micro_batch: int, seed: int, stream: int = 0) -> None:
        self.seqs, self.micro_batch, self.seed, self.stream = seqs, micro_batch, seed, stream
        self._perms: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            rng = np.random.default_rng([self.seed, self.stream, epoch])
            self._perms[epoch] = rng.permutation(self.seqs.num_sequences)
        return self._perms[epoch]

    def microbatch(self, g: int) -> torch.Tensor:
        n = self.seqs.num_sequences
        positions = np.arange(g * self.micro_batch, (g + 1) * self.micro_batch)
        idx = np.array([self._perm(p // n)[p % n] for p in positions])
        return self.seqs.get(idx)  # (m, T+1)


def validation_batches(seqs: PackedSequences, n_tokens: int, micro_batch: int) -> list[torch.Tensor]:
    """The fixed validation set: the first ``n_tokens // T`` sequences, in micro-batches."""
    n = min(seqs.num_sequences, max(1, n_tokens // seqs.seq_len))
    return [seqs.get(np.arange(s, min(n, s + micro_batch))) for s in range(0, n, micro_batch)]
