//! Test vectors: stimulus → expected SPI responses, computed by the reference model and replayed
//! cycle by cycle against the gateware (`gateware/tests/test_vectors.py`), which must answer
//! byte for byte the same.
//!
//! A vector set is a geometry plus a timeline in clock cycles. Stimulus steps are in the
//! model's terms (the synchronised signals); the replay drives the pins
//! [`INPUT_LATENCY`] cycles earlier. An SPI step starts at its cycle and clocks its bytes with
//! [`SpiTiming`]; the command executes [`SPI_EXEC_LATENCY`] cycles after the SCLK rising edge
//! of the header's last bit, which is where the model runs it. The builder keeps every other
//! step out of a transaction's window, so the two can only disagree where the gateware is wrong;
//! period events, which the design makes on its own, are kept out the same way by starting a
//! transaction after the period event it would overlap (or, where a test wants a command on a
//! period event's cycle, by [`Builder::spi_executing_at`]).
//!
//! File format (`gateware/vectors/NAME.jsonl`), one JSON object per line: a `header` line with
//! the geometry and timing, then steps `{"at":C,"ab":N}`, `{"at":C,"pulse":MASK}` (one pulse
//! counted at cycle C on each channel of the mask), `{"at":C,"gate":0|1}`,
//! `{"at":C,"mosi":"hex","miso":"hex"}`, and an `{"at":C,"end":true}` line.

use crate::model::{ModelConfig, RefModel};
use crate::regs::{self, reg};
use std::format;
use std::string::String;
use std::vec::Vec;

/// Cycles from an input pin change to the cycle the design (and the model) sees it: the two
/// flip-flops of the synchroniser. A/B add the glitch filter's length on top.
pub const INPUT_LATENCY: u64 = 2;
/// Cycles from the SCLK rising edge (at the pin) of a header's last bit to the cycle the
/// command executes: the two synchroniser flip-flops and a decode register.
pub const SPI_EXEC_LATENCY: u64 = 3;
/// Cycles `CS_N` must stay high between two transactions for the gateware to see it.
pub const MIN_CS_HIGH: u64 = 3;
/// Fewest sampling clocks per SCLK period the gateware's SPI target is specified for: a rising
/// edge is seen 2 cycles late, the first response byte goes out 4 cycles after that (6 would
/// be exactly in time), and 2 cycles are left for pad delays and the host's setup time.
pub const MIN_CLOCKS_PER_SCLK: u64 = 8;

/// How the replay clocks a transaction, in clock cycles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpiTiming {
    /// Cycles SCLK stays low and then high for each bit (SCLK period = 2 × this).
    pub half_period: u64,
    /// Cycles from `CS_N` falling to the first bit's low phase ending.
    pub cs_setup: u64,
    /// Cycles from the last bit's falling SCLK edge to `CS_N` rising.
    pub cs_hold: u64,
    /// Cycles `CS_N` stays high after a transaction before the next step.
    pub gap: u64,
}

impl SpiTiming {
    /// The tightest timing the reference gateware is specified for: SCLK = clock / 8.
    pub const FAST: Self = Self {
        half_period: MIN_CLOCKS_PER_SCLK / 2,
        cs_setup: 2,
        cs_hold: 2,
        gap: MIN_CS_HIGH + 1,
    };

    /// Cycle (relative to `CS_N` falling) at which the replay raises SCLK for bit `i` and
    /// samples MISO.
    pub fn rise(&self, bit: u64) -> u64 {
        self.cs_setup + 2 * self.half_period * bit + self.half_period
    }

    /// Cycles `CS_N` is low for `len` bytes.
    pub fn duration(&self, len: usize) -> u64 {
        self.cs_setup + 2 * self.half_period * 8 * len as u64 + self.cs_hold
    }

    /// Cycle (relative to `CS_N` falling) at which a header of `header_len` bytes executes.
    pub fn exec(&self, header_len: usize) -> u64 {
        self.rise(8 * header_len as u64 - 1) + SPI_EXEC_LATENCY
    }
}

