//! Puts device frames back in sequence order (sans-I/O).
//!
//! Frames are delivered strictly in sequence order, so the scan layer can treat every jump in
//! point index as points that are gone for good. Duplicates (resends of frames already
//! delivered) are dropped. Holes in the sequence trigger a `ResendRequest`; a hole is given up
//! (its frames declared lost) only when the device naks with `ResendUnavailable` (its `arg` is
//! the oldest frame it still holds) or after `max_retries` unanswered requests.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Tunables of the sequencer.
#[derive(Debug, Clone, Copy)]
pub struct SequencerConfig {
    /// How long to wait for a requested resend before asking again.
    pub resend_timeout: Duration,
    /// Requests per hole before its frames are declared lost.
    pub max_retries: u32,
    /// Most frames held while waiting for a hole to fill; a frame further ahead resynchronises.
    pub max_window: usize,
    /// Consecutive frames from behind the window that mean the device restarted its counter.
    pub restart_after_stale: u32,
}

impl Default for SequencerConfig {
    fn default() -> Self {
        Self {
            resend_timeout: Duration::from_millis(250),
            max_retries: 4,
            max_window: 16384,
            restart_after_stale: 16,
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

#[derive(Debug)]
enum Slot<T> {
    Empty,
    Held(T),
    Lost,
}

#[derive(Debug, Clone, Copy)]
struct Gap {
    first: u32,
    last: u32,
    requested_at: Instant,
    requests: u32,
}

/// Orders frames by sequence number; payloads are opaque `T`.
#[derive(Debug)]
pub struct Sequencer<T> {
    cfg: SequencerConfig,
    /// Next sequence number to deliver; `None` until the first sync point.
    next: Option<u32>,
    /// Slot i stands for frame `next + i`.
    window: VecDeque<Slot<T>>,
    gap: Option<Gap>,
    stale_run: u32,
    /// Frames the device keeps for resends (from `DeviceInfo`).
    ring_frames: u32,
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
            gap: None,
            stale_run: 0,
            ring_frames: 0,
            frames_lost: 0,
            duplicates: 0,
            resend_requests: 0,
        }
    }

    /// Sets the device's resend ring size (frames behind by more than this cannot be resends).
    pub fn set_ring_frames(&mut self, n: u32) {
        self.ring_frames = n;
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
        self.window.iter().any(|s| matches!(s, Slot::Empty))
    }

    /// Forgets everything (e.g. the device restarted).
    pub fn unsync(&mut self) {
        self.next = None;
        self.window.clear();
        self.gap = None;
        self.stale_run = 0;
    }

    /// Starts ordering at frame `seq` (stored as `item`), after first recovering the `look_back`
    /// frames before it that the device may still hold (driver start-up mid-scan).
    pub fn sync_at(&mut self, seq: u32, item: T, look_back: u32) {
        let look_back = look_back.min(self.cfg.max_window.saturating_sub(1) as u32);
        self.window.clear();
        self.gap = None;
        self.stale_run = 0;
        self.next = Some(seq.wrapping_sub(look_back));
        for _ in 0..look_back {
            self.window.push_back(Slot::Empty);
        }
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
            let lost = self
                .window
                .iter()
                .filter(|s| matches!(s, Slot::Empty))
                .count() as u64
                + (d - self.window.len()) as u64;
            self.frames_lost += lost;
            self.sync_at(seq, item, 0);
            return Arrival::Resynced { lost };
        }
        while self.window.len() <= d {
            self.window.push_back(Slot::Empty);
        }
        match self.window[d] {
            Slot::Empty => {
                self.window[d] = Slot::Held(item);
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
                Some(Slot::Empty) | None => return None,
            }
        }
    }

    /// The device said every frame before `oldest` is gone: abandon the missing ones.
    pub fn resend_unavailable(&mut self, oldest: u32) -> Option<SeqAction> {
        let next = self.next?;
        let d = oldest.wrapping_sub(next);
        if d == 0 || d >= HALF {
            return None;
        }
        let d = (d as usize).min(self.window.len());
        let mut lost = 0u64;
        let mut first = None;
        for (i, slot) in self.window.iter_mut().take(d).enumerate() {
            if matches!(slot, Slot::Empty) {
                *slot = Slot::Lost;
                lost += 1;
                first.get_or_insert(next.wrapping_add(i as u32));
            }
        }
        if lost == 0 {
            return None;
        }
        self.frames_lost += lost;
        self.gap = None;
        first.map(|first_seq| SeqAction::Lost {
            first_seq,
            count: lost,
        })
    }

