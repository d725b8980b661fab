"""The period timer alone, cycle by cycle (FPGA.md §Period timer)."""

from spi_host import run

from flyscan_gateware.period import PeriodTimer


def test_start_periods_stop_restart_and_reset():
    dut = PeriodTimer()
    seen = []  # (cycle, "start" | "fire" | "both")

    async def bench(ctx):
        async def cycle(n, write=None, reset=False):
            # `n` cycles; a write or reset strobes in the first of them.
            for i in range(n):
                if i == 0 and write is not None:
                    ctx.set(dut.write, 1)
                    ctx.set(dut.value, write)
                    ctx.set(dut.nonzero, write != 0)
                if i == 0 and reset:
                    ctx.set(dut.reset, 1)
                start, fire = ctx.get(dut.start), ctx.get(dut.fire)
                if start or fire:
                    seen.append((cycle.now, "both" if start and fire else
                                 "start" if start else "fire"))
                await ctx.tick()
                ctx.set(dut.write, 0)
                ctx.set(dut.reset, 0)
                cycle.now += 1
        cycle.now = 0

        await cycle(2)
        await cycle(10, write=3)        # start at 2: periods at 5, 8, 11
        assert ctx.get(dut.period) == 3
        await cycle(3, write=0)         # stop at 12: nothing after it
        await cycle(5)
        await cycle(1, write=1)         # period 1 at 20: every cycle from 21
        await cycle(3)
        await cycle(6, write=4)         # restart at 24 on period 1's event at 24
        await cycle(3, reset=True)      # the reset at 30: the event of 28 was the last
        assert ctx.get(dut.period) == 0
        await cycle(8)

    run(dut, bench)
    assert seen == [
        (2, "start"), (5, "fire"), (8, "fire"), (11, "fire"),
        (20, "start"), (21, "fire"), (22, "fire"), (23, "fire"), (24, "both"),
        (28, "fire"),
    ]


def test_a_stop_on_a_period_events_cycle_keeps_that_event():
    dut = PeriodTimer()
    seen = []

    async def bench(ctx):
        ctx.set(dut.write, 1)
        ctx.set(dut.value, 4)
        ctx.set(dut.nonzero, 1)
        await ctx.tick()
        ctx.set(dut.write, 0)
        for t in range(1, 20):
            if t == 8:  # period 2 is due in this cycle
                ctx.set(dut.write, 1)
                ctx.set(dut.value, 0)
                ctx.set(dut.nonzero, 0)
            if ctx.get(dut.fire):
                seen.append(t)
            await ctx.tick()
            ctx.set(dut.write, 0)

    run(dut, bench)
    assert seen == [4, 8]
