//! End-to-end: fake device on a pty → `flyscan-ioc` (the IOC with the driver inside), read back
//! with `caget` (C), pyepics and `pvget` (PV Access). Each test has its own IOC ports and pty.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::single_range_in_vec_init,
    missing_docs
)]

mod common;
use common::*;
use flyscan_protocol::{Direction, Encoding, ScanConfig, TriggerMode};
use std::time::Duration;

fn ssc(count: u32, mask: u32) -> ScanConfig {
    ScanConfig {
        mode: TriggerMode::StartStepCount,
        direction: Direction::Positive,
        encoding: Encoding::Compact,
        start: -1000,
        step: 3,
        count,
        passes: 1,
        channel_mask: mask,
        max_batch_points: 0,
        max_latency_us: 0,
        gate_span: 0,
    }
}

fn set_ssc(ioc: &flyscan_host::launcher::FlyscanIoc, cfg: &ScanConfig) {
    let p = ioc.prefix().to_owned();
    caput(ioc, &format!("{p}Mode"), "0");
    caput(ioc, &format!("{p}Start"), &cfg.start.to_string());
    caput(ioc, &format!("{p}Step"), &cfg.step.to_string());
    caput(ioc, &format!("{p}NPoints"), &cfg.count.to_string());
    caput(
        ioc,
        &format!("{p}ChannelMask"),
        &cfg.channel_mask.to_string(),
    );
}

fn status(ioc: &flyscan_host::launcher::FlyscanIoc) -> u32 {
    caget(ioc, &format!("{}Status", ioc.prefix()))[0] as u32
}

fn scalar(ioc: &flyscan_host::launcher::FlyscanIoc, name: &str) -> f64 {
    caget(ioc, &format!("{}{name}", ioc.prefix()))[0]
}

/// Waits until the driver has the device (Connected = 1).
fn wait_connected(ioc: &flyscan_host::launcher::FlyscanIoc) {
    wait_for(20, "Connected", Some(ioc), || {
        (scalar(ioc, "Connected") == 1.0).then_some(())
    });
    wait_for(20, "NumChannels", Some(ioc), || {
        (scalar(ioc, "NumChannels") == 4.0).then_some(())
    });
}

/// A fake device and a `flyscan-ioc` on its port.
fn chain(
    name: &str,
    npts: usize,
    opts: DevOptions,
) -> (FakeDevice, flyscan_host::launcher::FlyscanIoc) {
    let dev = FakeDevice::start(opts);
    let ioc = start_ioc(&unique_prefix(name), &dev.path, npts);
    wait_connected(&ioc);
    (dev, ioc)
}

fn check_exact(
    ioc: &flyscan_host::launcher::FlyscanIoc,
    cfg: &ScanConfig,
    list: &[i64],
    n: u32,
    lost: &[std::ops::Range<usize>],
) {
    let p = ioc.prefix().to_owned();
    let mut e = expected(cfg, list, n);
    let blank = |v: &mut Vec<f64>| {
        for r in lost {
            for i in r.clone() {
                v[i] = f64::NAN;
            }
        }
    };
    blank(&mut e.position);
    blank(&mut e.timestamp);
    blank(&mut e.live_time);
    for c in e.channels.iter_mut().filter(|c| !c.is_empty()) {
        blank(c);
    }
    // C client.
    assert_same(
        &caget_array(ioc, &format!("{p}Position")),
        &e.position,
        "Position (caget)",
    );
    assert_same(
        &caget_array(ioc, &format!("{p}Timestamp")),
        &e.timestamp,
        "Timestamp (caget)",
    );
    assert_same(
        &caget_array(ioc, &format!("{p}LiveTime")),
        &e.live_time,
        "LiveTime (caget)",
    );
    // PV Access (QSRV in the same process).
    assert_same(
        &pvget_array(ioc, &format!("{p}Position")),
        &e.position,
        "Position (pvget)",
    );
    // pyepics.
    let mut pvs = vec![format!("{p}Position"), format!("{p}Timestamp")];
    for ch in 0..4 {
        pvs.push(format!("{p}CH{ch}"));
    }
    let got = pyget(ioc, &pvs);
    assert_same(&json_f64s(&got[&pvs[0]]), &e.position, "Position (pyepics)");
    assert_same(
        &json_f64s(&got[&pvs[1]]),
        &e.timestamp,
        "Timestamp (pyepics)",
    );
    for ch in 0..4usize {
        let py = json_f64s(&got[&pvs[2 + ch]]);
        let c = caget_array(ioc, &format!("{p}CH{ch}"));
        if cfg.channel_mask & (1 << ch) != 0 {
            assert_same(&py, &e.channels[ch], &format!("CH{ch} (pyepics)"));
            assert_same(&c, &e.channels[ch], &format!("CH{ch} (caget)"));
        } else {
            assert!(
                c.is_empty(),
                "disabled CH{ch} is empty, got {} values",
                c.len()
            );
        }
    }
}

