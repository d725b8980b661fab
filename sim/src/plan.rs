//! The scan the host configures, derived from `[scan]`: the protocol [`ScanConfig`] plus the
//! full preset list (also for start/step/count scans, where the truth needs every preset).

use crate::scenario::{PlanDirection, PlanEncoding, PlanMode, Scenario, ScenarioError};
use flyscan_protocol::{Direction, Encoding, ScanConfig, TriggerMode};
use serde::Serialize;

/// ħ²/2mₑ in eV·Å²: E − E0 = `HBAR2_2M` × k².
pub const HBAR2_2M: f64 = 3.809_982;

/// A scan ready to send: configuration and presets in pass-0 order (none in time mode).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanPlan {
    /// Scan id to arm with.
    pub scan_id: u32,
    /// The configuration (in list mode `count` = `positions.len()`).
    #[serde(serialize_with = "ser_config")]
    pub config: ScanConfig,
    /// Every preset, counts, in the order pass 0 fires them (empty in time mode).
    pub positions: Vec<i64>,
}

fn ser_config<S: serde::Serializer>(c: &ScanConfig, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut st = s.serialize_struct("ScanConfig", 11)?;
    st.serialize_field(
        "mode",
        match c.mode {
            TriggerMode::StartStepCount => "start_step_count",
            TriggerMode::List => "list",
            TriggerMode::Time => "time",
        },
    )?;
    st.serialize_field(
        "direction",
        match c.direction {
            Direction::Positive => "positive",
            Direction::Negative => "negative",
            Direction::Either => "either",
            Direction::Bidirectional => "bidirectional",
        },
    )?;
    st.serialize_field(
        "encoding",
        match c.encoding {
            Encoding::Raw => "raw",
            Encoding::Compact => "compact",
            Encoding::Rice => "rice",
        },
    )?;
    st.serialize_field("start", &c.start)?;
    st.serialize_field("step", &c.step)?;
    st.serialize_field("count", &c.count)?;
    st.serialize_field("passes", &c.passes)?;
    st.serialize_field("channel_mask", &c.channel_mask)?;
    st.serialize_field("max_batch_points", &c.max_batch_points)?;
    st.serialize_field("max_latency_us", &c.max_latency_us)?;
    st.serialize_field("gate_span", &c.gate_span)?;
    st.end()
}

impl ScanPlan {
    /// Builds the plan of a scenario.
    pub fn from_scenario(sc: &Scenario) -> Result<Self, ScenarioError> {
        let s = &sc.scan;
        let (mode, positions) = match s.mode {
            PlanMode::StartStepCount => {
                let mut v = Vec::with_capacity(s.count as usize);
                for i in 0..i64::from(s.count) {
                    let p = s
                        .step
                        .checked_mul(i)
                        .and_then(|d| s.start.checked_add(d))
                        .ok_or_else(|| ScenarioError::Invalid("scan presets overflow".into()))?;
                    v.push(p);
                }
                (TriggerMode::StartStepCount, v)
            }
            PlanMode::List => (TriggerMode::List, s.positions.clone()),
            PlanMode::Exafs => (TriggerMode::List, exafs_positions(sc)),
            PlanMode::Time => (TriggerMode::Time, Vec::new()),
        };
        let count = if mode == TriggerMode::Time {
            s.count
        } else {
            if positions.is_empty() {
                return Err(ScenarioError::Invalid("the scan has no presets".into()));
            }
            u32::try_from(positions.len())
                .map_err(|_| ScenarioError::Invalid("too many presets".into()))?
        };
        let (start, step) = match mode {
            TriggerMode::StartStepCount => (s.start, s.step),
            TriggerMode::List => (0, 0),
            TriggerMode::Time => (
                s.gate_start,
                i64::try_from(s.period_ticks).map_err(|_| {
                    ScenarioError::Invalid(format!(
                        "scan.period_ticks {} does not fit the protocol",
                        s.period_ticks
                    ))
                })?,
            ),
        };
        let config = ScanConfig {
            mode,
            direction: match s.direction {
                PlanDirection::Positive => Direction::Positive,
                PlanDirection::Negative => Direction::Negative,
                PlanDirection::Either => Direction::Either,
                PlanDirection::Bidirectional => Direction::Bidirectional,
            },
            encoding: match s.encoding {
                PlanEncoding::Raw => Encoding::Raw,
                PlanEncoding::Compact => Encoding::Compact,
                PlanEncoding::Rice => Encoding::Rice,
            },
            start,
            step,
            count,
            passes: s.passes,
            channel_mask: s.channel_mask,
            max_batch_points: s.max_batch_points,
            max_latency_us: s.max_latency_us,
            gate_span: if mode == TriggerMode::Time {
                s.gate_span
            } else {
                0
            },
        };
        let limits = flyscan_protocol::Limits::device(sc.detectors.channels, u32::MAX, u32::MAX)
            .with_clock(sc.clock.hz);
        config
            .validate(&limits)
            .and_then(|()| match mode {
                TriggerMode::List => config.validate_positions(&positions),
                TriggerMode::StartStepCount | TriggerMode::Time => Ok(()),
            })
            .map_err(|e| ScenarioError::Invalid(format!("scan: {e}")))?;
        Ok(Self {
            scan_id: s.scan_id,
            config,
            positions,
        })
    }

