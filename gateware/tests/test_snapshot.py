"""The snapshot RAM: written on the edge's cycle, overwritten, invalid after a reset."""

from spi_host import run

from flyscan_gateware.snapshot import SnapshotRam


def test_slots_valid_overwritten_and_stale_after_reset():
    dut = SnapshotRam(n_channels=2, counter_bits=16, depth=4)
    got = {}

    async def write(ctx, seq):
        ctx.set(dut.write, 1)
        ctx.set(dut.seq, seq)
        ctx.set(dut.live, 100 + seq)
        ctx.set(dut.counts[0], 10 * seq)
        ctx.set(dut.counts[1], 10 * seq + 1)
        await ctx.tick()
        ctx.set(dut.write, 0)
        ctx.set(dut.next_seq, seq + 1)

    async def read(ctx, seq):
        ctx.set(dut.read, 1)
        ctx.set(dut.read_slot, seq % 4)
        ctx.set(dut.asked, seq)
        await ctx.tick()
        ctx.set(dut.read, 0)
        await ctx.tick().repeat(3)  # the RAM's register, the fabric's, the comparison's
        return (ctx.get(dut.valid), ctx.get(dut.slot_seq), ctx.get(dut.slot_live),
                ctx.get(dut.slot_counts[0]), ctx.get(dut.slot_counts[1]))

    async def bench(ctx):
        for s in range(6):
            await write(ctx, s)
        got["5"] = await read(ctx, 5)
        await write(ctx, 6)
        got["5 held"] = (ctx.get(dut.slot_seq), ctx.get(dut.slot_live))
        got["1"] = await read(ctx, 1)
        got["7"] = await read(ctx, 7)
        ctx.set(dut.next_seq, 0)  # a reset
        got["5 after reset"] = await read(ctx, 5)
        await write(ctx, 0)
        got["0 after reset"] = await read(ctx, 0)

    run(dut, bench)
    assert got["5"] == (1, 5, 105, 50, 51)
    assert got["5 held"] == (5, 105), "the slot read stays until the next read"
    assert got["1"][:2] == (0, 5), "slot 1 holds edge 5 now"
    assert got["7"][0] == 0, "not numbered yet"
    assert got["5 after reset"][:2] == (0, 5)
    assert got["0 after reset"] == (1, 0, 100, 0, 1)
