"""Boards: pin constraints, clock generation and the top level that puts the core on them.

* ``ulx3s-25f``: Radiona ULX3S with an LFE5U-25F (CABGA381). 25 MHz oscillator → PLL →
  100 MHz sampling clock. Signals on the GPIO headers (GP/GN numbers as printed on the board);
  up to 32 detector channels.
* ``icebreaker``: 1BitSquared iCEBreaker with an iCE40UP5K (SG48). 12 MHz oscillator → PLL →
  36 MHz sampling clock (the UP5K places this design at 42–45 MHz). Signals on PMOD1A (encoder, gate, SPI, DRDY) and PMOD1B (8 detector
  channels).

``docs/wiring.md`` is the prose version of these tables (and what to put between the pins and
an encoder or a detector); ``tests/test_boards.py`` checks the two agree.
"""

from amaranth import ClockDomain, ClockSignal, Instance, Module, Signal
from amaranth.build import Attrs, Clock, Pins, PinsN, Resource
from amaranth.lib import io, wiring
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.vendor import LatticeECP5Platform, LatticeICE40Platform

from .core import FlyscanCore


def _ulx3s_gpio(name):
    """FPGA ball of a ULX3S GPIO header pin, e.g. 'GP4' or 'GN19'."""
    balls = {
        0: ("B11", "C11"), 1: ("A10", "A11"), 2: ("A9", "B10"), 3: ("B9", "C10"),
        4: ("A7", "A8"), 5: ("C8", "B8"), 6: ("C6", "C7"), 7: ("A6", "B6"),
        8: ("A4", "A5"), 9: ("A2", "B1"), 10: ("C4", "B4"), 11: ("F4", "E3"),
        12: ("G3", "F3"), 13: ("H4", "G5"), 14: ("U18", "U17"), 15: ("N17", "P16"),
        16: ("N16", "M17"), 17: ("L16", "L17"), 18: ("H18", "H17"), 19: ("F17", "G18"),
        20: ("D18", "E17"), 21: ("C18", "D17"), 22: ("B15", "C15"), 23: ("B17", "C17"),
        24: ("C16", "D16"), 25: ("D14", "E14"), 26: ("B13", "C13"), 27: ("D13", "E13"),
    }
    return balls[int(name[2:])][0 if name[1] == "P" else 1]


#: Signal → header pin, per board (docs/wiring.md has the same tables).
ULX3S_PINS = {
    "enc_a": "GP0",
    "enc_b": "GN0",
    "gate": "GP1",
    "drdy": "GN1",
    "sclk": "GP2",
    "mosi": "GN2",
    "miso": "GP3",
    "cs_n": "GN3",
    # det[0..32): GP4, GN4, GP5, GN5, ... GP19, GN19
    **{f"det{ch}": f"G{'P' if ch % 2 == 0 else 'N'}{4 + ch // 2}" for ch in range(32)},
}

ICEBREAKER_PINS = {
    # PMOD1A pins 1-4 and 7-10 (pins 5/11 GND, 6/12 3.3 V), then PMOD1B pins 1-4, 7-10.
    "enc_a": ("PMOD1A", 1, "4"),
    "enc_b": ("PMOD1A", 2, "2"),
    "gate": ("PMOD1A", 3, "47"),
    "drdy": ("PMOD1A", 4, "45"),
    "sclk": ("PMOD1A", 7, "3"),
    "mosi": ("PMOD1A", 8, "48"),
    "miso": ("PMOD1A", 9, "46"),
    "cs_n": ("PMOD1A", 10, "44"),
    "det0": ("PMOD1B", 1, "43"),
    "det1": ("PMOD1B", 2, "38"),
    "det2": ("PMOD1B", 3, "34"),
    "det3": ("PMOD1B", 4, "31"),
    "det4": ("PMOD1B", 7, "42"),
    "det5": ("PMOD1B", 8, "36"),
    "det6": ("PMOD1B", 9, "32"),
    "det7": ("PMOD1B", 10, "28"),
}

_DIRS = {"enc_a": "i", "enc_b": "i", "gate": "i", "drdy": "o", "sclk": "i", "mosi": "i",
         "miso": "io", "cs_n": "i"}


class Ulx3s25fPlatform(LatticeECP5Platform):
    device = "LFE5U-25F"
    package = "BG381"
    speed = "6"
    clock_hz = 100_000_000
    max_channels = 32
    resources = [
        Resource("clk25", 0, Pins("G2", dir="i"), Clock(25e6), Attrs(IO_TYPE="LVCMOS33")),
        *[Resource("led", i, Pins(ball, dir="o"), Attrs(IO_TYPE="LVCMOS33", DRIVE="4"))
          for i, ball in enumerate("B2 C2 C1 D2 D1 E2 E1 H3".split())],
    ] + [
        Resource(sig, 0, Pins(_ulx3s_gpio(pin), dir=_DIRS.get(sig, "i")),
                 Attrs(IO_TYPE="LVCMOS33", PULLMODE="UP" if sig in ("cs_n", "gate") else "NONE"))
        for sig, pin in ULX3S_PINS.items()
    ]
    connectors = []


