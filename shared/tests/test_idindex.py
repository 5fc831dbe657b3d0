"""The in-memory id index: exact membership whatever the hash does, and a hash that ignores slicing."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from playcount.core import idindex
from playcount.core.idindex import IdIndex, hash_ids

pytestmark = pytest.mark.fast

IDS = ["u1", "u2", "", "ünï", "日本語", "x" * 300, "u10", "u01", "U1"]


def _weak(values: pa.Array) -> np.ndarray:
    """A hash that collides all the time: the byte length, modulo 3."""
    return (pc.binary_length(values).to_numpy(zero_copy_only=False) % 3).astype(np.uint64)


def test_the_hash_depends_on_the_string_only():
    values = pa.array(IDS)
    whole = hash_ids(values)
    assert len(set(whole.tolist())) == len(IDS)
    # the same value hashes the same in a slice, in a large_string array, and among nulls
    assert hash_ids(values.slice(3, 4)).tolist() == whole[3:7].tolist()
    assert hash_ids(values.cast(pa.large_string())).tolist() == whole.tolist()
    with_nulls = hash_ids(pa.array(["u1", None, "u2"]))
    assert with_nulls[[0, 2]].tolist() == whole[[0, 1]].tolist() and with_nulls[1] == whole[2]  # null as ""


def test_hashing_in_slices_gives_the_same_hashes(monkeypatch):
    rng = np.random.default_rng(3)
    values = pa.array([f"user-{i}-" + "z" * int(n) for i, n in enumerate(rng.integers(0, 40, 5000))])
    expected = hash_ids(values)
    monkeypatch.setattr(idindex, "_HASH_BYTES", 100)  # hundreds of slices, some of one string
    assert hash_ids(values).tolist() == expected.tolist()


@pytest.mark.parametrize("hash_fn", [hash_ids, _weak], ids=["real", "colliding"])
def test_membership_is_exact(hash_fn):
    rng = np.random.default_rng(7)
    stored = {f"u{i}" for i in rng.integers(0, 5000, 2000)} | set(IDS)
    chunks = [pa.array(sorted(stored)[i::3]) for i in range(3)] + [pa.array(["u1", "u2", None])]  # repeats, a null
    index = IdIndex.build(chunks, hash_fn)
    assert len(index) == len(stored)
    queries = [f"u{i}" for i in range(0, 6000, 7)] + IDS + ["u1 ", "u" + "1" * 5, None]
    got = index.contains(pa.array(queries)).to_pylist()
    assert got == [q is not None and q in stored for q in queries]
    assert index.contains(pa.chunked_array([["u1"], ["nope", None]])).to_pylist() == [True, False, False]


def test_a_hash_collision_never_makes_an_unknown_id_known():
    # GIVEN two stored ids whose hash is the same as the query's (all three have 2 bytes)
    index = IdIndex.build([pa.array(["ab", "cd", "wxyz"])], _weak)
    assert _weak(pa.array(["ab", "cd", "ef"])).tolist() == [2, 2, 2]
    # WHEN an unknown id of the same hash is looked up, THEN every stored id of that hash is compared
    assert index.lookup(pa.array(["ef", "cd", "ab", "wxyz", "w"])).tolist() == [False, True, True, True, False]


def test_an_empty_index_knows_nothing():
    index = IdIndex.build([pa.array([], pa.string()), pa.array([None], pa.string())])
    assert len(index) == 0
    assert index.contains(pa.array(["u1", None])).to_pylist() == [False, False]
