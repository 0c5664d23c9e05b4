"""Phone numbers: one normalisation for the dial form (clean data), the digits the quality gate
checks, and the mask for digests and reports (recognisable, never dialable)."""

from __future__ import annotations

import pandas as pd
import pytest

from revisit.core.phones import dial_phone, mask_phone, normalise_phone


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


# Tricky inputs: (as written, as dialled, digits the gate checks, passes 7-15 digits, masked).
# Formatting (full-width, separators, China's code) is dropped; what is no phone number keeps
# its other characters, so the gate rejects it and the mask hides it whole.
NA = None
TRICKY = [
    ("１３８１２３４５６７８", "13812345678", "13812345678", True, "138****5678"),
    ("＋８６　１３８－１２３４－５６７８", "13812345678", "13812345678", True, "138****5678"),
    ("1381234567８", "13812345678", "13812345678", True, "138****5678"),
    ("+86 138 1234 5678", "13812345678", "13812345678", True, "138****5678"),
    ("+8613812345678", "13812345678", "13812345678", True, "138****5678"),
    ("(+86) 138 1234 5678", "13812345678", "13812345678", True, "138****5678"),
    ("0086 13812345678", "13812345678", "13812345678", True, "138****5678"),
    ("0086-138-1234-5678", "13812345678", "13812345678", True, "138****5678"),
    ("00 86 13812345678", "13812345678", "13812345678", True, "138****5678"),
    ("8613812345678", "13812345678", "13812345678", True, "138****5678"),
    ("86 138 1234 5678", "13812345678", "13812345678", True, "138****5678"),
    # 86 + 10 digits is not a mobile number with its code: kept as written
    ("861381234567", "861381234567", "861381234567", True, "861****4567"),
    ("+86-10-6212-3456", "1062123456", "1062123456", True, "106****3456"),
    ("010-6212 3456", "01062123456", "01062123456", True, "010****3456"),
    ("(0755) 8888-1234", "075588881234", "075588881234", True, "075****1234"),
    ("（021）6234 5678", "02162345678", "02162345678", True, "021****5678"),
    ("021.6234.5678", "02162345678", "02162345678", True, "021****5678"),
    ("021/6234 5678", "02162345678", "02162345678", True, "021****5678"),
    ("138·1234·5678", "13812345678", "13812345678", True, "138****5678"),
    ("138—1234—5678", "13812345678", "13812345678", True, "138****5678"),
    ("\t138\t1234\t5678\n", "13812345678", "13812345678", True, "138****5678"),
    ("+1 (415) 555-2671", "+14155552671", "14155552671", True, "141****2671"),  # '+' kept
    # extensions and letters: no phone number as written
    ("13812345678 转 12", "13812345678转12", "13812345678转12", False, "****"),
    ("13812345678 ext. 12", "13812345678ext12", "13812345678ext12", False, "****"),
    ("13812345678x12", "13812345678x12", "13812345678x12", False, "****"),
    ("13812345678#12", "13812345678#12", "13812345678#12", False, "****"),
    ("13900001111x", "13900001111x", "13900001111x", False, "****"),
    ("138_1234_5678", "138_1234_5678", "138_1234_5678", False, "****"),
    ("n/a", "na", "na", False, "****"),
    ("NA", "NA", "NA", False, "****"),
    ("无", "无", "无", False, "****"),
    ("+", "+", "", False, "****"),
    ("13800", "13800", "13800", False, "****"),  # too few digits
    ("1381234567812345", "1381234567812345", "1381234567812345", False, "138****2345"),
    # blank, or a bare country code: no value (the gate's `required` decides, not `phone`)
    ("", NA, NA, None, "****"),
    ("   ", NA, NA, None, "****"),
    ("\u3000", NA, NA, None, "****"),
    ("+86", NA, NA, None, "****"),
    ("0086", NA, NA, None, "****"),
    (None, NA, NA, None, "****"),
]


def _listed(series: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in series]


@pytest.mark.parametrize(("phone", "dialled", "digits", "plausible", "masked"), TRICKY)
def test_one_normalisation_for_dialling_checking_and_masking(phone, dialled, digits, plausible,
                                                             masked, policy) -> None:
    from revisit.quality.suites import phone_pattern

    values = pd.Series([phone], dtype=object)
    assert _listed(dial_phone(values)) == [dialled]
    got = normalise_phone(values)
    assert _listed(got) == [digits]
    check = got.str.contains(phone_pattern(policy.quality.phone_digits), regex=True)
    assert _listed(check) == [plausible]
    assert mask_phone(values).tolist() == [masked]


def test_the_mask_of_the_dialled_form_is_the_mask_of_the_number_as_written() -> None:
    """Digests and reports mask the clean data, which holds phones as dialled."""
    plausible = pd.Series([t[0] for t in TRICKY if t[3]], dtype=object)
    assert mask_phone(dial_phone(plausible)).tolist() == mask_phone(plausible).tolist()


def test_normalisation_keeps_the_index_and_is_idempotent_on_digits() -> None:
    phones = pd.Series(["+86 138 1234 5678", None, "021-6234 5678"], index=[7, 3, 5])
    digits = normalise_phone(phones)
    assert digits.index.equals(phones.index) and dial_phone(phones).index.equals(phones.index)
    pd.testing.assert_series_equal(normalise_phone(digits), digits)
