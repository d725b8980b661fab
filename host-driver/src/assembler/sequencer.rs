//! Puts device frames back in sequence order (sans-I/O).
//!
//! Frames are delivered strictly in sequence order, so the scan layer can treat every jump in
//! point index as points that are gone for good. Duplicates (resends of frames already
//! delivered) are dropped.
//!
//! Resend policy: every run of consecutive missing frames is requested on its own (good frames
//! between holes are never asked for again), at most [`SequencerConfig::max_ranges`] runs in
//! flight at once, and each run keeps its own timer and attempt count. The timer covers the
//! round trip plus the time the line needs to carry the frames asked for, and restarts
//! whenever a resent frame of the run arrives (the device resends only in the line's spare
//! time, so a long run on a busy line is slow but steady). A `Busy` nak backs every request off
//! for a while without counting it as an attempt. Frames are given up (declared lost) only when
//! the device says so (`ResendUnavailable`, whose `arg` is the oldest frame it still holds),
//! when more than the device's resend ring (`DeviceInfo.resend_frames`) of newer frames has
//! been seen since (they have left the ring), or, as a last resort, after
//! [`SequencerConfig::max_retries`] unanswered requests.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Tunables of the sequencer.
#[derive(Debug, Clone, Copy)]
pub struct SequencerConfig {
    /// Fixed part of the wait for a requested resend (round trip, device queueing); the time
    /// the line needs for the frames asked for is added to it.
    pub resend_timeout: Duration,
    /// Requests per run of missing frames before they are declared lost (last resort: the
    /// device's nak or its ring passing them normally decides first).
    pub max_retries: u32,
    /// Most frames held while waiting for a hole to fill; a frame further ahead resynchronises.
    pub max_window: usize,
    /// Consecutive frames from behind the window that mean the device restarted its counter.
    pub restart_after_stale: u32,
    /// Most runs of missing frames requested and not yet timed out at once (the device holds
    /// a bounded number of pending ranges).
    pub max_ranges: usize,
    /// Bytes per second the line carries (baud / 10); 0 when unknown (no size-scaled timeout).
    pub line_bytes_per_sec: u32,
    /// First back-off after a `Busy` nak; doubles while the device stays busy.
    pub busy_backoff: Duration,
    /// Longest wait for one request, however much it asked for.
    pub max_resend_timeout: Duration,
}

impl Default for SequencerConfig {
    fn default() -> Self {
        Self {
            resend_timeout: Duration::from_millis(250),
            max_retries: 25,
            max_window: 16384,
            restart_after_stale: 16,
            max_ranges: 16,
            line_bytes_per_sec: 0,
            busy_backoff: Duration::from_millis(50),
            max_resend_timeout: Duration::from_secs(5),
        }
    }
}

/// What happened to one arriving frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// New frame: stored, and it will come out of [`Sequencer::pop_ready`] in order.
    New,
    /// Already held (a resend of a frame waiting behind a hole): dropped.
    Duplicate,
    /// From before the next expected frame (already delivered or given up): dropped.
    Behind,
    /// The counter jumped so far (device restart, long outage) that ordering restarted at this
    /// frame; `lost` missing frames were abandoned.
    Resynced {
        /// Frames abandoned.
        lost: u64,
    },
}

/// Something the sequencer wants done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqAction {
    /// Send `ResendRequest { first_seq, last_seq }`.
    RequestResend {
        /// First missing sequence number.
        first_seq: u32,
        /// Last missing sequence number.
        last_seq: u32,
    },
    /// `count` frames at or after `first_seq` will never come.
    Lost {
        /// First lost sequence number.
        first_seq: u32,
        /// Number of frames lost.
        count: u64,
    },
}

/// Request state of one missing frame.
#[derive(Debug, Clone, Copy)]
struct Ask {
    /// When to ask again (or give up).
    deadline: Instant,
    /// Requests that covered this frame.
    attempts: u32,
    /// A resent frame of the same run arrived: restart the timer at the next poll.
    progressed: bool,
}

#[derive(Debug)]
enum Slot<T> {
    /// Missing; `None` until first requested.
    Empty(Option<Ask>),
    Held(T),
    Lost,
}

