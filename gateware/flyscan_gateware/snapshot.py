"""The snapshot RAM: in the clock cycle of every captured edge, slot ``seq mod depth`` takes
``{seq, live, counts[0..n)}``; a read returns a slot and whether it holds the edge asked for.

Valid bits are not stored: after a reset, a slot is valid for edge ``q`` when it holds ``q``
and ``q`` has been numbered since the reset (``q < next_seq``, or the numbers have wrapped).
A stale slot from before the reset cannot hold a number issued since without having been
written by that edge, so this equals FPGA.md's "written since the last reset" and needs no
clearing of the RAM.
"""

from amaranth import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out


class SnapshotRam(wiring.Component):
    def __init__(self, n_channels, counter_bits, depth):
        if depth < 2 or depth & (depth - 1):
            raise ValueError(f"snapshot depth {depth} is not a power of two ≥ 2")
        self.n_channels = n_channels
        self.counter_bits = counter_bits
        self.depth = depth
        super().__init__(
            {
                "write": In(1),
                "seq": In(32),
                "live": In(counter_bits),
                "counts": In(counter_bits).array(n_channels),
                "next_seq": In(32),
                "wrapped": In(1),
                "read": In(1),
                "read_seq": In(32),
                # From the cycle after `read` until the next one:
                "valid": Out(1),
                "slot_seq": Out(32),
                "slot_live": Out(counter_bits),
                "slot_counts": Out(counter_bits).array(n_channels),
            }
        )

    def elaborate(self, platform):
        m = Module()
        width = 32 + self.counter_bits * (1 + self.n_channels)
        m.submodules.mem = mem = Memory(shape=width, depth=self.depth, init=[])
        wr = mem.write_port()
        rd = mem.read_port()
        abits = (self.depth - 1).bit_length()
        m.d.comb += [
            wr.addr.eq(self.seq[:abits]),
            wr.data.eq(Cat(self.seq, self.live, *self.counts)),
            wr.en.eq(self.write),
            rd.addr.eq(self.read_seq[:abits]),
            rd.en.eq(self.read),
            Cat(self.slot_seq, self.slot_live, *self.slot_counts).eq(rd.data),
        ]
        asked = Signal(32)
        with m.If(self.read):
            m.d.sync += asked.eq(self.read_seq)
        m.d.comb += self.valid.eq(
            (self.slot_seq == asked) & (self.wrapped | (asked < self.next_seq))
        )
        return m
