"""SunSpec facts the simulated device needs beyond the register map: sentinels and extra points.

Role: for every SunSpec model the simulator serves, the "not implemented" word of each body
register (so a point the device lacks reads as SunSpec says, not 0), and the few points the
simulator publishes or obeys although ``dispatch/devices/maps/sunspec.toml`` does not map them
(802 ``W``, 704 ``WSetPct``, ...). Transcribed from the SunSpec Information Model definitions
(pysunspec2 1.3.7 ``models/json``); ``tests/test_sim_fidelity.py`` re-derives both tables from
those files. Pure data, imports nothing of ours.

Sentinel codes, one character per register after ``ID`` and ``L``: ``F`` 0xFFFF (uint16, enum16,
bitfield16 and both words of uint32 / enum32 / bitfield32), ``8`` 0x8000 (int16, sunssf, pad
and the high word of int32), ``0`` 0x0000 (strings, accumulators, the low word of int32),
``N`` 0x7FC0 (the high word of a float32 NaN).
"""

from __future__ import annotations

SENTINEL_CODES = {"F": 0xFFFF, "8": 0x8000, "0": 0x0000, "N": 0x7FC0}
_M1 = "0" * 64 + "F8"
_M103 = "FFFF8FFFFFF888F8888888008F8F88888888FFFFFFFFFFFFFF"
_M124 = "FFFFFFFFFF88FFFF88888888"
_M203 = (
    "888888888888888888888888888888888888"
    + "0000000000000000800000000000000008000000000000000000000000000000008FF"
)
_M713 = "FFFFF88"
_M802 = "F" * 42 + "8FF8F8FF888888888888"
_M704 = "FFFFFFFFFFFFFFFFFFFFFF808088FFFFFFFF808088FFFFFFFFF888888FFFFFFFF"
SENTINELS = {1: _M1, 103: _M103, 124: _M124, 203: _M203, 713: _M713, 802: _M802, 704: _M704}

# Points the simulator serves or obeys outside the register map: name -> (model, offset from
# the model's ID register, SunSpec type). Offsets as in the SunSpec definitions.
EXTRA_POINTS = {
    "m802_w": (802, 47, "int16"),  # W: power to/from the battery bank (W_SF)
    "m802_w_sf": (802, 63, "sunssf"),  # W_SF
    "m802_cha_st": (802, 16, "enum16"),  # ChaSt: same enumeration as 124 ChaSt
    "m802_loc_rem_ctl": (802, 17, "enum16"),  # LocRemCtl: 0 remote, 1 local
    "m704_wset_pct": (704, 28, "int16"),  # WSetPct: % of WMax (WSetPct_SF)
    "m704_wset_pct_sf": (704, 56, "sunssf"),  # WSetPct_SF
    "m704_wset_ena_rvrt": (704, 30, "enum16"),  # WSetEnaRvrt: state after the revert time
}


def sentinel_words(model: int) -> list[int]:
    """The "not implemented" words of a model's body (registers after ``ID`` and ``L``).

    Parameters
    ----------
    model : int
        A SunSpec model id among ``SENTINELS``.

    Returns
    -------
    list of int
        One 16-bit word per body register, in address order.
    """
    return [SENTINEL_CODES[c] for c in SENTINELS[model]]