/// One step of a vector set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Synchronised A/B take `ab` at cycle `at`.
    Ab {
        /// Cycle.
        at: u64,
        /// New levels (bit 0 A, bit 1 B).
        ab: u8,
    },
    /// One pulse counted at cycle `at` on every channel of `mask`.
    Pulse {
        /// Cycle.
        at: u64,
        /// Channel bit mask.
        mask: u32,
    },
    /// The synchronised gate takes `high` from cycle `at` on.
    Gate {
        /// Cycle.
        at: u64,
        /// New level.
        high: bool,
    },
    /// A transaction whose `CS_N` falls at cycle `at`.
    Spi {
        /// Cycle.
        at: u64,
        /// Bytes clocked out by the host.
        mosi: Vec<u8>,
        /// Bytes the FPGA must answer.
        miso: Vec<u8>,
    },
}

/// A named vector set.
#[derive(Debug, Clone)]
pub struct VectorSet {
    /// File stem.
    pub name: &'static str,
    /// Geometry.
    pub cfg: ModelConfig,
    /// First value of the timestamp counter.
    pub time_origin: u64,
    /// SPI clocking.
    pub timing: SpiTiming,
    /// Steps in time order.
    pub steps: Vec<Step>,
    /// Cycle at which the replay stops.
    pub end: u64,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl VectorSet {
    /// The JSON-lines text of the set.
    pub fn to_jsonl(&self) -> String {
        let c = &self.cfg;
        let t = &self.timing;
        let mut out = format!(
            "{{\"header\":true,\"name\":\"{}\",\"clock_hz\":{},\"n_channels\":{},\
             \"counter_bits\":{},\"fifo_depth\":{},\"snapshot_depth\":{},\"version\":{},\
             \"time_origin\":{},\"half_period\":{},\"cs_setup\":{},\"cs_hold\":{},\
             \"input_latency\":{},\"spi_exec_latency\":{}}}\n",
            self.name,
            c.clock_hz,
            c.n_channels,
            c.counter_bits,
            c.fifo_depth,
            c.snapshot_depth,
            regs::VERSION,
            self.time_origin,
            t.half_period,
            t.cs_setup,
            t.cs_hold,
            INPUT_LATENCY,
            SPI_EXEC_LATENCY,
        );
        for s in &self.steps {
            let line = match s {
                Step::Ab { at, ab } => format!("{{\"at\":{at},\"ab\":{ab}}}"),
                Step::Pulse { at, mask } => format!("{{\"at\":{at},\"pulse\":{mask}}}"),
                Step::Gate { at, high } => format!("{{\"at\":{at},\"gate\":{}}}", u8::from(*high)),
                Step::Spi { at, mosi, miso } => format!(
                    "{{\"at\":{at},\"mosi\":\"{}\",\"miso\":\"{}\"}}",
                    hex(mosi),
                    hex(miso)
                ),
            };
            out.push_str(&line);
            out.push('\n');
        }
        out.push_str(&format!("{{\"at\":{},\"end\":true}}\n", self.end));
        out
    }
}

/// Writes a vector set step by step while running the model along.
#[derive(Debug)]
pub struct Builder {
    model: RefModel,
    set: VectorSet,
    /// The cycle the next step happens at.
    cursor: u64,
    /// Stimulus queued for `cursor`, applied in the model's same-cycle order when time moves.
    pending_ab: Option<u8>,
    pending_pulses: u32,
    pending_gate: Option<bool>,
    /// A/B as last set (for quadrature steps).
    ab: u8,
}

/// Quadrature phases in forward order.
const GRAY: [u8; 4] = [0b00, 0b01, 0b11, 0b10];

impl Builder {
    /// A set for `cfg`, its clock starting at `time_origin`; the first step is a few cycles
    /// in, so the replay can drive pins ahead of it.
    pub fn new(name: &'static str, cfg: ModelConfig, time_origin: u64, timing: SpiTiming) -> Self {
        let model = RefModel::with_time(cfg, time_origin);
        let cursor = time_origin + 8;
        Self {
            model,
            set: VectorSet {
                name,
                cfg,
                time_origin,
                timing,
                steps: Vec::new(),
                end: cursor,
            },
            cursor,
            pending_ab: None,
            pending_pulses: 0,
            pending_gate: None,
            ab: 0,
        }
    }

