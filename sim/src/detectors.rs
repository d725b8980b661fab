//! Detector channels: Poisson pulse trains whose rates follow the motor position through an
//! EXAFS-like absorption spectrum, with optional non-paralyzable dead time.
//!
//! * Channel 0 (I0-like reference): `i0_rate` × a slow ±5 % beam modulation.
//! * Odd channels (fluorescence-like): `signal_rate` × beam × μ(E)/μ_max, scaled down 10 % per
//!   channel pair so channels differ.
//! * Even channels ≥ 2 (transmission-like): `signal_rate` × beam × exp(−μ(E)), same scaling.
//! * μ(E) = pre_edge + edge_step × (½ + atan((E−E0)/w)/π) × (1 + χ(E)), with
//!   χ = A sin(2kR) exp(−2σ²k²) above E0, k = √((E−E0)/3.81).
//!
//! Counting is piecewise: the rate is constant between two observation ticks (an encoder edge
//! or a control change) and taken at the position before the interval. Without dead time the
//! count of an interval is Poisson(rate × Δt); with dead time τ the counted pulses form the
//! renewal process "τ + exponential wait", which is simulated pulse by pulse.

use crate::plan::HBAR2_2M;
use crate::rng::{rng_for, stream};
use crate::scenario::{DetectorConfig, Scenario};
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Exp, Poisson};

/// Rate model of all channels.
#[derive(Debug, Clone)]
pub struct Spectrum {
    cfg: DetectorConfig,
}

impl Spectrum {
    /// The spectrum of a scenario.
    pub fn new(cfg: &DetectorConfig) -> Self {
        Self { cfg: cfg.clone() }
    }

    /// Photon energy at encoder count `pos`, eV.
    pub fn energy(&self, pos: i64) -> f64 {
        let s = &self.cfg.spectrum;
        s.energy_at_zero_ev + pos as f64 / s.counts_per_ev
    }

    /// Normalised absorption μ at energy `e`.
    pub fn mu(&self, e: f64) -> f64 {
        let s = &self.cfg.spectrum;
        let de = e - s.e0_ev;
        let step = 0.5 + (de / s.edge_width_ev.max(1e-6)).atan() / std::f64::consts::PI;
        let chi = if de > 0.0 {
            let k = (de / HBAR2_2M).sqrt();
            s.oscillation_amplitude
                * (2.0 * k * s.shell_distance_a).sin()
                * (-2.0 * s.sigma2_a2 * k * k).exp()
        } else {
            0.0
        };
        s.pre_edge + s.edge_step * step * (1.0 + chi)
    }

    /// Mean rate of channel `ch` at count `pos`, pulses/s.
    pub fn rate(&self, ch: usize, pos: i64) -> f64 {
        let e = self.energy(pos);
        let beam = 1.0 + 0.05 * (e * std::f64::consts::TAU / 400.0).sin();
        if ch == 0 {
            return self.cfg.i0_rate * beam;
        }
        let s = &self.cfg.spectrum;
        let scale = 0.9_f64.powi(((ch - 1) / 2) as i32);
        let mu = self.mu(e);
        let shape = if ch % 2 == 1 {
            let mu_max = s.pre_edge + s.edge_step * (1.0 + s.oscillation_amplitude.abs());
            mu / mu_max.max(1e-9)
        } else {
            (-mu).exp()
        };
        self.cfg.signal_rate * beam * scale * shape
    }
}

/// Pulse counters of all channels (unwrapped, 64-bit, counting only while gated on).
#[derive(Debug)]
pub struct Counters {
    spectrum: Spectrum,
    totals: Vec<u64>,
    rngs: Vec<SmallRng>,
    /// Last counted pulse per channel, s (dead-time model).
    last_pulse: Vec<f64>,
    dead_time_s: f64,
    clock_hz: f64,
    last_tick: u64,
}

impl Counters {
    /// Counters of a scenario, at tick 0.
    pub fn new(sc: &Scenario) -> Self {
        let n = usize::from(sc.detectors.channels);
        Self {
            spectrum: Spectrum::new(&sc.detectors),
            totals: vec![0; n],
            rngs: (0..n as u64)
                .map(|i| rng_for(sc.seed, stream::DETECTOR + i))
                .collect(),
            last_pulse: vec![f64::NEG_INFINITY; n],
            dead_time_s: sc.detectors.dead_time_ns.max(0.0) * 1e-9,
            clock_hz: sc.clock.hz as f64,
            last_tick: 0,
        }
    }

    /// Counts pulses from the last observation up to `tick` at position `pos`, if `gate` is on.
    pub fn advance(&mut self, tick: u64, pos: i64, gate: bool) {
        if tick <= self.last_tick {
            return;
        }
        let (t0, t1) = (
            self.last_tick as f64 / self.clock_hz,
            tick as f64 / self.clock_hz,
        );
        self.last_tick = tick;
        if !gate {
            return;
        }
        for ch in 0..self.totals.len() {
            let rate = self.spectrum.rate(ch, pos);
            if rate <= 0.0 {
                continue;
            }
            let rng = &mut self.rngs[ch];
            if self.dead_time_s > 0.0 {
                let Ok(exp) = Exp::new(rate) else { continue };
                let mut t = t0.max(self.last_pulse[ch] + self.dead_time_s);
                loop {
                    t += exp.sample(rng);
                    if t > t1 {
                        break;
                    }
                    self.totals[ch] += 1;
                    self.last_pulse[ch] = t;
                    t += self.dead_time_s;
                }
            } else {
                let lambda = rate * (t1 - t0);
                if let Ok(p) = Poisson::new(lambda) {
                    self.totals[ch] += p.sample(rng) as u64;
                }
            }
        }
    }

    /// Pulses counted so far per channel.
    pub fn totals(&self) -> &[u64] {
        &self.totals
    }

    /// The rate model.
    pub fn spectrum(&self) -> &Spectrum {
        &self.spectrum
    }
}
