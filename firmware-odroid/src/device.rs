//! The top-level [`Firmware`]: a sans-I/O device. The caller moves bytes and time:
//!
//! ```text
//! loop {
//!     fw.receive(&bytes_from_host);          // any chunking
//!     fw.poll(now_ticks)?;                   // FPGA edges → compare → latch → batches, health
//!     let n = fw.transmit(&mut buf);         // bytes for the serial line
//! }
//! ```
//!
//! Every host command gets exactly one `CommandReply` (ack, or nak with a code and detail);
//! malformed or ill-timed commands change nothing else, so the device stays usable. State
//! machine: `Idle` --Configure--> `Configured` --Arm--> `Armed` --first point--> `Scanning`
//! --last point / Abort--> `Configured` (after `ScanDone` and a `Health`).
//!
//! Noisy lines: every `ResendRequest` and every damaged host frame halves the byte cap of new
//! point batches, and loss-free time grows it back ([`crate::batch_cap`]), so frames stay short
//! enough to cross the line while it is bad; resends only use line time new data leaves over
//! ([`crate::outbox`]).

use crate::batch_cap::{BatchCap, QUIET_US};
use crate::compare::{ChunkError, Comparator, LIST_WINDOW, Next};
use crate::fpga::regs::{self, MAX_EDGES_PER_READ, reg};
use crate::fpga::{EdgeEvent, Fpga, FpgaError, FpgaInfo, Snapshot};
use crate::latch::{Latch, Latched};
use crate::outbox::{Class, Outbox, RESEND_FRAMES};
use crate::period::{Kind, Periods, TimerCmd};
use crate::quadrature::{Decoder, Direction as Moving};
use crate::stream::Batcher;
use embedded_hal::digital::InputPin;
use embedded_hal::spi::SpiDevice;
use flyscan_protocol::limits::MAX_BODY;
use flyscan_protocol::{
    CommandReply, ConfigError, Deframer, DeviceInfo, DeviceState, DoneReason, Feed, Health,
    Message, NakCode, PROTOCOL_VERSION, ParseError, Point, PointFlags, ScanArmed, ScanConfig,
    ScanDone, TriggerMode,
};

/// Error of [`Firmware::new`]: the FPGA driver's error (`BadId`, `BadRegister`, bus errors).
pub type InitError<SPI, DRDY> = FpgaError<SPI, DRDY>;

/// Firmware version from the crate version, for `DeviceInfo`.
const fn parse_u16(s: &str) -> u16 {
    let b = s.as_bytes();
    let mut v: u16 = 0;
    let mut i = 0;
    while i < b.len() {
        v = v.wrapping_mul(10).wrapping_add((b[i] - b'0') as u16);
        i += 1;
    }
    v
}

/// Tunables of the firmware (defaults suit the ODROID binary and the simulator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Firmware version reported in `DeviceInfo` (major, minor, patch).
    pub fw_version: (u16, u16, u16),
    /// Longest list / most presets per pass accepted.
    pub max_points: u32,
    /// Health message period on a clean line, µs of device time.
    pub health_period_us: u32,
    /// Health message period while the line loses frames (the batch cap is below its maximum):
    /// a host learns of a lost last frame from the next Health's sequence number, so it comes
    /// sooner; on a clean line a rarer Health leaves more of a slow line to the points.
    pub health_period_lossy_us: u32,
    /// Batch latency when the configuration says 0, µs.
    pub default_latency_us: u32,
    /// Most edges handled per [`Firmware::poll`] (bounds the time of one call).
    pub max_edges_per_poll: usize,
    /// Session id sent in `DeviceInfo`, `Health` and `Pong`: the binary draws it at random at
    /// every start, so the host tells a restarted device from one that merely went quiet.
    pub boot_id: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            fw_version: (
                parse_u16(env!("CARGO_PKG_VERSION_MAJOR")),
                parse_u16(env!("CARGO_PKG_VERSION_MINOR")),
                parse_u16(env!("CARGO_PKG_VERSION_PATCH")),
            ),
            max_points: 16_777_216,
            health_period_us: 1_000_000,
            health_period_lossy_us: 100_000,
            default_latency_us: 10_000,
            max_edges_per_poll: 4096,
            boot_id: 0,
        }
    }
}

