//! Scenario files: every knob of one simulated run, read from TOML (sim/SCENARIOS.md documents
//! each key). Missing sections and keys take the defaults below, so a scenario file only states
//! what it changes.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// A complete scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Seed of every random process of the run.
    pub seed: u64,
    /// Device clock.
    pub clock: ClockConfig,
    /// Motor trajectory.
    pub motor: MotorConfig,
    /// Quadrature encoder.
    pub encoder: EncoderConfig,
    /// Detector channels.
    pub detectors: DetectorConfig,
    /// The monochromator whose Bragg axis the encoder reads.
    pub mono: MonoConfig,
    /// The sample (absorbing element, edge, absorbance model).
    pub sample: SampleConfig,
    /// FPGA build parameters.
    pub fpga: FpgaConfig,
    /// Serial line.
    pub link: LinkConfig,
    /// The scan the host configures.
    pub scan: ScanPlanConfig,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            seed: 1,
            clock: ClockConfig::default(),
            motor: MotorConfig::default(),
            encoder: EncoderConfig::default(),
            detectors: DetectorConfig::default(),
            mono: MonoConfig::default(),
            sample: SampleConfig::default(),
            fpga: FpgaConfig::default(),
            link: LinkConfig::default(),
            scan: ScanPlanConfig::default(),
        }
    }
}

/// `[clock]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClockConfig {
    /// FPGA clock rate, Hz (timestamps and live time tick at this rate).
    pub hz: u64,
    /// Period of the firmware's poll loop in the in-process simulation, µs.
    pub poll_interval_us: u64,
    /// Longest simulated run before giving up, s.
    pub max_duration_s: f64,
}

impl Default for ClockConfig {
    fn default() -> Self {
        Self {
            hz: 100_000_000,
            poll_interval_us: 100,
            max_duration_s: 120.0,
        }
    }
}

/// `[motor]`: a trapezoidal move per pass plus jitter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MotorConfig {
    /// Cruise speed, counts/s.
    pub velocity: f64,
    /// Acceleration and deceleration, counts/s².
    pub acceleration: f64,
    /// Distance driven past the outermost preset before turning or stopping, counts.
    pub overrun: f64,
    /// Pause between arm and the start of the motion, s.
    pub start_delay_s: f64,
    /// Vibration added while the motor moves.
    pub jitter: JitterConfig,
}

impl Default for MotorConfig {
    fn default() -> Self {
        Self {
            velocity: 20_000.0,
            acceleration: 1_000_000.0,
            overrun: 100.0,
            start_delay_s: 0.001,
            jitter: JitterConfig::default(),
        }
    }
}

/// `[motor.jitter]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JitterConfig {
    /// Amplitude of the sinusoidal vibration, counts.
    pub sine_amplitude: f64,
    /// Frequency of the sinusoidal vibration, Hz.
    pub sine_frequency_hz: f64,
    /// RMS amplitude of the random (band-limited) vibration, counts.
    pub random_rms: f64,
    /// Upper frequency of the random vibration, Hz.
    pub random_bandwidth_hz: f64,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            sine_amplitude: 0.0,
            sine_frequency_hz: 50.0,
            random_rms: 0.0,
            random_bandwidth_hz: 300.0,
        }
    }
}

/// `[encoder]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncoderConfig {
    /// Encoder counts per user unit (`unit`), for the plan output.
    pub counts_per_unit: f64,
    /// Name of the user unit.
    pub unit: String,
    /// Probability per eligible edge of a glitch: the edge's state is too short for the FPGA to
    /// sample, so the next edge changes both lines at once (always decodable: only injected
    /// where the motion keeps its direction).
    pub glitch_rate: f64,
    /// Probability per edge that the FPGA misses it entirely (anywhere, reversals included).
    pub missing_edge_rate: f64,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            counts_per_unit: 10_000.0,
            unit: "mm".into(),
            glitch_rate: 0.0,
            missing_edge_rate: 0.0,
        }
    }
}

/// What a detector channel measures (the host's `CH<N>:Role` PV names it the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Role {
    /// Incident flux: the ion chamber in front of the sample.
    I0,
    /// Transmitted flux: the ion chamber behind the sample.
    It,
    /// Fluorescence of the absorbing element (plus scattered background).
    If,
    /// Flux behind the reference foil, which sits behind the It chamber.
    Iref,
    /// Not connected: dark counts only.
    #[default]
    #[serde(rename = "")]
    None,
}

impl Role {
    /// The role's name as in scenario files and PVs ("" when unused).
    pub fn name(self) -> &'static str {
        match self {
            Role::I0 => "I0",
            Role::It => "It",
            Role::If => "If",
            Role::Iref => "Iref",
            Role::None => "",
        }
    }
}

