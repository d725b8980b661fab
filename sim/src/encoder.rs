//! Quadrature encoder: turns the trajectory into A/B edges at FPGA clock resolution, then
//! applies the faults the FPGA would see (glitches, missing edges).
//!
//! * Count: `floor(x + 0.5)` of the trajectory position `x` (so a motor resting on an integer
//!   count makes no edges under sub-count vibration).
//! * Phase: count mod 4 → (A, B) = 0:(0,0) 1:(1,0) 2:(1,1) 3:(0,1); bit 0 of `ab` is A, bit 1
//!   is B. Counting up, A leads B.
//! * Timing: the trajectory is sampled every `sample_ticks` and interpolated linearly; a
//!   crossing at time t shows at the first clock tick ≥ t, and two physical steps never share a
//!   tick (a later one is pushed to the next tick), so only injected faults make both lines
//!   change at once.
//! * Glitch: a step whose state is too short to be sampled. Injected only where the decoder can
//!   recover (the step before it, the step itself and the next step all go the same way), so
//!   the next visible event changes both lines and means exactly two steps in the last known
//!   direction.
//! * Missing edge: the FPGA misses a step, anywhere. If the next step reverses it, nothing is
//!   visible; otherwise both lines change at once, which a decoder may resolve the wrong way.

use crate::rng::{rng_for, stream};
use crate::scenario::Scenario;
use crate::trajectory::Trajectory;
use rand::Rng;
use rand::rngs::SmallRng;
use std::collections::VecDeque;

/// A/B levels of a count (bit 0 = A, bit 1 = B).
pub fn quadrature_ab(count: i64) -> u8 {
    match count.rem_euclid(4) {
        0 => 0b00,
        1 => 0b01,
        2 => 0b11,
        _ => 0b10,
    }
}

/// Quarter-periods from `from` to `to` for one visible change: ±1, or `None` when both lines
/// changed (illegal) or nothing changed.
pub fn quadrature_step(from: u8, to: u8) -> Option<i64> {
    let phase = |ab: u8| match ab & 3 {
        0b00 => 0i64,
        0b01 => 1,
        0b11 => 2,
        _ => 3,
    };
    match (phase(to) - phase(from)).rem_euclid(4) {
        1 => Some(1),
        3 => Some(-1),
        _ => None,
    }
}

/// One physical step of the encoder count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step {
    tick: u64,
    /// Count after the step.
    count: i64,
    dir: i64,
}

/// An A/B change as the FPGA samples it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisibleEdge {
    /// Clock tick of the change.
    pub tick: u64,
    /// New A/B levels.
    pub ab: u8,
    /// Both lines changed at once.
    pub illegal: bool,
    /// The true count after the change.
    pub true_count: i64,
}

/// What the encoder injected so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncoderStats {
    /// Physical steps.
    pub steps: u64,
    /// Visible edges produced.
    pub edges: u64,
    /// Glitches injected.
    pub glitches: u64,
    /// Steps the FPGA missed.
    pub missing: u64,
    /// Visible edges on which both lines changed.
    pub illegal: u64,
}

/// Generator of visible edges, lazily in time order.
#[derive(Debug)]
pub struct Encoder {
    traj: Trajectory,
    /// Motion start, ticks; nothing moves before.
    start: Option<u64>,
    clock_hz: f64,
    sample_ticks: u64,
    /// Last sampled tick and its y = x + 0.5.
    last_sample: u64,
    last_y: f64,
    count: i64,
    last_step_tick: u64,
    steps: VecDeque<Step>,
    /// Sampled up to this tick (exclusive of later).
    sampled_to: u64,
    visible_ab: u8,
    /// Direction of the last legal visible edge (0 = none yet).
    last_dir: i64,
    glitch_rate: f64,
    missing_rate: f64,
    /// The previous step was a glitch: this one must show, or the pair would be undecodable.
    after_glitch: bool,
    rng: SmallRng,
    stats: EncoderStats,
}

/// How far ahead the next step is looked for when deciding a glitch.
const LOOKAHEAD_S: f64 = 0.001;

