//! Motor trajectory: trapezoidal moves (accelerate, cruise, decelerate) between way-points,
//! one per pass, plus vibration (a sinusoid and band-limited random noise). Position is in
//! encoder counts as a continuous function of the time since the motion started.

use crate::rng::{rng_for, stream};
use crate::scenario::Scenario;
use rand::Rng;

/// One trapezoidal move.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Move {
    t0: f64,
    x0: f64,
    dir: f64,
    t_acc: f64,
    t_cruise: f64,
    v_peak: f64,
    accel: f64,
}

impl Move {
    fn plan(t0: f64, x0: f64, x1: f64, v: f64, a: f64) -> Self {
        let d = (x1 - x0).abs();
        let dir = if x1 >= x0 { 1.0 } else { -1.0 };
        let (t_acc, t_cruise, v_peak) = if d >= v * v / a {
            (v / a, (d - v * v / a) / v, v)
        } else {
            let t = (d / a).sqrt();
            (t, 0.0, a * t)
        };
        Self {
            t0,
            x0,
            dir,
            t_acc,
            t_cruise,
            v_peak,
            accel: a,
        }
    }

    fn duration(&self) -> f64 {
        2.0 * self.t_acc + self.t_cruise
    }

    fn position(&self, t: f64) -> f64 {
        let t = (t - self.t0).clamp(0.0, self.duration());
        let d_acc = 0.5 * self.accel * self.t_acc * self.t_acc;
        let d = if t < self.t_acc {
            0.5 * self.accel * t * t
        } else if t < self.t_acc + self.t_cruise {
            d_acc + self.v_peak * (t - self.t_acc)
        } else {
            let td = t - self.t_acc - self.t_cruise;
            d_acc + self.v_peak * self.t_cruise + self.v_peak * td - 0.5 * self.accel * td * td
        };
        self.x0 + self.dir * d
    }
}

/// The motion of one run.
#[derive(Debug, Clone)]
pub struct Trajectory {
    rest: f64,
    moves: Vec<Move>,
    sine_amp: f64,
    sine_w: f64,
    /// (amplitude, angular frequency, phase) of the random vibration's components.
    noise: Vec<(f64, f64, f64)>,
    ramp_s: f64,
}

/// Components summed to make the random vibration.
const NOISE_COMPONENTS: usize = 16;

impl Trajectory {
    /// Moves from the rest position (count 0, where the firmware's position starts) through
    /// every pass of the scan: each pass ends `overrun` counts beyond its outermost preset.
    /// `presets` are in pass-0 order; `up0` is the direction of pass 0.
    pub fn for_scan(sc: &Scenario, presets: &[i64], passes: u16, up0: bool) -> Self {
        let m = &sc.motor;
        let rest = 0.0;
        let lo = presets.iter().copied().min().unwrap_or(0) as f64;
        let hi = presets.iter().copied().max().unwrap_or(0) as f64;
        let mut moves = Vec::new();
        let mut t = m.start_delay_s.max(0.0);
        let mut x = rest;
        for p in 0..passes.max(1) {
            let up = if p % 2 == 0 { up0 } else { !up0 };
            let target = if up { hi + m.overrun } else { lo - m.overrun };
            let mv = Move::plan(t, x, target, m.velocity, m.acceleration);
            t += mv.duration();
            x = target;
            moves.push(mv);
        }
        let j = &m.jitter;
        let mut rng = rng_for(sc.seed, stream::JITTER);
        let mut noise = Vec::new();
        if j.random_rms > 0.0 {
            // Equal-power components with random frequencies below the bandwidth: RMS of the sum
            // is random_rms.
            let a = j.random_rms * (2.0 / NOISE_COMPONENTS as f64).sqrt();
            for _ in 0..NOISE_COMPONENTS {
                let f = j.random_bandwidth_hz * rng.random_range(0.05..1.0);
                let ph = rng.random_range(0.0..std::f64::consts::TAU);
                noise.push((a, std::f64::consts::TAU * f, ph));
            }
        }
        Self {
            rest,
            moves,
            sine_amp: j.sine_amplitude,
            sine_w: std::f64::consts::TAU * j.sine_frequency_hz,
            noise,
            ramp_s: 0.02,
        }
    }

    /// Position at `t` seconds after the motion started, counts.
    pub fn position(&self, t: f64) -> f64 {
        self.nominal(t) + self.vibration(t)
    }

    /// Position without vibration.
    pub fn nominal(&self, t: f64) -> f64 {
        match self.moves.iter().rev().find(|m| t >= m.t0) {
            Some(m) => m.position(t),
            None => self.rest,
        }
    }

    /// Vibration at `t`; it fades in over the first 20 ms so the motion starts continuously.
    pub fn vibration(&self, t: f64) -> f64 {
        if t <= 0.0 || (self.sine_amp == 0.0 && self.noise.is_empty()) {
            return 0.0;
        }
        let r = (t / self.ramp_s).min(1.0);
        let env = r * r * (3.0 - 2.0 * r);
        let mut v = self.sine_amp * (self.sine_w * t).sin();
        for &(a, w, ph) in &self.noise {
            v += a * ((w * t + ph).sin() - ph.sin());
        }
        env * v
    }

    /// Highest vibration frequency, Hz (sets the sampling step).
    pub fn max_frequency_hz(&self) -> f64 {
        let mut w = self.sine_w;
        for &(_, wn, _) in &self.noise {
            w = w.max(wn);
        }
        w / std::f64::consts::TAU
    }

    /// Time the last move ends, s.
    pub fn end_time(&self) -> f64 {
        self.moves.last().map_or(0.0, |m| m.t0 + m.duration())
    }

    /// Highest nominal speed, counts/s.
    pub fn peak_speed(&self) -> f64 {
        self.moves.iter().map(|m| m.v_peak).fold(0.0, f64::max)
    }
}
