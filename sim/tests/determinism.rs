//! Reproducibility: the device clock is held at the arm tick until the device arms, so runs of
//! the same scenario and seed give the same truth and the same decoded points however long the
//! host took to arm.
#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use common::{
    KillOnDrop, Outcome, TestHost, assert_points_match, assert_points_match_truth_file, scenario,
};
use flyscan_protocol::Point;
use flyscan_sim::device_clock::ARM_TICK;
use flyscan_sim::firmware::InProcessFirmware;
use flyscan_sim::{Scenario, Simulation, TruthPoint};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one run gives the comparisons.
struct Run {
    outcome: Outcome,
    /// Link tick of the arm.
    armed_at: u64,
}

/// Runs `sc` in-process with a host that stays silent for `delay_ticks` of link time (it only
/// collects what arrives), then configures and arms.
fn run_delayed(sc: Scenario, delay_ticks: u64) -> Run {
    let hz = sc.clock.hz;
    let mut sim = Simulation::new(sc).unwrap_or_else(|e| panic!("{e}"));
    let mut fw = InProcessFirmware::new(&sim).unwrap_or_else(|e| panic!("{e}"));
    let mut host = TestHost::new(sim.plan().clone(), hz);
    let mut early = Vec::new();
    sim.run_with_host(&mut fw, &mut |t, rx, tx| {
        if t < delay_ticks {
            early.extend_from_slice(rx);
            return false;
        }
        if early.is_empty() {
            host.exchange(t, rx, tx)
        } else {
            let mut all = std::mem::take(&mut early);
            all.extend_from_slice(rx);
            host.exchange(t, &all, tx)
        }
    })
    .unwrap_or_else(|e| panic!("{e}: {} points", host.points.len()));
    let armed_at = sim.armed_at_link_tick().expect("the device armed");
    Run {
        outcome: Outcome {
            truth: sim.truth_points(),
            summary: sim.summary(),
            health: host.health_after_done.take().expect("health after done"),
            done: host.done.take().expect("scan done"),
            crc_errors: 0,
            resend_requests: host.resend_requests,
            retries: host.retries,
            points: std::mem::take(&mut host.points),
        },
        armed_at,
    }
}

/// Runs `sc` the way the simulator did before the hold: one clock for the line and the
/// device, so the motion starts whenever the arm arrives. Returns the truth.
fn run_single_clock(sc: Scenario, delay_ticks: u64) -> Vec<TruthPoint> {
    let hz = sc.clock.hz;
    let mut sim = Simulation::new(sc).unwrap_or_else(|e| panic!("{e}"));
    let mut fw = InProcessFirmware::new(&sim).unwrap_or_else(|e| panic!("{e}"));
    let mut host = TestHost::new(sim.plan().clone(), hz);
    let limit = 60 * hz;
    let (mut rx, mut tx) = (Vec::new(), Vec::new());
    let mut early = Vec::new();
    loop {
        let t = sim.now() + sim.poll_ticks();
        assert!(t < limit, "single-clock run did not finish");
        rx.clear();
        sim.step(t, &mut fw, &tx, &mut rx)
            .unwrap_or_else(|e| panic!("{e}"));
        tx.clear();
        if t < delay_ticks {
            early.extend_from_slice(&rx);
            continue;
        }
        early.extend_from_slice(&rx);
        let all = std::mem::take(&mut early);
        if host.exchange(t, &all, &mut tx) {
            return sim.truth_points();
        }
    }
}

fn points_of(r: &Run) -> &BTreeMap<u32, Point> {
    &r.outcome.points
}

/// Asserts two runs agree point for point, truth and decoded.
fn assert_same(a: &Run, b: &Run) {
    assert_eq!(a.outcome.truth.len(), b.outcome.truth.len(), "truth length");
    for (x, y) in a.outcome.truth.iter().zip(&b.outcome.truth) {
        assert_eq!(x, y, "truth point {}", x.index);
    }
    assert_eq!(
        points_of(a).len(),
        points_of(b).len(),
        "decoded point count"
    );
    for (i, p) in points_of(a) {
        assert_eq!(Some(p), points_of(b).get(i), "decoded point {i}");
    }
    assert_eq!(a.outcome.summary, b.outcome.summary, "summary");
}

#[test]
fn arm_delay_does_not_change_the_scan() {
    let hz = scenario("demo.toml").clock.hz;
    let prompt = run_delayed(scenario("demo.toml"), 0);
    // 37 ms and 0.25 s of silence, not multiples of the poll interval or of each other.
    let late = run_delayed(scenario("demo.toml"), hz * 37 / 1000 + 1234);
    let later = run_delayed(scenario("demo.toml"), hz / 4 + 777);
    assert!(
        prompt.armed_at < late.armed_at && late.armed_at < later.armed_at,
        "the arm came at different link ticks: {} {} {}",
        prompt.armed_at,
        late.armed_at,
        later.armed_at
    );
    for r in [&prompt, &late, &later] {
        assert_points_match(&r.outcome);
        let first = r.outcome.truth.first().map_or(0, |p| p.timestamp);
        assert!(first > ARM_TICK, "points come after the arm tick: {first}");
    }
    assert_same(&prompt, &late);
    assert_same(&prompt, &later);
}

