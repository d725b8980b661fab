//! `cargo xtask <command>`: the project's automation in one place.
//!
//! Every command assumes `scripts/setup.sh` has run (the README's `./flyscan.sh` does that first);
//! each step prints the exact command it runs so a failure can be reproduced by hand.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Target triple of the ODROID release binary.
const AARCH64: &str = "aarch64-unknown-linux-musl";
/// A bare-metal target: the protocol and firmware core must build for it (no_std, no alloc).
const NO_STD_TARGET: &str = "thumbv7em-none-eabihf";

#[derive(Parser)]
#[command(about = "flyscan project automation")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The whole test suite: format, lints, no_std and aarch64 builds, Rust tests (with the
    /// firmware binary against the RTL), Python tests, gateware testbenches and a small
    /// bitstream build.
    Test,
    /// A simulated EXAFS fly scan landing in a real IOC (flyscan-ioc + simulated device).
    Demo {
        /// Arguments passed on to the demo binary (see `flyscan-demo --help`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build the static aarch64 (ODROID) release firmware binary.
    Cross,
    /// Run the hardware-in-the-loop bench (against the simulator, or FLYSCAN_HIL_DEVICE).
    Hil,
    /// End-to-end benchmarks (throughput at the line's capacity, latency, scaling table):
    /// `cargo xtask e2e-bench [throughput|scale|all] [options]` (see `e2e-bench --help`).
    E2eBench {
        /// Arguments passed on to `e2e-bench`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build an FPGA bitstream of the reference gateware (gateware/) with the open toolchain
    /// from PyPI, and print its LUTs, flip-flops, block RAM and Fmax.
    Bitstream {
        /// Board: ulx3s-25f (ECP5 LFE5U-25F) or icebreaker (iCE40UP5K).
        #[arg(long, default_value = "ulx3s-25f")]
        board: String,
        /// Detector channels.
        #[arg(long, default_value_t = 8)]
        channels: u32,
        /// More options for `python -m flyscan_gateware.build` (--counter-bits, --fifo-depth,
        /// --snapshot-depth, --glitch-filter, --synth-only, --seed).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build the RTL bridge (the gateware under Verilator, for `sim run --rtl-bridge`) for the
    /// simulator's default FPGA, and print its path.
    RtlBridge,
}

fn main() -> std::process::ExitCode {
    match dispatch(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nxtask: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    let root = project_root();
    std::env::set_current_dir(&root).with_context(|| format!("cd {}", root.display()))?;
    match cli.cmd {
        Cmd::Test => test(&root),
        Cmd::Demo { args } => demo(&root, &args),
        Cmd::Cross => cross().map(|_| ()),
        Cmd::Hil => hil(&root),
        Cmd::E2eBench { args } => e2e_bench(&root, &args),
        Cmd::Bitstream {
            board,
            channels,
            args,
        } => bitstream(&root, &board, channels, &args),
        Cmd::RtlBridge => rtl_bridge(&root).map(|p| println!("{}", p.display())),
    }
}

fn project_root() -> PathBuf {
    // xtask lives one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Runs a command, echoing it, and fails on a non-zero exit.
fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}").replace('"', "");
    eprintln!("\n==> {shown}");
    let t = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("could not start: {shown}"))?;
    eprintln!("<== {:.1} s", t.elapsed().as_secs_f64());
    if !status.success() {
        bail!("failed ({status}): {shown}");
    }
    Ok(())
}

/// Cargo's target directory (`$CARGO_TARGET_DIR`, else `<root>/target`). A relative
/// `CARGO_TARGET_DIR` is taken from the folder cargo was started in, as cargo does
/// (`./flyscan.sh` makes it absolute before it changes folder).
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                std::env::var_os("FLYSCAN_CALLER_DIR")
                    .map_or_else(|| root.to_owned(), PathBuf::from)
                    .join(d)
            }
        }
        _ => root.join("target"),
    }
}

fn has_target(target: &str) -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == target)
        })
        .unwrap_or(false)
}

/// Builds the release firmware for the ODROID; returns its path, or None (loudly) when the
/// target is not installable on this machine.
fn cross() -> Result<Option<PathBuf>> {
    if !has_target(AARCH64) {
        eprintln!(
            "!! WARNING: rust target {AARCH64} is not installed (rustup target add {AARCH64}); \
             the aarch64 firmware is NOT built and its end-to-end test will skip"
        );
        return Ok(None);
    }
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "flyscan-firmware",
        "--target",
        AARCH64,
    ]))?;
    Ok(Some(
        target_dir(&project_root())
            .join(AARCH64)
            .join("release")
            .join("firmware-odroid"),
    ))
}

/// The bench (hil-tests) runs the release binaries, as a beamline would.
fn build_bench_binaries() -> Result<()> {
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "flyscan-sim",
        "-p",
        "flyscan-host",
        "-p",
        "flyscan-firmware",
        "--bins",
    ]))
}

/// The bench alone (simulator by default; `FLYSCAN_HIL_DEVICE` names a real device).
fn hil(root: &Path) -> Result<()> {
    build_bench_binaries()?;
    let mut t = cargo();
    t.args(["test", "--release", "-p", "flyscan-hil-tests"])
        .env("FLYSCAN_BIN_DIR", target_dir(root).join("release"));
    if let Some(fw) = cross()? {
        t.env("FLYSCAN_AARCH64_FIRMWARE", fw);
    }
    run(&mut t)
}

