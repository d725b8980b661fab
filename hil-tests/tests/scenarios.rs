//! End-to-end scenarios: simulated device → pty → `flyscan-ioc` (the IOC with the driver
//! inside) → C `caget` and pyepics, compared point by point (every channel) with the
//! simulator's ground truth, and the error PVs compared with what the scenario injected.
//!
//! Each test owns its IOC port, pty and output directory (`out/hil/<name>`), so they run in
//! parallel; every process is stopped when the test's `Chain` drops.

use flyscan_hil_tests::chain::{Chain, ChainOptions, Outcome, scenario_variant};
use flyscan_hil_tests::compare::compare;
use std::time::Duration;

const SCAN_TIMEOUT: Duration = Duration::from_secs(90);

fn start(name: &str, file: &str) -> Chain {
    start_opts(ChainOptions::scenario(name, file))
}

fn start_opts(mut opts: ChainOptions) -> Chain {
    // Scenarios need the simulator's truth; a real device has its own test (real_device.rs).
    opts.device = None;
    match Chain::start(opts) {
        Ok(c) => c,
        Err(e) => panic!("chain did not start: {e}"),
    }
}

/// Starts a chain on a variant of a shipped scenario (dotted TOML keys replaced).
fn start_variant(name: &str, file: &str, changes: &[(&str, toml::Value)]) -> Chain {
    let mut opts = ChainOptions::scenario(name, file);
    opts.scenario = scenario_variant(file, name, changes).unwrap_or_else(|e| panic!("{e}"));
    start_opts(opts)
}

