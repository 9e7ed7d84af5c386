"""``python -m sim.server`` (what ``dispatch sim-device`` execs): serve a site config's device.

Role: parse the command line, load the site config, start ``sim.server.serve`` with the
faults asked for, print the bound address (so a caller that asked for port 0 learns the
port) and stop cleanly on SIGTERM or SIGINT (exit 0). A config error or ratings the register
map cannot represent exit 78. Imports ``dispatch.config``, ``dispatch.types`` and ``sim``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import signal
import sys

from dispatch.config import load_config
from dispatch.types import ConfigError
from sim.server import PlantServer, serve
from sim.server_faults import Faults

EXIT_CONFIG = 78


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m sim.server`` (``dispatch sim-device`` passes its own)."""
    cli = argparse.ArgumentParser(
        prog="python -m sim.server", description="Serve a simulated plant over Modbus TCP."
    )
    cli.add_argument("--config", required=True, help="site configuration (TOML)")
    cli.add_argument("--host", default="127.0.0.1")
    cli.add_argument("--port", type=int, default=5020, help="TCP port (0: any free port)")
    cli.add_argument("--speed", type=float, default=1.0, help="plant seconds per real second")
    cli.add_argument("--start", help="plant time at start, ISO 8601 with offset (default now)")
    cli.add_argument("--pv-kw", type=float, help="constant PV (kW) instead of clear sky")
    cli.add_argument("--load-kw", type=float, help="constant load (kW) instead of the profile")
    cli.add_argument("--register-map", help="serve this map instead of devices[0]'s")
    add_fault_arguments(cli)
    return cli


def add_fault_arguments(cli: argparse.ArgumentParser) -> None:
    """The fault-injection flags (``sim.server_faults.Faults``)."""
    g = cli.add_argument_group("fault injection")
    g.add_argument(
        "--fault-not-following",
        action="store_true",
        help="accept and store writes, but the battery does not follow them",
    )
    g.add_argument("--fault-frozen", action="store_true", help="measurements stop updating")
    g.add_argument(
        "--fault-state",
        action="store_true",
        help="the running-state fields report a fault (the converter has tripped)",
    )
    g.add_argument(
        "--fault-mode-drop-s",
        type=float,
        default=0.0,
        metavar="S",
        help="a local operator resets the control mode S plant seconds after "
        "the last control write",
    )
    g.add_argument(
        "--fault-delay-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="delay every answer by MS milliseconds",
    )
    g.add_argument(
        "--fault-writes-ignored", action="store_true", help="answer writes but store zeros"
    )
    g.add_argument(
        "--fault-drop-connections",
        action="store_true",
        help="close the connection of every request, without an answer (a flapping link)",
    )
    g.add_argument(
        "--fault-exception",
        type=int,
        metavar="CODE",
        help="answer every request with this Modbus exception code",
    )


def faults_of(ns: argparse.Namespace) -> Faults:
    """The ``Faults`` the fault flags ask for."""
    return Faults(
        not_following=ns.fault_not_following,
        frozen=ns.fault_frozen,
        state_fault=ns.fault_state,
        mode_drop_s=ns.fault_mode_drop_s,
        delay_s=ns.fault_delay_ms / 1000.0,
        writes_ignored=ns.fault_writes_ignored,
        exception_code=ns.fault_exception,
        drop_connections=ns.fault_drop_connections,
    )


def _announce(ps: PlantServer, host: str) -> None:
    print(
        f"sim-device: serving on {host}:{ps.port} at {ps.speed:g}x, register map "
        f"{ps.rmap.name}, unit id {ps.unit_id}",
        flush=True,
    )


async def _main(ns: argparse.Namespace) -> int:
    site = load_config(ns.config)
    t_start = dt.datetime.fromisoformat(ns.start) if ns.start else None
    task = asyncio.ensure_future(
        serve(
            site,
            ns.host,
            ns.port,
            ns.speed,
            start=t_start,
            p_pv_kw=ns.pv_kw,
            p_load_kw=ns.load_kw,
            register_map=ns.register_map,
            faults=faults_of(ns),
            ready=lambda ps: _announce(ps, ns.host),
        )
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        return 0
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until SIGTERM / SIGINT; the exit code (0, or 78 for a bad config)."""
    ns = parser().parse_args(argv)
    try:
        return asyncio.run(_main(ns))
    except ConfigError as exc:
        print(f"sim-device: {exc}", file=sys.stderr)
        return EXIT_CONFIG
