//! The control values clients write (configuration, Arm, Abort) and their conversion into a
//! protocol [`ScanConfig`] at Arm. The conversion only changes types (an `ao` double into whole
//! encoder counts, an enum index into a protocol enum); every rule a scan must meet lives in
//! [`ScanConfig::validate`] and [`ScanConfig::validate_positions`].

use flyscan_protocol::{Direction, Encoding, Limits, ScanConfig, TriggerMode};

/// One write to a control record, in record-processing order.
#[derive(Debug, Clone, PartialEq)]
pub enum ControlWrite {
    /// `Mode` (mbbo: 0 = Start-Step-Count, 1 = List, 2 = Time).
    Mode(u16),
    /// `Period` (ao): time mode, seconds between points.
    Period(f64),
    /// `GateLow` (ao): time mode, low edge of the position window, encoder counts.
    GateLow(f64),
    /// `GateHigh` (ao): time mode, high edge of the position window, encoder counts.
    GateHigh(f64),
    /// `Start` (ao), encoder counts.
    Start(f64),
    /// `Step` (ao), encoder counts.
    Step(f64),
    /// `NPoints` (longout).
    NPoints(i64),
    /// `Positions` (waveform of doubles, NORD elements).
    Positions(Vec<f64>),
    /// `Direction` (mbbo, protocol order).
    Direction(u16),
    /// `Passes` (longout).
    Passes(i64),
    /// `ChannelMask` (int64out: every 32-bit mask, 4294967295 = all 32 channels).
    ChannelMask(i64),
    /// `Encoding` (mbbo: 0 = Compact, 1 = Raw, 2 = Rice).
    Encoding(u16),
    /// `Arm` (bo): 1 arms; 0 is the driver's own reset and means nothing.
    Arm(bool),
    /// `Abort` (bo): 1 aborts.
    Abort(bool),
    /// `DSpacing` (ao): monochromator crystal d-spacing, Å.
    DSpacing(f64),
    /// `CountsPerDegree` (ao): encoder counts per degree of Bragg angle.
    CountsPerDegree(f64),
    /// `AngleOffset` (ao): encoder position at θ = 0, counts.
    AngleOffset(f64),
    /// `Crystal` (stringout): the crystal's name (metadata).
    Crystal(String),
    /// `CH<n>:Role` (stringout): what detector channel `n` measures (I0, It, If, Iref, …).
    Role(u8, String),
}

/// Monochromator calibration: encoder position → Bragg angle → energy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// Crystal d-spacing, Å.
    pub d_spacing: f64,
    /// Encoder counts per degree of Bragg angle (negative when the encoder runs backwards).
    pub counts_per_degree: f64,
    /// Encoder position at θ = 0, counts.
    pub angle_offset: f64,
}

/// h·c in eV·Å (CODATA): E = HC / λ, λ = 2 d sin θ.
pub const HC_EV_ANGSTROM: f64 = 12_398.419_843;

impl Default for Calibration {
    /// Si(111) (d = 3.13560 Å), 10 000 counts per degree, no offset (the records' values).
    fn default() -> Self {
        Self {
            d_spacing: 3.135_60,
            counts_per_degree: 10_000.0,
            angle_offset: 0.0,
        }
    }
}

impl Calibration {
    /// Bragg angle at encoder `position`, degrees.
    pub fn theta_deg(&self, position: f64) -> f64 {
        (position - self.angle_offset) / self.counts_per_degree
    }

    /// Photon energy at encoder `position`, eV (NaN where the calibration or the angle gives
    /// none: d ≤ 0, a zero scale, or sin θ ≤ 0).
    pub fn energy_ev(&self, position: f64) -> f64 {
        if self.d_spacing.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
            || self.counts_per_degree == 0.0
        {
            return f64::NAN;
        }
        let s = self.theta_deg(position).to_radians().sin();
        if s > 0.0 {
            HC_EV_ANGSTROM / (2.0 * self.d_spacing * s)
        } else {
            f64::NAN
        }
    }
}

