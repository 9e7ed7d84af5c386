"""The register image the simulated device serves: layout and initial values.

Role: lay out the registers of a map (``dispatch/devices/maps``) for ``sim.server``: a fixed
vendor map as its fields plus small gaps, a SunSpec map as the "SunS" marker, the model chain
``SUNSPEC_ORDER`` (headers and bodies filled with the SunSpec "not implemented" sentinels)
and the end marker; cut the image into pymodbus ``SimData`` blocks; choose the SunSpec scale
factors from the ratings as a real device does (the smallest that lets the rating fit its
register); refuse ratings a fixed map cannot represent; and list the values a fresh device
holds (scale factors, nameplate strings, ratings, default control mode). No sockets, no clock.
Imports ``dispatch.config``, ``dispatch.devices``, ``dispatch.types``, ``sim.sunspec_points``
and ``pymodbus.simulator``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from pymodbus.simulator import DataType, SimData

from dispatch.config import SiteConfig
from dispatch.devices import codec, commands
from dispatch.devices.registers import FieldSpec, RegisterMap, Resolved, resolve
from dispatch.types import ConfigError
from sim.sunspec_points import EXTRA_POINTS, sentinel_words

SUNS_BASE = 40000
SUNSPEC_ORDER = [(1, 1), (103, 1), (103, 2), (203, 1), (124, 1), (713, 1), (802, 1), (704, 1)]
# Scale factors of percentages are fixed (0.1 % steps; MinRsvPct in 1 %); the others are chosen
# from the ratings by ``scale_factors``.
FIXED_SF = {
    "chastate_sf": -1,
    "inoutwrte_sf": -1,
    "minrsvpct_sf": 0,
    "m713_pct_sf": -1,
    "m802_soc_sf": -1,
    "m704_wset_pct_sf": -1,
}
# Which rating (``Ratings`` attribute) bounds a field's magnitude (our units: kW, kWh).
_POWERS = (
    "p_batt_kw",
    "p_charge_max_kw",
    "p_discharge_max_kw",
    "p_batt_charge_rate_max_kw",
    "p_wset_kw",
    "m802_w",
    "p_inverter_ac_kw",
    "p_charge_setpoint_kw",
    "p_discharge_setpoint_kw",
    "p_setpoint_abs_kw",
    "p_ess_setpoint_kw",
)
RATED_BY = {
    **dict.fromkeys(_POWERS, "power_kw"),
    **dict.fromkeys(("energy_rated_kwh", "energy_available_kwh"), "energy_kwh"),
    **dict.fromkeys(("batt_energy_out_kwh", "batt_energy_in_kwh"), "throughput_kwh"),
    **dict.fromkeys(("p_grid_kw", "p_load_kw"), "grid_kw"),
    "p_pv_kw": "pv_kw",
}
EXTRA_SF = {"m802_w": "m802_w_sf", "m704_wset_pct": "m704_wset_pct_sf"}
HEADROOM = 1.25  # meters (PV, grid, load) may read above their rating by this factor
STRINGS = {"manufacturer": "FactoryDispatch", "model_name": "SimStorage",
           "serial_number": "SIM0001"}  # fmt: skip
GAP_FILL = 17  # registers: gaps up to this wide are served, so clients may read across them

Images = dict[int | None, dict[int, int]]


@dataclass(frozen=True)
class Ratings:
    """The magnitudes a device's registers must hold (our units).

    Attributes
    ----------
    power_kw : float
        Battery power rating: the larger of charge and discharge (kW).
    energy_kwh : float
        Battery energy rating (kWh).
    pv_kw : float
        PV the meter may read (kW): DC peak of the arrays, with headroom.
    grid_kw : float
        Grid (and load) power the meter may read (kW): connection limit, with headroom.
    """

    power_kw: float
    energy_kwh: float
    pv_kw: float
    grid_kw: float

    @property
    def throughput_kwh(self) -> float:
        """Energy counters' reach: ten years of one full cycle a day (kWh)."""
        return 3650.0 * self.energy_kwh

    @classmethod
    def of_site(cls, site: SiteConfig) -> Ratings:
        """The ratings of a site's battery, arrays and grid connection."""
        b, g = site.battery, site.grid
        grid = max(g.import_max_kw, g.export_limit_kw, b.charge_max_kw, b.discharge_max_kw)
        pv = site.pv_dc_kwp if site.pv else grid
        power = max(b.charge_max_kw, b.discharge_max_kw)
        return cls(power, b.energy_kwh, HEADROOM * pv, HEADROOM * grid)


def _fits(spec: Any, magnitude: float, sf: int) -> bool:
    lo, hi = codec.INT_RANGE[spec.type]
    raw = math.ceil(abs(magnitude / codec.factor(spec, sf)))
    sentinel = codec.SENTINEL.get(spec.type)
    top = hi - 1 if sentinel == hi else hi  # 0xFFFF means "not implemented"
    return raw <= top and (lo == 0 or raw <= -lo - 1)


