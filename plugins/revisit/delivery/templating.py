"""The one Jinja2 environment of what Revisit renders for people: the report's HTML (PDF), the
report e-mail and the SLA digest e-mail (revisit.delivery.report, .mail, .digest).

Why one: the safety settings must be the same for every message. Autoescape is on for every
template except the plain-text e-mail bodies (`*.txt.j2`, not HTML), so a CRM value is always
text, never markup; the loader reads templates from include/templates/report/ only, so a
template name cannot reach another file; StrictUndefined turns a misspelt key into an error
instead of a silently empty sentence. The phrases come from revisit.config.translations.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from revisit.config.paths import TEMPLATES_DIR

TEMPLATE_DIR = TEMPLATES_DIR / "report"  # the loader's only folder (also the PDF's base URL)


@lru_cache(maxsize=1)
def environment():
    """The shared jinja2.Environment (built once: it caches the compiled templates).

    Autoescape by name: on for every template, and for strings, except `*.txt.j2` (the
    plain-text e-mail bodies, which a mail client shows as written)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=select_autoescape(enabled_extensions=(), disabled_extensions=("txt.j2",),
                                     default_for_string=True, default=True),
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render(template: str, context: dict[str, Any]) -> str:
    """`template` (a file name under TEMPLATE_DIR) rendered with `context`."""
    return environment().get_template(template).render(context)


__all__ = ["TEMPLATE_DIR", "environment", "render"]
