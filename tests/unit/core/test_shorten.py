"""Every Jinja environment has the `shorten` filter: a CRM text is cut to the policy's length
with a visible mark, so what a template renders does not grow with what the CRM holds."""

from __future__ import annotations

from markupsafe import Markup

from revisit.core.templating import (
    DEFAULT_MAX_TEXT_CHARS,
    ELLIPSIS,
    is_shortened,
    make_environment,
    shorten,
)


def test_a_long_text_is_cut_to_the_limit_and_ends_in_the_mark():
    assert shorten("x" * 500, 10) == "x" * 9 + ELLIPSIS
    assert len(shorten("客" * 100_000)) == DEFAULT_MAX_TEXT_CHARS
    assert is_shortened("x" * 11, 10) and not is_shortened("x" * 10, 10)


def test_short_texts_and_values_that_are_not_text_pass_unchanged():
    for value in ("x" * 10, "", None, 42, 3.5, Markup("<b>" * 50)):
        assert shorten(value, 10) is value


def test_the_filter_takes_its_limit_from_the_argument_then_the_context_then_the_default(
        tmp_path):
    env = make_environment(tmp_path)
    text = "y" * 200
    assert env.from_string("{{ v | shorten(5) }}").render(v=text, max_text_chars=50) == "yyyy…"
    assert env.from_string("{{ v | shorten }}").render(v=text, max_text_chars=50) == "y" * 49 + "…"
    assert env.from_string("{{ v | shorten }}").render(v=text) == "y" * 79 + "…"
    assert env.from_string("{{ (v or '–') | shorten }}").render(v=None) == "–"


def test_the_text_is_cut_before_it_is_escaped(tmp_path):
    env = make_environment(tmp_path)
    assert env.from_string("{{ v | shorten(4) }}").render(v="<b>" * 9) == "&lt;b&gt;…"
