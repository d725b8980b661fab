//! The simulated FPGA: the physics (encoder, detectors) in front of a register-level FPGA
//! ([`Registers`]), and the ground-truth reference fed with what happens.
//!
//! The register level is the FPGA contract crate's reference model ([`ModelRegisters`]) or the
//! gateware itself in an RTL simulator (`crate::rtl`); the physics tells it, in clock ticks,
//! when the synchronised A/B change and how many detector pulses fall between two observations.
//!
//! Time is explicit: [`FpgaModel::advance_to`] moves the clock and produces every edge up to
//! then; SPI accesses act at the current clock. Detector pulses are drawn only at edges and at
//! counter resets, so the numbers do not depend on how often the model is advanced.
//!
//! [`SpiHandle`] and [`DrdyHandle`] expose a shared model as embedded-hal 1.0 `SpiDevice` and
//! `InputPin`, so the firmware's own driver runs against it unchanged.

use crate::detectors::Counters;
use crate::encoder::{Encoder, EncoderStats};
use crate::truth::Reference;
use flyscan_fpga_contract::model::{ModelConfig, ModelStats, RefModel};
use flyscan_fpga_contract::regs::{self, reg};
use std::io;
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

impl FpgaParams {
    /// The contract model's geometry for these parameters.
    pub fn model_config(&self) -> ModelConfig {
        ModelConfig {
            clock_hz: u32::try_from(self.clock_hz).unwrap_or(u32::MAX),
            n_channels: self.n_channels,
            counter_bits: self.counter_bits,
            fifo_depth: self.fifo_depth,
            snapshot_depth: self.snapshot_depth,
        }
    }
}

/// What the register level has done, for reports.
pub type FpgaStats = ModelStats;

/// The register level of the FPGA, driven by the physics in clock ticks. Calls come in time
/// order: `pulses(from, to, …)` and `edge(to, …)` for each edge, `advance_to` whenever the
/// clock moves, `exchange` at the current clock.
pub trait Registers: Send + std::fmt::Debug {
    /// Time passes up to `tick` (never backwards).
    fn advance_to(&mut self, tick: u64) -> io::Result<()>;
    /// `counts[ch]` detector pulses are counted on channel `ch` after cycle `from` and before
    /// cycle `to` (so an edge at `to` sees them).
    fn pulses(&mut self, from: u64, to: u64, counts: &[u32]) -> io::Result<()>;
    /// The synchronised A/B take `ab` at cycle `tick`.
    fn edge(&mut self, tick: u64, ab: u8) -> io::Result<()>;
    /// One SPI transaction (MOSI bytes in, MISO bytes out) at the current clock.
    fn exchange(&mut self, mosi: &[u8]) -> io::Result<Vec<u8>>;
    /// The `DRDY` line now.
    fn data_ready(&mut self) -> io::Result<bool>;
    /// What it has done.
    fn stats(&self) -> FpgaStats;
}

/// The contract's reference model as the register level.
#[derive(Debug)]
pub struct ModelRegisters(pub RefModel);

impl Registers for ModelRegisters {
    fn advance_to(&mut self, tick: u64) -> io::Result<()> {
        self.0.advance_to(tick);
        Ok(())
    }

    fn pulses(&mut self, _from: u64, to: u64, counts: &[u32]) -> io::Result<()> {
        // All in the last cycle before `to`: where in the interval they fall is invisible.
        self.0.advance_to(to.saturating_sub(1));
        for (ch, &n) in counts.iter().enumerate() {
            self.0.count(ch, n);
        }
        Ok(())
    }

    fn edge(&mut self, tick: u64, ab: u8) -> io::Result<()> {
        self.0.advance_to(tick);
        self.0.set_ab(ab);
        Ok(())
    }

    fn exchange(&mut self, mosi: &[u8]) -> io::Result<Vec<u8>> {
        Ok(self.0.exchange_vec(mosi))
    }

    fn data_ready(&mut self) -> io::Result<bool> {
        Ok(self.0.data_ready())
    }

    fn stats(&self) -> FpgaStats {
        self.0.stats()
    }
}

/// The model.
#[derive(Debug)]
pub struct FpgaModel {
    p: FpgaParams,
    now: u64,
    encoder: Encoder,
    counters: Counters,
    /// Last true count seen (for detector rates).
    true_count: i64,
    ab: u8,
    /// Tick of the last detector observation (edge or reset).
    observed: u64,
    /// Counter totals handed to the register level so far.
    fed: Vec<u64>,
    regs: Box<dyn Registers>,
    /// The first error of the register level; the model answers zeros after it.
    failure: Option<String>,
    truth: Reference,
}

impl FpgaModel {
    /// A powered-up FPGA (clock 0, capture off) on `encoder` and `counters`, reporting to
    /// `truth`, with the reference model as its register level.
    pub fn new(p: FpgaParams, encoder: Encoder, counters: Counters, truth: Reference) -> Self {
        let mut m = RefModel::new(p.model_config());
        m.set_version(p.version);
        Self::with_registers(p, encoder, counters, truth, Box::new(ModelRegisters(m)))
    }

