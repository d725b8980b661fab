//! Detector channels of a transmission / fluorescence XAS set-up: Poisson pulse trains whose
//! rates follow the monochromator energy at the motor position through the sample's absorption
//! (`sample.rs`), with optional non-paralyzable dead time. What each channel measures is its
//! role (`[detectors] roles`):
//!
//! * I0: `i0_rate` × b(E), b(E) = 1 + 0.05 sin(2π E / 400 eV) (the beam's smooth energy
//!   dependence: undulator, mirrors, the I0 chamber's own absorption);
//! * It: I0 flux × `it_gain` × e^(−μx(E)) (behind the sample);
//! * Iref: It flux × `iref_gain` × e^(−μx_ref(E)) (behind the reference foil);
//! * If: b(E) × (`if_rate` × μ_edge(E)/Δμ + `scatter_rate`) (thin-sample fluorescence);
//! * none: dark counts only. Every channel adds `dark_rate`.
//!
//! Counting is piecewise: the rate is constant between two observation ticks (an encoder edge
//! or a control change) and taken at the position before the interval. Without dead time the
//! count of an interval is Poisson(rate × Δt); with dead time τ the counted pulses form the
//! renewal process "τ + exponential wait", which is simulated pulse by pulse.

use crate::mono::Mono;
use crate::rng::{rng_for, stream};
use crate::sample::Sample;
use crate::scenario::{DetectorConfig, Role, Scenario};
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Exp, Poisson};

/// Rate model of all channels.
#[derive(Debug, Clone)]
pub struct Spectrum {
    cfg: DetectorConfig,
    mono: Mono,
    sample: Sample,
}

impl Spectrum {
    /// The rate model of a scenario.
    pub fn new(sc: &Scenario) -> Self {
        Self {
            cfg: sc.detectors.clone(),
            mono: Mono::new(&sc.mono),
            sample: Sample::new(&sc.sample),
        }
    }

    /// Photon energy at encoder count `pos`, eV.
    pub fn energy(&self, pos: i64) -> f64 {
        self.mono.energy(pos as f64)
    }

    /// The monochromator.
    pub fn mono(&self) -> &Mono {
        &self.mono
    }

    /// The sample.
    pub fn sample(&self) -> &Sample {
        &self.sample
    }

    /// Mean rate of every channel at count `pos`, pulses/s, into `out` (one per channel).
    pub fn rates(&self, pos: i64, out: &mut [f64]) {
        let e = self.energy(pos);
        let c = &self.cfg;
        let beam = 1.0 + 0.05 * (e * std::f64::consts::TAU / 400.0).sin();
        let i0 = c.i0_rate * beam;
        let it = i0 * c.it_gain * (-self.sample.mu(e)).exp();
        let iref = it * c.iref_gain * (-self.sample.mu_reference(e)).exp();
        // Fluorescence per unit edge step (a sample with no step still scatters).
        let step = self.sample.config().edge_step;
        let per_step = if step > 0.0 { 1.0 / step } else { 0.0 };
        let fluo = beam * (c.if_rate * self.sample.mu_edge(e) * per_step + c.scatter_rate);
        for (ch, r) in out.iter_mut().enumerate() {
            let signal = match c.role(ch) {
                Role::I0 => i0,
                Role::It => it,
                Role::Iref => iref,
                Role::If => fluo,
                Role::None => 0.0,
            };
            *r = (signal + c.dark_rate).max(0.0);
        }
    }

    /// Mean rate of channel `ch` at count `pos`, pulses/s.
    pub fn rate(&self, ch: usize, pos: i64) -> f64 {
        let mut all = vec![0.0; usize::from(self.cfg.channels).max(ch + 1)];
        self.rates(pos, &mut all);
        all[ch]
    }
}

/// Pulse counters of all channels (unwrapped, 64-bit, counting only while gated on).
#[derive(Debug)]
pub struct Counters {
    spectrum: Spectrum,
    totals: Vec<u64>,
    /// Scratch: the rates of the current interval.
    rates: Vec<f64>,
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
            spectrum: Spectrum::new(sc),
            totals: vec![0; n],
            rates: vec![0.0; n],
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
        self.spectrum.rates(pos, &mut self.rates);
        for ch in 0..self.totals.len() {
            let rate = self.rates[ch];
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
