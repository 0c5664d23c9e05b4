"""requirements.txt holds the runtime pins (the Docker image installs only it);
requirements-dev.txt includes it and adds the test, lint and bench tools. Every line is an exact
pin, no dev-only tool reaches the runtime file, and each file is installed where it belongs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "requirements.txt"
DEV = ROOT / "requirements-dev.txt"
INCLUDE = "-r requirements.txt"
# Test, lint and bench tools: never in the image.
DEV_ONLY = {"pytest", "ruff", "hypothesis", "py-spy", "pyinstrument", "import-linter", "grimp",
            "businesstimedelta", "moto"}
PIN = re.compile(r"(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)"
                 r"==(?P<version>[A-Za-z0-9.+!_-]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(path: Path) -> list[str]:
    """The lines pip reads: neither blank nor a comment."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def pinned(path: Path) -> dict[str, str]:
    pins = {}
    for line in requirement_lines(path):
        if line != INCLUDE:
            match = PIN.fullmatch(line)
            assert match, f"{path.name}: not an exact pin: {line!r}"
            pins[canonical(match["name"])] = match["version"]
    return pins


@pytest.mark.parametrize("path", [RUNTIME, DEV], ids=lambda p: p.name)
def test_every_line_is_an_exact_pin(path):
    allowed_include = path == DEV
    for line in requirement_lines(path):
        if allowed_include and line == INCLUDE:
            continue
        assert PIN.fullmatch(line), f"{path.name}: not an exact `name==version` pin: {line!r}"
    names = [canonical(PIN.fullmatch(line)["name"]) for line in requirement_lines(path)
             if line != INCLUDE]
    assert len(names) == len(set(names)), f"{path.name} pins a package twice"


def test_no_dev_only_package_is_a_runtime_requirement():
    leaked = DEV_ONLY & set(pinned(RUNTIME))
    assert not leaked, f"dev-only packages in requirements.txt (the image): {sorted(leaked)}"


def test_the_dev_file_includes_the_runtime_pins_and_adds_the_tools():
    assert requirement_lines(DEV).count(INCLUDE) == 1
    dev = pinned(DEV)
    assert set(dev) >= DEV_ONLY, sorted(DEV_ONLY - set(dev))
    both = set(dev) & set(pinned(RUNTIME))
    assert not both, f"pinned in both files: {sorted(both)}"


def test_the_runtime_file_pins_what_the_pipeline_runs_on():
    runtime = pinned(RUNTIME)
    assert runtime["apache-airflow"] == "3.3.2"
    for name in ("apache-airflow-providers-celery", "great-expectations", "pandas", "pyarrow",
                 "sqlalchemy", "weasyprint", "psycopg2-binary", "pymysql", "celery"):
        assert name in runtime, name
    assert "matplotlib" not in runtime | pinned(DEV)  # nothing imports it


def test_the_image_installs_only_the_runtime_file_and_the_venv_the_dev_file():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^RUN pip install .*-r /opt/airflow/requirements\.txt\s*$", dockerfile,
                     flags=re.M)
    assert "requirements-dev" not in "\n".join(
        line for line in dockerfile.splitlines() if not line.lstrip().startswith("#"))
    ignore = (ROOT / "docker" / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    assert "!requirements-dev.txt" not in ignore
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text(encoding="utf-8")
    assert "pip install -q -r requirements-dev.txt" in bootstrap
    stamp = next(line for line in bootstrap.splitlines() if line.startswith("want="))
    assert "requirements.txt" in stamp and "requirements-dev.txt" in stamp
