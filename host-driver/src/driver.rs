//! The driver core: applies assembler events and control updates, runs the command sequence
//! of a scan (Configure → list chunks → Arm), and keeps [`crate::state::Shared`] up to date.
//! [`run`] wires it to the serial port, the control monitors and the publisher.

use crate::assembler::sequencer::SequencerConfig;
use crate::assembler::{Assembler, Event};
use crate::controls::{self, Control};
use crate::host_message::{HostFramer, HostMessage};
use crate::publish::{self, PublishConfig};
use crate::scan::ScanData;
use crate::serial::{self, SerialConfig, SerialEvent};
use crate::state::{Shared, Status};
use flyscan_protocol::config::{Direction, TriggerMode};
use flyscan_protocol::frame::MessageType;
use flyscan_protocol::limits::MAX_CHUNK_POSITIONS;
use flyscan_protocol::{CommandReply, DeviceState, DoneReason, Encoding, ScanConfig};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};

/// Driver settings.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Serial port.
    pub serial: SerialConfig,
    /// PV prefix.
    pub prefix: String,
    /// Waveform capacity to assume until the IOC's is known.
    pub default_capacity: usize,
    /// Shortest time between publish cycles.
    pub publish_interval: Duration,
    /// How long to wait for a command reply before sending it again.
    pub reply_timeout: Duration,
}

impl DriverConfig {
    /// Defaults for a port and prefix.
    pub fn new(serial: SerialConfig, prefix: impl Into<String>) -> Self {
        Self {
            serial,
            prefix: prefix.into(),
            default_capacity: 1_000_000,
            publish_interval: Duration::from_millis(25),
            reply_timeout: Duration::from_millis(1000),
        }
    }
}

/// Cached control PV values.
#[derive(Debug, Clone)]
struct Controls {
    mode: u16,
    start: f64,
    step: f64,
    npoints: i32,
    positions: Vec<f64>,
    direction: u16,
    passes: i32,
    channel_mask: i32,
    encoding: u16,
}

