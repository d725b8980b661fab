//! The FPGA model: implements firmware-odroid/FPGA.md (constants from its `regs.rs`) on top of
//! the encoder and detector models, and feeds the ground-truth reference with what happens.
//!
//! Time is explicit: [`FpgaModel::advance_to`] moves the model's clock and produces every edge
//! up to then; SPI accesses act at the current clock. Detector pulses are drawn only at edges
//! and at counter resets, so the numbers do not depend on how often the model is advanced.
//!
//! [`SpiHandle`] and [`DrdyHandle`] expose a shared model as embedded-hal 1.0 `SpiDevice` and
//! `InputPin`, so the firmware's own driver runs against it unchanged.

use crate::detectors::Counters;
use crate::encoder::{Encoder, EncoderStats};
use crate::truth::Reference;
use flyscan_firmware::fpga::regs::{self, reg};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// Static parameters of the modelled FPGA design.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FpgaParams {
    /// Clock, Hz.
    pub clock_hz: u64,
    /// Detector channels.
    pub n_channels: u8,
    /// Counter width, bits.
    pub counter_bits: u8,
    /// Edge FIFO depth.
    pub fifo_depth: u32,
    /// Snapshot RAM depth (power of two).
    pub snapshot_depth: u32,
    /// VERSION register.
    pub version: u32,
}

/// What the model has seen, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FpgaStats {
    /// SPI transactions served.
    pub transactions: u64,
    /// Edge events stored in the FIFO.
    pub events_stored: u64,
    /// Edge events dropped (FIFO full).
    pub events_dropped: u64,
    /// Most events ever in the FIFO.
    pub fifo_high_water: u32,
    /// Counter resets written.
    pub resets: u64,
}

/// The model.
#[derive(Debug)]
pub struct FpgaModel {
    p: FpgaParams,
    mask: u64,
    now: u64,
    encoder: Encoder,
    counters: Counters,
    /// Last true count seen (for detector rates).
    true_count: i64,
    ab: u8,
    enabled: bool,
    reset_tick: u64,
    count_base: Vec<u64>,
    seq: u32,
    fifo: VecDeque<[u8; regs::EDGE_EVENT_LEN]>,
    lost_since_stored: bool,
    status_overrun: bool,
    overrun_count: u32,
    /// Per slot: Some(seq) once written since the last reset.
    snap_seq: Vec<Option<u32>>,
    snap_live: Vec<u32>,
    snap_counts: Vec<u32>,
    time_hi: u32,
    truth: Reference,
    stats: FpgaStats,
}

impl FpgaModel {
    /// A powered-up FPGA (clock 0, capture off) on `encoder` and `counters`, reporting to
    /// `truth`.
    pub fn new(p: FpgaParams, encoder: Encoder, counters: Counters, truth: Reference) -> Self {
        let n = usize::from(p.n_channels);
        let depth = p.snapshot_depth as usize;
        let ab = encoder.ab_now();
        Self {
            p,
            mask: if p.counter_bits >= 32 {
                u64::from(u32::MAX)
            } else {
                (1u64 << p.counter_bits) - 1
            },
            now: 0,
            encoder,
            counters,
            true_count: 0,
            ab,
            enabled: false,
            reset_tick: 0,
            count_base: vec![0; n],
            seq: 0,
            fifo: VecDeque::new(),
            lost_since_stored: false,
            status_overrun: false,
            overrun_count: 0,
            snap_seq: vec![None; depth],
            snap_live: vec![0; depth],
            snap_counts: vec![0; depth * n],
            time_hi: 0,
            truth,
            stats: FpgaStats::default(),
        }
    }

    /// Clock now, ticks.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Design parameters.
    pub fn params(&self) -> FpgaParams {
        self.p
    }

    /// Starts the motor at the current clock and arms the reference compare.
    pub fn start_motion(&mut self) {
        if self.encoder.motion_start().is_none() {
            self.encoder.start_motion(self.now);
            self.truth.arm();
        }
    }

    /// True once the motion started.
    pub fn motion_started(&self) -> bool {
        self.encoder.motion_start().is_some()
    }

    /// Tick the nominal motion ends (None before the start).
    pub fn motion_end_tick(&self) -> Option<u64> {
        self.encoder.motion_end_tick()
    }

    /// The ground-truth reference.
    pub fn truth(&self) -> &Reference {
        &self.truth
    }

    /// Encoder injection counters.
    pub fn encoder_stats(&self) -> EncoderStats {
        self.encoder.stats()
    }

    /// Model counters.
    pub fn stats(&self) -> FpgaStats {
        self.stats
    }

    /// Events waiting in the FIFO.
    pub fn fifo_level(&self) -> usize {
        self.fifo.len()
    }

    /// The data-ready line.
    pub fn data_ready(&self) -> bool {
        !self.fifo.is_empty()
    }

