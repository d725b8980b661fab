"""The whole FPGA of FPGA.md: inputs, counters, edge FIFO, snapshot RAM, the SPI target and
the command engine with the register map.

Parameters are those of the read-only registers (``n_channels``, ``counter_bits``,
``fifo_depth``, ``snapshot_depth``, ``clock_hz``), the A/B glitch filter length, and
``time_origin``, the timestamp's power-up value (0 on hardware; tests start near a carry into
the upper word).
"""

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from . import contract as c
from .counters import Counters, Timestamp
from .edge_fifo import EdgeFifo
from .inputs import EncoderInputs, PulseInputs
from .period import PeriodTimer
from .snapshot import SnapshotRam
from .spi import SpiTarget


class Response(enum.Enum, shape=2):
    """What the bytes after a header carry."""

    NONE = 0
    REG = 1
    EDGES = 2
    SNAPSHOT = 3


class FlyscanCore(wiring.Component):
    def __init__(
        self,
        n_channels=8,
        counter_bits=32,
        fifo_depth=4096,
        snapshot_depth=4096,
        clock_hz=100_000_000,
        glitch_filter=0,
        time_origin=0,
    ):
        if not 1 <= n_channels <= c.MAX_N_CHANNELS:
            raise ValueError(f"n_channels {n_channels} outside 1..{c.MAX_N_CHANNELS}")
        if not c.MIN_COUNTER_BITS <= counter_bits <= c.MAX_COUNTER_BITS:
            raise ValueError(f"counter_bits {counter_bits} outside 8..32")
        if not 0 < clock_hz < 1 << 32:
            raise ValueError(f"clock_hz {clock_hz} does not fit the CLOCK_HZ register")
        self.n_channels = n_channels
        self.counter_bits = counter_bits
        self.fifo_depth = fifo_depth
        self.snapshot_depth = snapshot_depth
        self.clock_hz = clock_hz
        self.glitch_filter = glitch_filter
        self.time_origin = time_origin
        super().__init__(
            {
                "enc_a": In(1),
                "enc_b": In(1),
                "det": In(n_channels),
                "gate": In(1, init=1),
                "sclk": In(1),
                "cs_n": In(1, init=1),
                "mosi": In(1),
                "miso": Out(1),
                # MISO output enable: drive MISO only while selected (a shared SPI bus).
                "miso_oe": Out(1),
                "drdy": Out(1),
                # For LEDs and the RTL bridge's statistics.
                "capture": Out(1),
                "dropped": Out(1),
            }
        )

    @property
    def input_latency(self):
        """Cycles from an A/B pin change to the edge it makes."""
        return c.INPUT_LATENCY + self.glitch_filter

    def elaborate(self, platform):
        m = Module()
        n, cb = self.n_channels, self.counter_bits
        m.submodules.enc = enc = EncoderInputs(self.glitch_filter)
        m.submodules.pulses = pulses = PulseInputs(n)
        m.submodules.ts = ts = Timestamp(self.time_origin)
        m.submodules.counters = cnt = Counters(n, cb)
        m.submodules.fifo = fifo = EdgeFifo(self.fifo_depth)
        m.submodules.snap = snap = SnapshotRam(n, cb, self.snapshot_depth)
        m.submodules.spi = spi = SpiTarget()
        m.submodules.timer = timer = PeriodTimer()
        m.d.comb += [
            enc.a.eq(self.enc_a),
            enc.b.eq(self.enc_b),
            pulses.det.eq(self.det),
            pulses.gate.eq(self.gate),
            spi.sclk.eq(self.sclk),
            spi.cs_n.eq(self.cs_n),
            spi.mosi.eq(self.mosi),
            self.miso.eq(spi.miso),
            self.miso_oe.eq(spi.active),
        ]

        # ---- command decode ----
        # The header's bytes are kept as they arrive; when the last one is in, the command's
        # strobe is registered and it executes in the next cycle (SPI_EXEC_LATENCY = 2 + 1),
        # from registers only, so the decode does not lengthen any path.
        hdr = Array(Signal(8, name=f"hdr{i}") for i in range(6))
        with m.If(spi.rx_done & (spi.rx_index < 6)):
            m.d.sync += hdr[spi.rx_index].eq(spi.rx_byte)
        cmd = hdr[0]

        def complete(command):
            last = c.HEADER_LEN[command] - 1
            return spi.rx_done & (spi.rx_index == last) & (cmd == command)

        read_reg = Signal()
        read_edges = Signal()
        read_snapshot = Signal()
        m.d.sync += [
            read_reg.eq(complete(c.CMD_READ_REG)),
            read_edges.eq(complete(c.CMD_READ_EDGES)),
            read_snapshot.eq(complete(c.CMD_READ_SNAPSHOT)),
        ]
        addr = hdr[1]
        # A CONTROL write's address and low value byte are in before its header completes,
        # so its effects come straight from registers (they fan out to every counter).
        write_control = Signal()
        control = Signal(3)
        do_reset = Signal()
        do_clear = Signal()
        writes_control = complete(c.CMD_WRITE_REG) & (hdr[1] == c.REG_CONTROL)
        m.d.sync += [
            write_control.eq(writes_control),
            control.eq(hdr[2][:3]),
            do_reset.eq(writes_control & hdr[2][1]),
            do_clear.eq(writes_control & hdr[2][2]),
        ]
        # A PERIOD write: its last value byte is the one arriving, the others are in; whether
        # it is 0 is decoded here too, so the timer's start comes straight from registers.
        write_period = Signal()
        period_value = Signal(32)
        period_nonzero = Signal()
        incoming = Cat(hdr[2], hdr[3], hdr[4], spi.rx_byte)
        m.d.sync += [
            write_period.eq(complete(c.CMD_WRITE_REG) & (hdr[1] == c.REG_PERIOD)),
            period_value.eq(incoming),
            period_nonzero.eq(incoming.any()),
        ]
        m.d.comb += [
            timer.write.eq(write_period),
            timer.value.eq(period_value),
            timer.nonzero.eq(period_nonzero),
            timer.reset.eq(do_reset),
        ]

        # ---- capture: sequence numbers, FIFO, snapshots ----
        # One event per cycle: an edge, a period event (its start included), or both.
        enable = Signal()
        seq = Signal(32)
        wrapped = Signal()
        period_event = timer.fire | timer.start
        capture = (enc.edge | period_event) & enable
        with m.If(write_control):
            m.d.sync += enable.eq(control[0])
        with m.If(do_reset):
            m.d.sync += [seq.eq(0), wrapped.eq(0)]
        with m.Elif(capture):
            m.d.sync += seq.eq(seq + 1)
            with m.If(seq == 0xFFFF_FFFF):
                m.d.sync += wrapped.eq(1)
        m.d.comb += [
            cnt.rise.eq(pulses.rise),
            cnt.gate.eq(pulses.gate_level),
            cnt.reset.eq(do_reset),
            fifo.push.eq(capture),
            fifo.timestamp.eq(ts.value),
            fifo.seq.eq(seq),
            fifo.ab.eq(enc.ab),
            fifo.period.eq(period_event),
            fifo.period_start.eq(timer.start),
            fifo.clear.eq(do_clear),
            fifo.reset.eq(do_reset),
            snap.write.eq(capture),
            snap.seq.eq(seq),
            snap.live.eq(cnt.live),
            snap.next_seq.eq(seq),
            snap.wrapped.eq(wrapped),
            # The slot (seq mod depth ≤ 65536) is known from the header's second and third
            # bytes: the RAM is read a byte before the header completes, so the slot and its
            # comparison with the seq asked for are registered by the first response byte.
            snap.read.eq(
                spi.rx_done & (spi.rx_index == 3) & (cmd == c.CMD_READ_SNAPSHOT)
            ),
            snap.read_slot.eq(Cat(hdr[1], hdr[2])),
            snap.asked.eq(Cat(hdr[1], hdr[2], hdr[3], hdr[4])),
            self.drdy.eq(fifo.level != 0),
            self.capture.eq(enable),
            self.dropped.eq(fifo.dropped),
        ]
        for ch in range(n):
            m.d.comb += snap.counts[ch].eq(cnt.counts[ch])

        # ---- register reads ----
        status_overrun = Signal()
        time_hi = Signal(32)
        regs = {
            c.REG_ID: Const(c.ID_MAGIC, 32),
            c.REG_VERSION: Const(c.VERSION, 32),
            c.REG_CLOCK_HZ: Const(self.clock_hz, 32),
            c.REG_N_CHANNELS: Const(n, 32),
            c.REG_COUNTER_BITS: Const(cb, 32),
            c.REG_EDGE_FIFO_DEPTH: Const(self.fifo_depth, 32),
            c.REG_SNAPSHOT_DEPTH: Const(self.snapshot_depth, 32),
            c.REG_CONTROL: enable,
            c.REG_STATUS: Cat(fifo.level != 0, status_overrun),
            c.REG_EDGE_FIFO_LEVEL: fifo.level,
            c.REG_OVERRUN_COUNT: fifo.overrun_count,
            c.REG_AB_NOW: enc.ab_prev,
            c.REG_TIME_LO: ts.value[:32],
            c.REG_TIME_HI: time_hi,
            c.REG_PERIOD: timer.period,
        }
        # The address decoded one-hot as its byte arrives (registered a cycle before the read
        # executes): the read is then an AND-OR of registers, short even on an iCE40.
        sel = Signal(16)
        m.d.sync += sel.eq(Mux(spi.rx_byte < 16, 1 << spi.rx_byte[:4], 0))
        reg_value = Signal(32)
        with m.If(read_reg):
            m.d.sync += reg_value.eq(
                Cat(*[
                    Cat(*[sel[a] & value.as_unsigned()[b] if b < len(value) else Const(0)
                          for a, value in regs.items()]).any()
                    for b in range(32)
                ])
            )
        with m.If(read_reg & sel[c.REG_TIME_LO]):
            m.d.sync += time_hi.eq(ts.value[32:])
        # An overrun in the very cycle of the STATUS read is kept for the next read.
        with m.If(fifo.dropped):
            m.d.sync += status_overrun.eq(1)
        with m.Elif(read_reg & sel[c.REG_STATUS]):
            m.d.sync += status_overrun.eq(0)

        # ---- responses ----
        # Every response byte is prepared in `tx_next` from registers, a cycle ahead of the
        # target's `tx_load`; the counters below say which byte comes next.
        mode = Signal(Response)
        count = Signal(16)
        base = Signal(range(self.fifo_depth))
        pos = Signal(3)  # response bytes loaded so far, saturating (0..3 and "more" matter)
        slot_byte = Signal(range(c.EDGE_EVENT_LEN))
        slot = Signal(16)
        sending_slot_end = Signal()
        word = Signal(range(n + 3))
        word_byte = Signal(2)
        with m.If(read_reg):
            m.d.sync += mode.eq(Response.REG)
        with m.Elif(read_edges):
            n_req = Cat(hdr[1], hdr[2])
            m.d.sync += [
                mode.eq(Response.EDGES),
                count.eq(Mux(n_req < fifo.level, n_req, fifo.level)),
                base.eq(fifo.rd_ptr),
            ]
        with m.Elif(read_snapshot):
            m.d.sync += mode.eq(Response.SNAPSHOT)
        with m.Elif(~spi.active):
            m.d.sync += mode.eq(Response.NONE)
        with m.If(read_reg | read_edges | read_snapshot | ~spi.active):
            m.d.sync += [pos.eq(0), slot_byte.eq(0), slot.eq(0), word.eq(0), word_byte.eq(0)]

        # The events sent are those at base + slot; the FIFO pops each one once it is out.
        # (Registered: a slot's first byte is loaded ≥ 16 cycles after `slot` changes.)
        peek_addr = Signal(range(self.fifo_depth))
        m.d.sync += peek_addr.eq(base + slot)
        m.d.comb += fifo.peek_addr.eq(peek_addr)
        event = Cat(
            fifo.peek_timestamp,
            fifo.peek_seq,
            fifo.peek_ab,
            Const(0, 6),
            fifo.peek_overrun,
            fifo.peek_period,
            fifo.peek_period_start,
            Const(0, 5),
        )
        words = Array(
            [snap.slot_seq, snap.slot_live]
            + [snap.slot_counts[ch] for ch in range(n)]
            + [Const(0, 32)]
        )
        # Registered selections ahead of tx_next: the indexes change at a load, the next load
        # is ≥ 16 cycles later.
        word_q = Signal(32)
        event_byte_q = Signal(8)
        m.d.sync += [
            word_q.eq(words[word]),
            event_byte_q.eq(event.word_select(slot_byte, 8)),
        ]
        tx_next = Signal(8)
        with m.Switch(mode):
            with m.Case(Response.REG):
                m.d.sync += tx_next.eq(Mux(pos < 4, reg_value.word_select(pos[:2], 8), 0))
            with m.Case(Response.EDGES):
                with m.If(pos == 0):
                    m.d.sync += tx_next.eq(count[:8])
                with m.Elif(pos == 1):
                    m.d.sync += tx_next.eq(count[8:])
                with m.Elif(slot < count):
                    m.d.sync += tx_next.eq(event_byte_q)
                with m.Else():
                    m.d.sync += tx_next.eq(0)
            with m.Case(Response.SNAPSHOT):
                with m.If(pos == 0):
                    m.d.sync += tx_next.eq(snap.valid)
                with m.Else():
                    m.d.sync += tx_next.eq(word_q.word_select(word_byte, 8))
            with m.Default():
                m.d.sync += tx_next.eq(0)
        m.d.comb += spi.tx_byte.eq(tx_next)

        with m.If(spi.tx_load):
            m.d.sync += [
                pos.eq(Mux(pos == 7, 7, pos + 1)),
                sending_slot_end.eq(0),
            ]
            with m.If((mode == Response.EDGES) & (pos >= 2)):
                m.d.sync += sending_slot_end.eq(
                    (slot_byte == c.EDGE_EVENT_LEN - 1) & (slot < count)
                )
                with m.If(slot_byte == c.EDGE_EVENT_LEN - 1):
                    m.d.sync += [
                        slot_byte.eq(0),
                        slot.eq(Mux(slot == 0xFFFF, slot, slot + 1)),
                    ]
                with m.Else():
                    m.d.sync += slot_byte.eq(slot_byte + 1)
            with m.If((mode == Response.SNAPSHOT) & (pos >= 1)):
                m.d.sync += word_byte.eq(word_byte + 1)
                with m.If((word_byte == 3) & (word != n + 2)):
                    m.d.sync += word.eq(word + 1)
        # An event leaves the FIFO once its slot's last byte has been clocked out.
        pop = Signal()
        m.d.sync += pop.eq(spi.rx_done & sending_slot_end)
        m.d.comb += fifo.pop.eq(pop)
        with m.If(~spi.active):
            m.d.sync += sending_slot_end.eq(0)
        return m
