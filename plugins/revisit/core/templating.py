"""How every Jinja2 environment of Revisit is built: one place for the safety settings.

Autoescape is on for every template and string except the plain-text ones (`*.txt.j2` e-mail
bodies, `*.md.j2` Markdown, which escapes its own cells), so a CRM value is always text, never
markup; the loader reads one folder only, so a template name cannot reach another file;
StrictUndefined turns a misspelt key into an error instead of a silently empty sentence.
"""

from __future__ import annotations

from pathlib import Path

PLAIN_TEXT = ("txt.j2", "md.j2")  # templates whose output is not HTML


def make_environment(folder: Path, **options):
    """A jinja2.Environment over `folder` with the project's settings (`options`: e.g.
    keep_trailing_newline)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=FileSystemLoader(str(folder)),
        autoescape=select_autoescape(enabled_extensions=(), disabled_extensions=PLAIN_TEXT,
                                     default_for_string=True, default=True),
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, **options)


__all__ = ["PLAIN_TEXT", "make_environment"]
