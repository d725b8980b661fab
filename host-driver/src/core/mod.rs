//! The driver core: one sans-I/O state machine from control writes to device frames and back.
//!
//! Inputs — device bytes, control writes, port up/down, the passing of time — go in through
//! the methods of [`Core`]; each is turned into a [`phase::On`]-level decision by one transition
//! function over (phase, input) ([`Core::step`]). Outputs are [`Effect`]s (frames to send,
//! rows to show, Arm/Abort to reset, the scan record to persist) and the [`Image`] of the
//! driver-owned scalar records. The IOC shell ([`crate::ioc`]) only moves bytes and values;
//! tests drive this core with no I/O at all.
//!
//! Link state is kept apart from the scan phase: the device session and liveness live in the
//! [`Assembler`] and [`Link`], the scan in [`Phase`] and [`ActiveScan`].

pub mod controls;
pub mod image;
pub mod phase;
pub mod scan;

pub use controls::{Calibration, ControlWrite, Controls};
pub use image::{Image, Status};
pub use phase::Phase;
pub use scan::{ActiveScan, RowBlock};

use crate::assembler::sequencer::SequencerConfig;
use crate::assembler::{Assembler, Event, OrderedFrame};
use crate::host_message::{HostFramer, HostMessage};
use flyscan_protocol::frame::MessageType;
use flyscan_protocol::limits::{MAX_CHUNK_POSITIONS, line_bytes_per_sec};
use flyscan_protocol::{
    CommandReply, DeviceState, DoneReason, Health, Limits, Message, NakCode, ScanArmed, ScanConfig,
    ScanDone, TriggerMode,
};
use std::time::{Duration, Instant};

/// Settings of the core.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Serial port, for messages.
    pub port: String,
    /// Line rate (sizes the resend timeouts).
    pub baud: u32,
    /// Wait for a command reply before sending it again.
    pub reply_timeout: Duration,
    /// Tries of a command before giving up.
    pub reply_attempts: u32,
    /// Time between two pings (PROTOCOL.md §Liveness: at least one a second).
    pub ping_interval: Duration,
    /// The device counts as connected while a frame arrived within this window.
    pub connected_window: Duration,
    /// A scan whose device is silent this long ends with an error.
    pub scan_timeout: Duration,
    /// Points per waveform (the records' NELM): the longest scan shown.
    pub capacity: u64,
    /// Positions the `Positions` record holds as a valid list (its NELM − 1: one more element
    /// shows that a client wrote a list the record had to cut).
    pub list_capacity: u32,
}

impl CoreConfig {
    /// Defaults for a port, with waveforms of `capacity` points.
    pub fn new(port: impl Into<String>, capacity: u64) -> Self {
        Self {
            port: port.into(),
            baud: flyscan_protocol::limits::DEFAULT_BAUD,
            reply_timeout: Duration::from_secs(1),
            reply_attempts: 3,
            ping_interval: Duration::from_millis(500),
            connected_window: Duration::from_secs(2),
            scan_timeout: Duration::from_secs(30),
            capacity,
            list_capacity: u32::try_from(capacity).unwrap_or(u32::MAX),
        }
    }
}

/// The scan a driver records so that, restarted while the device scans, it can take the scan
/// up again (PROTOCOL.md §What the host accepts: "the scan the host recorded").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanRecord {
    /// Device session the scan runs in.
    pub boot_id: u32,
    /// Its id.
    pub scan_id: u32,
    /// Its configuration.
    pub config: ScanConfig,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Write these bytes (one frame) to the serial port.
    Send(Vec<u8>),
    /// A new scan starts: empty every waveform.
    ScanStarted {
        /// Its id.
        scan_id: u32,
        /// Its configuration.
        config: ScanConfig,
    },
    /// Show these rows (appended at `first`).
    Rows(RowBlock),
    /// Write `Arm` back to 0.
    ResetArm,
    /// Write `Abort` back to 0.
    ResetAbort,
    /// Keep this (or, `None`, no) scan record across a restart.
    Record(Option<ScanRecord>),
}

