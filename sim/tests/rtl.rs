//! The unchanged firmware binary against the gateware: `sim run --rtl-bridge` serves a
//! Verilator build of `gateware/` behind the FPGA socket, with encoder and detector stimulus
//! from the simulator's physics; a scan of 250 points gives the very point stream (and truth)
//! that the same scenario, with the motion starting at the same tick, gives on the reference
//! model. A time-mode scan on the RTL (its period timer and period events) gives the points of
//! the ground truth, field for field.
//!
//! `cargo xtask test` builds the bridge for this scenario's FPGA (8 channels, 32-bit counters,
//! 4096-deep FIFO and snapshot RAM) and the release binaries, and names them in
//! `FLYSCAN_RTL_BRIDGE` and `FLYSCAN_BIN_DIR`. Without them the test says so loudly and skips.
#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use common::{KillOnDrop, TestHost, assert_points_match_truth_file, truth_file_points};
use flyscan_protocol::Point;
use flyscan_sim::Scenario;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Simulated seconds per wall second for both runs. The RTL bridge simulates ~10 M cycles/s of
/// this 100 MHz design; where it cannot keep up, the device clock follows its pace.
const SPEED: f64 = 1.0;
const POINTS: usize = 250;

/// `FLYSCAN_RTL_SPEED` overrides [`SPEED`] (to find how fast the RTL keeps up).
fn speed() -> f64 {
    std::env::var("FLYSCAN_RTL_SPEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SPEED)
}

struct Run {
    truth: String,
    points: BTreeMap<u32, Point>,
    wall: Duration,
    /// The simulator's `PACE` line: device seconds from the arm until every point was out,
    /// and the wall seconds they took.
    pace: Option<(f64, f64)>,
    /// The device tick the motion started at (`DEVICE_CLOCK` line).
    motion_tick: Option<u64>,
}

fn scenario_text() -> String {
    let demo = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/demo.toml"),
    )
    .unwrap();
    let short = demo.replace("count = 2000", &format!("count = {POINTS}"));
    assert_ne!(short, demo, "the demo scenario's count was shortened");
    short
}

/// One `sim run` of the scenario `text` with the firmware binary, on the RTL when `bridge` is
/// given, the motion starting at `motion_tick` when given.
fn run(
    bin_dir: &Path,
    bridge: Option<&Path>,
    motion_tick: Option<u64>,
    tag: &str,
    text: &str,
) -> Run {
    let dir = std::env::temp_dir().join(format!("flyscan-rtl-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario_path = dir.join("scenario.toml");
    std::fs::write(&scenario_path, text).unwrap();
    let sc = Scenario::from_toml(text).unwrap();
    let hz = sc.clock.hz;
    let plan = flyscan_sim::ScanPlan::from_scenario(&sc).unwrap();
    let (link, truth) = (dir.join("tty"), dir.join("truth.jsonl"));
    let mut cmd = Command::new(bin_dir.join("sim"));
    cmd.arg("run")
        .arg("--firmware-cmd")
        .arg(bin_dir.join("firmware-odroid"))
        .arg("--scenario")
        .arg(&scenario_path)
        .arg("--link")
        .arg(&link)
        .arg("--truth")
        .arg(&truth)
        .arg("--socket")
        .arg(dir.join("fpga.sock"))
        .arg("--speed")
        .arg(speed().to_string())
        .arg("--exit-when-done")
        .stdout(Stdio::piped());
    if let Some(b) = bridge {
        cmd.arg("--rtl-bridge").arg(b);
    }
    if let Some(t) = motion_tick {
        cmd.arg("--motion-tick").arg(t.to_string());
    }
    let start = Instant::now();
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("PTY "), "sim said {line:?}");
    // Read the rest of stdout (DEVICE_CLOCK and PACE) so the simulator never blocks.
    let rest = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        text
    });
    let mut port = serialport::new(link.to_string_lossy(), 921_600)
        .timeout(Duration::from_millis(5))
        .open_native()
        .unwrap();
    let mut host = TestHost::new(plan, hz);
    // The firmware answers the RTL's pace, not the wall clock's: give it a second before a
    // command is sent again (a late Arm would re-arm a scan that has just ended).
    host.set_retry_timeout(hz);
    let (mut rx, mut tx) = (vec![0u8; 4096], Vec::new());
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "{tag}: run hung with {} points",
            host.points.len()
        );
        let n = match port.read(&mut rx) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => 0,
            Err(e) => panic!(
                "{tag}: reading the host pty: {e} (the simulator ended with {} points here, \
                 scan done: {}, Health after it: {}, frames missing: {})",
                host.points.len(),
                host.done.is_some(),
                host.health_after_done.is_some(),
                host.missing_frames()
            ),
        };
        // The host's retry timers run on the simulator's (slowed) time.
        let now = (start.elapsed().as_secs_f64() * hz as f64 * speed()) as u64;
        tx.clear();
        let finished = host.exchange(now, &rx[..n], &mut tx);
        port.write_all(&tx).unwrap();
        if finished {
            break;
        }
    }
    let wall = start.elapsed();
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            assert!(status.success(), "{tag}: sim exited with {status}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "{tag}: sim did not exit"
        );
        let _ = port.read(&mut rx);
    }
    let truth = std::fs::read_to_string(&truth).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = rest.join().unwrap();
    let pace = stdout.lines().find_map(|l| {
        let mut w = l.strip_prefix("PACE ")?.split_whitespace();
        Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
    });
    // `DEVICE_CLOCK <unix s> <motion tick> <ticks per s>`
    let motion_tick = stdout.lines().find_map(|l| {
        l.strip_prefix("DEVICE_CLOCK ")?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    });
    Run {
        truth,
        points: std::mem::take(&mut host.points),
        wall,
        pace,
        motion_tick,
    }
}