#[test]
fn scan_waveforms_exact_live_and_status() {
    let (dev, ioc) = chain("A", 10_000, DevOptions::default());
    let p = ioc.prefix().to_owned();
    assert_eq!(caget_text(&ioc, &format!("{p}FirmwareVersion")), "1.2.3");
    let cfg = ssc(2000, 0b1011);
    set_ssc(&ioc, &cfg);
    let lengths = PyMonitor::start(&ioc, "monitor", &format!("{p}CH0"), 4.0);
    let states = PyMonitor::start(&ioc, "monitor_values", &format!("{p}Status"), 4.0);
    caput(&ioc, &format!("{p}Arm"), "1");
    wait_for(20, "Status Done", Some(&ioc), || {
        (status(&ioc) == 3).then_some(())
    });
    let lengths = json_f64s(&lengths.finish());
    let states = json_f64s(&states.finish());
    check_exact(&ioc, &cfg, &[], 2000, &[]);
    // NORD grew during the scan: several distinct increasing lengths before the final one.
    let growing: Vec<f64> = lengths
        .iter()
        .copied()
        .filter(|&l| l > 1.0 && l < 2000.0)
        .collect();
    assert!(
        growing.len() >= 3,
        "live updates seen by the monitor: {lengths:?}"
    );
    assert!(
        lengths
            .windows(2)
            .filter(|w| w[0] > 1.0)
            .all(|w| w[1] >= w[0]),
        "lengths only grow: {lengths:?}"
    );
    assert_eq!(lengths.last().copied(), Some(2000.0));
    // Status went Armed → Scanning → Done.
    let pos = |v: f64| states.iter().position(|&s| s == v);
    assert!(
        pos(1.0) < pos(2.0) && pos(2.0) < pos(3.0),
        "status sequence {states:?}"
    );
    assert_eq!(scalar(&ioc, "NumCaptured"), 2000.0);
    assert_eq!(scalar(&ioc, "NumExpected"), 2000.0);
    assert_eq!(scalar(&ioc, "LostPoints"), 0.0);
    assert_eq!(scalar(&ioc, "Arm"), 0.0);
    assert_eq!(scalar(&ioc, "Busy"), 0.0);
    assert_eq!(scalar(&ioc, "QuadErrors"), 7.0);
    assert_eq!(dev.stats().arms, 1);
}

fn message(ioc: &flyscan_host::launcher::FlyscanIoc) -> String {
    caget_text(ioc, &format!("{}StatusMessage", ioc.prefix()))
}

/// Arms with `setup` applied and expects Status = Error with `needle` in the message.
fn expect_refused(ioc: &flyscan_host::launcher::FlyscanIoc, setup: &[(&str, &str)], needle: &str) {
    let p = ioc.prefix().to_owned();
    for (pv, v) in setup {
        caput(ioc, &format!("{p}{pv}"), v);
    }
    caput(ioc, &format!("{p}Arm"), "1");
    wait_for(
        20,
        &format!("error mentioning {needle:?}"),
        Some(ioc),
        || (status(ioc) == 5 && message(ioc).contains(needle)).then_some(()),
    );
    wait_for(20, "Arm back to 0", Some(ioc), || {
        (scalar(ioc, "Arm") == 0.0).then_some(())
    });
}