/// A command waiting for its reply.
#[derive(Debug, Clone)]
struct Pending {
    seq: u32,
    msg: HostMessage,
    sent_at: Instant,
    attempts: u32,
}

/// Port and liveness state.
#[derive(Debug, Clone, Default)]
pub struct Link {
    /// The serial port is open.
    pub port_open: bool,
    /// Last valid frame of the current session.
    pub last_rx: Option<Instant>,
    /// Last ping sent.
    pub last_ping: Option<Instant>,
    /// Since when the device has been silent while a scan is on it.
    pub silent_since: Option<Instant>,
}

/// The driver core (see the module doc).
#[derive(Debug)]
pub struct Core {
    cfg: CoreConfig,
    asm: Assembler,
    framer: HostFramer,
    controls: Controls,
    phase: Phase,
    scan: Option<ActiveScan>,
    next_scan_id: u32,
    /// The last scan that ended: its late frames are dropped without a word.
    finished: Option<u32>,
    pending: Option<Pending>,
    link: Link,
    ping_token: u32,
    image: Image,
    effects: Vec<Effect>,
    /// The scan recorded before a restart, until it is taken up or found over.
    record: Option<ScanRecord>,
    /// A scan the device runs that this driver does not know was already reported.
    foreign_reported: Option<u32>,
}

/// Seconds since the epoch, as the first scan id: a restarted driver does not reuse recent
/// ids (device frames of an old scan are then never mistaken for a new one).
fn first_scan_id() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs() as u32)
}

impl Core {
    /// A core with no device yet.
    pub fn new(cfg: CoreConfig) -> Self {
        let asm = Assembler::new(SequencerConfig {
            line_bytes_per_sec: line_bytes_per_sec(cfg.baud),
            ..SequencerConfig::default()
        });
        let image = Image {
            message: format!("waiting for the device on {}", cfg.port),
            ..Image::default()
        };
        Self {
            cfg,
            asm,
            framer: HostFramer::new(0),
            controls: Controls::default(),
            phase: Phase::Idle,
            scan: None,
            next_scan_id: first_scan_id(),
            finished: None,
            pending: None,
            link: Link::default(),
            ping_token: 0,
            image,
            effects: Vec::new(),
            record: None,
            foreign_reported: None,
        }
    }

    /// Sets the first scan id (tests, reproducible runs).
    pub fn set_next_scan_id(&mut self, id: u32) {
        self.next_scan_id = id;
    }

    /// The scan record kept from before a restart (see [`ScanRecord`]).
    pub fn restore_record(&mut self, record: ScanRecord) {
        self.record = Some(record);
    }

    /// The driver-owned scalar values now.
    pub fn image(&self) -> &Image {
        &self.image
    }

    /// The phase now.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The scan in progress, if any.
    pub fn scan(&self) -> Option<&ActiveScan> {
        self.scan.as_ref()
    }

    /// The configuration as written.
    pub fn controls(&self) -> &Controls {
        &self.controls
    }

    /// Link-layer counters.
    pub fn link_stats(&self) -> crate::assembler::AssemblerStats {
        self.asm.stats()
    }

    /// Effects produced since the last call, in order.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    // ---- inputs ----------------------------------------------------------------------------

    /// The serial port opened.
    pub fn port_opened(&mut self, now: Instant) {
        self.link.port_open = true;
        let mut ev = Vec::new();
        self.asm.reconnected(now, &mut ev);
        if !self.image.connected {
            self.image.message = format!("{} open; waiting for the device", self.cfg.port);
        }
        self.events(ev, now);
    }

    /// The serial port closed (the shell reopens it).
    pub fn port_closed(&mut self, reason: &str, now: Instant) {
        self.link.port_open = false;
        let what = format!("serial port {} lost ({reason}); reopening", self.cfg.port);
        if matches!(
            self.phase,
            Phase::Configuring | Phase::Loading | Phase::Arming
        ) {
            self.fail(&what, now);
        } else {
            self.image.message = what;
        }
        self.refresh(now);
    }