    /// Applies the queued stimulus at the cursor, in the model's order: edge, pulses, gate.
    fn flush(&mut self) {
        let at = self.cursor;
        self.model.advance_to(at);
        if let Some(ab) = self.pending_ab.take() {
            self.model.set_ab(ab);
            self.set.steps.push(Step::Ab { at, ab });
        }
        let mask = std::mem::take(&mut self.pending_pulses);
        if mask != 0 {
            for ch in 0..32 {
                if mask & (1 << ch) != 0 {
                    self.model.count(ch, 1);
                }
            }
            self.set.steps.push(Step::Pulse { at, mask });
        }
        if let Some(high) = self.pending_gate.take() {
            self.model.set_gate(high);
            self.set.steps.push(Step::Gate { at, high });
        }
    }

    /// Lets `cycles` cycles pass.
    pub fn wait(&mut self, cycles: u64) -> &mut Self {
        self.flush();
        self.cursor += cycles;
        self
    }

    /// A/B take `ab` at the cursor.
    pub fn ab(&mut self, ab: u8) -> &mut Self {
        self.pending_ab = Some(ab & regs::AB_MASK);
        self.ab = ab & regs::AB_MASK;
        self
    }

    /// One quadrature step forward (`dir ≥ 0`) or back at the cursor.
    pub fn step(&mut self, dir: i32) -> &mut Self {
        let phase = GRAY.iter().position(|&g| g == self.ab).unwrap_or(0);
        let next = (phase + if dir >= 0 { 1 } else { 3 }) % 4;
        self.ab(GRAY[next])
    }

    /// One pulse on each channel of `mask`, counted at the cursor.
    pub fn pulse(&mut self, mask: u32) -> &mut Self {
        self.pending_pulses |= mask;
        self
    }

    /// `n` pulses on the channels of `mask`, one every 2 cycles from the cursor on (the
    /// fastest a detector input can count); leaves the cursor after the last.
    pub fn pulses(&mut self, mask: u32, n: u32) -> &mut Self {
        for _ in 0..n {
            self.pulse(mask).wait(2);
        }
        self
    }

    /// The gate level from the cursor on.
    pub fn gate(&mut self, high: bool) -> &mut Self {
        self.pending_gate = Some(high);
        self
    }

    /// Lets time pass up to cycle `at` (the cursor never goes back).
    pub fn wait_until(&mut self, at: u64) -> &mut Self {
        let n = at.saturating_sub(self.cursor);
        self.wait(n)
    }

    /// The first cycle from `at` on where a transaction of `len` bytes has no period event in
    /// its window (`CS_N` low and the gap after it).
    ///
    /// # Panics
    /// When the running period is no longer than such a window (a vector set built that way
    /// could not keep the two apart).
    fn clear_of_period_events(&self, at: u64, len: usize) -> u64 {
        let (Some(next), period) = (self.model.next_period(), u64::from(self.model.period()))
        else {
            return at;
        };
        let t = self.set.timing;
        let window = t.duration(len) + t.gap;
        assert!(
            period > window + 1,
            "a period of {period} cycles cannot clear a {window}-cycle transaction"
        );
        // The first period event at or after `at`.
        let first = if next >= at {
            next
        } else {
            next + (at - next).div_ceil(period) * period
        };
        if first <= at + window { first + 1 } else { at }
    }

    /// One transaction starting at the cursor (after the stimulus queued there has settled, and
    /// after a period event its window would overlap); returns the bytes the model answered.
    /// The cursor moves past its `CS_N` high gap.
    pub fn spi(&mut self, mosi: &[u8]) -> Vec<u8> {
        // Stimulus at the cursor must not share a cycle with the transaction's window.
        self.wait(INPUT_LATENCY + 1);
        let at = self.clear_of_period_events(self.cursor, mosi.len());
        self.transact(at, mosi)
    }

