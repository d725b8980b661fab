//! The FPGA model served on a Unix stream socket (FPGA.md §Simulator socket) for an external
//! firmware binary: `'T'` transactions, `'R'` data-ready, `'Q'` quit. The model is advanced to
//! the server's clock (a [`TickSource`]: the held-then-running device clock of a run, or a plain
//! [`WallClock`]) before every request.

use crate::fpga::{SharedFpga, lock};
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Longest operation accepted from a client (a READ_EDGES of 256 events is ~3.6 KiB).
const MAX_OP_LEN: u32 = 1 << 20;

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
                            let _ = serve_connection(s, &f, &c, &st);
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

fn read_u8(s: &mut impl Read) -> io::Result<u8> {
    let mut b = [0u8; 1];
    s.read_exact(&mut b)?;
    Ok(b[0])
}

/// Serves one client until it quits, disconnects, or sends garbage.
pub fn serve_connection(
    mut s: UnixStream,
    fpga: &SharedFpga,
    clock: &impl TickSource,
    stop: &AtomicBool,
) -> io::Result<()> {
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    loop {
        let req = match read_u8(&mut s) {
            Ok(b) => b,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        match req {
            b'T' => {
                let reply = handle_transaction(&mut s, fpga, clock)?;
                s.write_all(&reply)?;
            }
            b'R' => {
                // Lock before reading the clock (see `DeviceClock::release`).
                let mut f = lock(fpga);
                f.advance_to(clock.ticks());
                let v = u8::from(f.data_ready());
                drop(f);
                s.write_all(&[v])?;
            }
            b'Q' => return Ok(()),
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unknown request byte {other:#04x}"),
                ));
            }
        }
    }
}

/// Reads one `'T'` request body and returns its response bytes.
pub fn handle_transaction(
    s: &mut impl Read,
    fpga: &SharedFpga,
    clock: &impl TickSource,
) -> io::Result<Vec<u8>> {
    // The request is read whole before the model is touched, so a slow client cannot stall
    // other users of the model.
    let n_ops = read_u8(s)?;
    let mut mosi = Vec::new();
    // (offset in mosi, length) of each operation that returns bytes.
    let mut reads = Vec::new();
    for _ in 0..n_ops {
        let kind = read_u8(s)?;
        let mut lb = [0u8; 4];
        s.read_exact(&mut lb)?;
        let len = u32::from_le_bytes(lb);
        if kind != 4 && len > MAX_OP_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("operation of {len} bytes exceeds the limit"),
            ));
        }
        let len = len as usize;
        match kind {
            0 | 2 | 3 => {
                let at = mosi.len();
                mosi.resize(at + len, 0);
                s.read_exact(&mut mosi[at..])?;
                if kind != 0 {
                    reads.push((at, len));
                }
            }
            1 => {
                reads.push((mosi.len(), len));
                mosi.resize(mosi.len() + len, 0);
            }
            4 => {}
            k => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unknown operation kind {k}"),
                ));
            }
        }
    }
    let miso = {
        // Lock before reading the clock (see `DeviceClock::release`).
        let mut f = lock(fpga);
        f.advance_to(clock.ticks());
        f.spi_exchange(&mosi)
    };
    let mut out = Vec::new();
    for (at, len) in reads {
        out.extend_from_slice(&miso[at..at + len]);
    }
    Ok(out)
}
