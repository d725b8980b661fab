"""The edge event FIFO (block RAM) with overrun accounting (FPGA.md §Overrun).

An event is ``timestamp u64 | seq u32 | ab u2 | overrun u1``. When an edge arrives with the FIFO
full the event is dropped: ``dropped`` strobes, ``overrun_count`` counts it, and the next event
that is stored carries the overrun flag. ``head`` is the oldest event; it is valid from the
cycle after the head last changed (a pop, a clear, or a push into an empty FIFO plus one).
"""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

#: Bits of one stored event.
EVENT_BITS = 64 + 32 + 2 + 1


class EdgeFifo(wiring.Component):
    def __init__(self, depth):
        if depth < 2 or depth & (depth - 1):
            raise ValueError(f"edge FIFO depth {depth} is not a power of two ≥ 2")
        self.depth = depth
        super().__init__(
            {
                "push": In(1),
                "timestamp": In(64),
                "seq": In(32),
                "ab": In(2),
                "clear": In(1),
                "reset": In(1),
                "pop": In(1),
                "head_timestamp": Out(64),
                "head_seq": Out(32),
                "head_ab": Out(2),
                "head_overrun": Out(1),
                "level": Out(range(depth + 1)),
                "dropped": Out(1),
                "overrun_count": Out(32),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=EVENT_BITS, depth=self.depth, init=[])
        wr = mem.write_port()
        rd = mem.read_port()
        wr_ptr = Signal(range(self.depth))
        rd_ptr = Signal(range(self.depth))
        pending = Signal()
        full = self.level == self.depth
        # A clear in the same cycle makes room: the command acts before the edge.
        store = self.push & (~full | self.clear)
        drop = self.push & full & ~self.clear
        pop = self.pop & (self.level != 0) & ~self.clear
        m.d.comb += [
            wr.addr.eq(wr_ptr),
            wr.data.eq(
                Cat(self.timestamp, self.seq, self.ab, pending & ~(self.clear | self.reset))
            ),
            wr.en.eq(store),
            # Read ahead: the address of next cycle's head, so `head` follows a pop at once.
            rd.addr.eq(Mux(self.clear, wr_ptr, rd_ptr + pop)),
            rd.en.eq(1),
            Cat(self.head_timestamp, self.head_seq, self.head_ab, self.head_overrun).eq(
                rd.data
            ),
            self.dropped.eq(drop),
        ]
        m.d.sync += [
            wr_ptr.eq(wr_ptr + store),
            rd_ptr.eq(rd.addr),
        ]
        with m.If(self.clear):
            m.d.sync += self.level.eq(store)
        with m.Else():
            m.d.sync += self.level.eq(self.level + store - pop)
        with m.If(self.reset | self.clear):
            m.d.sync += pending.eq(0)
        with m.Elif(drop):
            m.d.sync += pending.eq(1)
        with m.Elif(store):
            m.d.sync += pending.eq(0)
        with m.If(self.reset):
            m.d.sync += self.overrun_count.eq(0)
        with m.Elif(drop):
            m.d.sync += self.overrun_count.eq(self.overrun_count + 1)
        return m
