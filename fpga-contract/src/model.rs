//! The register-level reference model of the FPGA (FPGA.md), the one executable statement of
//! what the gateware does: the simulator, the firmware's tests and the gateware's test vectors
//! all run this code.
//!
//! Time is explicit and counted in clock cycles. The model's inputs are the *synchronised*
//! signals, i.e. what the design sees after its input synchronisers and glitch filter: the
//! caller says at which cycle A/B change ([`RefModel::set_ab`]), how many detector pulses are
//! counted in the current cycle ([`RefModel::count`]), and the gate level
//! ([`RefModel::set_gate`]); [`RefModel::advance`] lets cycles pass. An SPI transaction is one
//! call, [`RefModel::exchange`], executed at the current cycle.
//!
//! Within one cycle `t` the rules are:
//! * a period event of the period timer due at `t` is made as the clock enters `t`, before
//!   anything else of that cycle, and snapshots the counters as they stand at the start of `t`;
//! * an edge at `t` is stamped `t` and snapshots the counters as they stand at the start of
//!   `t` (pulses and live time of cycle `t` itself are not in it); on a period event's cycle it
//!   joins that event (one event per cycle: the new levels, flag `PERIOD`, one seq);
//! * a command executing at `t` reads the state at the start of `t`; a counter reset it makes
//!   zeroes the counters such that the pulses and live time of cycle `t` count after the reset;
//!   a `PERIOD` write starts the timer at `t` (its start event joins a period event of `t`);
//! * the pulses and the live tick of cycle `t` are added when time moves past `t`.
//!
//! The model does not decide between an edge or a period event and a command in the very same
//! cycle (other than a `PERIOD` write); the test vectors keep them apart, and the firmware
//! cannot tell.

use crate::records::{EdgeEvent, Snapshot};
use crate::regs::{self, reg};
use std::collections::VecDeque;
use std::vec;
use std::vec::Vec;

/// Geometry of a modelled FPGA (the values of its read-only registers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelConfig {
    /// Clock, Hz (`CLOCK_HZ`).
    pub clock_hz: u32,
    /// Detector channels (`N_CHANNELS`, 1–32).
    pub n_channels: u8,
    /// Counter width, bits (`COUNTER_BITS`, 8–32; clamped into that range).
    pub counter_bits: u8,
    /// Edge FIFO capacity, events (`EDGE_FIFO_DEPTH`).
    pub fifo_depth: u32,
    /// Snapshot RAM slots (`SNAPSHOT_DEPTH`, a power of two; rounded up to one).
    pub snapshot_depth: u32,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            clock_hz: 100_000_000,
            n_channels: 8,
            counter_bits: 32,
            fifo_depth: 4096,
            snapshot_depth: 4096,
        }
    }
}

/// What the model has done, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// SPI transactions served.
    pub transactions: u64,
    /// Events (edges and period events) stored in the FIFO.
    pub events_stored: u64,
    /// Events dropped because the FIFO was full.
    pub events_dropped: u64,
    /// Period timer causes of events (starts and periods), stored, dropped or joined with
    /// another cause of the same cycle.
    pub period_events: u64,
    /// Most events ever in the FIFO.
    pub fifo_high_water: u32,
    /// Counter resets written.
    pub resets: u64,
}

/// The model's state.
#[derive(Debug, Clone)]
pub struct RefModel {
    cfg: ModelConfig,
    id: u32,
    version: u32,
    mask: u32,
    depth: usize,
    n: usize,
    now: u64,
    ab: u8,
    gate: bool,
    enable: bool,
    seq: u32,
    live: u32,
    counts: Vec<u32>,
    fifo: VecDeque<EdgeEvent>,
    overrun_pending: bool,
    status_overrun: bool,
    overrun_count: u32,
    time_hi: u32,
    /// `PERIOD` as last written (0: the timer is stopped).
    period: u32,
    /// Cycle of the next period event while the timer runs.
    next_period: Option<u64>,
    /// The event of the latest cycle that made one: (cycle, seq, stored in the FIFO, a period
    /// event), so that a second cause in the same cycle joins it.
    last_event: Option<(u64, u32, bool, bool)>,
    /// Per slot: written since the last reset.
    slot_written: Vec<bool>,
    slot_seq: Vec<u32>,
    slot_live: Vec<u32>,
    /// `depth × n` counts, slot-major.
    slot_counts: Vec<u32>,
    stats: ModelStats,
}

