//! A scripted device: speaks the protocol on a pseudo-terminal with no physics behind it, each
//! point a known function of its index ([`expected_point`]), and does on demand what a real
//! device does on a bad day: frames lost once (resent), frames lost for good, corrupted bytes,
//! a port that vanishes and returns, a restart (new session) in the middle of a scan, a scan
//! that stalls until aborted, a device that goes silent, and forged frames. Tests of the host
//! driver and of the Bluesky device drive it (`sim scripted` runs it as a process).

use flyscan_protocol::limits::MAX_ENCODED_FRAME;
use flyscan_protocol::message::Message;
use flyscan_protocol::{
    BatchWriter, CommandReply, Deframer, DeviceInfo, DeviceState, DoneReason, Health, Limits,
    NakCode, Point, PointBatch, PointFlags, ScanArmed, ScanConfig, ScanDone, TriggerMode,
};
use serialport::{SerialPort, TTYPort};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Device clock of the scripted device, Hz.
pub const CLOCK_HZ: u64 = 1_000_000;

/// Point `i` of a scan of `cfg` (list positions from `list`): what the device sends. In time
/// mode the points are one period apart, each with a live time of one period, at positions
/// climbing 3 counts a point from the window's low edge.
pub fn expected_point(cfg: &ScanConfig, list: &[i64], i: u32) -> Point {
    let k = i % cfg.count.max(1);
    let position = match cfg.mode {
        TriggerMode::StartStepCount => cfg.start + i64::from(k) * cfg.step,
        TriggerMode::List => list.get(k as usize).copied().unwrap_or(0),
        TriggerMode::Time => cfg.start.saturating_add(3 * i64::from(k)),
    };
    let (timestamp, live_time) = match cfg.mode {
        TriggerMode::Time => {
            let period = u64::try_from(cfg.step).unwrap_or(0);
            (
                5_000_000 + u64::from(i + 1) * period,
                u32::try_from(period).unwrap_or(u32::MAX),
            )
        }
        _ => (
            5_000_000 + u64::from(i) * 12_345 + u64::from(i % 3),
            11_000 + i % 7,
        ),
    };
    let mut p = Point {
        position,
        timestamp,
        live_time,
        flags: PointFlags(if i == 0 { PointFlags::PASS_START } else { 0 }),
        counts: Default::default(),
    };
    for ch in 0..32u32 {
        if cfg.channel_mask & (1 << ch) != 0 {
            // Channel 0 exceeds i32 on purpose: the waveforms must carry full u32 counts.
            let base = if ch == 0 { 3_000_000_000u32 } else { ch * 1000 };
            let square = (u64::from(i) * u64::from(i) % 13) as u32;
            let _ = p
                .counts
                .push(base.wrapping_add(i.wrapping_mul(7)).wrapping_add(square));
        }
    }
    p
}

/// What the scripted device does.
#[derive(Debug, Clone)]
pub struct ScriptOptions {
    /// Its identity (the session's `boot_id` among it).
    pub info: DeviceInfo,
    /// Points per batch (0: as many as fit a frame).
    pub batch_points: u16,
    /// Time between two batches (0: as fast as the line takes them).
    pub batch_interval: Duration,
    /// Batch numbers whose first transmission is dropped (a resend brings them).
    pub drop_once: HashSet<u32>,
    /// Batch numbers dropped and reported gone (nak `ResendUnavailable`).
    pub unavailable: HashSet<u32>,
    /// Batch numbers sent once with one corrupted byte (a resend brings them).
    pub corrupt_once: HashSet<u32>,
    /// Hold every scan after arming until [`ScriptedDevice::release`].
    pub hold: bool,
    /// After this many points of a scan, stop streaming until aborted.
    pub stall_after: Option<u32>,
    /// After this many points of a scan, restart: a new session (new `boot_id`, sequence
    /// numbers from 0, no configuration, no scan).
    pub restart_after: Option<u32>,
    /// Stall (as `stall_after`) half way through every scan.
    pub stall_half_way: bool,
    /// Restart (as `restart_after`) half way through every scan.
    pub restart_half_way: bool,
    /// Publish the port as this symlink (re-pointed when the port comes back).
    pub link: Option<PathBuf>,
}

