//! Unit tests of the physical models, the FPGA model, the line and the socket.
#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use embedded_hal::spi::SpiDevice;
use flyscan_firmware::fpga::regs::{self, reg};
use flyscan_sim::detectors::Counters;
use flyscan_sim::encoder::{Encoder, quadrature_ab, quadrature_step};
use flyscan_sim::fpga::{DrdyHandle, SpiHandle, lock};
use flyscan_sim::link::Link;
use flyscan_sim::plan::{HBAR2_2M, ScanPlan};
use flyscan_sim::rng::rng_for;
use flyscan_sim::simulation::build_fpga;
use flyscan_sim::socket::{SocketServer, WallClock};
use flyscan_sim::trajectory::Trajectory;
use flyscan_sim::{Scenario, Simulation};
use std::sync::{Arc, Mutex};

fn base() -> Scenario {
    Scenario::from_toml(
        r#"
        seed = 5
        [scan]
        start = 100
        step = 10
        count = 200
        "#,
    )
    .unwrap()
}

/// Runs an encoder to `end_s` and returns (sum of decoded steps, edges, illegal, last true count).
fn walk(sc: &Scenario, traj: Trajectory, end_s: f64) -> (i64, u64, u64, i64) {
    let hz = sc.clock.hz as f64;
    let mut enc = Encoder::new(sc, traj);
    enc.start_motion(0);
    let mut ab = quadrature_ab(0);
    let (mut pos, mut dir, mut last_true) = (0i64, 1i64, 0i64);
    let (mut edges, mut illegal) = (0, 0);
    while let Some(e) = enc.next_visible((end_s * hz) as u64) {
        match quadrature_step(ab, e.ab) {
            Some(d) => {
                dir = d;
                pos += d;
            }
            None => {
                illegal += 1;
                pos += 2 * dir;
            }
        }
        ab = e.ab;
        edges += 1;
        last_true = e.true_count;
    }
    (pos, edges, illegal, last_true)
}

#[test]
fn trajectory_is_continuous_and_reaches_every_pass_end() {
    let mut sc = base();
    sc.motor.jitter.sine_amplitude = 3.0;
    sc.motor.jitter.random_rms = 1.0;
    let presets: Vec<i64> = (0..200).map(|i| 100 + 10 * i).collect();
    let t = Trajectory::for_scan(&sc, &presets, 2, true);
    let dt = 1e-5;
    let vmax = sc.motor.velocity + 2.0 * std::f64::consts::PI * 50.0 * 3.0 + 1e4;
    let mut prev = t.position(0.0);
    assert_eq!(prev, 0.0, "starts at rest");
    let mut x = 0.0;
    while x < t.end_time() + 0.01 {
        x += dt;
        let p = t.position(x);
        assert!((p - prev).abs() <= vmax * dt, "jump at {x}: {prev} → {p}");
        prev = p;
    }
    // Pass 0 ends past the top, pass 1 past the bottom.
    assert!((t.nominal(t.end_time()) - (100.0 - sc.motor.overrun)).abs() < 1e-6);
    let mid = t.end_time() / 2.0;
    assert!(t.nominal(mid) > 100.0);
}

#[test]
fn encoder_edges_equal_the_distance_travelled() {
    let sc = base();
    let presets: Vec<i64> = (0..200).map(|i| 100 + 10 * i).collect();
    let t = Trajectory::for_scan(&sc, &presets, 1, true);
    let end = t.end_time() + 0.01;
    let target = t.nominal(end).round() as i64;
    let (pos, edges, illegal, last) = walk(&sc, t, end);
    assert_eq!(pos, target);
    assert_eq!(edges as i64, target, "monotonic: one edge per count");
    assert_eq!((illegal, last), (0, target));
}

#[test]
fn jittery_encoder_decodes_to_the_true_position() {
    let mut sc = base();
    sc.motor.velocity = 2000.0;
    sc.motor.jitter.sine_amplitude = 5.0;
    sc.motor.jitter.sine_frequency_hz = 200.0;
    let presets: Vec<i64> = (0..50).map(|i| 100 + 10 * i).collect();
    let t = Trajectory::for_scan(&sc, &presets, 1, true);
    let end = t.end_time() + 0.05;
    let (pos, edges, illegal, last) = walk(&sc, t, end);
    assert_eq!(pos, last, "decoded position follows the true count");
    assert!(
        edges as i64 > 2 * pos,
        "vibration reverses the motion: {edges} edges"
    );
    assert_eq!(illegal, 0);
}