impl RefModel {
    /// A powered-up FPGA: cycle 0, A/B low, gate high, counters 0, capture off, RAM zeroed.
    pub fn new(cfg: ModelConfig) -> Self {
        Self::with_time(cfg, 0)
    }

    /// As [`RefModel::new`], with the timestamp counter starting at `t0` instead of 0 (to
    /// reach the upper timestamp word in a short test; the gateware has the same parameter).
    pub fn with_time(cfg: ModelConfig, t0: u64) -> Self {
        let bits = cfg
            .counter_bits
            .clamp(regs::MIN_COUNTER_BITS, regs::MAX_COUNTER_BITS);
        let mask = if bits == 32 {
            u32::MAX
        } else {
            (1 << bits) - 1
        };
        let depth = cfg.snapshot_depth.max(1).next_power_of_two() as usize;
        let n = usize::from(cfg.n_channels).clamp(1, regs::MAX_N_CHANNELS);
        Self {
            cfg,
            id: regs::ID_MAGIC,
            version: regs::VERSION,
            mask,
            depth,
            n,
            now: t0,
            ab: 0,
            gate: true,
            enable: false,
            seq: 0,
            live: 0,
            counts: vec![0; n],
            fifo: VecDeque::new(),
            overrun_pending: false,
            status_overrun: false,
            overrun_count: 0,
            time_hi: 0,
            period: 0,
            next_period: None,
            last_event: None,
            slot_written: vec![false; depth],
            slot_seq: vec![0; depth],
            slot_live: vec![0; depth],
            slot_counts: vec![0; depth * n],
            stats: ModelStats::default(),
        }
    }

    /// The geometry.
    pub fn config(&self) -> ModelConfig {
        self.cfg
    }

    /// Replaces the ID register (to test start-up checks).
    pub fn set_id(&mut self, id: u32) {
        self.id = id;
    }

    /// Replaces the VERSION register.
    pub fn set_version(&mut self, version: u32) {
        self.version = version;
    }

    /// Current cycle (the timestamp counter).
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Lets `cycles` cycles pass: the live-time counter counts those with the gate high. Every
    /// period event due on the way (the cycle reached included) is made as its cycle is entered.
    pub fn advance(&mut self, cycles: u64) {
        let end = self.now.saturating_add(cycles);
        while let Some(t) = self.next_period.filter(|&t| t <= end) {
            self.pass(t - self.now);
            self.next_period = Some(t + u64::from(self.period));
            self.event(regs::EDGE_FLAG_PERIOD);
        }
        self.pass(end - self.now);
    }

    /// Moves the clock `cycles` on, with no event on the way.
    fn pass(&mut self, cycles: u64) {
        if self.gate {
            // Wrapping modulo 2^COUNTER_BITS: only the low 32 bits of `cycles` matter.
            self.live = self.live.wrapping_add(cycles as u32) & self.mask;
        }
        self.now += cycles;
    }

    /// Moves to cycle `t` (never backwards).
    pub fn advance_to(&mut self, t: u64) {
        if t > self.now {
            self.advance(t - self.now);
        }
    }

    /// Sets the synchronised gate level from the current cycle on.
    pub fn set_gate(&mut self, high: bool) {
        self.gate = high;
    }

    /// Counts `n` detector pulses on channel `ch` in the current cycle (wrapping; channels the
    /// design does not have are ignored).
    pub fn count(&mut self, ch: usize, n: u32) {
        let m = self.mask;
        if let Some(c) = self.counts.get_mut(ch) {
            *c = c.wrapping_add(n) & m;
        }
    }

    /// Synchronised A/B take the levels `ab` at the current cycle. Any change is one edge
    /// (legal or not); while capture is on it makes an event and a snapshot (or joins the
    /// period event of this cycle). Returns true when an edge was captured.
    pub fn set_ab(&mut self, ab: u8) -> bool {
        let ab = ab & regs::AB_MASK;
        if ab == self.ab {
            return false;
        }
        self.ab = ab;
        self.event(0)
    }

