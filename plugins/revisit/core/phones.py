"""Phone numbers, written one way for the whole pipeline: the form an agent dials, the digits the
quality gate checks, and the mask for outputs that leave the call centre (e-mail digests,
reports).

One normalisation serves all three (vectorised over Series: a table can hold millions of rows):
full-width characters folded to ASCII (NFKC), separators removed (white space, dashes, dots,
brackets, slashes, '·'), China's own country code dropped (+86, 0086, or 86 before an 11-digit
mobile number). What is left of a value that is no phone number ('n/a', an extension '转 12',
'ext. 12', a trailing 'x') keeps its other characters: the gate's digits-only pattern rejects
it, and the mask hides it whole rather than showing digits that are not the number's.

A department head needs to recognise a customer's number, not to dial it from an e-mail, so
phones are shown as 138****5678 there.
"""

from __future__ import annotations

import re

import pandas as pd

MASK = "****"
KEEP_FIRST = 3
KEEP_LAST = 4
# Fewer digits than this would leave fewer than 3 hidden: too little to call it masked
# (an 8-digit local number shown as 123****5678 gives away all but one digit).
MIN_MASKED_DIGITS = KEEP_FIRST + KEEP_LAST + 3

_SEPARATORS = re.compile(r"[\s\-‐‑‒–—.·()/]")
# Once, at the start: a number written '+86 +86 138…' keeps its second code (the gate then
# counts its digits as written).
_CN_PREFIX = re.compile(r"^(?:\+86|0086|86(?=1\d{10}$))")
_PLUS = re.compile(r"^\+")
_DIGITS = re.compile(r"\d+")


def dial_phone(values: pd.Series) -> pd.Series:
    """Phone numbers as an agent dials them: the normalisation above, another country's '+'
    kept. '+86 (138) 1234-5678' and '１３８ １２３４ ５６７８' both become '13812345678',
    '+1 (415) 555-2671' becomes '+14155552671'. A blank value (or a bare country code) becomes
    NA. Returns a nullable string Series on the same index."""
    text = values.astype("string").str.normalize("NFKC")
    text = text.str.replace(_SEPARATORS, "", regex=True)
    text = text.str.replace(_CN_PREFIX, "", regex=True)
    return text.mask(text == "")


def normalise_phone(values: pd.Series) -> pd.Series:
    """Phone numbers as bare digits where they are plausible-looking: the dial form without a
    leading '+'. The quality gate matches this against policy.quality.phone_digits digits and
    mask_phone shows parts of it. A non-phone keeps its non-digits ('n/a' -> 'na'); blank or
    missing is NA."""
    return dial_phone(values).str.replace(_PLUS, "", regex=True)


def mask_phone(phones: pd.Series) -> pd.Series:
    """First 3 and last 4 digits around a fixed '****' (which hides the length too); numbers
    too short to mask, values that are not digits once normalised ('n/a', an extension),
    empty or missing become '****'."""
    digits = normalise_phone(phones)
    masked = digits.str.slice(0, KEEP_FIRST) + MASK + digits.str.slice(-KEEP_LAST)
    maskable = digits.str.fullmatch(_DIGITS) & (digits.str.len() >= MIN_MASKED_DIGITS)
    out = masked.where(maskable.fillna(False).astype(bool), MASK).fillna(MASK)
    return out.astype("string")


__all__ = ["MASK", "dial_phone", "mask_phone", "normalise_phone"]