#[test]
fn bad_input_is_refused_without_touching_the_device() {
    let (dev, ioc) = chain(
        "B",
        1000,
        DevOptions {
            hold: true,
            ..Default::default()
        },
    );
    let ok = [
        ("Mode", "0"),
        ("NPoints", "10"),
        ("Step", "1"),
        ("ChannelMask", "1"),
        ("Passes", "1"),
    ];
    let with = |k: &'static str, v: &'static str| -> Vec<(&'static str, &'static str)> {
        ok.iter()
            .map(|&(a, b)| if a == k { (a, v) } else { (a, b) })
            .collect()
    };
    expect_refused(&ioc, &with("NPoints", "0"), "count is 0");
    expect_refused(
        &ioc,
        &with("NPoints", "-5"),
        "NPoints must be 0 to 4294967295 (got -5)",
    );
    expect_refused(&ioc, &with("NPoints", "5000"), "exceed");
    expect_refused(&ioc, &with("Step", "0"), "step must not be 0");
    expect_refused(&ioc, &with("Step", "-1"), "runs against");
    expect_refused(&ioc, &with("Step", "1.5"), "whole number");
    expect_refused(&ioc, &with("ChannelMask", "0"), "channel mask is 0");
    expect_refused(&ioc, &with("ChannelMask", "-1"), "ChannelMask must be");
    expect_refused(&ioc, &with("ChannelMask", "16"), "channel mask");
    expect_refused(&ioc, &with("Passes", "2"), "passes");
    expect_refused(&ioc, &with("Mode", "1"), "position list is empty");
    assert_eq!(dev.stats().configures, 0, "nothing was sent to the device");
    assert_eq!(dev.stats().arms, 0);
    // A valid scan, held on the device; arming again while armed is refused.
    for (pv, v) in ok {
        caput(&ioc, &format!("{}{pv}", ioc.prefix()), v);
    }
    caput(&ioc, &format!("{}Arm", ioc.prefix()), "1");
    wait_for(20, "Armed", Some(&ioc), || {
        (status(&ioc) == 1).then_some(())
    });
    assert_eq!(scalar(&ioc, "Busy"), 1.0);
    caput(&ioc, &format!("{}Arm", ioc.prefix()), "1");
    wait_for(20, "Arm refused in words", Some(&ioc), || {
        message(&ioc).contains("Arm ignored").then_some(())
    });
    assert_eq!(status(&ioc), 1, "the running scan's Status is untouched");
    assert_eq!(dev.stats().arms, 1, "the second Arm was not sent");
    assert_eq!(scalar(&ioc, "Arm"), 1.0, "Arm stays 1 while the scan runs");
    // The scan still completes and the driver is fine.
    dev.release();
    wait_for(20, "Done", Some(&ioc), || (status(&ioc) == 3).then_some(()));
    assert_eq!(scalar(&ioc, "NumCaptured"), 10.0);
    assert_eq!(scalar(&ioc, "Arm"), 0.0);
}

#[test]
fn dropped_frame_is_resent_and_data_stays_exact() {
    let (dev, ioc) = chain(
        "C",
        5000,
        DevOptions {
            drop_once: [3, 10].into_iter().collect(),
            ..Default::default()
        },
    );
    let cfg = ssc(1000, 0b0011);
    set_ssc(&ioc, &cfg);
    caput(&ioc, &format!("{}Arm", ioc.prefix()), "1");
    wait_for(20, "Done", Some(&ioc), || (status(&ioc) == 3).then_some(()));
    check_exact(&ioc, &cfg, &[], 1000, &[]);
    assert_eq!(scalar(&ioc, "LostPoints"), 0.0);
    assert!(scalar(&ioc, "Resends") >= 2.0, "resend requests counted");
    assert!(dev.stats().resend_requests.len() >= 2);
}

