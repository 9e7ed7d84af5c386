"""Modbus TCP server on 127.0.0.1 that serves a simulated plant through a register map.

Role: the stand-in for hardware. Serves the register image of a map (``dispatch/devices/maps``:
SunSpec with discovery header and model chain, or a vendor map; laid out by
``sim.server_image``), advances a battery on a clock that may run faster than real time,
reacts to control writes through the same ``dispatch.devices.commands`` interpretation the
client uses, drops back to the default mode when the map's revert timer expires, and injects
faults on command (silence, exception responses, disconnects, frozen values, out-of-range
values, writes that do not stick).
Built on ``pymodbus.simulator`` (``SimData`` / ``SimDevice``) with ``ModbusTcpServer``.
Depends on ``dispatch`` (never the reverse).

The physics is ``sim.plant.Plant`` (energy-conserving battery, PV and load), driven through
``PlantPhysics``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from dispatch.config import SiteConfig, parse_config
from dispatch.devices import codec, commands
from dispatch.devices.registers import RegisterMap, Resolved, load_map
from sim.loadprofile import demo_load_kw, pv_available_kw
from sim.plant import Plant, PlantOptions
from sim.server_image import SUNS_BASE, blocks, build_image, initial_values

TICK_S = 0.02
CONTROL_UNIT = 247
DEFAULT_START = dt.datetime(2026, 6, 1, 4, tzinfo=dt.UTC)


class PlantPhysics:
    """Drives a ``sim.plant.Plant`` with the battery window the control registers ask for.

    The server owns the revert timers (they live in the register map), so the plant gets
    windows without a timeout and ``release`` when the registers say "default mode".
    ``p_pv_kw`` / ``p_load_kw`` (kW) are held constant unless ``None`` (then the plant's own
    series are used). Plant time starts at ``start`` (tz-aware) and advances with the steps.
    """

    def __init__(self, plant: Plant, start: dt.datetime, p_pv_kw: float | None = None,
                 p_load_kw: float | None = None) -> None:  # fmt: skip
        self.plant, self.now = plant, start
        self.p_pv_kw, self.p_load_kw = p_pv_kw, p_load_kw
        b = plant.site.battery
        self.charge_max_kw, self.discharge_max_kw = b.charge_max_kw, b.discharge_max_kw
        self.soc_min_frac, self.energy_kwh = b.soc_min_frac, b.energy_kwh
        self._window: tuple[float, float] | None = None
        plant.step(start, 0.0, p_pv_kw, p_load_kw)

    @property
    def p_batt_kw(self) -> float:
        """Battery power now (kW, > 0 discharge)."""
        return float(self.plant.state.p_batt_kw)

    @property
    def soc_frac(self) -> float:
        """True state of charge (fraction)."""
        return float(self.plant.state.soc_frac)

    def step(self, dt_s: float, window: tuple[float, float] | None) -> None:
        """Advance ``dt_s`` plant seconds with the battery held in ``window`` (None: own mode)."""
        if window is not None:
            window = (min(window), window[1])
        if window != self._window:
            if window is None:
                self.plant.release(self.now)
            else:
                self.plant.set_battery_window(window[0], window[1], self.now)
            self._window = window
        self.plant.step(self.now, dt_s, self.p_pv_kw, self.p_load_kw)
        self.now += dt.timedelta(seconds=dt_s)

    def measurements(self) -> dict[str, float]:
        """Meter readings (our units) under every name a register map may publish."""
        m = {k: v for k, v in self.plant.measure().items() if not k.endswith("_max_kw")}
        p = m["p_batt_kw"]
        m.update(soc_713_frac=m["soc_frac"], soc_802_frac=m["soc_frac"], p_inverter_ac_kw=p,
                 charge_state=3.0 if p > 1e-6 else 4.0 if p < -1e-6 else 6.0)  # fmt: skip
        return m


def default_physics(
    *, energy_kwh: float = 200.0, charge_max_kw: float = 100.0, discharge_max_kw: float = 100.0,
    soc_frac: float = 0.5, p_pv_kw: float = 30.0, p_load_kw: float = 80.0,
    start: dt.datetime = DEFAULT_START, **options: Any,
) -> PlantPhysics:
    """A plant for tests and demos: a 500 kW grid connection, SoC window 5-95 %, constant PV
    and load (kW); ``options`` override ``sim.plant.PlantOptions`` fields."""
    site = parse_config({
        "site": {"latitude_deg": 31.3, "longitude_deg": 120.6, "timezone": "UTC"},
        "grid": {"import_max_kw": 500.0, "export_max_kw": 500.0},
        "battery": {"energy_kwh": energy_kwh, "charge_max_kw": charge_max_kw,
                    "discharge_max_kw": discharge_max_kw, "soc_min_frac": 0.05,
                    "soc_max_frac": 0.95},
        "tariff": {"bands": {"flat": 0.1},
                   "rules": [{"band": "flat", "start": "00:00", "end": "00:00"}]},
        "carbon": {"grid_ci_g_per_kwh": 500.0},
    }, "sim.server.default_physics")  # fmt: skip
    plant = Plant(site, PlantOptions(soc_initial_frac=soc_frac, **options), start=start)
    return PlantPhysics(plant, start, p_pv_kw, p_load_kw)


@dataclass
class Faults:
    """Faults to inject: set attributes at any time (tests), or over Modbus on unit id
    ``CONTROL_UNIT``: holding register 0 = bits (1 silent, 2 frozen, 4 out of range, 8 writes
    ignored, 16 drop all connections once), register 1 = exception code to answer (0: none).
    The control unit itself never fails."""

    silent: bool = False
    exception_code: int | None = None
    frozen: bool = False
    out_of_range: bool = False
    writes_ignored: bool = False

    def set_bits(self, bits: int, exception_code: int) -> None:
        """Apply the control unit's register values."""
        self.silent, self.frozen = bool(bits & 1), bool(bits & 2)
        self.out_of_range, self.writes_ignored = bool(bits & 4), bool(bits & 8)
        self.exception_code = exception_code or None