    /// The serial port could not be opened (the shell retries).
    pub fn port_failed(&mut self, error: &str, now: Instant) {
        self.link.port_open = false;
        self.image.message = format!(
            "cannot open serial port {}: {error}; retrying",
            self.cfg.port
        );
        self.refresh(now);
    }

    /// Bytes from the device.
    pub fn bytes(&mut self, data: &[u8], now: Instant) {
        let mut ev = Vec::new();
        self.asm.push_bytes(data, now, &mut ev);
        self.events(ev, now);
    }

    /// A client wrote a control record.
    pub fn write(&mut self, w: ControlWrite, now: Instant) {
        if self.controls.apply(&w) {
            return;
        }
        match w {
            ControlWrite::Arm(true) => self.arm(now),
            ControlWrite::Abort(true) => self.abort(now),
            // The driver's own resets of Arm/Abort come back as 0: nothing to do.
            _ => {}
        }
        self.refresh(now);
    }

    /// Periodic work (call every few tens of ms): pings, reply timeouts, resends, liveness.
    pub fn tick(&mut self, now: Instant) {
        let mut ev = Vec::new();
        if self.link.port_open {
            self.asm.tick(now, &mut ev);
            let due = self
                .link
                .last_ping
                .is_none_or(|t| now.saturating_duration_since(t) >= self.cfg.ping_interval);
            if due && self.asm.session().is_some() {
                self.link.last_ping = Some(now);
                self.ping_token = self.ping_token.wrapping_add(1);
                let token = self.ping_token;
                self.send(&HostMessage::Ping { token });
            }
        }
        self.events(ev, now);
        self.retry(now);
        if self.phase.on_device() {
            let since = *self.link.silent_since.get_or_insert(now);
            let heard = self.link.last_rx.map_or(since, |t| t.max(since));
            if now.saturating_duration_since(heard) >= self.cfg.scan_timeout {
                let secs = self.cfg.scan_timeout.as_secs_f64();
                // Best effort: a device that comes back must not scan on unseen.
                self.send(&HostMessage::Abort);
                self.fail(&format!("device silent for {secs:.0} s"), now);
            }
        } else {
            self.link.silent_since = None;
        }
        self.refresh(now);
    }

    // ---- the transition function ----------------------------------------------------------

    /// Applies link events in order.
    fn events(&mut self, events: Vec<Event>, now: Instant) {
        for ev in events {
            self.step(ev, now);
        }
        self.refresh(now);
    }

    /// One link event in the current phase.
    fn step(&mut self, ev: Event, now: Instant) {
        match ev {
            Event::Send(m) => {
                self.send(&m);
            }
            Event::LinkError(e) => tracing::debug!(error = %e, "damaged frame"),
            Event::BadMessage(e) => self.protocol_error(&e),
            Event::FramesLost { first_seq, count } => {
                tracing::warn!(first_seq, count, "device frames lost for good");
            }
            Event::SessionStarted { boot_id, previous } => {
                self.heard(now);
                self.image.device_session = boot_id;
                if previous.is_none()
                    && let Some(r) = self.record.filter(|r| r.boot_id == boot_id)
                {
                    // Restarted while the device scanned: take the scan up before the frames
                    // recovered from the device's ring are placed.
                    self.take_up(r.scan_id, r.config, now);
                }
                if let Some(prev) = previous {
                    self.pending = None;
                    let what =
                        format!("device restarted (session {prev:#010x}, now {boot_id:#010x})");
                    if self.phase.busy() {
                        self.fail(&what, now);
                    } else {
                        self.image.message = what;
                    }
                }
            }
            Event::SeqWentBack { expected, got } => {
                let what = format!(
                    "device sequence number went back from {expected} to {got} within session {:#010x}",
                    self.image.device_session
                );
                self.protocol_error(&what);
                if self.phase.busy() {
                    self.fail(&what, now);
                }
            }
            Event::DeviceInfo(i) => {
                self.heard(now);
                self.image.firmware_version =
                    format!("{}.{}.{}", i.fw_major, i.fw_minor, i.fw_patch);
                self.image.num_channels = i.n_channels;
                self.image.max_points = i.max_points;
                self.image.device_session = i.boot_id;
                if let Some(sc) = self.scan.as_mut().filter(|sc| sc.clock_hz == 0) {
                    sc.clock_hz = i.clock_hz;
                }
            }
            Event::Pong { .. } => self.heard(now),
            Event::Health(h) => {
                self.heard(now);
                self.on_health(&h, now);
            }
            Event::Reply(r) => {
                self.heard(now);
                self.on_reply(r, now);
            }
            Event::Data(f) => {
                self.heard(now);
                self.on_data(f, now);
            }
        }
    }

