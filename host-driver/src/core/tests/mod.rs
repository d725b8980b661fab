//! Core tests with no I/O: a protocol-level device model ([`Device`]) and a harness that moves
//! bytes between it and the core under a virtual clock, keeping what the records would show.

mod faults;
mod model;
mod phases;

use super::*;
use flyscan_protocol::limits::MAX_ENCODED_FRAME;
use flyscan_protocol::{
    BatchWriter, Deframer, DeviceInfo, Encoding, Feed, Point, PointBatch, PointFlags,
};

pub const CLOCK_HZ: u64 = 1_000_000;
pub const RING: usize = 64;
pub const WINDOW: u32 = 16;

/// The value every channel of point `i` of scan `id` carries (so rows can be checked).
pub fn count(id: u32, i: u64, ch: u8) -> u32 {
    (id.wrapping_mul(31) ^ (i as u32).wrapping_mul(7)).wrapping_add(u32::from(ch)) % 100_000
}

/// Position of point `i` (start/step/count: the preset; list: the list entry).
fn point_of(id: u32, i: u64, mask: u32, position: i64) -> Point {
    let mut p = Point {
        position,
        timestamp: 1000 + i * 100,
        live_time: 90,
        flags: PointFlags(0),
        counts: Default::default(),
    };
    for ch in 0..32u8 {
        if mask & (1 << ch) != 0 {
            let _ = p.counts.push(count(id, i, ch));
        }
    }
    p
}

/// A device speaking the protocol: commands in, frames out, with faults on demand.
pub struct Device {
    pub boot_id: u32,
    pub seq: u32,
    pub ring: std::collections::VecDeque<(u32, Vec<u8>)>,
    pub out: Vec<u8>,
    deframer: Deframer,
    pub config: Option<ScanConfig>,
    pub list: Vec<i64>,
    pub armed: Option<u32>,
    /// The current or last scan (what `Health.scan_id` reports).
    pub last_scan: u32,
    pub points: u64,
    pub n_channels: u8,
    /// Frames not put on the line (still kept for resends).
    pub drop_next: usize,
    /// Commands are not answered at all.
    pub deaf: bool,
    /// Commands wait (in `held`) until [`Device::release`].
    pub hold: bool,
    pub held: Vec<u8>,
    /// The next command is refused with this code.
    pub nak_next: Option<NakCode>,
    /// Frames of these types are kept for resends but not put on the line.
    pub drop_types: Vec<MessageType>,
    /// Every Configure received.
    pub configures: Vec<ScanConfig>,
    /// Every list position received, in order.
    pub received_positions: Vec<i64>,
    pub arms: Vec<u32>,
}

impl Device {
    pub fn new(boot_id: u32) -> Self {
        Self::with_channels(boot_id, 8)
    }

    pub fn with_channels(boot_id: u32, n_channels: u8) -> Self {
        let mut d = Self {
            boot_id,
            seq: 0,
            ring: Default::default(),
            out: Vec::new(),
            deframer: Deframer::new(),
            config: None,
            list: Vec::new(),
            armed: None,
            last_scan: 0,
            points: 0,
            n_channels,
            drop_next: 0,
            deaf: false,
            hold: false,
            held: Vec::new(),
            nak_next: None,
            drop_types: Vec::new(),
            configures: Vec::new(),
            received_positions: Vec::new(),
            arms: Vec::new(),
        };
        let info = d.info();
        d.emit(&Message::DeviceInfo(info));
        d
    }

    pub fn info(&self) -> DeviceInfo {
        DeviceInfo {
            protocol_version: flyscan_protocol::PROTOCOL_VERSION,
            fw_major: 0,
            fw_minor: 9,
            fw_patch: 1,
            n_channels: self.n_channels,
            counter_bits: 32,
            clock_hz: CLOCK_HZ,
            fifo_depth: 1024,
            resend_frames: RING as u32,
            max_points: 100_000,
            list_window: WINDOW,
            boot_id: self.boot_id,
        }
    }

