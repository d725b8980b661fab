//! Access security of the flyscan IOC (`db/flyscan.acf`, loaded by its st.cmd with
//! `asCheckClientIP` on): configuration, Arm and Abort are writable only from CONTROL_HOSTS,
//! checked by the client's address, whatever host name it claims; driver-owned records are
//! writable by nobody.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::*;
use flyscan_host::launcher::FlyscanIoc;

fn ioc_with_hosts(name: &str, hosts: &[&str]) -> (FakeDevice, FlyscanIoc) {
    let dev = FakeDevice::start(DevOptions::default());
    let mut opts = ioc_options(&unique_prefix(name), &dev.path, 100);
    opts.control_hosts = hosts.iter().map(|h| (*h).to_owned()).collect();
    let ioc = FlyscanIoc::start(opts).expect("IOC with ACF");
    wait_for(20, "Connected", Some(&ioc), || {
        (caget(&ioc, &format!("{}Connected", ioc.prefix()))[0] == 1.0).then_some(())
    });
    (dev, ioc)
}

/// A C `caput` that may be refused: its exit status and output.
fn try_caput(ioc: &FlyscanIoc, pv: &str, value: &str) -> (bool, String) {
    let out = std::process::Command::new(flyscan_host::launcher::ca_tool("caput"))
        .args(["-t", "-w", "5", pv, value])
        .envs(ioc.client_env())
        .output()
        .expect("caput");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_host_not_listed_writes_nothing_even_claiming_a_listed_name() {
    // 192.0.2.7 (a documentation address) is the only control host; the test runs on 127.0.0.1.
    let (_dev, ioc) = ioc_with_hosts("ACFNO", &["192.0.2.7"]);
    let p = ioc.prefix().to_owned();
    let (ok, text) = try_caput(&ioc, &format!("{p}Start"), "42");
    assert!(
        !ok || !text.contains("New : ") || text.contains("Old : "),
        "{text}"
    );
    assert_eq!(
        caget(&ioc, &format!("{p}Start"))[0],
        0.0,
        "C caput refused: {text}"
    );
    // A client that claims the listed host name is still refused: the address counts.
    for (pv, v) in [
        ("Start", 42.0),
        ("Arm", 1.0),
        ("Status", 3.0),
        ("NumCaptured", 5.0),
    ] {
        let r = caput_as(&ioc, "192.0.2.7", &format!("{p}{pv}"), v);
        assert_eq!(r["access"], "1", "{pv}: read-only for a spoofed name: {r}");
        assert_eq!(r["after"], r["before"], "{pv}: {r}");
    }
}

#[test]
fn a_listed_host_writes_controls_but_no_driver_record() {
    let (_dev, ioc) = ioc_with_hosts("ACFOK", &["localhost"]);
    let p = ioc.prefix().to_owned();
    let r = caput_as(&ioc, "any-name", &format!("{p}Start"), 42.0);
    assert_eq!(r["access"], "3", "{r}");
    assert_eq!(r["after"].as_f64(), Some(42.0), "{r}");
    assert_eq!(caget(&ioc, &format!("{p}Start"))[0], 42.0);
    for pv in [
        "Status",
        "NumCaptured",
        "Position",
        "CH0",
        "Connected",
        "StatusMessage",
    ] {
        let r = caput_as(&ioc, "any-name", &format!("{p}{pv}"), 5.0);
        assert_eq!(r["access"], "1", "{pv} is read-only to every client: {r}");
    }
}
