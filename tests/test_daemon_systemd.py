"""The systemd unit: exposure level and ``systemd-analyze verify`` (skipped without systemd)."""

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
pytestmark = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed "
                                "(Debian package 'systemd'); the unit is not checked")


def exposure(unit: Path) -> float:
    out = subprocess.run([str(ANALYZE), "security", "--offline=true", str(unit)],
                         capture_output=True, text=True, timeout=60).stdout  # fmt: skip
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
    assert m, out[-500:]
    return float(m.group(1))


def test_the_unit_is_hardened_to_an_exposure_of_at_most_1_5() -> None:
    assert exposure(UNIT) <= 1.5


def test_the_serial_drop_in_relaxes_device_access_only(tmp_path: Path) -> None:
    merged = tmp_path / "dispatch.service"
    drop_in = ROOT / "systemd" / "dispatch.service.d" / "serial-rtu.conf.example"
    merged.write_text(UNIT.read_text() + "\n" + drop_in.read_text())
    assert exposure(merged) <= 2.0


def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    unit = tmp_path / "dispatch.service"
    exe = Path(sys.executable).parent / "dispatch"  # the installed console script
    unit.write_text(UNIT.read_text().replace("/opt/dispatch/.venv/bin/dispatch", str(exe)))
    res = subprocess.run([str(ANALYZE), "verify", str(unit)], capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "dispatch.service" not in res.stderr, res.stderr
