//! The points of one scan, laid out as the waveforms the IOC serves (sans-I/O).
//!
//! Batches arrive in sequence order (see [`crate::assembler`]), so a batch that starts past the
//! end of what is held means the points in between are gone for good: they are counted in
//! [`ScanData::lost`] and their slots hold NaN (flags 0), keeping every array aligned by point
//! index. `ScanDone.total_points` beyond what arrived is the tail loss.

use flyscan_protocol::limits::MAX_CHANNELS;
use flyscan_protocol::{Point, ScanConfig, ScanDone};

/// How a batch fitted into the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchOutcome {
    /// Points stored.
    pub stored: u64,
    /// Points declared lost because the batch started past the held end.
    pub newly_lost: u64,
    /// Points dropped because they were already held.
    pub duplicates: u64,
    /// Points that did not fit in the waveforms.
    pub overflow: u64,
}

/// Waveform data and counters of the current scan.
#[derive(Debug, Clone, Default)]
pub struct ScanData {
    /// Scan id (host-chosen).
    pub scan_id: u32,
    /// The configuration the device echoed (absent if the scan was joined mid-way).
    pub config: Option<ScanConfig>,
    /// Device clock rate, Hz (timestamps and live times are divided by it).
    pub clock_hz: u64,
    /// Per-channel counts, indexed by channel number (empty for disabled channels).
    pub channels: Vec<Vec<f64>>,
    /// Encoder position at each trigger, counts.
    pub position: Vec<f64>,
    /// Device time at each trigger, seconds.
    pub timestamp: Vec<f64>,
    /// Gate time of each bin, seconds.
    pub live_time: Vec<f64>,
    /// Flag bits of each point.
    pub flags: Vec<u8>,
    /// Points received.
    pub captured: u64,
    /// Points known to be lost.
    pub lost: u64,
    /// Points the scan should produce (from the configuration, or `ScanDone`).
    pub expected: u64,
    /// Points that arrived past the waveform capacity.
    pub overflow: u64,
    /// Set when the device reported the scan's end.
    pub done: Option<ScanDone>,
    capacity: usize,
}

/// Converts device ticks to seconds (NaN for an unknown clock, so it cannot pass as data).
fn seconds(ticks: u64, clock_hz: u64) -> f64 {
    if clock_hz == 0 {
        f64::NAN
    } else {
        ticks as f64 / clock_hz as f64
    }
}

impl ScanData {
    /// An empty scan holding at most `capacity` points per waveform.
    pub fn new(scan_id: u32, config: Option<ScanConfig>, clock_hz: u64, capacity: usize) -> Self {
        let expected = config.map(|c| c.total_points()).unwrap_or(0);
        let reserve = usize::try_from(expected).unwrap_or(capacity).min(capacity);
        let mut channels = vec![Vec::new(); MAX_CHANNELS];
        if let Some(c) = config {
            for (i, ch) in channels.iter_mut().enumerate() {
                if c.channel_mask & (1 << i) != 0 {
                    ch.reserve_exact(reserve);
                }
            }
        }
        Self {
            scan_id,
            config,
            clock_hz,
            channels,
            position: Vec::with_capacity(reserve),
            timestamp: Vec::with_capacity(reserve),
            live_time: Vec::with_capacity(reserve),
            flags: Vec::with_capacity(reserve),
            expected,
            capacity,
            ..Default::default()
        }
    }

    /// Points held per waveform (the waveforms' NORD).
    pub fn len(&self) -> usize {
        self.position.len()
    }

    /// True when no point slot is held.
    pub fn is_empty(&self) -> bool {
        self.position.is_empty()
    }

    /// Index the next in-order point should have.
    pub fn next_index(&self) -> u64 {
        self.len() as u64 + self.overflow
    }

    fn push_slot(&mut self, mask: u32, p: Option<&Point>) {
        self.position
            .push(p.map_or(f64::NAN, |p| p.position as f64));
        self.timestamp
            .push(p.map_or(f64::NAN, |p| seconds(p.timestamp, self.clock_hz)));
        self.live_time
            .push(p.map_or(f64::NAN, |p| seconds(u64::from(p.live_time), self.clock_hz)));
        self.flags.push(p.map_or(0, |p| p.flags.0));
        let mut counts = p.map(|p| p.counts.iter());
        for (ch, wave) in self.channels.iter_mut().enumerate() {
            if mask & (1 << ch) != 0 {
                let v = counts
                    .as_mut()
                    .and_then(|c| c.next())
                    .map_or(f64::NAN, |&v| f64::from(v));
                wave.push(v);
            } else if !wave.is_empty() {
                // A channel enabled earlier in the scan but not in this batch: keep alignment.
                wave.push(f64::NAN);
            }
        }
    }

