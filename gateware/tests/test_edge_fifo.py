"""The edge FIFO: order, full, drops with overrun flag and count, clear, reset."""

from spi_host import run

from flyscan_gateware.edge_fifo import EdgeFifo


def test_fifo_order_overrun_and_clear():
    dut = EdgeFifo(4)
    log = {}

    async def push(ctx, seq):
        ctx.set(dut.push, 1)
        ctx.set(dut.seq, seq)
        ctx.set(dut.timestamp, 1000 + seq)
        ctx.set(dut.ab, seq & 3)
        dropped = ctx.get(dut.dropped)
        await ctx.tick()
        ctx.set(dut.push, 0)
        return dropped

    async def pop(ctx):
        await ctx.tick()  # the head is valid a cycle after it changed
        head = (ctx.get(dut.head_seq), ctx.get(dut.head_timestamp), ctx.get(dut.head_ab),
                ctx.get(dut.head_overrun))
        ctx.set(dut.pop, 1)
        await ctx.tick()
        ctx.set(dut.pop, 0)
        return head

    async def bench(ctx):
        drops = [await push(ctx, s) for s in range(6)]
        log["drops"] = drops
        log["level"] = ctx.get(dut.level)
        log["overruns"] = ctx.get(dut.overrun_count)
        log["popped"] = [await pop(ctx) for _ in range(2)]
        await push(ctx, 6)
        log["rest"] = [await pop(ctx) for _ in range(3)]
        log["empty"] = ctx.get(dut.level)
        await push(ctx, 7)
        await push(ctx, 8)
        ctx.set(dut.clear, 1)
        await ctx.tick()
        ctx.set(dut.clear, 0)
        log["cleared"] = ctx.get(dut.level)
        ctx.set(dut.reset, 1)
        await ctx.tick()
        ctx.set(dut.reset, 0)
        log["count_after_reset"] = ctx.get(dut.overrun_count)

    run(dut, bench)
    assert log["drops"] == [0, 0, 0, 0, 1, 1]
    assert log["level"] == 4 and log["overruns"] == 2
    assert log["popped"] == [(0, 1000, 0, 0), (1, 1001, 1, 0)]
    # Event 6 is the first stored after the drops: it carries the overrun flag.
    assert log["rest"] == [(2, 1002, 2, 0), (3, 1003, 3, 0), (6, 1006, 2, 1)]
    assert log["empty"] == 0 and log["cleared"] == 0 and log["count_after_reset"] == 0