    /// Sends a frame with the next sequence number (kept for resends).
    pub fn emit(&mut self, m: &Message<'_>) {
        let mut buf = vec![0u8; MAX_ENCODED_FRAME];
        let n = m.encode_frame(self.seq, &mut buf).expect("encode");
        buf.truncate(n);
        self.ring.push_back((self.seq, buf.clone()));
        if self.ring.len() > RING {
            self.ring.pop_front();
        }
        self.seq = self.seq.wrapping_add(1);
        let dropped_type = self.drop_types.iter().any(|t| m.msg_type() == *t);
        if self.drop_next > 0 {
            self.drop_next -= 1;
        } else if dropped_type {
            self.drop_types.retain(|t| *t != m.msg_type());
        } else {
            self.out.extend_from_slice(&buf);
        }
    }

    fn reply(&mut self, seq: u32, t: u8, code: NakCode, arg: u32, detail: &str) {
        let r = if code == NakCode::Ack {
            CommandReply {
                arg,
                ..CommandReply::ack(seq, t)
            }
        } else {
            CommandReply::nak(seq, t, code, arg, format_args!("{detail}"))
        };
        self.emit(&Message::CommandReply(r));
    }

    /// Handles the commands held so far (new ones are held again while `hold` is set).
    pub fn release(&mut self) {
        let held = std::mem::take(&mut self.held);
        let hold = std::mem::replace(&mut self.hold, false);
        self.receive(&held);
        self.hold = hold;
    }

    pub fn receive(&mut self, mut bytes: &[u8]) {
        if self.hold {
            self.held.extend_from_slice(bytes);
            return;
        }
        loop {
            let (seq, t, payload) = match self.deframer.feed(bytes) {
                Feed::Consumed => return,
                Feed::Error { remaining, .. } => {
                    bytes = remaining;
                    continue;
                }
                Feed::Frame { frame, remaining } => {
                    bytes = remaining;
                    (frame.seq(), frame.msg_type(), frame.payload().to_vec())
                }
            };
            if self.deaf {
                continue;
            }
            let Ok(msg) = Message::parse(t, &payload) else {
                self.reply(seq, t, NakCode::Malformed, 0, "bad");
                continue;
            };
            let command = matches!(
                msg,
                Message::Configure(_)
                    | Message::PositionChunk { .. }
                    | Message::Arm { .. }
                    | Message::Abort
            );
            if command && let Some(code) = self.nak_next.take() {
                self.reply(seq, t, code, 0, "refused by the test");
                continue;
            }
            self.handle(seq, t, msg);
        }
    }

    fn busy(&self) -> bool {
        self.armed.is_some()
    }

