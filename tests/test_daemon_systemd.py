"""The systemd unit: how the config reaches its dynamic user, the README's install steps against
it, exposure level and ``systemd-analyze verify`` (those two skipped without systemd)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "dispatch.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed "
                                   "(Debian package 'systemd'); the unit is not checked")


def directives(text: str) -> list[tuple[str, str]]:
    """``(key, value)`` of every directive of a unit file, in order (keys may repeat)."""
    out = []
    for line in text.splitlines():
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, _, value = line.partition("=")
            out.append((key.strip(), value.strip()))
    return out


def readme_install_block() -> list[str]:
    """The commands of the README's "Install on a Debian-like host" block."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("Install on a Debian-like host with systemd", 1)[1]
    block = block.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_the_config_reaches_the_dynamic_user_as_a_credential() -> None:
    unit = directives(UNIT.read_text())
    keys = dict(unit)
    assert keys["DynamicUser"] == "yes"
    assert ("LoadCredential", "site.toml:/etc/dispatch/site.toml") in unit
    exec_start = keys["ExecStart"].split()
    assert exec_start[1:] == ["run", "--config", "${CREDENTIALS_DIRECTORY}/site.toml"]
    # systemd does not chown a ConfigurationDirectory: the dynamic user could not read it
    assert not any(k.startswith("ConfigurationDirectory") for k, _ in unit)


def test_the_readme_install_steps_put_things_where_the_unit_reads_them() -> None:
    unit = dict(directives(UNIT.read_text()))
    exe = unit["ExecStart"].split()[0]
    venv = exe.removesuffix("/bin/dispatch")
    source = unit["LoadCredential"].split(":", 1)[1]
    steps = readme_install_block()
    assert f"sudo python3 -m venv {venv}" in steps
    assert any(s.startswith(f"sudo {venv}/bin/pip install ") for s in steps)
    assert f"sudo install -d -m 0700 {Path(source).parent}" in steps
    assert any(s.startswith("sudo install -m 0600 ") and s.endswith(f" {source}") for s in steps)
    assert f"sudo {exe} check-config {source}" in steps
    assert "sudo install -m 0644 systemd/dispatch.service /etc/systemd/system/" in steps
    assert "sudo systemctl daemon-reload && sudo systemctl enable --now dispatch" in steps


def exposure(unit: Path) -> float:
    out = subprocess.run([str(ANALYZE), "security", "--offline=true", str(unit)],
                         capture_output=True, text=True, timeout=60).stdout  # fmt: skip
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
    assert m, out[-500:]
    return float(m.group(1))


@needs_analyze
def test_the_unit_is_hardened_to_an_exposure_of_at_most_1_5() -> None:
    assert exposure(UNIT) <= 1.5


@needs_analyze
def test_the_serial_drop_in_relaxes_device_access_only(tmp_path: Path) -> None:
    merged = tmp_path / "dispatch.service"
    drop_in = ROOT / "systemd" / "dispatch.service.d" / "serial-rtu.conf.example"
    merged.write_text(UNIT.read_text() + "\n" + drop_in.read_text())
    assert exposure(merged) <= 2.0


@needs_analyze
def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    unit = tmp_path / "dispatch.service"
    exe = Path(sys.executable).parent / "dispatch"  # the installed console script
    unit.write_text(UNIT.read_text().replace("/opt/dispatch/.venv/bin/dispatch", str(exe)))
    res = subprocess.run([str(ANALYZE), "verify", str(unit)], capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "dispatch.service" not in res.stderr, res.stderr
