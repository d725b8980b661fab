//! The fault matrix through the whole host side: a scripted device on a pty (restarts, a
//! counter going back, forged frames, silence) → `flyscan-ioc` → C `caget`. Each case asserts
//! the PVs an operator sees and that the data shown stay exact. RELIABILITY.md lists the
//! results.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::*;
use flyscan_host::launcher::FlyscanIoc;
use flyscan_protocol::message::Message;
use flyscan_protocol::{BatchWriter, Encoding, PointBatch, ScanArmed, ScanConfig};
use std::time::{Duration, Instant};

fn scalar(ioc: &FlyscanIoc, name: &str) -> f64 {
    caget(ioc, &format!("{}{name}", ioc.prefix()))[0]
}

fn status(ioc: &FlyscanIoc) -> f64 {
    scalar(ioc, "Status")
}

fn message(ioc: &FlyscanIoc) -> String {
    caget_text(ioc, &format!("{}StatusMessage", ioc.prefix()))
}

fn chain(name: &str, opts: DevOptions) -> (FakeDevice, FlyscanIoc) {
    let dev = FakeDevice::start(opts);
    let ioc = start_ioc(&unique_prefix(name), &dev.path, 10_000);
    wait_for(20, "Connected", Some(&ioc), || {
        (scalar(&ioc, "Connected") == 1.0).then_some(())
    });
    (dev, ioc)
}

fn put(ioc: &FlyscanIoc, pv: &str, v: &str) {
    caput(ioc, &format!("{}{pv}", ioc.prefix()), v);
}

fn arm_ssc(ioc: &FlyscanIoc, n: u32, mask: u32) -> ScanConfig {
    let cfg = ScanConfig {
        start: 100,
        step: 2,
        count: n,
        channel_mask: mask,
        ..ScanConfig::default()
    };
    put(ioc, "Mode", "0");
    put(ioc, "Start", "100");
    put(ioc, "Step", "2");
    put(ioc, "NPoints", &n.to_string());
    put(ioc, "ChannelMask", &mask.to_string());
    put(ioc, "Arm", "1");
    cfg
}

fn wait_status(ioc: &FlyscanIoc, want: f64, what: &str) {
    wait_for(30, what, Some(ioc), || (status(ioc) == want).then_some(()));
}

/// At rest after a scan: Arm and Busy 0, and NumCaptured + LostPoints = NumExpected.
fn at_rest(ioc: &FlyscanIoc) {
    wait_for(10, "Arm back at 0", Some(ioc), || {
        (scalar(ioc, "Arm") == 0.0).then_some(())
    });
    assert_eq!(scalar(ioc, "Busy"), 0.0);
    assert_eq!(
        scalar(ioc, "NumCaptured") + scalar(ioc, "LostPoints"),
        scalar(ioc, "NumExpected"),
        "{}",
        message(ioc)
    );
}

/// Every shown point of channel `ch` is the device's (NaN where lost).
fn exact(ioc: &FlyscanIoc, cfg: &ScanConfig, ch: usize) -> usize {
    let got = caget_array(ioc, &format!("{}CH{ch}", ioc.prefix()));
    let e = expected(cfg, &[], got.len() as u32);
    for (i, (g, w)) in got.iter().zip(&e.channels[ch]).enumerate() {
        assert!(g.is_nan() || g == w, "point {i}: {g} vs {w}");
    }
    got.iter().filter(|v| !v.is_nan()).count()
}

#[test]
fn device_restart_while_idle_then_arm_works() {
    let (dev, ioc) = chain("RI", DevOptions::default());
    let session = scalar(&ioc, "DeviceSession");
    dev.restart();
    wait_for(10, "the new session", Some(&ioc), || {
        (scalar(&ioc, "DeviceSession") != session).then_some(())
    });
    assert!(message(&ioc).contains("restarted"), "{}", message(&ioc));
    assert_eq!(scalar(&ioc, "Connected"), 1.0);
    let cfg = arm_ssc(&ioc, 300, 0b11);
    wait_status(&ioc, 3.0, "Done after the restart");
    at_rest(&ioc);
    assert_eq!(exact(&ioc, &cfg, 1), 300);
}

#[test]
fn device_restart_mid_scan_ends_it_with_exact_loss_and_the_next_arm_works() {
    let (_dev, ioc) = chain(
        "RM",
        DevOptions {
            restart_after: Some(400),
            batch_points: 20,
            ..DevOptions::default()
        },
    );
    let cfg = arm_ssc(&ioc, 1000, 0b101);
    wait_status(&ioc, 5.0, "Error");
    assert!(message(&ioc).contains("restarted"), "{}", message(&ioc));
    at_rest(&ioc);
    assert_eq!(scalar(&ioc, "NumCaptured"), 400.0);
    assert_eq!(scalar(&ioc, "LostPoints"), 600.0);
    assert_eq!(exact(&ioc, &cfg, 2), 400);
    // The next Arm works with no IOC restart (the device now restarts only after 400 again).
    let cfg = arm_ssc(&ioc, 300, 0b101);
    wait_status(&ioc, 3.0, "Done");
    at_rest(&ioc);
    assert_eq!(exact(&ioc, &cfg, 0), 300);
}

