"""Corpora: where the text comes from and how it splits into training and validation documents.

Text comes from local JSON-lines / text / parquet files through Hugging Face ``datasets``, from a hub
dataset by name where a network exists, or from text that ships with every Python: the standard
library's source (``python-stdlib``, the CPU presets' offline default, one document per module, whole
modules held out for validation) and the ``pydoc_data`` topics (tiny, for tests). A folder's
``validation*`` files are its validation split; a corpus without them holds out a fixed, hash-chosen 5%
of its documents. A corpus' fingerprint covers its content, so the same name on other text (another
Python's standard library, a changed folder) is another corpus.
"""

from __future__ import annotations

import os
import socket
import sysconfig
import warnings
from dataclasses import dataclass
from pathlib import Path

from benchmark import BenchError
from benchmark.hashing import content_hash, file_hash

DATA_SUFFIXES = (".jsonl.gz", ".jsonl", ".json", ".json.gz", ".txt", ".parquet")
VALIDATION_PREFIXES = ("validation", "valid", "val", "test")
HELD_OUT_FRACTION = 0.05

# Named corpora users can pass to --data besides a path.
HUB_CORPORA = {"c4": ("allenai/c4", "en")}
BUILTIN_CORPORA = {
    "python-stdlib": "this Python's standard library source (.py outside test folders), whole modules held out",
    "pydoc-topics": "Python's pydoc_data topics (a tiny corpus, for tests)",
}
STDLIB_SKIPPED = ("site-packages", "test", "tests", "idle_test", "__pycache__")


@dataclass(frozen=True)
class Corpus:
    """Where the text comes from; ``describe()`` goes into every run record."""

    name: str
    kind: str  # "files", "hub", "stdlib" or "pydoc"
    train_files: tuple[str, ...] = ()
    validation_files: tuple[str, ...] = ()
    hub_id: tuple[str, str] | None = None
    root: str | None = None  # the folder the files are named relative to (the standard library's)

    def describe(self) -> dict:
        validation = "files" if self.validation_files else f"held-out {HELD_OUT_FRACTION:.0%} of documents"
        return {"name": self.name, "kind": self.kind, "hub_id": self.hub_id, "root": self.root,
                "train_files": len(self.train_files), "validation_files": len(self.validation_files),
                "validation": validation, "fingerprint": self.fingerprint()}

    def key(self) -> str:
        return f"{self.name}:{self.fingerprint()[:10]}"

    def _file_name(self, path: str) -> str:
        return os.path.relpath(path, self.root) if self.root else Path(path).name

    def fingerprint(self) -> str:
        """The corpus' identity: its name and kind, then each file's name and content (or the text itself,
        for text that ships inside a module)."""
        files = (*self.train_files, *self.validation_files)
        parts = [part for path in files for part in (self._file_name(path), file_hash(path))]
        if self.kind == "pydoc":
            parts.append(content_hash(_pydoc_topics(), length=None))
        return content_hash([self.name, self.kind, self.hub_id], *parts)


def stdlib_corpus() -> Corpus:
    """This interpreter's standard library: every .py file outside test folders, in a fixed order; a
    module is held out for validation when its path hashes into the held-out fraction."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(str(p) for p in root.rglob("*.py")
                   if not set(p.relative_to(root).parts[:-1]) & set(STDLIB_SKIPPED))
    if not files:
        raise BenchError(f"no standard library source under {root}")
    val = [f for f in files if _held_out_name(os.path.relpath(f, root))]
    return Corpus("python-stdlib", "stdlib", tuple(f for f in files if f not in set(val)), tuple(val), root=str(root))


def _held_out_name(name: str) -> bool:
    return int(content_hash(name, length=8), 16) % 1000 < HELD_OUT_FRACTION * 1000


def builtin_corpus(name: str) -> Corpus:
    return stdlib_corpus() if name == "python-stdlib" else Corpus("pydoc-topics", "pydoc")


def _pydoc_topics() -> list[str]:
    from pydoc_data.topics import topics

    return [topics[k] for k in sorted(topics)]


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
            return builtin_corpus(data)
        if not any(sep in data for sep in ("/", os.sep, ".")) and not Path(data).exists():
            valid = ", ".join([*HUB_CORPORA, *BUILTIN_CORPORA])
            raise BenchError(f"unknown corpus {data!r}; valid corpora: {valid}, or a path to text files")
        return corpus_from_path(data)
    if hub_corpus and hub_reachable():
        return Corpus(name=hub_corpus, kind="hub", hub_id=HUB_CORPORA[hub_corpus])
    if allow_builtin:
        warnings.warn("no --data given and no hub reachable: using this Python's standard library source "
                      "(python-stdlib; pass --data PATH for other text)", stacklevel=2)
        return stdlib_corpus()
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
    if corpus.kind == "pydoc":
        return limit_chars(_held_out(_pydoc_topics(), split), max_chars)
    if corpus.kind == "stdlib":
        files = corpus.validation_files if split == "validation" else corpus.train_files
        return limit_chars((Path(f).read_text(encoding="utf-8", errors="replace") for f in files), max_chars)
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
