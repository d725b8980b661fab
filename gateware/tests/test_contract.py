"""The HDL side's contract numbers against FPGA.md's tables (the Rust side is checked by
fpga-contract/tests/spec.rs; the vectors check the behaviour)."""

import os
import re

from flyscan_gateware import contract as c

FPGA_MD = os.path.join(os.path.dirname(__file__), "..", "..", "firmware-odroid", "FPGA.md")


def table(heading):
    with open(FPGA_MD) as f:
        text = f.read()
    at = text.index(heading)
    rows = []
    started = False
    for line in text[at:].splitlines():
        if line.startswith("|"):
            started = True
            cells = line.replace("\\|", "\x01").strip("|").split("|")
            rows.append([x.strip().replace("`", "").replace("\x01", "|") for x in cells])
        elif started:
            break
    return rows[2:]


def test_register_map():
    rows = table("### Register map")
    have = {r[1]: int(r[0], 16) for r in rows}
    want = {name[4:]: getattr(c, name) for name in dir(c) if name.startswith("REG_")}
    assert have == want
    assert f"0x{c.ID_MAGIC:08X}" in rows[0][3]


def test_commands_and_header_lengths():
    rows = table("### Commands")
    for r in rows:
        cmd = int(r[0], 16)
        assert getattr(c, "CMD_" + r[1]) == cmd
        header = r[2].split("(")[0].split()
        assert c.HEADER_LEN[cmd] == len(header), r
    assert len(rows) == len(c.HEADER_LEN)


def test_control_and_status_bits():
    rows = {r[1]: r[3] for r in table("### Register map")}
    for bit, what in [(c.CONTROL_ENABLE, "capture enable"), (c.CONTROL_RESET, "reset counters"),
                      (c.CONTROL_CLEAR_FIFO, "clear the edge FIFO")]:
        n = bit.bit_length() - 1
        assert re.search(rf"bit {n}[^;]*{what}", rows["CONTROL"]), what
    assert f"bit {c.STATUS_READY.bit_length() - 1} data ready" in rows["STATUS"]
    assert f"bit {c.STATUS_OVERRUN.bit_length() - 1} overrun" in rows["STATUS"]


def test_timing_table():
    rows = {r[0]: int(r[1]) for r in table("Its timing, in sampling-clock cycles")}
    assert rows == {
        "INPUT_LATENCY": c.INPUT_LATENCY,
        "SPI_EXEC_LATENCY": c.SPI_EXEC_LATENCY,
        "MIN_CS_HIGH": c.MIN_CS_HIGH,
        "MIN_CLOCKS_PER_SCLK": c.MIN_CLOCKS_PER_SCLK,
    }


def test_record_sizes():
    rows = table("Edge event slot")
    sizes = {"u64": 8, "u32": 4, "u8": 1}
    assert sum(sizes[r[2]] for r in rows) == c.EDGE_EVENT_LEN
    assert c.snapshot_len(2) == 17


def test_event_flags_and_version():
    flags = {r[1]: r[3] for r in table("Edge event slot")}["flags"]
    for bit, name in [(c.EDGE_FLAG_OVERRUN, "OVERRUN"), (c.EDGE_FLAG_PERIOD, "PERIOD"),
                      (c.EDGE_FLAG_PERIOD_START, "PERIOD_START")]:
        assert f"bit {bit.bit_length() - 1} {name}:" in flags, name
    version = {r[1]: r[3] for r in table("### Register map")}["VERSION"]
    assert f"minor ≥ {c.PERIOD_MINOR} has the period timer" in version
    assert c.VERSION == 1 << 16 | c.PERIOD_MINOR
