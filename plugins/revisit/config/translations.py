"""The translations: include/templates/i18n/<locale>.yaml, one file per locale, read in one place.

Why here and not in delivery: the call list (revisit.rules.calllist, its `call_list` section)
and the report and e-mails (revisit.delivery, every other top-level section) read the same
files, and the rules layer may import config but not delivery.

A key missing from a locale's file falls back to the en file, so a new phrase needs only an
English text to start with.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from revisit.config.paths import TEMPLATES_DIR

I18N_DIR = TEMPLATES_DIR / "i18n"
FALLBACK_LOCALE = "en"


def translation_path(locale: str) -> Path:
    """The file holding `locale`'s phrases (it may not exist)."""
    return I18N_DIR / f"{locale}.yaml"


@lru_cache(maxsize=4)
def load_translations(locale: str) -> dict[str, Any]:
    """Every phrase of `locale`, en filling the keys it lacks; cached (treat it as read-only).

    Raises ValueError when there is no file for `locale` (or for en)."""
    base = _read(FALLBACK_LOCALE)
    if locale == FALLBACK_LOCALE:
        return base
    return _merge(base, _read(locale))


def _read(locale: str) -> dict[str, Any]:
    path = translation_path(locale)
    if not path.exists():
        raise ValueError(f"no translations for locale {locale!r} ({path})")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _merge(fallback: dict[str, Any], chosen: dict[str, Any]) -> dict[str, Any]:
    """`chosen` over `fallback`, section by section (a nested key missing in `chosen` keeps
    the fallback's text)."""
    out = dict(fallback)
    for key, value in chosen.items():
        out[key] = _merge(fallback.get(key, {}), value) if isinstance(value, dict) else value
    return out


__all__ = ["FALLBACK_LOCALE", "I18N_DIR", "load_translations", "translation_path"]