#[test]
fn a_sequence_going_back_within_the_session_ends_the_scan_clearly() {
    let (dev, ioc) = chain(
        "SB",
        DevOptions {
            stall_after: Some(200),
            ..DevOptions::default()
        },
    );
    arm_ssc(&ioc, 1000, 1);
    wait_for(20, "points", Some(&ioc), || {
        (scalar(&ioc, "NumCaptured") >= 200.0).then_some(())
    });
    dev.rewind_seq(100_000);
    wait_status(&ioc, 5.0, "Error");
    assert!(message(&ioc).contains("went back"), "{}", message(&ioc));
    assert!(scalar(&ioc, "ProtocolErrors") >= 1.0);
    at_rest(&ioc);
}

/// A batch of scan `id` with points `first..first + n` of `cfg` (mask and encoding given).
fn forged(id: u32, cfg: &ScanConfig, first: u32, n: u32, mask: u32, enc: Encoding) -> Vec<u8> {
    let mut w = BatchWriter::new(enc, mask, 0);
    let c = ScanConfig {
        channel_mask: mask,
        ..*cfg
    };
    for i in first..first + n {
        w.push(&expected_point(&c, &[], i)).unwrap();
    }
    let mut out = vec![0u8; 4096];
    let len = Message::PointBatch(PointBatch::from_writer(id, first, &w))
        .emit(&mut out)
        .unwrap();
    out.truncate(len);
    out
}

#[test]
fn forged_frames_are_counted_and_never_shown() {
    let (dev, ioc) = chain(
        "FG",
        DevOptions {
            stall_after: Some(100),
            batch_points: 10,
            ..DevOptions::default()
        },
    );
    // Idle: a ScanArmed nobody armed changes nothing shown.
    dev.inject(&Message::ScanArmed(ScanArmed {
        scan_id: 4242,
        config: ScanConfig::default(),
    }));
    wait_for(10, "counted", Some(&ioc), || {
        (scalar(&ioc, "ProtocolErrors") == 1.0).then_some(())
    });
    assert_eq!(status(&ioc), 0.0);
    let cfg = arm_ssc(&ioc, 300, 0b11);
    wait_for(20, "the stall", Some(&ioc), || {
        (scalar(&ioc, "NumCaptured") == 100.0).then_some(())
    });
    let id = scalar(&ioc, "ScanId") as u32;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            forged(id + 7, &cfg, 100, 5, 0b11, Encoding::Compact),
            "did not arm",
        ),
        (
            forged(id, &cfg, 4_000_000, 5, 0b11, Encoding::Compact),
            "runs past",
        ),
        (
            forged(id, &cfg, 100, 5, 0b111, Encoding::Compact),
            "channel_mask",
        ),
        (forged(id, &cfg, 100, 5, 0b11, Encoding::Raw), "encoding"),
        (
            forged(id, &cfg, 50, 5, 0b11, Encoding::Compact),
            "goes back",
        ),
    ];
    for (k, (payload, word)) in cases.iter().enumerate() {
        let m = Message::parse(0x83, payload).unwrap();
        dev.inject(&m);
        wait_for(10, word, Some(&ioc), || {
            (scalar(&ioc, "ProtocolErrors") == 2.0 + k as f64).then_some(())
        });
        assert!(message(&ioc).contains(word), "{word}: {}", message(&ioc));
    }
    assert_eq!(scalar(&ioc, "NumCaptured"), 100.0, "nothing of them shown");
    assert_eq!(scalar(&ioc, "LostPoints"), 0.0, "and no loss invented");
    assert_eq!(exact(&ioc, &cfg, 1), 100);
    put(&ioc, "Abort", "1");
    wait_status(&ioc, 4.0, "Aborted");
    at_rest(&ioc);
}

