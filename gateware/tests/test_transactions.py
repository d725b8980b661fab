"""Whole SPI transactions against the complete design, with values worked out by hand from
FPGA.md (independent of the Rust model the vectors come from)."""

import struct

from spi_host import SpiHost, run

from flyscan_gateware import contract as c
from flyscan_gateware.core import FlyscanCore


def design(**kw):
    args = dict(n_channels=2, counter_bits=16, fifo_depth=8, snapshot_depth=8, clock_hz=50_000_000)
    args.update(kw)
    return FlyscanCore(**args)


def test_identity_and_geometry_registers():
    dut = design()
    host = SpiHost(dut)
    vals = {}

    async def bench(ctx):
        for name, addr in [("id", c.REG_ID), ("version", c.REG_VERSION),
                           ("clock", c.REG_CLOCK_HZ), ("n", c.REG_N_CHANNELS),
                           ("bits", c.REG_COUNTER_BITS), ("fifo", c.REG_EDGE_FIFO_DEPTH),
                           ("snap", c.REG_SNAPSHOT_DEPTH), ("unknown", 0x07)]:
            vals[name] = await host.read_reg(ctx, addr)
        vals["raw"] = await host.transaction(ctx, bytes([0x01, 0x00, 0, 0, 0, 0, 0, 0]))

    run(dut, bench)
    assert vals == {
        "id": 0x464C5953, "version": 0x10001, "clock": 50_000_000, "n": 2, "bits": 16,
        "fifo": 8, "snap": 8, "unknown": 0,
        # "FLYS" little-endian after the 2 header bytes, then 00 past the response.
        "raw": bytes([0, 0, 0x53, 0x59, 0x4C, 0x46, 0, 0]),
    }


def test_capture_edges_and_snapshots_through_spi():
    dut = design()
    host = SpiHost(dut)
    out = {}

    async def bench(ctx):
        await host.write_reg(ctx, c.REG_CONTROL, c.CONTROL_RESET | c.CONTROL_CLEAR_FIFO)
        await host.write_reg(ctx, c.REG_CONTROL, c.CONTROL_ENABLE)
        out["drdy0"] = ctx.get(dut.drdy)
        # Three pulses on channel 1, then A rises; one more pulse, then B rises.
        for _ in range(3):
            ctx.set(dut.det, 0b10)
            await ctx.tick()
            ctx.set(dut.det, 0)
            await ctx.tick()
        ctx.set(dut.enc_a, 1)
        await ctx.tick().repeat(10)
        ctx.set(dut.det, 0b01)
        await ctx.tick()
        ctx.set(dut.det, 0)
        await ctx.tick().repeat(10)
        ctx.set(dut.enc_b, 1)
        await ctx.tick().repeat(10)
        out["drdy1"] = ctx.get(dut.drdy)
        out["level"] = await host.read_reg(ctx, c.REG_EDGE_FIFO_LEVEL)
        out["ab"] = await host.read_reg(ctx, c.REG_AB_NOW)
        r = await host.transaction(ctx, bytes([0x03, 4, 0]) + bytes(2 + 4 * 14))
        out["edges"] = r[3:]
        out["snap1"] = (await host.transaction(ctx, bytes([0x04, 1, 0, 0, 0]) + bytes(17)))[5:]
        out["snap7"] = (await host.transaction(ctx, bytes([0x04, 7, 0, 0, 0]) + bytes(17)))[5:]
        out["drdy2"] = ctx.get(dut.drdy)

    run(dut, bench)
    assert (out["drdy0"], out["drdy1"], out["drdy2"]) == (0, 1, 0)
    assert out["level"] == 2 and out["ab"] == 0b11
    r = out["edges"]
    assert struct.unpack("<H", r[:2])[0] == 2
    ts0, seq0, ab0, fl0 = struct.unpack("<QIBB", r[2:16])
    ts1, seq1, ab1, fl1 = struct.unpack("<QIBB", r[16:30])
    assert (seq0, ab0, fl0, seq1, ab1, fl1) == (0, 1, 0, 1, 3, 0)
    assert ts1 - ts0 == 10 + 1 + 10, "B rose 21 cycles after A"
    assert r[30:] == bytes(28), "slots past the count read 00"
    valid, seq, live, c0, c1 = struct.unpack("<BIIII", out["snap1"])
    assert (valid, seq, c0, c1) == (1, 1, 1, 3)
    assert live > 21
    assert out["snap7"][0] == 0, "edge 7 never happened"


