"""The edge FIFO: order, full, drops with overrun flag and count, reading ahead of the pops,
clear, reset."""

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

    async def peek(ctx, i):
        """The event i places behind the read pointer (two cycles to read)."""
        ctx.set(dut.peek_addr, (ctx.get(dut.rd_ptr) + i) % 4)
        await ctx.tick().repeat(2)
        return (ctx.get(dut.peek_seq), ctx.get(dut.peek_timestamp), ctx.get(dut.peek_ab),
                ctx.get(dut.peek_overrun))

    async def pop(ctx):
        ctx.set(dut.pop, 1)
        await ctx.tick()
        ctx.set(dut.pop, 0)

    async def bench(ctx):
        log["drops"] = [await push(ctx, s) for s in range(6)]
        log["level"] = ctx.get(dut.level)
        log["overruns"] = ctx.get(dut.overrun_count)
        log["ahead"] = [await peek(ctx, i) for i in range(4)]
        await pop(ctx)
        await pop(ctx)
        await push(ctx, 6)
        log["rest"] = []
        for _ in range(3):
            log["rest"].append(await peek(ctx, 0))
            await pop(ctx)
        log["empty"] = ctx.get(dut.level)
        await pop(ctx)
        log["empty_pop"] = (ctx.get(dut.level), ctx.get(dut.rd_ptr))
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
    assert [e[0] for e in log["ahead"]] == [0, 1, 2, 3], "read by address, ahead of pops"
    assert log["ahead"][1] == (1, 1001, 1, 0)
    # Event 6 is the first stored after the drops: it carries the overrun flag.
    assert log["rest"] == [(2, 1002, 2, 0), (3, 1003, 3, 0), (6, 1006, 2, 1)]
    assert log["empty"] == 0
    assert log["empty_pop"][0] == 0, "a pop of an empty FIFO does nothing"
    assert log["cleared"] == 0 and log["count_after_reset"] == 0