/// A run of missing frames found by [`Sequencer::poll`], as window indices.
#[derive(Debug, Clone, Copy)]
struct Run {
    start: usize,
    end: usize,
    /// Some frame of it was never requested, or its timer ran out.
    due: bool,
    attempts: u32,
}

/// Orders frames by sequence number; payloads are opaque `T`.
#[derive(Debug)]
pub struct Sequencer<T> {
    cfg: SequencerConfig,
    /// Next sequence number to deliver; `None` until the first sync point.
    next: Option<u32>,
    /// Slot i stands for frame `next + i`.
    window: VecDeque<Slot<T>>,
    /// `Slot::Empty` entries in the window.
    empties: usize,
    stale_run: u32,
    /// Frames the device keeps for resends (from `DeviceInfo`).
    ring_frames: u32,
    /// Running mean of the wire size of a frame, bytes.
    frame_bytes: f64,
    /// No request goes out before this (after a `Busy` nak).
    backoff_until: Option<Instant>,
    /// `Busy` naks since the device last accepted a request.
    busy_streak: u32,
    /// Frames abandoned so far.
    pub frames_lost: u64,
    /// Duplicate frames dropped so far.
    pub duplicates: u64,
    /// Resend requests issued so far.
    pub resend_requests: u64,
}

const HALF: u32 = 1 << 31;

impl<T> Sequencer<T> {
    /// An unsynchronised sequencer.
    pub fn new(cfg: SequencerConfig) -> Self {
        Self {
            cfg,
            next: None,
            window: VecDeque::new(),
            empties: 0,
            stale_run: 0,
            ring_frames: 0,
            frame_bytes: 256.0,
            backoff_until: None,
            busy_streak: 0,
            frames_lost: 0,
            duplicates: 0,
            resend_requests: 0,
        }
    }

    /// Sets the device's resend ring size (frames behind by more than this cannot be resends,
    /// and a missing frame with this many newer frames seen has left the ring).
    pub fn set_ring_frames(&mut self, n: u32) {
        self.ring_frames = n;
    }

    /// Records the wire size of a received frame (sizes the resend timeouts).
    pub fn note_frame_bytes(&mut self, bytes: usize) {
        self.frame_bytes += (bytes as f64 - self.frame_bytes) / 16.0;
    }

    /// True once a sync point was set.
    pub fn is_synced(&self) -> bool {
        self.next.is_some()
    }

    /// Next sequence number to deliver, if synced.
    pub fn next_seq(&self) -> Option<u32> {
        self.next
    }

    /// True while some frame is missing.
    pub fn has_gap(&self) -> bool {
        self.empties > 0
    }

    /// Forgets everything (e.g. the device restarted).
    pub fn unsync(&mut self) {
        self.next = None;
        self.window.clear();
        self.empties = 0;
        self.stale_run = 0;
        self.backoff_until = None;
        self.busy_streak = 0;
    }

    /// Starts ordering at frame `seq` (stored as `item`), after first recovering the `look_back`
    /// frames before it that the device may still hold (driver start-up mid-scan).
    pub fn sync_at(&mut self, seq: u32, item: T, look_back: u32) {
        let look_back = look_back.min(self.cfg.max_window.saturating_sub(1) as u32);
        self.window.clear();
        self.stale_run = 0;
        self.next = Some(seq.wrapping_sub(look_back));
        for _ in 0..look_back {
            self.window.push_back(Slot::Empty(None));
        }
        self.empties = look_back as usize;
        self.window.push_back(Slot::Held(item));
    }

