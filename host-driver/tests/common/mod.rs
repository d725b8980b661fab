//! Test harness: a fake device on a pseudo-terminal speaking the protocol crate's frames, the
//! `flyscan-ioc` binary (the IOC with the driver inside), and independent CA clients (C
//! `caget`, pyepics, caproto).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use flyscan_host::launcher::{self as ioc, FlyscanIoc, IocOptions};
use flyscan_protocol::limits::MAX_ENCODED_FRAME;
use flyscan_protocol::message::Message;
use flyscan_protocol::{
    BatchWriter, CommandReply, Deframer, DeviceInfo, DeviceState, DoneReason, Encoding, Health,
    NakCode, Point, PointBatch, PointFlags, ScanArmed, ScanConfig, ScanDone, TriggerMode,
};
use serialport::{SerialPort, TTYPort};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const CLOCK_HZ: u64 = 1_000_000;

/// The value every test expects for point `i` (the fake device sends exactly this).
pub fn expected_point(cfg: &ScanConfig, list: &[i64], i: u32) -> Point {
    let k = i % cfg.count.max(1);
    let position = match cfg.mode {
        TriggerMode::StartStepCount => cfg.start + i64::from(k) * cfg.step,
        TriggerMode::List => list.get(k as usize).copied().unwrap_or(0),
    };
    let mut p = Point {
        position,
        timestamp: 5_000_000 + u64::from(i) * 12_345 + u64::from(i % 3),
        live_time: 11_000 + i % 7,
        flags: PointFlags(if i == 0 { PointFlags::PASS_START } else { 0 }),
        counts: Default::default(),
    };
    for ch in 0..32u32 {
        if cfg.channel_mask & (1 << ch) != 0 {
            // Channel 0 exceeds i32 on purpose: the waveforms must carry full u32 counts.
            let base = if ch == 0 { 3_000_000_000u32 } else { ch * 1000 };
            let _ = p.counts.push(base + i * 7 + (i * i) % 13);
        }
    }
    p
}

#[derive(Debug, Clone)]
pub struct DevOptions {
    pub info: DeviceInfo,
    pub batch_points: u16,
    pub batch_interval: Duration,
    /// Batch numbers whose first transmission is dropped (resend works).
    pub drop_once: HashSet<u32>,
    /// Batch numbers dropped and reported gone (nak ResendUnavailable).
    pub unavailable: HashSet<u32>,
    /// Batch numbers sent once with one corrupted byte (resend works).
    pub corrupt_once: HashSet<u32>,
    /// Hold the scan after arming until `release` is set.
    pub hold: bool,
    /// Publish the port as this symlink (re-pointed when the port comes back after
    /// [`FakeDevice::vanish`]).
    pub link: Option<PathBuf>,
}

impl Default for DevOptions {
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
            link: None,
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct DevStats {
    pub configures: u32,
    pub arms: u32,
    pub aborts: u32,
    pub chunks: u32,
    pub resend_requests: Vec<(u32, u32)>,
    pub configs: Vec<ScanConfig>,
    pub list: Vec<i64>,
    pub scans_done: u32,
    pub frames_sent: u64,
    /// (points sent so far, wall-clock time the batch was written), per batch.
    pub batch_times: Vec<(u32, std::time::SystemTime)>,
    /// Frames written while the port was gone (never reached the host).
    pub frames_into_void: u64,
    /// Times the port came back after vanishing.
    pub returns: u32,
}

pub struct FakeDevice {
    pub path: PathBuf,
    pub stats: Arc<Mutex<DevStats>>,
    pub release: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    vanish: Arc<Mutex<Option<Duration>>>,
    link: Option<PathBuf>,
    thread: Option<JoinHandle<()>>,
}

/// One pty pair; dropping it closes both sides, so the peer sees the port vanish.
struct Pty {
    master: TTYPort,
    _slave: TTYPort,
}

impl Pty {
    /// A new pair; with `link`, (re)points that symlink at its slave. Returns the slave path.
    fn open(link: Option<&std::path::Path>) -> (Self, PathBuf) {
        let (mut master, slave) = TTYPort::pair().expect("pty pair");
        // Processes the tests start (the driver among them) must not inherit these: a copy of
        // the master held elsewhere would keep the port alive after it "vanishes".
        close_on_exec(&master);
        close_on_exec(&slave);
        let path = PathBuf::from(slave.name().expect("pty name"));
        master
            .set_timeout(Duration::from_millis(2))
            .expect("timeout");
        if let Some(l) = link {
            let _ = std::fs::remove_file(l);
            std::os::unix::fs::symlink(&path, l).expect("symlink");
        }
        (
            Self {
                master,
                _slave: slave,
            },
            path,
        )
    }
}

/// Sets `FD_CLOEXEC` on a port's descriptor.
#[allow(unsafe_code)]
fn close_on_exec(port: &TTYPort) {
    use std::os::fd::AsRawFd;
    let fd = port.as_raw_fd();
    // SAFETY: fcntl on a descriptor this port owns and keeps open; no memory is passed.
    let ok = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } == 0;
    assert!(ok, "fcntl FD_CLOEXEC failed");
}

