//! The simulated FPGA: the physics (encoder, detectors) in front of a register-level FPGA
//! ([`Registers`]), and the ground-truth reference fed with what happens.
//!
//! The register level is the FPGA contract crate's reference model ([`ModelRegisters`]) or the
//! gateware itself in an RTL simulator (`crate::rtl`); the physics tells it, in clock ticks,
//! when the synchronised A/B change and how many detector pulses fall between two observations.
//!
//! Time is explicit: [`FpgaModel::advance_to`] moves the clock and produces every edge up to
//! then; SPI accesses act at the current clock. Detector pulses are drawn only at edges, at
//! counter resets and (time mode) at the ends of the period timer's periods, so the numbers do
//! not depend on how often the model is advanced.
//!
//! Time mode: the register level runs its own period timer from the firmware's `PERIOD` write
//! (FPGA.md *Period timer*). The physics learns the write's tick (the arm) from the register
//! level and ends a period every scan period from there: it draws the pulses up to each period
//! end before the register level reaches it, and reports the period to the truth. It takes the
//! period from the scan, not from the write, so a firmware that programmed another period gets
//! snapshots at other ticks than the truth's and fails the comparison.
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
    /// The cycle a transaction of `len` bytes starting now will end at, for a register level
    /// whose transactions take clock time (the RTL); `None` when they take none.
    fn transaction_end(&self, len: usize) -> Option<u64>;
    /// The cycle a command of `header_len` header bytes, in a transaction starting now,
    /// executes at, for a register level whose transactions take clock time (the RTL); `None`
    /// when it executes at the current clock.
    fn execution_tick(&self, header_len: usize) -> Option<u64>;
    /// The clock cycle a register level that simulates cycles has reached (`None` for one
    /// whose time is only what it is told).
    fn cycle(&self) -> Option<u64>;
    /// What it has done.
    fn stats(&self) -> FpgaStats;
}

/// How the physics drives a register level that simulates clock cycles (the RTL).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pacing {
    /// Ticks the physics runs ahead of the clock, so the RTL gets its pin changes before it
    /// gets there.
    pub lookahead: u64,
    /// Most ticks one [`FpgaModel::advance_to`] moves the clock once the motion runs: the
    /// device clock then follows the RTL's pace instead of running away from it on a busy
    /// machine (which the firmware would see as a stalled FPGA and a FIFO overrun).
    pub max_step: u64,
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

    fn transaction_end(&self, _len: usize) -> Option<u64> {
        None
    }

    fn execution_tick(&self, _header_len: usize) -> Option<u64> {
        None
    }

    fn cycle(&self) -> Option<u64> {
        None
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
    /// How a register level that simulates clock cycles is driven (zero for the model).
    pacing: Pacing,
    /// Time mode while the period timer runs: (tick of the next period end, the period).
    periods: Option<(u64, u64)>,
    truth: Reference,
}

impl FpgaModel {
    /// A powered-up FPGA (clock 0, capture off) on `encoder` and `counters`, reporting to
    /// `truth`, with the reference model as its register level.
    pub fn new(p: FpgaParams, encoder: Encoder, counters: Counters, truth: Reference) -> Self {
        let mut m = RefModel::new(p.model_config());
        m.set_version(p.version);
        Self::with_registers(
            p,
            encoder,
            counters,
            truth,
            Box::new(ModelRegisters(m)),
            Pacing::default(),
        )
    }

