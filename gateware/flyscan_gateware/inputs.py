"""Input conditioning: two-flip-flop synchronisers, the A/B glitch filter, the A/B edge
detector and the detector pulse (rising edge) detectors.

Every input is asynchronous to the sampling clock, so each passes two flip-flops before any
logic looks at it (``contract.INPUT_LATENCY`` cycles). A and B may additionally be glitch
filtered; the filter has the same delay for both, so it does not reorder edges.
"""

from amaranth import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out


class GlitchFilter(wiring.Component):
    """Passes a level on once it has been stable for ``length`` cycles (0: no filter).

    Delay: ``length`` cycles for every change. A pulse shorter than ``length`` cycles is
    dropped.
    """

    def __init__(self, width, length):
        if length < 0:
            raise ValueError(f"glitch filter length {length} < 0")
        self.length = length
        super().__init__({"i": In(width), "o": Out(width)})

    def elaborate(self, platform):
        m = Module()
        if self.length == 0:
            m.d.comb += self.o.eq(self.i)
            return m
        width = len(self.i)
        out = Signal(width)
        m.d.comb += self.o.eq(out)
        for bit in range(width):
            count = Signal(range(self.length), name=f"count{bit}")
            with m.If(self.i[bit] == out[bit]):
                m.d.sync += count.eq(0)
            with m.Elif(count == self.length - 1):
                m.d.sync += [out[bit].eq(self.i[bit]), count.eq(0)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        return m


class EncoderInputs(wiring.Component):
    """A/B pins → synchronised, filtered levels and an edge strobe.

    ``edge`` is high in the cycle the filtered (A, B) differs from its value in the previous
    cycle; ``ab`` carries the new levels then. ``ab_prev`` is the levels as they stood at the
    start of the current cycle (what ``AB_NOW`` reads).
    """

    a: In(1)
    b: In(1)
    ab: Out(2)
    ab_prev: Out(2)
    edge: Out(1)

    def __init__(self, glitch_filter=0):
        self.glitch_filter = glitch_filter
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        raw = Signal(2)
        synced = Signal(2)
        m.d.comb += raw.eq(Cat(self.a, self.b))
        m.submodules.sync = FFSynchronizer(raw, synced, stages=2)
        m.submodules.filter = filt = GlitchFilter(2, self.glitch_filter)
        m.d.comb += filt.i.eq(synced)
        prev = Signal(2)
        m.d.sync += prev.eq(filt.o)
        m.d.comb += [
            self.ab.eq(filt.o),
            self.ab_prev.eq(prev),
            self.edge.eq(filt.o != prev),
        ]
        return m


class PulseInputs(wiring.Component):
    """Detector pins and the gate → one-cycle count strobes per rising edge, and the
    synchronised gate level."""

    def __init__(self, n_channels):
        self.n_channels = n_channels
        super().__init__(
            {
                "det": In(n_channels),
                # Tied high when the board has no gate input.
                "gate": In(1, init=1),
                "rise": Out(n_channels),
                "gate_level": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        det = Signal(self.n_channels)
        m.submodules.det_sync = FFSynchronizer(self.det, det, stages=2)
        prev = Signal(self.n_channels)
        m.d.sync += prev.eq(det)
        m.d.comb += self.rise.eq(det & ~prev)
        m.submodules.gate_sync = FFSynchronizer(self.gate, self.gate_level, stages=2, init=1)
        return m