    fn heard(&mut self, now: Instant) {
        self.link.last_rx = Some(now);
        self.link.silent_since = None;
    }

    fn on_data(&mut self, f: OrderedFrame, now: Instant) {
        let msg = match f.message() {
            Ok(m) => m,
            Err(e) => {
                self.protocol_error(&format!("seq {}: {e}", f.seq));
                return;
            }
        };
        match msg {
            Message::ScanArmed(a) => self.on_scan_armed(a, f.recovered, now),
            Message::PointBatch(b) => {
                let ours = self.scan.as_ref().is_some_and(|s| s.id == b.scan_id);
                if ours && self.phase.awaits_data() {
                    if matches!(self.phase, Phase::Arming | Phase::Armed) {
                        // ScanArmed never came (lost for good); the batch proves the scan runs.
                        self.start_scan(now);
                    }
                    let Some(s) = self.scan.as_mut() else { return };
                    match s.accept_batch(&b) {
                        Ok(rows) => {
                            self.effects.extend(rows.into_iter().map(Effect::Rows));
                            if self.image.status == Status::Armed {
                                self.image.status = Status::Scanning;
                                self.image.message = format!("scan {} running", b.scan_id);
                            }
                            self.continue_list(now);
                        }
                        Err(e) => self.protocol_error(&e.0),
                    }
                } else if self.finished == Some(b.scan_id) {
                    // Late resends of a scan that ended.
                } else if f.recovered {
                    tracing::info!(
                        scan = b.scan_id,
                        "points from before this driver started, of a scan it cannot place"
                    );
                } else {
                    self.protocol_error(&format!(
                        "PointBatch of scan {}, which this driver did not arm",
                        b.scan_id
                    ));
                }
            }
            Message::ScanDone(d) => {
                let ours = self.scan.as_ref().is_some_and(|s| s.id == d.scan_id);
                if ours && self.phase.awaits_data() {
                    self.on_done(&d, "", now);
                } else if self.finished == Some(d.scan_id) || f.recovered {
                } else {
                    self.protocol_error(&format!(
                        "ScanDone of scan {}, which this driver did not arm",
                        d.scan_id
                    ));
                }
            }
            other => self.protocol_error(&format!(
                "seq {}: {:?} is not a data frame",
                f.seq,
                other.msg_type()
            )),
        }
    }

    fn on_scan_armed(&mut self, a: ScanArmed, recovered: bool, now: Instant) {
        let ours = self.scan.as_ref().is_some_and(|s| s.id == a.scan_id);
        match self.phase {
            Phase::Arming | Phase::Armed if ours => {
                let sent = self.scan.as_ref().map(|s| s.config);
                if sent == Some(a.config) {
                    self.start_scan(now);
                } else {
                    let what = format!(
                        "ScanArmed of scan {} carries a configuration other than the one sent",
                        a.scan_id
                    );
                    self.protocol_error(&what);
                    self.send(&HostMessage::Abort);
                    self.fail(&what, now);
                }
            }
            Phase::Idle => {
                let recorded = self.record.is_some_and(|r| {
                    r.scan_id == a.scan_id && Some(r.boot_id) == self.asm.session()
                });
                if recovered || recorded {
                    self.take_up(a.scan_id, a.config, now);
                } else if self.finished != Some(a.scan_id) {
                    self.protocol_error(&format!(
                        "ScanArmed of scan {}, which this driver did not arm",
                        a.scan_id
                    ));
                }
            }
            _ if ours || self.finished == Some(a.scan_id) => {}
            _ => self.protocol_error(&format!(
                "ScanArmed of scan {}, which this driver did not arm",
                a.scan_id
            )),
        }
    }

