//! The XAS physics of the simulator, checked against independent computations: the encoder
//! reads the Bragg angle (energy by Bragg's law for the scenario's crystal and calibration at
//! every trigger), and μ(E) has the scenario's edge energy and edge step — in the model and in
//! the counts a scan produces.
#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use common::{assert_points_match, run, scenario};
use flyscan_sim::detectors::Spectrum;
use flyscan_sim::plan::{ScanPlan, exafs_energies};
use flyscan_sim::sample::Sample;
use flyscan_sim::scenario::Role;

/// Bragg's law written out here, independently of `mono.rs`: hc = 12 398.419 843 eV·Å,
/// Si a = 5.431 020 511 Å, θ = (position − offset) / counts per degree.
fn bragg_energy(sc: &flyscan_sim::Scenario, position: f64) -> f64 {
    let hkl2 = match sc.mono.crystal {
        flyscan_sim::scenario::Crystal::Si111 => 3.0,
        flyscan_sim::scenario::Crystal::Si311 => 11.0,
    };
    let d = 5.431_020_511 / f64::sqrt(hkl2);
    let theta = (position - sc.mono.angle_offset) / sc.mono.counts_per_degree;
    12_398.419_843 / (2.0 * d * (theta * std::f64::consts::PI / 180.0).sin())
}

#[test]
fn energy_at_every_trigger_follows_braggs_law() {
    for (file, crystal_d) in [
        ("cu_exafs.toml", 3.135_601),
        ("exafs_kgrid.toml", 3.135_601),
    ] {
        let sc = scenario(file);
        let spectrum = Spectrum::new(&sc);
        assert!(
            (spectrum.mono().d_spacing - crystal_d).abs() < 1e-6,
            "{file}: d"
        );
        let o = run(sc.clone());
        assert_points_match(&o);
        let grid = exafs_energies(&sc).unwrap();
        assert_eq!(
            o.truth.len(),
            grid.len(),
            "{file}: one point per grid energy"
        );
        for (t, want_grid) in o.truth.iter().zip(&grid) {
            // The trigger fires on the edge that reaches the preset: the encoder then reads it.
            let model = spectrum.energy(t.true_position);
            let law = bragg_energy(&sc, t.true_position as f64);
            assert!(
                (model - law).abs() < 1e-6,
                "{file} point {}: model {model} eV, Bragg {law} eV",
                t.index
            );
            // The preset is the grid energy rounded to a whole count: within one count's energy.
            let per_count = (bragg_energy(&sc, t.position as f64 + 1.0)
                - bragg_energy(&sc, t.position as f64))
            .abs();
            assert!(
                (bragg_energy(&sc, t.position as f64) - want_grid).abs() <= per_count,
                "{file} point {}: preset at {} eV, grid {want_grid} eV",
                t.index,
                bragg_energy(&sc, t.position as f64)
            );
        }
    }
}

#[test]
fn si311_calibration_moves_the_presets() {
    let mut sc = scenario("cu_exafs.toml");
    let si111 = ScanPlan::from_scenario(&sc).unwrap().positions;
    sc.mono.crystal = flyscan_sim::scenario::Crystal::Si311;
    // Cu K at Si(311) sits near θ = 25°: rest the motor there.
    sc.mono.angle_offset = 20_000.0 * 26.0;
    let plan = ScanPlan::from_scenario(&sc).unwrap();
    assert_ne!(plan.positions, si111);
    let e = exafs_energies(&sc).unwrap();
    for (p, want) in plan.positions.iter().zip(e) {
        assert!(
            (bragg_energy(&sc, *p as f64) - want).abs() < 0.05,
            "{p}: {want}"
        );
    }
}

/// Slope of a least-squares line through (x, y), and its value at `at`.
fn line_at(x: &[f64], y: &[f64], at: f64) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
    my + sxy / sxx * (at - mx)
}

/// Edge step of μ at E0: post-edge line (E0+150…E0+700 eV, where χ averages out) minus the
/// pre-edge line (E0−150…E0−30 eV), both extrapolated to E0.
fn edge_step(e: &[f64], mu: &[f64], e0: f64) -> f64 {
    let pick = |lo: f64, hi: f64| -> (Vec<f64>, Vec<f64>) {
        e.iter()
            .zip(mu)
            .filter(|(x, y)| **x >= e0 + lo && **x <= e0 + hi && y.is_finite())
            .map(|(x, y)| (*x, *y))
            .unzip()
    };
    let (pe, pm) = pick(-150.0, -30.0);
    let (qe, qm) = pick(150.0, 700.0);
    line_at(&qe, &qm, e0) - line_at(&pe, &pm, e0)
}

