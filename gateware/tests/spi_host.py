"""A mode-0 SPI host for Amaranth testbenches, clocking SCLK at ``clocks_per_sclk`` sampling
clocks per period and sampling MISO in the cycle it raises SCLK (as a real host does)."""

from amaranth.sim import Simulator


class SpiHost:
    def __init__(self, dut, clocks_per_sclk=8):
        self.dut = dut
        self.half = clocks_per_sclk // 2
        self.low = clocks_per_sclk - self.half

    async def transaction(self, ctx, mosi, stop_after_bits=None):
        """Clocks ``mosi`` out in one CS_N period; returns the MISO bytes. With
        ``stop_after_bits``, CS_N rises after that many bits (an aborted transaction)."""
        d = self.dut
        ctx.set(d.cs_n, 0)
        await ctx.tick().repeat(2)
        bits = 8 * len(mosi) if stop_after_bits is None else stop_after_bits
        got = []
        for i in range(bits):
            if i % 8 == 0:
                got.append(0)
            ctx.set(d.mosi, mosi[i // 8] >> (7 - i % 8) & 1)
            await ctx.tick().repeat(self.low)
            ctx.set(d.sclk, 1)
            got[-1] = got[-1] << 1 | ctx.get(d.miso)
            await ctx.tick().repeat(self.half)
            ctx.set(d.sclk, 0)
        await ctx.tick().repeat(2)
        ctx.set(d.cs_n, 1)
        await ctx.tick().repeat(4)
        return bytes(got)

    async def read_reg(self, ctx, addr):
        r = await self.transaction(ctx, bytes([0x01, addr, 0, 0, 0, 0]))
        return int.from_bytes(r[2:], "little")

    async def write_reg(self, ctx, addr, value):
        await self.transaction(ctx, bytes([0x02, addr]) + value.to_bytes(4, "little"))


def run(dut, bench, *, vcd=None):
    """Runs one testbench coroutine on ``dut`` with a 100 MHz clock."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