def scale_factors(rmap: RegisterMap, ratings: Ratings) -> dict[str, int]:
    """SunSpec scale factors as a device chooses them: for each ``sunssf`` point, the smallest
    value in ``[0, 10]`` with which every field it scales holds its rating (``RATED_BY``);
    percentages keep ``FIXED_SF``.

    Parameters
    ----------
    rmap : RegisterMap
        The map; fixed maps have no scale-factor points and give ``{}``.
    ratings : Ratings
        What the registers must hold.

    Returns
    -------
    dict of str to int
        ``sunssf`` field name -> exponent (value = raw x 10**sf).
    """
    out: dict[str, int] = {}
    for sf_field in (f for f in rmap.fields if f.type == "sunssf"):
        if sf_field.name in FIXED_SF:
            out[sf_field.name] = FIXED_SF[sf_field.name]
            continue
        users = [f for f in rmap.fields if f.sf == sf_field.name and f.name in RATED_BY]
        sf = 0
        while sf < 10 and not all(_fits(f, getattr(ratings, RATED_BY[f.name]), sf) for f in users):
            sf += 1
        out[sf_field.name] = sf
    return out


def check_ratings(rmap: RegisterMap, ratings: Ratings, sfs: dict[str, int]) -> None:
    """Refuse ratings the map's registers cannot represent.

    Raises
    ------
    ConfigError
        One line per field whose rating does not fit its register type with its scale (a
        fixed vendor map made for a small inverter cannot serve a 3 MW battery).
    """
    problems = []
    for f in rmap.fields:
        if f.name not in RATED_BY or f.type not in codec.INT_RANGE or f.type == "sunssf":
            continue
        need = getattr(ratings, RATED_BY[f.name])
        if not _fits(f, need, sfs.get(f.sf or "", 0)):
            lo, hi = codec.INT_RANGE[f.type]
            reach = abs(codec.factor(f, sfs.get(f.sf or "", 0))) * max(abs(lo), hi)
            problems.append(
                f"register map {rmap.name!r}: field {f.name} ({f.type}, {f.point or f.name}) "
                f"reaches {reach:g}, the site needs {need:g}"
            )
    if problems:
        raise ConfigError(problems, f"sim-device, register map {rmap.name}")


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
        body = sentinel_words(model)
        image.update({addr + 2 + i: body[i] if i < len(body) else 0 for i in range(length)})
        addr += 2 + length
    image.update({addr: 0xFFFF, addr + 1: 0})
    return resolve(rmap, bases), {None: image}


def blocks(image: dict[int, int]) -> list[SimData]:
    """One pymodbus ``SimData`` per run of consecutive addresses of ``image``."""
    runs = itertools.groupby(enumerate(sorted(image)), key=lambda ia: ia[1] - ia[0])
    spans = [[a for _, a in run] for _, run in runs]
    return [SimData(s[0], values=[image[a] for a in s], datatype=DataType.REGISTERS) for s in spans]


def extra_fields(rmap: RegisterMap, fields: dict[str, Resolved]) -> dict[str, Resolved]:
    """``sim.sunspec_points.EXTRA_POINTS`` resolved at the served model blocks (SunSpec maps;
    ``{}`` for fixed maps): points the simulator serves although the map does not name them."""
    if rmap.kind != "sunspec":
        return {}
    bases = {}
    for r in fields.values():
        key = (int(r.spec.model or 0), r.spec.instance)
        bases.setdefault(key, r.address - r.spec.address)
    out = {}
    for name, (model, offset, typ) in EXTRA_POINTS.items():
        if (model, 1) in bases:
            spec = FieldSpec.model_validate(
                {
                    "name": name,
                    "address": offset,
                    "type": typ,
                    "model": model,
                    "sf": EXTRA_SF.get(name),
                    "scale": 0.001 if name == "m802_w" else 1.0,
                    "access": "rw" if name.startswith("m704") else "r",
                }
            )
            out[name] = Resolved(spec, bases[(model, 1)] + offset, rmap.word_order)
    return out


def initial_values(
    rmap: RegisterMap, fields: dict[str, Resolved], charge_max_kw: float,
    discharge_max_kw: float, energy_kwh: float, soc_min_frac: float,
    sfs: dict[str, int] | None = None,
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
    sfs : dict of str to int, optional
        Scale factors (``scale_factors``); those of a 100 kW / 200 kWh device when omitted.

    Returns
    -------
    list of (str, float or str)
        ``(field name, value)`` pairs to store in this order.
    """
    if sfs is None:
        power_kw = max(charge_max_kw, discharge_max_kw)
        meters_kw = HEADROOM * 500.0
        sfs = scale_factors(rmap, Ratings(power_kw, energy_kwh, meters_kw, meters_kw))
    init: dict[str, Any] = dict(sfs)
    init.update(m802_w_sf=sfs.get("batt_w_sf", 0), m704_wset_pct_sf=FIXED_SF["m704_wset_pct_sf"])
    init.update(STRINGS)
    state = 3.0 if rmap.kind == "sunspec" else 2.0  # 802 CONNECTED; vendor "running"
    init.update(p_charge_max_kw=charge_max_kw, p_discharge_max_kw=discharge_max_kw,
                p_batt_charge_rate_max_kw=charge_max_kw, energy_rated_kwh=energy_kwh,
                revert_timeout_s=600.0, soh_frac=1.0, battery_state=state, batt_inverter_state=4.0,
                grid_charging=1.0, soc_reserve_frac=soc_min_frac, wset_mode=1.0, wset_enable=0.0,
                p_wset_kw=0.0, wset_revert_timeout_s=0.0, wset_revert_remaining_s=0.0,
                m802_loc_rem_ctl=0.0, m704_wset_pct=0.0, m704_wset_ena_rvrt=0.0)
    out = [(name, value) for name, value in init.items() if name in fields]
    if rmap.control is not None:
        out += list(commands.default_writes(rmap, extras=False))
        out += [(st.field, float(st.ready[0])) for st in rmap.control.running if st.field in fields]
    return out