#[test]
fn unavailable_frames_give_exact_lost_points() {
    let (_dev, ioc) = chain(
        "D",
        5000,
        DevOptions {
            unavailable: [4].into_iter().collect(),
            batch_points: 40,
            ..Default::default()
        },
    );
    let cfg = ssc(800, 0b0101);
    set_ssc(&ioc, &cfg);
    caput(&ioc, &format!("{}Arm", ioc.prefix()), "1");
    wait_for(20, "Done", Some(&ioc), || (status(&ioc) == 3).then_some(()));
    // Batch 4 held points 160..200.
    assert_eq!(scalar(&ioc, "LostPoints"), 40.0);
    assert_eq!(scalar(&ioc, "NumCaptured"), 760.0);
    let lost = vec![160..200];
    check_exact(&ioc, &cfg, &[], 800, &lost);
}

#[test]
fn corrupted_bytes_count_link_errors_and_data_survives() {
    let (_dev, ioc) = chain(
        "E",
        5000,
        DevOptions {
            corrupt_once: [2, 5, 9].into_iter().collect(),
            ..Default::default()
        },
    );
    let before = scalar(&ioc, "LinkErrors");
    let cfg = ssc(1000, 0b1111);
    set_ssc(&ioc, &cfg);
    caput(&ioc, &format!("{}Arm", ioc.prefix()), "1");
    wait_for(20, "Done", Some(&ioc), || (status(&ioc) == 3).then_some(()));
    assert_eq!(scalar(&ioc, "LinkErrors") - before, 3.0);
    assert_eq!(scalar(&ioc, "LostPoints"), 0.0);
    check_exact(&ioc, &cfg, &[], 1000, &[]);
}

#[test]
fn list_mode_and_an_ioc_restart_keeps_settings_and_recovers_the_scan() {
    let dev = FakeDevice::start(DevOptions::default());
    let mut ioc = start_ioc(&unique_prefix("F"), &dev.path, 5000);
    wait_connected(&ioc);
    let list: Vec<i64> = (0..600).map(|i| i * i + 3 * i - 500).collect();
    let cfg = ScanConfig {
        mode: TriggerMode::List,
        count: 600,
        channel_mask: 0b0110,
        encoding: Encoding::Raw,
        ..ssc(600, 0b0110)
    };
    let p = ioc.prefix().to_owned();
    caput_array(
        &ioc,
        &format!("{p}Positions"),
        &list.iter().map(|&v| v as f64).collect::<Vec<_>>(),
    );
    caput(&ioc, &format!("{p}Mode"), "1");
    caput(&ioc, &format!("{p}Encoding"), "1");
    caput(&ioc, &format!("{p}ChannelMask"), "6");
    caput(&ioc, &format!("{p}Arm"), "1");
    wait_for(20, "Done", Some(&ioc), || (status(&ioc) == 3).then_some(()));
    assert_eq!(dev.stats().list, list, "device got the whole list");
    assert!(dev.stats().chunks >= 3, "list sent in chunks");
    assert_eq!(
        dev.stats().configs.last().map(|c| c.encoding),
        Some(Encoding::Raw)
    );
    check_exact(&ioc, &cfg, &list, 600, &[]);
    // The IOC restarts: its settings come back from the settings file, and the finished scan
    // is recovered from the device's resend ring.
    ioc.restart().expect("restart IOC");
    wait_connected(&ioc);
    assert_eq!(scalar(&ioc, "Mode"), 1.0);
    assert_eq!(scalar(&ioc, "Encoding"), 1.0);
    assert_eq!(scalar(&ioc, "ChannelMask"), 6.0);
    assert_same(
        &caget_array(&ioc, &format!("{p}Positions")),
        &list.iter().map(|&v| v as f64).collect::<Vec<_>>(),
        "Positions restored",
    );
    wait_for(30, "the recovered scan", Some(&ioc), || {
        (status(&ioc) == 3 && caget(&ioc, &format!("{p}Position.NORD"))[0] == 600.0).then_some(())
    });
    check_exact(&ioc, &cfg, &list, 600, &[]);
}

