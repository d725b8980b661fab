//! Count latching: turns the snapshot of a triggering edge into the per-bin values of a point.
//!
//! Hardware counters are `COUNTER_BITS` wide (8–32) and wrap; a bin's count is the wrapping
//! difference between the snapshot at the bin's end and the one at its start, which is exact as
//! long as a bin sees fewer than 2^bits counts. Running totals are kept in u64 and never roll
//! over. The live-time counter is extended with the 64-bit edge timestamps: when a bin lasts
//! longer than one counter wrap, the live time is taken as the largest value consistent with the
//! counter that does not exceed the elapsed time (exact while dead time per bin stays below one
//! wrap). Any per-bin value above `u32::MAX` is clamped and flagged [`PointFlags::CLAMPED`].
//!
//! A snapshot the FPGA already overwrote gives a point with zero counts ([`Latched::Lost`]); the
//! bin start is kept, so the next good point absorbs the lost bin and totals stay right.

use crate::fpga::Snapshot;
use flyscan_protocol::PointFlags;
use flyscan_protocol::limits::MAX_CHANNELS;
use flyscan_protocol::point::Counts;

/// Outcome of [`Latch::latch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latched {
    /// Counts computed; the flags to add (`CLAMPED`, or `JUMP` when the bin absorbed a lost one).
    Good(u8),
    /// The snapshot was invalid: counts are 0.
    Lost,
}

/// Per-scan latch state.
#[derive(Debug, Clone)]
pub struct Latch {
    bits: u8,
    mask: u32,
    channel_mask: u32,
    have_base: bool,
    /// The previous bin was lost; the next good bin covers it too.
    merged: bool,
    base_live: u32,
    base_ts: u64,
    base_counts: [u32; MAX_CHANNELS],
    totals: [u64; MAX_CHANNELS],
    live_total: u64,
}

impl Latch {
    /// A latch for counters of `counter_bits` bits (clamped to 8..=32).
    pub fn new(counter_bits: u8) -> Self {
        let bits = counter_bits.clamp(8, 32);
        Self {
            bits,
            mask: if bits == 32 {
                u32::MAX
            } else {
                (1u32 << bits) - 1
            },
            channel_mask: 1,
            have_base: false,
            merged: false,
            base_live: 0,
            base_ts: 0,
            base_counts: [0; MAX_CHANNELS],
            totals: [0; MAX_CHANNELS],
            live_total: 0,
        }
    }

    /// Starts a scan over `channel_mask`; the first bin starts at the next [`Latch::set_base`].
    pub fn start(&mut self, channel_mask: u32) {
        self.channel_mask = channel_mask;
        self.have_base = false;
        self.merged = false;
        self.totals = [0; MAX_CHANNELS];
        self.live_total = 0;
    }

    /// True once a bin start is known.
    pub fn has_base(&self) -> bool {
        self.have_base
    }

    /// Sets the start of the next bin (ignored if the snapshot is invalid).
    pub fn set_base(&mut self, snap: &Snapshot, timestamp: u64) {
        if !snap.valid {
            return;
        }
        self.base_live = snap.live;
        self.base_ts = timestamp;
        for (b, &c) in self.base_counts.iter_mut().zip(snap.counts.iter()) {
            *b = c;
        }
        self.have_base = true;
    }

    /// Moves the bin start to `snap` without making a point (time mode: a period event outside
    /// the position window ends a bin that belongs to no point). When the snapshot was
    /// overwritten the start stays where it was, and the next point, whose bin then spans the
    /// skipped one too, is flagged like one after a lost bin.
    pub fn skip(&mut self, snap: &Snapshot, timestamp: u64) {
        if snap.valid {
            self.set_base(snap, timestamp);
            self.merged = false;
        } else {
            self.merged = true;
        }
    }

    /// Per-scan totals of each hardware channel (u64, never roll over).
    pub fn totals(&self) -> &[u64; MAX_CHANNELS] {
        &self.totals
    }

