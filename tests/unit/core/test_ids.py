"""IdCodes: the shard split's look-up of a row's owner gives what an exact join gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from revisit.core import ids as module
from revisit.core.ids import IdCodes, positions


def _universe() -> tuple[pd.Series, np.ndarray]:
    rng = np.random.default_rng(7)
    names = pd.Series([f"C{n:07d}" for n in rng.permutation(5000)] + ["客户-é", ""],
                      dtype=object)
    return names, rng.integers(0, 40, len(names))


def _asked(names: pd.Series) -> pd.Series:
    shuffled = names.sample(frac=1.0, random_state=1)
    return pd.Series([*shuffled, "C9999999", None, "c0000001"], dtype=object)


def _expected(asked: pd.Series, names: pd.Series, codes: np.ndarray) -> np.ndarray:
    at = positions(asked, names)
    return np.where(at >= 0, codes[np.maximum(at, 0)], -1)


def test_codes_of_ids_added_in_parts_are_the_exact_joins_and_unknown_or_missing_ids_get_minus_one(
        ) -> None:
    names, codes = _universe()
    index = IdCodes()
    index.add(names.iloc[:1234], codes[:1234])
    index.add(names.iloc[1234:], codes[1234:])
    asked = _asked(names)
    got = index.codes_of(asked)
    assert got.tolist() == _expected(asked, names, codes).tolist()
    assert got[-3:].tolist() == [-1, -1, -1]  # absent, missing, another case
    assert len(index) == len(names)


def test_two_ids_with_one_hash_still_get_their_own_codes(monkeypatch) -> None:
    names, codes = _universe()
    monkeypatch.setattr(module, "id_hashes", lambda values: np.zeros(len(values), np.uint64))
    index = IdCodes()
    index.add(names, codes)
    asked = _asked(names)
    assert index.codes_of(asked).tolist() == _expected(asked, names, codes).tolist()


def test_a_matching_hash_of_another_id_is_no_match(monkeypatch) -> None:
    """Confirmed on the text: an id never added whose hash equals an added one's is -1."""
    real = module.id_hashes
    monkeypatch.setattr(module, "id_hashes", lambda values: np.where(
        values.to_numpy(object) == "impostor", real(pd.Series(["C1"]))[0], real(values)))
    index = IdCodes()
    index.add(pd.Series(["C1", "C2"]), np.array([5, 6]))
    assert index.codes_of(pd.Series(["impostor", "C2", "C1"])).tolist() == [-1, 6, 5]


def test_an_empty_index_knows_no_id_and_a_missing_id_cannot_be_added() -> None:
    assert IdCodes().codes_of(pd.Series(["C1"])).tolist() == [-1]
    with pytest.raises(ValueError, match="missing id"):
        IdCodes().add(pd.Series(["C1", None]), np.array([0, 1]))


def test_ids_are_hashed_in_pieces_with_the_hash_of_the_whole(monkeypatch) -> None:
    names, _ = _universe()
    whole = module.id_hashes(names)
    monkeypatch.setattr(module, "HASH_ROWS", 7)
    assert (module.id_hashes(names) == whole).all()


def test_ids_added_after_a_look_up_are_found_with_the_earlier_ones() -> None:
    names, codes = _universe()
    index = IdCodes()
    index.add(names.iloc[:100], codes[:100])
    assert index.codes_of(names.iloc[:3]).tolist() == codes[:3].tolist()
    index.add(names.iloc[100:], codes[100:])
    asked = _asked(names)
    assert index.codes_of(asked).tolist() == _expected(asked, names, codes).tolist()