#[test]
fn port_vanishing_mid_scan_reconnects_and_data_stays_exact() {
    let dir = std::env::temp_dir().join(format!("flyscan-vanish-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (dev, ioc) = chain(
        "G",
        5000,
        DevOptions {
            link: Some(dir.join("ttyDEV")),
            batch_points: 20,
            ..Default::default()
        },
    );
    let cfg = ssc(4000, 0b1011);
    set_ssc(&ioc, &cfg);
    caput(&ioc, &format!("{}Arm", ioc.prefix()), "1");
    wait_for(20, "points before the unplug", Some(&ioc), || {
        (scalar(&ioc, "NumCaptured") >= 400.0).then_some(())
    });
    dev.vanish(Duration::from_millis(400));
    wait_for(30, "Done", Some(&ioc), || (status(&ioc) == 3).then_some(()));
    let st = dev.stats();
    assert_eq!(st.returns, 1);
    assert!(
        st.frames_into_void > 5,
        "{} frames sent while the port was gone",
        st.frames_into_void
    );
    check_exact(&ioc, &cfg, &[], 4000, &[]);
    assert_eq!(scalar(&ioc, "LostPoints"), 0.0);
    assert_eq!(scalar(&ioc, "NumCaptured"), 4000.0);
    assert!(scalar(&ioc, "Resends") >= 1.0);
    // The driver saw the port go and asked for what it missed.
    let log = strip_ansi(&ioc.log_text());
    assert!(log.contains("reopens=1"), "{log}");
    assert_eq!(log.matches("serial port open").count(), 2, "{log}");
    assert!(!st.resend_requests.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Configuration written immediately before Arm, hundreds of times with random values and no
/// pause, is exactly what is armed: the records hand their writes to the driver in
/// processing order.
#[test]
fn configuration_written_just_before_arm_is_what_is_armed() {
    let (dev, ioc) = chain(
        "R",
        1000,
        DevOptions {
            batch_interval: Duration::ZERO,
            ..Default::default()
        },
    );
    let out = race(&ioc, 200, 0x5eed);
    let written = out.as_array().expect("list of written configurations");
    let configs = dev.stats().configs;
    assert_eq!(configs.len(), written.len(), "one Configure per Arm");
    for (i, (w, c)) in written.iter().zip(&configs).enumerate() {
        let got = (
            c.start as f64,
            c.step as f64,
            f64::from(c.count),
            f64::from(c.channel_mask),
            c.direction as u8 as f64,
            if c.encoding == Encoding::Raw {
                1.0
            } else {
                0.0
            },
        );
        let want = (
            w["Start"].as_f64().unwrap(),
            w["Step"].as_f64().unwrap(),
            w["NPoints"].as_f64().unwrap(),
            w["ChannelMask"].as_f64().unwrap(),
            w["Direction"].as_f64().unwrap(),
            w["Encoding"].as_f64().unwrap(),
        );
        assert_eq!(got, want, "arm {i}");
    }
    assert_eq!(status(&ioc), 3, "{}", message(&ioc));
}

/// The log without terminal colour sequences.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (false, c) => out.push(c),
            (true, 'm') => in_escape = false,
            (true, _) => {}
        }
    }
    out
}

