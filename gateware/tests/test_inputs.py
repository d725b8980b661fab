"""Synchronisers, glitch filter, edge detector and pulse detectors."""

import pytest
from spi_host import run

from flyscan_gateware import contract as c
from flyscan_gateware.inputs import EncoderInputs, GlitchFilter, PulseInputs


@pytest.mark.parametrize("length", [0, 1, 4])
def test_encoder_edges_come_input_latency_plus_filter_late(length):
    dut = EncoderInputs(glitch_filter=length)
    seen = []

    async def bench(ctx):
        for cycle in range(40):
            if cycle == 5:
                ctx.set(dut.a, 1)
            if cycle == 20:  # A and B together: one edge carrying both
                ctx.set(dut.a, 0)
                ctx.set(dut.b, 1)
            if ctx.get(dut.edge):
                seen.append((cycle, ctx.get(dut.ab), ctx.get(dut.ab_prev)))
            await ctx.tick()

    run(dut, bench)
    lat = c.INPUT_LATENCY + length
    assert seen == [(5 + lat, 0b01, 0b00), (20 + lat, 0b10, 0b01)]


def test_glitch_filter_drops_short_pulses_and_keeps_long_ones():
    dut = GlitchFilter(1, 3)
    out = []

    async def bench(ctx):
        # 2-cycle glitch, then a 3-cycle level (exactly long enough).
        levels = [0] * 4 + [1] * 2 + [0] * 4 + [1] * 3 + [0] * 6
        for v in levels:
            ctx.set(dut.i, v)
            await ctx.tick()
            out.append(ctx.get(dut.o))

    run(dut, bench)
    assert out.count(1) == 3, out
    # The 3-cycle level starts in cycle 10 and passes at the end of cycle 12.
    assert out.index(1) == 12, out


def test_pulse_inputs_count_rising_edges_once():
    dut = PulseInputs(2)
    rises = []

    async def bench(ctx):
        pattern = [0b00, 0b01, 0b01, 0b01, 0b00, 0b11, 0b00, 0b10, 0b10, 0b00, 0, 0, 0]
        for cycle, v in enumerate(pattern):
            ctx.set(dut.det, v)
            await ctx.tick()
            if ctx.get(dut.rise):
                rises.append((cycle + 1, ctx.get(dut.rise)))

    run(dut, bench)
    # Set in cycle p, seen as a rise in cycle p + INPUT_LATENCY.
    lat = c.INPUT_LATENCY
    assert rises == [(1 + lat, 0b01), (5 + lat, 0b11), (7 + lat, 0b10)]


def test_gate_is_high_when_untouched():
    dut = PulseInputs(1)
    levels = []

    async def bench(ctx):
        for _ in range(4):
            await ctx.tick()
            levels.append(ctx.get(dut.gate_level))
        ctx.set(dut.gate, 0)
        await ctx.tick().repeat(3)
        levels.append(ctx.get(dut.gate_level))

    run(dut, bench)
    assert levels == [1, 1, 1, 1, 0]