/// `[detectors]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorConfig {
    /// Number of channels (1–32).
    pub channels: u8,
    /// Role of channel N (index N); channels beyond the list have none (dark counts only), roles
    /// beyond `channels` are ignored.
    pub roles: Vec<Role>,
    /// Mean I0 count rate, pulses/s (an ion chamber behind a V/F converter).
    pub i0_rate: f64,
    /// It rate / I0 rate with no sample in the beam (the It chamber absorbs more).
    pub it_gain: f64,
    /// Iref rate / flux leaving the It chamber with no reference foil.
    pub iref_gain: f64,
    /// Fluorescence rate per unit edge step far above the edge at the mean I0, pulses/s.
    pub if_rate: f64,
    /// Scattered background in the fluorescence channel at the mean I0, pulses/s.
    pub scatter_rate: f64,
    /// Dark count rate of every channel (and of channels with no role), pulses/s.
    pub dark_rate: f64,
    /// Non-paralyzable dead time, ns (0 = none).
    pub dead_time_ns: f64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            channels: 8,
            roles: vec![Role::I0, Role::It, Role::If, Role::Iref],
            i0_rate: 400_000.0,
            it_gain: 2.0,
            iref_gain: 1.0,
            if_rate: 200_000.0,
            scatter_rate: 20_000.0,
            dark_rate: 100.0,
            dead_time_ns: 0.0,
        }
    }
}

impl DetectorConfig {
    /// Role of channel `ch`.
    pub fn role(&self, ch: usize) -> Role {
        self.roles.get(ch).copied().unwrap_or_default()
    }
}

/// Crystal reflection of the monochromator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Crystal {
    /// Si(111): d = a/√3.
    #[serde(rename = "Si(111)")]
    Si111,
    /// Si(311): d = a/√11.
    #[serde(rename = "Si(311)")]
    Si311,
}

/// `[mono]`: the double-crystal monochromator whose Bragg axis the encoder reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonoConfig {
    /// Crystal reflection (fixes the d-spacing).
    pub crystal: Crystal,
    /// Encoder counts per degree of Bragg angle (negative: counts fall as θ grows).
    pub counts_per_degree: f64,
    /// Encoder count at θ = 0 (the motor rests at count 0, i.e. at θ = −offset/counts_per_degree).
    pub angle_offset: f64,
}

impl Default for MonoConfig {
    fn default() -> Self {
        // Count 0 (where the motor rests) at θ = 13° (8789 eV with Si(111)); counts grow as θ
        // falls, so a positive scan goes up in energy.
        Self {
            crystal: Crystal::Si111,
            counts_per_degree: -20_000.0,
            angle_offset: 260_000.0,
        }
    }
}

/// One coordination shell of the EXAFS model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShellConfig {
    /// Coordination number N.
    pub n: f64,
    /// Distance R, Å.
    pub r_a: f64,
    /// Mean-square relative displacement σ², Å².
    pub sigma2_a2: f64,
    /// Phase shift φ(k) = phase[0] + phase[1]·k, rad and Å.
    pub phase: [f64; 2],
}

impl Default for ShellConfig {
    fn default() -> Self {
        Self {
            n: 12.0,
            r_a: 2.553,
            sigma2_a2: 0.0085,
            phase: [1.0, -0.7],
        }
    }
}

/// `[sample]`: the absorbing element, its edge and the sample's absorbance model (see
/// `sample.rs`); also the reference foil of the same element.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SampleConfig {
    /// Absorbing element, e.g. "Cu".
    pub element: String,
    /// Absorption edge, e.g. "K".
    pub edge: String,
    /// Edge energy E0 (steepest point of the edge), eV.
    pub e0_ev: f64,
    /// Absorbance μx just below the edge (matrix and lower edges).
    pub pre_edge: f64,
    /// Absorbance jump Δμx at the edge.
    pub edge_step: f64,
    /// Half width Γ of the arctan edge, eV.
    pub edge_width_ev: f64,
    /// White-line height relative to the edge step.
    pub white_line: f64,
    /// White-line position above E0, eV.
    pub white_line_ev: f64,
    /// White-line half width, eV.
    pub white_line_width_ev: f64,
    /// Amplitude reduction factor S0².
    pub s02: f64,
    /// Coordination shells.
    pub shells: Vec<ShellConfig>,
    /// Absorbance of the reference foil just below the edge.
    pub reference_pre_edge: f64,
    /// Edge step of the reference foil.
    pub reference_step: f64,
}

