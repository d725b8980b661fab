"""The snapshot RAM: in the clock cycle of every captured edge, slot ``seq mod depth`` takes
``{seq, live, counts[0..n)}``; a read returns a slot and whether it holds the edge asked for.

Valid bits are not stored: after a reset, a slot is valid for edge ``q`` when it holds ``q``
and ``q`` has been numbered since the reset (``q < next_seq``, or the numbers have wrapped).
A stale slot from before the reset cannot hold a number issued since without having been
written by that edge, so this equals FPGA.md's "written since the last reset" and needs no
clearing of the RAM.

A read (``read`` with ``read_slot``) shows the slot two cycles later (the RAM's register,
then one in the fabric) and holds it until the next read. ``valid`` compares it with
``asked`` through registers: it is right from the second cycle after ``asked`` last changed,
so no 32-bit comparison lies on the response path.
"""

from amaranth import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out


class SnapshotRam(wiring.Component):
    def __init__(self, n_channels, counter_bits, depth):
        if depth < 2 or depth & (depth - 1) or depth > 1 << 16:
            raise ValueError(f"snapshot depth {depth} is not a power of two in 2..65536")
        self.n_channels = n_channels
        self.counter_bits = counter_bits
        self.depth = depth
        self.slot_bits = (depth - 1).bit_length()
        super().__init__(
            {
                "write": In(1),
                "seq": In(32),
                "live": In(counter_bits),
                "counts": In(counter_bits).array(n_channels),
                "next_seq": In(32),
                "wrapped": In(1),
                "read": In(1),
                "read_slot": In(self.slot_bits),
                "asked": In(32),
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
        data = Signal(width)
        loaded = Signal()
        m.d.sync += loaded.eq(self.read)
        with m.If(loaded):
            m.d.sync += data.eq(rd.data)
        issued = Signal()
        low_match = Signal()
        high_match = Signal()
        m.d.sync += [
            issued.eq(self.wrapped | (self.asked < self.next_seq)),
            low_match.eq(data[:16] == self.asked[:16]),
            high_match.eq(data[16:32] == self.asked[16:]),
        ]
        m.d.comb += [
            wr.addr.eq(self.seq[: self.slot_bits]),
            wr.data.eq(Cat(self.seq, self.live, *self.counts)),
            wr.en.eq(self.write),
            rd.addr.eq(self.read_slot),
            rd.en.eq(self.read),
            Cat(self.slot_seq, self.slot_live, *self.slot_counts).eq(data),
            self.valid.eq(low_match & high_match & issued),
        ]
        return m