    /// Takes up a scan the device runs from before this driver started.
    fn take_up(&mut self, scan_id: u32, config: ScanConfig, now: Instant) {
        let clock = self.asm.device_info().map_or(0, |i| i.clock_hz);
        let mut scan = ActiveScan::new(scan_id, config, Vec::new(), clock);
        scan.calibration = self.controls.calibration;
        self.scan = Some(scan);
        self.record = None;
        self.phase = Phase::Armed;
        self.start_scan(now);
        self.image.message = format!("took up scan {scan_id}, running since before this start");
    }

    /// The device confirmed the scan: show it from now on.
    fn start_scan(&mut self, _now: Instant) {
        let Some(s) = self.scan.as_mut() else { return };
        s.started = true;
        self.phase = Phase::Running;
        self.image.scan_id = s.id;
        self.image.status = Status::Armed;
        self.image.busy = true;
        self.image.message = format!("scan {} armed", s.id);
        self.effects.push(Effect::ScanStarted {
            scan_id: s.id,
            config: s.config,
        });
        if let Some(boot_id) = self.asm.session() {
            self.effects.push(Effect::Record(Some(ScanRecord {
                boot_id,
                scan_id: s.id,
                config: s.config,
            })));
        }
    }

    fn on_health(&mut self, h: &Health, now: Instant) {
        self.image.quad_errors = h.quad_errors;
        self.image.position_jumps = h.position_jumps;
        let device_busy = matches!(h.state, DeviceState::Armed | DeviceState::Scanning);
        let ours = self.scan.as_ref().is_some_and(|s| s.id == h.scan_id);
        if ours && self.phase.on_device() && !device_busy && !self.asm.has_gap() {
            // The device finished and nothing is missing, yet no ScanDone came: every frame
            // before this Health was delivered, so the ScanDone was lost for good.
            if self.phase == Phase::Running || self.phase == Phase::Aborting {
                let reason = if self.phase == Phase::Aborting {
                    DoneReason::Aborted
                } else {
                    DoneReason::Completed
                };
                let d = ScanDone {
                    scan_id: h.scan_id,
                    total_points: h.points,
                    reason,
                    error_code: 0,
                };
                self.on_done(
                    &d,
                    "ScanDone never arrived; ended from the device's Health",
                    now,
                );
            }
            return;
        }
        if !device_busy && !ours && self.phase == Phase::Running && !self.asm.has_gap() {
            // The device is idle after another scan: this one is over and will say no more.
            self.fail(
                &format!(
                    "the device no longer runs it (its last scan is {})",
                    h.scan_id
                ),
                now,
            );
            return;
        }
        if device_busy && !ours {
            let recorded = self
                .record
                .is_some_and(|r| r.scan_id == h.scan_id && r.boot_id == h.boot_id);
            // Taken up only once the session's DeviceInfo (its clock) is known.
            if recorded && self.phase == Phase::Idle && self.asm.device_info().is_some() {
                if let Some(r) = self.record {
                    self.take_up(r.scan_id, r.config, now);
                }
            } else if self.foreign_reported != Some(h.scan_id) && !self.phase.busy() {
                self.foreign_reported = Some(h.scan_id);
                self.image.message = format!(
                    "the device runs scan {}, which this driver did not arm; Abort stops it",
                    h.scan_id
                );
            }
        }
        if !device_busy && self.record.is_some() && self.phase == Phase::Idle {
            // The recorded scan is over on the device: nothing to take up.
            self.record = None;
            self.effects.push(Effect::Record(None));
        }
    }