    fn handle(&mut self, seq: u32, t: u8, msg: Message<'_>) {
        match msg {
            Message::GetInfo => {
                self.reply(seq, t, NakCode::Ack, 0, "");
                let i = self.info();
                self.emit(&Message::DeviceInfo(i));
            }
            Message::Ping { token } => {
                self.reply(seq, t, NakCode::Ack, 0, "");
                let boot_id = self.boot_id;
                self.emit(&Message::Pong {
                    token,
                    uptime_ticks: 0,
                    boot_id,
                });
            }
            Message::Configure(cfg) => {
                self.configures.push(cfg);
                if self.busy() {
                    return self.reply(seq, t, NakCode::Busy, 2, "armed");
                }
                let limits = Limits::device(self.n_channels, 100_000, WINDOW).with_clock(CLOCK_HZ);
                match cfg.validate(&limits) {
                    Ok(()) => {
                        self.config = Some(cfg);
                        self.list.clear();
                        self.reply(seq, t, NakCode::Ack, 0, "");
                    }
                    Err(e) => self.reply(seq, t, NakCode::InvalidConfig, e.code(), "bad"),
                }
            }
            Message::PositionChunk { offset, positions } => {
                if offset as usize != self.list.len() {
                    let n = self.list.len() as u32;
                    return self.reply(seq, t, NakCode::BadChunk, n, "order");
                }
                let held = self.list.len() as u64 - self.points.min(self.list.len() as u64);
                if held + positions.len() as u64 > u64::from(WINDOW) {
                    return self.reply(seq, t, NakCode::Busy, 0, "window full");
                }
                self.list.extend(positions.iter());
                self.received_positions.extend(positions.iter());
                let held = self.list.len() as u64 - self.points.min(self.list.len() as u64);
                self.reply(seq, t, NakCode::Ack, WINDOW - held as u32, "");
            }
            Message::Arm { scan_id } => {
                self.arms.push(scan_id);
                let Some(cfg) = self.config else {
                    return self.reply(seq, t, NakCode::NotConfigured, 0, "no config");
                };
                if self.busy() {
                    return self.reply(seq, t, NakCode::Busy, 2, "armed");
                }
                if cfg.mode == TriggerMode::List && (self.list.len() as u32) < cfg.count.min(WINDOW)
                {
                    let n = self.list.len() as u32;
                    return self.reply(seq, t, NakCode::ListIncomplete, n, "list");
                }
                self.armed = Some(scan_id);
                self.last_scan = scan_id;
                self.points = 0;
                self.reply(seq, t, NakCode::Ack, 0, "");
                self.emit(&Message::ScanArmed(ScanArmed {
                    scan_id,
                    config: cfg,
                }));
            }
            Message::Abort => {
                self.reply(seq, t, NakCode::Ack, 0, "");
                if let Some(id) = self.armed.take() {
                    self.emit(&Message::ScanDone(ScanDone {
                        scan_id: id,
                        total_points: self.points as u32,
                        reason: DoneReason::Aborted,
                        error_code: 0,
                    }));
                }
            }
            Message::ResendRequest {
                first_seq,
                last_seq,
            } => {
                let want = |s: u32| s.wrapping_sub(first_seq) <= last_seq.wrapping_sub(first_seq);
                let frames: Vec<Vec<u8>> = self
                    .ring
                    .iter()
                    .filter(|(s, _)| want(*s))
                    .map(|(_, f)| f.clone())
                    .collect();
                let oldest = self.ring.front().map_or(0, |(s, _)| *s);
                let asked = u64::from(last_seq.wrapping_sub(first_seq)) + 1;
                if (frames.len() as u64) < asked {
                    self.reply(seq, t, NakCode::ResendUnavailable, oldest, "gone");
                } else {
                    self.reply(seq, t, NakCode::Ack, 0, "");
                }
                for f in frames {
                    self.out.extend_from_slice(&f);
                }
            }
            _ => self.reply(seq, t, NakCode::UnknownCommand, 0, "?"),
        }
    }

    /// The scan advances by up to `n` points (fewer if the list is not there yet); they go out
    /// in one batch. Returns the points latched.
    pub fn advance(&mut self, n: u64) -> u64 {
        let (Some(id), Some(cfg)) = (self.armed, self.config) else {
            return 0;
        };
        let total = cfg.total_points();
        let mut end = (self.points + n).min(total);
        if cfg.mode == TriggerMode::List && cfg.passes == 1 {
            end = end.min(self.list.len() as u64);
        }
        if end <= self.points {
            return 0;
        }
        let first = self.points;
        let mut w = BatchWriter::new(cfg.encoding, cfg.channel_mask, 0);
        let mut i = first;
        while i < end {
            let pos = match cfg.mode {
                TriggerMode::StartStepCount => {
                    cfg.start + cfg.step * (i % u64::from(cfg.count)) as i64
                }
                TriggerMode::List => self.list[(i % u64::from(cfg.count)) as usize],
                // Time mode: a motor moving 3 counts a period (`point_of` spaces the points'
                // timestamps 100 ticks apart, so a 100-tick period makes them consecutive).
                TriggerMode::Time => cfg.start + 3 * i as i64,
            };
            if w.push(&point_of(id, i, cfg.channel_mask, pos)).is_err() || w.is_full() {
                break;
            }
            i += 1;
        }
        let k = w.n_points() as u64;
        let b = PointBatch::from_writer(id, first as u32, &w);
        self.emit(&Message::PointBatch(b));
        self.points += k;
        if self.points >= total {
            self.finish();
        }
        k
    }

