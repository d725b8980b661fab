"""An oversampling SPI mode-0 target (CPOL 0, CPHA 0, MSB first).

SCLK, CS_N and MOSI pass two-flip-flop synchronisers; the target acts on the synchronised
SCLK rising edge, two cycles after the pin's. It samples MOSI there and shifts the next MISO
bit out right after, so MISO changes ≥ 3 cycles after the host's sampling edge (hold).

Byte interface: ``rx_done`` strobes in the cycle a byte's last bit is sampled, with
``rx_byte`` and its index in the transaction ``rx_index`` (saturating at 7). ``TX_DELAY``
cycles later ``tx_load`` strobes and the target takes ``tx_byte`` as the next byte to send:
that leaves the command engine a pipelined path to its first response byte, which must be
on MISO before the next SCLK rising edge: SCLK ≤ clock / ``contract.MIN_CLOCKS_PER_SCLK``
(6 clocks make it exactly in time; 8 leave 2 cycles for pad delays and the host's setup).
A transaction ends when CS_N rises; ``active`` is low from then on.
"""

from amaranth import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

#: Cycles from `rx_done` to `tx_load`.
TX_DELAY = 3


class SpiTarget(wiring.Component):
    sclk: In(1)
    cs_n: In(1, init=1)
    mosi: In(1)
    miso: Out(1)
    active: Out(1)
    rx_done: Out(1)
    rx_byte: Out(8)
    rx_index: Out(3)
    tx_load: Out(1)
    tx_byte: In(8)

    def elaborate(self, platform):
        m = Module()
        sclk = Signal()
        cs_n = Signal(init=1)
        mosi = Signal()
        m.submodules.sclk_sync = FFSynchronizer(self.sclk, sclk, stages=2)
        m.submodules.cs_sync = FFSynchronizer(self.cs_n, cs_n, stages=2, init=1)
        m.submodules.mosi_sync = FFSynchronizer(self.mosi, mosi, stages=2)
        sclk_prev = Signal()
        m.d.sync += sclk_prev.eq(sclk)
        rise = sclk & ~sclk_prev & ~cs_n
        bit = Signal(3)
        shift_in = Signal(7)
        shift_out = Signal(8)
        index = Signal(3)
        m.d.comb += [
            self.active.eq(~cs_n),
            self.miso.eq(shift_out[7]),
            self.rx_byte.eq(Cat(mosi, shift_in)),
            self.rx_done.eq(rise & (bit == 7)),
            self.rx_index.eq(index),
        ]
        load = Signal(TX_DELAY)
        m.d.sync += load.eq(Cat(self.rx_done, load[:-1]))
        m.d.comb += self.tx_load.eq(load[-1] & ~cs_n)
        with m.If(cs_n):
            m.d.sync += [bit.eq(0), index.eq(0), shift_out.eq(0), load.eq(0)]
        with m.Else():
            with m.If(rise):
                m.d.sync += [
                    bit.eq(bit + 1),
                    shift_in.eq(Cat(mosi, shift_in[:6])),
                    shift_out.eq(shift_out << 1),
                ]
                with m.If((bit == 7) & (index != 7)):
                    m.d.sync += index.eq(index + 1)
            with m.If(self.tx_load):
                m.d.sync += shift_out.eq(self.tx_byte)
        return m