class IceBreakerPlatform(LatticeICE40Platform):
    device = "iCE40UP5K"
    package = "SG48"
    clock_hz = 36_000_000
    max_channels = 8
    resources = [
        Resource("clk12", 0, Pins("35", dir="i"), Clock(12e6),
                 Attrs(GLOBAL=True, IO_STANDARD="SB_LVCMOS")),
        Resource("led_r", 0, PinsN("11", dir="o"), Attrs(IO_STANDARD="SB_LVCMOS")),
        Resource("led_g", 0, PinsN("37", dir="o"), Attrs(IO_STANDARD="SB_LVCMOS")),
    ] + [
        Resource(sig, 0, Pins(pin, dir=_DIRS.get(sig, "i")),
                 Attrs(IO_STANDARD="SB_LVCMOS", **({"PULLUP": 1} if sig in ("cs_n", "gate") else {})))
        for sig, (_, _, pin) in ICEBREAKER_PINS.items()
    ]
    connectors = []


BOARDS = {"ulx3s-25f": Ulx3s25fPlatform, "icebreaker": IceBreakerPlatform}


def _buffer(m, platform, name, direction, number=0):
    """An I/O buffer on a board pin; returns its input (``"i"``) or output (``"o"``) signal."""
    buf = io.Buffer(direction, platform.request(name, number, dir="-"))
    m.submodules[f"{name}{number}_buf"] = buf
    return buf.i if direction == "i" else buf.o


class BoardTop(wiring.Component):
    """The core on a board: PLL, reset until lock, pins, and status LEDs (capture on, data
    ready, overrun seen since power-up)."""

    def __init__(self, core_args):
        self.core_args = core_args
        super().__init__({})

    def elaborate(self, platform):
        n = self.core_args["n_channels"]
        if n > platform.max_channels:
            raise ValueError(f"{type(platform).__name__} has pins for {platform.max_channels} channels")
        m = Module()
        m.domains.sync = ClockDomain()
        locked = Signal()
        clk_out = Signal()
        m.d.comb += ClockSignal("sync").eq(clk_out)
        if isinstance(platform, LatticeECP5Platform):
            clk = _buffer(m, platform, "clk25", "i")
            # 25 MHz x 4 / 6 x ... : VCO 600 MHz, CLKOP 100 MHz (ecppll -i 25 -o 100).
            m.submodules.pll = Instance(
                "EHXPLLL",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA",
                p_CLKI_DIV=1, p_CLKFB_DIV=4, p_CLKOP_DIV=6, p_CLKOP_CPHASE=2,
                p_CLKOP_FPHASE=0, p_CLKOP_ENABLE="ENABLED", p_FEEDBK_PATH="CLKOP",
                i_CLKI=clk, i_CLKFB=clk_out, i_RST=0, i_STDBY=0,
                i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1,
                i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0,
                o_CLKOP=clk_out, o_LOCK=locked,
            )
            leds = [_buffer(m, platform, "led", "o", i) for i in range(8)]
            status = {"capture": leds[0], "drdy": leds[1], "overrun": leds[2], "lock": leds[7]}
        else:
            # The oscillator pin feeds the PLL directly (it cannot also go through an input buffer).
            clk = platform.request("clk12", 0, dir="-")
            # 12 MHz → 36 MHz (icepll -i 12 -o 36: DIVR 0, DIVF 47, DIVQ 4, FILTER_RANGE 1).
            m.submodules.pll = Instance(
                "SB_PLL40_PAD",
                p_FEEDBACK_PATH="SIMPLE", p_DIVR=0, p_DIVF=47, p_DIVQ=4, p_FILTER_RANGE=1,
                io_PACKAGEPIN=clk.io, i_RESETB=1, i_BYPASS=0,
                o_PLLOUTGLOBAL=clk_out, o_LOCK=locked,
            )
            status = {"capture": _buffer(m, platform, "led_g", "o"),
                      "overrun": _buffer(m, platform, "led_r", "o")}
        if not isinstance(platform, LatticeECP5Platform):
            # nextpnr-ecp5 derives the PLL output's frequency itself.
            platform.add_clock_constraint(clk_out, platform.clock_hz)
        m.submodules.reset = ResetSynchronizer(~locked, domain="sync")

        m.submodules.core = core = FlyscanCore(clock_hz=platform.clock_hz, **self.core_args)
        m.submodules.miso_buf = miso = io.Buffer("io", platform.request("miso", 0, dir="-"))
        m.d.comb += [
            core.enc_a.eq(_buffer(m, platform, "enc_a", "i")),
            core.enc_b.eq(_buffer(m, platform, "enc_b", "i")),
            core.gate.eq(_buffer(m, platform, "gate", "i")),
            core.sclk.eq(_buffer(m, platform, "sclk", "i")),
            core.mosi.eq(_buffer(m, platform, "mosi", "i")),
            core.cs_n.eq(_buffer(m, platform, "cs_n", "i")),
            miso.o.eq(core.miso),
            miso.oe.eq(core.miso_oe),
            _buffer(m, platform, "drdy", "o").eq(core.drdy),
        ]
        for ch in range(n):
            m.d.comb += core.det[ch].eq(_buffer(m, platform, f"det{ch}", "i"))
        overrun_seen = Signal()
        with m.If(core.dropped):
            m.d.sync += overrun_seen.eq(1)
        m.d.comb += [status["capture"].eq(core.capture), status["overrun"].eq(overrun_seen)]
        if "drdy" in status:
            m.d.comb += status["drdy"].eq(core.drdy)
        if "lock" in status:
            m.d.comb += status["lock"].eq(locked)
        return m