def test_glitch_filter_delays_timestamps_and_drops_glitches():
    stamps = {}
    for length in (0, 5):
        dut = design(glitch_filter=length)
        host = SpiHost(dut)

        async def bench(ctx, dut=dut, host=host, length=length):
            await host.write_reg(ctx, c.REG_CONTROL, c.CONTROL_ENABLE)
            ctx.set(dut.enc_b, 1)  # a 2-cycle glitch on B
            await ctx.tick().repeat(2)
            ctx.set(dut.enc_b, 0)
            await ctx.tick().repeat(20)
            ctx.set(dut.enc_a, 1)
            await ctx.tick().repeat(20)
            r = await host.transaction(ctx, bytes([0x03, 4, 0]) + bytes(2 + 4 * 14))
            count = struct.unpack("<H", r[3:5])[0]
            events = [struct.unpack("<QIBB", r[5 + 14 * i:19 + 14 * i]) for i in range(count)]
            stamps[length] = events

        run(dut, bench)
    ev0, ev5 = stamps[0], stamps[5]
    assert [e[2] for e in ev0] == [2, 0, 1], "no filter: the glitch makes two edges"
    assert [e[2] for e in ev5] == [1], "the filter drops it"
    # Same pin timeline in both runs: the filter delays the edge by its length.
    assert ev5[0][0] - ev0[-1][0] == 5


def test_miso_is_released_outside_a_transaction_and_cut_reads_keep_events():
    dut = design()
    host = SpiHost(dut)
    out = {}

    async def bench(ctx):
        out["oe_idle"] = ctx.get(dut.miso_oe)
        await host.write_reg(ctx, c.REG_CONTROL, c.CONTROL_ENABLE)
        for ab in (1, 3, 2):
            ctx.set(dut.enc_a, ab & 1)
            ctx.set(dut.enc_b, ab >> 1)
            await ctx.tick().repeat(5)
        # Stop 3 bits into the second slot: only the first event leaves.
        await host.transaction(ctx, bytes([0x03, 3, 0]) + bytes(2 + 3 * 14),
                               stop_after_bits=8 * (3 + 2 + 14) + 3)
        out["level"] = await host.read_reg(ctx, c.REG_EDGE_FIFO_LEVEL)
        r = await host.transaction(ctx, bytes([0x03, 3, 0]) + bytes(2 + 3 * 14))
        out["seqs"] = [struct.unpack("<I", r[5 + 14 * i + 8:5 + 14 * i + 12])[0] for i in range(2)]

    run(dut, bench)
    assert out["oe_idle"] == 0
    assert out["level"] == 2
    assert out["seqs"] == [1, 2]


def test_period_events_through_spi():
    """PERIOD written over SPI: a start event, then one event every period with a snapshot of
    the counters at its cycle, an edge on a period event's cycle joining it; a stop ends them."""
    dut = design(fifo_depth=64, snapshot_depth=64)
    host = SpiHost(dut)
    out = {}
    period = 400

    async def bench(ctx):
        await host.write_reg(ctx, c.REG_CONTROL, c.CONTROL_RESET | c.CONTROL_CLEAR_FIFO)
        await host.write_reg(ctx, c.REG_CONTROL, c.CONTROL_ENABLE)
        await host.write_reg(ctx, c.REG_PERIOD, period)
        out["period"] = await host.read_reg(ctx, c.REG_PERIOD)
        # A pulse on channel 0 every 4 cycles over periods 2 to 4 (and more).
        for _ in range(600):
            ctx.set(dut.det, 0b01)
            await ctx.tick()
            ctx.set(dut.det, 0)
            await ctx.tick().repeat(3)
        r = await host.transaction(ctx, bytes([0x03, 8, 0]) + bytes(2 + 8 * 14))
        count = struct.unpack("<H", r[3:5])[0]
        out["events"] = [struct.unpack("<QIBB", r[5 + 14 * i:19 + 14 * i]) for i in range(count)]
        out["snaps"] = []
        for seq in range(2, 5):
            s = await host.transaction(ctx, bytes([0x04, seq, 0, 0, 0]) + bytes(17))
            out["snaps"].append(struct.unpack("<BIIII", s[5:]))
        await host.write_reg(ctx, c.REG_PERIOD, 0)
        out["stopped"] = await host.read_reg(ctx, c.REG_PERIOD)
        level = await host.read_reg(ctx, c.REG_EDGE_FIFO_LEVEL)
        await ctx.tick().repeat(3 * period)
        out["new"] = await host.read_reg(ctx, c.REG_EDGE_FIFO_LEVEL) - level

    run(dut, bench)
    assert out["period"] == period and out["stopped"] == 0
    ev = out["events"]
    assert len(ev) >= 4, ev
    assert [e[3] for e in ev] == [c.EDGE_FLAG_PERIOD | c.EDGE_FLAG_PERIOD_START] + [
        c.EDGE_FLAG_PERIOD] * (len(ev) - 1)
    assert [e[1] for e in ev] == list(range(len(ev)))
    assert all(b[0] - a[0] == period for a, b in zip(ev, ev[1:])), "one event every period"
    assert all(e[2] == 0 for e in ev), "the levels as they are"
    (v0, q0, live0, n0, _), (v1, q1, live1, n1, _), (v2, q2, live2, n2, _) = out["snaps"]
    assert (v0, v1, v2, q0, q1, q2) == (1, 1, 1, 2, 3, 4)
    assert live1 - live0 == period and live2 - live1 == period, "the gate is high"
    assert n1 - n0 == period // 4 and n2 - n1 == period // 4, "a pulse every 4 cycles"
    assert out["new"] == 0, "no event after the stop"
