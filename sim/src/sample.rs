//! The sample's X-ray absorption: a physically shaped model of μ(E)·x (absorbance) around one
//! absorption edge, and the reference foil of the same element.
//!
//! μx(E) = pre(E) + Δμ · s(E) · [ (E0/E)^2.5 · (1 + χ(k)) + w(E) ]
//!
//! * pre(E) = `pre_edge` · (E0/E)³: the matrix and the lower edges, falling as E⁻³ (Victoreen);
//! * s(E) = ½ + atan((E − E0)/Γ)/π: the edge step, Γ = `edge_width_ev` (core-hole lifetime and
//!   monochromator resolution); its steepest point is E0;
//! * (E0/E)^2.5: the edge's own atomic absorption falling above the edge;
//! * w(E) = `white_line` / (1 + ((E − E0 − `white_line_ev`)/`white_line_width_ev`)²): the white
//!   line (first resonance above the edge), relative to the step;
//! * χ(k) = Σ_shells S0² N F e^(−2R/λ) e^(−2σ²k²) / (k R²) · sin(2kR + φ0 + φ1·k), with
//!   k = √((E − E0)/[`HBAR2_2M`]) above E0, the standard EXAFS equation with
//!   a constant backscattering amplitude F and a linear phase shift; it is switched on smoothly
//!   below k ≈ 1.5 Å⁻¹ (`taper`), where the single-scattering picture does not hold and the
//!   1/k factor would diverge.
//!
//! The reference foil absorbs `reference_pre_edge` · (E0/E)³ + `reference_step` · s(E) · (E0/E)^2.5
//! · (1 + χ(k)) (same element, same edge, no white line).

use crate::plan::HBAR2_2M;
use crate::scenario::SampleConfig;

/// Constant backscattering amplitude F of every shell, Å.
const BACKSCATTER_AMPLITUDE_A: f64 = 0.5;
/// Photoelectron mean free path λ, Å.
const MEAN_FREE_PATH_A: f64 = 10.0;
/// k below which χ is switched off smoothly, Å⁻¹.
const TAPER_K: f64 = 1.5;

/// The absorption model of a scenario's sample.
#[derive(Debug, Clone)]
pub struct Sample {
    cfg: SampleConfig,
}

impl Sample {
    /// The sample a scenario describes.
    pub fn new(cfg: &SampleConfig) -> Self {
        Self { cfg: cfg.clone() }
    }

    /// The configuration.
    pub fn config(&self) -> &SampleConfig {
        &self.cfg
    }

    /// Edge step s(E): 0 far below E0, ½ at E0, 1 far above.
    pub fn step(&self, e: f64) -> f64 {
        let w = self.cfg.edge_width_ev.max(1e-6);
        0.5 + ((e - self.cfg.e0_ev) / w).atan() / std::f64::consts::PI
    }

    /// EXAFS χ at energy `e` (0 at and below E0).
    pub fn chi(&self, e: f64) -> f64 {
        let de = e - self.cfg.e0_ev;
        if de <= 0.0 {
            return 0.0;
        }
        let k = (de / HBAR2_2M).sqrt();
        let taper = 1.0 - (-(k / TAPER_K).powi(4)).exp();
        let mut chi = 0.0;
        for s in &self.cfg.shells {
            let amp = self.cfg.s02
                * s.n
                * BACKSCATTER_AMPLITUDE_A
                * (-2.0 * s.r_a / MEAN_FREE_PATH_A).exp()
                * (-2.0 * s.sigma2_a2 * k * k).exp()
                / (k * s.r_a * s.r_a);
            chi += amp * (2.0 * k * s.r_a + s.phase[0] + s.phase[1] * k).sin();
        }
        taper * chi
    }

    /// The absorbing element's own absorbance at `e` (what fluorescence measures), above the
    /// pre-edge background: Δμ · s(E) · [(E0/E)^2.5 · (1 + χ) + w(E)].
    pub fn mu_edge(&self, e: f64) -> f64 {
        let c = &self.cfg;
        let ratio = c.e0_ev / e.max(1.0);
        let wl = c.white_line
            / (1.0 + ((e - c.e0_ev - c.white_line_ev) / c.white_line_width_ev.max(1e-6)).powi(2));
        c.edge_step * self.step(e) * (ratio.powf(2.5) * (1.0 + self.chi(e)) + wl)
    }

    /// Total absorbance μx of the sample at `e` (what transmission measures).
    pub fn mu(&self, e: f64) -> f64 {
        let ratio = self.cfg.e0_ev / e.max(1.0);
        self.cfg.pre_edge * ratio.powi(3) + self.mu_edge(e)
    }

    /// Total absorbance of the reference foil at `e`.
    pub fn mu_reference(&self, e: f64) -> f64 {
        let c = &self.cfg;
        let ratio = c.e0_ev / e.max(1.0);
        c.reference_pre_edge * ratio.powi(3)
            + c.reference_step * self.step(e) * ratio.powf(2.5) * (1.0 + self.chi(e))
    }
}