impl Default for Controls {
    fn default() -> Self {
        Self {
            mode: 0,
            start: 0.0,
            step: 1.0,
            npoints: 1,
            positions: Vec::new(),
            direction: 0,
            passes: 1,
            channel_mask: 1,
            encoding: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Configuring,
    Uploading,
    Arming,
    WaitArmed,
    Running,
}

#[derive(Debug, Clone)]
struct Pending {
    seq: u32,
    msg: HostMessage,
    sent_at: Instant,
    attempts: u32,
}

/// The driver core (no I/O: frames to send are returned).
pub struct Core {
    asm: Assembler,
    framer: HostFramer,
    controls: Controls,
    phase: Phase,
    scan_id: u32,
    config: Option<ScanConfig>,
    list: Vec<i64>,
    list_sent: usize,
    list_free: u32,
    pending: Option<Pending>,
    port_open: bool,
    last_frame: Option<Instant>,
    reply_timeout: Duration,
    default_capacity: usize,
    shared: Arc<Mutex<Shared>>,
    out: Vec<Vec<u8>>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Exactly representable integer in a double, as i64.
fn as_count(v: f64, what: &str) -> Result<i64, String> {
    if !v.is_finite() || v.fract() != 0.0 || v.abs() > 9_007_199_254_740_992.0 {
        return Err(format!(
            "{what} must be a whole number of encoder counts (got {v})"
        ));
    }
    Ok(v as i64)
}

impl Core {
    /// A core publishing into `shared`.
    pub fn new(cfg: &DriverConfig, shared: Arc<Mutex<Shared>>) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self {
            asm: Assembler::new(SequencerConfig {
                // 10 bits per byte on an 8N1 line.
                line_bytes_per_sec: cfg.serial.baud / 10,
                ..SequencerConfig::default()
            }),
            framer: HostFramer::new(0),
            controls: Controls::default(),
            phase: Phase::Idle,
            // Seconds since the epoch: a restarted driver does not reuse recent scan ids.
            scan_id: now as u32,
            config: None,
            list: Vec::new(),
            list_sent: 0,
            list_free: 0,
            pending: None,
            port_open: false,
            last_frame: None,
            reply_timeout: cfg.reply_timeout,
            default_capacity: cfg.default_capacity,
            shared,
            out: Vec::new(),
        }
    }

    /// Frames to write to the device.
    pub fn take_output(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.out)
    }

    fn send(&mut self, msg: HostMessage, now: Instant) -> Option<u32> {
        match self.framer.encode(&msg) {
            Ok((bytes, seq)) => {
                self.out.push(bytes);
                Some(seq).inspect(|_| {
                    tracing::debug!(?msg, seq, "to device");
                    let _ = now;
                })
            }
            Err(e) => {
                tracing::error!(error = %e, ?msg, "cannot encode command");
                None
            }
        }
    }

    fn command(&mut self, msg: HostMessage, now: Instant) {
        if let Some(seq) = self.send(msg.clone(), now) {
            self.pending = Some(Pending {
                seq,
                msg,
                sent_at: now,
                attempts: 1,
            });
        }
    }

    fn set_status(&self, status: Status, message: impl Into<String>) {
        let message = message.into();
        tracing::info!(?status, %message, "status");
        let mut s = lock(&self.shared);
        s.scalars.status = status;
        s.scalars.message = message;
    }

    fn fail(&mut self, message: impl Into<String>) {
        let was_active = self.phase != Phase::Idle;
        self.set_status(Status::Error, message);
        if was_active && self.phase != Phase::Running {
            self.phase = Phase::Idle;
            self.pending = None;
        }
        if self.phase == Phase::Idle {
            let mut s = lock(&self.shared);
            s.scalars.busy = false;
            s.arm_resets += 1;
        }
    }

    /// The serial port opened or closed.
    pub fn on_serial(&mut self, ev: SerialEvent, now: Instant) {
        let mut events = Vec::new();
        match ev {
            SerialEvent::Opened => {
                self.port_open = true;
                self.asm.reconnected(now, &mut events);
            }
            SerialEvent::Closed { reason } => {
                self.port_open = false;
                lock(&self.shared).scalars.message =
                    format!("serial port lost: {reason}; reopening");
            }
            SerialEvent::Bytes(b) => {
                self.last_frame = Some(now);
                self.asm.push_bytes(&b, now, &mut events);
            }
        }
        self.handle(events, now);
    }

    /// Periodic work (timeouts, retries, connection state).
    pub fn tick(&mut self, now: Instant) {
        let mut events = Vec::new();
        if self.port_open {
            self.asm.tick(now, &mut events);
        }
        self.handle(events, now);
        if let Some(p) = self.pending.clone()
            && now.saturating_duration_since(p.sent_at) >= self.reply_timeout
        {
            if p.attempts >= 3 {
                self.pending = None;
                let what = format!("{:?}", MessageType::from_u8(p.msg.type_code()));
                self.fail(format!("device did not answer {what} (3 attempts)"));
            } else if let Some(seq) = self.send(p.msg.clone(), now) {
                self.pending = Some(Pending {
                    seq,
                    sent_at: now,
                    attempts: p.attempts + 1,
                    ..p
                });
            }
        }
        self.refresh(now);
    }

    fn refresh(&self, now: Instant) {
        let st = self.asm.stats();
        let info = self.asm.device_info().copied();
        let mut s = lock(&self.shared);
        s.scalars.link_errors = st.link_errors as f64;
        s.scalars.resends = st.resend_requests as f64;
        s.scalars.connected = self.port_open
            && info.is_some()
            && self
                .last_frame
                .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(3));
        s.scalars.num_captured = i32::try_from(s.scan.captured).unwrap_or(i32::MAX);
        s.scalars.lost_points = s.scan.lost as f64;
        s.scalars.num_expected = i32::try_from(s.scan.expected).unwrap_or(i32::MAX);
    }