#[test]
fn model_mu_has_the_scenarios_edge_energy_and_step() {
    let sc = scenario("cu_exafs.toml");
    let s = Sample::new(&sc.sample);
    let e0 = sc.sample.e0_ev;
    let e: Vec<f64> = (0..9000).map(|i| e0 - 150.0 + 0.1 * i as f64).collect();
    let mu: Vec<f64> = e.iter().map(|&x| s.mu(x)).collect();
    // The steepest point of μ(E) within ±20 eV is E0.
    let (i_max, _) = mu
        .windows(2)
        .enumerate()
        .filter(|(i, _)| (e[*i] - e0).abs() < 20.0)
        .map(|(i, w)| (i, w[1] - w[0]))
        .fold((0, f64::MIN), |a, b| if b.1 > a.1 { b } else { a });
    let e_steep = 0.5 * (e[i_max] + e[i_max + 1]);
    assert!((e_steep - e0).abs() < 0.5, "steepest at {e_steep} eV");
    let step = edge_step(&e, &mu, e0);
    assert!(
        (step - sc.sample.edge_step).abs() < 0.05 * sc.sample.edge_step,
        "edge step {step}"
    );
    // Above the edge the EXAFS oscillates: χ changes sign many times between k = 3 and 12.
    let chi: Vec<f64> = (0..900)
        .map(|i| s.chi(e0 + 3.809_982 * (3.0 + 0.01 * i as f64).powi(2)))
        .collect();
    let turns = chi
        .windows(2)
        .filter(|w| w[0].signum() != w[1].signum())
        .count();
    assert!(turns >= 10, "{turns} sign changes of χ");
}

#[test]
fn counts_give_the_scenarios_edge_in_transmission_fluorescence_and_reference() {
    let sc = scenario("cu_exafs.toml");
    let e0 = sc.sample.e0_ev;
    let o = run(sc.clone());
    let ch = |role: Role| (0..4).find(|&c| sc.detectors.role(c) == role).unwrap();
    let (i0, it, fl, iref) = (ch(Role::I0), ch(Role::It), ch(Role::If), ch(Role::Iref));
    // Points of whole bins only (the first bin starts at the arm, not at a preset), at the
    // energy of the bin's centre.
    let spectrum = Spectrum::new(&sc);
    let mut e = Vec::new();
    let (mut mu_t, mut mu_f, mut mu_r) = (Vec::new(), Vec::new(), Vec::new());
    for w in o.truth.windows(2) {
        let c = &w[1].counts;
        let (a, b) = (w[0].position as f64, w[1].position as f64);
        e.push(0.5 * (spectrum.mono().energy(a) + spectrum.mono().energy(b)));
        let f = |x: u32| f64::from(x);
        mu_t.push((f(c[i0]) / f(c[it])).ln());
        mu_f.push(f(c[fl]) / f(c[i0]));
        mu_r.push((f(c[it]) / f(c[iref])).ln());
    }
    let step_t = edge_step(&e, &mu_t, e0);
    assert!(
        (step_t - sc.sample.edge_step).abs() < 0.05,
        "transmission step {step_t}"
    );
    let step_r = edge_step(&e, &mu_r, e0);
    assert!(
        (step_r - sc.sample.reference_step).abs() < 0.075,
        "reference step {step_r}"
    );
    let step_f = edge_step(&e, &mu_f, e0);
    let want_f = sc.detectors.if_rate / sc.detectors.i0_rate;
    assert!(
        (step_f - want_f).abs() < 0.05 * want_f,
        "fluorescence step {step_f} vs {want_f}"
    );
    // Half the transmission step is reached within 1 eV of E0.
    let pre: (Vec<f64>, Vec<f64>) = e
        .iter()
        .zip(&mu_t)
        .filter(|(x, _)| **x < e0 - 30.0)
        .map(|(x, y)| (*x, *y))
        .unzip();
    let half = line_at(&pre.0, &pre.1, e0) + 0.5 * step_t;
    let cross = e
        .iter()
        .zip(&mu_t)
        .filter(|(x, _)| (**x - e0).abs() < 15.0)
        .find(|(_, y)| **y > half)
        .map(|(x, _)| *x)
        .unwrap();
    assert!((cross - e0).abs() < 1.0, "half step at {cross} eV");
}