    fn on_reply(&mut self, r: CommandReply, now: Instant) {
        let Some(p) = self.pending.clone() else {
            return;
        };
        if r.request_seq != p.seq {
            return;
        }
        self.pending = None;
        let what = command_name(&p.msg);
        if !r.is_ack() {
            let chunk_had_it = matches!(
                (&p.msg, r.code),
                (HostMessage::PositionChunk { offset, positions }, NakCode::BadChunk)
                    if r.arg as usize == *offset as usize + positions.len()
            );
            if chunk_had_it {
                // A retry of a chunk whose ack was lost: the device has it.
                self.on_chunk_ack(0, now);
                return;
            }
            if matches!(p.msg, HostMessage::Arm { .. }) && r.code == NakCode::Busy && p.attempts > 1
            {
                // A retried Arm whose first copy armed the device (its ack was lost): the
                // device's ScanArmed follows in order.
                self.phase = Phase::Armed;
                return;
            }
            let detail = format!(
                "device refused {what}: {:?} (arg {}) {}",
                r.code, r.arg, r.detail
            );
            if matches!(p.msg, HostMessage::Abort) {
                self.image.message = detail;
            } else {
                self.fail(&detail, now);
            }
            return;
        }
        match (self.phase, &p.msg) {
            (Phase::Configuring, HostMessage::Configure(cfg)) => {
                if cfg.mode == TriggerMode::List {
                    self.phase = Phase::Loading;
                    let window = self.asm.device_info().map_or(0, |i| i.list_window);
                    if let Some(s) = self.scan.as_mut() {
                        s.list_free = window;
                    }
                    self.continue_list(now);
                } else {
                    self.send_arm(now);
                }
            }
            (_, HostMessage::PositionChunk { .. }) => self.on_chunk_ack(r.arg, now),
            (Phase::Arming, HostMessage::Arm { .. }) => {
                self.phase = Phase::Armed;
                self.image.message = format!("scan {} armed on the device", self.scan_id());
                self.continue_list(now);
            }
            _ => {}
        }
    }

    fn on_chunk_ack(&mut self, free: u32, now: Instant) {
        if let Some(s) = self.scan.as_mut() {
            s.list_free = free;
        }
        self.continue_list(now);
    }

    fn send_arm(&mut self, now: Instant) {
        self.phase = Phase::Arming;
        let scan_id = self.scan_id();
        self.command(HostMessage::Arm { scan_id }, now);
    }

    fn scan_id(&self) -> u32 {
        self.scan.as_ref().map_or(0, |s| s.id)
    }

    /// Streams the next list chunk when the device has room (one command in flight at a time);
    /// in `Loading`, arms once the first window is loaded.
    fn continue_list(&mut self, now: Instant) {
        if self.pending.is_some() {
            return;
        }
        let window = self.asm.device_info().map_or(0, |i| i.list_window) as usize;
        let phase = self.phase;
        let Some(s) = self.scan.as_mut() else { return };
        if !s.is_list() {
            return;
        }
        let left = s.list.len() - s.list_sent;
        let mut room = s.list_free as usize;
        if matches!(phase, Phase::Armed | Phase::Running) {
            // During the scan the device frees a slot per preset passed.
            let consumed = usize::try_from(s.next_index).unwrap_or(usize::MAX);
            room = room.max(window.saturating_sub(s.list_sent.saturating_sub(consumed)));
        } else if phase != Phase::Loading {
            return;
        }
        if left == 0 || room == 0 {
            if phase == Phase::Loading {
                // The first window is loaded: arm; the rest streams during the scan.
                self.send_arm(now);
            }
            return;
        }
        let n = room.min(MAX_CHUNK_POSITIONS).min(left);
        let offset = s.list_sent as u32;
        let positions = s.list[s.list_sent..s.list_sent + n].to_vec();
        s.list_sent += n;
        s.list_free = s.list_free.saturating_sub(n as u32);
        self.command(HostMessage::PositionChunk { offset, positions }, now);
    }

