"""The SHA-1 cache: a digest is reused only while the file is provably unchanged."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from reportgen import digest_cache


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REPORTGEN_CACHE_DIR", str(tmp_path / "cache"))
    calls = []
    real = digest_cache.hash_file

    def counting(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(digest_cache, "hash_file", counting)
    return calls


def old_file(path, data: bytes, age_s: float = 60.0):
    path.write_bytes(data)
    past = time.time() - age_s
    os.utime(path, (past, past))
    return path


def test_unchanged_file_is_hashed_once(tmp_path, cache):
    path = old_file(tmp_path / "w.params", b"weights" * 1000)
    expected = hashlib.sha1(path.read_bytes()).hexdigest()
    assert digest_cache.sha1_of(path) == expected
    assert digest_cache.sha1_of(path) == expected
    assert len(cache) == 1
    assert (tmp_path / "cache" / digest_cache.CACHE_FILE).is_file()


def test_same_size_rewrite_with_the_old_mtime_is_hashed_again(tmp_path, cache):
    path = old_file(tmp_path / "w.params", b"a" * 100)
    first = digest_cache.sha1_of(path)
    stat = path.stat()
    path.write_bytes(b"b" * 100)                              # same size...
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))   # ...and mtime put back: ctime moved
    assert digest_cache.sha1_of(path) == hashlib.sha1(b"b" * 100).hexdigest() != first
    assert len(cache) == 2


def test_a_replaced_file_is_hashed_again(tmp_path, cache):
    path = old_file(tmp_path / "w.params", b"first")
    digest_cache.sha1_of(path)
    other = old_file(tmp_path / "other", b"other")
    os.replace(other, path)
    assert digest_cache.sha1_of(path) == hashlib.sha1(b"other").hexdigest()


def test_a_freshly_written_file_is_not_remembered(tmp_path, cache):
    # Racy: another write in the same timestamp tick would not change the stamp.
    path = tmp_path / "w.params"
    path.write_bytes(b"fresh")
    digest_cache.sha1_of(path)
    digest_cache.sha1_of(path)
    assert len(cache) == 2


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"x": {"stamp": 1}}', '{"x": 5}'])
def test_a_corrupt_cache_file_is_ignored(tmp_path, cache, content):
    path = old_file(tmp_path / "w.params", b"weights")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / digest_cache.CACHE_FILE).write_text(
        content.replace('"x"', json.dumps(str(path.resolve()))))
    assert digest_cache.sha1_of(path) == hashlib.sha1(b"weights").hexdigest()


def test_an_unwritable_cache_folder_only_costs_the_hashing(tmp_path, cache, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("REPORTGEN_CACHE_DIR", str(blocker / "cache"))
    path = old_file(tmp_path / "w.params", b"weights")
    assert digest_cache.sha1_of(path) == hashlib.sha1(b"weights").hexdigest()
    assert digest_cache.sha1_of(path) == hashlib.sha1(b"weights").hexdigest()
    assert len(cache) == 2
