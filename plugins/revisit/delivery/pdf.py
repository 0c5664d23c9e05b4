"""The report's PDF: WeasyPrint over the report's HTML, confined and bounded.

- `template_only_fetcher`: serves files under include/templates/ and refuses every other URL
  (file://, http(s)://, data:), so a hostile CRM value can never make the renderer read a
  local file or call a network address;
- `render_pdf(html, timeout=...)`: WeasyPrint in a child process killed after the timeout
  (`RenderTimeout`), bounded even inside C code that no in-process alarm can interrupt.

Why a module of its own: the child imports just this (WeasyPrint and the standard library),
not the report's data code and its pandas: the child's start is most of a small report's
render time (bench/README.md "Report render").
"""

from __future__ import annotations

import mimetypes
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from revisit.config.paths import TEMPLATES_DIR
from revisit.core.errors import RevisitError
from revisit.delivery.templating import TEMPLATE_DIR

REPORT_DIR = TEMPLATE_DIR  # report.html.j2 and report.css; relative URLs resolve here


class FetchRefused(ValueError):
    """A URL outside include/templates/ that the report renderer will not fetch."""


def template_only_fetcher(root: Path = TEMPLATES_DIR):
    """A WeasyPrint URL fetcher (weasyprint.urls.URLFetcher subclass) that serves files under
    `root` only; everything else (other files, http(s), data:, ...) is refused and recorded.

    `.requested` lists every URL asked for, `.refused` the ones refused."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    root = Path(root).resolve()

    class TemplateOnlyFetcher(URLFetcher):
        def __init__(self) -> None:
            super().__init__(allowed_protocols=("file",), allow_redirects=False,
                             fail_on_errors=False)
            self.requested: list[str] = []
            self.refused: list[str] = []
            self._lock = threading.Lock()

        def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
            with self._lock:
                self.requested.append(url)
            path = self._local_path(url)
            if path is None:
                with self._lock:
                    self.refused.append(url)
                raise FetchRefused(f"refused to fetch {url!r}: only files under {root}")
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return URLFetcherResponse(url, body=path.read_bytes(),
                                      headers={"Content-Type": mime})

        @staticmethod
        def _local_path(url: str) -> Path | None:
            parts = urlsplit(url)
            if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
                return None
            path = Path(unquote(parts.path)).resolve()  # symlinks and .. resolved first
            if not path.is_relative_to(root) or not path.is_file():
                return None
            return path

    return TemplateOnlyFetcher()


class RenderTimeout(RevisitError):
    """WeasyPrint did not finish within the policy's report.render_timeout_seconds; the child
    process was killed. Not retryable: the same data would stall the same way."""

    retryable = False


class RenderFailed(RevisitError):
    """The render's child process failed (its last error line is in the message)."""


# The child of a bounded render: HTML on stdin, the PDF on stdout, an error on stderr.
_CHILD = ("import sys\n"
          "from revisit.delivery.pdf import render_pdf\n"
          "sys.stdout.buffer.write(render_pdf(sys.stdin.buffer.read().decode('utf-8')))\n")


def render_pdf(html: str, fetcher=None, timeout: float | None = None) -> bytes:
    """The PDF of `html`; relative URLs resolve against include/templates/report/.

    With `timeout` (seconds), WeasyPrint runs in a fresh interpreter that is killed when the
    time is up (RenderTimeout): bounded even inside C code (Pango, HarfBuzz), with nothing
    inherited from the task's process. `fetcher` (to inspect what was fetched) renders in
    this process."""
    import logging

    if timeout is not None and fetcher is None:
        return _render_in_child(html, timeout)
    from weasyprint import HTML

    logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)  # one line per step
    fetcher = fetcher or template_only_fetcher()
    document = HTML(string=html, base_url=REPORT_DIR.as_uri() + "/", url_fetcher=fetcher)
    return document.write_pdf()


def _render_in_child(html: str, timeout: float) -> bytes:
    import logging
    import os
    import subprocess
    import sys

    # The child finds the package where this process found it (Airflow adds plugins/ to
    # sys.path itself, not to PYTHONPATH).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD], input=html.encode("utf-8"),
                              capture_output=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:  # subprocess.run has killed the child
        raise RenderTimeout(f"WeasyPrint did not finish within {timeout:g} s "
                            "(report.render_timeout_seconds); the render was stopped") from None
    errors = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode != 0 or not done.stdout.startswith(b"%PDF-"):
        last = errors.splitlines()[-1] if errors else f"exit status {done.returncode}"
        raise RenderFailed(f"the PDF render failed: {last[:500]}")
    if errors:  # WeasyPrint's warnings (e.g. a refused URL), without the HTML
        logging.getLogger(__name__).warning("WeasyPrint: %s", errors[-2000:])
    return done.stdout


__all__ = ["REPORT_DIR", "FetchRefused", "RenderFailed", "RenderTimeout", "render_pdf",
           "template_only_fetcher"]
