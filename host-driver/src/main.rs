//! `flyscan-host`: serial link to a flyscan device → EPICS IOC over Channel Access.

use clap::Parser;
use flyscan_host::driver::{self, DriverConfig};
use flyscan_host::serial::SerialConfig;
use std::path::PathBuf;
use std::time::Duration;

/// flyscan host driver: reads the device's scan stream and publishes it to an EPICS IOC.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Serial device (a symlink is followed again at every reopen).
    #[arg(long)]
    serial: PathBuf,
    /// Baud rate.
    #[arg(long, default_value_t = 3_000_000)]
    baud: u32,
    /// PV prefix of the IOC database (P macro), e.g. "BL1:FLY:".
    #[arg(long)]
    prefix: String,
    /// Talk only to this CA server (host:port); sets EPICS_CA_ADDR_LIST and
    /// EPICS_CA_AUTO_ADDR_LIST=NO. Without it the usual EPICS_CA_* environment applies.
    #[arg(long)]
    ca_addr: Option<String>,
    /// Waveform length to assume until the IOC's is read (NPTS).
    #[arg(long, default_value_t = 1_000_000)]
    max_points: usize,
    /// Shortest time between two publish cycles, ms.
    #[arg(long, default_value_t = 25)]
    publish_interval_ms: u64,
}

/// Sets the CA client environment. Runs before any thread exists, as `set_var` requires.
#[allow(unsafe_code)]
fn set_ca_env(args: &Args) {
    let max_bytes = flyscan_host::ioc::max_array_bytes(args.max_points).to_string();
    // SAFETY: called first thing in main, before the runtime or any other thread starts, so no
    // other thread can read the environment concurrently.
    unsafe {
        if let Some(addr) = &args.ca_addr {
            std::env::set_var("EPICS_CA_AUTO_ADDR_LIST", "NO");
            std::env::set_var("EPICS_CA_ADDR_LIST", addr);
        }
        if std::env::var_os("EPICS_CA_MAX_ARRAY_BYTES").is_none() {
            std::env::set_var("EPICS_CA_MAX_ARRAY_BYTES", max_bytes);
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut i), Ok(mut t)) => {
            tokio::select! {
                _ = i.recv() => {}
                _ = t.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    set_ca_env(&args);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("flyscan-host: cannot start runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let mut cfg = DriverConfig::new(SerialConfig::new(&args.serial, args.baud), &args.prefix);
    cfg.default_capacity = args.max_points;
    cfg.publish_interval = Duration::from_millis(args.publish_interval_ms);
    match rt.block_on(driver::run(cfg, shutdown_signal())) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "flyscan-host failed");
            std::process::ExitCode::FAILURE
        }
    }
}