    fn on_done(&mut self, d: &ScanDone, note: &str, now: Instant) {
        let Some(s) = self.scan.as_mut() else { return };
        match s.accept_done(d) {
            Ok(tail) => {
                if !tail.is_empty() {
                    self.effects.push(Effect::Rows(tail));
                }
                let (status, what) = match d.reason {
                    DoneReason::Completed => (Status::Done, "done".to_owned()),
                    DoneReason::Aborted => (Status::Aborted, "aborted".to_owned()),
                    DoneReason::Error => (
                        Status::Error,
                        format!("stopped by device error {}", d.error_code),
                    ),
                };
                let mut msg = format!(
                    "scan {} {what}: {} of {} points, {} lost",
                    d.scan_id, s.captured, s.expected, s.lost
                );
                if !note.is_empty() {
                    msg.push_str("; ");
                    msg.push_str(note);
                }
                self.end(status, msg, now);
            }
            Err(e) => {
                self.protocol_error(&e.0);
                self.fail(&e.0, now);
            }
        }
    }

    // ---- control writes --------------------------------------------------------------------

    fn arm(&mut self, now: Instant) {
        if self.phase.busy() {
            // Refused in words only: the running scan's Status and Arm stay as they are.
            self.image.message = format!(
                "Arm ignored: scan {} is {} (Abort it first)",
                self.scan_id(),
                self.phase.to_string().to_lowercase()
            );
            return;
        }
        let refuse = |core: &mut Self, why: String| {
            core.image.status = Status::Error;
            core.image.message = format!("Arm refused: {why}");
            core.effects.push(Effect::ResetArm);
        };
        let Some(info) = self.asm.device_info().copied() else {
            refuse(self, format!("no device answers on {}", self.cfg.port));
            return;
        };
        if !self.image.connected {
            refuse(
                self,
                format!("the device on {} does not answer", self.cfg.port),
            );
            return;
        }
        let limits = Limits {
            n_channels: info.n_channels,
            // A list is also bounded by its record (one element short of full, so that a list
            // the record had to cut is refused); a start/step/count scan only by the device and
            // the waveforms.
            max_points: if self.controls.mode == 1 {
                info.max_points.min(self.cfg.list_capacity)
            } else {
                info.max_points
            },
            list_window: info.list_window,
            capacity: self.cfg.capacity,
            min_period_ticks: flyscan_protocol::limits::min_period_ticks(info.clock_hz),
        };
        match self.controls.scan(&limits, info.clock_hz) {
            Err(e) => refuse(self, e),
            Ok((cfg, list)) => {
                let id = self.next_scan_id;
                self.next_scan_id = id.wrapping_add(1).max(1);
                let mut scan = ActiveScan::new(id, cfg, list, info.clock_hz);
                scan.calibration = self.controls.calibration;
                self.scan = Some(scan);
                self.phase = Phase::Configuring;
                self.image.busy = true;
                self.image.status = Status::Idle;
                self.image.message = format!("configuring scan {id}");
                self.command(HostMessage::Configure(cfg), now);
            }
        }
    }

    fn abort(&mut self, now: Instant) {
        self.effects.push(Effect::ResetAbort);
        match self.phase {
            Phase::Idle => {
                // The device may run a scan this driver does not know (another host, a driver
                // restarted past its ring): Abort is always passed on.
                self.send(&HostMessage::Abort);
                self.image.message = "Abort sent: no scan of this driver was armed".into();
            }
            Phase::Configuring | Phase::Loading | Phase::Arming => {
                self.send(&HostMessage::Abort);
                let id = self.scan_id();
                self.end(
                    Status::Aborted,
                    format!("scan {id} aborted before it was armed"),
                    now,
                );
            }
            Phase::Armed | Phase::Running => {
                self.phase = Phase::Aborting;
                self.image.message = format!("aborting scan {}", self.scan_id());
                self.command(HostMessage::Abort, now);
            }
            Phase::Aborting => {
                self.image.message = format!("scan {} is being aborted", self.scan_id());
            }
        }
    }

    // ---- endings ---------------------------------------------------------------------------