impl Default for SampleConfig {
    fn default() -> Self {
        // Copper metal (fcc, a = 3.615 Å): the first four shells.
        let shell = |n: f64, r_a: f64, sigma2_a2: f64| ShellConfig {
            n,
            r_a,
            sigma2_a2,
            phase: [1.0, -0.7],
        };
        Self {
            element: "Cu".into(),
            edge: "K".into(),
            e0_ev: 8979.0,
            pre_edge: 0.4,
            edge_step: 1.0,
            edge_width_ev: 1.5,
            white_line: 0.1,
            white_line_ev: 6.0,
            white_line_width_ev: 4.0,
            s02: 0.9,
            shells: vec![
                shell(12.0, 2.553, 0.0085),
                shell(6.0, 3.615, 0.0120),
                shell(24.0, 4.428, 0.0130),
                shell(12.0, 5.113, 0.0150),
            ],
            reference_pre_edge: 0.2,
            reference_step: 1.5,
        }
    }
}

/// `[fpga]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FpgaConfig {
    /// Width of the detector and live-time counters, bits (8–32).
    pub counter_bits: u8,
    /// Edge FIFO depth, events.
    pub fifo_depth: u32,
    /// Snapshot RAM depth, edges (power of two).
    pub snapshot_depth: u32,
    /// Design version register value.
    pub version: u32,
}

impl Default for FpgaConfig {
    fn default() -> Self {
        Self {
            counter_bits: 32,
            fifo_depth: 4096,
            snapshot_depth: 4096,
            // The contract's version: 1.1, with the period timer time mode needs.
            version: flyscan_fpga_contract::regs::VERSION,
        }
    }
}

/// `[link]`: the serial line between device and host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkConfig {
    /// Line rate, baud (8N1: baud/10 bytes/s).
    pub baud: u32,
    /// Probability that a bit is flipped on the line (both directions).
    pub bit_error_rate: f64,
    /// Probability that a byte is lost (both directions).
    pub drop_rate: f64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            baud: flyscan_protocol::limits::DEFAULT_BAUD,
            bit_error_rate: 0.0,
            drop_rate: 0.0,
        }
    }
}

/// How the preset list is generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanMode {
    /// `start + i × step`, sent as start/step/count.
    StartStepCount,
    /// The explicit `positions` list, sent as a list.
    List,
    /// An EXAFS energy grid (`[scan.exafs]`), converted to counts and sent as a list.
    Exafs,
    /// Time mode: `count` points every `period_ticks`, optionally only inside the position
    /// window `gate_start` … `gate_start + gate_span`; the motor drives to `move_to`.
    Time,
}

/// Direction setting of the scan (protocol `Direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanDirection {
    /// Fire when crossing towards +∞.
    Positive,
    /// Fire when crossing towards −∞.
    Negative,
    /// Fire on the first crossing.
    Either,
    /// Back-and-forth passes.
    Bidirectional,
}

/// Point encoding (protocol `Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanEncoding {
    /// Fixed-width points.
    Raw,
    /// Delta-coded points.
    Compact,
    /// Entropy-coded points (Rice codes of the count residuals).
    Rice,
}

/// `[scan]`: what the host configures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanPlanConfig {
    /// How presets are given.
    pub mode: PlanMode,
    /// First preset, counts (start_step_count).
    pub start: i64,
    /// Preset spacing, counts (start_step_count).
    pub step: i64,
    /// Number of presets (start_step_count).
    pub count: u32,
    /// Explicit presets, counts (list).
    pub positions: Vec<i64>,
    /// Which crossings fire.
    pub direction: PlanDirection,
    /// Passes (bidirectional only may use more than 1).
    pub passes: u16,
    /// Enabled channels, bit i = channel i.
    pub channel_mask: u32,
    /// Point encoding.
    pub encoding: PlanEncoding,
    /// Most points per batch (0 = device default).
    pub max_batch_points: u16,
    /// Longest wait of a point before its batch goes out, µs (0 = device default).
    pub max_latency_us: u32,
    /// Scan id the host arms with.
    pub scan_id: u32,
    /// Time mode: the period, device clock ticks.
    pub period_ticks: u64,
    /// Time mode: low edge of the position window, counts.
    pub gate_start: i64,
    /// Time mode: width of the position window, counts (0 = no window).
    pub gate_span: u32,
    /// Time mode: where the motor drives (from rest at 0), counts; it stops `[motor] overrun`
    /// beyond.
    pub move_to: i64,
    /// EXAFS grid (mode = "exafs").
    pub exafs: ExafsGrid,
}

impl Default for ScanPlanConfig {
    fn default() -> Self {
        Self {
            mode: PlanMode::StartStepCount,
            start: 200,
            step: 20,
            count: 1000,
            positions: Vec::new(),
            direction: PlanDirection::Positive,
            passes: 1,
            channel_mask: 0xFF,
            encoding: PlanEncoding::Compact,
            max_batch_points: 0,
            max_latency_us: 0,
            scan_id: 1,
            period_ticks: 0,
            gate_start: 0,
            gate_span: 0,
            move_to: 0,
            exafs: ExafsGrid::default(),
        }
    }
}