/// What one [`Firmware::poll`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PollStatus {
    /// Edge events handled.
    pub edges: usize,
    /// Points latched.
    pub points: usize,
    /// Work is left (edges buffered or waiting in the FPGA, or a batch waits for queue room):
    /// poll again soon.
    pub more: bool,
}

/// Counters beyond the protocol's `Health` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Edge events lost in the FPGA (sum of sequence gaps, less the period events in them).
    pub lost_edges: u64,
    /// Period events lost in the FPGA (time mode; their periods joined the next point's bin).
    pub lost_periods: u64,
    /// Points whose snapshot had been overwritten (counts reported as 0).
    pub lost_snapshots: u64,
    /// Control frames dropped because the transmit queue was full.
    pub tx_dropped: u64,
    /// Polls that stopped because a batch waited for transmit-queue room.
    pub tx_stalls: u64,
    /// Times the next list position was needed before the host had sent it.
    pub list_underruns: u64,
    /// Requested frames already waiting to be resent (sent once, not again).
    pub resend_duplicates: u64,
    /// Loss signals (resend requests, damaged host frames) that shrank the batch cap.
    pub loss_signals: u64,
}

/// An edge whose preset comparisons are not finished, or a period event whose point is not
/// made yet (a batch was waiting for room).
#[derive(Debug, Clone, Copy)]
struct Current {
    ev: EdgeEvent,
    x: i64,
    jumpy: bool,
    fired: u32,
    snap_read: bool,
}

/// The firmware core (see the module doc).
pub struct Firmware<SPI, DRDY> {
    fpga: Fpga<SPI, DRDY>,
    info: FpgaInfo,
    settings: Settings,
    decoder: Decoder,
    expect_seq: u32,
    cmp: Comparator,
    /// Time mode: the period events' bookkeeping of the armed (or last) scan.
    periods: Option<Periods>,
    /// What the FPGA's period timer is still to be told.
    timer: TimerCmd,
    latch: Latch,
    config: Option<ScanConfig>,
    state: DeviceState,
    scan_id: u32,
    points: u32,
    need_base: bool,
    quad_in_bin: bool,
    finishing: Option<DoneReason>,
    batch: Batcher,
    cap: BatchCap,
    outbox: Outbox,
    deframer: Deframer,
    edges: [EdgeEvent; MAX_EDGES_PER_READ],
    edge_pos: usize,
    edge_len: usize,
    cur: Option<Current>,
    snap: Snapshot,
    point: Point,
    now: u64,
    last_health: u64,
    health: Health,
    counters: Counters,
}

impl<SPI: SpiDevice, DRDY: InputPin> Firmware<SPI, DRDY> {
    /// Checks the FPGA ID, resets it (FPGA.md §Reset sequence) and queues `DeviceInfo`.
    pub fn new(
        mut fpga: Fpga<SPI, DRDY>,
        settings: Settings,
    ) -> Result<Self, InitError<SPI, DRDY>> {
        let (info, ab) = fpga.init()?;
        let mut fw = Self {
            fpga,
            info,
            settings,
            decoder: Decoder::new(ab, 0),
            expect_seq: 0,
            cmp: Comparator::default(),
            periods: None,
            timer: TimerCmd::None,
            latch: Latch::new(info.counter_bits),
            config: None,
            state: DeviceState::Idle,
            scan_id: 0,
            points: 0,
            need_base: false,
            quad_in_bin: false,
            finishing: None,
            batch: Batcher::default(),
            cap: BatchCap::default(),
            outbox: Outbox::default(),
            deframer: Deframer::new(),
            edges: [EdgeEvent::default(); MAX_EDGES_PER_READ],
            edge_pos: 0,
            edge_len: 0,
            cur: None,
            snap: Snapshot::default(),
            point: Point::default(),
            now: 0,
            last_health: 0,
            health: Health::default(),
            counters: Counters::default(),
        };
        fw.send_control(&Message::DeviceInfo(fw.device_info()));
        Ok(fw)
    }

