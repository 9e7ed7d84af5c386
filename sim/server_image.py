"""The register image the simulated device serves: layout and initial values.

Role: lay out the registers of a map (``dispatch/devices/maps``) for ``sim.server``: a fixed
vendor map as its fields plus small gaps, a SunSpec map as the "SunS" marker, the model chain
``SUNSPEC_ORDER`` (headers and bodies) and the end marker; cut the image into pymodbus
``SimData`` blocks; and list the values a fresh device holds (scale factors, nameplate strings,
ratings, default control mode). No sockets, no clock. Imports ``dispatch.devices`` and
``pymodbus.simulator``.
"""

from __future__ import annotations

import itertools
from typing import Any

from pymodbus.simulator import DataType, SimData

from dispatch.devices import commands
from dispatch.devices.registers import RegisterMap, Resolved, resolve

SUNS_BASE = 40000
SUNSPEC_ORDER = [(1, 1), (103, 1), (103, 2), (203, 1), (124, 1), (713, 1), (802, 1), (704, 1)]
SF_VALUES = {
    "batt_w_sf": 1, "chastate_sf": -1, "inoutwrte_sf": -1, "wchamax_sf": 1,
    "minrsvpct_sf": 0, "m713_wh_sf": 1, "m713_pct_sf": -1, "m802_w_max_sf": 1,
    "m802_soc_sf": -1, "wset_sf": 0, "pv_w_sf": 1, "grid_w_sf": 1, "batt_wh_sf": 0,
}  # fmt: skip
STRINGS = {"manufacturer": "FactoryDispatch", "model_name": "SimStorage",
           "serial_number": "SIM0001"}  # fmt: skip
GAP_FILL = 17  # registers: gaps up to this wide are served, so clients may read across them

Images = dict[int | None, dict[int, int]]


def build_image(
    rmap: RegisterMap, sunspec_base: int = SUNS_BASE
) -> tuple[dict[str, Resolved], Images]:
    """Resolve a map for the simulator and lay out its registers.

    Parameters
    ----------
    rmap : RegisterMap
        A fixed (vendor) or SunSpec map.
    sunspec_base : int
        Address of the "SunS" marker of a SunSpec map (40000, 0 or 50000).

    Returns
    -------
    fields, images
        Absolute field addresses, and per unit id (None: the device's own) ``address -> word``
        for every served register (SunSpec: marker, headers, model bodies and end marker).
    """
    if rmap.kind == "fixed":
        fields = resolve(rmap)
        images: Images = {}
        for key in {r.spec.unit_id for r in fields.values()}:
            spans = (range(r.address, r.address + r.spec.count)
                     for r in fields.values() if r.spec.unit_id == key)
            used = sorted({a for span in spans for a in span})
            image = images.setdefault(key, {a: 0 for a in used})
            for a, b in itertools.pairwise(used):
                if 1 < b - a <= GAP_FILL:  # clients read across small gaps in one request
                    image.update({x: 0 for x in range(a + 1, b)})
        return fields, images
    image = {sunspec_base: 0x5375, sunspec_base + 1: 0x6E53}
    bases: dict[tuple[int, int], int] = {}
    addr = sunspec_base + 2
    for model, inst in SUNSPEC_ORDER:
        length = rmap.model_lengths[str(model)]
        bases[(model, inst)] = addr
        image.update({addr: model, addr + 1: length})
        image.update({a: 0 for a in range(addr + 2, addr + 2 + length)})
        addr += 2 + length
    image.update({addr: 0xFFFF, addr + 1: 0})
    return resolve(rmap, bases), {None: image}


def blocks(image: dict[int, int]) -> list[SimData]:
    """One pymodbus ``SimData`` per run of consecutive addresses of ``image``."""
    runs = itertools.groupby(enumerate(sorted(image)), key=lambda ia: ia[1] - ia[0])
    spans = [[a for _, a in run] for _, run in runs]
    return [SimData(s[0], values=[image[a] for a in s], datatype=DataType.REGISTERS) for s in spans]


def initial_values(
    rmap: RegisterMap, fields: dict[str, Resolved], charge_max_kw: float,
    discharge_max_kw: float, energy_kwh: float, soc_min_frac: float,
) -> list[tuple[str, Any]]:
    """Values (our units) a fresh device holds, in write order: scale factors first.

    Parameters
    ----------
    rmap : RegisterMap
        The map; its default control writes come last.
    fields : dict of str to Resolved
        The fields served (from ``build_image``); names not among them are skipped.
    charge_max_kw, discharge_max_kw : float
        Battery power ratings (kW).
    energy_kwh : float
        Battery energy rating (kWh).
    soc_min_frac : float
        Reserve state of charge (fraction).

    Returns
    -------
    list of (str, float or str)
        ``(field name, value)`` pairs to store in this order.
    """
    init: dict[str, Any] = dict(SF_VALUES)
    init.update(STRINGS)
    init.update(p_charge_max_kw=charge_max_kw, p_discharge_max_kw=discharge_max_kw,
                p_batt_charge_rate_max_kw=charge_max_kw, energy_rated_kwh=energy_kwh,
                revert_timeout_s=600.0, soh_frac=1.0, battery_state=2.0, batt_inverter_state=4.0,
                grid_charging=1.0, soc_reserve_frac=soc_min_frac, wset_mode=1.0)
    out = [(name, value) for name, value in init.items() if name in fields]
    if rmap.control is not None:
        out += list(commands.default_writes(rmap))
    return out
