"""Exact membership of string ids in a large set, held in memory, at O(query) per lookup.

The set is kept as a sorted numpy array of a 64-bit hash of every id, the ids themselves, and a
directory of where each run of hashes with the same top bits starts (about `BUCKET_LOAD` hashes
a run). A lookup hashes the distinct query values, walks each one's short run (vectorised over
the queries; no per-call work on the set), then compares the ids at equal hashes, so a hash
collision can never make an unknown id known: every stored id that shares the query's hash is
compared. The ids are kept in one array in the order given (never permuted), with the position
of each hash's id: for 10M ids of 15 bytes that is 80 MB of hashes, 40 MB of positions, 190 MB
of ids and 16 MB of directory.

pyarrow has no public string hash kernel, so `hash_ids` is a polynomial hash over the string
buffers (offsets and data, `np.add.reduceat`, uint64 wrap-around) mixed with the length and
finished with splitmix64, vectorised in slices of about `_HASH_BYTES` so its temporaries stay
small. Any function from a string array to uint64 will do (tests inject a weak one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HashFn = Callable[[pa.Array], np.ndarray]

_PRIME = np.uint64(0x100000001B3)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_HASH_BYTES = 4 << 20


class IdLookup(Protocol):
    """Anything that says, per value, whether it is a known id (null is never known)."""

    def contains(self, values: pa.Array | pa.ChunkedArray) -> pa.Array: ...


def _powers(n: int) -> np.ndarray:
    """_PRIME ** 0 .. n-1, modulo 2**64."""
    powers = np.full(max(n, 1), _PRIME, dtype=np.uint64)
    powers[0] = 1
    return np.cumprod(powers)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _hash_slice(values: pa.Array) -> np.ndarray:
    """`hash_ids` of a string or large_string array without nulls."""
    offset_type = np.dtype(np.int64 if pa.types.is_large_string(values.type) else np.int32)
    _, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(
        offsets_buffer, dtype=offset_type, count=len(values) + 1, offset=values.offset * offset_type.itemsize
    ).astype(np.int64)
    lengths = np.diff(offsets)
    sums = np.zeros(len(values), dtype=np.uint64)
    filled = lengths > 0
    if data_buffer is not None and filled.any():
        data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0] : offsets[-1]]
        starts = offsets[:-1] - offsets[0]
        position = np.arange(len(data), dtype=np.int64) - np.repeat(starts, lengths)
        terms = data.astype(np.uint64) * _powers(int(lengths.max()))[position]
        sums[filled] = np.add.reduceat(terms, starts[filled])
    return _splitmix64(sums ^ (lengths.astype(np.uint64) * _GOLDEN))


def hash_ids(values: pa.Array) -> np.ndarray:
    """A 64-bit hash of each string (a uint64 array); null hashes as the empty string."""
    values = pc.fill_null(values, "") if values.null_count else values
    bounds = np.cumsum(pc.binary_length(values).to_numpy(zero_copy_only=False).astype(np.int64) + 1)
    out = np.empty(len(values), dtype=np.uint64)
    start = 0
    while start < len(values):
        base = int(bounds[start - 1]) if start else 0
        end = max(start + 1, int(np.searchsorted(bounds, base + _HASH_BYTES, side="right")))
        out[start:end] = _hash_slice(values.slice(start, end - start))
        start = end
    return out


class IdIndex:
    """An immutable set of ids for exact, vectorised membership tests (see the module doc)."""

    def __init__(self, hashes: np.ndarray, order: np.ndarray, ids: pa.Array, hash_fn: HashFn = hash_ids) -> None:
        self._hashes = hashes  # sorted
        self._order = order  # position in `ids` of the id of each hash
        self._ids = ids  # in the order given (never permuted)
        self._hash = hash_fn
        # a directory on the top bits of the hash: where each bucket's run of sorted hashes starts,
        # about BUCKET_LOAD hashes a bucket, so a lookup touches one small run instead of a binary search
        # through the whole array (which at 10M ids costs a cache miss per step)
        self._bits = int(np.ceil(np.log2(max(len(hashes) / BUCKET_LOAD, 1))))
        counts = np.bincount(self._bucket(hashes), minlength=1 << self._bits)
        self._starts = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)

    @classmethod
    def build(cls, chunks: Iterable[pa.Array | pa.ChunkedArray], hash_fn: HashFn = hash_ids) -> IdIndex:
        """From arrays of ids (nulls ignored), kept as they are. An id repeated within or across
        chunks counts once, at a cost per repeat: the fast path is chunks of distinct ids."""
        hashes, arrays = [], []
        for chunk in chunks:
            values = pc.drop_null(chunk)
            for array in values.chunks if isinstance(values, pa.ChunkedArray) else [values]:
                if len(array):
                    arrays.append(array)
                    hashes.append(hash_fn(array).astype(np.uint64, copy=False))
        kind = pa.string() if sum(a.nbytes for a in arrays) < 2**31 - 1 else pa.large_string()
        ids = pa.concat_arrays([a.cast(kind) for a in arrays]) if arrays else pa.array([], kind)
        del arrays  # one copy of the ids, in one array: a lookup then takes from it directly
        all_hashes = np.concatenate(hashes) if hashes else np.empty(0, dtype=np.uint64)
        del hashes
        order = np.argsort(all_hashes).astype(np.uint32 if len(all_hashes) < 2**32 else np.int64)
        sorted_hashes = all_hashes[order]
        del all_hashes
        keep = _first_of_each(sorted_hashes, order, ids)
        if keep is not None:
            sorted_hashes, order = sorted_hashes[keep], order[keep]
        pa.default_memory_pool().release_unused()
        return cls(sorted_hashes, order, ids, hash_fn)

    def __len__(self) -> int:
        return len(self._hashes)

    @property
    def nbytes(self) -> int:
        arrays = (self._hashes, self._order, self._starts)
        return sum(int(a.nbytes) for a in arrays) + int(self._ids.nbytes)

    def _bucket(self, hashes: np.ndarray) -> np.ndarray:
        if self._bits == 0:
            return np.zeros(len(hashes), dtype=np.int64)
        return (hashes >> np.uint64(64 - self._bits)).astype(np.int64)

    def contains(self, values: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Per value, whether it is in the set (null: False). Work follows the distinct values."""
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        distinct = pc.drop_null(pc.unique(values))
        found = distinct.filter(pa.array(self.lookup(distinct), pa.bool_()))
        return pc.is_in(values, value_set=found)

    def lookup(self, values: pa.Array) -> np.ndarray:
        """Per value (no nulls), whether it is in the set, as a numpy bool array."""
        hit = np.zeros(len(values), dtype=bool)
        if len(self._hashes) == 0 or len(values) == 0:
            return hit
        wanted = self._hash(values).astype(np.uint64, copy=False)
        bucket = self._bucket(wanted)
        position, end = self._starts[bucket], self._starts[bucket + 1]
        # walk each query's bucket (sorted) until its hash is passed; keep every position of an equal hash
        query = np.flatnonzero(position < end)
        candidates_q, candidates_p = [np.empty(0, np.int64)], [np.empty(0, np.int64)]
        while len(query):
            stored = self._hashes[position[query]]
            same = stored == wanted[query]
            candidates_q.append(query[same])
            candidates_p.append(position[query[same]])
            position[query] += 1
            query = query[(stored <= wanted[query]) & (position[query] < end[query])]
        q, p = np.concatenate(candidates_q), np.concatenate(candidates_p)
        if len(q):
            # a shared hash is only a candidate: the ids themselves decide
            stored_ids = self._ids.take(pa.array(self._order[p]))
            same = pc.equal(stored_ids, values.cast(self._ids.type).take(pa.array(q)))
            hit[q[same.to_numpy(zero_copy_only=False)]] = True
        return hit


BUCKET_LOAD = 4


def _first_of_each(hashes: np.ndarray, order: np.ndarray, ids: pa.Array) -> np.ndarray | None:
    """A mask dropping exact repeats of an id (they sit in one run of equal hashes), or None.

    Runs longer than one are rare (an id given twice, or a collision): compared in Python.
    """
    equal = hashes[1:] == hashes[:-1]
    if not equal.any():
        return None
    keep = np.ones(len(hashes), dtype=bool)
    for start in np.flatnonzero(equal & np.concatenate(([True], ~equal[:-1]))):
        end = start + 1
        while end < len(hashes) and hashes[end] == hashes[start]:
            end += 1
        seen: set[str] = set()
        for i in range(start, end):
            value = str(ids[int(order[i])].as_py())
            keep[i] = value not in seen
            seen.add(value)
    return keep