#[test]
fn every_point_encoding_gives_the_same_exact_scan() {
    let (dev, ioc) = chain("ENC", 5000, DevOptions::default());
    for (code, enc) in [
        ("0", Encoding::Compact),
        ("1", Encoding::Raw),
        ("2", Encoding::Rice),
    ] {
        let cfg = ScanConfig {
            encoding: enc,
            ..ssc(700, 0b1101)
        };
        set_ssc(&ioc, &cfg);
        caput(&ioc, &format!("{}Encoding", ioc.prefix()), code);
        caput(&ioc, &format!("{}Arm", ioc.prefix()), "1");
        wait_for(20, "Done", Some(&ioc), || (status(&ioc) == 3).then_some(()));
        assert_eq!(dev.stats().configs.last().map(|c| c.encoding), Some(enc));
        check_exact(&ioc, &cfg, &[], 700, &[]);
    }
}

/// The energy columns through the IOC equal an independent computation from the positions and
/// the calibration PVs; channel roles reach the DESC; PV Access serves the scan as one table.
#[test]
fn energies_roles_and_the_pva_scan_table() {
    let (_dev, ioc) = chain("XAS", 5000, DevOptions::default());
    let p = ioc.prefix().to_owned();
    for (pv, v) in [
        ("DSpacing", "3.1356"),
        ("CountsPerDegree", "20000"),
        ("AngleOffset", "100"),
        ("CH0:Role", "I0"),
        ("CH1:Role", "It"),
    ] {
        caput(&ioc, &format!("{p}{pv}"), v);
    }
    let cfg = ScanConfig {
        start: 250_000,
        step: 7,
        ..ssc(300, 0b0011)
    };
    set_ssc(&ioc, &cfg);
    caput(&ioc, &format!("{p}Arm"), "1");
    wait_for(20, "Done", Some(&ioc), || (status(&ioc) == 3).then_some(()));
    let e =
        |pos: f64| 12_398.419_843 / (2.0 * 3.1356 * ((pos - 100.0) / 20_000.0).to_radians().sin());
    let pos = caget_array(&ioc, &format!("{p}Position"));
    let end = caget_array(&ioc, &format!("{p}Energy"));
    let start = caget_array(&ioc, &format!("{p}EnergyStart"));
    let centre = caget_array(&ioc, &format!("{p}EnergyCentre"));
    assert_eq!((end.len(), start.len(), centre.len()), (300, 300, 300));
    for i in 0..300 {
        assert!(
            (end[i] - e(pos[i])).abs() < 1e-6,
            "point {i}: {} vs {}",
            end[i],
            e(pos[i])
        );
        if i == 0 {
            assert!(
                start[0].is_nan() && centre[0].is_nan(),
                "the first bin began at the arm"
            );
        } else {
            assert!((start[i] - e(pos[i - 1])).abs() < 1e-6, "start {i}");
            assert!(
                (centre[i] - e((pos[i - 1] + pos[i]) / 2.0)).abs() < 1e-6,
                "centre {i}"
            );
        }
    }
    assert_eq!(
        caget_text(&ioc, &format!("{p}CH0.DESC")),
        "I0: counts of channel 0"
    );
    assert_eq!(
        caget_text(&ioc, &format!("{p}CH1.DESC")),
        "It: counts of channel 1"
    );
    // PV Access: the scan table equals the CA waveforms.
    let table = pvget_text(&ioc, &format!("{p}Scan"));
    assert!(table.contains("labels:["), "{table}");
    assert_same(
        &json_array(&table, "energy"),
        &end,
        "Scan.value.energy (pvget)",
    );
    assert_same(
        &json_array(&table, "position"),
        &pos,
        "Scan.value.position (pvget)",
    );
    assert_same(
        &json_array(&table, "ch1"),
        &caget_array(&ioc, &format!("{p}CH1")),
        "Scan.value.ch1 (pvget)",
    );
}

