"""Control-cycle time and resident memory of the daemon against the plant simulator.

Runs the real daemon (``dispatch.daemon.Daemon``) against 1 and then 4 simulated battery
devices (SunSpec map, Modbus TCP on 127.0.0.1, served from the same process) for ``--seconds``
of wall time at a 120x clock with a 10 s control cycle, and prints the median and p99 of the
control cycle (read every device, decide, write with read-back, store the cycle in SQLite) and
the cycle count. Then it runs one device through a whole simulated day (1440x clock, 60 s
cycle) and prints the process's peak resident memory after it. As a reference measured in the
same run it prints the median of a bare Modbus round trip (one 40-register read from the
simulator), so the ratio says how much of a cycle is our own work. Needs no real data.

Run: ``python -m bench.bench_daemon [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import time
from pathlib import Path

from pymodbus.client import AsyncModbusTcpClient

from dispatch.config import SiteConfig, parse_config
from dispatch.daemon import Clock, Daemon, Notifier, metrics
from sim.server import default_physics, start_server
from tests.integration.conftest import T0, site_config

DAY_S = 86_400.0


def config_for(ports: list[int], db: Path, cycle_s: float) -> SiteConfig:
    """The integration-test site scaled to ``len(ports)`` battery devices of 100 kW each."""
    data = site_config(ports[0], db).model_dump()
    device = data["devices"][0]
    data["devices"] = [dict(device, name=f"bess{i}", port=p) for i, p in enumerate(ports)]
    n = len(ports)
    data["battery"].update(
        energy_kwh=200.0 * n, charge_max_kw=100.0 * n, discharge_max_kw=100.0 * n
    )
    data["control"]["cycle_s"] = cycle_s
    return parse_config(data, "bench")


async def modbus_round_trip_ms(port: int, n: int = 200) -> float:
    """Median time of one 40-register read from the simulator (ms)."""
    client = AsyncModbusTcpClient("127.0.0.1", port=port)
    await client.connect()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        await client.read_holding_registers(40000, count=40, device_id=1)
        times.append(time.perf_counter() - t0)
    client.close()
    return statistics.median(times) * 1e3


async def run(
    n_devices: int, seconds: float, workdir: Path, speed: float = 120.0, cycle_s: float = 10.0
) -> dict[str, float]:
    """Run the daemon against ``n_devices`` simulators; cycle times (ms) and counts."""
    sims = [await start_server("sunspec", speed=speed, battery=default_physics(start=T0))
            for _ in range(n_devices)]  # fmt: skip
    samples: list[float] = []
    original = metrics.Metrics.cycle

    def record(self, snap, sp, last_kw, cycle_s):
        samples.append(cycle_s)
        return original(self, snap, sp, last_kw, cycle_s)

    metrics.Metrics.cycle = record  # type: ignore[method-assign]
    try:
        db = workdir / f"bench{n_devices}-{speed:g}.sqlite3"
        cfg = config_for([s.port for s in sims], db, cycle_s)
        daemon = Daemon(cfg, Clock(T0, speed), notifier=Notifier(""))
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        await asyncio.sleep(seconds)
        stop.set()
        await task
        reference = await modbus_round_trip_ms(sims[0].port)
    finally:
        metrics.Metrics.cycle = original  # type: ignore[method-assign]
        for s in sims:
            await s.stop()
    xs = sorted(samples)
    return {
        "devices": n_devices,
        "cycles": len(xs),
        "median_ms": statistics.median(xs) * 1e3,
        "p99_ms": xs[max(0, int(0.99 * len(xs)) - 1)] * 1e3,
        "modbus_rtt_ms": reference,
        "median/rtt": statistics.median(xs) * 1e3 / reference,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="wall time per run (s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [asyncio.run(run(n, args.seconds, Path(tmp))) for n in (1, 4)]
        day = asyncio.run(run(1, DAY_S / 1440.0, Path(tmp), speed=1440.0, cycle_s=60.0))
    print(f"daemon vs simulator, 120x clock, 10 s control cycle, {args.seconds:g} s per run")
    for r in rows:
        print("  ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in r.items()))  # fmt: skip
    print(
        f"after a simulated day (1 device, {day['cycles']} cycles): "
        f"peak resident memory {day['max_rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