    /// Moves the clock to `tick` (never backwards), producing every edge up to it.
    pub fn advance_to(&mut self, tick: u64) {
        while let Some(e) = self.encoder.next_visible(tick) {
            self.counters.advance(e.tick, self.true_count, true);
            self.true_count = e.true_count;
            self.ab = e.ab;
            self.truth
                .edge(e.tick, e.ab, e.true_count, self.counters.totals());
            if self.enabled {
                self.record_edge(e.tick, e.ab);
            }
        }
        self.now = self.now.max(tick);
    }

    fn record_edge(&mut self, tick: u64, ab: u8) {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let depth = self.p.snapshot_depth as usize;
        let slot = seq as usize & (depth - 1);
        let n = usize::from(self.p.n_channels);
        self.snap_seq[slot] = Some(seq);
        self.snap_live[slot] = (tick.wrapping_sub(self.reset_tick) & self.mask) as u32;
        for ch in 0..n {
            let v = self.counters.totals()[ch].wrapping_sub(self.count_base[ch]) & self.mask;
            self.snap_counts[slot * n + ch] = v as u32;
        }
        if self.fifo.len() >= self.p.fifo_depth as usize {
            self.lost_since_stored = true;
            self.status_overrun = true;
            self.overrun_count = self.overrun_count.wrapping_add(1);
            self.stats.events_dropped += 1;
            return;
        }
        let mut ev = [0u8; regs::EDGE_EVENT_LEN];
        ev[0..8].copy_from_slice(&tick.to_le_bytes());
        ev[8..12].copy_from_slice(&seq.to_le_bytes());
        ev[12] = ab & 3;
        ev[13] = if std::mem::take(&mut self.lost_since_stored) {
            regs::EDGE_FLAG_OVERRUN
        } else {
            0
        };
        self.fifo.push_back(ev);
        self.stats.events_stored += 1;
        self.stats.fifo_high_water = self.stats.fifo_high_water.max(self.fifo.len() as u32);
    }

    /// Reads a register.
    pub fn read_reg(&mut self, addr: u8) -> u32 {
        match addr {
            reg::ID => regs::ID_MAGIC,
            reg::VERSION => self.p.version,
            reg::CLOCK_HZ => u32::try_from(self.p.clock_hz).unwrap_or(u32::MAX),
            reg::N_CHANNELS => u32::from(self.p.n_channels),
            reg::COUNTER_BITS => u32::from(self.p.counter_bits),
            reg::EDGE_FIFO_DEPTH => self.p.fifo_depth,
            reg::SNAPSHOT_DEPTH => self.p.snapshot_depth,
            reg::CONTROL => u32::from(self.enabled),
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
            _ => 0,
        }
    }

    /// Writes a register (only CONTROL is writable).
    pub fn write_reg(&mut self, addr: u8, value: u32) {
        if addr != reg::CONTROL {
            return;
        }
        if value & regs::CONTROL_RESET != 0 {
            self.counters.advance(self.now, self.true_count, true);
            self.reset_tick = self.now;
            self.count_base = self.counters.totals().to_vec();
            self.seq = 0;
            self.overrun_count = 0;
            self.snap_seq.iter_mut().for_each(|s| *s = None);
            self.stats.resets += 1;
            self.truth.reset(self.ab, self.true_count);
        }
        if value & regs::CONTROL_CLEAR_FIFO != 0 {
            self.fifo.clear();
            self.lost_since_stored = false;
        }
        self.enabled = value & regs::CONTROL_ENABLE != 0;
    }

    /// Pops up to `n` events into a READ_EDGES response (`count u16` + `n` slots).
    pub fn read_edges(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(regs::MAX_EDGES_PER_READ);
        let count = n.min(self.fifo.len());
        let mut out = Vec::with_capacity(2 + n * regs::EDGE_EVENT_LEN);
        out.extend_from_slice(&(count as u16).to_le_bytes());
        for _ in 0..count {
            if let Some(ev) = self.fifo.pop_front() {
                out.extend_from_slice(&ev);
            }
        }
        out.resize(2 + n * regs::EDGE_EVENT_LEN, 0);
        out
    }

    /// A READ_SNAPSHOT response for edge `seq`.
    pub fn read_snapshot(&self, seq: u32) -> Vec<u8> {
        let n = usize::from(self.p.n_channels);
        let slot = seq as usize & (self.p.snapshot_depth as usize - 1);
        let mut out = Vec::with_capacity(regs::snapshot_len(n));
        let stored = self.snap_seq[slot];
        out.push(u8::from(stored == Some(seq)));
        out.extend_from_slice(&stored.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&self.snap_live[slot].to_le_bytes());
        for ch in 0..n {
            out.extend_from_slice(&self.snap_counts[slot * n + ch].to_le_bytes());
        }
        out
    }