#[test]
fn glitches_are_all_illegal_transitions_and_decodable() {
    let mut sc = base();
    sc.encoder.glitch_rate = 0.01;
    let presets: Vec<i64> = (0..200).map(|i| 100 + 10 * i).collect();
    let t = Trajectory::for_scan(&sc, &presets, 1, true);
    let end = t.end_time() + 0.01;
    let target = t.nominal(end).round() as i64;
    let mut enc = Encoder::new(&sc, t.clone());
    enc.start_motion(0);
    while enc.next_visible((end * 1e8) as u64).is_some() {}
    let injected = enc.stats().glitches;
    let (pos, edges, illegal, _) = walk(&sc, t, end);
    assert!(injected > 5);
    assert_eq!(illegal, injected);
    assert_eq!(pos, target);
    assert_eq!(edges + injected, target as u64);
}

#[test]
fn poisson_counts_have_the_model_mean() {
    let sc = base();
    let mut c = Counters::new(&sc);
    let rate = c.spectrum().rate(0, 0);
    // 1 s in 1000 intervals.
    for i in 1..=1000u64 {
        c.advance(i * 100_000, 0, true);
    }
    let n = c.totals()[0] as f64;
    assert!((n - rate).abs() < 5.0 * rate.sqrt(), "{n} vs {rate}");
}

#[test]
fn dead_time_reduces_the_rate_non_paralyzably() {
    let mut sc = base();
    sc.detectors.dead_time_ns = 500.0;
    let mut c = Counters::new(&sc);
    let r = c.spectrum().rate(0, 0);
    for i in 1..=200u64 {
        c.advance(i * 500_000, 0, true);
    }
    let expect = r / (1.0 + r * 500e-9);
    let n = c.totals()[0] as f64;
    assert!(
        r - expect > 50.0 * expect.sqrt(),
        "the test rate shows dead time"
    );
    assert!((n - expect).abs() < 5.0 * expect.sqrt(), "{n} vs {expect}");
}

#[test]
fn link_paces_bytes_at_a_tenth_of_the_baud_rate() {
    let hz = 100e6;
    let mut l = Link::new(115_200, hz, 0.0, 0.0, rng_for(1, 1));
    l.send(0, &[0x55; 11_520]);
    let mut out = Vec::new();
    // After 0.5 s: half the bytes; after 1 s: all.
    l.deliver(50_000_000, &mut out);
    assert_eq!(out.len(), 5_760);
    l.deliver(100_000_000, &mut out);
    assert_eq!(out.len(), 11_520);
    assert_eq!(l.bytes_per_second(hz).round(), 11_520.0);
}

#[test]
fn link_errors_follow_the_rates() {
    let mut l = Link::new(1_000_000, 1e8, 1e-3, 1e-3, rng_for(3, 4));
    let n = 200_000usize;
    l.send(0, &vec![0u8; n]);
    let mut out = Vec::new();
    l.deliver(u64::MAX / 2, &mut out);
    let s = l.stats();
    assert_eq!(out.len() as u64, n as u64 - s.bytes_dropped);
    let p_byte = 1.0 - (1.0 - 1e-3f64).powi(8);
    let exp = n as f64 * p_byte;
    assert!((s.bytes_corrupted as f64 - exp).abs() < 5.0 * exp.sqrt());
    assert!((s.bytes_dropped as f64 - 200.0).abs() < 5.0 * 200f64.sqrt());
    assert_eq!(
        out.iter().filter(|&&b| b != 0).count() as u64,
        s.bytes_corrupted
    );
}

#[test]
fn exafs_grid_is_increasing_and_uniform_in_k() {
    let sc = Scenario::load(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/exafs_kgrid.toml"),
    )
    .unwrap();
    let plan = ScanPlan::from_scenario(&sc).unwrap();
    let p = &plan.positions;
    assert!(p.len() >= 2000);
    assert!(p.windows(2).all(|w| w[1] > w[0]));
    // The grid ends at k = 14 Å⁻¹, its last step is k_step (to a count's worth of energy).
    let mono = flyscan_sim::mono::Mono::new(&sc.mono);
    let e = |c: i64| mono.energy(c as f64) - sc.sample.e0_ev;
    let last = e(p[p.len() - 1]);
    assert!((last - HBAR2_2M * 14.0 * 14.0).abs() < 0.05, "{last}");
    let k = |c: i64| (e(c) / HBAR2_2M).sqrt();
    let dk = k(p[p.len() - 1]) - k(p[p.len() - 2]);
    assert!((dk - sc.scan.exafs.k_step).abs() < 0.003, "{dk}");
}