struct Dev {
    /// `None` while the port is gone.
    port: Option<Pty>,
    opts: DevOptions,
    seq: u32,
    ring: HashMap<u32, Vec<u8>>,
    gone: HashSet<u32>,
    stats: Arc<Mutex<DevStats>>,
    release: Arc<AtomicBool>,
    cfg: Option<ScanConfig>,
    list: Vec<i64>,
    scan: Option<Scan>,
    last_health: Instant,
    points_done: u32,
    scan_id: u32,
}

struct Scan {
    id: u32,
    cfg: ScanConfig,
    next: u32,
    batch_no: u32,
    next_at: Instant,
}

impl Dev {
    fn emit(&mut self, msg: &Message<'_>) -> u32 {
        let mut buf = vec![0u8; MAX_ENCODED_FRAME];
        let n = msg.encode_frame(self.seq, &mut buf).expect("encode");
        buf.truncate(n);
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        self.ring.insert(seq, buf.clone());
        if self.ring.len() > self.opts.info.resend_frames as usize {
            let oldest = seq.wrapping_sub(self.opts.info.resend_frames);
            self.ring.remove(&oldest);
        }
        self.write(&buf);
        seq
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut st = self.stats.lock().unwrap();
        st.frames_sent += 1;
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

    fn on_host(&mut self, seq: u32, t: u8, msg: Message<'_>) {
        match msg {
            Message::GetInfo => {
                let info = self.opts.info;
                self.emit(&Message::DeviceInfo(info));
            }
            Message::Configure(cfg) => {
                self.stats.lock().unwrap().configures += 1;
                self.stats.lock().unwrap().configs.push(cfg);
                if self.scan.is_some() {
                    return self.reply(seq, t, NakCode::Busy, 0, "armed");
                }
                match cfg.validate(&flyscan_protocol::Limits::device(
                    self.opts.info.n_channels,
                    self.opts.info.max_points,
                    self.opts.info.list_window,
                )) {
                    Ok(()) => {
                        self.cfg = Some(cfg);
                        self.list.clear();
                        self.reply(seq, t, NakCode::Ack, 0, "");
                    }
                    Err(e) => self.reply(seq, t, NakCode::InvalidConfig, 0, &e.to_string()),
                }
            }
            Message::PositionChunk { offset, positions } => {
                self.stats.lock().unwrap().chunks += 1;
                if offset as usize != self.list.len() {
                    return self.reply(seq, t, NakCode::BadChunk, self.list.len() as u32, "order");
                }
                self.list.extend(positions.iter());
                self.stats.lock().unwrap().list = self.list.clone();
                // This fake holds the whole list, so the window never fills.
                let free = self.opts.info.list_window;
                self.reply(seq, t, NakCode::Ack, free, "");
            }
            Message::Arm { scan_id } => {
                self.stats.lock().unwrap().arms += 1;
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
                self.stats.lock().unwrap().aborts += 1;
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
                self.stats
                    .lock()
                    .unwrap()
                    .resend_requests
                    .push((first_seq, last_seq));
                let mut s = first_seq;
                let mut frames = Vec::new();
                loop {
                    if self.gone.contains(&s) || !self.ring.contains_key(&s) {
                        // Everything up to and including s is gone: oldest held is s + 1.
                        let oldest = (s.wrapping_add(1)..=last_seq)
                            .find(|q| self.ring.contains_key(q) && !self.gone.contains(q))
                            .unwrap_or(self.seq);
                        self.reply(seq, t, NakCode::ResendUnavailable, oldest, "gone");
                        frames.clear();
                        // Resend what is still held after the lost part.
                        let mut q = oldest;
                        while q.wrapping_sub(oldest) <= last_seq.wrapping_sub(oldest)
                            && last_seq.wrapping_sub(oldest) < 1 << 31
                        {
                            if let Some(f) = self.ring.get(&q) {
                                frames.push(f.clone());
                            }
                            if q == last_seq {
                                break;
                            }
                            q = q.wrapping_add(1);
                        }
                        break;
                    }
                    frames.push(self.ring[&s].clone());
                    if s == last_seq {
                        self.reply(seq, t, NakCode::Ack, 0, "");
                        break;
                    }
                    s = s.wrapping_add(1);
                }
                for f in frames {
                    self.write(&f);
                }
            }
            Message::Ping { token } => {
                self.emit(&Message::Pong {
                    token,
                    uptime_ticks: 0,
                    boot_id: self.opts.info.boot_id,
                });
            }
            _ => self.reply(seq, t, NakCode::UnknownCommand, 0, "?"),
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
        if s.next >= total {
            self.emit(&Message::ScanDone(ScanDone {
                scan_id: s.id,
                total_points: total,
                reason: DoneReason::Completed,
                error_code: 0,
            }));
            self.stats.lock().unwrap().scans_done += 1;
            return;
        }
        let mut w = BatchWriter::new(s.cfg.encoding, s.cfg.channel_mask, self.opts.batch_points);
        let first = s.next;
        while s.next < total && !w.is_full() {
            let p = expected_point(&s.cfg, &self.list, s.next);
            if w.push(&p).is_err() {
                break;
            }
            s.next += 1;
        }
        let batch = PointBatch::from_writer(s.id, first, &w);
        let mut buf = vec![0u8; MAX_ENCODED_FRAME];
        let n = Message::PointBatch(batch)
            .encode_frame(self.seq, &mut buf)
            .expect("encode");
        buf.truncate(n);
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        self.ring.insert(seq, buf.clone());
        let b = s.batch_no;
        if self.opts.unavailable.contains(&b) {
            self.gone.insert(seq);
        } else if self.opts.drop_once.contains(&b) {
            // not sent now; resend request will get it
        } else if self.opts.corrupt_once.contains(&b) {
            let mut bad = buf.clone();
            let k = bad.len() / 2;
            bad[k] = if bad[k] == 0x80 { 0x81 } else { bad[k] ^ 0x80 };
            self.write(&bad);
        } else {
            self.write(&buf);
        }
        self.points_done = s.next;
        self.stats
            .lock()
            .unwrap()
            .batch_times
            .push((s.next, std::time::SystemTime::now()));
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

impl FakeDevice {
    pub fn start(opts: DevOptions) -> Self {
        let link = opts.link.clone();
        let (pty, slave_path) = Pty::open(link.as_deref());
        let path = link.clone().unwrap_or(slave_path);
        let stats = Arc::new(Mutex::new(DevStats::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let vanish = Arc::new(Mutex::new(None::<Duration>));
        let thread_link = link.clone();
        let (st, sp, rl, va) = (stats.clone(), stop.clone(), release.clone(), vanish.clone());
        let thread = std::thread::spawn(move || {
            let mut back_at: Option<Instant> = None;
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
            };
            let info = dev.opts.info;
            dev.emit(&Message::DeviceInfo(info));
            let mut deframer = Box::new(Deframer::new());
            let mut buf = [0u8; 4096];
            while !sp.load(Ordering::SeqCst) {
                if let Some(away) = va.lock().unwrap().take() {
                    // The port disappears (both pty sides close, the symlink goes) while the
                    // scan goes on: frames sent meanwhile never reach the host.
                    dev.port = None;
                    if let Some(l) = &thread_link {
                        let _ = std::fs::remove_file(l);
                    }
                    deframer.reset();
                    back_at = Some(Instant::now() + away);
                }
                if back_at.is_some_and(|t| Instant::now() >= t) {
                    back_at = None;
                    dev.port = Some(Pty::open(thread_link.as_deref()).0);
                    dev.stats.lock().unwrap().returns += 1;
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
                            frames.push(frame.body().to_vec());
                            input = remaining;
                        }
                        flyscan_protocol::Feed::Error { remaining, .. } => input = remaining,
                    }
                }
                for body in frames {
                    let f = flyscan_protocol::Frame::new_checked(&body).expect("checked");
                    if let Ok(m) = f.message() {
                        dev.on_host(f.seq(), f.msg_type(), m);
                    }
                }
                // Unpaced scans send many batches per turn; the 2 ms read poll would
                // otherwise cap the rate.
                let turns = if dev.opts.batch_interval.is_zero() {
                    64
                } else {
                    1
                };
                for _ in 0..turns {
                    dev.stream();
                }
                dev.health();
            }
        });
        Self {
            path,
            stats,
            release,
            stop,
            vanish,
            link,
            thread: Some(thread),
        }
    }

    pub fn stats(&self) -> DevStats {
        self.stats.lock().unwrap().clone()
    }

    /// Makes the port disappear now and come back (a new pty, at the same symlink if
    /// [`DevOptions::link`] is set) after `away`.
    pub fn vanish(&self, away: Duration) {
        *self.vanish.lock().unwrap() = Some(away);
    }
}

impl Drop for FakeDevice {
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

/// Peak resident set of a process so far, bytes (VmHWM).
pub fn peak_rss(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// Options for a `flyscan-ioc` of 4 channels on `serial`.
pub fn ioc_options(prefix: &str, serial: &std::path::Path, npts: usize) -> IocOptions {
    IocOptions::new(env!("CARGO_BIN_EXE_flyscan-ioc"), prefix, serial, 4, npts)
}

/// Starts a `flyscan-ioc` of 4 channels on `serial`.
pub fn start_ioc(prefix: &str, serial: &std::path::Path, npts: usize) -> FlyscanIoc {
    FlyscanIoc::start(ioc_options(prefix, serial, npts)).expect("flyscan-ioc")
}

/// `caget` (C client) of a PV; arrays come back as numbers, printed with 17 digits.
pub fn caget(ioc: &FlyscanIoc, pv: &str) -> Vec<f64> {
    let out = Command::new(ioc::ca_tool("caget"))
        .args(["-t", "-n", "-w", "5", "-g", "17", pv])
        .envs(ioc.client_env())
        .output()
        .expect("caget");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "caget {pv} failed: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let words: Vec<&str> = text.split_whitespace().collect();
    let nums: Vec<f64> = words
        .iter()
        .map(|w| {
            if *w == "nan" || *w == "-nan" {
                f64::NAN
            } else {
                w.parse().unwrap_or(f64::NAN)
            }
        })
        .collect();
    nums
}

/// `caget` of a waveform: reads `.NORD`, then that many elements (this caget otherwise
/// returns all NELM elements).
pub fn caget_array(ioc: &FlyscanIoc, pv: &str) -> Vec<f64> {
    let nord = caget(ioc, &format!("{pv}.NORD"))[0] as usize;
    if nord == 0 {
        return Vec::new();
    }
    let out = Command::new(ioc::ca_tool("caget"))
        .args(["-t", "-w", "5", "-g", "17", "-#", &nord.to_string(), pv])
        .envs(ioc.client_env())
        .output()
        .expect("caget");
    assert!(
        out.status.success(),
        "caget {pv}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<f64> = text
        .split_whitespace()
        .map(|w| w.parse().unwrap_or(f64::NAN))
        .collect();
    // First number is the element count.
    assert_eq!(
        nums.first().copied(),
        Some(nord as f64),
        "caget count for {pv}"
    );
    nums[1..].to_vec()
}

pub fn caget_text(ioc: &FlyscanIoc, pv: &str) -> String {
    let out = Command::new(ioc::ca_tool("caget"))
        .args(["-t", "-w", "5", "-S", pv])
        .envs(ioc.client_env())
        .output()
        .expect("caget");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn caput(ioc: &FlyscanIoc, pv: &str, value: &str) {
    let out = Command::new(ioc::ca_tool("caput"))
        .args(["-t", "-w", "5", pv, value])
        .envs(ioc.client_env())
        .output()
        .expect("caput");
    assert!(
        out.status.success(),
        "caput {pv} {value}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn caput_array(ioc: &FlyscanIoc, pv: &str, values: &[f64]) {
    let mut args = vec![
        "-t".to_owned(),
        "-w".into(),
        "5".into(),
        "-a".into(),
        pv.to_owned(),
        values.len().to_string(),
    ];
    args.extend(values.iter().map(|v| v.to_string()));
    let out = Command::new(ioc::ca_tool("caput"))
        .args(&args)
        .envs(ioc.client_env())
        .output()
        .expect("caput");
    assert!(
        out.status.success(),
        "caput -a {pv}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn python(ioc: &FlyscanIoc) -> Command {
    let mut c = Command::new(ioc::venv_dir().join("bin").join("python"));
    c.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ca_client.py"))
        .envs(ioc.client_env());
    c
}

/// pyepics reads of several PVs.
pub fn pyget(ioc: &FlyscanIoc, pvs: &[String]) -> serde_json::Value {
    let out = python(ioc).arg("get").args(pvs).output().expect("python");
    assert!(
        out.status.success(),
        "pyepics get: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Starts a pyepics monitor (returns once it is connected); `finish` gives what it saw.
pub struct PyMonitor(Child);

impl PyMonitor {
    pub fn start(ioc: &FlyscanIoc, kind: &str, pv: &str, seconds: f64) -> Self {
        let mut child = python(ioc)
            .args([kind, pv, &seconds.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python");
        let mut out = child.stdout.take().unwrap();
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while out.read(&mut b).unwrap_or(0) == 1 && b[0] != b'\n' {
            line.push(b[0]);
        }
        assert_eq!(String::from_utf8_lossy(&line), "READY");
        child.stdout = Some(out);
        Self(child)
    }

    pub fn finish(self) -> serde_json::Value {
        let out = self.0.wait_with_output().expect("python");
        serde_json::from_slice(&out.stdout).expect("json")
    }
}

/// Runs `n` rounds of "write a random valid configuration, then Arm at once, wait for the end"
/// in one pyepics process; returns the configurations written, in order.
pub fn race(ioc: &FlyscanIoc, n: u32, seed: u64) -> serde_json::Value {
    let out = python(ioc)
        .args(["race", ioc.prefix(), &n.to_string(), &seed.to_string()])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "race: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        ioc.log_text()
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// `pvget` (PV Access, C++ client) of an array PV: the `value:[…]` of its `-M json` output.
pub fn pvget_array(ioc: &FlyscanIoc, pv: &str) -> Vec<f64> {
    let out = Command::new(ioc::ca_tool("pvget"))
        .args(["-w", "5", "-M", "json", pv])
        .envs(ioc.client_env())
        .output()
        .expect("pvget");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "pvget {pv}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let start = text
        .find("value:[")
        .unwrap_or_else(|| panic!("pvget {pv}: no value array in {text}"))
        + "value:[".len();
    let end = start + text[start..].find(']').expect("closing bracket");
    text[start..end]
        .split(',')
        .filter(|w| !w.trim().is_empty())
        .map(|w| {
            let w = w.trim();
            if w.eq_ignore_ascii_case("nan") || w.eq_ignore_ascii_case("-nan") {
                f64::NAN
            } else {
                w.parse().unwrap_or_else(|_| panic!("pvget {pv}: {w:?}"))
            }
        })
        .collect()
}

pub fn caput_as(ioc: &FlyscanIoc, host: &str, pv: &str, value: f64) -> serde_json::Value {
    let out = python(ioc)
        .args(["put_as", host, pv, &value.to_string()])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "caproto put: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Polls `f` until it returns Some, or panics after `secs` with `what` and the IOC's log.
pub fn wait_for<T>(
    secs: u64,
    what: &str,
    ioc: Option<&FlyscanIoc>,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out waiting for {what}\n--- IOC log ---\n{}",
                ioc.map(|d| d.log_text()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Expected waveforms for `n` points of `cfg`.
pub struct Expected {
    pub position: Vec<f64>,
    pub timestamp: Vec<f64>,
    pub live_time: Vec<f64>,
    pub channels: Vec<Vec<f64>>,
}

pub fn expected(cfg: &ScanConfig, list: &[i64], n: u32) -> Expected {
    let mut e = Expected {
        position: vec![],
        timestamp: vec![],
        live_time: vec![],
        channels: vec![vec![]; 32],
    };
    for i in 0..n {
        let p = expected_point(cfg, list, i);
        e.position.push(p.position as f64);
        e.timestamp.push(p.timestamp as f64 / CLOCK_HZ as f64);
        e.live_time.push(f64::from(p.live_time) / CLOCK_HZ as f64);
        let mut c = p.counts.iter();
        for ch in 0..32 {
            if cfg.channel_mask & (1 << ch) != 0 {
                e.channels[ch].push(f64::from(*c.next().unwrap()));
            }
        }
    }
    e
}

/// Exact equality that treats NaN as equal to NaN (lost points).
pub fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
}

pub fn json_f64s(v: &serde_json::Value) -> Vec<f64> {
    match v {
        serde_json::Value::Array(a) => a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect(),
        x => vec![x.as_f64().unwrap_or(f64::NAN)],
    }
}

pub fn unique_prefix(name: &str) -> String {
    format!("T{}{}:", std::process::id() % 10000, name)
}

pub fn encoding_default() -> Encoding {
    Encoding::Compact
}

/// Asserts exact equality (NaN = NaN), reporting the first difference.
pub fn assert_same(got: &[f64], want: &[f64], what: &str) {
    if same(got, want) {
        return;
    }
    let first = got
        .iter()
        .zip(want)
        .position(|(x, y)| !(x == y || (x.is_nan() && y.is_nan())));
    panic!(
        "{what}: got {} values, want {}; first difference at {first:?}: got {:?} want {:?}",
        got.len(),
        want.len(),
        first.and_then(|i| got.get(i)),
        first.and_then(|i| want.get(i))
    );
}
