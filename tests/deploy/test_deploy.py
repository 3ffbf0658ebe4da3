"""deploy/: the Kubernetes example and the serving image, checked against what `palette
serve` really does — its command line parser, its route table, the environment variables
its configuration reads — so the example cannot drift from the server. No cluster, no
Docker: parsing (docker build is in deploy/README.md)."""
import configparser
import json
import math
import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

from palette.serve.app import create_app
from palette.serve.config import ConfigError, ServeConfig, parser
from palette.serve.models import ModelSet

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.fixture(scope="module")
def objects():
    """Every Kubernetes object under deploy/kubernetes, by kind."""
    docs = [d for f in sorted((DEPLOY / "kubernetes").glob("*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]
    by_kind = {}
    for d in docs:
        assert {"apiVersion", "kind", "metadata"} <= set(d), d
        by_kind.setdefault(d["kind"], []).append(d)
    assert sorted(by_kind) == ["ConfigMap", "Deployment", "Service"]
    return {k: v[0] for k, v in by_kind.items()}


@pytest.fixture(scope="module")
def container(objects):
    (c,) = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    return c


def serve_args(container) -> list[str]:
    """The container's command line after `palette serve`, once `palette` is known to be
    palette's own CLI (whose `serve` is palette.serve's parser)."""
    command = container["command"] + container.get("args", [])
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == command[0]]
    assert script.value == "palette.cli:main" and command[1] == "serve"
    return command[2:]


def config_of(objects, container, drop: str | None = None) -> ServeConfig:
    env = {k: v for k, v in objects["ConfigMap"]["data"].items() if k != drop}
    env.update({e["name"]: "an-admin-token-of-16+" for e in container.get("env", []) if e["name"] != drop})
    return ServeConfig.from_sources(serve_args(container), env=env)


def test_the_command_is_a_valid_palette_serve_invocation(objects, container):
    args = serve_args(container)
    parser().parse_args(args)                          # exits (SystemExit) on an unknown option
    c = config_of(objects, container)
    assert c.host == "0.0.0.0" and list(c.models) == ["eta"] and c.models["eta"].path.startswith("models:/")
    assert c.online_store.startswith("redis://")
    (port,) = container["ports"]
    assert port["containerPort"] == c.port and port["name"] == "http"


def test_probes_ask_the_server_s_own_health_and_readiness_routes(objects, container):
    c = config_of(objects, container)
    routes = {r.path: r.endpoint.__name__ for r in create_app(c, ModelSet(c)).routes}
    probes = {k: container[k]["httpGet"] for k in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert routes.get(probes["readinessProbe"]["path"]) == "readyz"
    assert routes.get(probes["livenessProbe"]["path"]) == routes.get(probes["startupProbe"]["path"]) == "healthz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in probes.values():
        assert ports.get(probe["port"], probe["port"]) == c.port


def test_every_configmap_key_is_read_by_the_server(objects, container):
    data = objects["ConfigMap"]["data"]
    assert all(isinstance(v, str) for v in data.values())          # ConfigMap values are strings
    assert {"PALETTE_SERVE_MODELS", "PALETTE_ONLINE_STORE"} <= set(data)
    whole = config_of(objects, container).__dict__
    for key in [*data, *(e["name"] for e in container.get("env", []))]:
        if key.startswith("MLFLOW_"):                  # MLflow's client reads those
            continue
        try:
            without = config_of(objects, container, drop=key).__dict__
        except ConfigError:                            # a required one
            continue
        assert without != whole, f"{key} changes nothing palette serve reads"


def test_the_deployment_rolls_without_losing_capacity_and_has_limits(objects, container):
    d, cm = objects["Deployment"], objects["ConfigMap"]
    spec = d["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["type"] == "RollingUpdate" and spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert {r["configMapRef"]["name"] for r in container["envFrom"]} == {cm["metadata"]["name"]}
    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])
    c = config_of(objects, container)
    assert c.workers <= math.ceil(float(resources["limits"]["cpu"]))          # one worker per core
    pre_stop = float(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] > pre_stop + c.graceful_seconds
    service = objects["Service"]["spec"]
    assert service["selector"].items() <= labels.items()
    assert {p["targetPort"] for p in service["ports"]} <= {p["name"] for p in container["ports"]}


def test_the_image_is_jvm_free_and_installs_the_serve_extras():
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [ln for ln in re.sub(r"\\\n", " ", text).splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    bases = [ln.split()[1] for ln in lines if ln.startswith("FROM ")]
    assert bases and all(re.fullmatch(r"python:3\.\d+-slim", b) for b in bases), bases
    assert not re.search(r"\b(java|jdk|jre|openjdk|temurin|spark)\b", " ".join(lines), re.I)
    package_dir = configparser.ConfigParser()
    package_dir.read(DEPLOY.parent / "setup.cfg")
    folders = {line.split("=")[1].strip() for line in package_dir["options"]["package_dir"].strip().splitlines()}
    copied = {src for ln in lines if ln.startswith("COPY ") and "--from" not in ln for src in ln.split()[1:-1]}
    assert folders <= copied and {"setup.cfg", "pyproject.toml", "README.md"} <= copied   # the wheel is whole
    (install,) = [ln for ln in lines if ln.startswith("RUN pip install")]
    extras = re.search(r"\[([a-z,]+)\]", install).group(1).split(",")
    assert {"serve", "redis"} <= set(extras) and "spark" not in extras
    (entry,) = [ln for ln in lines if ln.startswith("ENTRYPOINT ")]
    command = json.loads(entry[len("ENTRYPOINT "):])
    assert command[:2] == ["palette", "serve"]
    parser().parse_args(command[2:])
    assert any(ln.startswith("USER ") and ln.split()[1] not in ("root", "0") for ln in lines)
    assert f"EXPOSE {ServeConfig.from_sources(command[2:] + ['--model', 'm=/m'], env={}).port}" in lines
