//! The double-crystal monochromator: the encoder reads the Bragg angle, energy follows Bragg's
//! law for the crystal's lattice-plane spacing.
//!
//! * θ(°) = (position − `angle_offset`) / `counts_per_degree` (the host driver's `DSpacing`,
//!   `CountsPerDegree`, `AngleOffset` PVs use the same convention);
//! * E(eV) = hc / (2 d sin θ), hc = [`HC_EV_A`].
//!
//! A scan uniform in energy or in k is therefore not uniform in encoder counts.

use crate::scenario::{Crystal, MonoConfig};

/// h·c in eV·Å (CODATA 2018): λ(Å) = `HC_EV_A` / E(eV).
pub const HC_EV_A: f64 = 12_398.419_843;

/// Lattice constant of silicon at 22.5 °C, Å.
pub const SI_LATTICE_A: f64 = 5.431_020_511;

/// Smallest and largest Bragg angle the model accepts, degrees: positions beyond them (a
/// scenario that drives far outside its energy range) are clamped, never a panic or a NaN.
const THETA_MIN_DEG: f64 = 0.01;
const THETA_MAX_DEG: f64 = 89.99;

impl Crystal {
    /// Lattice-plane spacing of the reflection, Å (d = a / √(h² + k² + l²)).
    pub fn d_spacing(self) -> f64 {
        match self {
            Crystal::Si111 => SI_LATTICE_A / 3f64.sqrt(),
            Crystal::Si311 => SI_LATTICE_A / 11f64.sqrt(),
        }
    }

    /// The name used in scenario files, PVs and metadata, e.g. `Si(111)`.
    pub fn name(self) -> &'static str {
        match self {
            Crystal::Si111 => "Si(111)",
            Crystal::Si311 => "Si(311)",
        }
    }
}

/// The monochromator of a scenario.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mono {
    /// Crystal reflection.
    pub crystal: Crystal,
    /// Lattice-plane spacing, Å.
    pub d_spacing: f64,
    /// Encoder counts per degree of Bragg angle (negative: counts fall as θ grows).
    pub counts_per_degree: f64,
    /// Encoder count at θ = 0.
    pub angle_offset: f64,
}

impl Mono {
    /// The monochromator a scenario describes.
    pub fn new(cfg: &MonoConfig) -> Self {
        Self {
            crystal: cfg.crystal,
            d_spacing: cfg.crystal.d_spacing(),
            counts_per_degree: cfg.counts_per_degree,
            angle_offset: cfg.angle_offset,
        }
    }

    /// Bragg angle at encoder `position`, degrees (not clamped).
    pub fn angle_deg(&self, position: f64) -> f64 {
        (position - self.angle_offset) / self.counts_per_degree
    }

    /// Photon energy at encoder `position`, eV; the angle is clamped to (0°, 90°) so every
    /// position gives a finite energy.
    pub fn energy(&self, position: f64) -> f64 {
        let theta = self.angle_deg(position).clamp(THETA_MIN_DEG, THETA_MAX_DEG);
        bragg_energy(theta, self.d_spacing)
    }

    /// Encoder position (not rounded) at which the monochromator passes `energy_ev`, or None
    /// if the crystal cannot diffract it (λ > 2d).
    pub fn position(&self, energy_ev: f64) -> Option<f64> {
        let theta = bragg_angle_deg(energy_ev, self.d_spacing)?;
        Some(self.angle_offset + self.counts_per_degree * theta)
    }

    /// Energy span of one encoder count at `position`, eV (|dE/dposition|).
    pub fn ev_per_count(&self, position: f64) -> f64 {
        (self.energy(position + 0.5) - self.energy(position - 0.5)).abs()
    }
}

/// Energy diffracted at Bragg angle `theta_deg` by plane spacing `d` (Å), eV.
pub fn bragg_energy(theta_deg: f64, d: f64) -> f64 {
    HC_EV_A / (2.0 * d * theta_deg.to_radians().sin())
}

/// Bragg angle of `energy_ev` for plane spacing `d` (Å), degrees; None when λ > 2d or the
/// energy is not positive.
pub fn bragg_angle_deg(energy_ev: f64, d: f64) -> Option<f64> {
    if !(energy_ev > 0.0 && d > 0.0) {
        return None;
    }
    let s = HC_EV_A / (2.0 * d * energy_ev);
    (s <= 1.0).then(|| s.asin().to_degrees())
}