    /// Range of missing frames, first to last (wrapping).
    fn holes(&self) -> Option<(u32, u32)> {
        let next = self.next?;
        let first = self.window.iter().position(|s| matches!(s, Slot::Empty))?;
        let last = self.window.iter().rposition(|s| matches!(s, Slot::Empty))?;
        Some((
            next.wrapping_add(first as u32),
            next.wrapping_add(last as u32),
        ))
    }

    /// Decides on resend requests and give-ups; call after arrivals and periodically.
    pub fn poll(&mut self, now: Instant) -> Option<SeqAction> {
        let Some((first, last)) = self.holes() else {
            self.gap = None;
            return None;
        };
        let request = |s: &mut Self, requests: u32| {
            s.gap = Some(Gap {
                first,
                last,
                requested_at: now,
                requests,
            });
            s.resend_requests += 1;
            Some(SeqAction::RequestResend {
                first_seq: first,
                last_seq: last,
            })
        };
        let Some(g) = self.gap else {
            return request(self, 1);
        };
        let next = self.next.unwrap_or(first);
        let covered = first.wrapping_sub(next) >= g.first.wrapping_sub(next)
            && last.wrapping_sub(next) <= g.last.wrapping_sub(next);
        if !covered {
            return request(self, 1);
        }
        if now.saturating_duration_since(g.requested_at) < self.cfg.resend_timeout {
            return None;
        }
        if g.requests < self.cfg.max_retries {
            return request(self, g.requests + 1);
        }
        // Bounded retries used up: give the holes up.
        let mut lost = 0u64;
        for slot in self.window.iter_mut() {
            if matches!(slot, Slot::Empty) {
                *slot = Slot::Lost;
                lost += 1;
            }
        }
        self.gap = None;
        self.frames_lost += lost;
        Some(SeqAction::Lost {
            first_seq: first,
            count: lost,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &mut Sequencer<u32>) -> Vec<u32> {
        std::iter::from_fn(|| s.pop_ready().map(|(_, v)| v)).collect()
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
        assert_eq!(s.poll(t), None);
        assert_eq!(s.duplicates, 2);
    }

    #[test]
    fn gap_requests_resend_then_fills() {
        let mut s = Sequencer::new(SequencerConfig::default());
        let t = Instant::now();
        s.arrive(0, 0);
        s.arrive(3, 3);
        assert_eq!(drain(&mut s), vec![0]);
        assert_eq!(
            s.poll(t),
            Some(SeqAction::RequestResend {
                first_seq: 1,
                last_seq: 2
            })
        );
        assert_eq!(s.poll(t + Duration::from_millis(10)), None);
        s.arrive(2, 2);
        s.arrive(1, 1);
        assert_eq!(drain(&mut s), vec![1, 2, 3]);
        assert_eq!(s.poll(t), None);
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
        assert!(matches!(
            s.poll(t),
            Some(SeqAction::RequestResend {
                first_seq: 0,
                last_seq: 0
            })
        ));
        let t2 = t + cfg.resend_timeout;
        assert!(matches!(s.poll(t2), Some(SeqAction::RequestResend { .. })));
        let t3 = t2 + cfg.resend_timeout;
        assert_eq!(
            s.poll(t3),
            Some(SeqAction::Lost {
                first_seq: 0,
                count: 1
            })
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
        let _ = s.poll(t);
        // Device still holds 103.. : 101 and 102 are gone, 103 and 104 can still come.
        assert_eq!(
            s.resend_unavailable(103),
            Some(SeqAction::Lost {
                first_seq: 101,
                count: 2
            })
        );
        assert_eq!(drain(&mut s), Vec::<u32>::new());
        assert!(matches!(
            s.poll(t),
            Some(SeqAction::RequestResend {
                first_seq: 103,
                last_seq: 104
            })
        ));
        s.arrive(103, 103);
        s.arrive(104, 104);
        assert_eq!(drain(&mut s), vec![103, 104, 105]);
    }

    #[test]
    fn look_back_sync_recovers_earlier_frames() {
        let mut s = Sequencer::new(SequencerConfig::default());
        let t = Instant::now();
        s.sync_at(50, 50, 4);
        assert!(matches!(
            s.poll(t),
            Some(SeqAction::RequestResend {
                first_seq: 46,
                last_seq: 49
            })
        ));
        // Device only still holds 48 and 49.
        assert!(matches!(
            s.resend_unavailable(48),
            Some(SeqAction::Lost {
                first_seq: 46,
                count: 2
            })
        ));
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