    /// Stores an arriving frame. An unsynchronised sequencer syncs at it with no look-back.
    pub fn arrive(&mut self, seq: u32, item: T) -> Arrival {
        let Some(next) = self.next else {
            self.sync_at(seq, item, 0);
            return Arrival::New;
        };
        let d = seq.wrapping_sub(next);
        if d >= HALF {
            // Behind: a resend of something already delivered. A resend is never further
            // behind than the device's resend ring, so only frames beyond it count towards
            // "the device restarted its counter".
            self.duplicates += 1;
            if next.wrapping_sub(seq) <= self.ring_frames {
                return Arrival::Behind;
            }
            self.stale_run += 1;
            if self.stale_run >= self.cfg.restart_after_stale {
                self.sync_at(seq, item, 0);
                return Arrival::Resynced { lost: 0 };
            }
            return Arrival::Behind;
        }
        self.stale_run = 0;
        let d = d as usize;
        if d >= self.cfg.max_window {
            // Too far ahead to hold the hole: abandon it and restart here.
            let lost = self.empties as u64 + (d - self.window.len()) as u64;
            self.frames_lost += lost;
            self.sync_at(seq, item, 0);
            return Arrival::Resynced { lost };
        }
        while self.window.len() < d {
            self.window.push_back(Slot::Empty(None));
            self.empties += 1;
        }
        if self.window.len() == d {
            self.window.push_back(Slot::Held(item));
            return Arrival::New;
        }
        match self.window[d] {
            Slot::Empty(ask) => {
                self.window[d] = Slot::Held(item);
                self.empties -= 1;
                if ask.is_some() {
                    self.progress_after(d);
                }
                Arrival::New
            }
            // A frame given up for lost that turns up after all is still too late: the scan
            // layer has already accounted for its points.
            Slot::Held(_) | Slot::Lost => {
                self.duplicates += 1;
                Arrival::Duplicate
            }
        }
    }

    /// A requested frame arrived at window index `d`: the device is working through its run,
    /// so the rest of that run gets a fresh timer (the device resends in order).
    fn progress_after(&mut self, d: usize) {
        for slot in self.window.iter_mut().skip(d + 1) {
            match slot {
                Slot::Empty(Some(ask)) => ask.progressed = true,
                _ => break,
            }
        }
    }

    /// Takes the next in-order frame, if it is here (lost frames are skipped over).
    pub fn pop_ready(&mut self) -> Option<(u32, T)> {
        loop {
            let next = self.next?;
            match self.window.front() {
                Some(Slot::Lost) => {
                    self.window.pop_front();
                    self.next = Some(next.wrapping_add(1));
                }
                Some(Slot::Held(_)) => {
                    let Some(Slot::Held(item)) = self.window.pop_front() else {
                        return None;
                    };
                    self.next = Some(next.wrapping_add(1));
                    return Some((next, item));
                }
                Some(Slot::Empty(_)) | None => return None,
            }
        }
    }

    /// Marks the missing frames among window indices `range` lost; returns one action per
    /// contiguous run of them.
    fn give_up(&mut self, range: std::ops::Range<usize>, out: &mut Vec<SeqAction>) {
        let Some(next) = self.next else {
            return;
        };
        let mut run: Option<(u32, u64)> = None;
        let end = range.end.min(self.window.len());
        for i in range.start..end {
            if matches!(self.window[i], Slot::Empty(_)) {
                self.window[i] = Slot::Lost;
                self.empties -= 1;
                self.frames_lost += 1;
                match &mut run {
                    Some((first, n))
                        if first.wrapping_add(*n as u32) == next.wrapping_add(i as u32) =>
                    {
                        *n += 1
                    }
                    _ => {
                        if let Some((first_seq, count)) = run.take() {
                            out.push(SeqAction::Lost { first_seq, count });
                        }
                        run = Some((next.wrapping_add(i as u32), 1));
                    }
                }
            }
        }
        if let Some((first_seq, count)) = run {
            out.push(SeqAction::Lost { first_seq, count });
        }
    }

    /// The device said every frame before `oldest` is gone: abandon the missing ones.
    pub fn resend_unavailable(&mut self, oldest: u32) -> Vec<SeqAction> {
        let mut out = Vec::new();
        let Some(next) = self.next else {
            return out;
        };
        let d = oldest.wrapping_sub(next);
        if d == 0 || d >= HALF {
            return out;
        }
        self.give_up(0..d as usize, &mut out);
        out
    }