#[test]
fn fpga_model_drives_the_firmware_driver() {
    let sc = base();
    let plan = ScanPlan::from_scenario(&sc).unwrap();
    let m = Arc::new(Mutex::new(build_fpga(&sc, &plan)));
    let mut fpga = flyscan_firmware::Fpga::new(SpiHandle(m.clone()), DrdyHandle(m.clone()));
    let (info, ab) = fpga.init().unwrap();
    assert_eq!(info.clock_hz, 100_000_000);
    assert_eq!(info.n_channels, 8);
    assert_eq!(ab, 0);
    assert!(!fpga.data_ready().unwrap());
    lock(&m).advance_to(123_456_789);
    assert_eq!(fpga.read_time().unwrap(), 123_456_789);
}

#[test]
fn fifo_overrun_keeps_sequence_numbers_and_snapshots() {
    let mut sc = base();
    sc.fpga.fifo_depth = 8;
    sc.fpga.snapshot_depth = 16;
    let plan = ScanPlan::from_scenario(&sc).unwrap();
    let m = Arc::new(Mutex::new(build_fpga(&sc, &plan)));
    let mut spi = SpiHandle(m.clone());
    let write = |spi: &mut SpiHandle, v: u32| {
        let mut h = [regs::CMD_WRITE_REG, reg::CONTROL, 0, 0, 0, 0];
        h[2..].copy_from_slice(&v.to_le_bytes());
        spi.write(&h).unwrap();
    };
    let read = |spi: &mut SpiHandle, a: u8| {
        let mut r = [0u8; 4];
        spi.transaction(&mut [
            embedded_hal::spi::Operation::Write(&[regs::CMD_READ_REG, a]),
            embedded_hal::spi::Operation::Read(&mut r),
        ])
        .unwrap();
        u32::from_le_bytes(r)
    };
    write(&mut spi, regs::CONTROL_RESET | regs::CONTROL_CLEAR_FIFO);
    write(&mut spi, regs::CONTROL_ENABLE);
    {
        let mut f = lock(&m);
        f.start_motion();
        // 0.01 s at up to 20 000 counts/s: well over 8 + 16 edges.
        f.advance_to(10_000_000);
    }
    assert_eq!(read(&mut spi, reg::EDGE_FIFO_LEVEL), 8);
    let lost = read(&mut spi, reg::OVERRUN_COUNT);
    assert!(lost > 16, "{lost}");
    assert_eq!(
        read(&mut spi, reg::STATUS),
        regs::STATUS_READY | regs::STATUS_OVERRUN
    );
    assert_eq!(
        read(&mut spi, reg::STATUS),
        regs::STATUS_READY,
        "overrun bit clears on read"
    );
    let mut resp = vec![0u8; 2 + 10 * regs::EDGE_EVENT_LEN];
    spi.transaction(&mut [
        embedded_hal::spi::Operation::Write(&[regs::CMD_READ_EDGES, 10, 0]),
        embedded_hal::spi::Operation::Read(&mut resp),
    ])
    .unwrap();
    assert_eq!(u16::from_le_bytes([resp[0], resp[1]]), 8);
    let seqs: Vec<u32> = (0..8)
        .map(|i| {
            let o = 2 + i * regs::EDGE_EVENT_LEN + 8;
            u32::from_le_bytes([resp[o], resp[o + 1], resp[o + 2], resp[o + 3]])
        })
        .collect();
    assert_eq!(seqs, (0..8).collect::<Vec<_>>());
    assert!(resp[2 + 8 * regs::EDGE_EVENT_LEN..].iter().all(|&b| b == 0));
    // Edge 0's snapshot was overwritten (more than 16 newer edges); the newest one is valid.
    let snap = |spi: &mut SpiHandle, s: u32| {
        let mut r = vec![0u8; regs::snapshot_len(8)];
        let mut h = [regs::CMD_READ_SNAPSHOT, 0, 0, 0, 0];
        h[1..].copy_from_slice(&s.to_le_bytes());
        spi.transaction(&mut [
            embedded_hal::spi::Operation::Write(&h),
            embedded_hal::spi::Operation::Read(&mut r),
        ])
        .unwrap();
        r
    };
    assert_eq!(snap(&mut spi, 0)[0], 0);
    let newest = 8 + lost - 1;
    let s = snap(&mut spi, newest);
    assert_eq!(s[0], 1);
    assert_eq!(u32::from_le_bytes([s[1], s[2], s[3], s[4]]), newest);
}