    /// Identity and limits, as sent in `DeviceInfo`.
    pub fn device_info(&self) -> DeviceInfo {
        DeviceInfo {
            protocol_version: PROTOCOL_VERSION,
            fw_major: self.settings.fw_version.0,
            fw_minor: self.settings.fw_version.1,
            fw_patch: self.settings.fw_version.2,
            n_channels: self.info.n_channels,
            counter_bits: self.info.counter_bits,
            clock_hz: u64::from(self.info.clock_hz),
            fifo_depth: self.info.edge_fifo_depth,
            resend_frames: RESEND_FRAMES as u32,
            max_points: self.settings.max_points,
            list_window: LIST_WINDOW as u32,
            boot_id: self.settings.boot_id,
        }
    }

    /// The FPGA design properties read at start-up.
    pub fn fpga_info(&self) -> FpgaInfo {
        self.info
    }

    /// Reads the FPGA clock (the time base to pass to [`Firmware::poll`]).
    pub fn fpga_time(&mut self) -> Result<u64, FpgaError<SPI, DRDY>> {
        self.fpga.read_time()
    }

    /// Host → device bytes, in chunks of any size. Complete frames are handled at once (their
    /// replies are queued for [`Firmware::transmit`]); damaged frames are counted in `rx_errors`.
    pub fn receive(&mut self, mut bytes: &[u8]) {
        let mut body = [0u8; MAX_BODY];
        loop {
            let (len, seq, ty) = match self.deframer.feed(bytes) {
                Feed::Consumed => return,
                Feed::Error { remaining, .. } => {
                    self.health.rx_errors += 1;
                    // A damaged host frame says the line is noisy (often both ways).
                    self.loss_seen();
                    bytes = remaining;
                    continue;
                }
                Feed::Frame { frame, remaining } => {
                    bytes = remaining;
                    let p = frame.payload();
                    body[..p.len()].copy_from_slice(p);
                    (p.len(), frame.seq(), frame.msg_type())
                }
            };
            self.handle(seq, ty, &body[..len]);
        }
    }

    /// Does the device's work at device time `now_ticks` (FPGA clock): drains edge events,
    /// decodes, compares, latches, batches, and sends health and due batches. On an FPGA error
    /// nothing is lost: call again later.
    pub fn poll(&mut self, now_ticks: u64) -> Result<PollStatus, FpgaError<SPI, DRDY>> {
        self.now = now_ticks;
        let quiet = self.ticks(QUIET_US);
        self.cap.tick(now_ticks, quiet);
        self.batch.set_cap(self.cap.bytes());
        self.outbox.pump();
        self.drive_timer()?;
        self.try_finish();
        let points_before = self.points;
        let mut st = PollStatus::default();
        let mut stalled = !self.compare_current()?;
        while !stalled && st.edges < self.settings.max_edges_per_poll {
            if self.edge_pos == self.edge_len && !self.fetch_edges(st.edges)? {
                break;
            }
            let ev = self.edges[self.edge_pos];
            self.edge_pos += 1;
            st.edges += 1;
            self.decode(ev)?;
            stalled = !self.compare_current()?;
        }
        if stalled {
            self.counters.tx_stalls += 1;
        }
        self.try_finish();
        // A batch at its byte cap goes now rather than with the next point. A batch whose
        // latency budget is used up goes only if the line is nearly idle: with a frame or more
        // already queued ahead of it, flushing would not bring its points to the wire sooner,
        // only make more, smaller frames (more overhead exactly when the line is saturated).
        // On a lossy line (cap below its maximum) small frames are the point, so flush as usual.
        let line_busy = self.outbox.queued() >= flyscan_protocol::limits::MAX_ENCODED_FRAME
            && self.cap.bytes() >= crate::batch_cap::CAP_MAX;
        if (self.batch.due(now_ticks) && !line_busy) || !self.batch.has_room() {
            self.batch.flush(&mut self.outbox);
        }
        let period_us = if self.cap.bytes() >= crate::batch_cap::CAP_MAX {
            self.settings.health_period_us
        } else {
            self.settings.health_period_lossy_us
        };
        let period = self.ticks(u64::from(period_us));
        if now_ticks.wrapping_sub(self.last_health) >= period {
            self.send_health();
        }
        st.points = self.points.wrapping_sub(points_before) as usize;
        st.more = stalled
            || self.edge_pos < self.edge_len
            || st.edges >= self.settings.max_edges_per_poll;
        Ok(st)
    }

