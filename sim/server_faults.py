"""Faults the simulated device can be told to show, and how the fault-control unit sets them.

Role: the state of injected faults of one ``sim.server.PlantServer`` (set its attributes from
Python, or write the registers of the fault-control unit ``CONTROL_UNIT`` over Modbus, or pass
``dispatch sim-device`` flags); the server reads it on every request and every tick. Pure data,
standard library only.

Holding registers of the control unit (0-based):

- 0: bits: 1 silent, 2 frozen measurements, 4 out-of-range measurements, 8 writes stored as 0,
  16 drop every connection once, 32 writes accepted but not followed by the battery, 64 the
  device reports a fault state in its running-state fields (``[control] running``), 128
  every connection closed as soon as a request arrives, while set (a flapping link);
- 1: exception code to answer every request with (0: none);
- 2: delay before every answer (ms);
- 3: seconds (plant time) after a control write at which a "local operator" puts the control
  mode back to the device's default (0: never).
"""

from __future__ import annotations

from dataclasses import dataclass

CONTROL_UNIT = 247
CONTROL_REGISTERS = 4


@dataclass
class Faults:
    """Faults to inject into a running simulated device; change them at any time.

    Attributes
    ----------
    silent : bool
        No answer at all while set (a late answer afterwards).
    exception_code : int or None
        Answer every request with this Modbus exception code.
    frozen : bool
        Measurements stop updating (the registers keep their last values).
    out_of_range : bool
        Measurements outside physics (SoC 150 %, a charge of 1000 x the rating).
    writes_ignored : bool
        Writes are answered but store zeros (they do not stick).
    not_following : bool
        Writes stick in the registers and read back, but the battery does not follow them:
        it keeps what it did when the fault was set.
    delay_s : float
        Delay before every answer (s, real time): a slow device.
    mode_drop_s : float
        Plant seconds after the last control write at which the control mode register goes
        back to the device's default, as a local operator would do (0: never).
    state_fault : bool
        The running-state fields of the map (``[control] running``: SunSpec 103 ``St`` and
        802 ``State``, a vendor's state register) read their "fault" value; the battery
        stops (no power) while it lasts.
    drop_connections : bool
        While set, the device closes the connection of every request that arrives, without
        an answer (a flapping link, a gateway that resets its sockets); a client that
        reconnects is dropped again at its next request.
    """

    silent: bool = False
    exception_code: int | None = None
    frozen: bool = False
    out_of_range: bool = False
    writes_ignored: bool = False
    not_following: bool = False
    delay_s: float = 0.0
    mode_drop_s: float = 0.0
    state_fault: bool = False
    drop_connections: bool = False

    def set_registers(self, regs: list[int]) -> None:
        """Apply the control unit's register values (see the module docstring)."""
        bits, code, delay_ms, drop_s = (list(regs) + [0] * CONTROL_REGISTERS)[:CONTROL_REGISTERS]
        self.silent, self.frozen = bool(bits & 1), bool(bits & 2)
        self.out_of_range, self.writes_ignored = bool(bits & 4), bool(bits & 8)
        self.not_following, self.state_fault = bool(bits & 32), bool(bits & 64)
        self.drop_connections = bool(bits & 128)
        self.exception_code = code or None
        self.delay_s, self.mode_drop_s = delay_ms / 1000.0, float(drop_s)

    def set_bits(self, bits: int, exception_code: int) -> None:
        """Apply registers 0 and 1 only, leaving the delay and the mode drop as they are."""
        delay_ms, drop_s = round(self.delay_s * 1000.0), round(self.mode_drop_s)
        self.set_registers([bits, exception_code, delay_ms, drop_s])
