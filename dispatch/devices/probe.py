"""Commissioning: list what each configured device answers (``dispatch probe --config C``).

Role: connect to each ``[[devices]]`` entry, discover its SunSpec models where the map is
SunSpec, read every mapped field and report values with units, the device's own point names and
the fields it lacks. Read-only: never writes. Imports this package and ``dispatch.config``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dispatch.config import DeviceSection
from dispatch.devices.client import DeviceClient
from dispatch.types import DeviceError


@dataclass(frozen=True)
class ProbeResult:
    """What one device answered.

    Attributes
    ----------
    device, register_map : str
        Configured name and map.
    models : list of (model id, instance, address)
        SunSpec model blocks found (empty for fixed maps).
    rows : list of (field, value, unit, device point, address)
        Every field read, in our units.
    missing : list of str
        Fields the device lacks or reports as not implemented.
    error : str
        Why the probe failed ("" when it worked).
    """

    device: str
    register_map: str
    models: list[tuple[int, int, int]] = field(default_factory=list)
    rows: list[tuple[str, Any, str, str, int]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    error: str = ""


async def probe_device(cfg: DeviceSection) -> ProbeResult:
    """Read everything a device's map names; never raises for device problems."""
    client = DeviceClient(cfg)
    try:
        fields = await client.open()
        reading = await client.read()
    except DeviceError as exc:
        return ProbeResult(cfg.name, client.map.name, error=str(exc))
    finally:
        client.close()
    models = sorted((m, i, a) for (m, i), a in client.models.items())
    rows = [
        (name, reading.values[name], r.spec.unit, r.spec.point, r.address)
        for name, r in sorted(fields.items(), key=lambda kv: kv[1].address)
        if name in reading.values
    ]
    return ProbeResult(cfg.name, client.map.name, models, rows, list(reading.missing))


async def probe(devices: list[DeviceSection]) -> list[ProbeResult]:
    """Probe every configured device in turn."""
    return [await probe_device(d) for d in devices]


def format_probe(results: list[ProbeResult]) -> str:
    """Plain-text report for a plant engineer."""
    lines: list[str] = []
    for res in results:
        lines.append(f"device {res.device} (map {res.register_map})")
        if res.error:
            lines.append(f"  FAILED: {res.error}")
            continue
        for model, inst, addr in res.models:
            lines.append(f"  SunSpec model {model} #{inst} at {addr}")
        for name, value, unit, point, addr in res.rows:
            shown = f"{value:.4g}" if isinstance(value, float) else repr(value)
            lines.append(f"  {addr:>5}  {name:<28} {shown:>12} {unit:<8} {point}")
        if res.missing:
            lines.append(f"  not available: {', '.join(res.missing)}")
    return "\n".join(lines)
