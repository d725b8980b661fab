//! The shipped access-security file limits writes of control PVs to listed hosts. CA clients
//! report their host name; caproto's client lets the test choose it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::*;
use flyscan_host::ioc::{AcfHosts, IocOptions, SoftIoc, local_host_name};

#[test]
fn control_writes_only_from_listed_hosts() {
    let opts = IocOptions {
        acf: Some(AcfHosts {
            control_hosts: vec!["beamline-ws1".into(), "goodhost".into()],
            driver_hosts: vec![local_host_name()],
        }),
        ..IocOptions::new(unique_prefix("ACF"), 2, 100)
    };
    let ioc = SoftIoc::start(opts).expect("IOC with ACF");
    let p = ioc.prefix().to_owned();
    let bad = caput_as(&ioc, "intruder", &format!("{p}Start"), 42.0);
    // caproto reports access rights as flags: 1 = read, 3 = read + write.
    assert_eq!(
        bad["access"], "1",
        "unlisted host has no write access: {bad}"
    );
    assert_eq!(
        bad["after"], bad["before"],
        "unlisted host's write refused: {bad}"
    );
    let good = caput_as(&ioc, "goodhost", &format!("{p}Start"), 42.0);
    assert_eq!(good["access"], "3", "{good}");
    assert_eq!(
        good["after"].as_f64(),
        Some(42.0),
        "listed host's write applied: {good}"
    );
    // Driver-owned PVs are closed even to control hosts.
    let status = caput_as(&ioc, "goodhost", &format!("{p}NumCaptured"), 5.0);
    assert_eq!(status["after"], status["before"], "{status}");
    // The driver (on this host) still works through the ACF.
    let dev = FakeDevice::start(DevOptions::default());
    let d = Driver::start(&dev.path, &ioc);
    wait_for(20, "driver publishes", Some(&d), || {
        (caget(&ioc, &format!("{p}Connected"))[0] == 1.0).then_some(())
    });
}