impl Encoder {
    /// The encoder of a scenario moving along `traj`.
    pub fn new(sc: &Scenario, traj: Trajectory) -> Self {
        let clock_hz = sc.clock.hz as f64;
        // Sample often enough that interpolation is exact to far below one count: ≤ 10 µs, and
        // ≥ 50 samples per vibration period.
        let mut dt = 10e-6_f64;
        let f = traj.max_frequency_hz();
        if f > 0.0 {
            dt = dt.min(1.0 / (50.0 * f));
        }
        let sample_ticks = ((dt * clock_hz).round() as u64).max(1);
        let rest = 0;
        Self {
            traj,
            start: None,
            clock_hz,
            sample_ticks,
            last_sample: 0,
            last_y: rest as f64 + 0.5,
            count: rest,
            last_step_tick: 0,
            steps: VecDeque::new(),
            sampled_to: 0,
            visible_ab: quadrature_ab(rest),
            last_dir: 0,
            glitch_rate: sc.encoder.glitch_rate,
            missing_rate: sc.encoder.missing_edge_rate,
            after_glitch: false,
            rng: rng_for(sc.seed, stream::ENCODER),
            stats: EncoderStats::default(),
        }
    }

    /// Starts the motion at `tick` (once; later calls are ignored).
    pub fn start_motion(&mut self, tick: u64) {
        if self.start.is_none() {
            self.start = Some(tick);
            self.last_sample = tick;
            self.sampled_to = tick;
            self.last_step_tick = tick;
        }
    }

    /// Motion start tick, if started.
    pub fn motion_start(&self) -> Option<u64> {
        self.start
    }

    /// True count now (after the last generated step).
    pub fn ab_now(&self) -> u8 {
        self.visible_ab
    }

    /// Injection counters.
    pub fn stats(&self) -> EncoderStats {
        self.stats
    }

    /// The trajectory.
    pub fn trajectory(&self) -> &Trajectory {
        &self.traj
    }

    /// Tick at which the nominal motion ends (None before the start).
    pub fn motion_end_tick(&self) -> Option<u64> {
        self.start
            .map(|s| s + (self.traj.end_time() * self.clock_hz).ceil() as u64)
    }

    /// Samples the trajectory up to `tick`.
    fn sample_to(&mut self, tick: u64) {
        let Some(start) = self.start else { return };
        while self.sampled_to < tick {
            let t1 = self.last_sample + self.sample_ticks;
            let y1 = self.traj.position((t1 - start) as f64 / self.clock_hz) + 0.5;
            let (t0, y0) = (self.last_sample as f64, self.last_y);
            let dt = (t1 - self.last_sample) as f64;
            if y1 > y0 {
                let mut n = y0.floor() + 1.0;
                while n <= y1 {
                    let t = t0 + (n - y0) / (y1 - y0) * dt;
                    self.push_step(t.ceil() as u64, 1);
                    n += 1.0;
                }
            } else if y1 < y0 {
                let mut n = y0.floor();
                while n > y1 {
                    let t = t0 + (y0 - n) / (y0 - y1) * dt;
                    self.push_step(t.ceil() as u64, -1);
                    n -= 1.0;
                }
            }
            self.last_sample = t1;
            self.last_y = y1;
            self.sampled_to = t1;
        }
    }

    fn push_step(&mut self, tick: u64, dir: i64) {
        let tick = tick.max(self.last_step_tick + 1);
        self.last_step_tick = tick;
        self.count += dir;
        self.stats.steps += 1;
        self.steps.push_back(Step {
            tick,
            count: self.count,
            dir,
        });
    }

    /// The next visible edge with tick ≤ `until`, if any.
    pub fn next_visible(&mut self, until: u64) -> Option<VisibleEdge> {
        self.start?;
        let look = (LOOKAHEAD_S * self.clock_hz) as u64;
        loop {
            if self.steps.is_empty() {
                self.sample_to(until);
            }
            let s = *self.steps.front()?;
            if s.tick > until {
                return None;
            }
            // Decide faults with a fixed look-ahead so they do not depend on `until`.
            self.sample_to(s.tick + look);
            self.steps.pop_front();
            if self.missing_rate > 0.0 && self.rng.random::<f64>() < self.missing_rate {
                self.stats.missing += 1;
                continue;
            }
            let after_glitch = std::mem::take(&mut self.after_glitch);
            if self.glitch_rate > 0.0 && !after_glitch && self.last_dir == s.dir {
                let next_same = self
                    .steps
                    .front()
                    .is_some_and(|n| n.dir == s.dir && n.tick <= s.tick + look);
                if next_same && self.rng.random::<f64>() < self.glitch_rate {
                    self.stats.glitches += 1;
                    self.after_glitch = true;
                    continue;
                }
            }
            let ab = quadrature_ab(s.count);
            if ab == self.visible_ab {
                continue;
            }
            let step = quadrature_step(self.visible_ab, ab);
            self.visible_ab = ab;
            if let Some(d) = step {
                self.last_dir = d;
            } else {
                self.stats.illegal += 1;
            }
            self.stats.edges += 1;
            return Some(VisibleEdge {
                tick: s.tick,
                ab,
                illegal: step.is_none(),
                true_count: s.count,
            });
        }
    }
}
