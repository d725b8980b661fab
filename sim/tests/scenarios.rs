//! Every shipped scenario, run in-process with the firmware core and a tiny host: the decoded
//! points must equal the simulator's ground truth exactly.

mod common;

use common::{assert_points_match, run, run_with, scenario};
use flyscan_protocol::PointFlags;

#[test]
fn demo_matches_truth() {
    let o = run(scenario("demo.toml"));
    assert_points_match(&o);
    assert_eq!(o.health.quad_errors, 0);
}

#[test]
fn uniform_matches_truth() {
    let o = run(scenario("uniform.toml"));
    assert_points_match(&o);
    assert_eq!(o.truth.len(), 10_000);
}

#[test]
fn exafs_kgrid_matches_truth() {
    let o = run(scenario("exafs_kgrid.toml"));
    assert!(o.truth.len() >= 2000);
    assert_points_match(&o);
}

#[test]
fn bidirectional_matches_truth() {
    let o = run(scenario("bidirectional.toml"));
    assert_points_match(&o);
    let starts = o
        .truth
        .iter()
        .filter(|t| t.flags & PointFlags::PASS_START != 0)
        .count();
    assert_eq!(starts, 3, "one PASS_START per pass");
    let negative = o
        .truth
        .iter()
        .filter(|t| t.flags & PointFlags::NEGATIVE != 0)
        .count();
    assert_eq!(negative, 800, "the middle pass runs backwards");
}

#[test]
fn jitter_matches_truth() {
    let o = run(scenario("jitter.toml"));
    assert_points_match(&o);
}

#[test]
fn glitches_match_truth_and_are_counted() {
    let o = run(scenario("glitches.toml"));
    assert_points_match(&o);
    assert!(o.summary.glitches_injected > 10, "{:?}", o.summary);
    assert_eq!(o.summary.illegal_transitions, o.summary.glitches_injected);
    assert_eq!(o.health.quad_errors, o.summary.glitches_injected);
    assert_eq!(o.summary.decoder_slips, 0);
}

#[test]
fn noisy_line_recovers_every_point() {
    let o = run(scenario("noisy_line.toml"));
    assert!(
        o.summary.up_bytes_corrupted > 0 && o.crc_errors > 0,
        "{:?}",
        o.summary
    );
    assert!(o.resend_requests > 0);
    assert_points_match(&o);
}

/// noisy_line.toml on a line ten times worse: bit-error rate 1e-3 and 1e-4 lost bytes, in both
/// directions (the link model is symmetric, so host commands and resend requests are damaged
/// too). A 2 KiB frame crosses such a line intact with probability ≈ 1e-7, so this only
/// completes if the device keeps new frames short.
fn very_noisy_line() -> flyscan_sim::Scenario {
    let mut sc = scenario("noisy_line.toml");
    sc.link.bit_error_rate = 1e-3;
    sc.link.drop_rate = 1e-4;
    // A stuck run fails in seconds (a good one takes ~6 s of simulated time).
    sc.clock.max_duration_s = 30.0;
    sc
}

fn check_very_noisy(span_requests: bool) {
    let (o, st) = run_with(very_noisy_line(), span_requests);
    eprintln!(
        "BER 1e-3: {} points in {:.2} s, {} resend requests, {} resends, {} duplicates, \
         {} naks, {:?}",
        o.points.len(),
        st.seconds,
        o.resend_requests,
        o.health.resends,
        st.fw_counters.resend_duplicates,
        o.health.naks,
        o.summary
    );
    assert!(o.summary.up_bytes_corrupted > 500, "{:?}", o.summary);
    assert!(o.summary.up_bytes_dropped > 0, "{:?}", o.summary);
    assert!(o.summary.down_bytes_corrupted > 0, "{:?}", o.summary);
    assert!(o.health.rx_errors > 0, "damaged host frames seen");
    assert!(o.health.resends > 100);
    assert!(st.fw_counters.loss_signals > 100);
    assert_eq!(st.frames_given_up, 0);
    // The FPGA was drained throughout: no edge or snapshot lost.
    assert_eq!(o.summary.fifo_overruns, 0, "{:?}", o.summary);
    assert_eq!(o.health.fifo_overruns, 0);
    assert_eq!(st.fw_counters.tx_stalls, 0);
    assert_points_match(&o);
}

#[test]
fn very_noisy_line_delivers_every_point() {
    check_very_noisy(false);
}

#[test]
fn very_noisy_line_with_span_resend_requests_delivers_every_point() {
    check_very_noisy(true);
}

#[test]
fn time_gated_matches_truth() {
    let sc = scenario("time_gated.toml");
    let period = sc.scan.period_ticks;
    let o = run(sc);
    assert_points_match(&o);
    assert_eq!(o.truth.len(), 400);
    for w in o.truth.windows(2) {
        assert_eq!(
            (w[1].timestamp - w[0].timestamp) % period,
            0,
            "points fall on the period grid"
        );
    }
    assert!(
        o.truth
            .iter()
            .all(|t| (5000..=15000).contains(&t.position) && u64::from(t.live_time) == period),
        "only inside the window, each bin one period"
    );
    assert!(
        o.truth.iter().all(|t| t.counts[0] > 0),
        "the counts of a period"
    );
}

/// Time mode without a window, on a downward move with vibration (reversals) and encoder
/// glitches: the points at rest before the motion, NEGATIVE and QUAD_ERROR flags all come out
/// as the truth has them.
#[test]
fn time_ungated_with_reversals_and_glitches_matches_truth() {
    let mut sc = scenario("time_gated.toml");
    sc.scan.gate_span = 0;
    sc.scan.count = 300;
    sc.scan.move_to = -3000;
    sc.motor.jitter.sine_amplitude = 3.0;
    sc.encoder.glitch_rate = 0.005;
    let o = run(sc);
    assert_points_match(&o);
    assert_eq!(o.truth.len(), 300);
    let count = |flag| o.truth.iter().filter(|t| t.flags & flag != 0).count();
    assert_eq!(o.truth[0].position, 0, "the first periods pass at rest");
    assert!(count(PointFlags::NEGATIVE) > 100, "moving down");
    assert!(
        count(PointFlags::NEGATIVE) < 300,
        "the vibration turns the motor up at times"
    );
    assert!(count(PointFlags::QUAD_ERROR) > 0, "{:?}", o.summary);
    assert_eq!(count(PointFlags::PASS_START), 1);
}