#[test]
fn same_seed_same_run() {
    let run = || {
        let sc = Scenario::load(
            &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/demo.toml"),
        )
        .unwrap();
        let mut sim = Simulation::new(sc).unwrap();
        let mut fw =
            flyscan_sim::firmware::InProcessFirmware::with_boot_id(&sim, 0x600d_b007).unwrap();
        let mut bytes = Vec::new();
        // A host that only listens: the device never arms, so the motor stays at rest.
        sim.run_with_host(&mut fw, &mut |t, rx, _| {
            bytes.extend_from_slice(rx);
            t > 50_000_000
        })
        .unwrap();
        bytes
    };
    let a = run();
    assert!(!a.is_empty(), "the device announced itself");
    assert_eq!(a, run());
}

#[test]
fn socket_serves_the_model_to_the_firmware_client() {
    let sc = base();
    let plan = ScanPlan::from_scenario(&sc).unwrap();
    let m = Arc::new(Mutex::new(build_fpga(&sc, &plan)));
    let path = std::env::temp_dir().join(format!("flyscan-sim-test-{}.sock", std::process::id()));
    let server = SocketServer::start(&path, m.clone(), WallClock::new(100_000_000, 1.0)).unwrap();
    let (spi, drdy) = flyscan_firmware::fpga::sim_socket::connect(&path).unwrap();
    let mut fpga = flyscan_firmware::Fpga::new(spi, drdy);
    let (info, _) = fpga.init().unwrap();
    assert_eq!(info.n_channels, 8);
    assert_eq!(info.counter_bits, 32);
    assert!(!fpga.data_ready().unwrap());
    let t1 = fpga.read_time().unwrap();
    let t2 = fpga.read_time().unwrap();
    assert!(t2 >= t1, "the socket model's clock runs");
    let (mut spi, _) = fpga.release();
    spi.quit().unwrap();
    server.stop();
    assert!(!path.exists());
}

#[test]
fn time_mode_plan_and_its_checks() {
    let text = r#"
        [scan]
        mode = "time"
        direction = "either"
        period_ticks = 250000
        gate_start = -40
        gate_span = 900
        move_to = -1500
        count = 12
        "#;
    let sc = Scenario::from_toml(text).unwrap();
    let plan = ScanPlan::from_scenario(&sc).unwrap();
    let c = plan.config;
    assert_eq!(c.mode, flyscan_protocol::TriggerMode::Time);
    assert_eq!(
        (c.step, c.start, c.gate_span, c.count),
        (250_000, -40, 900, 12)
    );
    assert!(plan.positions.is_empty());
    assert_eq!(plan.motion_points(&sc), [-1500]);
    assert_eq!(plan.total_points(), 12);
    let t = plan.time_scan().unwrap();
    assert_eq!(
        (t.period, t.window, t.count),
        (250_000, Some((-40, 860)), 12)
    );
    let json = plan.config_json();
    assert_eq!(json["mode"], "time");
    assert_eq!(json["gate_span"], 900);
    // What the device would refuse, the plan refuses, with the protocol's reason.
    for (bad, why) in [
        ("direction = \"either\"", "direction = \"positive\""),
        ("period_ticks = 250000", "period_ticks = 999"),
        ("period_ticks = 250000", "period_ticks = 5000000000"),
    ] {
        let sc = Scenario::from_toml(&text.replace(bad, why)).unwrap();
        let e = ScanPlan::from_scenario(&sc).unwrap_err().to_string();
        assert!(
            e.contains("direction") || e.contains("period"),
            "{why}: {e}"
        );
    }
    // The position modes have no window and no time scan.
    let plan = ScanPlan::from_scenario(&base()).unwrap();
    assert_eq!(plan.config.gate_span, 0);
    assert!(plan.time_scan().is_none());
}
