//! `firmware-odroid`: the flyscan firmware as a Linux program (the ODROID, or any Linux box
//! with the simulator). It wires the sans-I/O core to real I/O: the serial line to the host
//! (a tty in raw 8N1 via termios), the FPGA over spidev + a GPIO data-ready line, or over the
//! simulator's Unix socket, and the FPGA clock as the time base.
//!
//! Exit codes: 0 clean shutdown (SIGTERM/SIGINT); 2 bad arguments or config file;
//! 3 FPGA start-up failed (device missing, wrong ID, bad geometry); 4 FPGA link lost (the
//! simulator closed its socket); 1 anything else.

// Tests may unwrap: a panic there is a failed test.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod app;

use app::config::{Backend, Cli, Options};
use app::run::Exit;
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let opts = match Options::resolve(cli) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("firmware-odroid: {e}");
            return ExitCode::from(Exit::Usage as u8);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&opts.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let code = match opts.fpga {
        Backend::Sim => app::backend::sim(&opts),
        Backend::Spidev => app::backend::spidev(&opts),
        Backend::Rppal => app::backend::rppal(&opts),
    };
    ExitCode::from(code as u8)
}