    /// As [`FpgaModel::new`] on another register level (e.g. the gateware in an RTL simulator).
    pub fn with_registers(
        p: FpgaParams,
        encoder: Encoder,
        counters: Counters,
        truth: Reference,
        regs: Box<dyn Registers>,
    ) -> Self {
        let n = usize::from(p.n_channels);
        let ab = encoder.ab_now();
        Self {
            p,
            now: 0,
            encoder,
            counters,
            true_count: 0,
            ab,
            observed: 0,
            fed: vec![0; n],
            regs,
            failure: None,
            truth,
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

    /// Register-level counters.
    pub fn stats(&self) -> FpgaStats {
        self.regs.stats()
    }

    /// The first error of the register level (an RTL simulator that died), if any.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    fn check<T: Default>(&mut self, r: io::Result<T>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => {
                self.failure
                    .get_or_insert_with(|| format!("FPGA register level: {e}"));
                T::default()
            }
        }
    }

    /// The data-ready line.
    pub fn data_ready(&mut self) -> bool {
        if self.failure.is_some() {
            return false;
        }
        let r = self.regs.data_ready();
        self.check(r)
    }

    /// Draws the detector pulses up to `tick` and hands the new ones to the register level as
    /// counted between the last observation and `until`.
    fn observe(&mut self, tick: u64, until: u64) {
        self.counters.advance(tick, self.true_count, true);
        let counts: Vec<u32> = self
            .counters
            .totals()
            .iter()
            .zip(&mut self.fed)
            .map(|(&t, f)| {
                // Only the low COUNTER_BITS matter to the FPGA; 32 bits carry them.
                let d = t.wrapping_sub(*f) as u32;
                *f = t;
                d
            })
            .collect();
        if self.failure.is_none() && counts.iter().any(|&c| c != 0) {
            let r = self.regs.pulses(self.observed, until, &counts);
            self.check(r);
        }
        self.observed = tick;
    }

    /// Moves the clock to `tick` (never backwards), producing every edge up to it.
    pub fn advance_to(&mut self, tick: u64) {
        while let Some(e) = self.encoder.next_visible(tick) {
            self.observe(e.tick, e.tick);
            self.true_count = e.true_count;
            self.ab = e.ab;
            self.truth
                .edge(e.tick, e.ab, e.true_count, self.counters.totals());
            if self.failure.is_none() {
                let r = self.regs.edge(e.tick, e.ab);
                self.check(r);
            }
        }
        self.now = self.now.max(tick);
        if self.failure.is_none() {
            let r = self.regs.advance_to(self.now);
            self.check(r);
        }
    }

    /// Runs one SPI transaction given as the bytes written on MOSI (reads clock out 0x00);
    /// returns the MISO bytes, one per MOSI byte. A counter reset in it is also the moment the
    /// physics' detector totals and the truth restart.
    pub fn spi_exchange(&mut self, mosi: &[u8]) -> io::Result<Vec<u8>> {
        if let Some(f) = &self.failure {
            return Err(io::Error::other(f.clone()));
        }
        if let [regs::CMD_WRITE_REG, reg::CONTROL, v0, ..] = *mosi
            && mosi.len() >= 6
            && u32::from(v0) & regs::CONTROL_RESET != 0
        {
            // Pulses up to now are counted before the reset (and zeroed by it).
            self.observe(self.now, self.now + 1);
            self.truth.reset(self.ab, self.true_count);
        }
        let r = self.regs.exchange(mosi);
        if let Err(e) = &r {
            self.failure
                .get_or_insert_with(|| format!("FPGA register level: {e}"));
        }
        r
    }
}

/// A model shared between the simulation loop, SPI and pin handles, and the socket server.
pub type SharedFpga = Arc<Mutex<FpgaModel>>;

/// Locks the model, recovering it if a holder panicked (the model has no invariants a panic
/// mid-update could break that matter more than stopping the run).
pub fn lock(m: &SharedFpga) -> MutexGuard<'_, FpgaModel> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// SPI error of the model: its register level failed (an RTL simulator that died).
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

/// Flattens a transaction's operations into MOSI bytes, runs it, and copies the MISO bytes
/// back into the reading operations.
pub fn run_transaction(
    model: &mut FpgaModel,
    ops: &mut [embedded_hal::spi::Operation<'_, u8>],
) -> io::Result<()> {
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
    let miso = model.spi_exchange(&mosi)?;
    if miso.len() != mosi.len() {
        return Err(io::Error::other("the FPGA answered a short transaction"));
    }
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
    Ok(())
}

impl embedded_hal::spi::SpiDevice for SpiHandle {
    fn transaction(
        &mut self,
        operations: &mut [embedded_hal::spi::Operation<'_, u8>],
    ) -> Result<(), Self::Error> {
        run_transaction(&mut lock(&self.0), operations).map_err(|_| SpiModelError)
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
