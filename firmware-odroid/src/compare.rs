//! Position compare: decides which edge crosses which preset.
//!
//! Presets come from start/step/count or from a list streamed by the host into a bounded window
//! ([`ListWindow`], [`LIST_WINDOW`] positions). Only the *next* preset of the current pass is
//! compared, so a preset fires exactly once however the motor jitters or reverses around it, and
//! hysteresis is implicit: after preset `k` fires, preset `k + 1` is armed.
//!
//! A crossing is tested on the segment from the last compared position `a` to the new position
//! `b`: moving positive, preset `p` is crossed when `a < p ≤ b`; moving negative when
//! `b ≤ p < a`. Scan direction `Positive`/`Negative` accept only one of the two, `Either` both.
//! `Bidirectional` scans walk the presets forward on even passes and backward on odd passes, and
//! accept only crossings in the pass's own direction (the list's forward direction is towards its
//! last preset), so the turn-around at the end of a pass does not fire the next pass early.
//!
//! When a segment crosses several presets (a position jump: an illegal transition, lost edges,
//! or a list that arrived late) every preset still fires, in order; the caller flags them.
//! If the next list preset has not arrived yet the segment's start is held, so once it arrives
//! the whole excursion since then is tested.

use crate::buf::Buf;
use flyscan_protocol::{Direction, ScanConfig, TriggerMode};

/// Positions the list window holds (32 KiB of i64).
pub const LIST_WINDOW: usize = 4096;

/// Why a list chunk was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// The chunk does not start at the next expected offset, or runs past the list's end.
    BadOffset {
        /// Next offset expected.
        expected: u32,
    },
    /// The window lacks room for the chunk.
    WindowFull {
        /// Free slots now.
        free: u32,
    },
}

/// The bounded window of list positions. Position `i` of the list lives in slot
/// `i mod LIST_WINDOW` while `base ≤ i < loaded`.
#[derive(Debug, Clone, Default)]
pub struct ListWindow {
    buf: Buf<i64, LIST_WINDOW>,
    count: u32,
    base: u32,
    loaded: u32,
}

impl ListWindow {
    /// Empties the window for a list of `count` positions.
    pub fn reset(&mut self, count: u32) {
        self.count = count;
        self.base = 0;
        self.loaded = 0;
    }

    /// True when the whole list fits in the window (it is then never evicted).
    pub fn resident(&self) -> bool {
        self.count as usize <= LIST_WINDOW
    }

    /// Next offset expected from the host (= positions received so far).
    pub fn loaded(&self) -> u32 {
        self.loaded
    }

    /// Free slots.
    pub fn free(&self) -> u32 {
        LIST_WINDOW as u32 - (self.loaded - self.base)
    }

    /// Stores positions `offset..offset + n`; returns the free slots left.
    pub fn load(
        &mut self,
        offset: u32,
        n: usize,
        positions: impl Iterator<Item = i64>,
    ) -> Result<u32, ChunkError> {
        let n = n as u64;
        if offset != self.loaded || u64::from(offset) + n > u64::from(self.count) {
            return Err(ChunkError::BadOffset {
                expected: self.loaded,
            });
        }
        if n > u64::from(self.free()) {
            return Err(ChunkError::WindowFull { free: self.free() });
        }
        for p in positions.take(n as usize) {
            self.buf[self.loaded as usize % LIST_WINDOW] = p;
            self.loaded += 1;
        }
        Ok(self.free())
    }

    /// Position `i`, if it is in the window.
    pub fn get(&self, i: u32) -> Option<i64> {
        (i >= self.base && i < self.loaded).then(|| self.buf[i as usize % LIST_WINDOW])
    }

    /// Lets slots below `i` be reused (single-pass streaming).
    fn release_below(&mut self, i: u32) {
        if !self.resident() && i > self.base {
            self.base = i.min(self.loaded);
        }
    }

    /// After a scan: a list that does not fit must be streamed again from offset 0.
    pub fn rewind(&mut self) {
        if !self.resident() {
            self.base = 0;
            self.loaded = 0;
        }
    }
}

