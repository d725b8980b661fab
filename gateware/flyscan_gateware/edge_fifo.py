"""The event FIFO (block RAM) with overrun accounting (FPGA.md §Overrun).

An event (an edge, a period event, or both in one cycle) is ``timestamp u64 | seq u32 | ab u2 |
overrun u1 | period u1 | period_start u1``. When an event arrives with the FIFO full it is
dropped: ``dropped`` strobes, ``overrun_count`` counts it, and the next event that is stored
carries the overrun flag.

Reading is by address, not by popping: a READ_EDGES sends the events at ``rd_ptr + i`` and pops
each once its slot has gone out, so the read port can look ahead of the pops. ``peek_*`` show
the event at ``peek_addr`` two cycles after the address was set (the RAM's own register, then
one in the fabric, which keeps the RAM's slow clock-to-out off the response path).
"""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

#: Bits of one stored event.
EVENT_BITS = 64 + 32 + 2 + 1 + 2


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
                "period": In(1),
                "period_start": In(1),
                "clear": In(1),
                "reset": In(1),
                "pop": In(1),
                "rd_ptr": Out(range(depth)),
                "peek_addr": In(range(depth)),
                "peek_timestamp": Out(64),
                "peek_seq": Out(32),
                "peek_ab": Out(2),
                "peek_overrun": Out(1),
                "peek_period": Out(1),
                "peek_period_start": Out(1),
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
        pending = Signal()
        full = self.level == self.depth
        # A clear in the same cycle makes room: the command acts before the edge.
        store = self.push & (~full | self.clear)
        drop = self.push & full & ~self.clear
        pop = self.pop & (self.level != 0) & ~self.clear
        peek = Signal(EVENT_BITS)
        m.d.sync += peek.eq(rd.data)
        m.d.comb += [
            wr.addr.eq(wr_ptr),
            wr.data.eq(
                Cat(
                    self.timestamp,
                    self.seq,
                    self.ab,
                    pending & ~(self.clear | self.reset),
                    self.period,
                    self.period_start,
                )
            ),
            wr.en.eq(store),
            rd.addr.eq(self.peek_addr),
            rd.en.eq(1),
            Cat(
                self.peek_timestamp,
                self.peek_seq,
                self.peek_ab,
                self.peek_overrun,
                self.peek_period,
                self.peek_period_start,
            ).eq(peek),
            self.dropped.eq(drop),
        ]
        m.d.sync += [
            wr_ptr.eq(wr_ptr + store),
            self.rd_ptr.eq(Mux(self.clear, wr_ptr, self.rd_ptr + pop)),
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
