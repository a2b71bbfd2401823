"""Corpora: where the text comes from and how it splits into training and validation documents.

Text comes from local JSON-lines / text / parquet files through Hugging Face ``datasets``, from a hub
dataset by name where a network exists, or (CPU presets only) from the ``pydoc_data`` topics that ship
with Python. A folder's ``validation*`` files are its validation split; a corpus without them holds out a
fixed, hash-chosen 5% of its documents.
"""

from __future__ import annotations

import os
import socket
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmark import BenchError
from benchmark.hashing import content_hash, file_hash

DATA_SUFFIXES = (".jsonl.gz", ".jsonl", ".json", ".json.gz", ".txt", ".parquet")
VALIDATION_PREFIXES = ("validation", "valid", "val", "test")
HELD_OUT_FRACTION = 0.05

# Named corpora users can pass to --data besides a path.
HUB_CORPORA = {"c4": ("allenai/c4", "en")}
BUILTIN_CORPORA = ("pydoc-topics",)


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
        """The corpus' identity: its name and kind, then each file's name and content."""
        files = (*self.train_files, *self.validation_files)
        return content_hash([self.name, self.kind, self.hub_id],
                            *(part for path in files for part in (Path(path).name, file_hash(path))))


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


def limit_chars(texts, max_chars: int | None) -> list[str]:
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
        return limit_chars(_held_out(docs, split), max_chars)
    import datasets

    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    if corpus.kind == "hub":
        name, config = corpus.hub_id
        stream = datasets.load_dataset(name, config, split=split, streaming=True)
        return limit_chars((row["text"] for row in stream), max_chars)
    files = corpus.validation_files if split == "validation" and corpus.validation_files else corpus.train_files
    docs = _load_files(files)
    if not corpus.validation_files:
        docs = _held_out(docs, split)
    return limit_chars(docs, max_chars)


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
        # md5, as when the split was first drawn: another hash would move documents between the splits and
        # silently invalidate every target calibrated on such a corpus.
        return int(content_hash(text, length=8, algorithm="md5"), 16) % 1000 < HELD_OUT_FRACTION * 1000

    if len(docs) < 2:
        raise BenchError("a corpus without validation files needs at least two documents to hold one out")
    if not any(is_val(d) for d in docs):  # tiny corpora: hold out the last document instead
        return docs[-1:] if split == "validation" else docs[:-1]
    return [d for d in docs if is_val(d) == (split == "validation")]