impl Default for ScriptOptions {
    fn default() -> Self {
        Self {
            info: DeviceInfo {
                protocol_version: flyscan_protocol::PROTOCOL_VERSION,
                fw_major: 1,
                fw_minor: 2,
                fw_patch: 3,
                n_channels: 4,
                counter_bits: 32,
                clock_hz: CLOCK_HZ,
                fifo_depth: 1024,
                resend_frames: 512,
                max_points: 200_000,
                list_window: 256,
                boot_id: 0x0b00_7001,
            },
            batch_points: 50,
            batch_interval: Duration::from_millis(10),
            drop_once: HashSet::new(),
            unavailable: HashSet::new(),
            corrupt_once: HashSet::new(),
            hold: false,
            stall_after: None,
            restart_after: None,
            stall_half_way: false,
            restart_half_way: false,
            link: None,
        }
    }
}

/// What the device saw and did.
#[derive(Debug, Default, Clone)]
pub struct ScriptStats {
    /// `Configure` commands received.
    pub configures: u32,
    /// `Arm` commands received.
    pub arms: u32,
    /// `Abort` commands received.
    pub aborts: u32,
    /// `PositionChunk` commands received.
    pub chunks: u32,
    /// Resend requests received (first, last).
    pub resend_requests: Vec<(u32, u32)>,
    /// Every configuration received, in order.
    pub configs: Vec<ScanConfig>,
    /// The list of the current configuration.
    pub list: Vec<i64>,
    /// Scans completed.
    pub scans_done: u32,
    /// Frames written (resends included).
    pub frames_sent: u64,
    /// (points sent so far, wall-clock time the batch was written), per batch.
    pub batch_times: Vec<(u32, std::time::SystemTime)>,
    /// Frames written while the port was gone (they never reached the host).
    pub frames_into_void: u64,
    /// Times the port came back after vanishing.
    pub returns: u32,
    /// Restarts (new sessions).
    pub restarts: u32,
    /// Armed scans: (scan id, configuration, list), in order.
    pub scans: Vec<(u32, ScanConfig, Vec<i64>)>,
}

/// Orders to the device's thread.
#[derive(Debug, Default)]
struct Orders {
    vanish: Option<Duration>,
    restart: bool,
    mute: Option<bool>,
    inject: Vec<(u8, Vec<u8>)>,
    rewind_seq: Option<u32>,
}