    /// Per-scan live-time total, ticks.
    pub fn live_total(&self) -> u64 {
        self.live_total
    }

    /// Ends the current bin at `snap` (taken at `timestamp`): writes the enabled channels'
    /// counts into `counts` and returns the live time with the outcome.
    // Always inlined: it is the bulk of a point's work, and its two callers (position and time
    // mode) would otherwise leave it out of line, costing the position modes' hot path.
    #[inline(always)]
    pub fn latch(
        &mut self,
        snap: &Snapshot,
        timestamp: u64,
        counts: &mut Counts,
    ) -> (u32, Latched) {
        counts.clear();
        if !snap.valid || !self.have_base {
            for _ in 0..self.channel_mask.count_ones() {
                let _ = counts.push(0);
            }
            self.merged = true;
            // With no bin start yet, this snapshot (if valid) starts the next bin.
            if !self.have_base {
                self.set_base(snap, timestamp);
            }
            return (0, Latched::Lost);
        }
        let mut flags = 0u8;
        let mut m = self.channel_mask;
        while m != 0 {
            let ch = m.trailing_zeros() as usize;
            m &= m - 1;
            let now = snap.counts.get(ch).copied().unwrap_or(0);
            let d = now.wrapping_sub(self.base_counts[ch]) & self.mask;
            self.totals[ch] += u64::from(d);
            self.base_counts[ch] = now;
            let _ = counts.push(d);
        }
        for ch in 0..snap.counts.len().min(MAX_CHANNELS) {
            // Disabled channels still move their bin start so re-enabling them later is clean.
            if self.channel_mask & (1 << ch) == 0 {
                self.base_counts[ch] = snap.counts[ch];
            }
        }
        let d = snap.live.wrapping_sub(self.base_live) & self.mask;
        let elapsed = timestamp.wrapping_sub(self.base_ts);
        let mut live = u64::from(d);
        if elapsed > u64::from(self.mask) && elapsed >= live {
            let wrap = 1u64 << self.bits;
            live = elapsed - (elapsed - live) % wrap;
        }
        self.live_total += live;
        self.base_live = snap.live;
        self.base_ts = timestamp;
        let live = u32::try_from(live).unwrap_or_else(|_| {
            flags |= PointFlags::CLAMPED;
            u32::MAX
        });
        if self.merged {
            flags |= PointFlags::JUMP;
            self.merged = false;
        }
        (live, Latched::Good(flags))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(seq: u32, live: u32, counts: &[u32]) -> Snapshot {
        let mut s = Snapshot {
            valid: true,
            seq,
            live,
            counts: heapless::Vec::new(),
        };
        for &c in counts {
            s.counts.push(c).unwrap();
        }
        s
    }

    #[test]
    fn wrapping_differences_at_every_width() {
        for bits in [8u8, 12, 16, 24, 31, 32] {
            let wrap = if bits == 32 { 1u64 << 32 } else { 1u64 << bits };
            let mask = (wrap - 1) as u32;
            let mut l = Latch::new(bits);
            l.start(0b11);
            // Start just below the wrap, then count 10 and 300 (mod width) per bin.
            let start = mask - 4;
            l.set_base(&snap(0, start, &[start, 0]), 0);
            let mut c = Counts::new();
            let (live, r) = l.latch(
                &snap(
                    1,
                    start.wrapping_add(10) & mask,
                    &[start.wrapping_add(10) & mask, 7],
                ),
                10,
                &mut c,
            );
            assert_eq!(r, Latched::Good(0));
            assert_eq!((live, &c[..]), (10, &[10, 7][..]), "bits {bits}");
            let step = (300 % wrap) as u32;
            let v = start.wrapping_add(10).wrapping_add(step) & mask;
            let (_, _) = l.latch(&snap(2, v, &[v, 7]), 10 + u64::from(step), &mut c);
            assert_eq!(c[0], step, "bits {bits}");
            assert_eq!(l.totals()[0], 10 + u64::from(step));
        }
    }

    #[test]
    fn totals_accumulate_past_u32() {
        let mut l = Latch::new(32);
        l.start(1);
        l.set_base(&snap(0, 0, &[0]), 0);
        let mut c = Counts::new();
        let mut v = 0u32;
        for i in 1..=3u64 {
            v = v.wrapping_add(3_000_000_000);
            l.latch(&snap(i as u32, 0, &[v]), i, &mut c);
        }
        assert_eq!(l.totals()[0], 9_000_000_000);
    }

    #[test]
    fn long_bins_extend_live_time_and_clamp_past_u32() {
        // 16-bit counters: a bin of 200 000 ticks, gate always open (live = elapsed).
        let mut l = Latch::new(16);
        l.start(1);
        l.set_base(&snap(0, 0, &[0]), 0);
        let mut c = Counts::new();
        let (live, r) = l.latch(&snap(1, (200_000 % 65_536) as u32, &[5]), 200_000, &mut c);
        assert_eq!((live, r), (200_000, Latched::Good(0)));
        // A 5e9-tick bin exceeds u32: clamped and flagged.
        let t = 200_000 + 5_000_000_000u64;
        let (live, r) = l.latch(&snap(2, (t % 65_536) as u32, &[6]), t, &mut c);
        assert_eq!(live, u32::MAX);
        assert_eq!(r, Latched::Good(PointFlags::CLAMPED));
        assert_eq!(l.live_total(), t);
    }

    #[test]
    fn lost_snapshot_gives_zero_and_next_bin_absorbs_it() {
        let mut l = Latch::new(24);
        l.start(0b101);
        l.set_base(&snap(0, 0, &[0, 0, 0]), 0);
        let mut c = Counts::new();
        let mut lost = snap(5, 50, &[5, 99, 50]);
        lost.valid = false;
        assert_eq!(l.latch(&lost, 50, &mut c), (0, Latched::Lost));
        assert_eq!(&c[..], &[0, 0]);
        let (live, r) = l.latch(&snap(9, 90, &[9, 99, 90]), 90, &mut c);
        assert_eq!(r, Latched::Good(PointFlags::JUMP));
        assert_eq!((live, &c[..]), (90, &[9, 90][..]));
        // The point after is clean again.
        let (_, r) = l.latch(&snap(10, 91, &[10, 99, 91]), 91, &mut c);
        assert_eq!(r, Latched::Good(0));
    }

    #[test]
    fn a_skipped_bin_belongs_to_no_point() {
        let mut l = Latch::new(32);
        l.start(0b1);
        l.skip(&snap(0, 0, &[0]), 0);
        assert!(l.has_base());
        l.skip(&snap(1, 100, &[40]), 100);
        let mut c = Counts::new();
        let (live, r) = l.latch(&snap(2, 200, &[45]), 200, &mut c);
        assert_eq!((live, &c[..], r), (100, &[5][..], Latched::Good(0)));
        assert_eq!(l.totals()[0], 5, "the skipped bin is in no total");
        // A skip whose snapshot was overwritten: the next point spans both bins, flagged.
        let mut lost = snap(3, 300, &[50]);
        lost.valid = false;
        l.skip(&lost, 300);
        let (live, r) = l.latch(&snap(4, 400, &[60]), 400, &mut c);
        assert_eq!(
            (live, &c[..], r),
            (200, &[15][..], Latched::Good(PointFlags::JUMP))
        );
    }

    #[test]
    fn same_snapshot_twice_gives_zero_counts() {
        let mut l = Latch::new(32);
        l.start(1);
        l.set_base(&snap(0, 0, &[0]), 0);
        let s = snap(3, 30, &[42]);
        let mut c = Counts::new();
        l.latch(&s, 30, &mut c);
        assert_eq!(c[0], 42);
        l.latch(&s, 30, &mut c);
        assert_eq!((c[0], l.totals()[0]), (0, 42));
    }
}
