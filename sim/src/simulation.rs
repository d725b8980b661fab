//! The in-process virtual device: FPGA model + a firmware core + the serial line, stepped in
//! simulated time. Deterministic: the same scenario and the same host behaviour give the same
//! bytes, points and truth.
//!
//! The motor rests at count 0 until the device announces `ScanArmed` (seen by deframing the
//! device's own output before the line), then runs its trajectory.
//!
//! Two time bases: the serial line runs on link ticks (the wall clock in `sim run`), the FPGA
//! model and the device core on device ticks. [`Simulation::step_held`] derives the device tick
//! by the rule of [`crate::device_clock`] (held at [`ARM_TICK`] until the arm), so the results
//! do not depend on when the host armed; [`Simulation::step`] uses one tick for both.

use crate::detectors::Counters;
use crate::device_clock::{ARM_TICK, HeldClock};
use crate::encoder::Encoder;
use crate::fpga::{FpgaModel, FpgaParams, Pacing, Registers, SharedFpga, lock};
use crate::link::{Link, LinkStats};
use crate::plan::ScanPlan;
use crate::rng::{rng_for, stream};
use crate::scenario::{Scenario, ScenarioError};
use crate::trajectory::Trajectory;
use crate::truth::{Reference, TruthPoint, TruthScan, TruthSummary};
use flyscan_protocol::limits::MAX_ENCODED_FRAME;
use flyscan_protocol::{Deframer, Direction, Message, TriggerMode};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A device core the simulation can drive: bytes in, time, bytes out (the firmware's sans-I/O
/// interface).
pub trait Device {
    /// Host → device bytes as they arrive from the line.
    fn receive(&mut self, bytes: &[u8]);
    /// Does the device's work at clock tick `now`; an error ends the run.
    fn poll(&mut self, now: u64) -> Result<(), String>;
    /// Device → host bytes, at most `out.len()`; returns how many.
    fn transmit(&mut self, out: &mut [u8]) -> usize;
}

/// Builds the FPGA model of a scenario (motor at rest, clock 0).
pub fn build_fpga(sc: &Scenario, plan: &ScanPlan) -> FpgaModel {
    build_fpga_on(sc, plan, None)
}

/// As [`build_fpga`], on another register level than the reference model (with its
/// pacing), e.g. [`crate::rtl::RtlRegisters`].
pub fn build_fpga_on(
    sc: &Scenario,
    plan: &ScanPlan,
    regs: Option<(Box<dyn Registers>, Pacing)>,
) -> FpgaModel {
    let way = plan.motion_points(sc);
    let up0 = match plan.config.direction {
        Direction::Positive => true,
        Direction::Negative => false,
        // Time mode: from rest at 0 towards `move_to`.
        _ if plan.config.mode == TriggerMode::Time => sc.scan.move_to >= 0,
        _ => way.last() >= way.first(),
    };
    let traj = Trajectory::for_scan(sc, &way, plan.config.passes, up0);
    let encoder = Encoder::new(sc, traj);
    let counters = Counters::new(sc);
    let truth = Reference::new(TruthScan {
        presets: plan.positions.clone(),
        direction: plan.config.direction,
        passes: plan.config.passes,
        channel_mask: plan.config.channel_mask,
        time: plan.time_scan(),
    });
    let p = fpga_params(sc);
    match regs {
        None => FpgaModel::new(p, encoder, counters, truth),
        Some((regs, pacing)) => {
            FpgaModel::with_registers(p, encoder, counters, truth, regs, pacing)
        }
    }
}

/// The FPGA design parameters of a scenario.
pub fn fpga_params(sc: &Scenario) -> FpgaParams {
    FpgaParams {
        clock_hz: sc.clock.hz,
        n_channels: sc.detectors.channels,
        counter_bits: sc.fpga.counter_bits,
        fifo_depth: sc.fpga.fifo_depth,
        snapshot_depth: sc.fpga.snapshot_depth,
        version: sc.fpga.version,
    }
}

/// Watches a device → host byte stream for `ScanArmed`.
#[derive(Debug, Default)]
pub struct ArmWatch {
    deframer: Deframer,
    armed: bool,
}

impl ArmWatch {
    /// Feeds device output; returns true the first time a `ScanArmed` frame completes.
    pub fn feed(&mut self, bytes: &[u8]) -> bool {
        if self.armed {
            return false;
        }
        let mut seen = false;
        self.deframer.feed_all(
            bytes,
            |f| {
                if matches!(f.message(), Ok(Message::ScanArmed(_))) {
                    seen = true;
                }
            },
            |_| {},
        );
        self.armed = seen;
        seen
    }

    /// True once armed.
    pub fn armed(&self) -> bool {
        self.armed
    }
}

/// A host driven by the simulation: gets the link tick, the bytes that reached it, and a buffer for
/// bytes to send; returns true when finished.
pub type HostFn<'a> = dyn FnMut(u64, &[u8], &mut Vec<u8>) -> bool + 'a;

/// The simulation state.
#[derive(Debug)]
pub struct Simulation {
    scenario: Scenario,
    plan: ScanPlan,
    fpga: SharedFpga,
    up: Link,
    down: Link,
    watch: ArmWatch,
    /// Device clock now (FPGA model and device core).
    now: u64,
    /// Link clock now (line pacing, the host's time).
    link_now: u64,
    /// The hold rule used by [`Simulation::step_held`].
    hold: HeldClock,
    poll_ticks: u64,
    tx_buf: Vec<u8>,
    rx_buf: Vec<u8>,
}

/// Errors that stop a run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scenario is unusable.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The device core failed.
    #[error("device error at tick {tick}: {message}")]
    Device {
        /// When.
        tick: u64,
        /// What the device said.
        message: String,
    },
    /// The run exceeded `clock.max_duration_s`.
    #[error("simulated time limit of {0} s reached")]
    Timeout(f64),
    /// Writing the truth file failed.
    #[error("cannot write truth: {0}")]
    Io(#[from] std::io::Error),
}

impl Simulation {
    /// A simulation of `scenario`: line clock at 0, device clock at [`ARM_TICK`] (where an
    /// external firmware finds the socket model too, so a device core created now starts at
    /// the same device time as there, and both give the same numbers).
    pub fn new(scenario: Scenario) -> Result<Self, SimError> {
        scenario.validate()?;
        let plan = ScanPlan::from_scenario(&scenario)?;
        let mut model = build_fpga(&scenario, &plan);
        model.advance_to(ARM_TICK);
        let fpga = Arc::new(Mutex::new(model));
        let hz = scenario.clock.hz as f64;
        let l = &scenario.link;
        let up = Link::new(
            l.baud,
            hz,
            l.bit_error_rate,
            l.drop_rate,
            rng_for(scenario.seed, stream::LINK_UP),
        );
        let down = Link::new(
            l.baud,
            hz,
            l.bit_error_rate,
            l.drop_rate,
            rng_for(scenario.seed, stream::LINK_DOWN),
        );
        let poll_ticks = (scenario.clock.poll_interval_us * scenario.clock.hz / 1_000_000).max(1);
        Ok(Self {
            scenario,
            plan,
            fpga,
            up,
            down,
            watch: ArmWatch::default(),
            now: ARM_TICK,
            link_now: 0,
            hold: HeldClock::new(ARM_TICK),
            poll_ticks,
            tx_buf: vec![0; MAX_ENCODED_FRAME],
            rx_buf: Vec::new(),
        })
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The scan plan the host should apply.
    pub fn plan(&self) -> &ScanPlan {
        &self.plan
    }

    /// The shared FPGA model (build the firmware's `SpiHandle`/`DrdyHandle` from it).
    pub fn fpga(&self) -> SharedFpga {
        self.fpga.clone()
    }

    /// Device clock now, ticks.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Link clock now, ticks.
    pub fn link_now(&self) -> u64 {
        self.link_now
    }

    /// Link tick of the step in which the device armed (None before).
    pub fn armed_at_link_tick(&self) -> Option<u64> {
        self.hold.released_at()
    }

    /// Ticks between two device polls.
    pub fn poll_ticks(&self) -> u64 {
        self.poll_ticks
    }

    /// True once the device announced the scan and the motor started.
    pub fn armed(&self) -> bool {
        self.watch.armed()
    }

    /// Advances both clocks to `tick` (one time base, as in a purely virtual run): see
    /// [`Simulation::step_ticks`].
    pub fn step(
        &mut self,
        tick: u64,
        dev: &mut dyn Device,
        host_tx: &[u8],
        host_rx: &mut Vec<u8>,
    ) -> Result<(), SimError> {
        self.step_ticks(tick, tick, dev, host_tx, host_rx)
    }

    /// Advances the link clock to `link_tick` and the device clock to the tick the hold rule
    /// gives (held at [`ARM_TICK`] until the arm, then following the link clock): see
    /// [`Simulation::step_ticks`].
    pub fn step_held(
        &mut self,
        link_tick: u64,
        dev: &mut dyn Device,
        host_tx: &[u8],
        host_rx: &mut Vec<u8>,
    ) -> Result<(), SimError> {
        let device_tick = self.hold.device_tick(link_tick.max(self.link_now));
        self.step_ticks(link_tick, device_tick, dev, host_tx, host_rx)
    }

    /// Advances the FPGA to `device_tick` (it produces the edges up to then) and the line to
    /// `link_tick`: bytes that finished on the line reach the device, the device polls at
    /// `device_tick` and transmits (as fast as the line takes them), and bytes that finished
    /// towards the host are appended to `host_rx`. `host_tx` enters the line now. Neither clock
    /// goes backwards. When the device's output announces `ScanArmed`, the motion starts at
    /// `device_tick` and the hold rule is released at `link_tick`.
    pub fn step_ticks(
        &mut self,
        link_tick: u64,
        device_tick: u64,
        dev: &mut dyn Device,
        host_tx: &[u8],
        host_rx: &mut Vec<u8>,
    ) -> Result<(), SimError> {
        let link = link_tick.max(self.link_now);
        self.link_now = link;
        let tick = device_tick.max(self.now);
        self.now = tick;
        lock(&self.fpga).advance_to(tick);
        self.rx_buf.clear();
        self.down.deliver(link, &mut self.rx_buf);
        if !self.rx_buf.is_empty() {
            dev.receive(&self.rx_buf);
        }
        dev.poll(tick)
            .map_err(|message| SimError::Device { tick, message })?;
        loop {
            let room = self.up.room(link);
            if room == 0 {
                break;
            }
            let n = dev.transmit(&mut self.tx_buf[..room]);
            if n == 0 {
                break;
            }
            if self.watch.feed(&self.tx_buf[..n]) {
                lock(&self.fpga).start_motion();
                self.hold.release(link);
            }
            self.up.send(link, &self.tx_buf[..n]);
        }
        self.up.deliver(link, host_rx);
        self.down.send(link, host_tx);
        Ok(())
    }

    /// Runs with `host` until it returns `true` ("finished"), stepping the link clock every
    /// poll interval with the device clock held until the arm ([`Simulation::step_held`]), so
    /// the outcome does not depend on how long the host takes to arm. `host` gets the link
    /// tick, the bytes that reached it, and a buffer for bytes to send. The time limit
    /// (`clock.max_duration_s`) counts link time.
    pub fn run_with_host(
        &mut self,
        dev: &mut dyn Device,
        host: &mut HostFn<'_>,
    ) -> Result<(), SimError> {
        let limit = (self.scenario.clock.max_duration_s * self.scenario.clock.hz as f64) as u64;
        let mut rx = Vec::new();
        let mut tx = Vec::new();
        loop {
            let t = self.link_now + self.poll_ticks;
            if t > limit {
                return Err(SimError::Timeout(self.scenario.clock.max_duration_s));
            }
            rx.clear();
            self.step_held(t, dev, &tx, &mut rx)?;
            tx.clear();
            if host(t, &rx, &mut tx) {
                return Ok(());
            }
        }
    }

    /// True when no device → host byte is in flight on the line.
    pub fn line_idle(&self) -> bool {
        self.up.idle()
    }

    /// Expected points so far.
    pub fn truth_points(&self) -> Vec<TruthPoint> {
        lock(&self.fpga).truth().points().to_vec()
    }

    /// Link counters (device → host, host → device).
    pub fn link_stats(&self) -> (LinkStats, LinkStats) {
        (self.up.stats(), self.down.stats())
    }

    /// The end-of-run summary.
    pub fn summary(&self) -> TruthSummary {
        let f = lock(&self.fpga);
        summarize(&f, &self.plan, self.up.stats(), self.down.stats())
    }

    /// Writes the truth as JSON lines: one per point, then `{"summary": …}`.
    pub fn write_truth(&self, path: &Path) -> Result<(), SimError> {
        write_truth_file(path, &self.truth_points(), &self.summary())
    }
}

/// The summary of a model and its links.
pub fn summarize(f: &FpgaModel, plan: &ScanPlan, up: LinkStats, down: LinkStats) -> TruthSummary {
    let e = f.encoder_stats();
    TruthSummary {
        points: f.truth().points().len() as u64,
        points_planned: plan.total_points(),
        glitches_injected: e.glitches,
        missing_edges_injected: e.missing,
        illegal_transitions: f.truth().illegal(),
        decoder_slips: f.truth().slips(),
        fifo_overruns: f.stats().events_dropped,
        jump_points: f.truth().jumps(),
        position_jumps: f.truth().multi_fire_edges(),
        up_bytes_sent: up.bytes_sent,
        up_bytes_corrupted: up.bytes_corrupted,
        up_bytes_dropped: up.bytes_dropped,
        down_bytes_corrupted: down.bytes_corrupted,
        down_bytes_dropped: down.bytes_dropped,
    }
}

/// Writes truth points and the summary as JSON lines.
pub fn write_truth_file(
    path: &Path,
    points: &[TruthPoint],
    summary: &TruthSummary,
) -> Result<(), SimError> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    for p in points {
        serde_json::to_writer(&mut w, p).map_err(std::io::Error::other)?;
        w.write_all(b"\n")?;
    }
    serde_json::to_writer(&mut w, &serde_json::json!({ "summary": summary }))
        .map_err(std::io::Error::other)?;
    w.write_all(b"\n")?;
    w.flush()?;
    Ok(())
}
