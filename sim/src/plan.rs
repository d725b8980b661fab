//! The scan the host configures, derived from `[scan]`: the protocol [`ScanConfig`] plus the
//! full preset list (also for start/step/count scans, where the truth needs every preset).

use crate::mono::Mono;
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
            PlanMode::Exafs => (TriggerMode::List, exafs_positions(sc)?),
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

/// Energies (eV, increasing) of the scenario's EXAFS grid, by the rules of the Bluesky
/// package's `exafs_energy_grid` (so a plan built there gives the same presets):
///
/// * pre-edge: E0 + `pre_edge_start_ev` + i·`pre_edge_step_ev`, below E0 + `xanes_start_ev`;
/// * XANES: E0 + `xanes_start_ev` + i·`xanes_step_ev`, below E0 + `xanes_end_ev`;
/// * EXAFS: k = k(`xanes_end_ev`) + i·`k_step` below `k_max`, then `k_max` itself (unless the
///   last step already sits on it), E = E0 + `HBAR2_2M`·k².
pub fn exafs_energies(sc: &Scenario) -> Result<Vec<f64>, ScenarioError> {
    let g = &sc.scan.exafs;
    let e0 = sc.sample.e0_ev;
    let bad = |m: String| Err(ScenarioError::Invalid(format!("scan.exafs: {m}")));
    for (name, step) in [
        ("pre_edge_step_ev", g.pre_edge_step_ev),
        ("xanes_step_ev", g.xanes_step_ev),
        ("k_step", g.k_step),
    ] {
        if step.is_nan() || step <= 0.0 {
            return bad(format!("{name} must be > 0, got {step}"));
        }
    }
    if !(g.pre_edge_start_ev < g.xanes_start_ev && g.xanes_start_ev < g.xanes_end_ev) {
        return bad(
            "regions out of order: need pre_edge_start_ev < xanes_start_ev < xanes_end_ev".into(),
        );
    }
    if g.xanes_end_ev.is_nan() || g.xanes_end_ev <= 0.0 {
        return bad(format!(
            "xanes_end_ev must lie above the edge, got {}",
            g.xanes_end_ev
        ));
    }
    let k_start = (g.xanes_end_ev / HBAR2_2M).sqrt();
    if g.k_max.is_nan() || g.k_max <= k_start {
        return bad(format!(
            "k_max {} must exceed k at the XANES end ({k_start:.4})",
            g.k_max
        ));
    }
    // Points start + i·step strictly below stop, computed by index (no drift).
    let exclusive = |start: f64, stop: f64, step: f64| -> Vec<f64> {
        let n = ((stop - start) / step - 1e-9).ceil().max(0.0) as usize;
        (0..n).map(|i| start + step * i as f64).collect()
    };
    let mut out: Vec<f64> = exclusive(g.pre_edge_start_ev, g.xanes_start_ev, g.pre_edge_step_ev)
        .into_iter()
        .chain(exclusive(g.xanes_start_ev, g.xanes_end_ev, g.xanes_step_ev))
        .map(|rel| e0 + rel)
        .collect();
    let mut k = exclusive(k_start, g.k_max, g.k_step);
    if k.last().is_none_or(|&last| g.k_max - last > 1e-9 * g.k_max) {
        k.push(g.k_max);
    }
    out.extend(k.into_iter().map(|k| e0 + k * k * HBAR2_2M));
    Ok(out)
}

/// Presets of the scenario's EXAFS grid: [`exafs_energies`] through the monochromator
/// calibration (`[mono]`), rounded to whole counts.
///
/// The list is strictly monotonic (increasing when counts grow with energy); two energies on
/// the same count are an error (the grid is finer than the encoder), as in the Bluesky package.
pub fn exafs_positions(sc: &Scenario) -> Result<Vec<i64>, ScenarioError> {
    let mono = Mono::new(&sc.mono);
    let energies = exafs_energies(sc)?;
    let mut out: Vec<i64> = Vec::with_capacity(energies.len());
    for e in energies {
        let p = mono.position(e).ok_or_else(|| {
            ScenarioError::Invalid(format!(
                "scan.exafs: {e:.2} eV cannot be diffracted by {} (λ > 2d)",
                sc.mono.crystal.name()
            ))
        })?;
        let p = p.round() as i64;
        if out.last() == Some(&p) {
            return Err(ScenarioError::Invalid(format!(
                "scan.exafs: two grid energies near {e:.3} eV map to encoder count {p}: the step \
                 is finer than the encoder resolution"
            )));
        }
        out.push(p);
    }
    Ok(out)
}
