"""The one Jinja2 environment of what Revisit renders for people: the report's HTML (PDF), the
report e-mail and the SLA digest e-mail (revisit.delivery.report, .mail, .digest).

Why one: the safety settings must be the same for every message (revisit.core.templating:
autoescape except plain-text bodies, a loader confined to include/templates/report/,
StrictUndefined). The phrases come from revisit.config.translations.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from revisit.config.paths import TEMPLATES_DIR
from revisit.core.templating import make_environment

TEMPLATE_DIR = TEMPLATES_DIR / "report"  # the loader's only folder (also the PDF's base URL)


@lru_cache(maxsize=1)
def environment():
    """The shared jinja2.Environment (built once: it caches the compiled templates)."""
    return make_environment(TEMPLATE_DIR)


def render(template: str, context: dict[str, Any]) -> str:
    """`template` (a file name under TEMPLATE_DIR) rendered with `context`."""
    return environment().get_template(template).render(context)


__all__ = ["TEMPLATE_DIR", "environment", "render"]