    /// Ends the scan with `ScanDone` (completed).
    pub fn finish(&mut self) {
        if let Some(id) = self.armed.take() {
            self.emit(&Message::ScanDone(ScanDone {
                scan_id: id,
                total_points: self.points as u32,
                reason: DoneReason::Completed,
                error_code: 0,
            }));
        }
    }

    pub fn health(&mut self) {
        let h = Health {
            state: if self.armed.is_some() {
                DeviceState::Scanning
            } else if self.config.is_some() {
                DeviceState::Configured
            } else {
                DeviceState::Idle
            },
            scan_id: self.last_scan,
            points: self.points as u32,
            boot_id: self.boot_id,
            ..Health::default()
        };
        self.emit(&Message::Health(h));
    }
}

/// What the records show (the shell's job, done in memory).
#[derive(Debug, Default, Clone)]
pub struct Shown {
    pub scan_id: u32,
    pub position: Vec<f64>,
    pub energy: Vec<f64>,
    pub energy_start: Vec<f64>,
    pub flags: Vec<u8>,
    pub channels: Vec<Vec<f64>>,
    pub arm: bool,
    pub abort: bool,
    pub record: Option<ScanRecord>,
    /// Every frame the core sent, decoded.
    pub sent: Vec<(u32, u8, Vec<u8>)>,
}

/// Core + device + virtual clock.
pub struct Harness {
    pub core: Core,
    pub dev: Device,
    pub now: Instant,
    pub shown: Shown,
    host_deframer: Deframer,
    /// The line is cut (nothing passes either way).
    pub cut: bool,
    since_health: Duration,
}

impl Harness {
    pub fn new() -> Self {
        let mut cfg = CoreConfig::new("/dev/ttyTEST", 10_000);
        // As in the IOC: the Positions record holds as many elements as the waveforms, and a
        // full record may be a cut list, so a list holds one point less.
        cfg.list_capacity = 9_999;
        let mut core = Core::new(cfg);
        core.set_next_scan_id(100);
        let now = Instant::now();
        core.port_opened(now);
        let mut h = Self {
            core,
            dev: Device::new(0xb007_0001),
            now,
            shown: Shown {
                channels: vec![Vec::new(); 32],
                ..Shown::default()
            },
            host_deframer: Deframer::new(),
            cut: false,
            since_health: Duration::ZERO,
        };
        h.settle();
        h
    }

