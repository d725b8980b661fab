//! The serial port stage: opens the port, forwards received bytes, writes host frames, and
//! reopens with exponential backoff when the port disappears (USB unplug, device reboot).

use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_serial::SerialPortBuilderExt;

/// What the serial task reports.
#[derive(Debug)]
pub enum SerialEvent {
    /// The port is open (after start-up or a reopen).
    Opened,
    /// Bytes received.
    Bytes(Vec<u8>),
    /// The port failed or vanished; the task is retrying.
    Closed {
        /// Why.
        reason: String,
    },
    /// The port could not be opened (first failure, and whenever the error changes); the task
    /// keeps retrying.
    OpenFailed {
        /// The OS error.
        error: String,
    },
}

/// Serial port settings.
#[derive(Debug, Clone)]
pub struct SerialConfig {
    /// Device path (a symlink is followed at every open, so it may be re-pointed).
    pub path: PathBuf,
    /// Baud rate (ignored by pseudo-terminals).
    pub baud: u32,
    /// First reopen delay; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest reopen delay.
    pub max_backoff: Duration,
}

impl SerialConfig {
    /// Settings with the default backoff (50 ms doubling to 2 s).
    pub fn new(path: impl Into<PathBuf>, baud: u32) -> Self {
        Self {
            path: path.into(),
            baud,
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
        }
    }
}

/// Runs the port until `tx_out` (the host frames to write) is closed. Events go to `events`.
/// Returns the number of reopens after failures.
pub async fn run(
    cfg: SerialConfig,
    mut to_device: mpsc::Receiver<Vec<u8>>,
    events: mpsc::Sender<SerialEvent>,
) -> u64 {
    let mut reopens = 0u64;
    let mut backoff = cfg.min_backoff;
    let mut buf = vec![0u8; 16 * 1024];
    let mut last_error: Option<String> = None;
    loop {
        let path = cfg.path.to_string_lossy().into_owned();
        let port = tokio_serial::new(path.clone(), cfg.baud).open_native_async();
        let mut port = match port {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(%path, error = %e, ?backoff, "serial open failed; retrying");
                let error = e.to_string();
                if last_error.as_deref() != Some(error.as_str()) {
                    tracing::warn!(%path, %error, "serial port cannot be opened; retrying with backoff");
                    if events
                        .send(SerialEvent::OpenFailed {
                            error: error.clone(),
                        })
                        .await
                        .is_err()
                    {
                        return reopens;
                    }
                    last_error = Some(error);
                }
                // Drop frames queued while the port is away; commands time out and are retried
                // at a higher level.
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    msg = to_device.recv() => if msg.is_none() { return reopens; }
                }
                backoff = (backoff * 2).min(cfg.max_backoff);
                continue;
            }
        };
        last_error = None;
        backoff = cfg.min_backoff;
        tracing::info!(%path, "serial port open");
        if events.send(SerialEvent::Opened).await.is_err() {
            return reopens;
        }
        let reason = loop {
            tokio::select! {
                r = port.read(&mut buf) => match r {
                    Ok(0) => break "end of file".to_owned(),
                    Ok(n) => {
                        if events.send(SerialEvent::Bytes(buf[..n].to_vec())).await.is_err() {
                            return reopens;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => break e.to_string(),
                },
                msg = to_device.recv() => match msg {
                    Some(bytes) => {
                        if let Err(e) = port.write_all(&bytes).await {
                            break e.to_string();
                        }
                    }
                    None => return reopens,
                },
            }
        };
        reopens += 1;
        tracing::warn!(%path, %reason, reopens, "serial port lost; reopening");
        if events.send(SerialEvent::Closed { reason }).await.is_err() {
            return reopens;
        }
        tokio::time::sleep(backoff).await;
    }
}
