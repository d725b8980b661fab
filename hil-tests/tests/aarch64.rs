//! The binary we ship: the static aarch64 release firmware under `qemu-aarch64`, driven by the
//! simulator over its FPGA socket, gives a result identical to the native firmware binary's
//! (every point, channel and timestamp as read back from the IOC), and both equal the truth.
//!
//! `cargo xtask test` builds the aarch64 binary and passes its path in
//! `FLYSCAN_AARCH64_FIRMWARE`. Without the target or qemu the test says so loudly and skips;
//! a failed build fails `cargo xtask test` before this runs.

use flyscan_hil_tests::chain::{Chain, ChainOptions, binary, workspace_root};
use flyscan_hil_tests::compare::compare;
use flyscan_hil_tests::scan_table::ScanTable;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn aarch64_firmware() -> Option<PathBuf> {
    match std::env::var_os("FLYSCAN_AARCH64_FIRMWARE") {
        // Named by `cargo xtask test`, which built it: it must be there.
        Some(p) => {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "FLYSCAN_AARCH64_FIRMWARE={} does not exist",
                p.display()
            );
            Some(p)
        }
        None => {
            let p =
                workspace_root().join("target/aarch64-unknown-linux-musl/release/firmware-odroid");
            p.is_file().then_some(p)
        }
    }
}

fn qemu() -> bool {
    Command::new("qemu-aarch64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(name: &str, firmware_cmd: String) -> (ScanTable, usize) {
    let mut opts = ChainOptions::scenario(name, "uniform.toml");
    opts.device = None;
    opts.firmware_cmd = Some(firmware_cmd);
    let mut chain = Chain::start(opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    let o = chain
        .run_scan(Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(o.status, "Done", "{name}: {}", chain.logs());
    let m = compare(&o.caget, &o.truth.points, chain.clock_hz());
    assert!(
        m.is_empty(),
        "{name}: {} differences from truth: {:#?}",
        m.count,
        m.first
    );
    assert_eq!(chain.get_f64("LostPoints").ok(), Some(0.0), "{name}");
    (o.caget, o.truth.points.len())
}

#[test]
fn aarch64_release_firmware_under_qemu_matches_native() {
    let Some(fw) = aarch64_firmware() else {
        eprintln!(
            "\n!!! SKIPPED aarch64 end-to-end test: no aarch64 firmware binary \
             (rustup target add aarch64-unknown-linux-musl; cargo xtask cross) !!!\n"
        );
        return;
    };
    if !qemu() {
        eprintln!(
            "\n!!! SKIPPED aarch64 end-to-end test: qemu-aarch64 not installed (apt-get install qemu-user) !!!\n"
        );
        return;
    }
    let native = binary("firmware-odroid").unwrap_or_else(|e| panic!("{e}"));
    let (a, n) = run("fw-native", native.display().to_string());
    let (b, _) = run("fw-aarch64", format!("qemu-aarch64 {}", fw.display()));
    assert_eq!(n, 10_000);
    assert_eq!(a, b, "qemu aarch64 and native firmware results differ");
}