/// One preset crossing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fire {
    /// The preset crossed.
    pub preset: i64,
    /// Point index within the scan (pass × count + preset's rank in the pass).
    pub index: u32,
    /// First point of a pass.
    pub pass_start: bool,
    /// The crossing moved towards −∞.
    pub negative: bool,
}

/// Result of [`Comparator::peek`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The next preset is crossed by the segment.
    Fire(Fire),
    /// Not crossed.
    None,
    /// The next list position has not arrived yet.
    Underrun,
    /// Every preset of every pass fired.
    Done,
}

/// The compare state of one scan.
#[derive(Debug, Clone, Default)]
pub struct Comparator {
    mode: Option<TriggerMode>,
    direction: Option<Direction>,
    start: i64,
    step: i64,
    count: u32,
    passes: u16,
    forward_positive: bool,
    pass: u16,
    k: u32,
    last_x: i64,
    /// The list window (public so the device can load chunks while a scan runs).
    pub window: ListWindow,
}

impl Comparator {
    /// Takes the configuration (already validated) and empties the list window.
    pub fn configure(&mut self, cfg: &ScanConfig) {
        self.mode = Some(cfg.mode);
        self.direction = Some(cfg.direction);
        self.start = cfg.start;
        self.step = cfg.step;
        self.count = cfg.count;
        self.passes = cfg.passes.max(1);
        self.window.reset(cfg.count);
        self.pass = 0;
        self.k = 0;
    }

    /// Positions that must be loaded before arming: `min(count, LIST_WINDOW)` in list mode.
    pub fn needed_to_arm(&self) -> u32 {
        match self.mode {
            Some(TriggerMode::List) => self.count.min(LIST_WINDOW as u32),
            _ => 0,
        }
    }

    /// True when arming is possible now (list window holds the list's beginning).
    pub fn ready(&self) -> bool {
        match self.mode {
            Some(TriggerMode::List) => {
                self.window.base == 0 && self.window.loaded >= self.needed_to_arm()
            }
            // Time mode compares no presets (crate::period); nothing to load.
            Some(TriggerMode::StartStepCount | TriggerMode::Time) => true,
            None => false,
        }
    }

    /// Starts pass 0 at position `x`.
    pub fn arm(&mut self, x: i64) {
        self.pass = 0;
        self.k = 0;
        self.last_x = x;
        // The forward direction of a bidirectional scan: towards the last preset.
        self.forward_positive = match self.mode {
            Some(TriggerMode::List) => {
                let first = self.window.get(0).unwrap_or(0);
                let last = self.window.get(self.count.saturating_sub(1));
                last.is_none_or(|l| l >= first)
            }
            _ => self.step > 0,
        };
    }

    /// Start of the next segment (the last compared position).
    pub fn segment_start(&self) -> i64 {
        self.last_x
    }

    /// True when every preset fired.
    pub fn done(&self) -> bool {
        self.pass >= self.passes
    }

    /// Points fired so far.
    pub fn fired(&self) -> u32 {
        u32::from(self.pass)
            .wrapping_mul(self.count)
            .wrapping_add(self.k)
    }

    fn preset(&self, i: u32) -> Option<i64> {
        match self.mode {
            Some(TriggerMode::List) => self.window.get(i),
            _ => Some(
                self.start
                    .wrapping_add(self.step.wrapping_mul(i64::from(i))),
            ),
        }
    }

    /// Which crossing senses (positive, negative) fire in the current pass.
    fn senses(&self) -> (bool, bool) {
        match self.direction {
            Some(Direction::Positive) | None => (true, false),
            Some(Direction::Negative) => (false, true),
            Some(Direction::Either) => (true, true),
            Some(Direction::Bidirectional) => {
                let fwd = self.pass.is_multiple_of(2);
                let pos = fwd == self.forward_positive;
                (pos, !pos)
            }
        }
    }