/// The configuration as last written (the records' values).
#[derive(Debug, Clone, PartialEq)]
pub struct Controls {
    /// `Mode`.
    pub mode: u16,
    /// `Start`.
    pub start: f64,
    /// `Step`.
    pub step: f64,
    /// `NPoints`.
    pub npoints: i64,
    /// `Period`, seconds.
    pub period: f64,
    /// `GateLow`, counts.
    pub gate_low: f64,
    /// `GateHigh`, counts.
    pub gate_high: f64,
    /// `Positions`.
    pub positions: Vec<f64>,
    /// `Direction`.
    pub direction: u16,
    /// `Passes`.
    pub passes: i64,
    /// `ChannelMask`.
    pub channel_mask: i64,
    /// `Encoding`.
    pub encoding: u16,
    /// `DSpacing`, `CountsPerDegree`, `AngleOffset`.
    pub calibration: Calibration,
    /// `Crystal`.
    pub crystal: String,
    /// `CH<n>:Role`, by channel.
    pub roles: Vec<String>,
}

impl Default for Controls {
    /// The records' initial values (`db/flyscan.db`).
    fn default() -> Self {
        Self {
            mode: 0,
            start: 0.0,
            step: 1.0,
            npoints: 1,
            period: 0.001,
            gate_low: 0.0,
            gate_high: 0.0,
            positions: Vec::new(),
            direction: 0,
            passes: 1,
            channel_mask: 1,
            encoding: 0,
            calibration: Calibration::default(),
            crystal: "Si(111)".to_owned(),
            roles: Vec::new(),
        }
    }
}

impl Controls {
    /// Applies a configuration write; `false` for Arm and Abort, which are not configuration.
    pub fn apply(&mut self, w: &ControlWrite) -> bool {
        match w {
            ControlWrite::Mode(v) => self.mode = *v,
            ControlWrite::Start(v) => self.start = *v,
            ControlWrite::Step(v) => self.step = *v,
            ControlWrite::NPoints(v) => self.npoints = *v,
            ControlWrite::Period(v) => self.period = *v,
            ControlWrite::GateLow(v) => self.gate_low = *v,
            ControlWrite::GateHigh(v) => self.gate_high = *v,
            ControlWrite::Positions(v) => self.positions.clone_from(v),
            ControlWrite::Direction(v) => self.direction = *v,
            ControlWrite::Passes(v) => self.passes = *v,
            ControlWrite::ChannelMask(v) => self.channel_mask = *v,
            ControlWrite::Encoding(v) => self.encoding = *v,
            ControlWrite::DSpacing(v) => self.calibration.d_spacing = *v,
            ControlWrite::CountsPerDegree(v) => self.calibration.counts_per_degree = *v,
            ControlWrite::AngleOffset(v) => self.calibration.angle_offset = *v,
            ControlWrite::Crystal(v) => self.crystal.clone_from(v),
            ControlWrite::Role(n, v) => {
                let n = usize::from(*n);
                if self.roles.len() <= n {
                    self.roles.resize(n + 1, String::new());
                }
                self.roles[n].clone_from(v);
            }
            ControlWrite::Arm(_) | ControlWrite::Abort(_) => return false,
        }
        true
    }

    /// Every configuration value as writes (to restore them, or to persist them).
    pub fn writes(&self) -> Vec<ControlWrite> {
        vec![
            ControlWrite::Mode(self.mode),
            ControlWrite::Start(self.start),
            ControlWrite::Step(self.step),
            ControlWrite::NPoints(self.npoints),
            ControlWrite::Period(self.period),
            ControlWrite::GateLow(self.gate_low),
            ControlWrite::GateHigh(self.gate_high),
            ControlWrite::Positions(self.positions.clone()),
            ControlWrite::Direction(self.direction),
            ControlWrite::Passes(self.passes),
            ControlWrite::ChannelMask(self.channel_mask),
            ControlWrite::Encoding(self.encoding),
            ControlWrite::DSpacing(self.calibration.d_spacing),
            ControlWrite::CountsPerDegree(self.calibration.counts_per_degree),
            ControlWrite::AngleOffset(self.calibration.angle_offset),
            ControlWrite::Crystal(self.crystal.clone()),
        ]
        .into_iter()
        .chain(
            self.roles
                .iter()
                .enumerate()
                .map(|(n, r)| ControlWrite::Role(n as u8, r.clone())),
        )
        .collect()
    }

    /// The role of channel `n` ("" when none is set).
    pub fn role(&self, n: usize) -> &str {
        self.roles.get(n).map_or("", String::as_str)
    }

