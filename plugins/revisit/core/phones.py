"""Masking of personal data in outputs that leave the call centre (e-mail digests, reports).

A department head needs to recognise a customer's number, not to dial it from an e-mail, so
phones are shown as 138****5678 there. Vectorised over Series: a digest can hold many rows.
"""

from __future__ import annotations

import pandas as pd

MASK = "****"
KEEP_FIRST = 3
KEEP_LAST = 4
# Fewer digits than this would leave fewer than 3 hidden: too little to call it masked
# (an 8-digit local number shown as 123****5678 gives away all but one digit).
MIN_MASKED_DIGITS = KEEP_FIRST + KEEP_LAST + 3

_COUNTRY_PREFIX = r"^(?:\+|00)\s*86[\s\-()]*"  # +86 / 0086 written before the number
_CN_MOBILE_WITH_CODE = r"^86(?=1\d{10}$)"  # 8613812345678: China code without the plus


def normalise_phone(phones: pd.Series) -> pd.Series:
    """Digits only: full-width characters folded (NFKC), the +86 / 0086 country code dropped,
    spaces, dashes and brackets removed. NA stays NA."""
    text = phones.astype("string").str.normalize("NFKC").str.strip()
    text = text.str.replace(_COUNTRY_PREFIX, "", regex=True)
    digits = text.str.replace(r"\D", "", regex=True)
    return digits.str.replace(_CN_MOBILE_WITH_CODE, "", regex=True)


def mask_phone(phones: pd.Series) -> pd.Series:
    """First 3 and last 4 digits around a fixed '****' (which hides the length too);
    numbers too short to mask, empty or missing become '****'."""
    digits = normalise_phone(phones)
    masked = digits.str.slice(0, KEEP_FIRST) + MASK + digits.str.slice(-KEEP_LAST)
    long_enough = (digits.str.len() >= MIN_MASKED_DIGITS).fillna(False).astype(bool)
    out = masked.where(long_enough, MASK).fillna(MASK)
    return out.astype("string")


__all__ = ["MASK", "mask_phone", "normalise_phone"]
