"""How every Jinja2 environment of Revisit is built: one place for the safety settings.

Autoescape is on for every template and string except the plain-text ones (`*.txt.j2` e-mail
bodies, `*.md.j2` Markdown, which escapes its own cells), so a CRM value is always text, never
markup; the loader reads one folder only, so a template name cannot reach another file;
StrictUndefined turns a misspelt key into an error instead of a silently empty sentence.

Every environment also has the filter `shorten` (`{{ customer.name | shorten }}`): a CRM text
longer than the policy's report.max_text_chars is cut and ends in "…", so what a template
renders (and how long WeasyPrint takes to lay it out: super-linear in the length of one
unbreakable text) does not depend on what someone typed into the CRM. The limit is the
filter's argument, else the context's `max_text_chars`, else DEFAULT_MAX_TEXT_CHARS.
"""

from __future__ import annotations

from pathlib import Path

PLAIN_TEXT = ("txt.j2", "md.j2")  # templates whose output is not HTML
DEFAULT_MAX_TEXT_CHARS = 80  # = policy.yaml report.max_text_chars when a context has none
ELLIPSIS = "…"  # the visible mark of a shortened text


def shorten(value: object, limit: int = DEFAULT_MAX_TEXT_CHARS) -> object:
    """`value` cut to at most `limit` characters, ending in ELLIPSIS when it was cut.

    Only plain text is cut: None, numbers and template-made markup (jinja2 Markup) come back
    unchanged (`{{ (name or '–') | shorten }}` works whatever the value is)."""
    if type(value) is not str or len(value) <= limit:
        return value
    return value[:max(limit - len(ELLIPSIS), 0)] + ELLIPSIS


def is_shortened(value: object, limit: int = DEFAULT_MAX_TEXT_CHARS) -> bool:
    """Whether `shorten(value, limit)` cuts `value` (what the report's data-quality note counts)."""
    return shorten(value, limit) is not value


def _shorten_filter(context, value: object, limit: int | None = None) -> object:
    if limit is None:
        limit = context.get("max_text_chars") or DEFAULT_MAX_TEXT_CHARS
    return shorten(value, int(limit))


def make_environment(folder: Path, **options):
    """A jinja2.Environment over `folder` with the project's settings (`options`: e.g.
    keep_trailing_newline) and the `shorten` filter."""
    from jinja2 import (
        Environment,
        FileSystemLoader,
        StrictUndefined,
        pass_context,
        select_autoescape,
    )

    env = Environment(
        loader=FileSystemLoader(str(folder)),
        autoescape=select_autoescape(enabled_extensions=(), disabled_extensions=PLAIN_TEXT,
                                     default_for_string=True, default=True),
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, **options)
    env.filters["shorten"] = pass_context(_shorten_filter)
    return env


__all__ = ["DEFAULT_MAX_TEXT_CHARS", "ELLIPSIS", "PLAIN_TEXT", "is_shortened",
           "make_environment", "shorten"]