    /// The scan these values describe, checked against `limits`; in list mode with its
    /// positions. `clock_hz` (the device's) turns a time-mode period into clock ticks. The
    /// error says which value is wrong.
    pub fn scan(&self, limits: &Limits, clock_hz: u64) -> Result<(ScanConfig, Vec<i64>), String> {
        let mode = match self.mode {
            0 => TriggerMode::StartStepCount,
            1 => TriggerMode::List,
            2 => TriggerMode::Time,
            v => {
                return Err(format!(
                    "Mode {v} is not Start-Step-Count (0), List (1) or Time (2)"
                ));
            }
        };
        // A period point fires whatever way the motor moves: Direction has no meaning in time
        // mode, and the protocol's one value for that is Either.
        let direction = if mode == TriggerMode::Time {
            Direction::Either
        } else {
            u8::try_from(self.direction)
                .ok()
                .and_then(Direction::from_u8)
                .ok_or(format!("Direction {} is not a direction", self.direction))?
        };
        let mut gate_span = 0u32;
        let encoding = match self.encoding {
            0 => Encoding::Compact,
            1 => Encoding::Raw,
            2 => Encoding::Rice,
            v => {
                return Err(format!(
                    "Encoding {v} is not Compact (0), Raw (1) or Rice (2)"
                ));
            }
        };
        let passes = u16::try_from(self.passes)
            .map_err(|_| format!("Passes must be 1 to 65535 (got {})", self.passes))?;
        let channel_mask = u32::try_from(self.channel_mask).map_err(|_| {
            format!(
                "ChannelMask must be 1 to 4294967295 (a 32-bit mask; got {})",
                self.channel_mask
            )
        })?;
        let mut list = Vec::new();
        let (start, step, count) = match mode {
            TriggerMode::StartStepCount => {
                let count = u32::try_from(self.npoints).map_err(|_| {
                    format!("NPoints must be 0 to 4294967295 (got {})", self.npoints)
                })?;
                (
                    whole_counts(self.start, "Start")?,
                    whole_counts(self.step, "Step")?,
                    count,
                )
            }
            TriggerMode::List => {
                list.reserve(self.positions.len());
                for (i, &p) in self.positions.iter().enumerate() {
                    list.push(whole_counts(p, &format!("Positions[{i}]"))?);
                }
                let count = u32::try_from(list.len()).unwrap_or(u32::MAX);
                (0, 1, count)
            }
            TriggerMode::Time => {
                let count = u32::try_from(self.npoints).map_err(|_| {
                    format!("NPoints must be 0 to 4294967295 (got {})", self.npoints)
                })?;
                let ticks = self.period * clock_hz as f64;
                if !ticks.is_finite() || ticks < 0.0 || ticks > i64::MAX as f64 {
                    return Err(format!(
                        "Period must be a time in seconds (got {})",
                        self.period
                    ));
                }
                let low = whole_counts(self.gate_low, "GateLow")?;
                let high = whole_counts(self.gate_high, "GateHigh")?;
                gate_span = u32::try_from(high - low).map_err(|_| {
                    format!(
                        "GateHigh ({high}) must be from GateLow ({low}) to GateLow + 4294967295"
                    )
                })?;
                // Rounded to the device's clock; the protocol's rules check the range.
                (low, ticks.round() as i64, count)
            }
        };
        let cfg = ScanConfig {
            mode,
            direction,
            encoding,
            start,
            step,
            count,
            passes,
            channel_mask,
            max_batch_points: 0,
            max_latency_us: 0,
            gate_span,
        };
        cfg.validate(limits).map_err(|e| e.to_string())?;
        if mode == TriggerMode::List {
            cfg.validate_positions(&list).map_err(|e| e.to_string())?;
        }
        Ok((cfg, list))
    }
}

