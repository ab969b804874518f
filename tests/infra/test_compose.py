"""infra/docker-compose.yml, checked statically: the compose-spec JSON schema, `docker compose config`
(the standalone compose binary resolves and validates without an engine), references, health checks,
pinned images and no secret written in the file."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.infra.helpers import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    INFRA,
    TEST_ENV,
    compose_config,
    compose_model,
    raw_compose,
    write_env_file,
)

ONE_SHOT = {"minio-init", "prefect-setup"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|AUTH_STRING", re.IGNORECASE)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env = write_env_file(tmp_path_factory.mktemp("compose") / "test.env", TEST_ENV)
    return compose_model(env)


def test_validates_against_the_compose_spec_schema() -> None:
    import jsonschema

    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(raw_compose())]
    assert errors == []
    # the schema is strict enough to catch a typo
    broken = raw_compose()
    broken["services"]["flowml-server"]["healthcheck"]["retrys"] = 3
    assert not validator.is_valid(broken)


def test_compose_config_accepts_a_filled_env_file(tmp_path: Path) -> None:
    result = compose_config(write_env_file(tmp_path / ".env", TEST_ENV), "-q")
    assert result.returncode == 0, result.stderr


def test_every_required_variable_is_in_env_example_and_enforced(tmp_path: Path) -> None:
    text = COMPOSE_FILE.read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert required == set(TEST_ENV)
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert set(example) == required
    assert all(value == "" for value in example.values()), "no value (let alone a secret) in .env.example"
    # the example as shipped (empty values) is refused, naming every required variable
    result = compose_config(ENV_EXAMPLE, "-q")
    assert result.returncode != 0
    for name in required:
        assert f"required variable {name} is missing a value" in result.stderr
    # the defaults of the optional ones, documented in .env.example, are the defaults in the file
    for name, default in re.findall(r"\$\{(\w+):-([^}]*)\}", text):
        assert f"# {name}={default}\n" in ENV_EXAMPLE.read_text(), name


def test_no_secret_is_written_in_the_file(model: dict[str, Any]) -> None:
    for name, service in raw_compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", str(value)), f"{name}.{key} must be ${{VAR:?...}}"
    # no password inside a URI either (the database password travels as PGPASSWORD)
    for name, service in model["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if "://" in str(value):
                assert urlsplit(str(value)).password is None, f"{name}.{key}"
    # and the test values went only where the ${VAR:?} references are
    text = json.dumps(model)
    assert text.count(TEST_ENV["POSTGRES_PASSWORD"]) == 3  # postgres, prefect-server, flowml-server


def test_references_resolve(model: dict[str, Any]) -> None:
    services = model["services"]
    assert {"postgres", "minio", "minio-init", "prefect-server", "flowml-server", "prefect-setup", "worker",
            "dispatcher"} <= set(services)  # fmt: skip
    for name, service in services.items():
        for dep, how in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            expected = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
            assert how["condition"] == expected, f"{name} -> {dep}"
        for mount in service.get("volumes", []):
            if mount["type"] == "volume":
                assert mount["source"] in model["volumes"], f"{name}: undeclared volume {mount['source']}"
            else:
                assert Path(mount["source"]).exists(), f"{name}: missing bind source {mount['source']}"
                assert mount.get("read_only"), f"{name}: bind mounts are read-only"
    # every named volume is used (no forgotten state)
    used = {m["source"] for s in services.values() for m in s.get("volumes", []) if m["type"] == "volume"}
    assert used == set(model["volumes"])


def test_health_checks_and_restart_policies(model: dict[str, Any]) -> None:
    for name, service in model["services"].items():
        if name in ONE_SHOT:
            assert service["restart"] == "no"
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL")
        assert service["restart"] == "unless-stopped", name


def test_images_are_pinned_and_flowml_services_share_one_build(model: dict[str, Any]) -> None:
    builds = set()
    for name, service in model["services"].items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: unpinned image {image}"
        if "build" in service:
            builds.add((image, service["build"]["context"], service["build"]["dockerfile"]))
    assert builds == {("flowml:0.1.0", str(INFRA.parent), "infra/Dockerfile")}


def test_published_ports_bind_to_loopback_by_default(model: dict[str, Any]) -> None:
    published = {
        name: [(p["host_ip"], p["target"]) for p in service.get("ports", [])]
        for name, service in model["services"].items()
    }
    assert published["flowml-server"] == [("127.0.0.1", 5000)]
    assert published["prefect-server"] == [("127.0.0.1", 4200)]
    assert published["minio"] == [("127.0.0.1", 9001)]
    assert not published["postgres"] and not published["worker"]


def test_clients_hold_no_database_or_s3_credentials(model: dict[str, Any]) -> None:
    for name in ("worker", "dispatcher", "prefect-setup"):
        env = model["services"][name]["environment"]
        assert env["FLOWML_TRACKING_URI"] == "http://flowml-server:5000"
        assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
        assert not any(SECRET_NAME.search(k) for k in env), name