#[test]
fn an_idle_device_stays_connected_for_30_s() {
    let (_dev, ioc) = chain("ID", DevOptions::default());
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        assert_eq!(scalar(&ioc, "Connected"), 1.0, "{}", message(&ioc));
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_device_gone_shows_disconnected_within_3_s_and_fails_the_scan_later() {
    let (dev, ioc) = chain(
        "GO",
        DevOptions {
            stall_after: Some(50),
            ..DevOptions::default()
        },
    );
    arm_ssc(&ioc, 500, 1);
    wait_for(20, "points", Some(&ioc), || {
        (scalar(&ioc, "NumCaptured") == 50.0).then_some(())
    });
    dev.mute(true);
    let t = Instant::now();
    wait_for(5, "Disconnected", Some(&ioc), || {
        (scalar(&ioc, "Connected") == 0.0).then_some(())
    });
    assert!(t.elapsed() <= Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(status(&ioc), 2.0, "the scan waits for the device a while");
    wait_for(40, "the scan failed", Some(&ioc), || {
        (status(&ioc) == 5.0).then_some(())
    });
    assert!(message(&ioc).contains("silent"), "{}", message(&ioc));
    at_rest(&ioc);
    assert_eq!(scalar(&ioc, "LostPoints"), 450.0);
}

#[test]
fn lists_stale_empty_overlong_and_step_against_direction_are_refused() {
    let (dev, ioc) = chain(
        "LS",
        DevOptions {
            hold: true,
            ..DevOptions::default()
        },
    );
    let p = ioc.prefix().to_owned();
    put(&ioc, "Mode", "1");
    put(&ioc, "ChannelMask", "1");
    caput_array(&ioc, &format!("{p}Positions"), &[5000.0, 6000.0]);
    put(&ioc, "Arm", "1");
    wait_status(&ioc, 1.0, "Armed");
    put(&ioc, "Abort", "1");
    wait_status(&ioc, 4.0, "Aborted");
    at_rest(&ioc);
    let arms = dev.stats().arms;
    // An empty list (NORD 0) is never replaced by the old one.
    caput_array(&ioc, &format!("{p}Positions"), &[]);
    put(&ioc, "Arm", "1");
    wait_status(&ioc, 5.0, "refused");
    assert!(message(&ioc).contains("empty"), "{}", message(&ioc));
    // A list longer than the record holds (NPTS 10 000 here) is cut by it, and refused.
    pyput_range(&ioc, &format!("{p}Positions"), 20_000);
    put(&ioc, "Arm", "1");
    wait_for(10, "too long", Some(&ioc), || {
        message(&ioc)
            .contains("exceed the limit of 9999")
            .then_some(())
    });
    // Step against the direction.
    put(&ioc, "Mode", "0");
    put(&ioc, "Step", "-20");
    put(&ioc, "NPoints", "10");
    put(&ioc, "Direction", "0");
    put(&ioc, "Arm", "1");
    wait_for(10, "step sign", Some(&ioc), || {
        message(&ioc).contains("runs against").then_some(())
    });
    at_rest(&ioc);
    assert_eq!(dev.stats().arms, arms, "nothing more was armed");
}

#[test]
fn a_list_failing_mid_scan_returns_arm_to_zero() {
    let (dev, ioc) = chain(
        "LF",
        DevOptions {
            batch_points: 10,
            batch_interval: Duration::from_millis(20),
            ..DevOptions::default()
        },
    );
    let p = ioc.prefix().to_owned();
    let list: Vec<f64> = (0..2000).map(|i| f64::from(i * 3)).collect();
    caput_array(&ioc, &format!("{p}Positions"), &list);
    put(&ioc, "Mode", "1");
    put(&ioc, "ChannelMask", "1");
    put(&ioc, "Arm", "1");
    wait_for(20, "points", Some(&ioc), || {
        (scalar(&ioc, "NumCaptured") >= 100.0).then_some(())
    });
    dev.mute(true);
    wait_for(40, "Error", Some(&ioc), || {
        (status(&ioc) == 5.0).then_some(())
    });
    at_rest(&ioc);
}

/// Arm written again while a scan runs: refused in StatusMessage, the running scan's Status and
/// data untouched, and it still ends Done and exact.
#[test]
fn arm_while_scanning_is_refused_and_the_scan_runs_on() {
    let (dev, ioc) = chain(
        "AW",
        DevOptions {
            hold: true,
            batch_points: 10,
            ..DevOptions::default()
        },
    );
    let cfg = arm_ssc(&ioc, 200, 0b1);
    wait_for(10, "the device to arm", Some(&ioc), || {
        (dev.stats().arms == 1 && status(&ioc) >= 1.0).then_some(())
    });
    let before = status(&ioc);
    put(&ioc, "Arm", "1");
    wait_for(10, "the refusal", Some(&ioc), || {
        message(&ioc).contains("Arm ignored").then_some(())
    });
    assert_eq!(status(&ioc), before, "Status untouched");
    assert_eq!(dev.stats().configures, 1, "nothing sent to the device");
    dev.release();
    wait_status(&ioc, 3.0, "Done");
    at_rest(&ioc);
    assert_eq!(exact(&ioc, &cfg, 0), 200);
}
