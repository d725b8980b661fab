//! The tokio shell around the core: moves bytes between the serial port and the core, control
//! writes from the records into it, its effects out to the records ([`Sink`]) and the settings
//! file. Nothing here decides anything: every decision is the core's.

use crate::core::{ControlWrite, Controls, Core, Effect, Image, RowBlock, ScanRecord};
use crate::serial::{self, SerialConfig, SerialEvent};
use crate::settings_file::{Saved, SavedControls, SavedScan, SettingsFile};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Where the core's outputs go (the IOC's records; a recorder in tests).
pub trait Sink {
    /// A new scan of `expected` points: empty every waveform (`mask`: its channels).
    fn scan_started(&mut self, mask: u32, expected: u64);
    /// Rows to show.
    fn rows(&mut self, rows: &RowBlock);
    /// Show the arrays now if due (`end`: the scan ended).
    fn post(&mut self, now: Instant, end: bool);
    /// The scalar values.
    fn image(&mut self, image: &Image);
    /// Write `Arm` back to 0.
    fn reset_arm(&mut self);
    /// Write `Abort` back to 0.
    fn reset_abort(&mut self);
    /// The control values as written (descriptions follow them, e.g. channel roles).
    fn controls(&mut self, controls: &Controls);
}

/// How often the core's timers run.
const TICK: Duration = Duration::from_millis(20);
/// Shortest time between two writes of the settings file.
const SAVE_EVERY: Duration = Duration::from_millis(200);

/// Writes the settings file on its own thread: an fsync can take tens of milliseconds on a busy
/// disk, and the driver's loop carries every point to the records. Writes are applied in order;
/// when several are queued only the newest is written.
struct Writer {
    tx: Option<std::sync::mpsc::Sender<Saved>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Set by the thread when a write failed: the saver sends again.
    failed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Writer {
    fn start(file: SettingsFile) -> Self {
        use std::sync::atomic::Ordering;
        let (tx, rx) = std::sync::mpsc::channel::<Saved>();
        let failed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = failed.clone();
        let thread = std::thread::Builder::new()
            .name("settings-writer".into())
            .spawn(move || {
                while let Ok(mut s) = rx.recv() {
                    while let Ok(newer) = rx.try_recv() {
                        s = newer;
                    }
                    match file.store(&s) {
                        Ok(()) => flag.store(false, Ordering::Relaxed),
                        Err(e) => {
                            flag.store(true, Ordering::Relaxed);
                            tracing::error!(file = %file.path().display(), error = %e, "cannot write the settings file");
                        }
                    }
                }
            });
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the settings writer: settings are not saved");
                None
            }
        };
        Self {
            tx: thread.as_ref().map(|_| tx),
            thread,
            failed,
        }
    }

    fn send(&self, s: Saved) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(s);
        }
    }

    /// True (once) after a write failed.
    fn take_failure(&self) -> bool {
        self.failed
            .swap(false, std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes what is queued and stops the thread.
    fn finish(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Keeps the settings file in step with the core.
struct Saver {
    writer: Writer,
    saved: Option<Saved>,
    scan: Option<ScanRecord>,
    last: Option<Instant>,
}

impl Saver {
    fn due(&self, controls: &Controls, now: Instant) -> Option<Saved> {
        let want = Saved {
            controls: SavedControls::from(controls),
            scan: self.scan.as_ref().map(SavedScan::from),
        };
        if self.saved.as_ref() == Some(&want) {
            return None;
        }
        let spaced = self
            .last
            .is_none_or(|t| now.saturating_duration_since(t) >= SAVE_EVERY);
        // A scan record is written at once: it is what a restart needs.
        let scan_changed = self.saved.as_ref().map(|s| s.scan) != Some(want.scan);
        (spaced || scan_changed).then_some(want)
    }

    fn save(&mut self, controls: &Controls, now: Instant) {
        if self.writer.take_failure() {
            // Not on disk: write it again when due.
            self.saved = None;
        }
        if let Some(want) = self.due(controls, now) {
            self.writer.send(want.clone());
            self.saved = Some(want);
            self.last = Some(now);
        }
    }
}

/// Runs the driver until `shutdown` completes.
pub async fn run(
    mut core: Core,
    serial_cfg: SerialConfig,
    mut writes: mpsc::UnboundedReceiver<ControlWrite>,
    sink: &mut dyn Sink,
    settings: Option<(SettingsFile, Option<Saved>)>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut saver = settings.map(|(file, saved)| Saver {
        scan: saved.as_ref().and_then(|s| s.scan).and_then(|s| s.record()),
        saved,
        writer: Writer::start(file),
        last: None,
    });
    let (to_port, port_rx) = mpsc::channel::<Vec<u8>>(1024);
    let (ev_tx, mut events) = mpsc::channel(1024);
    let serial_task = tokio::spawn(serial::run(serial_cfg, port_rx, ev_tx));
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    sink.image(core.image());
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            ev = events.recv() => match ev {
                Some(SerialEvent::Opened) => core.port_opened(Instant::now()),
                Some(SerialEvent::Bytes(b)) => core.bytes(&b, Instant::now()),
                Some(SerialEvent::Closed { reason }) => core.port_closed(&reason, Instant::now()),
                Some(SerialEvent::OpenFailed { error }) => core.port_failed(&error, Instant::now()),
                None => break,
            },
            w = writes.recv() => match w {
                Some(w) => {
                    core.write(w, Instant::now());
                    // Every write queued behind it too, in order, before anything else.
                    while let Ok(w) = writes.try_recv() {
                        core.write(w, Instant::now());
                    }
                }
                None => break,
            },
            _ = tick.tick() => core.tick(Instant::now()),
        }
        let now = Instant::now();
        let (mut reset_arm, mut reset_abort) = (false, false);
        for e in core.take_effects() {
            match e {
                Effect::Send(bytes) => {
                    if to_port.try_send(bytes).is_err() {
                        tracing::warn!("serial queue full: frame dropped (the command is retried)");
                    }
                }
                Effect::ScanStarted { config, .. } => {
                    sink.scan_started(config.channel_mask, config.total_points());
                }
                Effect::Rows(r) => sink.rows(&r),
                Effect::ResetArm => reset_arm = true,
                Effect::ResetAbort => reset_abort = true,
                Effect::Record(r) => {
                    if let Some(s) = saver.as_mut() {
                        s.scan = r;
                    }
                }
            }
        }
        // Arrays, then scalars (Status last), then Arm: a client that sees Arm back at 0 or
        // Status Done reads the final arrays.
        sink.post(now, reset_arm);
        sink.image(core.image());
        sink.controls(core.controls());
        if reset_arm {
            sink.reset_arm();
        }
        if reset_abort {
            sink.reset_abort();
        }
        if let Some(s) = saver.as_mut() {
            s.save(core.controls(), now);
        }
    }
    if let Some(s) = saver.as_mut() {
        // Whatever is pending, now.
        s.last = None;
        s.save(core.controls(), Instant::now());
        s.writer.finish();
    }
    drop(to_port);
    let _ = tokio::time::timeout(Duration::from_secs(1), serial_task).await;
}