    fn handle(&mut self, events: Vec<Event>, now: Instant) {
        let mut notify = !events.is_empty();
        for ev in events {
            match ev {
                Event::Send(m) => {
                    let _ = self.send(m, now);
                }
                Event::DeviceInfo(i) => {
                    let mut s = lock(&self.shared);
                    s.scalars.firmware_version =
                        format!("{}.{}.{}", i.fw_major, i.fw_minor, i.fw_patch);
                    s.scalars.num_channels = i32::from(i.n_channels);
                    s.scalars.max_points = i32::try_from(i.max_points).unwrap_or(i32::MAX);
                }
                Event::Reply(r) => self.on_reply(r, now),
                Event::Health(h) => {
                    {
                        let mut s = lock(&self.shared);
                        s.scalars.quad_errors = h.quad_errors as f64;
                        s.scalars.position_jumps = h.position_jumps as f64;
                    }
                    // ScanDone lost for good: no hole is pending, so every frame before this
                    // health report was delivered, and the device says the scan is over.
                    if self.phase == Phase::Running
                        && h.scan_id == self.scan_id
                        && matches!(h.state, DeviceState::Idle | DeviceState::Configured)
                        && !self.asm.has_gap()
                    {
                        let done = flyscan_protocol::ScanDone {
                            scan_id: h.scan_id,
                            total_points: h.points,
                            reason: DoneReason::Completed,
                            error_code: 0,
                        };
                        self.on_done(&done, "ScanDone never arrived; ended from health report");
                    }
                }
                Event::ScanArmed(a) => self.on_armed(a.scan_id, Some(a.config)),
                Event::Batch(b) => {
                    let finished = {
                        let s = lock(&self.shared);
                        s.scan.scan_id == b.scan_id && s.scan.done.is_some()
                    };
                    if finished {
                        tracing::debug!(scan = b.scan_id, "points of a finished scan dropped");
                        continue;
                    }
                    if lock(&self.shared).scan.scan_id != b.scan_id || self.phase != Phase::Running
                    {
                        if self.phase == Phase::Idle || self.phase == Phase::Running {
                            // Joined mid-scan without its ScanArmed (it left the resend ring).
                            self.on_armed(b.scan_id, None);
                            lock(&self.shared).scalars.message = format!(
                                "joined scan {} mid-way: its ScanArmed could not be recovered",
                                b.scan_id
                            );
                        } else {
                            tracing::warn!(
                                scan = b.scan_id,
                                "points of an unexpected scan dropped"
                            );
                            continue;
                        }
                    }
                    let mut s = lock(&self.shared);
                    let o = s.scan.apply_batch(b.first_index, b.channel_mask, &b.points);
                    if o.newly_lost > 0 {
                        tracing::warn!(lost = o.newly_lost, at = b.first_index, "points lost");
                    }
                    if s.scalars.status == Status::Armed {
                        s.scalars.status = Status::Scanning;
                        s.scalars.message = format!("scan {} running", b.scan_id);
                    }
                    drop(s);
                    self.continue_upload(now);
                }
                Event::ScanDone(d) => {
                    if self.phase == Phase::Running && d.scan_id == self.scan_id {
                        self.on_done(&d, "");
                    } else {
                        tracing::info!(scan = d.scan_id, "ScanDone of a scan not running here");
                    }
                }
                Event::FramesLost { first_seq, count } => {
                    tracing::warn!(first_seq, count, "device frames lost for good");
                }
                Event::LinkError(e) => tracing::warn!(error = ?e, "link error"),
                Event::DeviceRestarted => {
                    if self.phase != Phase::Idle {
                        self.phase = Phase::Idle;
                        self.pending = None;
                        let mut s = lock(&self.shared);
                        s.scalars.busy = false;
                        s.arm_resets += 1;
                        drop(s);
                        self.set_status(Status::Error, "device restarted during the scan");
                    }
                }
            }
            notify = true;
        }
        if notify {
            self.refresh(now);
        }
    }