    /// Moves up to `out.len()` bytes for the serial line into `out`; returns how many.
    pub fn transmit(&mut self, out: &mut [u8]) -> usize {
        self.outbox.transmit(out)
    }

    /// Bytes waiting in the transmit queue.
    pub fn tx_queued(&self) -> usize {
        self.outbox.queued()
    }

    /// Health counters now (what the next `Health` message will carry).
    pub fn stats(&self) -> Health {
        let mut h = self.health;
        h.uptime_ticks = self.now;
        h.state = self.state;
        h.scan_id = self.scan_id;
        h.position = self.decoder.position();
        h.points = self.points;
        h.quad_errors = self.decoder.illegal();
        h.frames_sent = self.outbox.frames_sent();
        h.resends = self.outbox.resends();
        h.resend_misses = self.outbox.resend_misses();
        h.boot_id = self.settings.boot_id;
        h
    }

    /// Counters beyond `Health`.
    pub fn counters(&self) -> Counters {
        let mut c = self.counters;
        c.tx_dropped = self.outbox.dropped();
        c.resend_duplicates = self.outbox.resend_duplicates();
        c.loss_signals = self.cap.shrinks();
        c
    }

    /// The byte cap new point batches are held to now (adapted to line noise; see
    /// [`crate::batch_cap`]).
    pub fn batch_cap(&self) -> usize {
        self.cap.bytes()
    }

    /// Per-scan totals of each hardware channel (u64) and of live time, since the last Arm.
    pub fn totals(&self) -> (&[u64; 32], u64) {
        (self.latch.totals(), self.latch.live_total())
    }

    /// Current decoded position.
    pub fn position(&self) -> i64 {
        self.decoder.position()
    }

    /// Hands back the FPGA driver.
    pub fn release(self) -> Fpga<SPI, DRDY> {
        self.fpga
    }

    // ---- edges -------------------------------------------------------------------------

    /// Tells the FPGA's period timer what the scan needs: started at the arm (the clock is read
    /// first, so that period events an earlier timer left in the FIFO are known as stale), stopped
    /// when the scan ends. An SPI error leaves the command for the next poll.
    fn drive_timer(&mut self) -> Result<(), FpgaError<SPI, DRDY>> {
        match self.timer {
            TimerCmd::None => return Ok(()),
            TimerCmd::Start(period) => {
                let now = self.fpga.read_time()?;
                self.fpga.write_reg(reg::PERIOD, period)?;
                if let Some(p) = &mut self.periods {
                    p.started_after(now);
                }
            }
            TimerCmd::Stop => self.fpga.write_reg(reg::PERIOD, 0)?,
        }
        self.timer = TimerCmd::None;
        Ok(())
    }

    /// Refills the edge buffer from the FPGA; false when it has nothing.
    fn fetch_edges(&mut self, done: usize) -> Result<bool, FpgaError<SPI, DRDY>> {
        if !self.fpga.data_ready()? {
            return Ok(false);
        }
        let level = self.fpga.read_reg(reg::EDGE_FIFO_LEVEL)? as usize;
        let n = level
            .min(MAX_EDGES_PER_READ)
            .min(self.settings.max_edges_per_poll - done);
        if n == 0 {
            return Ok(false);
        }
        self.edge_len = self.fpga.read_edges(&mut self.edges[..n])?;
        self.edge_pos = 0;
        Ok(self.edge_len > 0)
    }

    fn armed(&self) -> bool {
        matches!(self.state, DeviceState::Armed | DeviceState::Scanning) && self.finishing.is_none()
    }