    /// The configuration as JSON (enum values as snake_case names).
    pub fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("config").cloned())
            .unwrap_or(serde_json::Value::Null)
    }

    /// Total points the scan produces (presets × passes; time mode: `count`).
    pub fn total_points(&self) -> u64 {
        self.config.total_points()
    }

    /// The way-points of the motion, in the order pass 0 reaches them: the presets, or in
    /// time mode the target of the move (`[scan] move_to`).
    pub fn motion_points(&self, sc: &Scenario) -> Vec<i64> {
        if self.config.mode == TriggerMode::Time {
            vec![sc.scan.move_to]
        } else {
            self.positions.clone()
        }
    }

    /// The time-mode parameters the ground truth needs (`None` in the position modes).
    pub fn time_scan(&self) -> Option<crate::truth::TimeScan> {
        let c = &self.config;
        (c.mode == TriggerMode::Time).then(|| crate::truth::TimeScan {
            period: u64::try_from(c.step).unwrap_or(1).max(1),
            window: (c.gate_span != 0)
                .then(|| (c.start, c.start.saturating_add(i64::from(c.gate_span)))),
            count: c.count,
        })
    }
}

/// Presets of an EXAFS grid: pre-edge and XANES regions uniform in energy, then uniform in k up
/// to `k_max`, converted to encoder counts; duplicates after rounding are dropped so the list is
/// strictly increasing.
pub fn exafs_positions(sc: &Scenario) -> Vec<i64> {
    let g = &sc.scan.exafs;
    let sp = &sc.detectors.spectrum;
    let mut energies = Vec::new();
    let mut e = g.pre_edge_start_ev;
    while e < g.xanes_start_ev - 1e-9 && g.pre_edge_step_ev > 0.0 {
        energies.push(e);
        e += g.pre_edge_step_ev;
    }
    let n_xanes = if g.xanes_step_ev > 0.0 {
        ((g.xanes_end_ev - g.xanes_start_ev) / g.xanes_step_ev).floor() as i64
    } else {
        0
    };
    for i in 0..n_xanes.max(0) {
        energies.push(g.xanes_start_ev + i as f64 * g.xanes_step_ev);
    }
    let k0 = (g.xanes_end_ev.max(0.0) / HBAR2_2M).sqrt();
    if g.k_step > 0.0 {
        let n_k = ((g.k_max - k0) / g.k_step).floor() as i64;
        for i in 0..=n_k.max(0) {
            let k = k0 + i as f64 * g.k_step;
            energies.push(HBAR2_2M * k * k);
        }
    }
    let mut out: Vec<i64> = Vec::with_capacity(energies.len());
    for rel in energies {
        let e_abs = sp.e0_ev + rel;
        let p = ((e_abs - sp.energy_at_zero_ev) * sp.counts_per_ev).round() as i64;
        if out.last().is_none_or(|&l| p > l) {
            out.push(p);
        }
    }
    out
}
