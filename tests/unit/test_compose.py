"""docker-compose.yml can't be run here (no Docker engine); check what it promises."""

from __future__ import annotations

import importlib
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from launch.cli import build_parser
from refract.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def load(name: str) -> Any:
    return yaml.safe_load((ROOT / name).read_text())


def test_services_and_healthchecks() -> None:
    services = load("docker-compose.yml")["services"]
    assert {
        "postgres",
        "redis",
        "migrate",
        "api",
        "worker-text",
        "worker-image",
        "beat",
        "flower",
    } <= set(services)
    for name in ("postgres", "redis", "api"):
        assert "healthcheck" in services[name], name
    for name in ("api", "worker-text", "worker-image", "beat"):
        needs = services[name]["depends_on"]
        assert needs["postgres"]["condition"] == "service_healthy"
        assert needs["redis"]["condition"] == "service_healthy"
        assert needs["migrate"]["condition"] == "service_completed_successfully"


def test_every_long_running_service_is_restarted() -> None:
    # A worker or beat that dies (or outlives a dependency's restart) comes back; only
    # the one-shot migration is left alone once it has finished.
    services = load("docker-compose.yml")["services"]
    one_shot = {"migrate"}
    for name in ("postgres", "redis", "api", "worker-text", "worker-image", "beat", "flower"):
        assert services[name].get("restart") == "unless-stopped", name
    for name, service in services.items():
        expected = "no" if name in one_shot else "unless-stopped"
        assert service.get("restart") == expected, name


def test_every_command_is_a_real_refract_subcommand() -> None:
    parser = build_parser()
    for service in load("docker-compose.yml")["services"].values():
        command = service.get("command")
        if command and command[0] == "refract":
            parser.parse_args(command[1:])  # exits (fails the test) on an unknown option


def test_every_queue_has_a_worker() -> None:
    services = load("docker-compose.yml")["services"]
    consumed: set[str] = set()
    for service in services.values():
        command = service.get("command") or []
        if command[:2] == ["refract", "worker"]:
            consumed |= set(command[command.index("--queues") + 1].split(","))
    assert consumed == {"text", "image", "maintenance"}


def test_env_example_names_real_settings() -> None:
    names = {
        line.split("=", 1)[0].lstrip("# ").strip()
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and line.lstrip("# ").split("=", 1)[0].isupper()
    }
    fields = {f"REFRACT_{name.upper()}" for name in Settings.model_fields}
    aliases = {"GEMINI_API_KEY", "GOOGLE_API_KEY", "YOUTUBE_API_KEY"}
    compose_only = {
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "POSTGRES_DB",
        "FLOWER_BASIC_AUTH",
        "REDIS_PASSWORD",
        "MINIO_ROOT_USER",
        "MINIO_ROOT_PASSWORD",
    }
    unknown = names - fields - aliases - compose_only
    assert not unknown, unknown


