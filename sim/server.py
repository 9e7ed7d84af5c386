"""Modbus TCP server on 127.0.0.1 that serves a simulated plant through a register map.

Role: the stand-in for hardware. Serves the register image of a map (``dispatch/devices/maps``:
SunSpec with discovery header and model chain, or a vendor map; laid out by
``sim.server_image``), advances a battery on a clock that may run faster than real time,
reacts to control writes through the same ``dispatch.devices.commands`` interpretation the
client uses (SunSpec: 124 ``StorCtl_Mod`` bits with ``InWRte``/``OutWRte``, 704 ``WSet`` /
``WSetPct`` with its own revert timer, ``ChaGriSet``), drops back to the default mode when the
map's revert timer expires, answers exception 2 for unmapped or read-only addresses and 3 for
values a device would refuse (``sim.server_rules``), and injects faults on command
(``sim.server_faults``: silence, exception responses, disconnects, frozen values, out-of-range
values, writes that do not stick, writes not followed, slow answers, mode dropped by a local
operator). The command line is ``sim.server_cli`` (``python -m sim.server``).
Built on ``pymodbus.simulator`` (``SimData`` / ``SimDevice``) with ``ModbusTcpServer``.
Depends on ``dispatch`` (never the reverse).

The physics is ``sim.plant.Plant`` (energy-conserving battery, PV and load), driven through
``PlantPhysics``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from dispatch.config import SiteConfig
from dispatch.devices import codec, commands
from dispatch.devices.registers import RegisterMap, Resolved, StateSpec, load_map
from sim.loadprofile import demo_load_kw, pv_available_kw
from sim.plant import Plant
from sim.server_faults import CONTROL_REGISTERS, CONTROL_UNIT, Faults
from sim.server_image import (
    SUNS_BASE,
    Ratings,
    blocks,
    build_image,
    check_ratings,
    extra_fields,
    initial_values,
    scale_factors,
)
from sim.server_physics import DEFAULT_START, PlantPhysics, default_physics
from sim.server_rules import accepts

__all__ = [
    "CONTROL_UNIT",
    "DEFAULT_START",
    "Faults",
    "PlantPhysics",
    "PlantServer",
    "default_physics",
    "serve",
    "start_server",
]

TICK_S = 0.02


def fault_state(st: StateSpec) -> int | None:
    """The raw value a running-state field shows on a fault: the one its map names "fault"
    (SunSpec 103 ``St`` 7, 802 ``State`` 99), else the first named value that is not ready;
    None when the map names none (the field keeps its running value)."""
    named = [int(k) for k, v in st.names.items() if "fault" in v.lower()]
    others = [int(k) for k in st.names if int(k) not in st.ready]
    return (named or others or [None])[0]


@dataclass
class PlantServer:
    """A running simulated device; create with ``start_server``."""

    rmap: RegisterMap
    battery: PlantPhysics
    fields: dict[str, Resolved]
    unit_id: int
    speed: float
    ratings: Ratings
    faults: Faults = field(default_factory=Faults)
    server: ModbusTcpServer | None = None
    registers: dict[int | None, list[int]] = field(default_factory=dict)
    start_address: dict[int | None, int] = field(default_factory=dict)
    plant_time_s: float = 0.0
    last_control_s: float | None = None
    last_wset_s: float | None = None
    operator_took_over: bool = False
    applied: tuple[float, float] | None = None
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

    def _value(self, name: str, default: float) -> float:
        try:
            return self.get(name) if name in self.fields else default
        except codec.MissingValueError:
            return default

    def window(self) -> tuple[float, float] | None:
        """The battery power window the control registers ask for (kW; None: default mode).

        The map's control section first (SunSpec 124: ``StorCtl_Mod`` bit 0 applies
        ``InWRte``, bit 1 ``OutWRte``, each a limit that forces the other direction when
        negative), then SunSpec 704: with ``WSetEna`` = 1 the battery runs at ``WSet`` (W,
        ``WSetMod`` = 1) or ``WSetPct`` (% of the rating, ``WSetMod`` = 0) inside that window.
        """
        w = None
        if self.rmap.control is not None:
            b = self.battery
            try:
                values = self.control_values()
                w = commands.power_window(self.rmap, values, b.charge_max_kw, b.discharge_max_kw)
            except (KeyError, ValueError):
                w = None
        if int(self._value("wset_enable", 0.0)) != 1:
            return w
        if int(self._value("wset_mode", 1.0)) == 1:
            p = self._value("p_wset_kw", 0.0)
        else:
            pct = self._value("m704_wset_pct", 0.0)
            b = self.battery
            p = pct / 100.0 * (b.discharge_max_kw if pct >= 0 else b.charge_max_kw)
        lo, hi = w if w is not None else (-self.battery.charge_max_kw, math.inf)
        p = min(max(p, lo), hi, self.battery.discharge_max_kw)
        return (p, p)

    def advance(self, dt_s: float) -> None:
        """Advance the plant by ``dt_s`` plant seconds and publish the measurements."""
        self.plant_time_s += dt_s
        self._check_revert()
        self._check_wset_revert()
        self._check_operator()
        if not self.faults.not_following:
            self.applied = self.window()
        grid_charging = int(self._value("grid_charging", 1.0)) == 1
        stopped = (0.0, 0.0) if self.faults.state_fault else self.applied  # a tripped converter
        self.battery.step(dt_s, stopped, grid_charging)
        if self.faults.frozen:
            return
        self._publish_state()
        values = self.battery.measurements()
        if self.faults.out_of_range:
            values.update(soc_frac=1.5, p_batt_kw=-1e3 * self.battery.charge_max_kw)
        for name, value in values.items():
            parts = [name] if name in self.fields else [f.name for f in self.rmap.summed(name)]
            for part in parts:
                if self.fields[part].spec.access == "r":
                    self.put_saturated(part, value / len(parts))

    def _publish_state(self) -> None:
        """The map's running-state fields: the normal running state (the first ``ready``
        value), or the state named "fault" under ``faults.state_fault``."""
        c = self.rmap.control
        for st in c.running if c is not None else []:
            if st.field in self.fields:
                bad = fault_state(st) if self.faults.state_fault else None
                self.put(st.field, float(st.ready[0] if bad is None else bad))

    def _check_revert(self) -> None:
        c = self.rmap.control
        if c is None or c.revert_field is None or self.last_control_s is None:
            return
        revert_s = self.get(c.revert_field)
        if revert_s > 0 and self.plant_time_s - self.last_control_s > revert_s:
            # the timer resets the command, not settings such as ChaGriSet (the handback's)
            for name, value in commands.default_writes(self.rmap, extras=False):
                self.put(name, value)
            self.last_control_s = None

    def _check_wset_revert(self) -> None:
        """SunSpec 704: ``WSetRvrtTms`` after the last ``WSet`` write, ``WSetEna`` takes
        ``WSetEnaRvrt``; ``WSetRvrtRem`` counts down meanwhile."""
        if self.last_wset_s is None or "wset_revert_timeout_s" not in self.fields:
            return
        tms = self._value("wset_revert_timeout_s", 0.0)
        if tms <= 0:
            return
        rem = max(tms - (self.plant_time_s - self.last_wset_s), 0.0)
        self.put("wset_revert_remaining_s", float(math.ceil(rem)))
        if rem <= 0.0:
            self.put("wset_enable", self._value("m704_wset_ena_rvrt", 0.0))
            self.last_wset_s = None

    def _check_operator(self) -> None:
        """Fault: a local operator puts the control mode back to its default
        ``faults.mode_drop_s`` plant seconds after the last control write."""
        drop_s, c = self.faults.mode_drop_s, self.rmap.control
        if drop_s <= 0 or c is None or self.last_control_s is None or self.operator_took_over:
            return
        if self.plant_time_s - self.last_control_s < drop_s:
            return
        if c.mode is not None:
            self.put(c.mode.field, float(c.mode.default))
        elif c.command is not None:
            self.put(c.command.field, float(c.command.idle))
        if "wset_enable" in self.fields:
            self.put("wset_enable", 0.0)
        if "m802_loc_rem_ctl" in self.fields:
            self.put("m802_loc_rem_ctl", 1.0)  # LocRemCtl: LOCAL
        self.operator_took_over = True

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
        if self.faults.delay_s > 0:
            await asyncio.sleep(self.faults.delay_s)
        while self.faults.silent:
            await asyncio.sleep(0.05)  # no answer while silent; a late one afterwards
        if self.faults.drop_connections:  # the socket closes under the request: no answer
            self.disconnect_all()
            return ExcCodes.DEVICE_FAILURE
        if self.faults.exception_code is not None:
            return ExcCodes(self.faults.exception_code)
        if values is None:
            return None
        touched = [r for r in self.fields.values() if r.spec.unit_id == key
                   and r.address < address + count and address < r.address + r.spec.count]
        if any(r.spec.access != "rw" for r in touched) or not touched:
            return ExcCodes.ILLEGAL_ADDRESS
        after = list(regs)
        after[address - start : address - start + len(values)] = [int(v) for v in values]
        fits = (self._acceptable(r, after[r.address - start :][: r.spec.count]) for r in touched)
        if not all(fits):
            return ExcCodes.ILLEGAL_VALUE
        if self.faults.writes_ignored:
            values[:] = [0] * len(values)  # type: ignore[index]
        self._note_control(touched)
        return None

    def _acceptable(self, r: Resolved, words: list[int]) -> bool:
        """Would a device store these registers in field ``r``? (range rules: exception 3)"""
        try:
            value = codec.decode(r, words, self._sf(r))
        except codec.DeviceError:  # a "not implemented" sentinel or a bad word count
            return False
        if isinstance(value, str):
            return True
        return accepts(self.rmap, r.spec.name, value, self.ratings.power_kw)

    def _note_control(self, touched: list[Resolved]) -> None:
        c = self.rmap.control
        ctl = {c.mode.field if c.mode else None, c.command.field if c.command else None,
               c.setpoint_field, c.charge_field, c.discharge_field} if c else set()
        wset = {"wset_enable", "wset_mode", "p_wset_kw", "m704_wset_pct"}
        names = {r.spec.name for r in touched}
        if names & (ctl | wset):
            self.last_control_s = self.plant_time_s
            self.operator_took_over = False
            if "m802_loc_rem_ctl" in self.fields:
                self.put("m802_loc_rem_ctl", 0.0)  # LocRemCtl: REMOTE
        if names & wset:
            self.last_wset_s = self.plant_time_s

    async def control_action(self, fc: int, start: int, address: int, count: int,
                             regs: list[int], values: list[int] | list[bool] | None) -> None:
        """Hook of the fault-injection unit (``CONTROL_UNIT``)."""
        if values is None:
            return
        new = list(regs[:CONTROL_REGISTERS])
        new[address - start : address - start + len(values)] = [int(v) for v in values]
        self.faults.set_registers(new)
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
                       rtu_framing: bool = False, strict: bool = False) -> PlantServer:
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
    strict : bool
        Refuse ratings the map's registers cannot hold (``ConfigError``); otherwise such
        values saturate at the register's limit (a 100 kW test battery behind a map made for
        a 10 kW inverter).

    Raises
    ------
    ConfigError
        With ``strict``, naming each field that cannot hold the battery's ratings.
    """
    m = load_map(rmap) if isinstance(rmap, str) else rmap
    physics = battery or default_physics()
    ratings = Ratings.of_site(physics.plant.site)
    sfs = scale_factors(m, ratings)
    if strict:
        check_ratings(m, ratings, sfs)
    fields, images = build_image(m, sunspec_base)
    fields.update(extra_fields(m, fields))
    uid = m.unit_id if unit_id is None else unit_id
    ps = PlantServer(m, physics, fields, uid, speed, ratings)
    ids = {key: uid if key is None else key for key in images}
    devices = [SimDevice(id=ids[key], simdata=blocks(img), action=partial(ps.action, key))
               for key, img in images.items()]
    devices.append(SimDevice(id=CONTROL_UNIT, action=ps.control_action,
                             simdata=[SimData(0, values=[0] * CONTROL_REGISTERS,
                                              datatype=DataType.REGISTERS)]))
    framer = FramerType.RTU if rtu_framing else FramerType.SOCKET
    ps.server = ModbusTcpServer(devices, address=(host, port), framer=framer)
    for key, dev_id in ids.items():
        start, _n, regs, _flags = ps.server.context.devices[dev_id].block["x"]  # type: ignore[union-attr]
        ps.registers[key], ps.start_address[key] = regs, start
    b = ps.battery
    for name, value in initial_values(m, fields, b.charge_max_kw, b.discharge_max_kw,
                                      b.energy_kwh, b.soc_min_frac, sfs):
        ps.put(name, value)
    ps.advance(0.0)
    await ps.server.serve_forever(background=True)
    ps.port = ps.server.transport.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    ps._task = asyncio.create_task(ps._run())
    return ps


