"""The wheel as a user gets it: built from the source tree, installed into a fresh venv that
sees only the wheel's declared core dependencies (no ``[sim]`` extra, no source tree, no
editable install), and run from a folder outside the checkout: ``check-config``, ``sim-device``,
``probe`` and ``run`` for some cycles against it; ``backtest`` and a Dask ``sweep`` say that
they need ``factory-dispatch[sim]``.

No network: the wheel is built with ``--no-build-isolation`` (setuptools >= 77 from ``[dev]``)
and installed with ``--no-index --no-deps``; the dependencies are the ones already installed
beside the running interpreter, offered to the fresh venv as a folder of links to exactly the
distributions the wheel requires (its ``Requires-Dist`` closure), so a dependency the package
uses but does not declare fails here.
"""

from __future__ import annotations

import email.parser
import importlib.metadata as md
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from dispatch.store import Store
from tests.integration.conftest import SITE, START, free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [
    "byd_container_pcs", "huawei_sun2000_luna", "sma_storage", "sungrow_sh", "sunspec",
    "victron_gx_ess",
]
SCENARIO = """
name = "wheel"
site_config = "site.toml"
start = 2026-06-01T00:00:00+00:00
end = 2026-06-02T00:00:00+00:00
[generated]
load = "demo_profile"
pv = "clear_sky"
"""


def _setuptools_version() -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in md.version("setuptools").split(".")[:2])
    except (md.PackageNotFoundError, ValueError):
        return (0,)


def wheel_requires(wheel: Path) -> list[str]:
    """``Requires-Dist`` of a wheel file (its METADATA)."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(zf.read(name).decode("utf-8"))
    return meta.get_all("Requires-Dist") or []


def dependency_closure(requires: list[str], extras: set[str]) -> set[str]:
    """Canonical names of every distribution ``requires`` (read with ``extras``) pulls in,
    transitively, as installed beside the running interpreter."""
    seen: dict[str, set[str]] = {}
    todo = [(r, extras) for r in requires]
    while todo:
        text, wanted = todo.pop()
        req = Requirement(text)
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in {"", *wanted}):
            continue
        name = canonicalize_name(req.name)
        if name in seen and req.extras <= seen[name]:
            continue
        seen.setdefault(name, set()).update(req.extras)
        dist = md.distribution(name)  # PackageNotFoundError: not installed here
        todo += [(r, set(req.extras)) for r in dist.requires or []]
    return set(seen)


def link_distributions(names: set[str], into: Path) -> None:
    """A folder of links to the top-level files and folders (packages, modules, .dist-info,
    bundled .libs) of each installed distribution in ``names``."""
    into.mkdir()
    for name in sorted(names):
        dist = md.distribution(name)
        tops = {f.parts[0] for f in dist.files or [] if f.parts[0] not in ("..", "__pycache__")}
        for top in tops:
            target = Path(str(dist.locate_file(top)))
            if target.exists() and not (into / top).exists():
                (into / top).symlink_to(target)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built offline from a copy of the packaging-relevant sources."""
    if _setuptools_version() < (77,):
        why = ("the offline wheel build needs setuptools >= 77 beside the interpreter (in the "
               "[dev] extra: pip install -e '.[dev]')")
        if os.environ.get("CI"):  # make test in CI installs [dev]: there, a skip would hide it
            pytest.fail(why)
        pytest.skip(why)
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    for pkg in ("dispatch", "sim"):  # configs/ and tests/ stay behind: the wheel must not need them
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                          "--no-build-isolation", "--no-index", str(src), "-w", str(work)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    (built,) = work.glob("factory_dispatch-*.whl")
    return built