    /// Decodes one event (an edge, a period event, or both); when a scan runs, makes it the
    /// current event to compare (position modes) or to turn into a point (time mode).
    fn decode(&mut self, ev: EdgeEvent) -> Result<(), FpgaError<SPI, DRDY>> {
        let lost = ev.seq.wrapping_sub(self.expect_seq);
        self.expect_seq = ev.seq.wrapping_add(1);
        let illegal_before = self.decoder.illegal();
        let d = if lost != 0 || ev.overrun() {
            self.health.fifo_overruns += 1;
            // Period events in the gap moved no motor: resynchronise on the lost edges alone.
            let lost_periods = match &mut self.periods {
                Some(p) if lost != 0 => p.lost_before(&ev).min(lost),
                _ => 0,
            };
            let lost_edges = lost - lost_periods;
            self.counters.lost_edges += u64::from(lost_edges);
            self.counters.lost_periods += u64::from(lost_periods);
            if lost != 0 && lost_edges == 0 {
                // Only period events were lost: these levels follow the last ones known.
                self.decoder.step(ev.ab)
            } else {
                // A period event need not be an edge itself: count it as none.
                self.decoder
                    .resync(ev.ab, lost_edges.saturating_sub(u32::from(ev.period())))
            }
        } else {
            self.decoder.step(ev.ab)
        };
        if self.decoder.illegal() != illegal_before {
            self.quad_in_bin = true;
        }
        if !self.armed() {
            return Ok(());
        }
        if self.periods.is_some() {
            if ev.period() {
                self.cur = Some(Current {
                    ev,
                    x: self.decoder.position(),
                    jumpy: false,
                    fired: 0,
                    snap_read: false,
                });
            }
            return Ok(());
        }
        if self.need_base {
            // The first bin of a scan starts at the first edge after Arm.
            self.fpga.read_snapshot(ev.seq, &mut self.snap)?;
            self.latch.set_base(&self.snap, ev.timestamp);
            self.need_base = false;
            self.quad_in_bin = false;
        }
        let x = self.decoder.position();
        self.cur = Some(Current {
            ev,
            x,
            jumpy: d.abs() > 1 || lost != 0,
            fired: 0,
            snap_read: false,
        });
        Ok(())
    }

    /// Fires every preset the current edge crosses (in time mode: makes the current period
    /// event's point). False when a batch waits for room.
    fn compare_current(&mut self) -> Result<bool, FpgaError<SPI, DRDY>> {
        let Some(mut cur) = self.cur else {
            return Ok(true);
        };
        if let Some(periods) = self.periods {
            return self.period_point(cur, periods);
        }
        let jumpy = cur.jumpy || self.cmp.segment_start().abs_diff(cur.x) > 1;
        loop {
            match self.cmp.peek(cur.x) {
                Next::Fire(f) => {
                    if !self.batch.has_room() && !self.batch.flush(&mut self.outbox) {
                        self.cur = Some(cur);
                        return Ok(false);
                    }
                    if !cur.snap_read {
                        if let Err(e) = self.fpga.read_snapshot(cur.ev.seq, &mut self.snap) {
                            self.cur = Some(cur);
                            return Err(e);
                        }
                        cur.snap_read = true;
                    }
                    let mut flags = 0u8;
                    if jumpy || cur.fired > 0 {
                        flags |= PointFlags::JUMP;
                    }
                    if f.negative {
                        flags |= PointFlags::NEGATIVE;
                    }
                    if f.pass_start {
                        flags |= PointFlags::PASS_START;
                    }
                    self.latch_point(f.preset, cur.ev.timestamp, flags);
                    self.cmp.commit();
                    cur.fired += 1;
                    if cur.fired == 2 {
                        self.health.position_jumps += 1;
                    }
                    self.points = self.points.wrapping_add(1);
                    self.state = DeviceState::Scanning;
                }
                Next::None => {
                    self.cmp.settle(cur.x, false);
                    break;
                }
                Next::Underrun => {
                    self.counters.list_underruns += 1;
                    self.cmp.settle(cur.x, true);
                    break;
                }
                Next::Done => {
                    self.cmp.settle(cur.x, false);
                    self.finishing = Some(DoneReason::Completed);
                    break;
                }
            }
        }
        if self.cmp.done() && self.finishing.is_none() {
            self.finishing = Some(DoneReason::Completed);
        }
        self.cur = None;
        Ok(true)
    }