    /// Runs one SPI transaction given as the bytes written on MOSI (reads clock out 0x00);
    /// returns the MISO bytes, one per MOSI byte. The command header is decoded as soon as it
    /// is complete; the response follows it directly.
    pub fn spi_exchange(&mut self, mosi: &[u8]) -> Vec<u8> {
        self.stats.transactions += 1;
        let mut miso = vec![0u8; mosi.len()];
        let Some(&cmd) = mosi.first() else {
            return miso;
        };
        let hdr_len = match cmd {
            regs::CMD_READ_REG => 2,
            regs::CMD_WRITE_REG => 6,
            regs::CMD_READ_EDGES => 3,
            regs::CMD_READ_SNAPSHOT => 5,
            _ => return miso,
        };
        if mosi.len() < hdr_len {
            // CS rose before the header was complete: the command is aborted.
            return miso;
        }
        let h = &mosi[..hdr_len];
        let resp = match cmd {
            regs::CMD_READ_REG => self.read_reg(h[1]).to_le_bytes().to_vec(),
            regs::CMD_WRITE_REG => {
                self.write_reg(h[1], u32::from_le_bytes([h[2], h[3], h[4], h[5]]));
                Vec::new()
            }
            regs::CMD_READ_EDGES => {
                let n = usize::from(u16::from_le_bytes([h[1], h[2]]));
                self.read_edges(n)
            }
            _ => self.read_snapshot(u32::from_le_bytes([h[1], h[2], h[3], h[4]])),
        };
        for (m, r) in miso[hdr_len..].iter_mut().zip(resp) {
            *m = r;
        }
        miso
    }
}

/// A model shared between the simulation loop, SPI and pin handles, and the socket server.
pub type SharedFpga = Arc<Mutex<FpgaModel>>;

/// Locks the model, recovering it if a holder panicked (the model has no invariants a panic
/// mid-update could break that matter more than stopping the run).
pub fn lock(m: &SharedFpga) -> MutexGuard<'_, FpgaModel> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// SPI errors of the model (none happen; the type exists for the trait).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpiModelError;

impl embedded_hal::spi::Error for SpiModelError {
    fn kind(&self) -> embedded_hal::spi::ErrorKind {
        embedded_hal::spi::ErrorKind::Other
    }
}

/// The model as an embedded-hal `SpiDevice`.
#[derive(Debug, Clone)]
pub struct SpiHandle(pub SharedFpga);

impl embedded_hal::spi::ErrorType for SpiHandle {
    type Error = SpiModelError;
}

/// Flattens a transaction's operations into MOSI bytes and runs it; `apply` gets the MISO
/// bytes back in the same layout. Shared by the in-process handle and the socket server.
pub fn run_transaction(model: &mut FpgaModel, ops: &mut [embedded_hal::spi::Operation<'_, u8>]) {
    use embedded_hal::spi::Operation;
    let mut mosi = Vec::new();
    for op in ops.iter() {
        match op {
            Operation::Write(b) => mosi.extend_from_slice(b),
            Operation::Read(b) => mosi.extend(std::iter::repeat_n(0u8, b.len())),
            Operation::Transfer(r, w) => {
                let len = r.len().max(w.len());
                mosi.extend_from_slice(w);
                mosi.extend(std::iter::repeat_n(0u8, len - w.len()));
            }
            Operation::TransferInPlace(b) => mosi.extend_from_slice(b),
            Operation::DelayNs(_) => {}
        }
    }
    let miso = model.spi_exchange(&mosi);
    let mut at = 0;
    for op in ops.iter_mut() {
        match op {
            Operation::Write(b) => at += b.len(),
            Operation::Read(b) => {
                b.copy_from_slice(&miso[at..at + b.len()]);
                at += b.len();
            }
            Operation::Transfer(r, w) => {
                let len = r.len().max(w.len());
                r.copy_from_slice(&miso[at..at + r.len()]);
                at += len;
            }
            Operation::TransferInPlace(b) => {
                b.copy_from_slice(&miso[at..at + b.len()]);
                at += b.len();
            }
            Operation::DelayNs(_) => {}
        }
    }
}

impl embedded_hal::spi::SpiDevice for SpiHandle {
    fn transaction(
        &mut self,
        operations: &mut [embedded_hal::spi::Operation<'_, u8>],
    ) -> Result<(), Self::Error> {
        run_transaction(&mut lock(&self.0), operations);
        Ok(())
    }
}

/// The model's data-ready line as an embedded-hal `InputPin`.
#[derive(Debug, Clone)]
pub struct DrdyHandle(pub SharedFpga);

impl embedded_hal::digital::ErrorType for DrdyHandle {
    type Error = core::convert::Infallible;
}

impl embedded_hal::digital::InputPin for DrdyHandle {
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        Ok(lock(&self.0).data_ready())
    }

    fn is_low(&mut self) -> Result<bool, Self::Error> {
        Ok(!lock(&self.0).data_ready())
    }
}