    /// One transaction whose command executes on cycle `exec` (a `PERIOD` write on a period
    /// event's cycle); the cursor moves past its gap.
    ///
    /// # Panics
    /// When `mosi` holds no complete header, or `exec` is too soon for the stimulus queued at
    /// the cursor to settle first.
    pub fn spi_executing_at(&mut self, exec: u64, mosi: &[u8]) -> Vec<u8> {
        self.wait(INPUT_LATENCY + 1);
        let h = mosi
            .first()
            .and_then(|&c| regs::header_len(c))
            .filter(|&h| mosi.len() >= h)
            .expect("a complete header");
        let at = exec
            .checked_sub(self.set.timing.exec(h))
            .filter(|&at| at >= self.cursor)
            .expect("the transaction starts after the cursor");
        self.transact(at, mosi)
    }

    /// One transaction with `CS_N` falling at cycle `at` (≥ the cursor).
    fn transact(&mut self, at: u64, mosi: &[u8]) -> Vec<u8> {
        self.cursor = at;
        let t = self.set.timing;
        let complete = mosi
            .first()
            .and_then(|&c| regs::header_len(c))
            .filter(|&h| mosi.len() >= h);
        let miso = match complete {
            Some(h) => {
                self.model.advance_to(at + t.exec(h));
                self.model.exchange_vec(mosi)
            }
            None => std::vec![0; mosi.len()],
        };
        self.set.steps.push(Step::Spi {
            at,
            mosi: mosi.to_vec(),
            miso: miso.clone(),
        });
        self.cursor = at + t.duration(mosi.len()) + t.gap;
        miso
    }

    /// READ_REG `addr`; returns the value.
    pub fn read_reg(&mut self, addr: u8) -> u32 {
        let r = self.spi(&[regs::CMD_READ_REG, addr, 0, 0, 0, 0]);
        u32::from_le_bytes([r[2], r[3], r[4], r[5]])
    }

    /// WRITE_REG `addr` = `value`.
    pub fn write_reg(&mut self, addr: u8, value: u32) {
        let v = value.to_le_bytes();
        self.spi(&[regs::CMD_WRITE_REG, addr, v[0], v[1], v[2], v[3]]);
    }

    /// WRITE_REG `addr` = `value`, executing on cycle `exec`.
    pub fn write_reg_executing_at(&mut self, exec: u64, addr: u8, value: u32) {
        let v = value.to_le_bytes();
        self.spi_executing_at(exec, &[regs::CMD_WRITE_REG, addr, v[0], v[1], v[2], v[3]]);
    }

    /// READ_EDGES of `n` events, all slots clocked; returns the response after the header.
    pub fn read_edges(&mut self, n: u16) -> Vec<u8> {
        let mut mosi = std::vec![0u8; 3 + regs::read_edges_len(usize::from(n))];
        mosi[0] = regs::CMD_READ_EDGES;
        mosi[1..3].copy_from_slice(&n.to_le_bytes());
        self.spi(&mosi).split_off(3)
    }

    /// READ_SNAPSHOT of edge `seq`; returns the response after the header.
    pub fn read_snapshot(&mut self, seq: u32) -> Vec<u8> {
        let n = usize::from(self.set.cfg.n_channels);
        let mut mosi = std::vec![0u8; 5 + regs::snapshot_len(n)];
        mosi[0] = regs::CMD_READ_SNAPSHOT;
        mosi[1..5].copy_from_slice(&seq.to_le_bytes());
        self.spi(&mosi).split_off(5)
    }

    /// The firmware's start-up sequence (FPGA.md §Reset sequence).
    pub fn reset_sequence(&mut self) {
        for a in [
            reg::ID,
            reg::VERSION,
            reg::CLOCK_HZ,
            reg::N_CHANNELS,
            reg::COUNTER_BITS,
            reg::EDGE_FIFO_DEPTH,
            reg::SNAPSHOT_DEPTH,
        ] {
            self.read_reg(a);
        }
        self.write_reg(reg::CONTROL, regs::CONTROL_RESET | regs::CONTROL_CLEAR_FIFO);
        self.write_reg(reg::CONTROL, regs::CONTROL_ENABLE);
        self.read_reg(reg::AB_NOW);
        self.read_reg(reg::STATUS);
    }

