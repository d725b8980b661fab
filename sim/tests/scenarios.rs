//! Every shipped scenario, run in-process with the firmware core and a tiny host: the decoded
//! points must equal the simulator's ground truth exactly.

mod common;

use common::{assert_points_match, run, scenario};
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