    /// Makes the event of the current cycle with `flags` (while capture is on): a sequence
    /// number, a snapshot and a FIFO entry (or a drop); a cycle that already has its event
    /// adds the flags and the current levels to it instead. Returns true when captured.
    fn event(&mut self, flags: u8) -> bool {
        if !self.enable {
            return false;
        }
        if flags & regs::EDGE_FLAG_PERIOD != 0 {
            self.stats.period_events += 1;
        }
        // Two A/B changes in one cycle cannot happen on hardware (the levels are sampled once a
        // cycle); tests that make them get two events, as before the period timer.
        if let Some((cycle, seq, stored, period)) = self.last_event
            && cycle == self.now
            && (period || flags & regs::EDGE_FLAG_PERIOD != 0)
        {
            if stored
                && let Some(back) = self.fifo.back_mut()
                && back.seq == seq
                && back.timestamp == cycle
            {
                back.ab = self.ab;
                back.flags |= flags;
            }
            return true;
        }
        let seq = self.seq;
        self.seq = seq.wrapping_add(1);
        let slot = seq as usize & (self.depth - 1);
        self.slot_written[slot] = true;
        self.slot_seq[slot] = seq;
        self.slot_live[slot] = self.live;
        self.slot_counts[slot * self.n..(slot + 1) * self.n].copy_from_slice(&self.counts);
        if self.fifo.len() >= self.cfg.fifo_depth as usize {
            self.overrun_pending = true;
            self.status_overrun = true;
            self.overrun_count = self.overrun_count.wrapping_add(1);
            self.stats.events_dropped += 1;
            self.last_event = Some((self.now, seq, false, flags != 0));
            return true;
        }
        let overrun = if std::mem::take(&mut self.overrun_pending) {
            regs::EDGE_FLAG_OVERRUN
        } else {
            0
        };
        self.fifo.push_back(EdgeEvent {
            timestamp: self.now,
            seq,
            ab: self.ab,
            flags: flags | overrun,
        });
        self.last_event = Some((self.now, seq, true, flags != 0));
        self.stats.events_stored += 1;
        self.stats.fifo_high_water = self.stats.fifo_high_water.max(self.fifo.len() as u32);
        true
    }

    /// Synchronised A/B now.
    pub fn ab(&self) -> u8 {
        self.ab
    }

    /// The data-ready line (`DRDY`): high while the FIFO holds events.
    pub fn data_ready(&self) -> bool {
        !self.fifo.is_empty()
    }

    /// Events in the FIFO.
    pub fn fifo_level(&self) -> usize {
        self.fifo.len()
    }

    /// What the model has done.
    pub fn stats(&self) -> ModelStats {
        self.stats
    }

    /// Reads a register, with its side effects (STATUS clears the overrun bit, TIME_LO
    /// latches TIME_HI). Unknown addresses read 0.
    pub fn read_reg(&mut self, addr: u8) -> u32 {
        match addr {
            reg::ID => self.id,
            reg::VERSION => self.version,
            reg::CLOCK_HZ => self.cfg.clock_hz,
            reg::N_CHANNELS => u32::from(self.cfg.n_channels),
            reg::COUNTER_BITS => u32::from(self.cfg.counter_bits),
            reg::EDGE_FIFO_DEPTH => self.cfg.fifo_depth,
            reg::SNAPSHOT_DEPTH => self.cfg.snapshot_depth,
            reg::CONTROL => u32::from(self.enable),
            reg::STATUS => {
                let mut v = 0;
                if !self.fifo.is_empty() {
                    v |= regs::STATUS_READY;
                }
                if std::mem::take(&mut self.status_overrun) {
                    v |= regs::STATUS_OVERRUN;
                }
                v
            }
            reg::EDGE_FIFO_LEVEL => self.fifo.len() as u32,
            reg::OVERRUN_COUNT => self.overrun_count,
            reg::AB_NOW => u32::from(self.ab),
            reg::TIME_LO => {
                self.time_hi = (self.now >> 32) as u32;
                self.now as u32
            }
            reg::TIME_HI => self.time_hi,
            reg::PERIOD => self.period,
            _ => 0,
        }
    }

    /// Writes a register: `CONTROL` and `PERIOD` are writable; other addresses are ignored.
    pub fn write_reg(&mut self, addr: u8, value: u32) {
        match addr {
            reg::CONTROL => self.write_control(value),
            reg::PERIOD => self.write_period(value),
            _ => {}
        }
    }

    fn write_control(&mut self, value: u32) {
        if value & regs::CONTROL_RESET != 0 {
            self.seq = 0;
            self.live = 0;
            self.counts.iter_mut().for_each(|c| *c = 0);
            self.slot_written.iter_mut().for_each(|w| *w = false);
            self.overrun_count = 0;
            self.overrun_pending = false;
            self.period = 0;
            self.next_period = None;
            self.last_event = None;
            self.stats.resets += 1;
        }
        if value & regs::CONTROL_CLEAR_FIFO != 0 {
            self.fifo.clear();
            self.overrun_pending = false;
            self.last_event = None;
        }
        self.enable = value & regs::CONTROL_ENABLE != 0;
    }

