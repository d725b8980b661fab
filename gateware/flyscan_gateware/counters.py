"""The free-running 64-bit timestamp and the wrapping live-time and detector counters."""

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class Timestamp(wiring.Component):
    """Counts every clock cycle from ``init`` (0 on hardware: the device's uptime clock). Never
    reset while powered."""

    def __init__(self, init=0):
        self.init = init
        super().__init__({"value": Out(64, init=init)})

    def elaborate(self, platform):
        m = Module()
        # Two 32-bit halves, the upper one stepping when the lower one is all ones: the same
        # count as one 64-bit adder, without a 64-bit carry chain (25 ns on an iCE40).
        lo = self.value[:32]
        hi = self.value[32:]
        m.d.sync += lo.eq(lo + 1)
        with m.If(lo == 0xFFFF_FFFF):
            m.d.sync += hi.eq(hi + 1)
        return m


class Counters(wiring.Component):
    """The live-time counter (cycles with the gate high) and one counter per detector channel
    (count strobes), all ``counter_bits`` wide, wrapping.

    ``reset`` zeroes them such that the strobes and gate of the reset's own cycle count after
    it (FPGA.md §Reference gateware: a reset counts its own cycle afterwards).
    """

    def __init__(self, n_channels, counter_bits):
        self.n_channels = n_channels
        self.counter_bits = counter_bits
        super().__init__(
            {
                "rise": In(n_channels),
                "gate": In(1),
                "reset": In(1),
                "live": Out(counter_bits),
                "counts": Out(counter_bits).array(n_channels),
            }
        )

    def elaborate(self, platform):
        m = Module()
        with m.If(self.reset):
            m.d.sync += self.live.eq(self.gate)
        with m.Else():
            m.d.sync += self.live.eq(self.live + self.gate)
        for ch in range(self.n_channels):
            c = self.counts[ch]
            with m.If(self.reset):
                m.d.sync += c.eq(self.rise[ch])
            with m.Else():
                m.d.sync += c.eq(c + self.rise[ch])
        return m
