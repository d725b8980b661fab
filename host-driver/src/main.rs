//! `flyscan-ioc`: an EPICS IOC (Channel Access and PV Access servers, IOC shell) with the
//! flyscan driver inside. Runs an `st.cmd`, then the interactive IOC shell when started from a
//! terminal, else serves until SIGTERM or SIGINT.

use clap::Parser;
mod ioc;

use ioc::ffi;
use std::io::IsTerminal;
use std::path::PathBuf;

/// flyscan IOC: serial link to a flyscan controller, its scans in EPICS records.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The start-up script (st.cmd): flyscanConfig, dbLoadRecords, access security, iocInit.
    st_cmd: PathBuf,
    /// Never start the interactive IOC shell (also the case when stdin is not a terminal).
    #[arg(short = 'S', long)]
    no_shell: bool,
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

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let script = match args.st_cmd.canonicalize() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("flyscan-ioc: error: {}: {e}", args.st_cmd.display());
            std::process::exit(2);
        }
    };
    if let Err(e) = ioc::prepare() {
        eprintln!("flyscan-ioc: error: {e}");
        std::process::exit(1);
    }
    // The script's folder, for paths relative to it: $(ST_CMD_DIR).
    let dir = script
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    ffi::run_command(&format!("epicsEnvSet ST_CMD_DIR \"{dir}\""));
    if ffi::run_script(&script.to_string_lossy()) != 0 {
        eprintln!("flyscan-ioc: error: {} failed", script.display());
        ffi::exit(1);
    }
    if !ioc::driver_running() {
        eprintln!(
            "flyscan-ioc: error: {} did not start the driver (it needs flyscanConfig, the databases and iocInit)",
            script.display()
        );
        ffi::exit(1);
    }
    if !args.no_shell && std::io::stdin().is_terminal() {
        ffi::interactive_shell();
        ffi::exit(0);
    }
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(shutdown_signal()),
        Err(e) => {
            eprintln!("flyscan-ioc: error: cannot wait for signals: {e}");
            ffi::exit(1);
        }
    }
    tracing::info!("stopping");
    ffi::exit(0)
}