/// Configures and arms the plan's scan and waits until more than `n` points reached the IOC.
fn scan_until(c: &Chain, n: f64) {
    c.configure().unwrap_or_else(|e| panic!("{e}"));
    c.arm().unwrap_or_else(|e| panic!("{e}"));
    c.wait_pv(
        "NumCaptured",
        |v| v.parse::<f64>().is_ok_and(|x| x > n),
        SCAN_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

/// Asserts the three clients (C caget, pyepics, PV Access) read exactly the truth, nothing was
/// lost, and Flags match.
fn assert_exact(chain: &Chain, o: &Outcome) {
    assert_eq!(o.status, "Done", "{}", chain.logs());
    assert!(!o.truth.points.is_empty(), "the scenario produced no point");
    for (client, table) in [
        ("caget", &o.caget),
        ("pyepics", &o.pyepics),
        ("pvget", &o.pva),
    ] {
        let m = compare(table, &o.truth.points, chain.clock_hz());
        assert!(
            m.is_empty(),
            "{client}: {} differences, first: {:#?}\n{}",
            m.count,
            m.first,
            chain.logs()
        );
        assert_eq!(m.compared, o.truth.points.len());
    }
    let want_flags: Vec<f64> = o.truth.points.iter().map(|p| f64::from(p.flags)).collect();
    assert_eq!(o.flags, want_flags, "Flags waveform");
    assert_eq!(chain.get_f64("LostPoints").ok(), Some(0.0));
    assert_eq!(
        chain.get_f64("NumCaptured").ok(),
        Some(o.truth.points.len() as f64)
    );
}

#[test]
fn uniform_10000_points_8_channels() {
    let mut c = start("uniform", "uniform.toml");
    let o = c.run_scan(SCAN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(o.truth.points.len(), 10_000);
    assert_eq!(c.enabled_channels().len(), 8);
    assert_exact(&c, &o);
    assert_eq!(c.get_f64("QuadErrors").ok(), Some(0.0));
}

#[test]
fn exafs_kgrid_list() {
    let mut c = start("kgrid", "exafs_kgrid.toml");
    let o = c.run_scan(SCAN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        o.truth.points.len() >= 2000,
        "{} points",
        o.truth.points.len()
    );
    // Non-uniform: the grid's spacing changes.
    let p = &o.caget.position;
    let gaps: std::collections::BTreeSet<i64> =
        p.windows(2).map(|w| (w[1] - w[0]) as i64).collect();
    assert!(
        gaps.len() > 10,
        "expected a non-uniform grid, spacings {gaps:?}"
    );
    assert_exact(&c, &o);
}

/// Time mode end to end: Mode = Time, Period and the window through the IOC's PVs; a point every
/// period while the position is inside the window, each equal to the simulator's truth.
#[test]
fn time_gated_scan() {
    let mut c = start("timegated", "time_gated.toml");
    let o = c.run_scan(SCAN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(o.truth.points.len(), 400);
    assert_exact(&c, &o);
    // Inside the window, and one period apart (the motor never leaves it for 400 periods).
    assert!(
        o.caget
            .position
            .iter()
            .all(|&p| (5_000.0..=15_000.0).contains(&p))
    );
    let ticks: Vec<f64> = o
        .caget
        .timestamp_s
        .iter()
        .map(|t| (t * c.clock_hz()).round())
        .collect();
    assert!(
        ticks.windows(2).all(|w| w[1] - w[0] == 100_000.0),
        "{ticks:?}"
    );
}

#[test]
fn bidirectional_passes() {
    let mut c = start("bidir", "bidirectional.toml");
    let o = c.run_scan(SCAN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_exact(&c, &o);
    let backward = o
        .truth
        .points
        .iter()
        .filter(|p| p.flags & 0x04 != 0)
        .count();
    assert!(
        backward > 0,
        "a bidirectional scan has points taken moving negative"
    );
}

#[test]
fn jitter_and_reversal_around_presets_trigger_once() {
    let mut c = start("jitter", "jitter.toml");
    let o = c.run_scan(SCAN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_exact(&c, &o);
    // Exactly one point per preset: positions are the presets, each once.
    let planned: Vec<f64> = (0..c.plan.config.count)
        .filter_map(|i| c.plan.config.preset(i))
        .map(|p| p as f64)
        .collect();
    assert_eq!(o.caget.position, planned);
}

#[test]
fn encoder_glitches_counted_exactly() {
    let mut c = start("glitches", "glitches.toml");
    let o = c.run_scan(SCAN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_exact(&c, &o);
    let injected = o.truth.summary.illegal_transitions;
    assert!(injected > 0, "scenario injected no glitch");
    assert_eq!(c.get_f64("QuadErrors").ok(), Some(injected as f64));
}

#[test]
fn position_jumps_flag_every_skipped_preset() {
    // Presets on every count: a glitch (a 2-count step) crosses two presets at one edge.
    let mut c = start_variant(
        "jumps",
        "glitches.toml",
        &[
            ("scan.step", toml::Value::Integer(1)),
            ("scan.count", toml::Value::Integer(4000)),
            ("encoder.glitch_rate", toml::Value::Float(0.01)),
        ],
    );
    let o = c.run_scan(SCAN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_exact(&c, &o);
    let jumps = o.truth.summary.position_jumps;
    assert!(jumps > 0, "no multi-preset jump happened");
    assert_eq!(c.get_f64("PositionJumps").ok(), Some(jumps as f64));
    let flagged = o.flags.iter().filter(|f| (**f as u32) & 0x01 != 0).count() as u64;
    assert_eq!(flagged, o.truth.summary.jump_points);
}

fn noisy(name: &str, ber: f64) {
    let mut c = start_variant(
        name,
        "noisy_line.toml",
        &[
            ("link.bit_error_rate", toml::Value::Float(ber)),
            ("link.drop_rate", toml::Value::Float(ber / 10.0)),
        ],
    );
    let o = c.run_scan(SCAN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_exact(&c, &o);
    let damaged = o.truth.summary.up_bytes_corrupted + o.truth.summary.up_bytes_dropped;
    assert!(damaged > 0, "the line damaged nothing at BER {ber}");
    let link_errors = c.get_f64("LinkErrors").unwrap_or(0.0);
    assert!(
        link_errors > 0.0,
        "{damaged} damaged bytes but LinkErrors = 0"
    );
    assert!(
        c.get_f64("Resends").unwrap_or(0.0) > 0.0,
        "damage was repaired without a resend?"
    );
}

#[test]
fn noisy_line_ber_1e4_loses_nothing() {
    noisy("noisy4", 1e-4);
}

#[test]
fn noisy_line_ber_1e3_loses_nothing() {
    noisy("noisy3", 1e-3);
}

#[test]
fn ioc_killed_and_restarted_mid_scan() {
    let mut c = start("iockill", "uniform.toml");
    scan_until(&c, 2000.0);
    c.kill_ioc().unwrap_or_else(|e| panic!("{e}"));
    // The outage itself.
    std::thread::sleep(Duration::from_millis(1500));
    c.start_ioc_again().unwrap_or_else(|e| panic!("{e}"));
    let o = c.finish(SCAN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_exact(&c, &o);
}

#[test]
fn host_outage_longer_than_the_resend_ring_counts_lost_points_exactly() {
    // 5 000 points/s for 8 s: the firmware's resend ring holds a few seconds of this stream,
    // so a 6 s outage of the IOC loses points for good.
    let mut opts = ChainOptions::scenario("longoutage", "uniform.toml");
    opts.scenario = scenario_variant(
        "uniform.toml",
        "longoutage",
        &[
            ("scan.count", toml::Value::Integer(40_000)),
            ("motor.velocity", toml::Value::Float(50_000.0)),
            ("motor.acceleration", toml::Value::Float(5_000_000.0)),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    opts.max_points = 40_010;
    let mut c = start_opts(opts);
    scan_until(&c, 3000.0);
    c.kill_ioc().unwrap_or_else(|e| panic!("{e}"));
    // The outage itself.
    std::thread::sleep(Duration::from_secs(6));
    c.start_ioc_again().unwrap_or_else(|e| panic!("{e}"));
    let status = c.wait_done(SCAN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, "Done", "{}", c.logs());
    let total = c.plan.config.total_points() as usize;
    let t = c.read_table_caget(total).unwrap_or_else(|e| panic!("{e}"));
    c.stop_sim().unwrap_or_else(|e| panic!("{e}"));
    let truth =
        flyscan_hil_tests::truth::Truth::load(&c.truth_path()).unwrap_or_else(|e| panic!("{e}"));
    let missing = t.position.iter().filter(|p| p.is_nan()).count();
    assert!(
        missing > 0,
        "the outage was meant to outlast the resend ring"
    );
    assert_eq!(
        c.get_f64("LostPoints").ok(),
        Some(missing as f64),
        "LostPoints = points missing"
    );
    // Every point that did arrive is exact, at its own index.
    for (i, tp) in truth.points.iter().enumerate() {
        if t.position[i].is_nan() {
            continue;
        }
        assert_eq!(t.position[i], tp.position as f64, "point {i}");
        for (ch, &want) in tp.counts.iter().enumerate() {
            assert_eq!(t.channels[ch][i], f64::from(want), "point {i} channel {ch}");
        }
    }
}

#[test]
fn ioc_restarted_mid_scan() {
    let mut c = start("iocrestart", "uniform.toml");
    scan_until(&c, 2000.0);
    c.restart_ioc().unwrap_or_else(|e| panic!("{e}"));
    let o = c.finish(SCAN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_exact(&c, &o);
}

#[test]
fn abort_mid_scan() {
    let mut c = start("abort", "uniform.toml");
    scan_until(&c, 1000.0);
    c.ca.put(&c.pv("Abort"), "1")
        .unwrap_or_else(|e| panic!("{e}"));
    let o = c.finish(SCAN_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(o.status, "Aborted", "{}", c.logs());
    let n = o.caget.len();
    assert!(n > 1000 && n < 10_000, "{n} points after abort");
    // What arrived before the abort is exact.
    let m = compare(
        &o.caget,
        &o.truth.points[..n.min(o.truth.points.len())],
        c.clock_hz(),
    );
    assert!(m.is_empty(), "{:#?}", m.first);
    assert_eq!(
        c.get_f64("Arm").ok(),
        Some(0.0),
        "Arm must drop when the scan ends"
    );
}

trait Get {
    fn get(&self, name: &str) -> String;
}
impl Get for Chain {
    fn get(&self, name: &str) -> String {
        self.ca
            .get(&self.pv(name))
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

#[test]
fn bad_configurations_are_refused_with_a_reason() {
    let c = start("badcfg", "demo.toml");
    c.configure().unwrap_or_else(|e| panic!("{e}"));
    let cases: &[(&str, &str, &str)] = &[
        ("NPoints", "0", "count is 0"),
        ("Step", "0", "Step"),
        ("ChannelMask", "0", "channel mask"),
    ];
    for (pv, bad, word) in cases {
        let good = c.get(pv);
        c.ca.put(&c.pv(pv), bad).unwrap_or_else(|e| panic!("{e}"));
        c.ca.put(&c.pv("Arm"), "1")
            .unwrap_or_else(|e| panic!("{e}"));
        c.wait_pv("Status", |s| s == "Error", Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{pv}={bad}: {e}"));
        let msg =
            c.ca.get_string(&c.pv("StatusMessage"))
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            msg.to_lowercase().contains(&word.to_lowercase()),
            "{pv}={bad}: message '{msg}' should name {word}"
        );
        assert_eq!(
            c.get_f64("Arm").ok(),
            Some(0.0),
            "{pv}={bad}: Arm must not stay busy"
        );
        c.ca.put(&c.pv(pv), &good).unwrap_or_else(|e| panic!("{e}"));
    }
    // Empty list in list mode.
    c.ca.put(&c.pv("Mode"), "1")
        .unwrap_or_else(|e| panic!("{e}"));
    c.ca.put_array(&c.pv("Positions"), &[]).ok();
    c.ca.put(&c.pv("Arm"), "1")
        .unwrap_or_else(|e| panic!("{e}"));
    c.wait_pv("Status", |s| s == "Error", Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("empty list: {e}"));
    // After all that the device still scans.
    c.configure().unwrap_or_else(|e| panic!("{e}"));
    c.arm().unwrap_or_else(|e| panic!("{e}"));
    // Arming while armed is refused in StatusMessage without disturbing the running scan.
    c.ca.put(&c.pv("Arm"), "1")
        .unwrap_or_else(|e| panic!("{e}"));
    c.wait_pv(
        "StatusMessage",
        |m| m.contains("Arm ignored"),
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("arm while armed: {e}"));
    let status = c.get("Status");
    assert!(
        matches!(status.as_str(), "Armed" | "Scanning" | "Done"),
        "arm while armed left Status {status}"
    );
    c.wait_pv("Status", |s| s == "Done", SCAN_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.get_f64("NumCaptured").ok(),
        Some(c.plan.config.total_points() as f64)
    );
}