    fn on_armed(&mut self, scan_id: u32, config: Option<ScanConfig>) {
        let clock = self.asm.device_info().map_or(0, |i| i.clock_hz);
        let capacity = lock(&self.shared)
            .ioc_capacity
            .unwrap_or(self.default_capacity);
        let data = ScanData::new(scan_id, config, clock, capacity);
        self.scan_id = scan_id;
        self.phase = Phase::Running;
        self.pending = None;
        let mut s = lock(&self.shared);
        s.scan = data;
        s.scan_generation += 1;
        s.scalars.scan_id = f64::from(scan_id);
        s.scalars.busy = true;
        s.scalars.status = Status::Armed;
        s.scalars.message = format!("scan {scan_id} armed");
    }

    fn on_done(&mut self, d: &flyscan_protocol::ScanDone, note: &str) {
        let mut s = lock(&self.shared);
        let tail = s.scan.finish(d);
        let (captured, lost) = (s.scan.captured, s.scan.lost);
        s.scalars.busy = false;
        s.arm_resets += 1;
        drop(s);
        self.phase = Phase::Idle;
        self.pending = None;
        let (status, what) = match d.reason {
            DoneReason::Completed => (Status::Done, "done".to_owned()),
            DoneReason::Aborted => (Status::Aborted, "aborted".to_owned()),
            DoneReason::Error => (
                Status::Error,
                format!("stopped by device error {}", d.error_code),
            ),
        };
        let mut msg = format!(
            "scan {} {what}: {captured} of {} points, {lost} lost",
            d.scan_id, d.total_points
        );
        if tail > 0 {
            msg.push_str(&format!(" ({tail} at the end)"));
        }
        if !note.is_empty() {
            msg.push_str("; ");
            msg.push_str(note);
        }
        self.set_status(status, msg);
    }

    fn on_reply(&mut self, r: CommandReply, now: Instant) {
        let Some(p) = self.pending.clone() else {
            return;
        };
        if r.request_seq != p.seq {
            return;
        }
        self.pending = None;
        if !r.is_ack() {
            let what = format!("{:?}", MessageType::from_u8(p.msg.type_code()));
            let detail = format!(
                "device refused {what}: {:?} (arg {}) {}",
                r.code, r.arg, r.detail
            );
            if matches!(p.msg, HostMessage::Abort) {
                lock(&self.shared).scalars.message = detail;
                return;
            }
            self.fail(detail);
            return;
        }
        match p.msg {
            HostMessage::Configure(cfg) => {
                if cfg.mode == TriggerMode::List {
                    self.phase = Phase::Uploading;
                    self.list_free = self.asm.device_info().map_or(0, |i| i.list_window);
                    self.continue_upload(now);
                } else {
                    self.phase = Phase::Arming;
                    self.command(
                        HostMessage::Arm {
                            scan_id: self.scan_id,
                        },
                        now,
                    );
                }
            }
            HostMessage::PositionChunk { .. } => {
                self.list_free = r.arg;
                self.continue_upload(now);
            }
            HostMessage::Arm { .. } if self.phase == Phase::Arming => {
                self.phase = Phase::WaitArmed;
            }
            _ => {}
        }
    }

    /// Streams the next list chunk when the device has room (one chunk in flight at a time).
    fn continue_upload(&mut self, now: Instant) {
        if self.pending.is_some() || self.list_sent >= self.list.len() {
            if self.phase == Phase::Uploading && self.pending.is_none() {
                self.phase = Phase::Arming;
                self.command(
                    HostMessage::Arm {
                        scan_id: self.scan_id,
                    },
                    now,
                );
            }
            return;
        }
        if !matches!(
            self.phase,
            Phase::Uploading | Phase::Running | Phase::WaitArmed
        ) {
            return;
        }
        let window = self.asm.device_info().map_or(0, |i| i.list_window) as usize;
        let mut room = self.list_free as usize;
        if self.phase == Phase::Running {
            // During the scan the device frees a slot per preset passed.
            let consumed = lock(&self.shared).scan.next_index() as usize;
            room = room.max(window.saturating_sub(self.list_sent.saturating_sub(consumed)));
        }
        if room == 0 {
            if self.phase == Phase::Uploading {
                // First window loaded: arm now; the rest streams during the scan.
                self.phase = Phase::Arming;
                self.command(
                    HostMessage::Arm {
                        scan_id: self.scan_id,
                    },
                    now,
                );
            }
            return;
        }
        let n = room
            .min(MAX_CHUNK_POSITIONS)
            .min(self.list.len() - self.list_sent);
        let chunk = self.list[self.list_sent..self.list_sent + n].to_vec();
        let offset = self.list_sent as u32;
        self.list_sent += n;
        self.list_free = self.list_free.saturating_sub(n as u32);
        self.command(
            HostMessage::PositionChunk {
                offset,
                positions: chunk,
            },
            now,
        );
    }