/// The three views of a scan: every point reaches a tail monitor exactly once; the preview holds
/// every k-th point; a client monitoring a full array receives at most 3× its final size.
#[test]
fn tail_preview_and_full_arrays_stay_proportional_to_the_data() {
    let (_dev, ioc) = chain(
        "VIEW",
        20_000,
        DevOptions {
            batch_points: 40,
            batch_interval: Duration::from_millis(2),
            ..DevOptions::default()
        },
    );
    let p = ioc.prefix().to_owned();
    let n = 12_000u32;
    let cfg = ssc(n, 0b0011);
    set_ssc(&ioc, &cfg);
    let tail = PyMonitor::start(&ioc, "monitor_arrays", &format!("{p}Tail:Index"), 8.0);
    let full = PyMonitor::start(&ioc, "monitor", &format!("{p}CH1"), 8.0);
    caput(&ioc, &format!("{p}Arm"), "1");
    wait_for(30, "Done", Some(&ioc), || (status(&ioc) == 3).then_some(()));
    let e = expected(&cfg, &[], n);
    check_exact(&ioc, &cfg, &[], n, &[]);
    // Preview: every k-th point, k = ceil(12000 / 2000) = 6.
    let pv = caget_array(&ioc, &format!("{p}Preview:Position"));
    assert_eq!(pv.len(), 2000);
    for (i, v) in pv.iter().enumerate() {
        assert_eq!(*v, e.position[6 * i], "preview {i}");
    }
    let pc = caget_array(&ioc, &format!("{p}CH1:Preview"));
    assert_eq!(pc[10], e.channels[1][60]);
    // Tail: every index exactly once, in order.
    let seen: Vec<f64> = tail
        .finish()
        .as_array()
        .expect("list of arrays")
        .iter()
        .flat_map(json_f64s)
        .collect();
    let want: Vec<f64> = (0..n).map(f64::from).collect();
    assert_eq!(seen, want, "tail indices");
    // Full arrays: what a monitor received is bounded by a small multiple of the final size.
    let lengths = json_f64s(&full.finish());
    let total: f64 = lengths.iter().sum();
    assert_eq!(lengths.last().copied(), Some(f64::from(n)));
    assert!(
        total <= 3.0 * f64::from(n),
        "a full-array monitor received {total} elements for {n} points: {lengths:?}"
    );
}

/// Time mode through the IOC: Mode, Period and the window's edges become the configuration the
/// device receives (period in its clock ticks, direction either, the window as start + span),
/// and the scan comes back exact; a window upside down is refused naming it.
#[test]
fn a_time_scan_with_a_window_is_configured_and_exact() {
    let (dev, ioc) = chain("TIME", 2_000, DevOptions::default());
    let p = ioc.prefix().to_owned();
    for (pv, v) in [
        ("Mode", "2"),
        ("Period", "0.0025"),
        ("GateLow", "-300"),
        ("GateHigh", "700"),
        ("NPoints", "500"),
        ("ChannelMask", "5"),
        // Not used in time mode: whatever it says, the device gets Either.
        ("Direction", "0"),
    ] {
        caput(&ioc, &format!("{p}{pv}"), v);
    }
    caput(&ioc, &format!("{p}Arm"), "1");
    wait_for(30, "Done", Some(&ioc), || (status(&ioc) == 3).then_some(()));
    let cfg = *dev.stats().configs.last().expect("configured");
    // The scripted device's clock runs at 1 MHz: 2.5 ms is 2 500 ticks.
    assert_eq!(cfg.mode, TriggerMode::Time);
    assert_eq!(cfg.direction, Direction::Either);
    assert_eq!((cfg.step, cfg.start, cfg.gate_span), (2_500, -300, 1_000));
    assert_eq!(cfg.count, 500);
    check_exact(&ioc, &cfg, &[], 500, &[]);
    // Upside down: refused before anything reaches the device.
    caput(&ioc, &format!("{p}GateHigh"), "-301");
    caput(&ioc, &format!("{p}Arm"), "1");
    wait_for(10, "the refusal", Some(&ioc), || {
        (status(&ioc) == 5).then_some(())
    });
    assert!(message(&ioc).contains("GateHigh"), "{}", message(&ioc));
    assert_eq!(dev.stats().configures, 1);
}