    /// Time mode: the current period event ends a bin. Inside the window (or without one) the
    /// bin is a point: the decoded position at the event, its tick, and the counts and live time
    /// since the previous period event; outside, the bin is dropped and the next starts here.
    /// False when a batch waits for room.
    // Kept out of line so the position modes' hot path (compare_current, which inlines the
    // latch and the snapshot read) compiles as if time mode did not exist.
    #[inline(never)]
    fn period_point(
        &mut self,
        mut cur: Current,
        mut periods: Periods,
    ) -> Result<bool, FpgaError<SPI, DRDY>> {
        let kind = periods.classify(&cur.ev);
        let point = matches!(kind, Kind::Period { .. }) && periods.in_window(cur.x);
        if kind == Kind::Stale {
            self.cur = None;
            return Ok(true);
        }
        if point && !self.batch.has_room() && !self.batch.flush(&mut self.outbox) {
            self.cur = Some(cur);
            return Ok(false);
        }
        if !cur.snap_read {
            if let Err(e) = self.fpga.read_snapshot(cur.ev.seq, &mut self.snap) {
                self.cur = Some(cur);
                return Err(e);
            }
            cur.snap_read = true;
        }
        self.cur = None;
        periods.taken(cur.ev.timestamp);
        self.periods = Some(periods);
        if !point {
            // The first bin starts here, or this bin lies outside the window.
            self.latch.skip(&self.snap, cur.ev.timestamp);
            self.quad_in_bin = false;
            return Ok(true);
        }
        let mut flags = 0u8;
        if matches!(kind, Kind::Period { periods } if periods > 1) {
            // Period events were dropped: this bin spans them too.
            flags |= PointFlags::JUMP;
        }
        // The decoder is still where this event left it: nothing was decoded after it.
        if self.decoder.direction() == Moving::Negative {
            flags |= PointFlags::NEGATIVE;
        }
        if self.points == 0 {
            flags |= PointFlags::PASS_START;
        }
        self.latch_point(cur.x, cur.ev.timestamp, flags);
        self.points = self.points.wrapping_add(1);
        self.state = DeviceState::Scanning;
        if self.points >= periods.count() && self.finishing.is_none() {
            self.finishing = Some(DoneReason::Completed);
            self.timer = TimerCmd::Stop;
        }
        Ok(true)
    }

    /// Ends the current bin at the snapshot just read and queues its point at `position` and
    /// `timestamp`, with `flags` and those of the bin (a lost snapshot, a clamped value, an
    /// illegal transition). The batch has room for it.
    // Always inlined: it is the hot path of both position and time mode.
    #[inline(always)]
    fn latch_point(&mut self, position: i64, timestamp: u64, mut flags: u8) {
        let (live, outcome) = self
            .latch
            .latch(&self.snap, timestamp, &mut self.point.counts);
        match outcome {
            Latched::Good(fl) => flags |= fl,
            Latched::Lost => {
                flags |= PointFlags::JUMP;
                self.health.fifo_overruns += 1;
                self.counters.lost_snapshots += 1;
            }
        }
        if self.quad_in_bin {
            flags |= PointFlags::QUAD_ERROR;
            self.quad_in_bin = false;
        }
        self.point.position = position;
        self.point.timestamp = timestamp;
        self.point.live_time = live;
        self.point.flags = PointFlags(flags);
        // Cannot fail: has_room() guaranteed space for a worst-case point.
        let _ = self.batch.push(&self.point, self.now);
    }

    /// Ends a finished or aborted scan once its last batch is out: ScanDone, then Health.
    fn try_finish(&mut self) {
        let Some(reason) = self.finishing else {
            return;
        };
        if !self.batch.flush(&mut self.outbox) {
            return;
        }
        self.finishing = None;
        self.cur = None;
        self.state = DeviceState::Configured;
        self.cmp.window.rewind();
        self.send_control(&Message::ScanDone(ScanDone {
            scan_id: self.scan_id,
            total_points: self.points,
            reason,
            error_code: 0,
        }));
        self.send_health();
    }