#[test]
fn arm_delay_does_not_change_the_scan_on_a_noisy_line() {
    let hz = scenario("noisy_line.toml").clock.hz;
    let a = run_delayed(scenario("noisy_line.toml"), 0);
    let b = run_delayed(scenario("noisy_line.toml"), hz / 10 + 321);
    assert_ne!(a.armed_at, b.armed_at);
    assert!(a.outcome.resend_requests > 0 || b.outcome.resend_requests > 0);
    assert_points_match(&a.outcome);
    assert_points_match(&b.outcome);
    assert_same(&a, &b);
}

/// Time mode too: the period timer starts at the held arm tick, however late the host arms.
#[test]
fn arm_delay_does_not_change_a_time_scan() {
    let hz = scenario("time_gated.toml").clock.hz;
    let prompt = run_delayed(scenario("time_gated.toml"), 0);
    let late = run_delayed(scenario("time_gated.toml"), hz / 7 + 4321);
    assert_ne!(prompt.armed_at, late.armed_at);
    assert_points_match(&prompt.outcome);
    assert_points_match(&late.outcome);
    assert_same(&prompt, &late);
    let period = scenario("time_gated.toml").scan.period_ticks;
    assert!(
        prompt
            .outcome
            .truth
            .iter()
            .all(|p| (p.timestamp - ARM_TICK).is_multiple_of(period)),
        "period k ends at the arm tick + k periods"
    );
}

/// The hold is what makes the runs agree: with one clock for line and device, the same arm
/// delays shift every timestamp.
#[test]
fn without_the_hold_the_arm_delay_shows() {
    let hz = scenario("demo.toml").clock.hz;
    let a = run_single_clock(scenario("demo.toml"), 0);
    let b = run_single_clock(scenario("demo.toml"), hz * 37 / 1000 + 1234);
    assert_eq!(a.len(), b.len());
    assert!(!a.is_empty());
    assert_ne!(a[0].timestamp, b[0].timestamp);
}

/// The firmware binary for the external runs: `FLYSCAN_FIRMWARE_BIN`, or `firmware-odroid`
/// next to this package's `sim` binary (`cargo build -p flyscan-firmware` with the same target
/// directory).
fn firmware_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("FLYSCAN_FIRMWARE_BIN") {
        return PathBuf::from(p);
    }
    let sim = PathBuf::from(env!("CARGO_BIN_EXE_sim"));
    let p = sim.with_file_name("firmware-odroid");
    assert!(
        p.exists(),
        "{} missing: run `cargo build -p flyscan-firmware` first or set FLYSCAN_FIRMWARE_BIN",
        p.display()
    );
    p
}

/// What an external run leaves: the truth file's bytes and the points the host decoded.
struct ExternalRun {
    truth: String,
    points: BTreeMap<u32, Point>,
}

/// Runs `sim run` on a short demo scan, with `--firmware-cmd FW` if `fw` is given (else the
/// in-process core); the host waits `delay` before it starts configuring. Wall-clock guards only
/// stop a hung run; nothing asserts on durations.
fn run_sim(fw: Option<&Path>, delay: Duration, tag: &str) -> ExternalRun {
    let demo = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/demo.toml"),
    )
    .unwrap();
    let short = demo.replace("count = 2000", "count = 300");
    assert_ne!(short, demo, "the demo scenario's count was shortened");
    run_sim_text(fw, delay, tag, &short)
}