@dataclass
class PlantServer:
    """A running simulated device; create with ``start_server``."""

    rmap: RegisterMap
    battery: PlantPhysics
    fields: dict[str, Resolved]
    unit_id: int
    speed: float
    faults: Faults = field(default_factory=Faults)
    server: ModbusTcpServer | None = None
    registers: dict[int | None, list[int]] = field(default_factory=dict)
    start_address: dict[int | None, int] = field(default_factory=dict)
    plant_time_s: float = 0.0
    last_control_s: float | None = None
    port: int = 0
    _task: asyncio.Task[None] | None = None

    # --- register access in our units ---
    def get(self, name: str) -> float:
        """Current value of a field (our units)."""
        r = self.fields[name]
        return float(codec.decode(r, self._words(r), self._sf(r)))

    def put(self, name: str, value: float | str) -> None:
        """Store a value (our units) straight into the image; no action, no fault."""
        r = self.fields[name]
        words = codec.encode(r, value, self._sf(r))
        key = r.spec.unit_id
        i = r.address - self.start_address[key]
        self.registers[key][i : i + len(words)] = words

    def put_saturated(self, name: str, value: float) -> None:
        """Like ``put``, but a value beyond the register's range is stored at its limit, as
        a real device's 16-bit register saturates."""
        r = self.fields[name]
        if r.spec.type in codec.INT_RANGE:
            lo, hi = codec.INT_RANGE[r.spec.type]
            f = codec.factor(r.spec, self._sf(r))
            a, b = sorted(((lo + 1) * f, (hi - 1) * f))
            value = min(max(value, a), b)
        self.put(name, value)

    def _words(self, r: Resolved) -> list[int]:
        key = r.spec.unit_id
        i = r.address - self.start_address[key]
        return self.registers[key][i : i + r.spec.count]

    def _sf(self, r: Resolved) -> int:
        if r.spec.sf is None:
            return 0
        sf = self.fields[r.spec.sf]
        return int(codec.raw_from_words(sf.spec, self._words(sf)))

    # --- the plant clock ---
    def control_values(self) -> dict[str, float]:
        """Control fields as the device sees them (our units)."""
        c = self.rmap.control
        if c is None:
            return {}
        names = {c.setpoint_field, c.charge_field, c.discharge_field, c.rate_base_field,
                 c.mode.field if c.mode else None, c.command.field if c.command else None}
        out = {}
        for n in names:
            if n is not None and n in self.fields:
                try:
                    out[n] = self.get(n)
                except codec.MissingValueError:
                    continue
        return out

    def window(self) -> tuple[float, float] | None:
        """The battery power window the control registers ask for (None: default mode)."""
        if self.rmap.control is None:
            return None
        try:
            return commands.power_window(self.rmap, self.control_values(),
                                         self.battery.charge_max_kw, self.battery.discharge_max_kw)
        except (KeyError, ValueError):
            return None

    def advance(self, dt_s: float) -> None:
        """Advance the plant by ``dt_s`` plant seconds and publish the measurements."""
        self.plant_time_s += dt_s
        self._check_revert()
        self.battery.step(dt_s, self.window())
        if self.faults.frozen:
            return
        values = self.battery.measurements()
        if self.faults.out_of_range:
            values.update(soc_frac=1.5, p_batt_kw=-1e3 * self.battery.charge_max_kw)
        for name, value in values.items():
            parts = [name] if name in self.fields else [f.name for f in self.rmap.summed(name)]
            for part in parts:
                if self.fields[part].spec.access == "r":
                    self.put_saturated(part, value / len(parts))

    def _check_revert(self) -> None:
        c = self.rmap.control
        if c is None or c.revert_field is None or self.last_control_s is None:
            return
        revert_s = self.get(c.revert_field)
        if revert_s > 0 and self.plant_time_s - self.last_control_s > revert_s:
            for name, value in commands.default_writes(self.rmap):
                self.put(name, value)
            self.last_control_s = None

    async def _run(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            self.advance((now - last) * self.speed)
            last = now

    # --- what every request passes through ---
    async def action(self, key: int | None, fc: int, start: int, address: int, count: int,
                     regs: list[int], values: list[int] | list[bool] | None) -> ExcCodes | None:
        """pymodbus simulator hook (bound to one unit id with ``functools.partial``), awaited
        before every read and write is served."""
        while self.faults.silent:
            await asyncio.sleep(0.05)  # no answer while silent; a late one afterwards
        if self.faults.exception_code is not None:
            return ExcCodes(self.faults.exception_code)
        if values is None:
            return None
        touched = [r for r in self.fields.values() if r.spec.unit_id == key
                   and r.address < address + count and address < r.address + r.spec.count]
        if any(r.spec.access != "rw" for r in touched) or not touched:
            return ExcCodes.ILLEGAL_ADDRESS
        if self.faults.writes_ignored:
            values[:] = [0] * len(values)  # type: ignore[index]
        c = self.rmap.control
        ctl = {c.mode.field if c.mode else None, c.command.field if c.command else None,
               c.setpoint_field, c.charge_field, c.discharge_field} if c else set()
        if any(r.spec.name in ctl for r in touched):
            self.last_control_s = self.plant_time_s
        return None

    async def control_action(self, fc: int, start: int, address: int, count: int,
                             regs: list[int], values: list[int] | list[bool] | None) -> None:
        """Hook of the fault-injection unit (``CONTROL_UNIT``)."""
        if values is None:
            return
        new = list(regs[:2])
        new[address - start : address - start + len(values)] = [int(v) for v in values]
        self.faults.set_bits(new[0], new[1])
        if new[0] & 16:  # one shot: drop the connections after this answer, keep bit clear
            asyncio.get_running_loop().call_later(0.01, self.disconnect_all)
            if address == start:
                values[0] = new[0] & ~16  # type: ignore[call-overload]

    def disconnect_all(self) -> None:
        """Drop every open client connection (fault injection)."""
        assert self.server is not None
        for conn in list(self.server.active_connections.values()):
            conn.close()

    async def stop(self) -> None:
        """Stop the clock and the server."""
        if self._task is not None:
            self._task.cancel()
        if self.server is not None:
            await self.server.shutdown()


async def start_server(rmap: RegisterMap | str, host: str = "127.0.0.1", port: int = 0,
                       speed: float = 1.0, battery: PlantPhysics | None = None,
                       unit_id: int | None = None, sunspec_base: int = SUNS_BASE,
                       rtu_framing: bool = False) -> PlantServer:
    """Start serving; returns once the port is bound (read it from ``.port``).

    Parameters
    ----------
    rmap : RegisterMap or str
        The map, or a ``register_map`` value: a shipped map's name or a ``.toml`` path.
    host, port : str, int
        Where to listen (port 0: any free port).
    speed : float
        Plant seconds per real second.
    battery : PlantPhysics, optional
        The physics; ``default_physics()`` (200 kWh / 100 kW) when omitted.
    unit_id : int, optional
        Modbus unit id; the map's default when omitted.
    sunspec_base : int
        Where "SunS" sits for a SunSpec map (40000, 0 or 50000).
    rtu_framing : bool
        Speak Modbus RTU frames (with CRC) over the TCP socket, to stand in for a serial line.
    """
    m = load_map(rmap) if isinstance(rmap, str) else rmap
    fields, images = build_image(m, sunspec_base)
    uid = m.unit_id if unit_id is None else unit_id
    ps = PlantServer(m, battery or default_physics(), fields, uid, speed)
    ids = {key: uid if key is None else key for key in images}
    devices = [SimDevice(id=ids[key], simdata=blocks(img), action=partial(ps.action, key))
               for key, img in images.items()]
    devices.append(SimDevice(id=CONTROL_UNIT, action=ps.control_action,
                             simdata=[SimData(0, values=[0, 0], datatype=DataType.REGISTERS)]))
    framer = FramerType.RTU if rtu_framing else FramerType.SOCKET
    ps.server = ModbusTcpServer(devices, address=(host, port), framer=framer)
    for key, dev_id in ids.items():
        start, _n, regs, _flags = ps.server.context.devices[dev_id].block["x"]  # type: ignore[union-attr]
        ps.registers[key], ps.start_address[key] = regs, start
    b = ps.battery
    for name, value in initial_values(m, fields, b.charge_max_kw, b.discharge_max_kw,
                                      b.energy_kwh, b.soc_min_frac):
        ps.put(name, value)
    ps.advance(0.0)
    await ps.server.serve_forever(background=True)
    ps.port = ps.server.transport.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    ps._task = asyncio.create_task(ps._run())
    return ps


async def serve(config: SiteConfig, host: str = "127.0.0.1", port: int = 5020,
                speed: float = 1.0, *, start: dt.datetime | None = None,
                p_pv_kw: float | None = None, p_load_kw: float | None = None) -> None:  # fmt: skip
    """Serve the first configured device's map until cancelled (``dispatch sim-device``).

    Parameters
    ----------
    config : SiteConfig
        The plant is ``sim.plant.Plant(config)``; the map is ``devices[0].register_map``
        (SunSpec without devices).
    host, port, speed
        Where to listen; plant seconds per real second.
    start : datetime, optional
        Plant time at start (tz-aware); now (UTC) when omitted.
    p_pv_kw, p_load_kw : float, optional
        Constant PV and load (kW); otherwise a week of clear-sky PV from the site's arrays
        and the demo factory load (``sim.loadprofile``).
    """
    t0 = start or dt.datetime.now(dt.UTC).replace(microsecond=0)
    pv = load = None
    if p_pv_kw is None or p_load_kw is None:
        load = demo_load_kw(config, t0, days=7)
        pv = pv_available_kw(config, load.index)
    plant = Plant(config, start=t0, pv_kw=pv, load_kw=load)
    name = config.devices[0].register_map if config.devices else "sunspec"
    ps = await start_server(name, host, port, speed, PlantPhysics(plant, t0, p_pv_kw, p_load_kw))
    try:
        await asyncio.Event().wait()
    finally:
        await ps.stop()


if __name__ == "__main__":  # ``dispatch sim-device`` runs this as a subprocess
    import argparse
    import contextlib
    import sys

    from dispatch.config import load_config
    from dispatch.types import ConfigError

    cli = argparse.ArgumentParser(prog="python -m sim.server",
                                  description="Serve a simulated plant over Modbus TCP.")
    cli.add_argument("--config", required=True, help="site configuration (TOML)")
    cli.add_argument("--host", default="127.0.0.1")
    cli.add_argument("--port", type=int, default=5020)
    cli.add_argument("--speed", type=float, default=1.0, help="plant seconds per real second")
    cli.add_argument("--start", help="plant time at start, ISO 8601 with offset (default now)")
    cli.add_argument("--pv-kw", type=float, help="constant PV (kW) instead of clear sky")
    cli.add_argument("--load-kw", type=float, help="constant load (kW) instead of the profile")
    ns = cli.parse_args()
    try:
        site = load_config(ns.config)
    except ConfigError as exc:
        print(f"sim-device: {exc}", file=sys.stderr)
        sys.exit(78)
    t_start = dt.datetime.fromisoformat(ns.start) if ns.start else None
    print(f"sim-device: serving on {ns.host}:{ns.port} at {ns.speed:g}x", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(site, ns.host, ns.port, ns.speed, start=t_start,
                          p_pv_kw=ns.pv_kw, p_load_kw=ns.load_kw))  # fmt: skip