    /// The scan ends without its totals (error): what has not arrived is lost.
    fn fail(&mut self, why: &str, now: Instant) {
        let Some(s) = self.scan.as_mut() else {
            self.image.status = Status::Error;
            self.image.message = why.to_owned();
            return;
        };
        let id = s.id;
        let mut msg = format!("scan {id} failed: {why}");
        if s.started {
            let rest = s.abandon();
            if !rest.is_empty() {
                self.effects.push(Effect::Rows(rest));
            }
            msg.push_str(&format!(
                "; {} of {} points, {} lost",
                s.captured, s.expected, s.lost
            ));
        }
        self.end(Status::Error, msg, now);
    }

    fn end(&mut self, status: Status, message: String, now: Instant) {
        tracing::info!(?status, %message, "scan ended");
        let started = self.scan.as_ref().is_some_and(|s| s.started);
        self.finished = self.scan.as_ref().map(|s| s.id);
        if !started {
            // Nothing of it was shown: the waveforms keep the scan before.
            self.scan = None;
        }
        self.phase = Phase::Idle;
        self.pending = None;
        self.image.status = status;
        self.image.message = message;
        self.image.busy = false;
        self.effects.push(Effect::ResetArm);
        if started {
            self.effects.push(Effect::Record(None));
        }
        self.refresh(now);
    }

    fn protocol_error(&mut self, what: &str) {
        tracing::warn!(%what, "protocol error");
        self.image.protocol_errors += 1;
        self.image.message = format!("protocol error: {what}");
    }

    // ---- commands --------------------------------------------------------------------------

    fn send(&mut self, msg: &HostMessage) -> Option<u32> {
        match self.framer.encode(msg) {
            Ok((bytes, seq)) => {
                tracing::debug!(?msg, seq, "to device");
                self.effects.push(Effect::Send(bytes));
                Some(seq)
            }
            Err(e) => {
                tracing::error!(error = %e, ?msg, "cannot encode command");
                None
            }
        }
    }

    fn command(&mut self, msg: HostMessage, now: Instant) {
        if let Some(seq) = self.send(&msg) {
            self.pending = Some(Pending {
                seq,
                msg,
                sent_at: now,
                attempts: 1,
            });
        }
    }

    fn retry(&mut self, now: Instant) {
        let Some(p) = self.pending.clone() else {
            return;
        };
        if now.saturating_duration_since(p.sent_at) < self.cfg.reply_timeout {
            return;
        }
        if p.attempts >= self.cfg.reply_attempts {
            self.pending = None;
            let what = format!(
                "device did not answer {} ({} attempts)",
                command_name(&p.msg),
                p.attempts
            );
            self.fail(&what, now);
        } else if let Some(seq) = self.send(&p.msg) {
            self.pending = Some(Pending {
                seq,
                sent_at: now,
                attempts: p.attempts + 1,
                ..p
            });
        }
    }

    /// Brings the counters and the connection state up to date.
    fn refresh(&mut self, now: Instant) {
        let st = self.asm.stats();
        self.image.link_errors = st.link_errors;
        self.image.resends = st.resend_requests;
        let connected = self.link.port_open
            && self.asm.device_info().is_some()
            && self
                .link
                .last_rx
                .is_some_and(|t| now.saturating_duration_since(t) < self.cfg.connected_window);
        if connected != self.image.connected {
            if connected {
                if !self.phase.busy() {
                    self.image.message = format!(
                        "device connected on {}: firmware {}, session {:#010x}",
                        self.cfg.port, self.image.firmware_version, self.image.device_session
                    );
                }
            } else if self.link.port_open {
                self.image.message = format!("the device on {} does not answer", self.cfg.port);
            }
            self.image.connected = connected;
        }
        if let Some(s) = self.scan.as_ref().filter(|s| s.started) {
            self.image.num_captured = s.captured;
            self.image.num_expected = s.expected;
            self.image.lost_points = s.lost;
        }
    }
}

fn command_name(m: &HostMessage) -> String {
    format!(
        "{:?}",
        MessageType::from_u8(m.type_code()).unwrap_or(MessageType::Ping)
    )
}

#[cfg(test)]
mod tests;
