"""The spelled-out regex classes match exactly what Python's own classes match."""

from __future__ import annotations

import re
import sys

import pandas as pd

from revisit.core.patterns import NOT_SPACE, SPACE, SPACE_CHARS


def test_space_class_is_every_character_python_calls_whitespace():
    python = {c for c in map(chr, range(sys.maxunicode + 1)) if re.fullmatch(r"\s", c)}
    assert set(SPACE_CHARS) == python


def test_pyarrow_and_python_agree_on_blank_and_not_blank_values():
    values = ["", " ", "\u3000", "\x0b", "\xa0\t", "a", " x ", "\u3000中", None]
    text = pd.Series(values, dtype="string[pyarrow]")
    for pattern, python in ((NOT_SPACE, r"\S"), (f"^{SPACE}*$", r"^\s*$")):
        got = text.str.contains(pattern, regex=True).tolist()
        want = [None if v is None else bool(re.search(python, v)) for v in values]
        assert [None if pd.isna(g) else bool(g) for g in got] == want