    // ---- output ------------------------------------------------------------------------

    /// The line lost or damaged something: new batches get smaller.
    fn loss_seen(&mut self) {
        self.cap.on_loss(self.now);
        self.batch.set_cap(self.cap.bytes());
    }

    fn send_control(&mut self, msg: &Message<'_>) {
        self.outbox.send(msg, Class::Control);
    }

    fn send_health(&mut self) {
        self.last_health = self.now;
        let h = self.stats();
        self.send_control(&Message::Health(h));
    }

    /// µs → device ticks.
    fn ticks(&self, us: u64) -> u64 {
        us.saturating_mul(u64::from(self.info.clock_hz)) / 1_000_000
    }

    fn reply(&mut self, r: CommandReply) {
        if !r.is_ack() {
            self.health.naks += 1;
        }
        self.send_control(&Message::CommandReply(r));
    }

    // ---- commands ----------------------------------------------------------------------

    fn handle(&mut self, seq: u32, ty: u8, payload: &[u8]) {
        let nak = |code, arg, detail: core::fmt::Arguments<'_>| {
            CommandReply::nak(seq, ty, code, arg, detail)
        };
        let ack = CommandReply::ack(seq, ty);
        let msg = match Message::parse(ty, payload) {
            Ok(m) => m,
            Err(ParseError::UnknownType(t)) => {
                return self.reply(nak(
                    NakCode::UnknownCommand,
                    t.into(),
                    format_args!("unknown message type {t:#04x}"),
                ));
            }
            Err(e) => return self.reply(nak(NakCode::Malformed, 0, format_args!("{e}"))),
        };
        if msg.msg_type().is_from_device() {
            return self.reply(nak(
                NakCode::UnknownCommand,
                ty.into(),
                format_args!("{:?} is a device-to-host message", msg.msg_type()),
            ));
        }
        let busy = |what: &str| {
            CommandReply::nak(
                seq,
                ty,
                NakCode::Busy,
                0,
                format_args!("{what} not allowed while a scan is armed or running"),
            )
        };
        match msg {
            Message::GetInfo => {
                self.reply(ack);
                self.send_control(&Message::DeviceInfo(self.device_info()));
            }
            Message::Ping { token } => {
                self.reply(ack);
                self.send_control(&Message::Pong {
                    token,
                    uptime_ticks: self.now,
                    boot_id: self.settings.boot_id,
                });
            }
            Message::Configure(cfg) => {
                if self.armed() || self.finishing.is_some() {
                    return self.reply(busy("Configure"));
                }
                let limits = flyscan_protocol::Limits::device(
                    self.info.n_channels,
                    self.settings.max_points,
                    LIST_WINDOW as u32,
                )
                .with_clock(u64::from(self.info.clock_hz));
                if cfg.mode == TriggerMode::Time && !regs::has_period_timer(self.info.version) {
                    // PROTOCOL.md §Time mode: no period is possible without the timer.
                    let v = self.info.version;
                    return self.reply(nak(
                        NakCode::InvalidConfig,
                        ConfigError::BadPeriod {
                            period: cfg.step,
                            min: u64::MAX,
                        }
                        .code(),
                        format_args!(
                            "FPGA design {}.{} has no period timer (time mode needs 1.{})",
                            v >> 16,
                            v & 0xFFFF,
                            regs::PERIOD_MINOR
                        ),
                    ));
                }
                let checked = cfg.validate(&limits);
                if let Err(e) = checked {
                    // The argument is the protocol's ConfigError code (PROTOCOL.md §NakCodes).
                    return self.reply(nak(NakCode::InvalidConfig, e.code(), format_args!("{e}")));
                }
                self.cmp.configure(&cfg);
                self.config = Some(cfg);
                self.state = DeviceState::Configured;
                self.reply(ack);
            }
            Message::PositionChunk { offset, positions } => {
                let Some(cfg) = self.config else {
                    return self.reply(nak(
                        NakCode::NotConfigured,
                        0,
                        format_args!("PositionChunk before Configure"),
                    ));
                };
                if cfg.mode != TriggerMode::List {
                    return self.reply(nak(
                        NakCode::BadChunk,
                        0,
                        format_args!("configured scan is not in list mode"),
                    ));
                }
                if self.finishing.is_some() {
                    return self.reply(busy("PositionChunk"));
                }
                let r = self
                    .cmp
                    .window
                    .load(offset, positions.len(), positions.iter());
                match r {
                    Ok(free) => self.reply(CommandReply { arg: free, ..ack }),
                    Err(ChunkError::BadOffset { expected }) => self.reply(nak(
                        NakCode::BadChunk,
                        expected,
                        format_args!(
                            "chunk at {offset} (+{}): expected offset {expected} of {}",
                            positions.len(),
                            cfg.count
                        ),
                    )),
                    Err(ChunkError::WindowFull { free }) => self.reply(nak(
                        NakCode::Busy,
                        free,
                        format_args!(
                            "window has {free} free slots, chunk has {}",
                            positions.len()
                        ),
                    )),
                }
            }
            Message::Arm { scan_id } => {
                let Some(cfg) = self.config else {
                    return self.reply(nak(
                        NakCode::NotConfigured,
                        0,
                        format_args!("Arm before Configure"),
                    ));
                };
                if self.armed() || self.finishing.is_some() {
                    return self.reply(busy("Arm"));
                }
                if !self.cmp.ready() {
                    let loaded = self.cmp.window.loaded();
                    return self.reply(nak(
                        NakCode::ListIncomplete,
                        loaded,
                        format_args!(
                            "{loaded} of the first {} list positions loaded",
                            self.cmp.needed_to_arm()
                        ),
                    ));
                }
                self.scan_id = scan_id;
                self.points = 0;
                self.cmp.arm(self.decoder.position());
                self.latch.start(cfg.channel_mask);
                self.periods = Periods::new(&cfg);
                if let Some(p) = &self.periods {
                    // The timer's start event begins the first bin (not the next edge).
                    self.timer = TimerCmd::Start(p.period_register());
                    self.need_base = false;
                } else {
                    self.need_base = true;
                }
                self.quad_in_bin = false;
                let latency_us = if cfg.max_latency_us == 0 {
                    self.settings.default_latency_us
                } else {
                    cfg.max_latency_us
                };
                let latency = self.ticks(u64::from(latency_us));
                self.batch.start(
                    scan_id,
                    cfg.encoding,
                    cfg.channel_mask,
                    cfg.max_batch_points,
                    latency,
                );
                self.state = DeviceState::Armed;
                self.reply(ack);
                self.send_control(&Message::ScanArmed(ScanArmed {
                    scan_id,
                    config: cfg,
                }));
            }
            Message::Abort => {
                if self.armed() {
                    self.finishing = Some(DoneReason::Aborted);
                    self.cur = None;
                    if self.periods.is_some() {
                        self.timer = TimerCmd::Stop;
                    }
                }
                self.reply(ack);
                self.try_finish();
            }
            Message::ResendRequest {
                first_seq,
                last_seq,
            } => {
                self.loss_seen();
                let o = self.outbox.request_resend(first_seq, last_seq);
                if !o.queued {
                    self.reply(nak(
                        NakCode::Busy,
                        0,
                        format_args!("too many resend requests waiting"),
                    ));
                } else if o.misses > 0 {
                    self.reply(nak(
                        NakCode::ResendUnavailable,
                        o.oldest,
                        format_args!(
                            "{} of the frames are gone; oldest held is {}",
                            o.misses, o.oldest
                        ),
                    ));
                } else {
                    self.reply(ack);
                }
            }
            // Device → host types were refused above.
            _ => self.reply(nak(
                NakCode::UnknownCommand,
                ty.into(),
                format_args!("not a host command"),
            )),
        }
    }
}

#[cfg(all(test, feature = "std"))]
#[path = "device_noisy_tests.rs"]
mod noisy_tests;
