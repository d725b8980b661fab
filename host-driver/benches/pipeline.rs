//! Pipeline benchmarks through `flyscan-ioc` (prints numbers; see BENCHMARKS.md, section Host
//! driver):
//! 1. latency from a one-point batch frame written to the pty to the value seen by a CA monitor;
//! 2. 8 channels × 100 000 points streamed unpaced: the decode path alone (in-process, the same
//!    number of points and encoding) beside the whole stream (first frame written → the CA
//!    monitor of `NumCaptured` showing every point), so the time outside decoding (pty,
//!    records, Channel Access) shows; and the IOC's peak RSS.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;
mod support;
use common::*;
use flyscan_host::launcher::{FlyscanIoc, IocOptions};
use std::time::{Duration, Instant, UNIX_EPOCH};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn arm(ioc: &FlyscanIoc, count: u32, mask: u32, encoding: &str) {
    let p = ioc.prefix().to_owned();
    for (pv, v) in [
        ("Mode", "0".to_owned()),
        ("Start", "0".to_owned()),
        ("Step", "5".to_owned()),
        ("NPoints", count.to_string()),
        ("ChannelMask", mask.to_string()),
        ("Encoding", encoding.to_owned()),
    ] {
        caput(ioc, &format!("{p}{pv}"), &v);
    }
    caput(ioc, &format!("{p}Arm"), "1");
}

fn wait_done(ioc: &FlyscanIoc) {
    let p = ioc.prefix().to_owned();
    wait_for(300, "the scan's end", Some(ioc), || {
        let s = caget(ioc, &format!("{p}Status"))[0];
        match s as u32 {
            3 => Some(()),
            4 | 5 => panic!(
                "the scan ended in state {s}: {}",
                String::from_utf8_lossy(
                    &std::process::Command::new(flyscan_host::launcher::ca_tool("caget"))
                        .args(["-S", "-t", &format!("{p}StatusMessage")])
                        .envs(ioc.client_env())
                        .output()
                        .map(|o| o.stdout)
                        .unwrap_or_default()
                )
            ),
            _ => None,
        }
    });
}

fn latency() {
    let dev = FakeDevice::start(DevOptions {
        batch_points: 1,
        batch_interval: Duration::from_millis(20),
        info: flyscan_protocol::DeviceInfo {
            n_channels: 8,
            ..DevOptions::default().info
        },
        ..Default::default()
    });
    let ioc = FlyscanIoc::start(IocOptions::new(
        env!("CARGO_BIN_EXE_flyscan-ioc"),
        "BL:",
        &dev.path,
        8,
        10_000,
    ))
    .unwrap();
    wait_for(20, "connected", Some(&ioc), || {
        (caget(&ioc, "BL:Connected")[0] == 1.0).then_some(())
    });
    let n = 300;
    let mon = PyMonitor::start(
        &ioc,
        "monitor_times",
        "BL:NumCaptured",
        f64::from(n) * 0.02 + 3.0,
    );
    arm(&ioc, n, 0xff, "0");
    wait_done(&ioc);
    let seen = mon.finish();
    let sent = dev.stats().batch_times;
    let mut lat = Vec::new();
    for e in seen.as_array().unwrap() {
        let v = e[0].as_f64().unwrap_or(0.0) as u32;
        let t = e[1].as_f64().unwrap();
        if let Some((_, st)) = sent.iter().find(|(k, _)| *k == v) {
            let ts = st.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
            lat.push((t - ts) * 1000.0);
        }
    }
    println!(
        "latency (frame written -> CA monitor of NumCaptured), {} updates of {n} points: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        pct(&mut lat, 1.0)
    );
}

fn throughput(encoding: &str) {
    let npts = support::POINTS;
    let enc = if encoding == "0" {
        flyscan_protocol::Encoding::Compact
    } else {
        flyscan_protocol::Encoding::Raw
    };
    // The decode path alone, on a stream of the same size and encoding.
    let (bytes, _) = support::stream(enc);
    let decode = (0..5)
        .map(|_| {
            let t = Instant::now();
            assert_eq!(support::in_place(&bytes, enc, true), u64::from(npts));
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    let dev = FakeDevice::start(DevOptions {
        batch_points: 0,
        batch_interval: Duration::ZERO,
        info: flyscan_protocol::DeviceInfo {
            n_channels: 8,
            resend_frames: 4096,
            ..DevOptions::default().info
        },
        ..Default::default()
    });
    let ioc = FlyscanIoc::start(IocOptions::new(
        env!("CARGO_BIN_EXE_flyscan-ioc"),
        "BT:",
        &dev.path,
        8,
        npts as usize,
    ))
    .unwrap();
    wait_for(20, "connected", Some(&ioc), || {
        (caget(&ioc, "BT:Connected")[0] == 1.0).then_some(())
    });
    let mon = PyMonitor::start(&ioc, "monitor_times", "BT:NumCaptured", 60.0);
    arm(&ioc, npts, 0xff, encoding);
    wait_done(&ioc);
    let seen = mon.finish();
    let first_frame = dev
        .stats()
        .batch_times
        .first()
        .map(|(_, t)| t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64())
        .expect("the device sent batches");
    let all_seen = seen
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e[0].as_f64().unwrap_or(0.0) >= f64::from(npts))
        .and_then(|e| e[1].as_f64())
        .expect("a NumCaptured update with every point");
    let stream = all_seen - first_frame;
    let captured = caget(&ioc, "BT:NumCaptured")[0];
    let lost = caget(&ioc, "BT:LostPoints")[0];
    let resends = caget(&ioc, "BT:Resends")[0];
    let raw = f64::from(npts) * (21.0 + 4.0 * 8.0);
    let rss = ioc.pid().map_or(0, peak_rss) as f64;
    println!(
        "{} 8 ch x {npts} points: decode path {:.1} ms ({:.0} ns/point); whole stream {:.0} ms ({:.0} points/s), of which outside decoding {:.0} ms; captured {captured}, lost {lost}, resend requests {resends}; IOC peak RSS {:.1} MB (raw data {:.1} MB)",
        if encoding == "0" { "compact" } else { "raw" },
        decode * 1e3,
        decode * 1e9 / f64::from(npts),
        stream * 1e3,
        f64::from(npts) / stream,
        (stream - decode) * 1e3,
        rss / 1e6,
        raw / 1e6,
    );
}

fn main() {
    // `cargo test --benches` runs benches as tests with no arguments to measure; skip then.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let only = std::env::var("FLYSCAN_BENCH").unwrap_or_default();
    if only.is_empty() || only == "latency" {
        latency();
    }
    if only.is_empty() || only == "compact" {
        throughput("0");
    }
    if only.is_empty() || only == "raw" {
        throughput("1");
    }
}