    /// A control PV changed.
    pub fn on_control(&mut self, c: Control, now: Instant) {
        match c {
            Control::Mode(v) => self.controls.mode = v,
            Control::Start(v) => self.controls.start = v,
            Control::Step(v) => self.controls.step = v,
            Control::NPoints(v) => self.controls.npoints = v,
            Control::Positions(v) => self.controls.positions = v,
            Control::Direction(v) => self.controls.direction = v,
            Control::Passes(v) => self.controls.passes = v,
            Control::ChannelMask(v) => self.controls.channel_mask = v,
            Control::Encoding(v) => self.controls.encoding = v,
            Control::Arm { value, initial } => {
                if value != 0.0 && !initial {
                    self.arm(now);
                }
            }
            Control::Abort { value, initial } => {
                if value != 0.0 && !initial {
                    self.abort(now);
                    // Only a real request is answered by writing Abort back to 0 (that write
                    // is itself seen here, as a 0).
                    lock(&self.shared).abort_resets += 1;
                }
            }
        }
        self.refresh(now);
    }

    fn abort(&mut self, now: Instant) {
        match self.phase {
            Phase::Idle => {
                lock(&self.shared).scalars.message = "Abort ignored: no scan armed".into();
            }
            Phase::Configuring | Phase::Uploading | Phase::Arming => {
                // Not armed on the device yet (or about to be): stop the sequence and make sure.
                self.phase = Phase::Idle;
                self.pending = None;
                let _ = self.send(HostMessage::Abort, now);
                let mut s = lock(&self.shared);
                s.scalars.busy = false;
                s.arm_resets += 1;
                drop(s);
                self.set_status(Status::Aborted, "aborted before the scan was armed");
            }
            Phase::WaitArmed | Phase::Running => {
                self.command(HostMessage::Abort, now);
            }
        }
    }

    /// Builds and checks the scan configuration from the control PVs.
    fn build_config(&self) -> Result<(ScanConfig, Vec<i64>), String> {
        let c = &self.controls;
        let info = self
            .asm
            .device_info()
            .copied()
            .ok_or("device not connected (no DeviceInfo yet)")?;
        let mode = match c.mode {
            0 => TriggerMode::StartStepCount,
            1 => TriggerMode::List,
            v => return Err(format!("Mode {v} is not Start-Step-Count or List")),
        };
        let direction = Direction::from_u8(u8::try_from(c.direction).unwrap_or(u8::MAX))
            .ok_or(format!("Direction {} is not valid", c.direction))?;
        let encoding = match c.encoding {
            0 => Encoding::Compact,
            1 => Encoding::Raw,
            v => return Err(format!("Encoding {v} is not Compact or Raw")),
        };
        if c.passes < 1 || c.passes > i32::from(u16::MAX) {
            return Err(format!("Passes must be 1..65535 (got {})", c.passes));
        }
        if c.channel_mask == 0 {
            return Err("ChannelMask is 0: enable at least one channel".into());
        }
        let mut list = Vec::new();
        let (start, step, count) = match mode {
            TriggerMode::StartStepCount => {
                if c.npoints <= 0 {
                    return Err(format!("NPoints must be at least 1 (got {})", c.npoints));
                }
                let step = as_count(c.step, "Step")?;
                if step == 0 {
                    return Err("Step must not be 0".into());
                }
                (as_count(c.start, "Start")?, step, c.npoints as u32)
            }
            TriggerMode::List => {
                if c.positions.is_empty() {
                    return Err("List mode: Positions is empty".into());
                }
                for (i, &p) in c.positions.iter().enumerate() {
                    list.push(as_count(p, &format!("Positions[{i}]"))?);
                }
                (0, 1, u32::try_from(list.len()).unwrap_or(u32::MAX))
            }
        };
        let cfg = ScanConfig {
            mode,
            direction,
            encoding,
            start,
            step,
            count,
            passes: c.passes as u16,
            channel_mask: c.channel_mask as u32,
            max_batch_points: 0,
            max_latency_us: 0,
        };
        cfg.validate(&flyscan_protocol::Limits::device(
            info.n_channels,
            info.max_points,
            info.list_window,
        ))
        .map_err(|e| format!("invalid scan: {e}"))?;
        let capacity = lock(&self.shared)
            .ioc_capacity
            .unwrap_or(self.default_capacity) as u64;
        if cfg.total_points() > capacity {
            return Err(format!(
                "{} points exceed the IOC waveform length {capacity}",
                cfg.total_points()
            ));
        }
        if mode == TriggerMode::List && cfg.passes > 1 && count > info.list_window {
            return Err(format!(
                "List mode with several passes needs the list to fit the device window ({} positions)",
                info.list_window
            ));
        }
        Ok((cfg, list))
    }