/// `[scan.exafs]`: energy regions relative to the edge `e0_ev` of `[sample]`; the same rules as
/// `exafs_energy_grid` of the Bluesky package, so both give the same presets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExafsGrid {
    /// Start of the pre-edge region, eV relative to E0 (negative).
    pub pre_edge_start_ev: f64,
    /// Pre-edge step, eV.
    pub pre_edge_step_ev: f64,
    /// Start of the XANES region, eV relative to E0.
    pub xanes_start_ev: f64,
    /// XANES step, eV.
    pub xanes_step_ev: f64,
    /// End of the XANES region (start of the k grid), eV relative to E0.
    pub xanes_end_ev: f64,
    /// k step of the EXAFS region, Å⁻¹.
    pub k_step: f64,
    /// Last k, Å⁻¹.
    pub k_max: f64,
}

impl Default for ExafsGrid {
    fn default() -> Self {
        Self {
            pre_edge_start_ev: -150.0,
            pre_edge_step_ev: 5.0,
            xanes_start_ev: -20.0,
            xanes_step_ev: 0.25,
            xanes_end_ev: 40.0,
            k_step: 0.02,
            k_max: 14.0,
        }
    }
}

/// A scenario that cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown keys.
    #[error("scenario {path} is not valid: {source}")]
    Toml {
        /// The file.
        path: String,
        /// Why.
        source: toml::de::Error,
    },
    /// A value is out of range.
    #[error("scenario value out of range: {0}")]
    Invalid(String),
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: name.clone(),
            source,
        })?;
        let sc: Scenario = toml::from_str(&text).map_err(|source| ScenarioError::Toml {
            path: name.clone(),
            source,
        })?;
        sc.validate()?;
        Ok(sc)
    }

    /// Parses and checks scenario text.
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        let sc: Scenario = toml::from_str(text).map_err(|source| ScenarioError::Toml {
            path: "<text>".into(),
            source,
        })?;
        sc.validate()?;
        Ok(sc)
    }

    /// Checks value ranges the models rely on.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |m: &str| Err(ScenarioError::Invalid(m.to_string()));
        if self.clock.hz < 1_000 {
            return bad("clock.hz must be at least 1000");
        }
        if self.clock.poll_interval_us == 0 {
            return bad("clock.poll_interval_us must be > 0");
        }
        if !(self.motor.velocity > 0.0 && self.motor.acceleration > 0.0) {
            return bad("motor.velocity and motor.acceleration must be > 0");
        }
        if !(1..=32).contains(&self.detectors.channels) {
            return bad("detectors.channels must be 1..=32");
        }
        if !(8..=32).contains(&self.fpga.counter_bits) {
            return bad("fpga.counter_bits must be 8..=32");
        }
        if !self.fpga.snapshot_depth.is_power_of_two() {
            return bad("fpga.snapshot_depth must be a power of two");
        }
        if self.fpga.fifo_depth == 0 {
            return bad("fpga.fifo_depth must be > 0");
        }
        if self.link.baud == 0 {
            return bad("link.baud must be > 0");
        }
        for (name, p) in [
            ("link.bit_error_rate", self.link.bit_error_rate),
            ("link.drop_rate", self.link.drop_rate),
            ("encoder.glitch_rate", self.encoder.glitch_rate),
            ("encoder.missing_edge_rate", self.encoder.missing_edge_rate),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(ScenarioError::Invalid(format!("{name} must be in 0..=1")));
            }
        }
        let m = &self.mono;
        if !(m.counts_per_degree.is_finite() && m.counts_per_degree != 0.0) {
            return bad("mono.counts_per_degree must be finite and non-zero");
        }
        if !m.angle_offset.is_finite() {
            return bad("mono.angle_offset must be finite");
        }
        let s = &self.sample;
        if !(s.e0_ev > 0.0 && s.edge_width_ev > 0.0 && s.white_line_width_ev > 0.0) {
            return bad("sample.e0_ev, edge_width_ev and white_line_width_ev must be > 0");
        }
        if s.shells.iter().any(|sh| !(sh.r_a > 0.0 && sh.n >= 0.0)) {
            return bad("sample.shells: r_a must be > 0 and n >= 0");
        }
        let d = &self.detectors;
        for (name, v) in [
            ("i0_rate", d.i0_rate),
            ("it_gain", d.it_gain),
            ("iref_gain", d.iref_gain),
            ("if_rate", d.if_rate),
            ("scatter_rate", d.scatter_rate),
            ("dark_rate", d.dark_rate),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(ScenarioError::Invalid(format!(
                    "detectors.{name} must be finite and >= 0"
                )));
            }
        }

        Ok(())
    }
}
