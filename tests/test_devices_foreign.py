"""Our writer against servers not written by us, with injected faults.

pymodbus's own reference datastore (``ModbusSequentialDataBlock`` / ``ModbusSparseDataBlock``
in a ``ModbusServerContext``) and pyModbusTCP's server; plus raw TCP servers that never answer
or drop the line. Every fault must give a clear ``DeviceError`` and no unsafe write.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import warnings

import pytest

from dispatch.config import DeviceSection
from dispatch.devices.client import DeviceClient
from dispatch.types import DeviceError, Setpoints

HUAWEI_LIMITS = {47075: [0x0001, 0x86A0], 47077: [0x0001, 0x86A0]}  # 100 000 W each


def _cfg(port: int, register_map: str, **kw: object) -> DeviceSection:
    base: dict[str, object] = dict(name="bess", register_map=register_map, port=port,
                                   unit_id=1, timeout_s=0.3, retries=0,
                                   charge_max_kw=90.0, discharge_max_kw=90.0)  # fmt: skip
    base.update(kw)
    return DeviceSection.model_validate(base)


async def _reference_server(hr: object):
    from pymodbus.datastore import ModbusDeviceContext, ModbusServerContext
    from pymodbus.server import ModbusTcpServer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctx = ModbusServerContext(devices=ModbusDeviceContext(hr=hr), single=True)
    server = ModbusTcpServer(ctx, address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    return server, server.transport.sockets[0].getsockname()[1]


async def _regs(server: object, address: int, count: int) -> list[int]:
    return list(await server.context.async_getValues(0, 3, address, count))  # type: ignore[attr-defined]


def test_reference_datastore_huawei_write_order_and_values() -> None:
    from pymodbus.datastore import ModbusSequentialDataBlock

    async def run() -> None:
        block = [0] * 300
        block[75:79] = HUAWEI_LIMITS[47075] + HUAWEI_LIMITS[47077]
        server, port = await _reference_server(ModbusSequentialDataBlock(47001, block))
        c = DeviceClient(_cfg(port, "huawei_sun2000_luna", revert_timeout_s=600))
        try:
            out = await c.write(Setpoints(120.0, "plan"), 0.0)
            assert out.clamped and out.p_batt_kw == 90.0  # configured cap below device 100 kW
            assert await _regs(server, 47083, 1) == [10]  # 600 s in minutes
            assert await _regs(server, 47247, 4) == [0, 0, 0x0001, 0x5F90]  # 90 000 W discharge
            assert await _regs(server, 47100, 1) == [2]
            await c.write(Setpoints(-12.5, "plan"), 100.0)
            assert await _regs(server, 47247, 4) == [0, 12500, 0, 0]
            assert await _regs(server, 47100, 1) == [1]
            await c.restore_default()
            assert await _regs(server, 47100, 1) == [0]
            assert await _regs(server, 47247, 4) == [0, 0, 0, 0]  # no power left behind
        finally:
            c.close()
            await server.shutdown()

    asyncio.run(run())


def test_reference_datastore_exception_response_stops_before_any_power_write() -> None:
    from pymodbus.datastore import ModbusSparseDataBlock

    async def run() -> None:
        values = dict(HUAWEI_LIMITS)
        values.update({47100: [0], 47247: [0, 0, 0, 0]})  # 47083 (revert) is missing
        server, port = await _reference_server(ModbusSparseDataBlock(values))
        c = DeviceClient(_cfg(port, "huawei_sun2000_luna"))
        try:
            with pytest.raises(DeviceError, match=r"write 47083\.\.47083 .*exception response"):
                await c.write(Setpoints(50.0, "plan"), 0.0)
            assert await _regs(server, 47247, 4) == [0, 0, 0, 0]
            assert await _regs(server, 47100, 1) == [0]
            assert c.failures == 1 and c.next_try_s > 0.0
        finally:
            c.close()
            await server.shutdown()

    asyncio.run(run())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _pymodbustcp_server(bank: object):
    from pyModbusTCP.server import ModbusServer

    port = _free_port()
    server = ModbusServer("127.0.0.1", port, no_block=True, data_bank=bank)
    server.start()
    try:
        yield port
    finally:
        server.stop()


def test_pymodbustcp_server_sungrow_write_and_mismatch() -> None:
    pytest.importorskip("pyModbusTCP", reason="pyModbusTCP (dev dependency) is not installed")
    from pyModbusTCP.server import DataBank

    class Clipping(DataBank):
        """Stores at most 5 000 W in the power register (a device that silently limits)."""

        def set_holding_registers(self, address, word_list, srv_info=None):
            if address == 13051:
                word_list = [min(word_list[0], 5000)]
            return super().set_holding_registers(address, word_list, srv_info)

    bank = Clipping()

    async def run(port: int) -> None:
        c = DeviceClient(_cfg(port, "sungrow_sh", min_write_interval_s=0.0))
        try:
            out = await c.write(Setpoints(-4.0, "plan"), 0.0)
            assert out.action == "written"
            assert bank.get_holding_registers(13049, 3) == [2, 0xAA, 4000]
            bank.set_holding_registers(13049, [0, 0xCC, 0])
            with pytest.raises(DeviceError, match="read-back mismatch at 13051"):
                await c.write(Setpoints(30.0, "plan"), 100.0)
            assert bank.get_holding_registers(13049, 2) == [0, 0xCC]  # mode, command untouched
        finally:
            c.close()

    with _pymodbustcp_server(bank) as port:
        asyncio.run(run(port))


async def _raw_server(handler) -> tuple[asyncio.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_silent_device_times_out() -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)
        await asyncio.sleep(5)

    async def run() -> None:
        server, port = await _raw_server(mute)
        c = DeviceClient(_cfg(port, "sungrow_sh"))
        t0 = time.monotonic()
        try:
            with pytest.raises(DeviceError, match="no response"):
                await c.write(Setpoints(10.0, "plan"), 0.0)
            assert time.monotonic() - t0 < 2.0
        finally:
            c.close()
            server.close()

    asyncio.run(run())


def test_connection_dropped_mid_request() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1 << 16)
        writer.close()

    async def run() -> None:
        server, port = await _raw_server(hang_up)
        c = DeviceClient(_cfg(port, "sungrow_sh"))
        try:
            with pytest.raises(DeviceError, match=r"device 'bess'.*(connection|no response)"):
                await c.write(Setpoints(10.0, "plan"), 0.0)
        finally:
            c.close()
            server.close()

    asyncio.run(run())