    /// Moves bytes both ways until nothing is left to move.
    pub fn pump(&mut self) {
        for _ in 0..64 {
            let mut moved = false;
            for e in self.core.take_effects() {
                moved = true;
                self.apply(e);
            }
            if !self.dev.out.is_empty() {
                moved = true;
                let bytes = std::mem::take(&mut self.dev.out);
                if !self.cut {
                    self.core.bytes(&bytes, self.now);
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn apply(&mut self, e: Effect) {
        match e {
            Effect::Send(bytes) => {
                let mut rest: &[u8] = &bytes;
                loop {
                    match self.host_deframer.feed(rest) {
                        Feed::Frame { frame, remaining } => {
                            self.shown.sent.push((
                                frame.seq(),
                                frame.msg_type(),
                                frame.payload().to_vec(),
                            ));
                            rest = remaining;
                        }
                        Feed::Error { remaining, .. } => rest = remaining,
                        Feed::Consumed => break,
                    }
                }
                if !self.cut {
                    self.dev.receive(&bytes);
                }
            }
            Effect::ScanStarted { scan_id, .. } => {
                self.shown.scan_id = scan_id;
                self.shown.position.clear();
                self.shown.flags.clear();
                for c in &mut self.shown.channels {
                    c.clear();
                }
            }
            Effect::Rows(r) => {
                assert_eq!(r.scan_id, self.shown.scan_id, "rows of another scan shown");
                assert_eq!(
                    r.first,
                    self.shown.position.len() as u64,
                    "rows not contiguous"
                );
                self.shown.position.extend(&r.position);
                self.shown.energy.extend(&r.energy);
                self.shown.energy_start.extend(&r.energy_start);
                self.shown.flags.extend(&r.flags);
                for (ch, v) in r.counts {
                    self.shown.channels[usize::from(ch)].extend(v);
                }
            }
            Effect::ResetArm => self.shown.arm = false,
            Effect::ResetAbort => self.shown.abort = false,
            Effect::Record(r) => self.shown.record = r,
        }
    }

    /// Advances the virtual clock in ticks of 20 ms.
    pub fn wait(&mut self, d: Duration) {
        let step = Duration::from_millis(20);
        let mut t = Duration::ZERO;
        while t < d {
            self.now += step;
            t += step;
            self.core.tick(self.now);
            // PROTOCOL.md §Liveness: the device sends Health once a second.
            self.since_health += step;
            if self.since_health >= Duration::from_secs(1) {
                self.since_health = Duration::ZERO;
                if !self.dev.deaf {
                    self.dev.health();
                }
            }
            self.pump();
        }
    }

    /// A few ticks: replies and pings go round.
    pub fn settle(&mut self) {
        self.pump();
        self.wait(Duration::from_millis(100));
    }

    pub fn write(&mut self, w: ControlWrite) {
        match w {
            ControlWrite::Arm(v) => self.shown.arm = v,
            ControlWrite::Abort(v) => self.shown.abort = v,
            _ => {}
        }
        self.core.write(w, self.now);
        self.pump();
    }

    pub fn configure_ssc(&mut self, start: f64, step: f64, n: i64, mask: i64) {
        self.write(ControlWrite::Mode(0));
        self.write(ControlWrite::Start(start));
        self.write(ControlWrite::Step(step));
        self.write(ControlWrite::NPoints(n));
        self.write(ControlWrite::ChannelMask(mask));
    }

    pub fn arm(&mut self) {
        self.write(ControlWrite::Arm(true));
        self.settle();
    }

    /// Runs the device's scan to its end in batches of `per`.
    pub fn run_scan(&mut self, per: u64) {
        for _ in 0..100_000 {
            if self.dev.armed.is_none() {
                break;
            }
            self.dev.advance(per);
            self.pump();
            self.wait(Duration::from_millis(20));
        }
        self.settle();
    }

    pub fn image(&self) -> &Image {
        self.core.image()
    }

    /// Every shown row of channel `ch` equals the device's value, except lost (NaN) rows.
    pub fn check_rows(&self, ch: u8) {
        let id = self.shown.scan_id;
        for (i, v) in self.shown.channels[usize::from(ch)].iter().enumerate() {
            if !v.is_nan() {
                assert_eq!(
                    *v,
                    f64::from(count(id, i as u64, ch)),
                    "scan {id} point {i} ch {ch}"
                );
            }
        }
    }

    /// Frames of a type the core sent.
    pub fn sent_of(&self, t: MessageType) -> Vec<&Vec<u8>> {
        self.shown
            .sent
            .iter()
            .filter(|(_, ty, _)| *ty == t as u8)
            .map(|(_, _, p)| p)
            .collect()
    }
}

/// A raw device frame (for forged or foreign frames).
pub fn frame(seq: u32, m: &Message<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_ENCODED_FRAME];
    let n = m.encode_frame(seq, &mut buf).expect("encode");
    buf.truncate(n);
    buf
}

/// A batch of scan `id` with `n` points from `first`, of `mask`.
pub fn batch_frame(seq: u32, id: u32, first: u32, n: u32, mask: u32, enc: Encoding) -> Vec<u8> {
    let mut w = BatchWriter::new(enc, mask, 0);
    for i in first..first + n {
        w.push(&point_of(id, u64::from(i), mask, i64::from(i)))
            .expect("fits");
    }
    frame(
        seq,
        &Message::PointBatch(PointBatch::from_writer(id, first, &w)),
    )
}