    /// The device refused a request because too many are waiting: no request goes out for a
    /// while (doubling while it stays busy; refusals during the back-off belong to the same
    /// burst and change nothing), then the outstanding runs are asked again. The
    /// refused request is not counted as an attempt (which one it was is not known, so every
    /// outstanding run gets one back; the ring rule still bounds the wait).
    pub fn resend_busy(&mut self, now: Instant) {
        if self.backoff_until.is_some_and(|t| now < t) {
            // Another refusal from the burst already being backed off.
            return;
        }
        let factor = 1u32 << self.busy_streak.min(5);
        self.busy_streak += 1;
        let until = now + (self.cfg.busy_backoff * factor).min(Duration::from_secs(2));
        self.backoff_until = Some(until);
        for slot in self.window.iter_mut() {
            if let Slot::Empty(Some(ask)) = slot {
                ask.deadline = until;
                ask.attempts = ask.attempts.saturating_sub(1);
            }
        }
    }

    /// The device accepted a request: the `Busy` back-off starts small again.
    pub fn resend_accepted(&mut self) {
        self.busy_streak = 0;
    }

    /// How long to wait for `frames` requested frames.
    fn timeout_for(&self, frames: usize) -> Duration {
        let mut t = self.cfg.resend_timeout;
        if self.cfg.line_bytes_per_sec > 0 {
            let bytes = frames as f64 * self.frame_bytes;
            // Half again the bare line time: resends share the line with new data.
            t += Duration::from_secs_f64(1.5 * bytes / f64::from(self.cfg.line_bytes_per_sec));
        }
        t.min(self.cfg.max_resend_timeout.max(self.cfg.resend_timeout))
    }