/// The RTL bridge and the release binaries (`cargo xtask test` names them), or `None` after
/// saying loudly that the test is skipped.
fn rtl_setup(what: &str) -> Option<(PathBuf, PathBuf)> {
    let (Some(bridge), Some(bin_dir)) = (
        std::env::var_os("FLYSCAN_RTL_BRIDGE"),
        std::env::var_os("FLYSCAN_BIN_DIR"),
    ) else {
        eprintln!(
            "\n!!! SKIPPED {what}: FLYSCAN_RTL_BRIDGE and FLYSCAN_BIN_DIR are not set \
             (`cargo xtask test` sets them; `cargo xtask rtl-bridge` builds the bridge) !!!\n"
        );
        return None;
    };
    let (bridge, bin_dir) = (PathBuf::from(bridge), PathBuf::from(bin_dir));
    assert!(bridge.is_file(), "{} missing", bridge.display());
    Some((bridge, bin_dir))
}

#[test]
fn firmware_binary_on_the_rtl_streams_what_it_streams_on_the_reference_model() {
    let Some((bridge, bin_dir)) = rtl_setup("firmware-against-RTL scan") else {
        return;
    };
    let text = scenario_text();
    let rtl = run(&bin_dir, Some(&bridge), None, "rtl", &text);
    // SPI traffic before the arm moves the RTL's clock, so the simulator starts the motion
    // past it; the reference model gets the same start, and so the same stimulus.
    let motion = rtl
        .motion_tick
        .expect("the simulator announces the motion start");
    let model = run(&bin_dir, None, Some(motion), "model", &text);
    assert_eq!(model.motion_tick, Some(motion));
    assert_eq!(rtl.points.len(), POINTS, "points on the RTL");
    assert_eq!(model.points.len(), POINTS, "points on the model");
    // The summary line also counts line bytes, which follow each run's pace; the points and
    // the physics' counts must be the same.
    assert_eq!(
        truth_file_points(&rtl.truth),
        truth_file_points(&model.truth),
        "same stimulus, same truth"
    );
    let physics = |t: &str| {
        let s = t
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find_map(|v| v.get("summary").cloned())
            .unwrap();
        [
            "points",
            "illegal_transitions",
            "fifo_overruns",
            "jump_points",
            "position_jumps",
        ]
        .map(|k| s[k].clone())
    };
    assert_eq!(physics(&rtl.truth), physics(&model.truth), "same summary");
    for (i, (a, b)) in rtl.points.iter().zip(&model.points).enumerate() {
        assert_eq!(a, b, "point {i} differs between the RTL and the model");
    }
    // The stream is right, not only equal: it matches the physics' ground truth.
    let truth = assert_points_match_truth_file(&rtl.points, &rtl.truth);
    assert_eq!(truth.len(), POINTS);
    // How much slower than real time the scan ran on the RTL (BENCHMARKS.md).
    let (device_s, wall_s) = rtl.pace.expect("the simulator reports its pace");
    assert!(
        device_s > 0.2,
        "the scan lasted {device_s} s of device time"
    );
    eprintln!(
        "RTL scan: {POINTS} points, {device_s:.3} s of device time from the arm in {wall_s:.2} s \
         of wall time ({:.1}x slower than real time); whole runs {:.1} s (RTL) and {:.1} s \
         (model) at --speed {}",
        wall_s / device_s,
        rtl.wall.as_secs_f64(),
        model.wall.as_secs_f64(),
        speed()
    );
}

/// Points of the short time-mode scan on the RTL.
const TIME_POINTS: usize = 20;

/// Time mode on the gateware: the firmware binary programs the RTL's period timer, which
/// starts where the SPI traffic has brought the design's clock (before the motion); the points
/// inside the position window equal the ground truth field for field (the truth takes the arm
/// tick from the RTL's `PERIOD` write and the period from the scan).
#[test]
fn firmware_binary_on_the_rtl_takes_a_time_scan_as_the_truth_says() {
    let Some((bridge, bin_dir)) = rtl_setup("time-mode scan on the RTL") else {
        return;
    };
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/time_gated.toml"),
    )
    .unwrap();
    // A 5 ms period: on the RTL every SPI transaction costs the firmware up to a millisecond of
    // device time (the device clock follows the RTL's pace, `RtlRegisters::pacing`), and a
    // period event takes a snapshot read besides the poll's own transactions, so 1 ms periods
    // outrun the firmware there (not on hardware, where a snapshot read takes ~40 µs).
    let short = text
        .replace("count = 400", &format!("count = {TIME_POINTS}"))
        .replace("period_ticks = 100000", "period_ticks = 500000");
    assert_ne!(short, text, "the time scenario's count was shortened");
    let rtl = run(&bin_dir, Some(&bridge), None, "rtl-time", &short);
    assert_eq!(rtl.points.len(), TIME_POINTS, "points on the RTL");
    let truth = assert_points_match_truth_file(&rtl.points, &rtl.truth);
    assert_eq!(truth.len(), TIME_POINTS);
    let (device_s, wall_s) = rtl.pace.expect("the simulator reports its pace");
    eprintln!(
        "RTL time scan: {TIME_POINTS} points, {device_s:.3} s of device time from the arm in \
         {wall_s:.2} s of wall time; whole run {:.1} s",
        rtl.wall.as_secs_f64()
    );
}
