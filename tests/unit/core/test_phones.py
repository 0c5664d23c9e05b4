"""Phone masking for digests and reports: recognisable, never dialable."""

from __future__ import annotations

import pandas as pd
import pytest

from revisit.core.phones import mask_phone, normalise_phone


@pytest.mark.parametrize(("phone", "masked"), [
    ("13812345678", "138****5678"),  # the usual 11-digit mobile: 3 + 4 shown
    ("138 1234 5678", "138****5678"),  # spaces
    ("138-1234-5678", "138****5678"),  # dashes
    ("+86 138 1234 5678", "138****5678"),  # country code with plus
    ("+8613812345678", "138****5678"),
    ("0086 13812345678", "138****5678"),  # country code with 00
    ("8613812345678", "138****5678"),  # country code without plus before a mobile
    ("１３８１２３４５６７８", "138****5678"),  # full-width digits (NFKC)
    ("＋８６　１３８ １２３４ ５６７８", "138****5678"),  # full-width plus and ideographic space
    ("010-6212 3456", "010****3456"),  # landline with area code: 11 digits
    ("(0755) 8888-1234", "075****1234"),  # brackets
])
def test_mask_keeps_first_three_and_last_four_digits(phone, masked) -> None:
    assert mask_phone(pd.Series([phone])).tolist() == [masked]


@pytest.mark.parametrize("phone", [
    "62123456",  # 8 digits: 3 + 4 shown would give away all but one
    "123456789",  # 9 digits: still fewer than 3 hidden
    "123",
    "",
    "   ",
    "n/a",
    None,
])
def test_short_empty_or_missing_numbers_are_fully_masked(phone) -> None:
    assert mask_phone(pd.Series([phone], dtype=object)).tolist() == ["****"]


def test_ten_digits_are_enough_to_mask() -> None:
    # 10 digits: 3 shown + 3 hidden + 4 shown; the mask is always 4 stars (hides the length).
    assert mask_phone(pd.Series(["0212345678"])).tolist() == ["021****5678"]


def test_mask_is_vectorised_and_keeps_the_index() -> None:
    phones = pd.Series(["13812345678", None, "139 0000 1111"], index=["a", "b", "c"])
    out = mask_phone(phones)
    assert out.index.equals(phones.index)
    assert out.tolist() == ["138****5678", "****", "139****1111"]
    assert mask_phone(pd.Series([], dtype=object)).empty


def test_normalise_gives_digits_only_and_keeps_missing() -> None:
    out = normalise_phone(pd.Series(["+86 (138) 1234-5678", None]))
    assert out.iloc[0] == "13812345678"
    assert pd.isna(out.iloc[1])