def make_venv(wheel: Path, where: Path, extras: set[str]) -> tuple[Path, dict[str, str]]:
    """A fresh venv with ``wheel`` installed and only its dependency closure (with
    ``extras``) importable; returns its ``bin`` folder and the environment to run it in."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where / "venv")],
                   check=True, timeout=60)
    bin_dir = where / "venv" / "bin"
    res = subprocess.run([sys.executable, "-m", "pip", "--python", str(bin_dir / "python"),
                          "install", "-q", "--no-deps", "--no-index", str(wheel)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    link_distributions(dependency_closure(wheel_requires(wheel), extras), where / "deps")
    purelib = subprocess.run([str(bin_dir / "python"), "-I", "-c",
                              "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "wheel-test-deps.pth").write_text(f"{where / 'deps'}\n")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
    env |= {"PYTHONNOUSERSITE": "1", "PYTHONUNBUFFERED": "1"}
    return bin_dir, env


def wait_listening(port: int, proc: subprocess.Popen[str], timeout_s: float = 30.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"sim-device not listening on {port} after {timeout_s} s")


def count(db: Path, table: str) -> int:
    if not db.exists():
        return 0
    with Store(db) as s:
        return s.count(table)


@pytest.fixture
def lean(wheel: Path, tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], Path]]:
    """The wheel in a fresh venv without the extra, and a plant folder outside the checkout."""
    bin_dir, env = make_venv(wheel, tmp_path, set())
    plant = tmp_path / "plant"
    plant.mkdir()
    assert ROOT not in plant.parents
    yield bin_dir, env, plant


def test_the_installed_wheel_runs_the_daemon_against_the_simulator(lean) -> None:
    bin_dir, env, plant = lean
    port, db = free_port(), plant / "dispatch.sqlite3"
    (plant / "site.toml").write_text(SITE.format(register_map="sunspec", port=port, db=db))
    (plant / "typo.toml").write_text(SITE.format(register_map="sunspek", port=port, db=db))

    def dispatch(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(bin_dir / "dispatch"), *argv], cwd=plant, env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)

    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import dispatch, sim, json, importlib.util as u; "
         "from dispatch.devices.registers import shipped_maps; print(json.dumps({"
         "'dispatch': dispatch.__file__, 'sim': sim.__file__, 'maps': shipped_maps(), "
         "'extra': [m for m in ('matplotlib', 'dask', 'distributed') if u.find_spec(m)]}))"],
        cwd=plant, env=env, capture_output=True, text=True, check=False)
    assert where.returncode == 0, where.stderr[-3000:]
    found = json.loads(where.stdout)
    venv = bin_dir.parent
    assert Path(found["dispatch"]).is_relative_to(venv), found
    assert Path(found["sim"]).is_relative_to(venv), found
    assert found["maps"] == SHIPPED and found["extra"] == []

    ok = dispatch("check-config", "site.toml")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["devices"][0]["register_map"] == "sunspec"
    typo = dispatch("check-config", "typo.toml")
    assert typo.returncode == 78
    assert "devices[0].register_map = 'sunspek'" in typo.stderr
    assert ", ".join(SHIPPED) in typo.stderr

    sim = subprocess.Popen([str(bin_dir / "dispatch"), "sim-device", "--config", "site.toml",
                            "--port", str(port), "--speed", "60", "--start", START],
                           cwd=plant, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    try:
        wait_listening(port, sim)
        probed = dispatch("probe", "--config", "site.toml")
        assert probed.returncode == 0, probed.stdout + probed.stderr
        assert "device bess (map sunspec)" in probed.stdout
        run = subprocess.Popen([str(bin_dir / "dispatch"), "run", "--config", "site.toml",
                                "--clock-speed", "60", "--clock-start", START],
                               cwd=plant, env=env, stderr=subprocess.PIPE, text=True)
        try:
            end = time.monotonic() + 40
            while count(db, "setpoints") < 10:
                assert run.poll() is None, run.communicate()[1][-3000:]
                assert time.monotonic() < end, "fewer than 10 control cycles in 40 s"
                time.sleep(0.3)
            run.send_signal(signal.SIGTERM)
            assert run.wait(20) == 0, run.communicate()[1][-3000:]
        finally:
            if run.poll() is None:
                run.kill()
                run.wait(10)
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.wait(10)
    assert count(db, "plans") >= 1 and count(db, "measurements") >= 10
    with Store(db) as s:
        kinds = [e["kind"] for e in s.rows("events")]
    assert kinds[0] == "start" and kinds[-1] == "stop"


def test_sim_commands_without_the_extra_say_what_to_install(lean) -> None:
    bin_dir, env, plant = lean
    (plant / "site.toml").write_text(SITE.format(register_map="sunspec", port=502,
                                                 db=plant / "d.sqlite3"))
    (plant / "scenario.toml").write_text(SCENARIO)
    (plant / "grid.toml").write_text('strategies = ["no_battery"]\n'
                                     '[axes]\n"battery.energy_kwh" = [100.0]\n')
    for argv in (["backtest", "--scenario", "scenario.toml", "--out", "out"],
                 ["sweep", "--scenario", "scenario.toml", "--grid", "grid.toml", "--out", "out",
                  "--executor", "dask"]):
        res = subprocess.run([str(bin_dir / "dispatch"), *argv], cwd=plant, env=env,
                             capture_output=True, text=True, timeout=60, check=False)
        assert res.returncode == 1, res.stderr
        assert "install factory-dispatch[sim]" in res.stderr
        assert "Traceback" not in res.stderr
    assert not (plant / "out").exists()


def test_backtest_runs_from_the_wheel_with_the_extra(wheel: Path, tmp_path: Path) -> None:
    bin_dir, env = make_venv(wheel, tmp_path, {"sim"})
    plant = tmp_path / "plant"
    plant.mkdir()
    (plant / "site.toml").write_text(SITE.format(register_map="sunspec", port=502,
                                                 db=plant / "d.sqlite3"))
    (plant / "scenario.toml").write_text(SCENARIO)
    res = subprocess.run([str(bin_dir / "dispatch"), "backtest", "--scenario", "scenario.toml",
                          "--out", "out", "--strategies", "no_battery", "perfect_foresight"],
                         cwd=plant, env=env, capture_output=True, text=True, timeout=120,
                         check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    assert {"kpis.csv", "report.html", "dispatch_day.png"} <= {p.name for p in
                                                                (plant / "out").iterdir()}
