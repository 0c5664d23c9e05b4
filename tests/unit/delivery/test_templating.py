"""One Jinja environment for the report and the e-mails, one translations loader for them and the
call list: escaping by template kind, no template outside the loader's folder, en fallback."""

from __future__ import annotations

import pytest
from jinja2 import TemplateNotFound

from revisit.config import translations
from revisit.config.translations import load_translations
from revisit.delivery.templating import TEMPLATE_DIR, environment


def test_html_templates_escape_and_plain_text_bodies_do_not():
    env = environment()
    assert env.autoescape("report.html.j2") and env.autoescape("digest_email.html.j2")
    assert not env.autoescape("email.txt.j2") and not env.autoescape("digest_email.txt.j2")
    assert env.from_string("{{ v }}").render(v="<b>") == "&lt;b&gt;"  # a string: escaped too


def test_the_loader_serves_only_its_own_folder():
    env = environment()
    assert env.get_template("report.html.j2").filename == str(TEMPLATE_DIR / "report.html.j2")
    for name in ("../i18n/en.yaml", "../quality_summary.md.j2", "/etc/passwd"):
        with pytest.raises(TemplateNotFound):
            env.get_template(name)


def test_one_translation_file_per_locale_holds_the_call_list_and_the_report():
    for locale in ("en", "zh_CN"):
        tr = load_translations(locale)
        assert {"call_list", "email", "digest", "highlights", "kpi"} <= set(tr)
    assert load_translations("zh_CN")["email"]["summary"] == "概要："


def test_a_key_missing_from_a_locale_falls_back_to_en(tmp_path, monkeypatch):
    (tmp_path / "en.yaml").write_text(
        "title: Review\nemail:\n  subject: 'S {month}'\n  greeting: Dear\n", encoding="utf-8")
    (tmp_path / "xx.yaml").write_text("email:\n  greeting: Salut\n", encoding="utf-8")
    monkeypatch.setattr(translations, "I18N_DIR", tmp_path)
    load_translations.cache_clear()
    try:
        assert load_translations("xx") == {
            "title": "Review", "email": {"subject": "S {month}", "greeting": "Salut"}}
        with pytest.raises(ValueError, match="no translations for locale 'yy'"):
            load_translations("yy")
    finally:
        load_translations.cache_clear()
