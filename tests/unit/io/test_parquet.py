"""Shards' sorted results read back in one order, a bounded batch at a time
(revisit.io.parquet.merged_frames): the rows a stable sort of the whole gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from revisit.io.parquet import frames_of, merged_frames, parquet_writer


def _shard_files(tmp_path, shards: int = 3, tickets: int = 40) -> list:
    """Tickets dealt to shards at random, 1-3 rows each (one per metric), each shard sorted
    by ticket id; one shard holds no value of `note` (a null-typed column in its file)."""
    rng = np.random.default_rng(5)
    ids = [f"T{i:04d}" for i in range(tickets)]
    owner = rng.integers(0, shards, size=tickets)
    paths = []
    for shard in range(shards):
        mine = [t for t, o in zip(ids, owner, strict=True) if o == shard]
        rows = [(t, m) for t in mine for m in ("first_response", "resolution", "closure")
                [:int(rng.integers(1, 4))]]
        frame = pd.DataFrame(rows, columns=["ticket_id", "metric"])
        frame["overdue"] = rng.normal(size=len(frame))
        frame["note"] = None if shard == 1 else [f"n{i}" for i in range(len(frame))]
        paths.append(tmp_path / f"{shard:03d}.parquet")
        frame.to_parquet(paths[-1], index=False, row_group_size=7)  # several groups
    return paths


@pytest.mark.parametrize("rows", [1, 2, 5, 17, 10_000])
def test_shards_merged_a_few_rows_at_a_time_are_the_stable_sort_of_all_of_them(tmp_path,
                                                                                rows):
    paths = _shard_files(tmp_path)
    whole = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    expected = whole.sort_values("ticket_id", kind="stable", ignore_index=True)
    parts = list(merged_frames(paths, "ticket_id", rows))
    got = pd.concat(parts, ignore_index=True)
    assert got[["ticket_id", "metric"]].equals(expected[["ticket_id", "metric"]])
    assert np.array_equal(got["overdue"], expected["overdue"])
    assert got["note"].fillna("-").tolist() == expected["note"].fillna("-").tolist()
    if rows < 10_000:  # a ticket's rows may cross a batch: still in its shard's order
        assert len(parts) > 1
        assert max(len(p) for p in parts) <= max(rows, 2 * len(paths))  # about `rows` held


def test_shards_without_rows_merge_into_one_empty_frame_of_their_columns(tmp_path):
    path = tmp_path / "000.parquet"
    pd.DataFrame({"ticket_id": pd.Series([], dtype="string"),
                  "minutes": pd.Series([], dtype="float64")}).to_parquet(path, index=False)
    (only,) = merged_frames([path, path], "ticket_id", 10)
    assert only.empty and list(only.columns) == ["ticket_id", "minutes"]


def test_frames_written_part_after_part_read_back_whole_and_in_parts(tmp_path):
    frame = pd.DataFrame({"ticket_id": [f"T{i}" for i in range(7)],
                          "note": [None, None, None, "x", "y", None, "z"]})
    target = tmp_path / "parts.parquet"
    schema = pa.schema([("ticket_id", pa.string()), ("note", pa.string())])
    with parquet_writer(target, schema) as write:  # the first part holds no note at all
        for start in range(0, 7, 3):
            write(frame.iloc[start:start + 3])
    assert pd.read_parquet(target).equals(frame)
    assert [len(p) for p in frames_of(target, 3)] == [3, 3, 1]


def test_a_shard_file_out_of_key_order_is_refused_not_merged_wrongly(tmp_path):
    paths = [tmp_path / "000.parquet", tmp_path / "001.parquet", tmp_path / "002.parquet"]
    pd.DataFrame({"ticket_id": ["T3", "T1"]}).to_parquet(paths[0], index=False)
    pd.DataFrame({"ticket_id": ["T2"]}).to_parquet(paths[1], index=False)
    pd.DataFrame({"ticket_id": pd.Series([], dtype="string")}).to_parquet(paths[2], index=False)
    with pytest.raises(ValueError, match=r"000\.parquet is not sorted by ticket_id"):
        list(merged_frames(paths, "ticket_id", 100))


def test_an_empty_shard_among_others_adds_nothing(tmp_path):
    paths = [tmp_path / f"{i:03d}.parquet" for i in range(3)]
    pd.DataFrame({"ticket_id": ["T1", "T4"]}).to_parquet(paths[0], index=False)
    pd.DataFrame({"ticket_id": pd.Series([], dtype="string")}).to_parquet(paths[1], index=False)
    pd.DataFrame({"ticket_id": ["T2", "T3"]}).to_parquet(paths[2], index=False)
    merged = pd.concat(merged_frames(paths, "ticket_id", 2), ignore_index=True)
    assert merged["ticket_id"].tolist() == ["T1", "T2", "T3", "T4"]