/// [`run_sim`] on the scenario `text`.
fn run_sim_text(fw: Option<&Path>, delay: Duration, tag: &str, short: &str) -> ExternalRun {
    let dir = std::env::temp_dir().join(format!("flyscan-det-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario_path = dir.join("short.toml");
    std::fs::write(&scenario_path, short).unwrap();
    let sc = Scenario::from_toml(short).unwrap();
    let hz = sc.clock.hz;
    let plan = flyscan_sim::ScanPlan::from_scenario(&sc).unwrap();
    let link = dir.join("tty");
    let truth = dir.join("truth.jsonl");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sim"));
    cmd.arg("run");
    if let Some(fw) = fw {
        cmd.arg("--firmware-cmd").arg(fw);
    }
    let child = cmd
        .arg("--scenario")
        .arg(&scenario_path)
        .arg("--link")
        .arg(&link)
        .arg("--truth")
        .arg(&truth)
        .arg("--socket")
        .arg(dir.join("fpga.sock"))
        .arg("--exit-when-done")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("PTY "), "sim said {line:?}");
    let mut port = serialport::new(link.to_string_lossy(), 921_600)
        .timeout(Duration::from_millis(5))
        .open_native()
        .unwrap();
    std::thread::sleep(delay);
    let start = Instant::now();
    let mut host = TestHost::new(plan, hz);
    let (mut rx, mut tx) = (vec![0u8; 4096], Vec::new());
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "external run hung: {} points",
            host.points.len()
        );
        let n = match port.read(&mut rx) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => 0,
            Err(e) => panic!("reading the host pty: {e}"),
        };
        let now = (start.elapsed().as_secs_f64() * hz as f64) as u64;
        tx.clear();
        let finished = host.exchange(now, &rx[..n], &mut tx);
        port.write_all(&tx).unwrap();
        if finished {
            break;
        }
    }
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            assert!(status.success(), "sim exited with {status}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "sim did not exit"
        );
        // Keep reading, as a host would (the device keeps sending Health).
        let _ = port.read(&mut rx);
    }
    let out = ExternalRun {
        truth: std::fs::read_to_string(&truth).unwrap(),
        points: std::mem::take(&mut host.points),
    };
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// Two `sim run` in-process runs, whose host arms at different wall times, give the same truth
/// file byte for byte and the same decoded points.
#[test]
fn sim_run_in_process_is_reproducible() {
    let a = run_sim(None, Duration::ZERO, "ip-a");
    let b = run_sim(None, Duration::from_millis(300), "ip-b");
    assert_eq!(a.truth, b.truth, "truth files differ");
    assert_eq!(a.points, b.points, "decoded points differ");
    assert_eq!(a.points.len(), 300);
}

/// Two external-firmware runs whose host arms at different times give the same truth file
/// byte for byte and the same decoded points, the points equal the truth, and an in-process
/// `sim run` gives the same.
#[test]
#[ignore = "needs the firmware binary: `cargo build -p flyscan-firmware` (same target dir) \
            or FLYSCAN_FIRMWARE_BIN; run with --ignored"]
fn external_firmware_runs_are_identical() {
    let fw = firmware_bin();
    let a = run_sim(Some(&fw), Duration::ZERO, "a");
    let b = run_sim(Some(&fw), Duration::from_millis(400), "b");
    let c = run_sim(None, Duration::from_millis(150), "c");
    assert_eq!(
        truth_point_lines(&a.truth),
        truth_point_lines(&b.truth),
        "truth files differ"
    );
    assert_eq!(
        truth_point_lines(&a.truth),
        truth_point_lines(&c.truth),
        "the in-process truth differs"
    );
    assert_eq!(a.points, c.points, "in-process points differ");
    assert_eq!(a.points, b.points, "decoded points differ");
    let truth = assert_points_match_truth_file(&a.points, &a.truth);
    assert_eq!(truth.len(), 300);
}

/// The point lines of a truth file: its summary line also counts line bytes, which follow the
/// wall clock (Health messages, resends); the points do not.
fn truth_point_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.starts_with("{\"summary\""))
        .collect()
}

/// The firmware binary of the external time-mode run: `FLYSCAN_BIN_DIR/firmware-odroid` (the
/// release build `cargo xtask test` names), else [`firmware_bin`]'s, if there is one.
fn firmware_bin_if_built() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("FLYSCAN_BIN_DIR") {
        return Some(PathBuf::from(dir).join("firmware-odroid"));
    }
    if let Some(p) = std::env::var_os("FLYSCAN_FIRMWARE_BIN") {
        return Some(PathBuf::from(p));
    }
    let p = PathBuf::from(env!("CARGO_BIN_EXE_sim")).with_file_name("firmware-odroid");
    p.exists().then_some(p)
}

/// Time mode through the unchanged firmware binary (`--firmware-cmd`, the FPGA on the
/// simulator socket): its points equal the truth, and the in-process core's run of the same
/// scenario gives the same truth and points.
#[test]
fn external_firmware_time_scan_equals_the_truth() {
    let Some(fw) = firmware_bin_if_built() else {
        eprintln!(
            "\n!!! SKIPPED external time-mode run: no firmware binary (set FLYSCAN_BIN_DIR or \
             FLYSCAN_FIRMWARE_BIN, or `cargo build -p flyscan-firmware`; `cargo xtask test` does) !!!\n"
        );
        return;
    };
    assert!(fw.is_file(), "{} missing", fw.display());
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/time_gated.toml"),
    )
    .unwrap();
    let short = text.replace("count = 400", "count = 200");
    assert_ne!(short, text, "the time scenario's count was shortened");
    let ext = run_sim_text(Some(&fw), Duration::from_millis(120), "time-ext", &short);
    let inproc = run_sim_text(None, Duration::ZERO, "time-in", &short);
    let truth = assert_points_match_truth_file(&ext.points, &ext.truth);
    assert_eq!(truth.len(), 200);
    assert_eq!(
        truth_point_lines(&ext.truth),
        truth_point_lines(&inproc.truth),
        "the in-process truth differs"
    );
    assert_eq!(ext.points, inproc.points, "in-process points differ");
}