    /// Adds a batch of consecutive points starting at `first_index`, whose counts follow
    /// `channel_mask`.
    pub fn apply_batch(
        &mut self,
        first_index: u32,
        channel_mask: u32,
        points: &[Point],
    ) -> BatchOutcome {
        let mut out = BatchOutcome::default();
        let first = u64::from(first_index);
        let mut skip = 0usize;
        let next = self.next_index();
        if first > next {
            let hole = first - next;
            out.newly_lost = hole;
            self.lost += hole;
            for _ in 0..hole {
                if self.len() < self.capacity {
                    self.push_slot(channel_mask, None);
                } else {
                    self.overflow += 1;
                }
            }
        } else if first < next {
            skip = usize::try_from(next - first)
                .unwrap_or(usize::MAX)
                .min(points.len());
            out.duplicates = skip as u64;
        }
        for p in points.iter().skip(skip) {
            if self.len() < self.capacity {
                self.push_slot(channel_mask, Some(p));
                out.stored += 1;
            } else {
                self.overflow += 1;
                out.overflow += 1;
            }
            self.captured += 1;
        }
        out
    }

    /// Records the scan's end; points announced but never received are the tail loss.
    pub fn finish(&mut self, done: &ScanDone) -> u64 {
        let total = u64::from(done.total_points);
        let tail = total.saturating_sub(self.next_index());
        self.lost += tail;
        self.expected = total;
        self.done = Some(*done);
        tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flyscan_protocol::{DoneReason, PointFlags};

    fn pt(i: u32, n_ch: usize) -> Point {
        let mut p = Point {
            position: i64::from(i) * 10 - 5,
            timestamp: u64::from(i) * 1000,
            live_time: 900,
            flags: PointFlags(0),
            counts: Default::default(),
        };
        for c in 0..n_ch {
            let _ = p.counts.push(i * 100 + c as u32);
        }
        p
    }

    #[test]
    fn batches_fill_aligned_waveforms() {
        let mut s = ScanData::new(7, None, 1000, 100);
        let pts: Vec<Point> = (0..4).map(|i| pt(i, 2)).collect();
        let o = s.apply_batch(0, 0b101, &pts[..2]);
        assert_eq!(o.stored, 2);
        s.apply_batch(2, 0b101, &pts[2..]);
        assert_eq!(s.channels[0], vec![0.0, 100.0, 200.0, 300.0]);
        assert_eq!(s.channels[2], vec![1.0, 101.0, 201.0, 301.0]);
        assert!(s.channels[1].is_empty());
        assert_eq!(s.position, vec![-5.0, 5.0, 15.0, 25.0]);
        assert_eq!(s.timestamp[3], 3.0);
        assert_eq!(s.live_time[0], 0.9);
    }

    #[test]
    fn holes_and_tail_are_lost_exactly() {
        let mut s = ScanData::new(1, None, 1, 100);
        let pts: Vec<Point> = (0..10).map(|i| pt(i, 1)).collect();
        s.apply_batch(0, 1, &pts[0..3]);
        let o = s.apply_batch(5, 1, &pts[5..7]);
        assert_eq!(o.newly_lost, 2);
        assert!(s.channels[0][3].is_nan() && s.channels[0][4].is_nan());
        // A duplicate overlap is skipped.
        let o = s.apply_batch(6, 1, &pts[6..8]);
        assert_eq!((o.duplicates, o.stored), (1, 1));
        let tail = s.finish(&ScanDone {
            scan_id: 1,
            total_points: 10,
            reason: DoneReason::Completed,
            error_code: 0,
        });
        assert_eq!(tail, 2);
        assert_eq!((s.captured, s.lost, s.len()), (6, 4, 8));
    }

    #[test]
    fn capacity_is_never_exceeded() {
        let mut s = ScanData::new(1, None, 1, 3);
        let pts: Vec<Point> = (0..5).map(|i| pt(i, 1)).collect();
        let o = s.apply_batch(0, 1, &pts);
        assert_eq!((o.stored, o.overflow), (3, 2));
        assert_eq!(s.len(), 3);
        assert_eq!(s.next_index(), 5);
    }
}