    /// The cycle the next step happens at.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// The first period event of the running timer on which a command of `header_len` header
    /// bytes, started after the stimulus at the cursor, can execute.
    pub fn period_event_for_command(&self, header_len: usize) -> Option<u64> {
        let next = self.model.next_period()?;
        let period = u64::from(self.model.period());
        let earliest = self.cursor + INPUT_LATENCY + 1 + self.set.timing.exec(header_len);
        Some(if next >= earliest {
            next
        } else {
            next + (earliest - next).div_ceil(period) * period
        })
    }

    /// The model, to ask what it holds.
    pub fn model(&self) -> &RefModel {
        &self.model
    }

    /// Ends the set a few cycles after the last step.
    pub fn finish(mut self) -> VectorSet {
        self.wait(4);
        self.set.end = self.cursor;
        self.set
    }
}

fn small(n_channels: u8, counter_bits: u8, fifo_depth: u32, snapshot_depth: u32) -> ModelConfig {
    ModelConfig {
        clock_hz: 100_000_000,
        n_channels,
        counter_bits,
        fifo_depth,
        snapshot_depth,
    }
}

/// Every register, unknown addresses, writes to read-only registers, the CONTROL read-back,
/// STATUS clear-on-read and the TIME_LO/TIME_HI latch across a carry into the upper word.
fn registers() -> VectorSet {
    let mut b = Builder::new(
        "registers",
        small(3, 20, 16, 8),
        (1 << 32) - 6200,
        SpiTiming::FAST,
    );
    for a in 0..=0x10 {
        b.read_reg(a);
    }
    b.read_reg(0xFF);
    b.write_reg(reg::ID, 0);
    b.write_reg(reg::N_CHANNELS, 7);
    b.write_reg(0x20, 1);
    b.read_reg(reg::ID);
    b.read_reg(reg::N_CHANNELS);
    b.write_reg(reg::CONTROL, regs::CONTROL_ENABLE);
    b.read_reg(reg::CONTROL);
    b.write_reg(reg::CONTROL, 0xFFFF_FFF8);
    b.read_reg(reg::CONTROL);
    // TIME_LO before and after the carry into the upper word; TIME_HI keeps the latched word.
    b.read_reg(reg::TIME_LO);
    b.read_reg(reg::TIME_HI);
    b.wait(1200);
    b.read_reg(reg::TIME_HI);
    b.read_reg(reg::TIME_LO);
    b.read_reg(reg::TIME_HI);
    b.finish()
}

/// The reset sequence, legal quadrature edges both ways with detector pulses between them
/// (including a pulse in the very cycle of an edge, which belongs to the next bin), level,
/// DRDY, READ_EDGES with fewer events than asked, and the snapshots of every edge.
fn edges() -> VectorSet {
    let mut b = Builder::new("edges", small(4, 32, 32, 16), 0, SpiTiming::FAST);
    b.reset_sequence();
    b.pulses(0b0001, 3);
    b.step(1).wait(7);
    b.pulses(0b0010, 2).pulses(0b1111, 1);
    b.step(1).pulse(0b0100).wait(5);
    b.pulse(0b1000).wait(1);
    b.step(1).wait(30);
    b.step(-1).wait(3);
    b.pulses(0b1001, 4);
    b.step(-1).wait(20);
    b.read_reg(reg::EDGE_FIFO_LEVEL);
    b.read_reg(reg::STATUS);
    b.read_edges(3);
    b.read_reg(reg::EDGE_FIFO_LEVEL);
    b.read_edges(4);
    b.read_edges(1);
    for seq in 0..6 {
        b.read_snapshot(seq);
    }
    b.read_reg(reg::AB_NOW);
    b.finish()
}

/// A and B change in the same cycle: one event carrying both new levels.
fn simultaneous_ab() -> VectorSet {
    let mut b = Builder::new("simultaneous_ab", small(1, 16, 8, 8), 0, SpiTiming::FAST);
    b.reset_sequence();
    b.ab(0b11).wait(10);
    b.ab(0b00).wait(1);
    b.ab(0b01).wait(1);
    b.ab(0b10).wait(10);
    b.read_reg(reg::AB_NOW);
    b.read_edges(4);
    b.read_snapshot(3);
    b.finish()
}

/// More edges than the FIFO holds: drops counted in OVERRUN_COUNT and STATUS, a seq gap and
/// the OVERRUN flag on the next stored event, snapshots written for dropped edges too, and
/// CLEAR_FIFO.
fn fifo_overrun() -> VectorSet {
    let mut b = Builder::new("fifo_overrun", small(2, 24, 4, 16), 0, SpiTiming::FAST);
    b.reset_sequence();
    for i in 0..7 {
        b.pulses(0b01 << (i % 2), i + 1);
        b.step(1).wait(3);
    }
    b.read_reg(reg::EDGE_FIFO_LEVEL);
    b.read_reg(reg::OVERRUN_COUNT);
    b.read_reg(reg::STATUS);
    b.read_reg(reg::STATUS);
    b.read_edges(2);
    b.step(1).wait(3);
    b.step(1).wait(3);
    b.read_edges(8);
    b.read_snapshot(5);
    b.read_snapshot(6);
    b.step(1).wait(3);
    b.step(1).wait(3);
    b.read_reg(reg::EDGE_FIFO_LEVEL);
    b.write_reg(
        reg::CONTROL,
        regs::CONTROL_ENABLE | regs::CONTROL_CLEAR_FIFO,
    );
    b.read_reg(reg::EDGE_FIFO_LEVEL);
    b.read_reg(reg::STATUS);
    b.step(1).wait(3);
    b.read_edges(2);
    b.read_reg(reg::OVERRUN_COUNT);
    b.finish()
}

/// A snapshot slot overwritten by a newer edge, a slot never written, and every slot invalid
/// after a reset (the stale seq is still echoed); capture off makes no edges.
fn snapshot_overwrite() -> VectorSet {
    let mut b = Builder::new(
        "snapshot_overwrite",
        small(2, 16, 16, 4),
        0,
        SpiTiming::FAST,
    );
    b.reset_sequence();
    b.read_snapshot(0);
    for i in 0..6 {
        b.pulses(0b11, i);
        b.step(1).wait(3);
    }
    for seq in [0, 1, 2, 3, 4, 5, 6, 9] {
        b.read_snapshot(seq);
    }
    b.write_reg(reg::CONTROL, regs::CONTROL_RESET | regs::CONTROL_ENABLE);
    b.read_snapshot(5);
    b.read_snapshot(0);
    b.step(1).wait(3);
    b.read_snapshot(0);
    b.read_snapshot(4);
    b.write_reg(reg::CONTROL, 0);
    b.step(1).wait(3);
    b.step(1).wait(3);
    b.read_reg(reg::EDGE_FIFO_LEVEL);
    b.read_snapshot(1);
    b.read_reg(reg::AB_NOW);
    b.finish()
}

/// 8-bit counters wrap: detector counts past 255 and a live time past 255 cycles, with the
/// gate closed for a while (live time stops, pulses still count).
fn counter_wrap() -> VectorSet {
    let mut b = Builder::new("counter_wrap", small(2, 8, 8, 8), 0, SpiTiming::FAST);
    b.reset_sequence();
    b.pulses(0b01, 300);
    b.step(1).wait(4);
    b.gate(false).wait(100);
    b.pulses(0b10, 10);
    b.step(1).wait(4);
    b.gate(true).wait(40);
    b.step(1).wait(4);
    b.read_edges(3);
    for seq in 0..3 {
        b.read_snapshot(seq);
    }
    b.finish()
}

/// Transactions cut short: a header that never completes, a register read stopped after one
/// response byte (its side effect happened), a READ_EDGES stopped inside the second slot (only
/// the first event is popped), an unknown command, and a transaction longer than its response.
fn aborted() -> VectorSet {
    let mut b = Builder::new("aborted", small(2, 32, 8, 8), 0, SpiTiming::FAST);
    b.reset_sequence();
    for _ in 0..3 {
        b.step(1).wait(4);
    }
    b.spi(&[regs::CMD_WRITE_REG, reg::CONTROL, 0]);
    b.read_reg(reg::CONTROL);
    b.spi(&[regs::CMD_READ_EDGES, 3]);
    b.read_reg(reg::EDGE_FIFO_LEVEL);
    let mut cut = std::vec![0u8; 3 + 2 + regs::EDGE_EVENT_LEN + 5];
    cut[..3].copy_from_slice(&[regs::CMD_READ_EDGES, 3, 0]);
    b.spi(&cut);
    b.read_reg(reg::EDGE_FIFO_LEVEL);
    b.spi(&[0x7E, 1, 2, 3, 4, 5, 6]);
    b.spi(&[]);
    b.step(1).wait(4);
    b.spi(&[regs::CMD_READ_REG, reg::STATUS, 0]);
    b.read_reg(reg::STATUS);
    b.spi(&[regs::CMD_READ_REG, reg::ID, 0, 0, 0, 0, 0xAA, 0x55, 0, 0]);
    b.read_edges(4);
    b.finish()
}

/// The period timer: its start event (a snapshot of the counters at the arm), an edge inside a
/// period, an edge and a detector pulse on a period event's cycle (one event: the new levels,
/// flag `PERIOD`; the pulse belongs to the next period), `PERIOD` read back, a restart written
/// on a period event's cycle (one event, both flags), the gate closed for part of a period,
/// capture off for two periods (no events, the phase kept), period events dropped on a full
/// FIFO (seq gap, `OVERRUN`, snapshots still written), a stop written on a period event's cycle
/// (that event still made), and a reset stopping a running timer.
fn period() -> VectorSet {
    let mut b = Builder::new("period", small(2, 16, 8, 16), 0, SpiTiming::FAST);
    b.reset_sequence();
    b.pulses(0b01, 3);
    b.write_reg(reg::PERIOD, 3000);
    let first = b.model().next_period().expect("the timer runs");
    b.pulses(0b10, 4);
    b.step(1).wait(10);
    b.pulses(0b11, 5);
    b.wait_until(first);
    b.step(1).pulse(0b01).wait(5);
    b.read_reg(reg::PERIOD);
    b.read_edges(2);
    b.read_edges(2);
    for seq in 0..4 {
        b.read_snapshot(seq);
    }
    // Restart on the cycle of a period event of the running timer.
    let due = b.period_event_for_command(6).expect("the timer runs");
    b.write_reg_executing_at(due, reg::PERIOD, 2600);
    b.pulses(0b01, 7);
    b.gate(false).wait(500);
    b.gate(true).wait(1);
    b.read_edges(2);
    b.read_edges(2);
    for seq in 4..7 {
        b.read_snapshot(seq);
    }
    // Capture off for two periods: the timer keeps its phase but makes no events.
    b.write_reg(reg::CONTROL, 0);
    let off = b.model().next_period().expect("the timer runs");
    b.wait_until(off + 2 * 2600 + 10);
    b.write_reg(reg::CONTROL, regs::CONTROL_ENABLE);
    b.read_reg(reg::EDGE_FIFO_LEVEL);
    // Eleven periods with nothing read: the eight-event FIFO fills and drops the rest.
    let now = b.cursor();
    b.wait_until(now + 11 * 2600);
    b.read_reg(reg::EDGE_FIFO_LEVEL);
    b.read_reg(reg::OVERRUN_COUNT);
    b.read_reg(reg::STATUS);
    b.read_edges(2);
    b.read_edges(2);
    // Stop on the cycle of a period event: that event is still made.
    let due = b.period_event_for_command(6).expect("the timer runs");
    b.write_reg_executing_at(due, reg::PERIOD, 0);
    b.read_reg(reg::PERIOD);
    for _ in 0..4 {
        b.read_edges(2);
    }
    for seq in 0..16 {
        b.read_snapshot(seq);
    }
    // A reset stops a running timer.
    b.write_reg(reg::PERIOD, 2600);
    b.write_reg(reg::CONTROL, regs::CONTROL_RESET | regs::CONTROL_ENABLE);
    b.read_reg(reg::PERIOD);
    let now = b.cursor();
    b.wait_until(now + 3 * 2600);
    b.read_reg(reg::EDGE_FIFO_LEVEL);
    b.read_edges(2);
    b.finish()
}

/// Every vector set, in file order.
pub fn all() -> Vec<VectorSet> {
    std::vec![
        registers(),
        edges(),
        simultaneous_ab(),
        fifo_overrun(),
        snapshot_overwrite(),
        counter_wrap(),
        aborted(),
        period(),
    ]
}
