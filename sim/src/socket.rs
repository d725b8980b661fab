//! The simulated FPGA served on a Unix stream socket (FPGA.md §Simulator socket) for an
//! external firmware binary, with the FPGA contract crate's server. The model is advanced to
//! the server's clock (a [`TickSource`]: the held-then-running device clock of a run, or a plain
//! [`WallClock`]) before every request.

use crate::fpga::{SharedFpga, lock};
use flyscan_fpga_contract::socket::{SocketTarget, serve_connection};
use std::io;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A clock the socket server advances the model to.
pub trait TickSource: Clone + Send + Sync + 'static {
    /// Ticks now.
    fn ticks(&self) -> u64;
}

/// Maps wall-clock time to clock ticks (times a speed factor).
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    start: Instant,
    ticks_per_s: f64,
}

impl WallClock {
    /// Tick 0 now; `speed` simulated seconds pass per wall second.
    pub fn new(clock_hz: u64, speed: f64) -> Self {
        Self {
            start: Instant::now(),
            ticks_per_s: clock_hz as f64 * speed.max(1e-6),
        }
    }

    /// Ticks elapsed.
    pub fn ticks(&self) -> u64 {
        (self.start.elapsed().as_secs_f64() * self.ticks_per_s) as u64
    }

    /// Ticks per wall second.
    pub fn ticks_per_s(&self) -> f64 {
        self.ticks_per_s
    }
}

impl TickSource for WallClock {
    fn ticks(&self) -> u64 {
        WallClock::ticks(self)
    }
}

/// A running socket server; dropping it does not stop it, call [`SocketServer::stop`].
#[derive(Debug)]
pub struct SocketServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SocketServer {
    /// Binds `path` (replacing a stale socket file) and serves `fpga` on a background thread,
    /// one thread per connection.
    pub fn start<C: TickSource>(path: &Path, fpga: SharedFpga, clock: C) -> io::Result<Self> {
        if path.exists() {
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let f = fpga.clone();
                        let st = stop2.clone();
                        let c = clock.clone();
                        std::thread::spawn(move || {
                            if let Err(e) = serve_client(s, &f, &c, &st) {
                                eprintln!("sim: FPGA socket closed: {e}");
                            }
                        });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(Self {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }

    /// Stops accepting, removes the socket file.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The shared model at the server's clock, as the socket's target.
struct Clocked<'a, C> {
    fpga: &'a SharedFpga,
    clock: &'a C,
}

impl<C: TickSource> SocketTarget for Clocked<'_, C> {
    fn transaction(&mut self, mosi: &[u8]) -> io::Result<Vec<u8>> {
        // Lock before reading the clock (see `DeviceClock::release`).
        let mut f = lock(self.fpga);
        f.advance_to(self.clock.ticks());
        f.spi_exchange(mosi)
    }

    fn data_ready(&mut self) -> io::Result<bool> {
        let mut f = lock(self.fpga);
        f.advance_to(self.clock.ticks());
        match f.failure() {
            Some(e) => Err(io::Error::other(e.to_owned())),
            None => Ok(f.data_ready()),
        }
    }
}

/// Serves one client until it quits, disconnects, sends garbage, or `stop` is set.
pub fn serve_client(
    s: std::os::unix::net::UnixStream,
    fpga: &SharedFpga,
    clock: &impl TickSource,
    stop: &AtomicBool,
) -> io::Result<()> {
    serve_connection(s, &mut Clocked { fpga, clock }, stop).map(|_| ())
}