    /// Decides on resend requests and give-ups; call after arrivals and periodically.
    /// Actions are appended to `out`.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<SeqAction>) {
        if self.next.is_none() || self.empties == 0 {
            return;
        }
        // Frames with a full ring of newer frames behind them have left the device's ring.
        if self.ring_frames > 0 {
            let evicted = self.window.len().saturating_sub(self.ring_frames as usize);
            if evicted > 0 {
                self.give_up(0..evicted, out);
            }
        }
        let runs = self.runs(now);
        let in_flight = runs.iter().filter(|r| !r.due).count();
        let mut budget = self.cfg.max_ranges.saturating_sub(in_flight);
        let backing_off = self.backoff_until.is_some_and(|t| now < t);
        for r in runs.into_iter().filter(|r| r.due) {
            if r.attempts >= self.cfg.max_retries {
                // Last resort: asked often enough with no answer at all.
                self.give_up(r.start..r.end + 1, out);
                continue;
            }
            if backing_off || budget == 0 {
                continue;
            }
            budget -= 1;
            let ask = Ask {
                deadline: now + self.timeout_for(r.end + 1 - r.start),
                attempts: r.attempts + 1,
                progressed: false,
            };
            for i in r.start..=r.end {
                self.window[i] = Slot::Empty(Some(ask));
            }
            self.resend_requests += 1;
            let Some(next) = self.next else {
                return;
            };
            out.push(SeqAction::RequestResend {
                first_seq: next.wrapping_add(r.start as u32),
                last_seq: next.wrapping_add(r.end as u32),
            });
        }
    }

    /// Runs of missing frames, oldest first; applies pending timer restarts.
    fn runs(&mut self, now: Instant) -> Vec<Run> {
        let restart = now + self.cfg.resend_timeout;
        let mut runs: Vec<Run> = Vec::new();
        let mut cur: Option<Run> = None;
        for (i, slot) in self.window.iter_mut().enumerate() {
            let Slot::Empty(ask) = slot else {
                if let Some(r) = cur.take() {
                    runs.push(r);
                }
                continue;
            };
            let (due, attempts) = match ask {
                None => (true, 0),
                Some(a) => {
                    if a.progressed {
                        a.progressed = false;
                        a.deadline = a.deadline.max(restart);
                    }
                    (a.deadline <= now, a.attempts)
                }
            };
            match &mut cur {
                Some(r) => {
                    r.end = i;
                    r.due |= due;
                    r.attempts = r.attempts.max(attempts);
                }
                None => {
                    cur = Some(Run {
                        start: i,
                        end: i,
                        due,
                        attempts,
                    })
                }
            }
        }
        runs.extend(cur);
        runs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &mut Sequencer<u32>) -> Vec<u32> {
        std::iter::from_fn(|| s.pop_ready().map(|(_, v)| v)).collect()
    }

    fn poll(s: &mut Sequencer<u32>, now: Instant) -> Vec<SeqAction> {
        let mut out = Vec::new();
        s.poll(now, &mut out);
        out
    }

    fn req(first_seq: u32, last_seq: u32) -> SeqAction {
        SeqAction::RequestResend {
            first_seq,
            last_seq,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn in_order_and_duplicates() {
        let mut s = Sequencer::new(SequencerConfig::default());
        let t = Instant::now();
        for q in 10..15 {
            assert_eq!(s.arrive(q, q), Arrival::New);
        }
        assert_eq!(s.arrive(12, 12), Arrival::Duplicate);
        assert_eq!(drain(&mut s), vec![10, 11, 12, 13, 14]);
        assert_eq!(s.arrive(13, 13), Arrival::Behind);
        assert_eq!(poll(&mut s, t), vec![]);
        assert_eq!(s.duplicates, 2);
    }

    #[test]
    fn gap_requests_resend_then_fills() {
        let mut s = Sequencer::new(SequencerConfig::default());
        let t = Instant::now();
        s.arrive(0, 0);
        s.arrive(3, 3);
        assert_eq!(drain(&mut s), vec![0]);
        assert_eq!(poll(&mut s, t), vec![req(1, 2)]);
        assert_eq!(poll(&mut s, t + ms(10)), vec![]);
        s.arrive(2, 2);
        s.arrive(1, 1);
        assert_eq!(drain(&mut s), vec![1, 2, 3]);
        assert_eq!(poll(&mut s, t), vec![]);
        assert!(!s.has_gap());
    }

    #[test]
    fn each_run_of_missing_frames_is_requested_alone() {
        let mut s = Sequencer::new(SequencerConfig::default());
        let t = Instant::now();
        for q in [0, 3, 4, 5, 9, 10, 12] {
            s.arrive(q, q);
        }
        // Good frames between the holes (3..=5, 10) are not asked for again.
        assert_eq!(poll(&mut s, t), vec![req(1, 2), req(6, 8), req(11, 11)]);
        assert_eq!(s.resend_requests, 3);
    }

    #[test]
    fn runs_in_flight_are_bounded() {
        let cfg = SequencerConfig {
            max_ranges: 4,
            ..Default::default()
        };
        let mut s = Sequencer::new(cfg);
        let t = Instant::now();
        // Ten holes: 1, 3, 5, … 19.
        for q in (0..=20).step_by(2) {
            s.arrive(q, q);
        }
        assert_eq!(
            poll(&mut s, t),
            vec![req(1, 1), req(3, 3), req(5, 5), req(7, 7)]
        );
        assert_eq!(poll(&mut s, t), vec![]);
        // Two runs filled: two more may go.
        s.arrive(1, 1);
        s.arrive(5, 5);
        assert_eq!(poll(&mut s, t), vec![req(9, 9), req(11, 11)]);
    }

    #[test]
    fn a_new_hole_leaves_the_outstanding_request_alone() {
        let cfg = SequencerConfig::default();
        let mut s = Sequencer::new(cfg);
        let t = Instant::now();
        s.arrive(0, 0);
        s.arrive(2, 2);
        assert_eq!(poll(&mut s, t), vec![req(1, 1)]);
        // A second hole appears while 1 is being resent: only the new one is asked for.
        s.arrive(5, 5);
        assert_eq!(poll(&mut s, t + ms(100)), vec![req(3, 4)]);
        // Each keeps its own timer: 1 times out first, alone.
        let t1 = t + cfg.resend_timeout;
        assert_eq!(poll(&mut s, t1), vec![req(1, 1)]);
        assert_eq!(
            poll(&mut s, t + ms(100) + cfg.resend_timeout),
            vec![req(3, 4)]
        );
    }

    #[test]
    fn retry_counts_are_per_run() {
        let cfg = SequencerConfig {
            max_retries: 3,
            ..Default::default()
        };
        let mut s = Sequencer::new(cfg);
        let mut t = Instant::now();
        s.arrive(0, 0);
        s.arrive(2, 2);
        assert_eq!(poll(&mut s, t), vec![req(1, 1)]);
        t += cfg.resend_timeout;
        assert_eq!(poll(&mut s, t), vec![req(1, 1)]);
        // New holes keep appearing; they must not reset the count of run 1.
        s.arrive(4, 4);
        assert_eq!(poll(&mut s, t), vec![req(3, 3)]);
        t += cfg.resend_timeout;
        assert_eq!(poll(&mut s, t), vec![req(1, 1), req(3, 3)]);
        s.arrive(6, 6);
        assert_eq!(poll(&mut s, t), vec![req(5, 5)]);
        t += cfg.resend_timeout;
        assert_eq!(
            poll(&mut s, t),
            vec![
                SeqAction::Lost {
                    first_seq: 1,
                    count: 1
                },
                req(3, 3),
                req(5, 5)
            ]
        );
    }

    #[test]
    fn frames_the_device_still_holds_are_not_given_up_early() {
        let mut s = Sequencer::new(SequencerConfig::default());
        s.set_ring_frames(2048);
        let mut t = Instant::now();
        s.arrive(0, 0);
        s.arrive(2, 2);
        // Two seconds of unanswered requests: well inside the device's ring time.
        let mut requests = 0;
        for _ in 0..8 {
            for a in poll(&mut s, t) {
                assert!(matches!(a, SeqAction::RequestResend { .. }), "{a:?}");
                requests += 1;
            }
            t += ms(250);
        }
        assert!(requests >= 4);
        assert_eq!(s.frames_lost, 0);
        assert!(s.has_gap());
    }

    #[test]
    fn frames_past_the_device_ring_are_lost() {
        let mut s = Sequencer::new(SequencerConfig::default());
        s.set_ring_frames(100);
        let t = Instant::now();
        s.arrive(0, 0);
        for q in 2..=100 {
            s.arrive(q, q);
        }
        assert_eq!(poll(&mut s, t), vec![req(1, 1)]);
        // Frame 101 is the 100th after 1: the device's ring of 100 no longer holds 1.
        s.arrive(101, 101);
        assert_eq!(
            poll(&mut s, t),
            vec![SeqAction::Lost {
                first_seq: 1,
                count: 1
            }]
        );
        assert_eq!(drain(&mut s).len(), 101);
    }

    #[test]
    fn timeout_grows_with_the_bytes_asked_for() {
        let cfg = SequencerConfig {
            line_bytes_per_sec: 10_000,
            ..Default::default()
        };
        let mut s = Sequencer::new(cfg);
        for _ in 0..200 {
            s.note_frame_bytes(100);
        }
        let t = Instant::now();
        s.arrive(0, 0);
        s.arrive(41, 41);
        assert_eq!(poll(&mut s, t), vec![req(1, 40)]);
        // 40 frames of ~100 bytes take ~0.4 s of a 10 kB/s line: no retry at the base timeout.
        assert_eq!(poll(&mut s, t + cfg.resend_timeout), vec![]);
        assert_eq!(poll(&mut s, t + ms(700)), vec![]);
        assert_eq!(poll(&mut s, t + ms(1000)), vec![req(1, 40)]);
    }

    #[test]
    fn resent_frames_arriving_restart_the_timer() {
        let cfg = SequencerConfig::default();
        let mut s = Sequencer::new(cfg);
        let t = Instant::now();
        s.arrive(0, 0);
        s.arrive(11, 11);
        assert_eq!(poll(&mut s, t), vec![req(1, 10)]);
        // The device is working through the run.
        let t1 = t + ms(200);
        s.arrive(1, 1);
        s.arrive(2, 2);
        assert_eq!(poll(&mut s, t1), vec![]);
        assert_eq!(poll(&mut s, t + cfg.resend_timeout + ms(10)), vec![]);
        assert_eq!(poll(&mut s, t1 + cfg.resend_timeout), vec![req(3, 10)]);
    }

    #[test]
    fn busy_backs_off_then_asks_again_without_counting() {
        let cfg = SequencerConfig {
            max_retries: 1,
            ..Default::default()
        };
        let mut s = Sequencer::new(cfg);
        let t = Instant::now();
        s.arrive(0, 0);
        s.arrive(2, 2);
        assert_eq!(poll(&mut s, t), vec![req(1, 1)]);
        s.resend_busy(t + ms(5));
        // More refusals of the same burst change nothing.
        s.resend_busy(t + ms(6));
        s.arrive(4, 4);
        // Backing off: not even the new hole goes out.
        assert_eq!(poll(&mut s, t + ms(20)), vec![]);
        let after = t + ms(5) + cfg.busy_backoff;
        // Asked again well before the resend timeout, and the refused attempt did not count.
        assert_eq!(poll(&mut s, after), vec![req(1, 1), req(3, 3)]);
        // Still busy: the back-off doubles.
        s.resend_busy(after);
        assert_eq!(poll(&mut s, after + cfg.busy_backoff), vec![]);
        assert_eq!(
            poll(&mut s, after + cfg.busy_backoff * 2),
            vec![req(1, 1), req(3, 3)]
        );
    }

    #[test]
    fn retries_are_bounded_then_lost() {
        let cfg = SequencerConfig {
            max_retries: 2,
            ..Default::default()
        };
        let mut s = Sequencer::new(cfg);
        let t = Instant::now();
        s.arrive(u32::MAX, 1);
        s.arrive(1, 2); // wraps: 0 is missing
        assert_eq!(drain(&mut s), vec![1]);
        assert_eq!(poll(&mut s, t), vec![req(0, 0)]);
        let t2 = t + cfg.resend_timeout;
        assert_eq!(poll(&mut s, t2), vec![req(0, 0)]);
        let t3 = t2 + cfg.resend_timeout;
        assert_eq!(
            poll(&mut s, t3),
            vec![SeqAction::Lost {
                first_seq: 0,
                count: 1
            }]
        );
        assert_eq!(drain(&mut s), vec![2]);
        assert_eq!(s.frames_lost, 1);
    }

    #[test]
    fn nak_abandons_only_before_oldest() {
        let mut s = Sequencer::new(SequencerConfig::default());
        let t = Instant::now();
        s.arrive(100, 100);
        s.arrive(105, 105);
        drain(&mut s);
        assert_eq!(poll(&mut s, t), vec![req(101, 104)]);
        // Device still holds 103.. : 101 and 102 are gone, 103 and 104 can still come.
        assert_eq!(
            s.resend_unavailable(103),
            vec![SeqAction::Lost {
                first_seq: 101,
                count: 2
            }]
        );
        assert_eq!(drain(&mut s), Vec::<u32>::new());
        // The rest of the run is still covered by the request that was answered.
        assert_eq!(poll(&mut s, t), vec![]);
        s.arrive(103, 103);
        s.arrive(104, 104);
        assert_eq!(drain(&mut s), vec![103, 104, 105]);
    }

    #[test]
    fn look_back_sync_recovers_earlier_frames() {
        let mut s = Sequencer::new(SequencerConfig::default());
        let t = Instant::now();
        s.sync_at(50, 50, 4);
        assert_eq!(poll(&mut s, t), vec![req(46, 49)]);
        // Device only still holds 48 and 49.
        assert_eq!(
            s.resend_unavailable(48),
            vec![SeqAction::Lost {
                first_seq: 46,
                count: 2
            }]
        );
        s.arrive(48, 48);
        s.arrive(49, 49);
        assert_eq!(drain(&mut s), vec![48, 49, 50]);
    }

    #[test]
    fn late_resends_within_the_ring_never_resync() {
        let cfg = SequencerConfig {
            restart_after_stale: 3,
            ..Default::default()
        };
        let mut s = Sequencer::new(cfg);
        s.set_ring_frames(100);
        s.arrive(1000, 0);
        drain(&mut s);
        for q in 950..1000 {
            assert_eq!(s.arrive(q, q), Arrival::Behind);
        }
        assert_eq!(s.next_seq(), Some(1001));
    }

    #[test]
    fn repeated_stale_frames_mean_restart() {
        let cfg = SequencerConfig {
            restart_after_stale: 3,
            ..Default::default()
        };
        let mut s = Sequencer::new(cfg);
        s.arrive(1000, 0);
        drain(&mut s);
        assert_eq!(s.arrive(0, 0), Arrival::Behind);
        assert_eq!(s.arrive(1, 1), Arrival::Behind);
        assert_eq!(s.arrive(2, 2), Arrival::Resynced { lost: 0 });
        assert_eq!(drain(&mut s), vec![2]);
    }
}