    /// As [`FpgaModel::new`] on another register level (e.g. the gateware in an RTL simulator),
    /// driven with `pacing`. Edges and pulse counts do not depend on the pacing (they are drawn
    /// at edges and resets only, and resets happen before the motion), so the stimulus is the
    /// same as the reference model's.
    pub fn with_registers(
        p: FpgaParams,
        encoder: Encoder,
        counters: Counters,
        truth: Reference,
        regs: Box<dyn Registers>,
        pacing: Pacing,
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
            pacing,
            periods: None,
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
            if self.pacing.lookahead > 0 && self.failure.is_none() {
                // The RTL must not have passed the start (see `advance_to`).
                let r = self.regs.advance_to(self.now);
                self.check(r);
            }
            self.encoder.start_motion(self.now);
            self.truth.arm();
        }
    }

    /// Tick the motion started at (0 before).
    pub fn motion_start_tick(&self) -> u64 {
        self.encoder.motion_start().unwrap_or(0)
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

    /// The cycle an RTL register level has reached (`None` for the reference model).
    pub fn register_cycle(&self) -> Option<u64> {
        self.regs.cycle()
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
    /// counted between the last observation and `until` (or drops them, when a counter reset
    /// is about to zero them anyway).
    fn observe(&mut self, tick: u64, until: Option<u64>) {
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
        if let Some(until) = until
            && self.failure.is_none()
            && counts.iter().any(|&c| c != 0)
        {
            let r = self.regs.pulses(self.observed, until, &counts);
            self.check(r);
        }
        self.observed = tick;
    }

    /// Ends the periods of the period timer before `until` (and at `until` itself when
    /// `inclusive`): the pulses up to each end go to the register level before it, and the end
    /// to the truth.
    fn periods_to(&mut self, until: u64, inclusive: bool) {
        while let Some((end, period)) = self.periods
            && (end < until || (inclusive && end == until))
        {
            // Pulses before the last observation were handed over already (or dropped by a
            // reset): only the rest is drawn here.
            if end > self.observed {
                self.observe(end, Some(end));
            }
            self.truth
                .period_end(end, self.counters.totals(), self.true_count);
            self.periods = Some((end + period, period));
        }
    }

    /// Produces every edge up to `tick` (and the period ends between them): to the truth, and
    /// to the register level.
    fn physics_to(&mut self, tick: u64) {
        while let Some(e) = self.encoder.next_visible(tick) {
            // A period ending on the edge's own tick is the FPGA's same event, with the edge in.
            self.periods_to(e.tick, false);
            self.observe(e.tick, Some(e.tick));
            self.true_count = e.true_count;
            self.ab = e.ab;
            self.truth
                .edge(e.tick, e.ab, e.true_count, self.counters.totals());
            if self.failure.is_none() {
                let r = self.regs.edge(e.tick, e.ab);
                self.check(r);
            }
            self.periods_to(e.tick, true);
        }
        self.periods_to(tick, true);
    }

    /// Moves the clock to `tick` (never backwards; once the motion runs, at most the pacing's
    /// `max_step` at a time), producing every edge up to it (and up to the look-ahead beyond).
    pub fn advance_to(&mut self, tick: u64) {
        let tick = if self.pacing.max_step > 0 && self.motion_started() {
            tick.min(self.now + self.pacing.max_step)
        } else {
            tick
        };
        self.physics_to(tick + self.pacing.lookahead);
        self.now = self.now.max(tick);
        // An RTL register level (one with a look-ahead) waits for the motion: before the arm
        // the device clock is held, but each SPI transaction takes bus time in the RTL, so it
        // drifts a little past wherever it is. Kept near cycle 0 until then, it can still be
        // at the hold tick when the motion starts there, as on the reference model.
        let waits = self.pacing.lookahead > 0 && !self.motion_started();
        if self.failure.is_none() && !waits {
            let r = self.regs.advance_to(self.now);
            self.check(r);
        }
    }

    /// The firmware writes `PERIOD` = `value`, executing at tick `at`: the period timer starts
    /// there (the arm: the first bin starts at `at`) or stops.
    fn period_written(&mut self, at: u64, value: u32) {
        let Some(period) = self.truth.period() else {
            // Not a time-mode scan: no period is the truth's, the physics ends none.
            return;
        };
        if value == 0 {
            self.periods = None;
            self.truth.timer_stopped();
            return;
        }
        // Period ends before the restart belong to the old timer.
        self.periods_to(at, false);
        if at > self.observed {
            // The pulses before the arm count before the start event's snapshot.
            self.observe(at, Some(at));
        }
        self.truth.timer_started(at, self.counters.totals());
        self.periods = Some((at + period, period));
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
            if self.observed > self.now {
                // The physics ran ahead and already handed later pulses over.
                let msg = "a counter reset while the motor moves cannot be replayed on the RTL";
                self.failure.get_or_insert_with(|| msg.to_owned());
                return Err(io::Error::other(msg));
            }
            // Pulses up to now would be counted before the reset and zeroed by it.
            self.observe(self.now, None);
            self.truth.reset(self.ab, self.true_count);
            // A reset stops the period timer.
            self.periods = None;
            self.truth.timer_stopped();
        }
        if let [regs::CMD_WRITE_REG, reg::PERIOD, v0, v1, v2, v3, ..] = *mosi {
            let at = self
                .regs
                .execution_tick(regs::CMD_WRITE_REG_HEADER)
                .unwrap_or(self.now);
            self.period_written(at, u32::from_le_bytes([v0, v1, v2, v3]));
        }
        if let Some(end) = self.regs.transaction_end(mosi.len()) {
            // Edges during a long transaction (a READ_EDGES of 256 events is ~3 ms at 10 MHz
            // SCLK) must reach the RTL's pins before it gets there.
            self.physics_to(end + self.pacing.lookahead);
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