    fn arm(&mut self, now: Instant) {
        if self.phase != Phase::Idle {
            // Keep Arm at 1 and the scan running; only report the refused request.
            self.set_status(
                Status::Error,
                format!("Arm ignored: scan {} is already armed", self.scan_id),
            );
            return;
        }
        if !self.port_open {
            self.fail("Arm refused: serial port not open");
            return;
        }
        match self.build_config() {
            Err(e) => self.fail(e),
            Ok((cfg, list)) => {
                self.scan_id = self.scan_id.wrapping_add(1);
                self.config = Some(cfg);
                self.list = list;
                self.list_sent = 0;
                self.phase = Phase::Configuring;
                {
                    let mut s = lock(&self.shared);
                    s.scalars.busy = true;
                }
                self.set_status(Status::Idle, format!("configuring scan {}", self.scan_id));
                self.command(HostMessage::Configure(cfg), now);
            }
        }
    }
}

/// Runs the driver until `shutdown` completes. The CA client context is created here (its
/// environment, e.g. `EPICS_CA_ADDR_LIST`, must be set before).
pub async fn run(
    cfg: DriverConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let shared = Arc::new(Mutex::new(Shared::default()));
    let notify = Arc::new(Notify::new());
    let ctx =
        epics_ca::Context::new().map_err(|e| anyhow::anyhow!("creating CA context: {e:?}"))?;
    let (ctl_tx, mut ctl_rx) = mpsc::channel(256);
    controls::spawn_watchers(&ctx, &cfg.prefix, ctl_tx)?;
    let publisher = tokio::spawn(publish::run(
        ctx,
        PublishConfig {
            prefix: cfg.prefix.clone(),
            min_interval: cfg.publish_interval,
        },
        shared.clone(),
        notify.clone(),
    ));
    let (dev_tx, dev_rx) = mpsc::channel::<Vec<u8>>(1024);
    let (ser_tx, mut ser_rx) = mpsc::channel(1024);
    let serial_task = tokio::spawn(serial::run(cfg.serial.clone(), dev_rx, ser_tx));
    let mut core = Core::new(&cfg, shared.clone());
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            ev = ser_rx.recv() => match ev {
                Some(ev) => core.on_serial(ev, Instant::now()),
                None => break,
            },
            c = ctl_rx.recv() => if let Some(c) = c { core.on_control(c, Instant::now()) },
            _ = tick.tick() => core.tick(Instant::now()),
        }
        for frame in core.take_output() {
            if dev_tx.send(frame).await.is_err() {
                tracing::error!("serial task ended");
            }
        }
        notify.notify_one();
    }
    tracing::info!("shutting down");
    lock(&shared).shutdown = true;
    notify.notify_one();
    let _ = tokio::time::timeout(Duration::from_secs(3), publisher).await;
    drop(dev_tx);
    let _ = tokio::time::timeout(Duration::from_secs(1), serial_task).await;
    Ok(())
}
