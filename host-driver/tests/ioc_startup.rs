//! Start-up and restarts of `flyscan-ioc`: one IOC per serial port, every record the driver
//! needs present before anything is served, the shipped st.cmd, a port that cannot be opened,
//! and a kill -9 in the middle of a scan.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::*;
use flyscan_host::launcher::{FlyscanIoc, IocPorts, ca_tool, shipped_st_cmd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn status(ioc: &FlyscanIoc) -> f64 {
    caget(ioc, &format!("{}Status", ioc.prefix()))[0]
}

fn scalar(ioc: &FlyscanIoc, name: &str) -> f64 {
    caget(ioc, &format!("{}{name}", ioc.prefix()))[0]
}

fn message(ioc: &FlyscanIoc) -> String {
    caget_text(ioc, &format!("{}StatusMessage", ioc.prefix()))
}

fn connected(ioc: &FlyscanIoc) {
    wait_for(20, "Connected", Some(ioc), || {
        (scalar(ioc, "Connected") == 1.0).then_some(())
    });
}

/// Runs the IOC binary on `st_cmd` to its exit; returns its status and output.
fn run_to_exit(st_cmd: &std::path::Path, env: &[(String, String)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flyscan-ioc"))
        .arg("-S")
        .arg(st_cmd)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .output()
        .expect("flyscan-ioc");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_second_ioc_on_the_same_port_stops_at_once() {
    let dev = FakeDevice::start(DevOptions::default());
    let first = start_ioc(&unique_prefix("L1"), &dev.path, 100);
    connected(&first);
    // The second one: another prefix and other ports, the same serial port.
    let opts = ioc_options(&unique_prefix("L2"), &dev.path, 100);
    let dir = std::env::temp_dir().join(format!("flyscan-second-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let st = dir.join("st.cmd");
    std::fs::write(
        &st,
        flyscan_host::launcher::st_cmd_text(&opts, &dir.join("settings")),
    )
    .unwrap();
    let ports = IocPorts::free().unwrap();
    let env = vec![
        ("EPICS_CA_SERVER_PORT".to_owned(), ports.ca.to_string()),
        (
            "EPICS_CAS_INTF_ADDR_LIST".to_owned(),
            "127.0.0.1".to_owned(),
        ),
        ("EPICS_PVA_SERVER_PORT".to_owned(), ports.pva.to_string()),
        (
            "EPICS_PVAS_INTF_ADDR_LIST".to_owned(),
            "127.0.0.1".to_owned(),
        ),
    ];
    let t = Instant::now();
    let (code, text) = run_to_exit(&st, &env);
    assert_eq!(code, 1, "{text}");
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(
        text.contains("already used by another flyscan IOC"),
        "{text}"
    );
    assert!(
        !text.contains("iocRun: All initialization complete"),
        "it served: {text}"
    );
    // The first one is untouched.
    connected(&first);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_st_cmd_without_a_channels_records_names_them_and_serves_nothing() {
    let dev = FakeDevice::start(DevOptions::default());
    let mut opts = ioc_options(&unique_prefix("M"), &dev.path, 100);
    opts.omit_channels = vec![2];
    let e = FlyscanIoc::start(opts).expect_err("must not start");
    let text = format!("{e:#}");
    assert!(text.contains("lack 4 record(s)"), "{text}");
    for r in ["CH2,", "CH2:Role", "CH2:Tail", "CH2:Preview"] {
        assert!(text.contains(r), "{r} not named: {text}");
    }
    assert!(
        !text.contains("iocRun: All initialization complete"),
        "{text}"
    );
}

#[test]
fn the_shipped_st_cmd_runs_as_shipped() {
    let dev = FakeDevice::start(DevOptions {
        info: flyscan_protocol::DeviceInfo {
            n_channels: 8,
            ..DevOptions::default().info
        },
        ..DevOptions::default()
    });
    let ports = IocPorts::free().unwrap();
    let settings = std::env::temp_dir().join(format!("flyscan-shipped-{}", std::process::id()));
    let prefix = unique_prefix("S");
    let mut child = Command::new(env!("CARGO_BIN_EXE_flyscan-ioc"))
        .arg(shipped_st_cmd())
        .env("FLYSCAN_PREFIX", &prefix)
        .env("FLYSCAN_PORT", &dev.path)
        .env("FLYSCAN_NPTS", "1000")
        .env("FLYSCAN_SETTINGS", &settings)
        .env("EPICS_CA_SERVER_PORT", ports.ca.to_string())
        .env("EPICS_CAS_INTF_ADDR_LIST", "127.0.0.1")
        .env("EPICS_PVA_SERVER_PORT", ports.pva.to_string())
        .env("EPICS_PVAS_INTF_ADDR_LIST", "127.0.0.1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("flyscan-ioc");
    let env = flyscan_host::launcher::client_env(ports, 1000);
    let get = |pv: &str| {
        Command::new(ca_tool("caget"))
            .args(["-t", "-w", "2", &format!("{prefix}{pv}")])
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let t = Instant::now();
    while get("Connected") != "Connected" {
        assert!(t.elapsed() < Duration::from_secs(20), "never connected");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get("NumChannels"), "8");
    assert_eq!(get("CH7.NELM"), "1000");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&settings);
}

#[test]
fn a_port_that_cannot_be_opened_is_shown_with_the_os_error() {
    let missing = std::env::temp_dir().join(format!("flyscan-no-such-port-{}", std::process::id()));
    let ioc = FlyscanIoc::start(ioc_options(&unique_prefix("P"), &missing, 100))
        .expect("the IOC starts without its device");
    wait_for(10, "the open error", Some(&ioc), || {
        let m = message(&ioc);
        (m.contains("cannot open serial port") && m.contains("No such file")).then_some(())
    });
    assert_eq!(scalar(&ioc, "Connected"), 0.0);
}

fn kill_mid_scan(resend_frames: u32, batch_points: u16, down: Duration) -> (FlyscanIoc, u32) {
    let dev = FakeDevice::start(DevOptions {
        info: flyscan_protocol::DeviceInfo {
            resend_frames,
            ..DevOptions::default().info
        },
        batch_points,
        batch_interval: Duration::from_millis(4),
        ..DevOptions::default()
    });
    let mut ioc = start_ioc(&unique_prefix("K"), &dev.path, 20_000);
    connected(&ioc);
    let p = ioc.prefix().to_owned();
    caput(&ioc, &format!("{p}Start"), "100");
    caput(&ioc, &format!("{p}Step"), "3");
    caput(&ioc, &format!("{p}NPoints"), "6000");
    caput(&ioc, &format!("{p}ChannelMask"), "5");
    caput(&ioc, &format!("{p}Arm"), "1");
    wait_for(20, "points before the kill", Some(&ioc), || {
        (scalar(&ioc, "NumCaptured") >= 500.0).then_some(())
    });
    ioc.kill();
    // The outage itself: the IOC stays down this long while the device scans on.
    std::thread::sleep(down);
    ioc.start_again().expect("start again");
    // Settings came back from the settings file.
    assert_eq!(scalar(&ioc, "NPoints"), 6000.0);
    assert_eq!(scalar(&ioc, "ChannelMask"), 5.0);
    assert_eq!(scalar(&ioc, "Step"), 3.0);
    wait_for(60, "the scan's end", Some(&ioc), || {
        (status(&ioc) == 3.0).then_some(())
    });
    let lost = scalar(&ioc, "LostPoints") as u32;
    assert_eq!(
        scalar(&ioc, "NumCaptured") as u32 + lost,
        6000,
        "{}",
        message(&ioc)
    );
    // Every point shown is the device's; lost ones are NaN.
    let cfg = flyscan_protocol::ScanConfig {
        start: 100,
        step: 3,
        count: 6000,
        channel_mask: 5,
        ..flyscan_protocol::ScanConfig::default()
    };
    let e = expected(&cfg, &[], 6000);
    let got = caget_array(&ioc, &format!("{p}CH2"));
    assert_eq!(got.len(), 6000);
    let nan = got.iter().filter(|v| v.is_nan()).count() as u32;
    assert_eq!(nan, lost, "lost points are the NaN ones");
    for (i, (g, w)) in got.iter().zip(&e.channels[2]).enumerate() {
        assert!(g.is_nan() || g == w, "point {i}: {g} vs {w}");
    }
    drop(dev);
    (ioc, lost)
}

#[test]
fn kill_9_mid_scan_recovers_the_scan_from_the_device_ring() {
    let (_ioc, lost) = kill_mid_scan(4096, 20, Duration::from_millis(300));
    assert_eq!(
        lost, 0,
        "the ring held everything sent while the IOC was down"
    );
}

#[test]
fn kill_9_mid_scan_longer_than_the_ring_counts_the_loss_exactly() {
    // A ring of 16 frames of 10 points: a 1.5 s outage at 2 500 points/s loses points for good.
    let (_ioc, lost) = kill_mid_scan(16, 10, Duration::from_millis(1500));
    assert!(lost > 0, "the outage outlasted the ring");
}