/// A running scripted device (stopped on drop).
#[derive(Debug)]
pub struct ScriptedDevice {
    /// The path the host opens (the symlink, if one was asked for).
    pub path: PathBuf,
    stats: Arc<Mutex<ScriptStats>>,
    release: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    orders: Arc<Mutex<Orders>>,
    link: Option<PathBuf>,
    thread: Option<JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sets `FD_CLOEXEC` on a port's descriptor.
#[allow(unsafe_code)]
fn close_on_exec(port: &TTYPort) -> std::io::Result<()> {
    // SAFETY: the descriptor belongs to `port`, which outlives this borrow.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(port.as_raw_fd()) };
    nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map(|_| ())
    .map_err(std::io::Error::from)
}

/// One pty pair; dropping it closes both sides, so the peer sees the port vanish.
struct PtyPair {
    master: TTYPort,
    _slave: TTYPort,
}

impl PtyPair {
    /// A new pair; with `link`, (re)points that symlink at its slave. Returns the slave path.
    fn open(link: Option<&Path>) -> std::io::Result<(Self, PathBuf)> {
        let (mut master, slave) = TTYPort::pair().map_err(std::io::Error::other)?;
        // Processes started by the caller (an IOC under test) must not inherit these: a copy
        // of the master held elsewhere would keep the port alive after it "vanishes".
        close_on_exec(&master)?;
        close_on_exec(&slave)?;
        let path = slave
            .name()
            .map(PathBuf::from)
            .ok_or_else(|| std::io::Error::other("pty slave has no name"))?;
        master
            .set_timeout(Duration::from_millis(2))
            .map_err(std::io::Error::other)?;
        if let Some(l) = link {
            if l.symlink_metadata().is_ok() {
                std::fs::remove_file(l)?;
            }
            std::os::unix::fs::symlink(&path, l)?;
        }
        Ok((
            Self {
                master,
                _slave: slave,
            },
            path,
        ))
    }
}

struct Scan {
    id: u32,
    cfg: ScanConfig,
    next: u32,
    batch_no: u32,
    next_at: Instant,
}

struct Dev {
    /// `None` while the port is gone.
    port: Option<PtyPair>,
    opts: ScriptOptions,
    seq: u32,
    ring: HashMap<u32, Vec<u8>>,
    gone: HashSet<u32>,
    stats: Arc<Mutex<ScriptStats>>,
    release: Arc<AtomicBool>,
    cfg: Option<ScanConfig>,
    list: Vec<i64>,
    scan: Option<Scan>,
    last_health: Instant,
    points_done: u32,
    scan_id: u32,
    muted: bool,
}

impl Dev {
    fn emit(&mut self, msg: &Message<'_>) -> u32 {
        let mut buf = vec![0u8; MAX_ENCODED_FRAME];
        let Ok(n) = msg.encode_frame(self.seq, &mut buf) else {
            return self.seq;
        };
        buf.truncate(n);
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        self.keep(seq, &buf);
        self.write(&buf);
        seq
    }

