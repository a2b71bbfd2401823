"""The content hash (benchmark/hashing.py): one canonical encoding, stable digests."""

import hashlib
import json

from benchmark.hashing import content_hash, file_hash


def test_strings_and_bytes_hash_as_they_are_and_the_rest_as_sorted_json():
    assert content_hash("abc", length=None) == hashlib.sha256(b"abc").hexdigest()
    assert content_hash(b"abc") == content_hash("abc")
    assert content_hash({"b": 1, "a": [1, 2]}) == content_hash({"a": [1, 2], "b": 1})
    assert content_hash([1, "x"], "y", length=None) == hashlib.sha256(json.dumps([1, "x"]).encode() + b"y").hexdigest()
    assert len(content_hash("abc", length=10)) == 10
    assert content_hash("abc", algorithm="md5", length=None) == hashlib.md5(b"abc").hexdigest()


def test_file_hash_is_the_hash_of_the_concatenated_contents(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"first ")
    b.write_bytes(b"second")
    assert file_hash(a, b) == hashlib.sha256(b"first second").hexdigest()
    assert file_hash(a) == hashlib.sha256(b"first ").hexdigest()
    assert file_hash(a, b, length=8) == file_hash(a, b)[:8]