    /// `PERIOD` = `value` at the current cycle: 0 stops the timer (a period event already made
    /// this cycle stays); anything else starts it here, with a start event now and a period
    /// event every `value` cycles from now on.
    fn write_period(&mut self, value: u32) {
        self.period = value;
        if value == 0 {
            self.next_period = None;
            return;
        }
        self.next_period = Some(self.now + u64::from(value));
        self.event(regs::EDGE_FLAG_PERIOD | regs::EDGE_FLAG_PERIOD_START);
    }

    /// `PERIOD` as last written (0: stopped).
    pub fn period(&self) -> u32 {
        self.period
    }

    /// Cycle of the next period event while the timer runs.
    pub fn next_period(&self) -> Option<u64> {
        self.next_period
    }

    /// The READ_SNAPSHOT response for event `seq` into `out` (≥ `snapshot_len(n)` bytes).
    fn snapshot(&self, seq: u32, out: &mut [u8]) -> usize {
        let slot = seq as usize & (self.depth - 1);
        let stored = self.slot_seq[slot];
        Snapshot::encode(
            self.slot_written[slot] && stored == seq,
            stored,
            self.slot_live[slot],
            &self.slot_counts[slot * self.n..(slot + 1) * self.n],
            out,
        )
    }

    /// One SPI transaction (one `CS_N` low period) at the current cycle: `mosi` are the bytes
    /// the host clocks out, `miso` (same length) receives the FPGA's bytes.
    ///
    /// The header is decoded once complete; its response follows directly; every other byte
    /// is `00`. A transaction shorter than its header does nothing (aborted). READ_EDGES fixes
    /// `count = min(n, level)` when the header completes and pops only the events whose
    /// 14-byte slot was clocked out completely, so an aborted read loses nothing it did not
    /// send. Unknown command bytes are ignored.
    pub fn exchange(&mut self, mosi: &[u8], miso: &mut [u8]) {
        self.stats.transactions += 1;
        miso.fill(0);
        let Some(&cmd) = mosi.first() else {
            return;
        };
        let Some(h) = regs::header_len(cmd) else {
            return;
        };
        if mosi.len() < h || miso.len() < mosi.len() {
            return;
        }
        let hdr = &mosi[..h];
        let out = &mut miso[h..mosi.len()];
        let copy = |out: &mut [u8], src: &[u8]| {
            let k = out.len().min(src.len());
            out[..k].copy_from_slice(&src[..k]);
        };
        match cmd {
            regs::CMD_READ_REG => {
                let v = self.read_reg(hdr[1]);
                copy(out, &v.to_le_bytes());
            }
            regs::CMD_WRITE_REG => {
                self.write_reg(hdr[1], u32::from_le_bytes([hdr[2], hdr[3], hdr[4], hdr[5]]));
            }
            regs::CMD_READ_EDGES => {
                let n = usize::from(u16::from_le_bytes([hdr[1], hdr[2]]));
                let count = n.min(self.fifo.len());
                copy(out, &(count as u16).to_le_bytes());
                for i in 0..count {
                    let at = 2 + i * regs::EDGE_EVENT_LEN;
                    if at >= out.len() {
                        break;
                    }
                    let whole = at + regs::EDGE_EVENT_LEN <= out.len();
                    let ev = if whole {
                        self.fifo.pop_front()
                    } else {
                        self.fifo.front().copied()
                    };
                    if let Some(ev) = ev {
                        copy(&mut out[at..], &ev.to_bytes());
                    }
                }
            }
            _ => {
                let seq = u32::from_le_bytes([hdr[1], hdr[2], hdr[3], hdr[4]]);
                let mut buf = [0u8; regs::snapshot_len(regs::MAX_N_CHANNELS)];
                let len = self.snapshot(seq, &mut buf);
                copy(out, &buf[..len]);
            }
        }
    }

    /// [`RefModel::exchange`] returning the MISO bytes.
    pub fn exchange_vec(&mut self, mosi: &[u8]) -> Vec<u8> {
        let mut miso = vec![0u8; mosi.len()];
        self.exchange(mosi, &mut miso);
        miso
    }
}
