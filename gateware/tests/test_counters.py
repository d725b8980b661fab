"""Timestamp and counters."""

from spi_host import run

from flyscan_gateware.counters import Counters, Timestamp


def test_timestamp_carries_into_the_upper_word():
    dut = Timestamp(init=(1 << 32) - 2)
    seen = []

    async def bench(ctx):
        for _ in range(4):
            seen.append(ctx.get(dut.value))
            await ctx.tick()

    run(dut, bench)
    assert seen == [(1 << 32) - 2, (1 << 32) - 1, 1 << 32, (1 << 32) + 1]


def test_counters_wrap_and_reset_counts_its_own_cycle():
    dut = Counters(2, 8)
    out = {}

    async def bench(ctx):
        ctx.set(dut.gate, 1)
        for _ in range(300):
            ctx.set(dut.rise, 0b01)
            await ctx.tick()
        ctx.set(dut.rise, 0)
        out["wrapped"] = (ctx.get(dut.live), ctx.get(dut.counts[0]), ctx.get(dut.counts[1]))
        # Reset with a strobe on channel 1 and the gate high in the same cycle.
        ctx.set(dut.reset, 1)
        ctx.set(dut.rise, 0b10)
        await ctx.tick()
        ctx.set(dut.reset, 0)
        ctx.set(dut.rise, 0)
        out["after_reset"] = (ctx.get(dut.live), ctx.get(dut.counts[0]), ctx.get(dut.counts[1]))
        ctx.set(dut.gate, 0)
        await ctx.tick().repeat(5)
        out["gated"] = ctx.get(dut.live)

    run(dut, bench)
    assert out["wrapped"] == (300 % 256, 300 % 256, 0)
    assert out["after_reset"] == (1, 0, 1)
    assert out["gated"] == 1
