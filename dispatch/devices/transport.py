"""One Modbus endpoint over pymodbus (TCP, or RTU on a serial line) and SunSpec discovery.

Role: the only place in ``dispatch`` that talks pymodbus. Every failure becomes a
``DeviceError`` naming the device, the address and the cause (exception response, timeout,
lost connection). One ``Transport`` per endpoint, owned by one task: pymodbus is not
thread-safe. Imports pymodbus, ``dispatch.config`` and ``dispatch.types``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from dispatch.config import DeviceSection
from dispatch.types import DeviceError

SUNS = (0x5375, 0x6E53)  # "SunS"
END_MODEL = 0xFFFF
MAX_MODELS = 100


class Transport:
    """An async Modbus client bound to one configured device.

    Parameters
    ----------
    cfg : DeviceSection
        Endpoint, unit id, timeout (s) and retries.
    unit_id : int, optional
        Overrides ``cfg.unit_id`` (a register map may name a default).
    """

    def __init__(self, cfg: DeviceSection, unit_id: int | None = None) -> None:
        self.cfg = cfg
        self.unit_id = cfg.unit_id if unit_id is None else unit_id
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None

    def _make(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        c = self.cfg
        if c.transport == "rtu":
            return AsyncModbusSerialClient(
                str(c.serial_port), baudrate=c.baudrate, parity=c.parity,
                timeout=c.timeout_s, retries=c.retries, reconnect_delay=0,
            )
        return AsyncModbusTcpClient(
            c.host, port=c.port, timeout=c.timeout_s, retries=c.retries, reconnect_delay=0
        )

    def _where(self, unit_id: int | None = None) -> str:
        c = self.cfg
        end = c.serial_port if c.transport == "rtu" else f"{c.host}:{c.port}"
        return f"device {c.name!r} ({end}, unit {self.unit_id if unit_id is None else unit_id})"

    async def connect(self) -> None:
        """Open the connection (again, after a loss); ``DeviceError`` when it cannot."""
        if self._client is not None and self._client.connected:
            return
        self.close()
        self._client = self._make()
        try:
            ok = await self._client.connect()
        except (ModbusException, OSError) as exc:
            ok, cause = False, str(exc)
        else:
            cause = "connection refused or timed out"
        if not ok:
            self.close()
            raise DeviceError(f"{self._where()}: cannot connect: {cause}")

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def read(
        self, address: int, count: int, table: str = "holding", unit_id: int | None = None
    ) -> list[int]:
        """Read ``count`` registers at 0-based ``address`` from the holding or input table.

        ``unit_id`` overrides the device's unit id for this request (gateways).
        """
        uid = self.unit_id if unit_id is None else unit_id
        await self.connect()
        assert self._client is not None
        fn = (
            self._client.read_input_registers if table == "input"
            else self._client.read_holding_registers
        )
        what = f"read {table} {address}..{address + count - 1}"
        result = await self._request(uid, what, lambda: fn(address, count=count, device_id=uid))
        regs = list(result.registers)
        if len(regs) != count:
            raise DeviceError(f"{self._where(uid)}: {what}: got {len(regs)} registers")
        return regs

    async def write(self, address: int, words: list[int], unit_id: int | None = None) -> None:
        """Write holding registers (function 0x10) at 0-based ``address``."""
        uid = self.unit_id if unit_id is None else unit_id
        await self.connect()
        assert self._client is not None
        what = f"write {address}..{address + len(words) - 1} = {words}"
        fn = self._client.write_registers
        await self._request(uid, what, lambda: fn(address, words, device_id=uid))

    async def _request(self, uid: int, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """Send one request (``call`` makes it) and return the response.

        Raises
        ------
        DeviceError
            Naming device, unit id and ``what``, on a transport failure (the connection is
            dropped when lost) or an exception response.
        """
        try:
            result = await call()
        except (ModbusException, OSError) as exc:
            self._lost(exc)
            raise DeviceError(f"{self._where(uid)}: {what}: {_cause(exc)}") from exc
        if result.isError():
            code = getattr(result, "exception_code", "?")
            raise DeviceError(f"{self._where(uid)}: {what}: exception response code {code}")
        return result

    def _lost(self, exc: BaseException) -> None:
        if isinstance(exc, ConnectionException | ModbusIOException | OSError):
            self.close()  # reconnect on the next call, after the caller's back-off

    async def discover_sunspec(self, bases: list[int]) -> dict[tuple[int, int], int]:
        """Find the SunSpec model blocks.

        Parameters
        ----------
        bases : list of int
            Candidate addresses of the "SunS" marker, tried in order (40000, 0, 50000).

        Returns
        -------
        dict
            ``(model id, instance) -> address of the model's ID register``.

        Raises
        ------
        DeviceError
            When no base holds "SunS" or the model chain is broken.
        """
        for base in bases:
            try:
                marker = await self.read(base, 2)
            except DeviceError as exc:
                if "exception response" in str(exc):
                    continue
                raise
            if tuple(marker) == SUNS:
                return await self._walk(base + 2)
        raise DeviceError(f"{self._where()}: no SunSpec marker 'SunS' at any of {bases}")

    async def _walk(self, addr: int) -> dict[tuple[int, int], int]:
        found: dict[tuple[int, int], int] = {}
        seen: dict[int, int] = {}
        for _ in range(MAX_MODELS):
            model_id, length = await self.read(addr, 2)
            if model_id == END_MODEL:
                return found
            seen[model_id] = seen.get(model_id, 0) + 1
            found[(model_id, seen[model_id])] = addr
            addr += 2 + length
            if addr > 0xFFFF:
                break
        raise DeviceError(f"{self._where()}: SunSpec model chain has no end marker")


def _cause(exc: BaseException) -> str:
    if isinstance(exc, ConnectionException):
        return f"connection lost ({exc})"
    if isinstance(exc, ModbusIOException):
        return f"no response (timeout) ({exc})"
    return f"{type(exc).__name__}: {exc}"