    /// Tests the next preset against the segment from the last compared position to `x`.
    #[inline]
    pub fn peek(&self, x: i64) -> Next {
        if self.done() {
            return Next::Done;
        }
        let rank = if self.direction == Some(Direction::Bidirectional) && self.pass % 2 == 1 {
            self.count - 1 - self.k
        } else {
            self.k
        };
        let Some(p) = self.preset(rank) else {
            return Next::Underrun;
        };
        let a = self.last_x;
        let (pos, neg) = self.senses();
        let crossed = (pos && a < p && p <= x) || (neg && x <= p && p < a);
        if crossed {
            Next::Fire(Fire {
                preset: p,
                index: self.fired(),
                pass_start: self.k == 0,
                negative: x < a,
            })
        } else {
            Next::None
        }
    }

    /// Accepts the crossing returned by the last [`Comparator::peek`]: arms the next preset.
    pub fn commit(&mut self) {
        self.k += 1;
        if self.k >= self.count {
            self.k = 0;
            self.pass += 1;
        }
        if self.passes == 1 {
            self.window.release_below(self.k);
        }
    }

    /// Ends the comparisons of one edge at position `x`: the next segment starts here, unless
    /// the next list preset is missing (then the start is held until it arrives).
    pub fn settle(&mut self, x: i64, underrun: bool) {
        if !underrun {
            self.last_x = x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flyscan_protocol::Encoding;
    extern crate std;
    use std::vec::Vec;

    fn cfg(direction: Direction, start: i64, step: i64, count: u32, passes: u16) -> ScanConfig {
        ScanConfig {
            mode: TriggerMode::StartStepCount,
            direction,
            encoding: Encoding::Compact,
            start,
            step,
            count,
            passes,
            channel_mask: 1,
            max_batch_points: 0,
            max_latency_us: 0,
            gate_span: 0,
        }
    }

    /// Walks the position through `path` one count at a time (jumps when consecutive entries
    /// differ by more), returns every fire (preset, position where fired, flags).
    fn run(c: &mut Comparator, start_x: i64, path: &[i64]) -> Vec<(Fire, i64)> {
        let mut out = Vec::new();
        c.arm(start_x);
        for &x in path {
            loop {
                match c.peek(x) {
                    Next::Fire(f) => {
                        out.push((f, x));
                        c.commit();
                    }
                    Next::Underrun => {
                        c.settle(x, true);
                        break;
                    }
                    _ => {
                        c.settle(x, false);
                        break;
                    }
                }
            }
        }
        out
    }

    fn ramp(from: i64, to: i64) -> Vec<i64> {
        if from <= to {
            (from..=to).collect()
        } else {
            (to..=from).rev().collect()
        }
    }

    fn presets(f: &[(Fire, i64)]) -> Vec<i64> {
        f.iter().map(|(f, _)| f.preset).collect()
    }

    #[test]
    fn uniform_positive_fires_each_preset_once_at_the_preset() {
        let mut c = Comparator::default();
        c.configure(&cfg(Direction::Positive, 10, 5, 4, 1));
        let f = run(&mut c, 0, &ramp(0, 40));
        assert_eq!(presets(&f), [10, 15, 20, 25]);
        assert!(f.iter().all(|(f, x)| f.preset == *x && !f.negative));
        assert_eq!(
            f.iter().map(|(f, _)| f.index).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert!(f[0].0.pass_start && !f[1].0.pass_start);
        assert!(c.done());
    }

    #[test]
    fn jitter_around_presets_fires_exactly_once_each() {
        let mut c = Comparator::default();
        c.configure(&cfg(Direction::Positive, 10, 10, 3, 1));
        let mut path = Vec::new();
        for p in [10, 20, 30] {
            path.extend(ramp(p - 3, p));
            for _ in 0..50 {
                path.extend([p - 1, p, p + 1, p]);
            }
        }
        path.extend(ramp(30, 40));
        let f = run(&mut c, 0, &path);
        assert_eq!(presets(&f), [10, 20, 30]);
    }

    #[test]
    fn negative_direction_ignores_positive_crossings() {
        let mut c = Comparator::default();
        c.configure(&cfg(Direction::Negative, 30, -10, 3, 1));
        let mut path = ramp(0, 40);
        path.extend(ramp(40, 0));
        let f = run(&mut c, 0, &path);
        assert_eq!(presets(&f), [30, 20, 10]);
        assert!(f.iter().all(|(f, _)| f.negative));
    }

    #[test]
    fn either_direction_fires_first_crossing_and_survives_reversal() {
        let mut c = Comparator::default();
        c.configure(&cfg(Direction::Either, 10, 10, 3, 1));
        // Up past 10 and 20, back down through 20 (20 already fired; 30 is next) and up again.
        let mut path = ramp(0, 25);
        path.extend(ramp(25, 5));
        path.extend(ramp(5, 35));
        let f = run(&mut c, 0, &path);
        assert_eq!(presets(&f), [10, 20, 30]);
        // Either fires on a negative crossing too.
        let mut c = Comparator::default();
        c.configure(&cfg(Direction::Either, 10, 10, 1, 1));
        let f = run(&mut c, 20, &ramp(20, 0));
        assert_eq!(presets(&f), [10]);
        assert!(f[0].0.negative);
    }

    #[test]
    fn positive_scan_does_not_fire_on_the_way_back() {
        let mut c = Comparator::default();
        c.configure(&cfg(Direction::Positive, 10, 10, 3, 1));
        let mut path = ramp(0, 15);
        path.extend(ramp(15, 0)); // back down: nothing
        path.extend(ramp(0, 35));
        let f = run(&mut c, 0, &path);
        assert_eq!(presets(&f), [10, 20, 30]);
    }

    #[test]
    fn jump_across_several_presets_fires_every_one_in_order() {
        let mut c = Comparator::default();
        c.configure(&cfg(Direction::Positive, 10, 2, 10, 1));
        // 0..=11 one by one, then a jump to 20 (crosses 12..=20), then on.
        let mut path = ramp(0, 11);
        path.push(20);
        path.extend(ramp(21, 30));
        let f = run(&mut c, 0, &path);
        assert_eq!(presets(&f), [10, 12, 14, 16, 18, 20, 22, 24, 26, 28]);
        let at20: Vec<_> = f.iter().filter(|(_, x)| *x == 20).collect();
        assert_eq!(at20.len(), 5);
    }

    #[test]
    fn bidirectional_passes_alternate_and_turnaround_jitter_is_harmless() {
        let mut c = Comparator::default();
        c.configure(&cfg(Direction::Bidirectional, 0, 10, 3, 3));
        let mut path = ramp(-5, 22);
        // Jitter at the turn-around, then back down past 0, then up again.
        for _ in 0..10 {
            path.extend([21, 20, 21, 22]);
        }
        path.extend(ramp(22, -5));
        path.extend(ramp(-5, 25));
        let f = run(&mut c, -5, &path);
        assert_eq!(presets(&f), [0, 10, 20, 20, 10, 0, 0, 10, 20]);
        let starts: Vec<_> = f.iter().map(|(f, _)| f.pass_start).collect();
        assert_eq!(
            starts,
            [true, false, false, true, false, false, true, false, false]
        );
        let neg: Vec<_> = f.iter().map(|(f, _)| f.negative).collect();
        assert_eq!(
            neg,
            [false, false, false, true, true, true, false, false, false]
        );
        assert_eq!(f.last().unwrap().0.index, 8);
        assert!(c.done());
    }

    fn list_cfg(direction: Direction, count: u32, passes: u16) -> ScanConfig {
        ScanConfig {
            mode: TriggerMode::List,
            ..cfg(direction, 0, 1, count, passes)
        }
    }

    #[test]
    fn non_uniform_decreasing_list() {
        // An EXAFS-like grid walked in the negative direction: gaps grow.
        let list: Vec<i64> = (0..20).map(|i| 1000 - i * i).collect();
        let mut c = Comparator::default();
        c.configure(&list_cfg(Direction::Negative, list.len() as u32, 1));
        c.window.load(0, list.len(), list.iter().copied()).unwrap();
        assert!(c.ready());
        let f = run(&mut c, 1010, &ramp(1010, 500));
        assert_eq!(presets(&f), list);
    }

    #[test]
    fn bidirectional_list_uses_its_own_forward_direction() {
        let list = [50i64, 40, 25];
        let mut c = Comparator::default();
        c.configure(&list_cfg(Direction::Bidirectional, 3, 2));
        c.window.load(0, list.len(), list.iter().copied()).unwrap();
        let mut path = ramp(60, 20);
        path.extend(ramp(20, 60));
        let f = run(&mut c, 60, &path);
        assert_eq!(presets(&f), [50, 40, 25, 25, 40, 50]);
    }

    #[test]
    fn chunk_offsets_must_be_contiguous_and_fit() {
        let mut c = Comparator::default();
        c.configure(&list_cfg(Direction::Positive, 10_000, 1));
        assert_eq!(
            c.window.load(5, 1, [1i64].into_iter()),
            Err(ChunkError::BadOffset { expected: 0 })
        );
        let full: Vec<i64> = (0..LIST_WINDOW as i64).collect();
        assert_eq!(c.window.load(0, full.len(), full.iter().copied()), Ok(0));
        assert!(c.ready());
        assert_eq!(
            c.window.load(LIST_WINDOW as u32, 1, [1i64].into_iter()),
            Err(ChunkError::WindowFull { free: 0 })
        );
        // A chunk past the list's end.
        let mut c = Comparator::default();
        c.configure(&list_cfg(Direction::Positive, 3, 1));
        assert_eq!(
            c.window.load(0, 4, [1i64, 2, 3, 4].into_iter()),
            Err(ChunkError::BadOffset { expected: 0 })
        );
        assert!(!c.ready());
    }

    #[test]
    fn a_million_positions_stream_through_the_window() {
        const N: u32 = 1_000_000;
        let pos = |i: u32| 3 * i64::from(i) + i64::from(i % 2); // non-uniform gaps 3/4 alternating-ish
        let mut c = Comparator::default();
        c.configure(&list_cfg(Direction::Positive, N, 1));
        let mut next = 0u32;
        let refill = |c: &mut Comparator, next: &mut u32| {
            while *next < N && c.window.free() > 0 {
                let n = 250.min(N - *next).min(c.window.free());
                let chunk = (*next..*next + n).map(pos);
                c.window.load(*next, n as usize, chunk).unwrap();
                *next += n;
            }
        };
        refill(&mut c, &mut next);
        assert!(c.ready());
        c.arm(-1);
        let mut fired = 0u32;
        let mut x = -1i64;
        let end = pos(N - 1);
        while x < end {
            x += 1;
            loop {
                match c.peek(x) {
                    Next::Fire(f) => {
                        assert_eq!(f.preset, pos(fired));
                        assert_eq!(f.preset, x, "fired off its preset");
                        fired += 1;
                        c.commit();
                    }
                    Next::Underrun => panic!("window ran dry at {fired}"),
                    _ => {
                        c.settle(x, false);
                        break;
                    }
                }
            }
            if x % 512 == 0 {
                refill(&mut c, &mut next);
            }
        }
        assert_eq!(fired, N);
        assert!(c.done());
    }

    #[test]
    fn late_list_positions_fire_when_they_arrive() {
        let mut c = Comparator::default();
        c.configure(&list_cfg(Direction::Positive, 6000, 1));
        let first: Vec<i64> = (0..LIST_WINDOW as i64).collect();
        c.window
            .load(0, first.len(), first.iter().copied())
            .unwrap();
        c.arm(-1);
        let mut fired = Vec::new();
        let step = |c: &mut Comparator, fired: &mut Vec<i64>, x: i64| loop {
            match c.peek(x) {
                Next::Fire(f) => {
                    fired.push(f.preset);
                    c.commit();
                }
                n => {
                    c.settle(x, n == Next::Underrun);
                    break;
                }
            }
        };
        for x in 0..=4100 {
            step(&mut c, &mut fired, x);
        }
        assert_eq!(fired.len(), LIST_WINDOW);
        // Presets 4096.. arrive late; the motor is already at 4100.
        let rest: Vec<i64> = (4096..4196).collect();
        c.window
            .load(4096, rest.len(), rest.iter().copied())
            .unwrap();
        step(&mut c, &mut fired, 4101);
        assert_eq!(fired.len(), LIST_WINDOW + 6); // 4096..=4101
        assert_eq!(*fired.last().unwrap(), 4101);
    }
}
