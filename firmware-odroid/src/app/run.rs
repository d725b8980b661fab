//! The I/O loop: serial bytes in → `receive`, FPGA clock → `poll`, `transmit` → serial bytes
//! out. The serial port is reopened with backoff after errors (a missing or unplugged adapter
//! never makes the program exit or spin); FPGA errors are logged and retried with backoff, except
//! those the backend calls fatal. SIGTERM/SIGINT end the loop cleanly.

use super::config::Options;
use super::serial_port::SerialPort;
use embedded_hal::digital::InputPin;
use embedded_hal::spi::SpiDevice;
use flyscan_firmware::{Firmware, FpgaError};
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tracing::{debug, error, info, warn};

/// Process exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Clean shutdown on a signal.
    Clean = 0,
    /// Unexpected failure.
    Other = 1,
    /// Bad arguments or configuration.
    Usage = 2,
    /// The FPGA could not be opened or failed its start-up checks.
    FpgaInit = 3,
    /// The FPGA link went away for good.
    FpgaLost = 4,
}

/// Longest wait between serial reopen attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Idle sleep when nothing happened in one loop turn.
const IDLE: Duration = Duration::from_micros(200);

/// Runs until a signal (Ok, firmware handed back) or a fatal FPGA error (Err(exit code)).
pub fn run<SPI, DRDY>(
    mut fw: Box<Firmware<SPI, DRDY>>,
    opts: &Options,
    fatal: impl Fn(&FpgaError<SPI, DRDY>) -> bool,
) -> Result<Box<Firmware<SPI, DRDY>>, Exit>
where
    SPI: SpiDevice,
    DRDY: InputPin,
{
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            error!("cannot install the handler for signal {sig}: {e}");
            return Err(Exit::Other);
        }
    }
    let info = fw.fpga_info();
    info!(
        "FPGA design {}.{}: {} channels, {}-bit counters, {} Hz, FIFO {}, snapshots {}",
        info.version >> 16,
        info.version & 0xFFFF,
        info.n_channels,
        info.counter_bits,
        info.clock_hz,
        info.edge_fifo_depth,
        info.snapshot_depth
    );
    let mut serial = Serial::new(opts.serial.clone(), opts.baud);
    let mut rx = [0u8; 4096];
    let mut tx = [0u8; 4096];
    let (mut tx_at, mut tx_len) = (0usize, 0usize);
    let mut fpga_errors = 0u32;
    let mut next_report = Instant::now() + Duration::from_secs(10);
    while !stop.load(Ordering::Relaxed) {
        let mut busy = false;
        if let Some(port) = serial.port() {
            match port.read(&mut rx) {
                Ok(0) => {}
                Ok(n) => {
                    fw.receive(&rx[..n]);
                    busy = true;
                }
                Err(e) if is_timeout(&e) => {}
                Err(e) => serial.failed("read", &e),
            }
        }
        let polled = fw.fpga_time().and_then(|now| fw.poll(now));
        match polled {
            Ok(st) => {
                if fpga_errors > 0 {
                    info!("FPGA link recovered after {fpga_errors} errors");
                }
                fpga_errors = 0;
                busy |= st.edges > 0 || st.more;
            }
            Err(e) => {
                if fatal(&e) {
                    error!("FPGA link lost: {e}");
                    return Err(Exit::FpgaLost);
                }
                fpga_errors += 1;
                if fpga_errors == 1 || fpga_errors.is_multiple_of(1000) {
                    warn!("FPGA error ({fpga_errors} in a row): {e}");
                }
                // Back off up to 100 ms so a dead bus does not spin the CPU.
                std::thread::sleep(Duration::from_millis(u64::from(fpga_errors.min(100))));
            }
        }
        // Without a port the queue fills and batches wait (counted by the core), by design.
        if let Some(port) = serial.port() {
            if tx_at == tx_len {
                tx_len = fw.transmit(&mut tx);
                tx_at = 0;
            }
            if tx_at < tx_len {
                match port.write(&tx[tx_at..tx_len]) {
                    Ok(n) => {
                        tx_at += n;
                        busy = true;
                    }
                    Err(e) if is_timeout(&e) => {}
                    Err(e) => serial.failed("write", &e),
                }
            }
        }
        if Instant::now() >= next_report {
            next_report += Duration::from_secs(10);
            let h = fw.stats();
            let c = fw.counters();
            info!(
                state = ?h.state, position = h.position, points = h.points,
                quad_errors = h.quad_errors, jumps = h.position_jumps,
                fifo_overruns = h.fifo_overruns, frames = h.frames_sent, resends = h.resends,
                rx_errors = h.rx_errors, naks = h.naks, tx_dropped = c.tx_dropped,
                tx_stalls = c.tx_stalls, "health"
            );
        }
        if !busy {
            std::thread::sleep(IDLE);
        }
    }
    info!("signal received, shutting down");
    // Best effort: let queued bytes out for up to 200 ms.
    let deadline = Instant::now() + Duration::from_millis(200);
    while let Some(port) = serial.port() {
        if Instant::now() >= deadline {
            break;
        }
        if tx_at == tx_len {
            tx_len = fw.transmit(&mut tx);
            tx_at = 0;
            if tx_len == 0 {
                break;
            }
        }
        match port.write(&tx[tx_at..tx_len]) {
            Ok(n) => tx_at += n,
            Err(e) if is_timeout(&e) => std::thread::sleep(IDLE),
            Err(_) => break,
        }
    }
    Ok(fw)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// The serial port with reopen-on-error and exponential backoff.
struct Serial {
    path: String,
    baud: u32,
    port: Option<SerialPort>,
    retry_at: Instant,
    backoff: Duration,
}

impl Serial {
    fn new(path: String, baud: u32) -> Self {
        Self {
            path,
            baud,
            port: None,
            retry_at: Instant::now(),
            backoff: Duration::from_millis(100),
        }
    }

    /// The open port, opening it when the backoff allows.
    fn port(&mut self) -> Option<&mut SerialPort> {
        if self.port.is_none() && Instant::now() >= self.retry_at {
            // Non-blocking: reads and writes never stall the loop.
            match SerialPort::open(&self.path, self.baud) {
                Ok(p) => {
                    info!("serial port {} open at {} Bd", self.path, self.baud);
                    self.backoff = Duration::from_millis(100);
                    self.port = Some(p);
                }
                Err(e) => {
                    warn!(
                        "cannot open serial port {}: {e}; retrying in {:?}",
                        self.path, self.backoff
                    );
                    self.retry_at = Instant::now() + self.backoff;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        self.port.as_mut()
    }

    fn failed(&mut self, what: &str, e: &io::Error) {
        warn!("serial {what} on {} failed: {e}; reopening", self.path);
        debug!("closing {}", self.path);
        self.port = None;
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }
}
