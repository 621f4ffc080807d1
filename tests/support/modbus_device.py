"""A Modbus device for the integration tests, served by pymodbus (not by us).

Usage: python modbus_device.py SPEC_JSON

SPEC_JSON:
  {"transport": "tcp" | "rtu-over-tcp" | "rtu",
   "tty": "/path/to/pty",            # rtu only
   "devices": [{"id": 1,
                "delay": 0.0,          # seconds before every answer (a slow device)
                "coils":    [{"address": 0, "type": "bits", "values": [true, false]}],
                "discrete": [...],
                "holding":  [{"address": 0, "type": "float32", "values": [1.5]}],
                "input":    [{"address": 0, "type": "registers", "values": [1, 2]}]}]}

Types: bits, registers, int16, uint16, int32, uint32, int64, uint64, float32, float64
(pymodbus encodes multi-register types high word first, ABCD). Addresses outside the
blocks answer with exception 0x02 (illegal data address). A unit id that is not in the
spec gets no answer on rtu (as on a real line) and exception 0x04 over tcp. For tcp transports it prints
"READY <port>" once the port accepts connections; for rtu, "READY".
"""

import asyncio
import json
import socket
import sys

from pymodbus import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

TYPES = {
    "bits": DataType.BITS,
    "registers": DataType.REGISTERS,
    "int16": DataType.INT16,
    "uint16": DataType.UINT16,
    "int32": DataType.INT32,
    "uint32": DataType.UINT32,
    "int64": DataType.INT64,
    "uint64": DataType.UINT64,
    "float32": DataType.FLOAT32,
    "float64": DataType.FLOAT64,
}


def block(entries, bits):
    if not entries:
        # pymodbus wants at least one entry per table; one register far away.
        return [SimData(address=65000, values=[False] * 16 if bits else 0,
                        datatype=DataType.BITS if bits else DataType.REGISTERS)]
    out = []
    for e in entries:
        dt = TYPES[e["type"]]
        values = e["values"]
        if dt in (DataType.FLOAT32, DataType.FLOAT64):
            values = [float(v) for v in values]
        out.append(SimData(address=e["address"], values=values, datatype=dt))
    return out


def device(spec):
    delay = float(spec.get("delay", 0.0))

    async def action(_fc, _start, _addr, _count, _regs, _values):
        if delay:
            await asyncio.sleep(delay)
        return None

    return SimDevice(
        id=spec["id"],
        simdata=(
            block(spec.get("coils"), True),
            block(spec.get("discrete"), True),
            block(spec.get("holding"), False),
            block(spec.get("input"), False),
        ),
        action=action,
    )


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_listening(port):
    for _ in range(200):
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.02)
    raise SystemExit(f"server did not start listening on {port}")


async def main():
    spec = json.loads(sys.argv[1])
    devices = [device(d) for d in spec["devices"]]
    transport = spec["transport"]
    if transport == "rtu":
        # On a real RS-485 line nobody answers for a unit id that is not there. (pymodbus
        # 3.16's simulator answers 0x04 instead, so drop those answers on the way out.)
        known = {d["id"] for d in spec["devices"]}

        def only_known_units(sending, data):
            if sending and data and data[0] not in known:
                return b""
            return data

        server = ModbusSerialServer(devices, port=spec["tty"], baudrate=spec.get("baud", 19200),
                                    framer=FramerType.RTU, ignore_missing_devices=True,
                                    trace_packet=only_known_units)
        task = asyncio.create_task(server.serve_forever())
        await asyncio.sleep(0.3)
        print("READY", flush=True)
    else:
        port = free_port()
        framer = FramerType.RTU if transport == "rtu-over-tcp" else FramerType.SOCKET
        server = ModbusTcpServer(devices, address=("127.0.0.1", port), framer=framer)
        task = asyncio.create_task(server.serve_forever())
        await wait_listening(port)
        print(f"READY {port}", flush=True)
    await task


if __name__ == "__main__":
    asyncio.run(main())
