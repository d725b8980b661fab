"""The SPI target alone: bytes in, bytes out, CS_N aborting, and the SCLK limit."""

import pytest
from spi_host import SpiHost, run

from flyscan_gateware import contract as c
from flyscan_gateware.spi import SpiTarget


async def transaction_with_echo(ctx, dut, host, mosi, received):
    """Like SpiHost.transaction, but answers each received byte + 1 on the next byte."""
    ctx.set(dut.cs_n, 0)
    await ctx.tick().repeat(2)
    out = []
    for i in range(8 * len(mosi)):
        if i % 8 == 0:
            out.append(0)
        ctx.set(dut.mosi, mosi[i // 8] >> (7 - i % 8) & 1)
        for _ in range(host.low):
            await step(ctx, dut, received)
        ctx.set(dut.sclk, 1)
        out[-1] = out[-1] << 1 | ctx.get(dut.miso)
        for _ in range(host.half):
            await step(ctx, dut, received)
        ctx.set(dut.sclk, 0)
    for _ in range(3):
        await step(ctx, dut, received)
    ctx.set(dut.cs_n, 1)
    for _ in range(4):
        await step(ctx, dut, received)
    return bytes(out)


async def step(ctx, dut, received):
    if ctx.get(dut.rx_done):
        received.append((ctx.get(dut.rx_index), ctx.get(dut.rx_byte)))
        ctx.set(dut.tx_byte, (ctx.get(dut.rx_byte) + 1) & 0xFF)
    await ctx.tick()


@pytest.mark.parametrize("clocks_per_sclk", [6, c.MIN_CLOCKS_PER_SCLK, 10, 17])
def test_bytes_in_and_out(clocks_per_sclk):
    dut = SpiTarget()
    host = SpiHost(dut, clocks_per_sclk)
    got, received = [], []

    async def bench(ctx):
        got.append(await transaction_with_echo(ctx, dut, host, bytes([0xA5, 0x3C, 0xFF, 0x00]), received))
        got.append(await transaction_with_echo(ctx, dut, host, bytes([0x10]), received))

    run(dut, bench)
    assert received == [(0, 0xA5), (1, 0x3C), (2, 0xFF), (3, 0x00), (0, 0x10)]
    # Byte k answers byte k-1 + 1; the first byte of a transaction reads 00.
    assert got == [bytes([0x00, 0xA6, 0x3D, 0x00]), bytes([0x00])]


def test_too_fast_a_clock_breaks_the_response():
    """The limit is real. In simulation MISO is ready exactly in time at 6 clocks per SCLK
    (zero margin: pad delays and the host's setup time would break it, hence the documented
    MIN_CLOCKS_PER_SCLK = 8) and too late at 5."""
    dut = SpiTarget()
    host = SpiHost(dut, 5)
    got, received = [], []

    async def bench(ctx):
        got.append(await transaction_with_echo(ctx, dut, host, bytes([0xA5, 0x3C]), received))

    run(dut, bench)
    assert got[0] != bytes([0x00, 0xA6])