/// The end-to-end benchmarks, on the release binaries.
fn e2e_bench(root: &Path, args: &[String]) -> Result<()> {
    build_bench_binaries()?;
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "flyscan-hil-tests",
        "--bin",
        "e2e-bench",
    ]))?;
    run(
        Command::new(target_dir(root).join("release").join("e2e-bench"))
            .args(args)
            .env("FLYSCAN_BIN_DIR", target_dir(root).join("release")),
    )
}

fn test(root: &Path) -> Result<()> {
    let t = Instant::now();
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    if has_target(NO_STD_TARGET) {
        run(cargo().args(["build", "-p", "flyscan-protocol", "--target", NO_STD_TARGET]))?;
        run(cargo().args([
            "build",
            "-p",
            "flyscan-firmware",
            "--lib",
            "--no-default-features",
            "--target",
            NO_STD_TARGET,
        ]))?;
    } else {
        bail!(
            "rust target {NO_STD_TARGET} missing: run scripts/setup.sh (rustup target add {NO_STD_TARGET})"
        );
    }
    build_bench_binaries()?;
    // The firmware-against-RTL scan (sim/tests/rtl.rs) runs on this build of the gateware.
    let bridge = rtl_bridge(root)?;
    let mut tests = cargo();
    tests.args(["test", "--workspace"]);
    tests.env("FLYSCAN_BIN_DIR", target_dir(root).join("release"));
    tests.env("FLYSCAN_RTL_BRIDGE", &bridge);
    if let Some(fw) = cross()? {
        // The bench's qemu test runs exactly the binary we ship.
        tests.env("FLYSCAN_AARCH64_FIRMWARE", fw);
    }
    run(&mut tests)?;
    let py = root.join(".venv/bin/python");
    let py_tests = root.join("host-driver/python/tests");
    if py_tests.is_dir() {
        // The device tests run flyscan-ioc and the scripted device (`sim scripted`).
        run(Command::new(&py)
            .args(["-m", "pytest", "-q"])
            .arg(&py_tests)
            .env("FLYSCAN_BIN_DIR", target_dir(root).join("release")))?;
    }
    // Gateware: per-block and whole-transaction testbenches, the reference model's vectors
    // replayed on the RTL, and one small configuration built to a bitstream.
    run(Command::new(&py)
        .args(["-m", "pytest", "-q", "tests"])
        .current_dir(root.join("gateware"))
        .env(
            "FLYSCAN_GATEWARE_BUILD_DIR",
            target_dir(root).join("gateware-test"),
        ))?;
    eprintln!("\nall tests passed in {:.0} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// The project venv's Python running a module of the gateware package.
fn gateware_python(root: &Path, module: &str) -> Command {
    let mut c = Command::new(root.join(".venv/bin/python"));
    c.args(["-m", module]).current_dir(root.join("gateware"));
    c
}

/// Builds a bitstream into `<target>/gateware/<board>-<channels>ch`.
fn bitstream(root: &Path, board: &str, channels: u32, args: &[String]) -> Result<()> {
    let out = target_dir(root)
        .join("gateware")
        .join(format!("{board}-{channels}ch"));
    run(gateware_python(root, "flyscan_gateware.build")
        .args(["--board", board, "--n-channels", &channels.to_string()])
        .arg("--out-dir")
        .arg(&out)
        .args(args))
}

/// Builds (or finds, cached by its sources) the RTL bridge for the simulator's default FPGA:
/// 8 channels, 32-bit counters, FIFO and snapshot RAM 4096 deep, 100 MHz, 10 MHz SCLK.
fn rtl_bridge(root: &Path) -> Result<PathBuf> {
    let mut cmd = gateware_python(root, "flyscan_gateware.bridge");
    cmd.args([
        "--n-channels",
        "8",
        "--counter-bits",
        "32",
        "--fifo-depth",
        "4096",
        "--snapshot-depth",
        "4096",
        "--clock-hz",
        "100000000",
        "--half-period",
        "5",
    ])
    .arg("--out-dir")
    .arg(target_dir(root).join("rtl-bridge"));
    let shown = format!("{cmd:?}").replace('"', "");
    eprintln!("\n==> {shown}");
    let t = Instant::now();
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("could not start: {shown}"))?;
    eprintln!("<== {:.1} s", t.elapsed().as_secs_f64());
    if !out.status.success() {
        bail!("failed ({}): {shown}", out.status);
    }
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !path.is_file() {
        bail!(
            "the RTL bridge build named {} but it is not there",
            path.display()
        );
    }
    Ok(path)
}

fn demo(root: &Path, args: &[String]) -> Result<()> {
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "flyscan-sim",
        "-p",
        "flyscan-host",
        "-p",
        "flyscan-hil-tests",
        "--bins",
    ]))?;
    // The demo starts the simulator and flyscan-ioc from wherever cargo put them.
    run(cargo()
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "flyscan-hil-tests",
            "--bin",
            "flyscan-demo",
            "--",
        ])
        .args(args)
        .env("FLYSCAN_BIN_DIR", target_dir(root).join("release")))
}