    fn keep(&mut self, seq: u32, frame: &[u8]) {
        self.ring.insert(seq, frame.to_vec());
        if self.ring.len() > self.opts.info.resend_frames as usize {
            let oldest = seq.wrapping_sub(self.opts.info.resend_frames);
            self.ring.remove(&oldest);
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut st = lock(&self.stats);
        st.frames_sent += 1;
        if self.muted {
            return;
        }
        match self.port.as_mut() {
            Some(p) => {
                let _ = p.master.write_all(bytes);
                let _ = p.master.flush();
            }
            None => st.frames_into_void += 1,
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

    /// A new session: everything of the old one is gone.
    fn restart(&mut self) {
        self.opts.info.boot_id = self
            .opts
            .info
            .boot_id
            .wrapping_mul(2_654_435_761)
            .wrapping_add(1);
        self.seq = 0;
        self.ring.clear();
        self.gone.clear();
        self.cfg = None;
        self.list.clear();
        self.scan = None;
        self.points_done = 0;
        lock(&self.stats).restarts += 1;
        let info = self.opts.info;
        self.emit(&Message::DeviceInfo(info));
    }

    fn on_host(&mut self, seq: u32, t: u8, msg: Message<'_>) {
        match msg {
            Message::GetInfo => {
                self.reply(seq, t, NakCode::Ack, 0, "");
                let info = self.opts.info;
                self.emit(&Message::DeviceInfo(info));
            }
            Message::Configure(cfg) => {
                {
                    let mut st = lock(&self.stats);
                    st.configures += 1;
                    st.configs.push(cfg);
                }
                if self.scan.is_some() {
                    return self.reply(seq, t, NakCode::Busy, 0, "armed");
                }
                let limits = Limits::device(
                    self.opts.info.n_channels,
                    self.opts.info.max_points,
                    self.opts.info.list_window,
                )
                .with_clock(self.opts.info.clock_hz);
                match cfg.validate(&limits) {
                    Ok(()) => {
                        self.cfg = Some(cfg);
                        self.list.clear();
                        self.reply(seq, t, NakCode::Ack, 0, "");
                    }
                    Err(e) => self.reply(seq, t, NakCode::InvalidConfig, e.code(), &e.to_string()),
                }
            }
            Message::PositionChunk { offset, positions } => {
                lock(&self.stats).chunks += 1;
                if offset as usize != self.list.len() {
                    let n = self.list.len() as u32;
                    return self.reply(seq, t, NakCode::BadChunk, n, "order");
                }
                self.list.extend(positions.iter());
                lock(&self.stats).list.clone_from(&self.list);
                // This device holds the whole list, so the window never fills.
                let free = self.opts.info.list_window;
                self.reply(seq, t, NakCode::Ack, free, "");
            }
            Message::Arm { scan_id } => {
                lock(&self.stats).arms += 1;
                let Some(cfg) = self.cfg else {
                    return self.reply(seq, t, NakCode::NotConfigured, 0, "no config");
                };
                if self.scan.is_some() {
                    return self.reply(seq, t, NakCode::Busy, 0, "armed");
                }
                self.reply(seq, t, NakCode::Ack, 0, "");
                self.emit(&Message::ScanArmed(ScanArmed {
                    scan_id,
                    config: cfg,
                }));
                lock(&self.stats)
                    .scans
                    .push((scan_id, cfg, self.list.clone()));
                self.scan_id = scan_id;
                self.points_done = 0;
                self.scan = Some(Scan {
                    id: scan_id,
                    cfg,
                    next: 0,
                    batch_no: 0,
                    next_at: Instant::now() + self.opts.batch_interval,
                });
            }
            Message::Abort => {
                lock(&self.stats).aborts += 1;
                self.reply(seq, t, NakCode::Ack, 0, "");
                if let Some(s) = self.scan.take() {
                    self.emit(&Message::ScanDone(ScanDone {
                        scan_id: s.id,
                        total_points: s.next,
                        reason: DoneReason::Aborted,
                        error_code: 0,
                    }));
                }
            }
            Message::ResendRequest {
                first_seq,
                last_seq,
            } => {
                lock(&self.stats)
                    .resend_requests
                    .push((first_seq, last_seq));
                self.resend(seq, t, first_seq, last_seq);
            }
            Message::Ping { token } => {
                self.reply(seq, t, NakCode::Ack, 0, "");
                let boot_id = self.opts.info.boot_id;
                self.emit(&Message::Pong {
                    token,
                    uptime_ticks: 0,
                    boot_id,
                });
            }
            _ => self.reply(seq, t, NakCode::UnknownCommand, 0, "?"),
        }
    }

    fn resend(&mut self, seq: u32, t: u8, first_seq: u32, last_seq: u32) {
        let span = last_seq.wrapping_sub(first_seq);
        let held = |d: &Self, q: u32| d.ring.contains_key(&q) && !d.gone.contains(&q);
        let mut frames = Vec::new();
        let mut missing = false;
        let mut oldest_after = None;
        for k in 0..=span {
            let q = first_seq.wrapping_add(k);
            if held(self, q) {
                if missing && oldest_after.is_none() {
                    oldest_after = Some(q);
                }
                if let Some(f) = self.ring.get(&q) {
                    frames.push(f.clone());
                }
            } else {
                missing = true;
                frames.clear();
                oldest_after = None;
            }
        }
        if missing {
            let oldest = oldest_after.unwrap_or(self.seq);
            self.reply(seq, t, NakCode::ResendUnavailable, oldest, "gone");
        } else {
            self.reply(seq, t, NakCode::Ack, 0, "");
        }
        for f in frames {
            self.write(&f);
        }
    }

    fn stream(&mut self) {
        if self.opts.hold && !self.release.load(Ordering::SeqCst) {
            return;
        }
        let Some(mut s) = self.scan.take() else {
            return;
        };
        if Instant::now() < s.next_at {
            self.scan = Some(s);
            return;
        }
        let total = s.cfg.count * u32::from(s.cfg.passes);
        let half = (total / 2).max(1);
        let restart_at = self
            .opts
            .restart_after
            .or(self.opts.restart_half_way.then_some(half));
        let stall_at = self
            .opts
            .stall_after
            .or(self.opts.stall_half_way.then_some(half));
        if restart_at.is_some_and(|n| s.next >= n) {
            self.restart();
            return;
        }
        if stall_at.is_some_and(|n| s.next >= n) {
            self.scan = Some(s);
            return;
        }
        if s.next >= total {
            self.emit(&Message::ScanDone(ScanDone {
                scan_id: s.id,
                total_points: total,
                reason: DoneReason::Completed,
                error_code: 0,
            }));
            lock(&self.stats).scans_done += 1;
            return;
        }
        let mut w = BatchWriter::new(s.cfg.encoding, s.cfg.channel_mask, self.opts.batch_points);
        let first = s.next;
        let limit = [restart_at, stall_at]
            .into_iter()
            .flatten()
            .filter(|&n| n > s.next)
            .min()
            .unwrap_or(total)
            .min(total);
        while s.next < limit && !w.is_full() {
            let p = expected_point(&s.cfg, &self.list, s.next);
            if w.push(&p).is_err() {
                break;
            }
            s.next += 1;
        }
        let batch = PointBatch::from_writer(s.id, first, &w);
        let mut buf = vec![0u8; MAX_ENCODED_FRAME];
        let Ok(n) = Message::PointBatch(batch).encode_frame(self.seq, &mut buf) else {
            self.scan = Some(s);
            return;
        };
        buf.truncate(n);
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        self.keep(seq, &buf);
        let b = s.batch_no;
        if self.opts.unavailable.contains(&b) {
            self.gone.insert(seq);
        } else if self.opts.drop_once.contains(&b) {
            // Not sent now; a resend request will get it.
        } else if self.opts.corrupt_once.contains(&b) {
            let mut bad = buf.clone();
            let k = bad.len() / 2;
            bad[k] = if bad[k] == 0x80 { 0x81 } else { bad[k] ^ 0x80 };
            self.write(&bad);
        } else {
            self.write(&buf);
        }
        self.points_done = s.next;
        {
            let mut st = lock(&self.stats);
            st.batch_times.push((s.next, std::time::SystemTime::now()));
        }
        s.batch_no += 1;
        s.next_at += self.opts.batch_interval;
        self.scan = Some(s);
    }

    fn health(&mut self) {
        if self.last_health.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last_health = Instant::now();
        let state = if self.scan.is_some() {
            DeviceState::Scanning
        } else {
            DeviceState::Configured
        };
        let h = Health {
            state,
            scan_id: self.scan_id,
            points: self.points_done,
            quad_errors: 7,
            position_jumps: 2,
            boot_id: self.opts.info.boot_id,
            ..Default::default()
        };
        self.emit(&Message::Health(h));
    }
}

impl ScriptedDevice {
    /// Starts the device on a new pty (announcing itself with `DeviceInfo`).
    pub fn start(opts: ScriptOptions) -> std::io::Result<Self> {
        let link = opts.link.clone();
        let (pty, slave_path) = PtyPair::open(link.as_deref())?;
        let path = link.clone().unwrap_or(slave_path);
        let stats = Arc::new(Mutex::new(ScriptStats::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let orders = Arc::new(Mutex::new(Orders::default()));
        let thread_link = link.clone();
        let (st, sp, rl, or) = (stats.clone(), stop.clone(), release.clone(), orders.clone());
        let thread = std::thread::spawn(move || {
            let mut dev = Dev {
                port: Some(pty),
                opts,
                seq: 0,
                ring: HashMap::new(),
                gone: HashSet::new(),
                stats: st,
                release: rl,
                cfg: None,
                list: Vec::new(),
                scan: None,
                last_health: Instant::now(),
                points_done: 0,
                scan_id: 0,
                muted: false,
            };
            run(&mut dev, &sp, &or, thread_link.as_deref());
        });
        Ok(Self {
            path,
            stats,
            release,
            stop,
            orders,
            link,
            thread: Some(thread),
        })
    }

    /// What it saw and did so far.
    pub fn stats(&self) -> ScriptStats {
        lock(&self.stats).clone()
    }

    /// Lets held scans stream ([`ScriptOptions::hold`]).
    pub fn release(&self) {
        self.release.store(true, Ordering::SeqCst);
    }

    /// Makes the port disappear now and come back (a new pty, at the same symlink if
    /// [`ScriptOptions::link`] is set) after `away`.
    pub fn vanish(&self, away: Duration) {
        lock(&self.orders).vanish = Some(away);
    }

    /// Restarts now: a new session (new `boot_id`, sequence from 0, nothing configured).
    pub fn restart(&self) {
        lock(&self.orders).restart = true;
    }

    /// Stops (or resumes) answering and sending anything: a device that is gone while its
    /// port stays.
    pub fn mute(&self, muted: bool) {
        lock(&self.orders).mute = Some(muted);
    }

    /// Sends this message as its next frame (forged frames for tests).
    pub fn inject(&self, m: &Message<'_>) {
        let mut payload = vec![0u8; MAX_ENCODED_FRAME];
        if let Ok(n) = m.emit(&mut payload) {
            payload.truncate(n);
            lock(&self.orders)
                .inject
                .push((m.msg_type() as u8, payload));
        }
    }

    /// Sends its next frames with sequence numbers `back` lower than due (a counter that goes
    /// back within the session).
    pub fn rewind_seq(&self, back: u32) {
        lock(&self.orders).rewind_seq = Some(back);
    }
}

fn run(dev: &mut Dev, stop: &AtomicBool, orders: &Mutex<Orders>, link: Option<&Path>) {
    let mut back_at: Option<Instant> = None;
    let info = dev.opts.info;
    dev.emit(&Message::DeviceInfo(info));
    let mut deframer = Box::new(Deframer::new());
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let (vanish, restart, mute, inject, rewind) = {
            let mut o = lock(orders);
            (
                o.vanish.take(),
                std::mem::take(&mut o.restart),
                o.mute.take(),
                std::mem::take(&mut o.inject),
                o.rewind_seq.take(),
            )
        };
        if let Some(away) = vanish {
            // The port disappears (both pty sides close, the symlink goes) while the scan goes
            // on: frames sent meanwhile never reach the host.
            dev.port = None;
            if let Some(l) = link {
                let _ = std::fs::remove_file(l);
            }
            deframer.reset();
            back_at = Some(Instant::now() + away);
        }
        if back_at.is_some_and(|t| Instant::now() >= t) {
            back_at = None;
            dev.port = PtyPair::open(link).ok().map(|p| p.0);
            lock(&dev.stats).returns += 1;
        }
        if restart {
            dev.restart();
        }
        if let Some(m) = mute {
            dev.muted = m;
        }
        if let Some(back) = rewind {
            dev.seq = dev.seq.wrapping_sub(back);
        }
        for (t, payload) in inject {
            if let Ok(m) = Message::parse(t, &payload) {
                dev.emit(&m);
            }
        }
        // A read timeout is the normal idle case.
        let n: usize = match dev.port.as_mut() {
            Some(p) => p.master.read(&mut buf).unwrap_or_default(),
            None => {
                std::thread::sleep(Duration::from_millis(2));
                0
            }
        };
        let mut input = &buf[..n];
        let mut frames = Vec::new();
        loop {
            match deframer.feed(input) {
                flyscan_protocol::Feed::Consumed => break,
                flyscan_protocol::Feed::Frame { frame, remaining } => {
                    frames.push((frame.seq(), frame.msg_type(), frame.payload().to_vec()));
                    input = remaining;
                }
                flyscan_protocol::Feed::Error { remaining, .. } => input = remaining,
            }
        }
        if !dev.muted {
            for (seq, t, payload) in frames {
                if let Ok(m) = Message::parse(t, &payload) {
                    dev.on_host(seq, t, m);
                }
            }
        }
        // Unpaced scans send many batches per turn; the 2 ms read poll would otherwise cap
        // the rate.
        let turns = if dev.opts.batch_interval.is_zero() {
            64
        } else {
            1
        };
        for _ in 0..turns {
            dev.stream();
        }
        if !dev.muted {
            dev.health();
        }
    }
}

impl Drop for ScriptedDevice {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(l) = &self.link {
            let _ = std::fs::remove_file(l);
        }
    }
}