async def serve(
    config: SiteConfig,
    host: str = "127.0.0.1",
    port: int = 5020,
    speed: float = 1.0,
    *,
    start: dt.datetime | None = None,
    p_pv_kw: float | None = None,
    p_load_kw: float | None = None,
    register_map: str | None = None,
    faults: Faults | None = None,
    ready: Callable[[PlantServer], None] | None = None,
) -> None:
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
    register_map : str, optional
        Serve this map instead (a shipped name or a ``.toml`` path).
    faults : Faults, optional
        Faults to show from the start (``sim.server_faults``).
    ready : callable, optional
        Called with the running server once the port is bound (it tells the port).

    Raises
    ------
    ConfigError
        When the map's registers cannot represent the site's ratings.
    """
    t0 = start or dt.datetime.now(dt.UTC).replace(microsecond=0)
    pv = load = None
    if p_pv_kw is None or p_load_kw is None:
        load = demo_load_kw(config, t0, days=7)
        pv = pv_available_kw(config, load.index)
    plant = Plant(config, start=t0, pv_kw=pv, load_kw=load)
    name = register_map or (config.devices[0].register_map if config.devices else "sunspec")
    physics = PlantPhysics(plant, t0, p_pv_kw, p_load_kw)
    ps = await start_server(name, host, port, speed, physics, strict=True)
    if faults is not None:
        ps.faults = faults
    if ready is not None:
        ready(ps)
    try:
        await asyncio.Event().wait()
    finally:
        await ps.stop()


if __name__ == "__main__":  # ``dispatch sim-device`` runs (execs) this
    from sim.server_cli import main

    raise SystemExit(main())
