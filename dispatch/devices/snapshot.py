"""Merge the readings of all devices into one frozen ``Snapshot`` (the process image).

Role: read every device once per control cycle; sum battery and PV powers and battery power
limits over devices, take the grid power from the first device that measures it, fill at most
one missing power from the balance ``p_load_kw = p_grid_kw + p_pv_kw + p_batt_kw``, and record
faults (a battery device whose running state is not "ready" is one: ``commands.not_ready``;
so is one held after a read-back mismatch: ``DeviceClient.held_fault``),
stale and missing fields explicitly (NaN values, never None). A device that fails is
backed off. Imports this package and ``types``.
"""

from __future__ import annotations

import datetime as dt

from dispatch.devices.client import DeviceClient, DeviceReading
from dispatch.types import DeviceError, Snapshot

POWERS = ("p_grid_kw", "p_pv_kw", "p_batt_kw", "p_load_kw")
SUMMED = ("p_pv_kw", "p_batt_kw", "p_charge_max_kw", "p_discharge_max_kw")
NAN = float("nan")


async def read_snapshot(clients: list[DeviceClient], now: dt.datetime, now_s: float) -> Snapshot:
    """Read every device once and merge the values.

    Parameters
    ----------
    clients : list of DeviceClient
        The configured devices.
    now : datetime.datetime
        Time stamp of the snapshot (tz-aware UTC).
    now_s : float
        Monotonic seconds, for each device's back-off.

    Returns
    -------
    Snapshot
        A device that fails is listed in ``faults`` and ``stale``; it never raises.
    """
    readings: dict[str, DeviceReading] = {}
    faults: list[str] = []
    stale: list[str] = []
    for client in clients:
        try:
            client.backoff_check(now_s)
        except DeviceError as exc:  # still backing off: not a new failure
            faults.append(f"{client.name}: {exc}")
            stale.append(client.name)
            continue
        try:
            reading = await client.read()
        except DeviceError as exc:
            client.record_failure(now_s, str(exc))
            faults.append(f"{client.name}: {exc}")
            stale.append(client.name)
            continue
        client.record_success()
        readings[client.name] = reading
        if reading.frozen:
            stale.append(client.name)
            faults.append(f"{client.name}: values frozen for several reads")
        if reading.not_ready is not None and client.commands_battery:
            faults.append(f"{client.name}: {reading.not_ready}")
        held = client.held_fault(now_s)
        if held is not None:
            faults.append(f"{client.name}: {held}")
    return merge(readings, now, faults, stale)


def merge(
    readings: dict[str, DeviceReading], now: dt.datetime, faults: list[str], stale: list[str]
) -> Snapshot:
    """Combine per-device readings (pure); see ``read_snapshot``."""
    fields: dict[str, float] = {}
    flat: dict[str, float] = {}
    for dev, reading in readings.items():
        for name, value in reading.values.items():
            if not isinstance(value, int | float):
                continue
            flat[f"{dev}.{name}"] = float(value)
            if name in SUMMED and name in fields:
                fields[name] += float(value)
            else:
                fields.setdefault(name, float(value))
    derived: list[str] = []
    absent = [k for k in POWERS if k not in fields]
    if len(absent) == 1:
        k = absent[0]
        g, pv, b, load = (fields.get(n, 0.0) for n in POWERS)
        fields[k] = g + pv + b if k == "p_load_kw" else load - g - pv - b
        derived.append(k)
    missing = [k for k in (*POWERS, "soc_frac") if k not in fields]
    return Snapshot(
        time=now,
        p_grid_kw=fields.get("p_grid_kw", NAN),
        p_pv_kw=fields.get("p_pv_kw", NAN),
        p_batt_kw=fields.get("p_batt_kw", NAN),
        p_load_kw=fields.get("p_load_kw", NAN),
        soc_frac=fields.get("soc_frac", NAN),
        p_charge_max_kw=abs(fields.get("p_charge_max_kw", NAN)),
        p_discharge_max_kw=abs(fields.get("p_discharge_max_kw", NAN)),
        faults=tuple(faults),
        stale=tuple(stale),
        missing=tuple(missing),
        derived=tuple(derived),
        values=flat,
    )

