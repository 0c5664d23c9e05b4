"""String ids as positions and codes: every join of the pipeline is on text ids, so they are
hashed into integer positions once and the rules work on integers.

`IdCodes` is the look-up a stream of chunks asks again and again (the quality gate's shard
split: each chunk of visits asks which shard its customers are in). `positions` builds a hash
table of the whole universe on every call (pyarrow's index_in): at 3 M customers 210 MiB, for
each of the ~130 chunks (bench/README.md "The gate's reads by row group and its look-ups").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def arrow_strings(values: pd.Series | pa.Array) -> pa.Array:
    """A text column as one pyarrow large_string array (nulls kept)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        values = pa.array(values.astype("string"), from_pandas=True)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.cast(pa.large_string())


def positions(values: pd.Series | pa.Array, universe: pd.Series | pa.Array) -> np.ndarray:
    """Position of each value in `universe` (-1: null or absent), as int64.

    Why: every join here is on string ids; hashing them once into positions (pyarrow's
    index_in) and then working on integers is what keeps 10^6-row snapshots fast."""
    found = pc.index_in(arrow_strings(values), value_set=arrow_strings(universe))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


HASH_ROWS = 1 << 19  # ids hashed at a time: pandas holds an encoded copy of each while it hashes


def id_hashes(values: pd.Series | pa.Array) -> np.ndarray:
    """A 64-bit hash per id (pandas' hash of the text, whatever the dtype holding it; a null
    hashes like some text, e.g. "None": IdCodes confirms every match on the text)."""
    def piece(start: int) -> pd.Series:
        if isinstance(values, pa.Array):
            return values.slice(start, HASH_ROWS).to_pandas()
        return values.iloc[start:start + HASH_ROWS].astype(object)

    parts = [pd.util.hash_pandas_object(piece(start), index=False, categorize=False).to_numpy()
             for start in range(0, len(values), HASH_ROWS)]
    return np.concatenate(parts) if parts else np.empty(0, np.uint64)


class IdCodes:
    """Distinct ids, each with an integer code, looked up many times: the ids' 64-bit hashes
    sorted once (8 bytes per id, 4 more for where each is, beside the ids' text in Arrow) and
    each match confirmed on the id's text, so the answer is exact; should two ids share a
    hash, every look-up falls back to `positions`.

    Add the ids in parts (`add`), then ask (`codes_of`); an id added twice answers with its
    first code, as `positions` does."""

    def __init__(self) -> None:
        self._parts: list[tuple[np.ndarray, pa.Array, np.ndarray]] = []
        self._index: tuple[np.ndarray, np.ndarray, pa.Array, np.ndarray] | None = None
        self._shared = False  # two of the ids share a hash

    def add(self, ids: pd.Series | pa.Array, codes: np.ndarray) -> None:
        if (ids.null_count if isinstance(ids, pa.Array) else ids.isna().sum()):
            raise ValueError("IdCodes: a missing id has no code")
        if self._index is not None:  # asked before: the one part's hashes back in id order
            hashes, order, joined, known = self._index
            unsorted = np.empty_like(hashes)
            unsorted[order] = hashes
            self._parts, self._index = [(unsorted, joined, known)], None
        self._parts.append((id_hashes(ids), arrow_strings(ids), np.asarray(codes)))

    def __len__(self) -> int:
        return sum(len(i) for _, i, _ in self._parts)

    def _sorted(self) -> tuple[np.ndarray, np.ndarray, pa.Array, np.ndarray]:
        """(the hashes sorted, where each sorted hash's id is in `ids`, the ids as added,
        their codes), put together once; the ids are not copied in hash order."""
        if self._index is None:
            if not self._parts:
                self._index = (np.empty(0, np.uint64), np.empty(0, np.int64),
                               pa.array([], pa.large_string()), np.empty(0, np.int64))
            else:
                hashes = np.concatenate([h for h, _, _ in self._parts])
                order = np.argsort(hashes, kind="stable")
                hashes = hashes[order]
                self._shared = bool((hashes[1:] == hashes[:-1]).any())
                ids = [i for _, i, _ in self._parts]
                codes = np.concatenate([c for _, _, c in self._parts])
                self._parts = [(np.empty(0, np.uint64), pa.concat_arrays(ids) if len(ids) > 1
                                else ids[0], codes)]  # the hashes are kept sorted only
                self._index = (hashes, order.astype(np.uint32 if len(order) < 2**32
                                                    else np.int64),
                               self._parts[0][1], codes)
        return self._index

    def codes_of(self, values: pd.Series) -> np.ndarray:
        """Each value's code; -1 where it is missing or was never added."""
        hashes, order, ids, codes = self._sorted()
        out = np.full(len(values), -1, dtype=codes.dtype if len(codes) else np.int64)
        if not len(hashes) or not len(values):
            return out
        if self._shared:  # two ids, one hash: ask exactly
            at = positions(values, ids)
            out[at >= 0] = codes[at[at >= 0]]
            return out
        asked = id_hashes(values)
        by_hash = np.argsort(asked, kind="stable")  # sorted queries: searchsorted stays in cache
        at = np.empty(len(asked), dtype=np.int64)
        at[by_hash] = order[np.minimum(np.searchsorted(hashes, asked[by_hash]),
                                       len(hashes) - 1)]
        same = pc.equal(arrow_strings(values), ids.take(at))  # a missing value: null, no hit
        hit = same.fill_null(False).to_numpy(zero_copy_only=False)
        out[hit] = codes[at[hit]]
        return out


__all__ = ["IdCodes", "arrow_strings", "id_hashes", "positions"]
