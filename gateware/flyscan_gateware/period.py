"""The period timer (FPGA.md §Period timer): after a ``PERIOD`` write of P ≠ 0 executing in
cycle ``a``, ``start`` strobes in cycle ``a`` and ``fire`` in cycles ``a + k·P`` (k ≥ 1) until
``PERIOD`` is written again or a reset stops it. A write of 0 stops it after its own cycle (a
period event due in that cycle is still made); a write of P ≠ 0 while it runs starts it afresh
(``fire`` and ``start`` may then strobe in the same cycle: the design makes one event of them).

``fire`` is a register, so the FIFO and snapshot write enables it drives start from a flip-flop:
``remaining`` counts the cycles to the next period event and ``fire`` is set the cycle before it
is due. ``start`` is the AND of two registers of the command engine, the write strobe and
``nonzero`` (whether the value written is not 0, decoded as its last byte arrives), so no
32-bit comparison lies before those write enables either.
"""

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class PeriodTimer(wiring.Component):
    #: A ``PERIOD`` write executes in this cycle, with ``value``; ``nonzero``: ``value`` ≠ 0.
    write: In(1)
    value: In(32)
    nonzero: In(1)
    #: A counter reset (``CONTROL`` bit 1): stops the timer.
    reset: In(1)
    #: A period event k ≥ 1 falls in this cycle.
    fire: Out(1)
    #: The timer starts in this cycle (the start event, k = 0).
    start: Out(1)
    #: ``PERIOD`` as last written (0 after a reset).
    period: Out(32)

    def elaborate(self, platform):
        m = Module()
        running = Signal()
        # Cycles from the next one to the period event after it, while running.
        remaining = Signal(32)
        m.d.comb += self.start.eq(self.write & self.nonzero)
        with m.If(self.reset):
            m.d.sync += [running.eq(0), self.fire.eq(0), self.period.eq(0)]
        with m.Elif(self.write):
            m.d.sync += self.period.eq(self.value)
            with m.If(~self.nonzero):
                m.d.sync += [running.eq(0), self.fire.eq(0)]
            with m.Else():
                # As if `remaining` were P in the write's cycle: period 1 is P cycles on.
                m.d.sync += [
                    running.eq(1),
                    self.fire.eq(self.value == 1),
                    remaining.eq(Mux(self.value == 1, self.value, self.value - 1)),
                ]
        with m.Elif(running):
            m.d.sync += [
                self.fire.eq(remaining == 1),
                remaining.eq(Mux(remaining == 1, self.period, remaining - 1)),
            ]
        return m
