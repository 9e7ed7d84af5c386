"""``make demo``: the daemon drives the simulated example factory over Modbus TCP.

Starts the plant simulator (``sim.server``, Huawei LUNA register map) on 127.0.0.1 with the
example site, a week of its demo load history in a fresh SQLite store and a clock 120 times
faster than real time; then runs the real daemon against it (forecast, plan every step,
control every cycle, status page on http://127.0.0.1:8787/). Prints each new plan and the
live setpoints and SoC, and stops cleanly after a bounded number of control cycles or on
Ctrl-C. Nothing reaches the network beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import socket
import sys
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd

from dispatch.config import SiteConfig, parse_config
from dispatch.daemon import Clock, Daemon
from dispatch.store import Store, codec
from dispatch.types import DispatchError, Snapshot
from sim.loadprofile import demo_load_kw, pv_available_kw
from sim.plant import Plant
from sim.server import PlantPhysics, PlantServer, start_server

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "suzhou-factory.toml"


def free_port(port: int) -> int:
    """``port`` when it can be bound on 127.0.0.1, else 0 (any free port)."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


def demo_config(path: str, port: int, store: Path, http_port: int) -> SiteConfig:
    """The example site plus one simulated battery device, the demo store and HTTP port."""
    data: dict[str, Any] = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    b = data["battery"]
    data["devices"] = [{"name": "bess", "register_map": "huawei_sun2000_luna", "port": port,
                        "timeout_s": 0.5, "retries": 0, "min_write_interval_s": 0.0,
                        "charge_max_kw": b["charge_max_kw"],
                        "discharge_max_kw": b["discharge_max_kw"], "revert_timeout_s": 300.0,
                        "backoff_max_s": 60.0}]  # fmt: skip
    data["control"] = {"cycle_s": 10.0, "snapshot_max_age_s": 60.0}
    data["store"] = {"path": str(store)}
    data["http"] = {"port": http_port}
    return parse_config(data, path)


#: The seeded week is synthetic: marked as imported history whose grid flow was not metered,
#: so the carbon ledger books it as ``estimated``, never as measured.
SEED_MARKS = {codec.IMPORTED: 1.0, codec.GRID_ESTIMATED: 1.0}


def seed_history(config: SiteConfig, store: Path, start: dt.datetime) -> None:
    """A week of the demo load before ``start`` as measurements (feeds the load forecast),
    marked ``SEED_MARKS``."""
    load = demo_load_kw(config, start - dt.timedelta(days=7), days=7)
    with Store(store) as s:
        for t, kw in load.items():
            snap = Snapshot(time=t.to_pydatetime(), p_grid_kw=float(kw), p_pv_kw=0.0,
                            p_batt_kw=0.0, p_load_kw=float(kw), soc_frac=0.5, values=SEED_MARKS)
            s.write_snapshot(snap)


async def start_plant(config: SiteConfig, start: dt.datetime, speed: float) -> PlantServer:
    """The simulated factory: demo load and clear-sky PV, battery from the config."""
    load = demo_load_kw(config, start, days=2)
    plant = Plant(config, start=start, pv_kw=pv_available_kw(config, load.index), load_kw=load)
    return await start_server("huawei_sun2000_luna", port=0, speed=speed,
                              battery=PlantPhysics(plant, start))  # fmt: skip


def plan_lines(d: Daemon) -> list[str]:
    """The new plan: summary and the next hours' battery power and SoC (site time)."""
    ps = d.plan_state
    assert ps is not None
    p, tz = ps.plan, d.config.site.timezone
    f = p.frame[["p_batt_kw", "p_grid_kw", "soc_frac"]].resample("1h").mean().head(6)
    hours = "  ".join(f"{t.tz_convert(tz):%H:%M} {r.p_batt_kw:+6.0f} kW soc {r.soc_frac:.2f}"
                      for t, r in f.iterrows())  # fmt: skip
    return [f"plan {ps.plan_id}: {p.status}, {p.solve_ms:.1f} ms, cost {p.costs.total:,.0f} "
            f"{d.config.tariff.currency}, forecast: {ps.forecast_source}", f"  next: {hours}"]


async def observe(d: Daemon, cycles: int, stop: asyncio.Event, every: int = 12) -> None:
    """Print plans and live values until ``cycles`` control cycles have run."""
    seen, shown = None, 0
    tz = d.config.site.timezone
    while d.scheduler is None and not stop.is_set():
        await asyncio.sleep(0.05)
    print(f"status page {d.http.url}", flush=True)
    while not stop.is_set():
        await asyncio.sleep(0.05)
        if d.plan_state is not None and d.plan_state is not seen:
            seen = d.plan_state
            print("\n".join(plan_lines(d)), flush=True)
        n = int(d.metrics.cycles._value.get())
        c = d.last_cycle
        if c is not None and n >= shown + every:
            shown = n
            s = c.snapshot
            print(f"{pd.Timestamp(c.time).tz_convert(tz):%H:%M:%S} soc {s.soc_frac:.3f} grid "
                  f"{s.p_grid_kw:7.0f} pv {s.p_pv_kw:6.0f} load {s.p_load_kw:6.0f} batt "
                  f"{s.p_batt_kw:+6.0f} -> set {c.setpoints.p_batt_kw:+6.0f} kW "
                  f"({c.setpoints.reason.split(';')[0][:60]})", flush=True)
        if n >= cycles:
            stop.set()


async def demo(args: argparse.Namespace) -> int:
    """Run the simulator and the daemon; returns the exit code."""
    tz = parse_config(tomllib.loads(Path(args.config).read_text("utf-8"))).site.timezone
    day = pd.Timestamp.now(tz=tz).normalize()
    start = (day + pd.Timedelta(hours=args.start_hour)).tz_convert("UTC").to_pydatetime()
    store = Path(args.store)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    http_port = free_port(args.http_port)
    sim = await start_plant(demo_config(args.config, 0, store, http_port), start, args.speed)
    config = demo_config(args.config, sim.port, store, http_port)
    seed_history(config, store, start)
    daemon = Daemon(config, Clock(start, args.speed))
    stop = asyncio.Event()
    print(f"simulator on 127.0.0.1:{sim.port}, clock {args.speed:g}x from "
          f"{pd.Timestamp(start).tz_convert(tz):%Y-%m-%d %H:%M} {tz}; stops after "
          f"{args.cycles} cycles (Ctrl-C stops earlier)", flush=True)
    watcher = asyncio.create_task(observe(daemon, args.cycles, stop))
    try:
        await daemon.run(stop)
    finally:
        watcher.cancel()
        await sim.stop()
    print(f"stopped: {int(daemon.metrics.cycles._value.get())} cycles, battery back in its "
          f"default mode: {sim.window() is None}; history in {store}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the demo."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="site configuration")
    p.add_argument("--speed", type=float, default=120.0, help="clock seconds per real second")
    p.add_argument("--cycles", type=int, default=300, help="stop after this many control cycles")
    p.add_argument("--start-hour", type=float, default=7.5, help="site-local start hour today")
    p.add_argument("--http-port", type=int, default=8787, help="status page port (0: any)")
    p.add_argument("--store", default="out/demo-daemon.sqlite3", help="history database")
    args = p.parse_args(argv)
    try:
        return asyncio.run(demo(args))
    except DispatchError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
