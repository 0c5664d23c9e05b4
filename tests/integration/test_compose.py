"""docker-compose.yml, checked without Docker: it follows the Compose specification (the JSON
schema vendored in tests/data/compose-spec.json), has every service of the production shape
(DESIGN.md "Deployment") with a health check, sets every connection the DAGs use, builds from
files that exist, mounts folders that exist, and writes no credential into the file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"

# DESIGN.md "Deployment": the production shape's services, by role.
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
SUPPORT_SERVICES = {"postgres", "redis", "mailpit"}
ONE_SHOT = {"airflow-init", "crm-seed"}
# The Airflow connections the DAGs and the plugin read (conn ids in plugins/revisit).
CONNECTIONS = {"crm_db", "revisit_results", "smtp_default"}
LONG_RUNNING = set(AIRFLOW_SERVICES) | SUPPORT_SERVICES
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} with `variables` as the environment
    ($$ is a literal $)."""
    def one(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if variables.get(name):
            return variables[name]
        if op in (":-", "-"):
            return _interpolate(arg or "", variables)
        if op in (":?", "?"):
            raise KeyError(f"{name} is required: {arg}")
        return ""
    return VARIABLE.sub(one, value.replace("$$", "\0")).replace("\0", "$")


def _example_env() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def test_compose_file_follows_the_compose_specification(compose):
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                                 for e in errors)


def test_every_service_has_an_image_or_a_build(services):
    # The spec's own constraint (definitions.constraints.service), which its schema does not
    # apply to services.
    for name, service in services.items():
        assert "image" in service or "build" in service, name


def test_the_production_shape_services_exist_and_run_the_right_commands(services):
    assert set(AIRFLOW_SERVICES) | SUPPORT_SERVICES | ONE_SHOT <= set(services)
    for name, command in AIRFLOW_SERVICES.items():
        given = services[name]["command"]
        assert (given if isinstance(given, str) else " ".join(given)) == command, name
    env = _env(services["airflow-scheduler"])
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")
    assert "@postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == \
        "http://airflow-apiserver:8080/execution/"


def test_every_long_running_service_has_a_health_check(services):
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), name


def test_dependencies_wait_for_health_or_completion(services):
    for name, service in services.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            wanted = ("service_completed_successfully" if dependency in ONE_SHOT
                      else "service_healthy")
            assert rule["condition"] == wanted, (name, dependency)
    assert "crm-seed" in services["airflow-worker"]["depends_on"]


def test_every_airflow_container_gets_every_connection_the_dags_use(services):
    for name in set(AIRFLOW_SERVICES) | ONE_SHOT:
        env = _env(services[name])
        for conn_id in CONNECTIONS:
            assert env.get(f"AIRFLOW_CONN_{conn_id.upper()}"), (name, conn_id)
        assert _interpolate(env["REVISIT_OUTPUT_DIR"], {}) == "/opt/airflow/output", name
        assert env["PYTHONPATH"] == "/opt/airflow/plugins", name


def test_the_connections_the_plugin_reads_are_the_ones_compose_sets():
    source = "\n".join(p.read_text(encoding="utf-8")
                       for p in (ROOT / "plugins" / "revisit").rglob("*.py"))
    used = set(re.findall(r'CONN_ID\s*=\s*"([a-z_]+)"', source))
    assert used == CONNECTIONS


def test_the_example_env_gives_every_required_variable_and_valid_connections(services):
    from airflow.models.connection import Connection

    variables = _example_env()
    for name in set(AIRFLOW_SERVICES) | ONE_SHOT:
        env = {k: _interpolate(v, variables) for k, v in _env(services[name]).items()}
        types = {conn_id: Connection(conn_id=conn_id,
                                     uri=env[f"AIRFLOW_CONN_{conn_id.upper()}"]).conn_type
                 for conn_id in CONNECTIONS}
        assert types == {"crm_db": "postgres", "revisit_results": "postgres",
                         "smtp_default": "smtp"}, name
    smtp = Connection(conn_id="smtp_default", uri=_interpolate(
        _env(services["airflow-worker"])["AIRFLOW_CONN_SMTP_DEFAULT"], {}))
    assert (smtp.host, smtp.port) == ("mailpit", 1025)
    assert smtp.extra_dejson["from_email"] == "revisit@example.com"