def test_secrets_are_required_and_never_defaulted() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    services = load("docker-compose.yml")["services"]
    # Compose refuses to start (`:?`) without each secret; none has a default (`:-`).
    for name in (
        "REDIS_PASSWORD",
        "REFRACT_SECRET_KEY",
        "FLOWER_BASIC_AUTH",
        "MINIO_ROOT_USER",
        "MINIO_ROOT_PASSWORD",
    ):
        assert f"${{{name}:?" in text, name
        assert f"${{{name}:-" not in text, name
    for name in ("api", "worker-text", "worker-image", "beat", "migrate"):
        env = services[name]["environment"]
        assert env["REFRACT_REDIS_URL"].startswith("redis://:${REDIS_PASSWORD:?"), name
        assert env["REFRACT_SECRET_KEY"].startswith("${REFRACT_SECRET_KEY:?"), name
        assert env["REFRACT_AUTH"] == "required", name
    redis = services["redis"]
    assert "--requirepass" in " ".join(redis["command"])
    assert "REDISCLI_AUTH" in " ".join(redis["healthcheck"]["test"])
    flower = services["flower"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    assert flower["environment"]["REFRACT_REDIS_URL"].startswith("redis://:${REDIS_PASSWORD:?")
    # No Redis URL without its password anywhere.
    assert "redis://redis:" not in text


def test_env_example_ships_no_secret() -> None:
    values = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    for name in (
        "REDIS_PASSWORD",
        "REFRACT_SECRET_KEY",
        "FLOWER_BASIC_AUTH",
        "MINIO_ROOT_USER",
        "MINIO_ROOT_PASSWORD",
    ):
        assert values[name] == "", name


def test_the_api_is_reached_only_through_the_proxy() -> None:
    services = load("docker-compose.yml")["services"]
    assert "ports" not in services["api"]  # slow clients wait at the proxy, not in the API
    proxy = services["proxy"]
    assert proxy["ports"] == ["127.0.0.1:8000:8080"]
    assert proxy["depends_on"]["api"]["condition"] == "service_healthy"
    assert "healthcheck" in proxy
    mounted = proxy["volumes"][0].split(":")[0]
    config = (ROOT / mounted).read_text()
    for directive in ("client_header_timeout", "client_body_timeout", "proxy_request_buffering on"):
        assert directive in config, directive
    assert "server api:8000;" in config and "listen 8080;" in config


def test_prometheus_scrapes_the_api_with_a_key_and_every_worker() -> None:
    services = load("docker-compose.yml")["services"]
    prometheus = services["prometheus"]
    assert prometheus["profiles"] == ["metrics"]  # only with `--profile metrics`
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in prometheus["volumes"]}
    config = load(mounts["/etc/prometheus/prometheus.yml"].removeprefix("./"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    api = jobs["refract-api"]
    assert api["metrics_path"] == "/metrics"
    assert api["static_configs"][0]["targets"] == ["api:8000"]
    assert api["authorization"]["credentials_file"] in mounts  # the admin key, from a file
    workers = jobs["refract-workers"]["dns_sd_configs"][0]
    for name in ("worker-text", "worker-image"):
        assert name in workers["names"]
        bind = services[name]["environment"]["REFRACT_METRICS_BIND"]
        assert bind.endswith(f":{workers['port']}")
        assert services[name]["environment"]["REFRACT_AUTH"] == "required"


REFRACT_SERVICES = ("migrate", "api", "worker-text", "worker-image", "beat", "flower")


def test_one_image_is_built_once_and_run_by_every_refract_service() -> None:
    services = load("docker-compose.yml")["services"]
    builders = [name for name, service in services.items() if "build" in service]
    assert builders == ["migrate"]  # the one build; it runs first, everything waits for it
    for name in REFRACT_SERVICES:
        assert services[name]["image"] == "refract:latest", name
    for name in REFRACT_SERVICES[1:]:
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        ), name


def test_flower_reads_the_broker_from_refract_settings() -> None:
    services = load("docker-compose.yml")["services"]
    flower = services["flower"]
    command = flower["command"]
    assert command[:4] == ["celery", "-A", "worker.flower", "flower"]
    assert (ROOT / "worker" / "flower.py").is_file()
    # The same environment as the workers: REFRACT_BROKER_URL or REFRACT_REDIS_URL from
    # .env and the secrets anchor; no broker URL of its own that could drift.
    assert flower["env_file"] == services["worker-text"]["env_file"] == ".env"
    worker_env = services["worker-text"]["environment"]
    for name in ("REFRACT_REDIS_URL", "REFRACT_SECRET_KEY"):
        assert flower["environment"][name] == worker_env[name], name
    assert not {"CELERY_BROKER_URL", "BROKER_URL"} & set(flower["environment"])
    # The image has Flower: the Dockerfile installs the extra that pyproject declares.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("flower") for dep in project["optional-dependencies"]["flower"])
    assert '.[flower]"' in (ROOT / "Dockerfile").read_text()


def test_flower_app_uses_refract_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REFRACT_REDIS_URL", "redis://:s3cret@redis.invalid:6379/0")
    monkeypatch.setenv("REFRACT_BROKER_URL", "redis://:other@broker.invalid:6379/2")
    sys.modules.pop("worker.flower", None)
    module = importlib.import_module("worker.flower")
    try:
        assert module.app.conf.broker_url == "redis://:other@broker.invalid:6379/2"
        # A plain redis:// URL, which Flower knows how to read queue lengths from.
        assert module.app.connection_for_read().as_uri().startswith("redis://")
    finally:
        module.app.close()
        sys.modules.pop("worker.flower", None)


def test_dockerignore_keeps_the_working_tree_out() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for entry in (".git", ".venv", "var", ".env", "**/__pycache__", ".pytest_cache"):
        assert entry in ignored, entry
    for entry in (".mypy_cache", ".ruff_cache", ".hypothesis", "tests", "*.egg-info"):
        assert entry in ignored, entry
    # What the Dockerfile copies is never ignored.
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert source not in ignored, source


def test_media_live_in_minio_for_every_refract_service() -> None:
    # Workers on other hosts read the photos the API stored: a bucket, not a volume.
    compose = load("docker-compose.yml")
    services = compose["services"]
    for name in ("migrate", "api", "worker-text", "worker-image", "beat"):
        env = services[name]["environment"]
        assert env["REFRACT_MEDIA_BACKEND"] == "s3", name
        assert env["REFRACT_S3_ENDPOINT_URL"] == "http://minio:9000", name
        assert "volumes" not in services[name] or not any(
            "/app/var/media" in volume for volume in services[name]["volumes"]
        ), name
    assert services["migrate"]["depends_on"]["minio"]["condition"] == "service_healthy"
    assert services["minio"]["healthcheck"]
    assert "media" not in compose["volumes"]