/// An `ao` value as whole encoder counts: exactly representable and integral.
fn whole_counts(v: f64, what: &str) -> Result<i64, String> {
    // 2⁵³: beyond it a double no longer holds every integer.
    if !v.is_finite() || v.fract() != 0.0 || v.abs() > 9_007_199_254_740_992.0 {
        return Err(format!(
            "{what} must be a whole number of encoder counts (got {v})"
        ));
    }
    Ok(v as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOCK: u64 = 100_000_000;

    fn limits() -> Limits {
        Limits {
            capacity: 1000,
            ..Limits::device(32, 1000, 64).with_clock(CLOCK)
        }
    }

    #[test]
    fn time_mode_converts_the_period_and_the_window() {
        let c = Controls {
            mode: 2,
            npoints: 100,
            period: 0.0015,
            gate_low: -500.0,
            gate_high: 1500.0,
            // Direction has no meaning in time mode: whatever the record says, Either is sent.
            direction: 0,
            ..Controls::default()
        };
        let (cfg, list) = c.scan(&limits(), CLOCK).expect("valid");
        assert!(list.is_empty());
        assert_eq!(cfg.mode, TriggerMode::Time);
        assert_eq!(cfg.direction, Direction::Either);
        assert_eq!(
            (cfg.step, cfg.start, cfg.gate_span, cfg.count),
            (150_000, -500, 2000, 100)
        );
        // No window: both edges equal.
        let open = Controls {
            gate_low: 0.0,
            gate_high: 0.0,
            ..c.clone()
        };
        assert_eq!(open.scan(&limits(), CLOCK).expect("valid").0.gate_span, 0);
        // Refusals name the value.
        let bad = |c: Controls| c.scan(&limits(), CLOCK).unwrap_err();
        assert!(
            bad(Controls {
                gate_high: -501.0,
                ..c.clone()
            })
            .contains("GateHigh")
        );
        assert!(
            bad(Controls {
                period: 1e-6,
                ..c.clone()
            })
            .contains("period")
        );
        assert!(
            bad(Controls {
                period: f64::NAN,
                ..c.clone()
            })
            .contains("Period")
        );
        assert!(
            bad(Controls {
                gate_low: 0.5,
                ..c.clone()
            })
            .contains("GateLow")
        );
        assert!(bad(Controls { mode: 3, ..c }).contains("Time (2)"));
    }

    #[test]
    fn every_32_bit_mask_means_its_channels() {
        let c = Controls {
            channel_mask: 4_294_967_295,
            ..Controls::default()
        };
        let (cfg, _) = c.scan(&limits(), CLOCK).expect("valid");
        assert_eq!(cfg.channel_mask, u32::MAX);
        let c = Controls {
            channel_mask: -1,
            ..Controls::default()
        };
        assert!(
            c.scan(&limits(), CLOCK)
                .unwrap_err()
                .contains("ChannelMask")
        );
    }

    #[test]
    fn energy_follows_bragg_law() {
        let c = Calibration {
            d_spacing: 3.135_60,
            counts_per_degree: 20_000.0,
            angle_offset: 1000.0,
        };
        // Cu K at Si(111): θ = 12.7199° (xas.md).
        let pos = 1000.0 + 12.7199 * 20_000.0;
        assert!(
            (c.energy_ev(pos) - 8979.0).abs() < 0.1,
            "{}",
            c.energy_ev(pos)
        );
        assert!(c.energy_ev(1000.0).is_nan(), "θ = 0 has no energy");
        let none = Calibration {
            d_spacing: 0.0,
            ..c
        };
        assert!(none.energy_ev(pos).is_nan());
    }

    #[test]
    fn conversions_name_the_value() {
        let c = Controls {
            start: 0.5,
            ..Controls::default()
        };
        assert!(c.scan(&limits(), CLOCK).unwrap_err().contains("Start"));
        let c = Controls {
            mode: 1,
            positions: vec![1.0, 2.0, f64::NAN],
            ..Controls::default()
        };
        assert!(
            c.scan(&limits(), CLOCK)
                .unwrap_err()
                .contains("Positions[2]")
        );
    }

    #[test]
    fn rules_come_from_the_protocol() {
        let c = Controls {
            mode: 1,
            ..Controls::default()
        };
        assert!(c.scan(&limits(), CLOCK).unwrap_err().contains("empty"));
        let c = Controls {
            step: -20.0,
            npoints: 5,
            ..Controls::default()
        };
        assert!(
            c.scan(&limits(), CLOCK)
                .unwrap_err()
                .contains("runs against")
        );
        let c = Controls {
            npoints: 1001,
            ..Controls::default()
        };
        assert!(c.scan(&limits(), CLOCK).is_err());
    }
}