def test_no_credential_is_written_into_the_compose_file():
    text = COMPOSE.read_text(encoding="utf-8")
    for url in re.findall(r"[a-z0-9+]+://[^\s\"']+", text):
        userinfo = url.split("://", 1)[1].split("@", 1)
        if len(userinfo) == 2 and ":" in userinfo[0]:
            password = userinfo[0].split(":", 1)[1]
            # ${VAR} from .env, or $${VAR} from the container's environment
            assert password.startswith(("${", "$${")), f"password written into {url}"
    for key in ("POSTGRES_PASSWORD", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY",
                "ADMIN_PASSWORD", "CRM_SEED_PASSWORD"):
        values = re.findall(rf"^\s*{key}:\s*(.+)$", text, flags=re.M)
        assert values, key
        for value in values:  # required from the environment, no default
            assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", value.strip()), (key, value)
    fernet = re.findall(r"^\s*AIRFLOW__CORE__FERNET_KEY:\s*(.+)$", text, flags=re.M)
    assert fernet == ["${AIRFLOW_FERNET_KEY:-}"]


def test_build_and_image_references_resolve_to_files_in_the_repository(services):
    builds = {name: s["build"] for name, s in services.items() if "build" in s}
    assert builds, "no service builds the Revisit image"
    for name, build in builds.items():
        context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
        dockerfile = context / (build.get("dockerfile", "Dockerfile")
                                if isinstance(build, dict) else "Dockerfile")
        assert dockerfile.is_file(), (name, dockerfile)
        text = dockerfile.read_text(encoding="utf-8")
        assert re.search(r"^FROM apache/airflow:3\.3\.2-python3\.11\s*$", text, flags=re.M)
        for source in re.findall(r"^COPY\s+(?:--\S+\s+)*(\S+)\s+\S+\s*$", text, flags=re.M):
            assert (context / source).exists(), (name, source)
        ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
        assert ignore.is_file()
    # The image pins the same Airflow as requirements.txt, and installs the CJK fonts.
    dockerfile = ROOT / "docker" / "Dockerfile"
    assert "apache-airflow==3.3.2" in (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert "fonts-noto-cjk" in dockerfile.read_text(encoding="utf-8")
    for name, service in services.items():
        if "build" not in service:
            image = service["image"]
            assert re.fullmatch(r"[a-z0-9./-]+:[A-Za-z0-9._-]+", image), (name, image)
            assert not image.endswith(":latest"), (name, image)


def test_mounted_host_paths_exist(services):
    mounted = set()
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            if isinstance(volume, str):
                source = volume.split(":", 1)[0]
                if not source.startswith((".", "/")):
                    continue  # a named volume
                created = False
            else:
                if volume["type"] != "bind":
                    continue
                source = _interpolate(volume["source"], {})
                created = (volume.get("bind") or {}).get("create_host_path", False)
            path = (ROOT / source).resolve()
            mounted.add(path)
            assert path.exists() or created, (name, source)
    for folder in ("dags", "plugins", "include", "tooling", "docker/postgres-init"):
        assert (ROOT / folder).resolve() in mounted, folder


def test_named_volumes_are_declared(compose, services):
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else (
                volume["source"] if volume["type"] == "volume" else ".")
            if not source.startswith((".", "/", "$")):
                assert source in declared, (name, source)


def test_the_demo_crm_seed_uses_the_demo_crm_cli(services):
    seed = services["crm-seed"]
    command = " ".join(seed["command"]) if isinstance(seed["command"], list) else seed["command"]
    assert "python -m tooling.demo_crm" in command and "--url" in command
    assert seed.get("restart") == "no"
    init = _interpolate(" ".join(services["airflow-init"]["command"]), {})
    assert "/entrypoint airflow version" in init
    assert _env(services["airflow-init"])["_AIRFLOW_DB_MIGRATE"] == "true"


def test_the_s3_profile_runs_the_s3_server_the_tests_run_natively(services):
    """The object-store option (profile s3) is moto in server mode at the version the tests
    start (requirements-dev.txt), and its bucket is made before anything writes there."""
    pins = dict(line.strip().split("==") for line in
                (ROOT / "requirements-dev.txt").read_text(encoding="utf-8").splitlines()
                if "==" in line and not line.startswith("#"))
    server, bucket = services["s3"], services["s3-bucket"]
    assert server["image"] == f"motoserver/moto:{pins['moto']}"
    assert server["profiles"] == bucket["profiles"] == ["s3"]
    assert server["healthcheck"]["test"]
    assert bucket["depends_on"]["s3"]["condition"] == "service_healthy"
    assert "REVISIT_S3_BUCKET" in _env(bucket)
    for name in AIRFLOW_SERVICES:
        assert "AIRFLOW_CONN_REVISIT_S3" in _env(services[name]), name
