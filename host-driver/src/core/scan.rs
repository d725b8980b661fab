//! The scan the driver armed: its configuration, where its points stand, and the checks every
//! data frame must pass before any of it is shown (PROTOCOL.md §What the host accepts from a
//! device). Accepted points leave as [`RowBlock`]s, already in the waveforms' units.

use super::controls::Calibration;
use flyscan_protocol::limits::MAX_CHANNELS;
use flyscan_protocol::{Direction, PointBatch, ScanConfig, ScanDone, TriggerMode};

/// Points of one accepted batch (or a hole of lost points), as columns in waveform units.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RowBlock {
    /// Scan the rows belong to.
    pub scan_id: u32,
    /// Index of the first row within the scan.
    pub first: u64,
    /// Encoder position, counts (NaN for a lost point).
    pub position: Vec<f64>,
    /// Device time of the trigger, s (NaN for a lost point).
    pub timestamp: Vec<f64>,
    /// Gate time of the bin, s (NaN for a lost point).
    pub live_time: Vec<f64>,
    /// Flag bits (0 for a lost point).
    pub flags: Vec<u8>,
    /// Energy at the trigger (the end of the bin), eV.
    pub energy: Vec<f64>,
    /// Energy at the start of the bin (the previous preset), eV; NaN for the first point of a
    /// pass, whose bin began at the arm or the turn-around.
    pub energy_start: Vec<f64>,
    /// Energy at the middle position of the bin, eV (NaN where `energy_start` is).
    pub energy_centre: Vec<f64>,
    /// Counts per enabled channel, in channel order: `(channel, values)` (NaN for a lost point).
    pub counts: Vec<(u8, Vec<f64>)>,
}

impl RowBlock {
    /// Rows in the block.
    pub fn len(&self) -> usize {
        self.position.len()
    }

    /// True for a block of no rows.
    pub fn is_empty(&self) -> bool {
        self.position.is_empty()
    }

    /// The rows whose scan index is a multiple of `k`, numbered by index / k (a preview of the
    /// scan holding every k-th point).
    pub fn every(&self, k: u64) -> RowBlock {
        let k = k.max(1);
        let picked: Vec<usize> = (0..self.len())
            .filter(|&j| (self.first + j as u64).is_multiple_of(k))
            .collect();
        let pick = |v: &[f64]| picked.iter().map(|&j| v[j]).collect::<Vec<f64>>();
        RowBlock {
            scan_id: self.scan_id,
            first: picked.first().map_or(0, |&j| (self.first + j as u64) / k),
            position: pick(&self.position),
            timestamp: pick(&self.timestamp),
            live_time: pick(&self.live_time),
            flags: picked.iter().map(|&j| self.flags[j]).collect(),
            energy: pick(&self.energy),
            energy_start: pick(&self.energy_start),
            energy_centre: pick(&self.energy_centre),
            counts: self.counts.iter().map(|(c, v)| (*c, pick(v))).collect(),
        }
    }

    fn new(scan_id: u32, first: u64, mask: u32, n: usize) -> Self {
        let counts = (0..MAX_CHANNELS as u8)
            .filter(|&c| mask & (1 << c) != 0)
            .map(|c| (c, Vec::with_capacity(n)))
            .collect();
        Self {
            scan_id,
            first,
            position: Vec::with_capacity(n),
            timestamp: Vec::with_capacity(n),
            live_time: Vec::with_capacity(n),
            flags: Vec::with_capacity(n),
            energy: Vec::with_capacity(n),
            energy_start: Vec::with_capacity(n),
            energy_centre: Vec::with_capacity(n),
            counts,
        }
    }

    fn push_lost(&mut self) {
        self.position.push(f64::NAN);
        self.timestamp.push(f64::NAN);
        self.live_time.push(f64::NAN);
        self.flags.push(0);
        self.energy.push(f64::NAN);
        self.energy_start.push(f64::NAN);
        self.energy_centre.push(f64::NAN);
        for (_, c) in &mut self.counts {
            c.push(f64::NAN);
        }
    }
}

/// Where the scan is.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveScan {
    /// Host-chosen id (the `Arm`'s).
    pub id: u32,
    /// The configuration sent (or recovered).
    pub config: ScanConfig,
    /// List mode: every position.
    pub list: Vec<i64>,
    /// List mode: positions sent so far.
    pub list_sent: usize,
    /// List mode: free window slots the device last reported.
    pub list_free: u32,
    /// The device confirmed the scan (`ScanArmed`, or its first batch).
    pub started: bool,
    /// Index the next point should have.
    pub next_index: u64,
    /// Points received.
    pub captured: u64,
    /// Points that will never arrive.
    pub lost: u64,
    /// Points the scan should produce (configured, or the device's total once it ended).
    pub expected: u64,
    /// Device clock, Hz.
    pub clock_hz: u64,
    /// Monochromator calibration at the arm (energies of this scan).
    pub calibration: Calibration,
    /// Time mode: (index, timestamp, position) of the last point received, where the next
    /// point's bin begins when it is the next period's.
    pub last_point: Option<(u64, u64, i64)>,
}

/// Why a data frame was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);

fn seconds(ticks: u64, clock_hz: u64) -> f64 {
    if clock_hz == 0 {
        f64::NAN
    } else {
        ticks as f64 / clock_hz as f64
    }
}

impl ActiveScan {
    /// A scan about to be sent to the device.
    pub fn new(id: u32, config: ScanConfig, list: Vec<i64>, clock_hz: u64) -> Self {
        Self {
            id,
            config,
            list,
            list_sent: 0,
            list_free: 0,
            started: false,
            next_index: 0,
            captured: 0,
            lost: 0,
            expected: config.total_points(),
            clock_hz,
            calibration: Calibration::default(),
            last_point: None,
        }
    }

    /// The preset of point `index` (passes walk a bidirectional scan's presets backwards on
    /// odd passes); `None` past the scan or for a list this driver does not hold.
    pub fn preset(&self, index: u64) -> Option<i64> {
        let count = u64::from(self.config.count.max(1));
        let pass = index / count;
        let mut k = index % count;
        if self.config.direction == Direction::Bidirectional && pass % 2 == 1 {
            k = count - 1 - k;
        }
        match self.config.mode {
            TriggerMode::StartStepCount => self.config.preset(k as u32),
            TriggerMode::List => self.list.get(k as usize).copied(),
            // Time points fire at periods, not at positions.
            TriggerMode::Time => None,
        }
    }

    /// Where the bin of point `index` began: the previous preset of its pass (`None` for the
    /// first point of a pass).
    pub fn bin_start(&self, index: u64) -> Option<i64> {
        let count = u64::from(self.config.count.max(1));
        if index.is_multiple_of(count) {
            return None;
        }
        self.preset(index - 1)
    }

    /// True for a list scan.
    pub fn is_list(&self) -> bool {
        self.config.mode == TriggerMode::List
    }

    /// Checks a batch against the scan and decodes it; nothing changes on a refusal. Returns
    /// the rows to show: a hole of lost points first if the batch starts past the next index.
    pub fn accept_batch(&mut self, b: &PointBatch<'_>) -> Result<Vec<RowBlock>, Rejected> {
        if b.scan_id != self.id {
            return Err(Rejected(format!(
                "PointBatch scan_id {} is not the armed scan {}",
                b.scan_id, self.id
            )));
        }
        if b.channel_mask != self.config.channel_mask {
            return Err(Rejected(format!(
                "PointBatch channel_mask {:#x} differs from the armed {:#x}",
                b.channel_mask, self.config.channel_mask
            )));
        }
        if b.encoding != self.config.encoding {
            return Err(Rejected(format!(
                "PointBatch encoding {:?} differs from the armed {:?}",
                b.encoding, self.config.encoding
            )));
        }
        let first = u64::from(b.first_index);
        let n = u64::from(b.n_points);
        if first < self.next_index {
            return Err(Rejected(format!(
                "PointBatch first_index {first} goes back (next expected {})",
                self.next_index
            )));
        }
        if first + n > self.expected {
            return Err(Rejected(format!(
                "PointBatch first_index {first} + {n} points runs past the scan's {} points",
                self.expected
            )));
        }
        let mut rows = RowBlock::new(self.id, first, self.config.channel_mask, n as usize);
        let clock = self.clock_hz;
        let cal = self.calibration;
        let mut index = first;
        let this = &*self;
        // The energy where a bin starts is usually the energy of the point before (same pass,
        // its preset): reuse it rather than compute it again.
        let mut prev: Option<(i64, f64)> = None;
        let time = self.config.mode == TriggerMode::Time;
        let period = u64::try_from(self.config.step).unwrap_or(0);
        let mut last_point = self.last_point;
        let decoded = b.decode_with(|p| {
            let end = p.position as f64;
            // Time mode: a bin is the period before its point, so it began where the previous
            // point was only when that point is the previous period's (in a window, the first
            // point after re-entering it began outside and has no known start).
            let start_preset = if time {
                last_point.and_then(|(i, ts, pos)| {
                    (i + 1 == index && ts.checked_add(period) == Some(p.timestamp)).then_some(pos)
                })
            } else {
                this.bin_start(index)
            };
            last_point = Some((index, p.timestamp, p.position));
            let start = start_preset.map_or(f64::NAN, |s| s as f64);
            let e_end = cal.energy_ev(end);
            let e_start = match (start_preset, prev) {
                (Some(s), Some((q, e))) if s == q => e,
                _ => cal.energy_ev(start),
            };
            prev = Some((p.position, e_end));
            rows.energy.push(e_end);
            rows.energy_start.push(e_start);
            rows.energy_centre.push(cal.energy_ev((start + end) / 2.0));
            index += 1;
            rows.position.push(p.position as f64);
            rows.timestamp.push(seconds(p.timestamp, clock));
            rows.live_time.push(seconds(u64::from(p.live_time), clock));
            rows.flags.push(p.flags.0);
            for ((_, col), &c) in rows.counts.iter_mut().zip(p.counts) {
                col.push(f64::from(c));
            }
        });
        match decoded {
            Ok(k) if k as u64 == n => {}
            Ok(k) => {
                return Err(Rejected(format!(
                    "PointBatch at {first} decodes to {k} points, announces {n}"
                )));
            }
            Err(e) => {
                return Err(Rejected(format!(
                    "PointBatch at {first}: point data does not decode ({e})"
                )));
            }
        }
        self.last_point = last_point;
        let mut out = Vec::with_capacity(2);
        if first > self.next_index {
            out.push(self.hole(first));
        }
        self.next_index = first + n;
        self.captured += n;
        out.push(rows);
        Ok(out)
    }

    /// Rows for the lost points from the next index up to `to`, counted lost.
    pub fn hole(&mut self, to: u64) -> RowBlock {
        let n = to.saturating_sub(self.next_index);
        let mut rows = RowBlock::new(
            self.id,
            self.next_index,
            self.config.channel_mask,
            n as usize,
        );
        for _ in 0..n {
            rows.push_lost();
        }
        self.lost += n;
        self.next_index = to;
        rows
    }

    /// Checks a `ScanDone`; on success the scan's totals are final. Returns the rows of points
    /// the device sent but that never arrived (the tail).
    pub fn accept_done(&mut self, d: &ScanDone) -> Result<RowBlock, Rejected> {
        if d.scan_id != self.id {
            return Err(Rejected(format!(
                "ScanDone scan_id {} is not the armed scan {}",
                d.scan_id, self.id
            )));
        }
        let total = u64::from(d.total_points);
        if total < self.next_index || total > self.config.total_points() {
            return Err(Rejected(format!(
                "ScanDone total_points {total} is inconsistent (points placed {}, scan of {})",
                self.next_index,
                self.config.total_points()
            )));
        }
        let tail = self.hole(total);
        self.expected = total;
        Ok(tail)
    }

    /// The scan ends without a valid `ScanDone` (device restart, silence, fault): every point
    /// not received is lost. Returns their rows.
    pub fn abandon(&mut self) -> RowBlock {
        let end = self.expected;
        self.hole(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flyscan_protocol::{BatchWriter, DoneReason, Encoding, Point, PointFlags};

    fn cfg() -> ScanConfig {
        ScanConfig {
            count: 10,
            channel_mask: 0b101,
            ..ScanConfig::default()
        }
    }

    fn writer(first: u32, n: u32, mask: u32) -> BatchWriter {
        let mut w = BatchWriter::new(Encoding::Compact, mask, 0);
        for i in first..first + n {
            let mut p = Point {
                position: i64::from(i) * 10,
                timestamp: u64::from(i) * 1000,
                live_time: 900,
                flags: PointFlags(0),
                counts: Default::default(),
            };
            for c in 0..mask.count_ones() {
                let _ = p.counts.push(i * 100 + c);
            }
            w.push(&p).expect("fits");
        }
        w
    }

    #[test]
    fn batches_become_rows_and_holes_are_lost() {
        let mut s = ActiveScan::new(7, cfg(), Vec::new(), 1000);
        let w = writer(0, 3, 0b101);
        let rows = s
            .accept_batch(&PointBatch::from_writer(7, 0, &w))
            .expect("accepted");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].counts[1], (2, vec![1.0, 101.0, 201.0]));
        assert_eq!(rows[0].timestamp[2], 2.0);
        let w = writer(5, 2, 0b101);
        let rows = s
            .accept_batch(&PointBatch::from_writer(7, 5, &w))
            .expect("accepted");
        assert_eq!((rows[0].first, rows[0].len()), (3, 2));
        assert!(rows[0].position[0].is_nan());
        assert_eq!((s.captured, s.lost, s.next_index), (5, 2, 7));
        let tail = s
            .accept_done(&ScanDone {
                scan_id: 7,
                total_points: 10,
                reason: DoneReason::Completed,
                error_code: 0,
            })
            .expect("consistent");
        assert_eq!(tail.len(), 3);
        assert_eq!(s.captured + s.lost, s.expected);
    }

    fn one_count() -> flyscan_protocol::point::Counts {
        let mut p = Point::default();
        let _ = p.counts.push(7);
        p.counts
    }

    #[test]
    fn time_points_begin_their_bin_at_the_previous_period_only() {
        let cfg = ScanConfig {
            mode: TriggerMode::Time,
            direction: Direction::Either,
            step: 1000,
            count: 6,
            channel_mask: 1,
            gate_span: 50,
            ..ScanConfig::default()
        };
        let mut s = ActiveScan::new(4, cfg, Vec::new(), 1_000_000);
        s.calibration.angle_offset = -200_000.0;
        let mut w = BatchWriter::new(Encoding::Compact, 1, 0);
        // Periods 1, 2, 3, then 6 and 7 (the motor left the window for two periods), then 8.
        for (k, (period, pos)) in [(1u64, 10i64), (2, 13), (3, 16), (6, 40), (7, 43)]
            .into_iter()
            .enumerate()
        {
            w.push(&Point {
                position: pos,
                timestamp: period * 1000,
                live_time: 1000,
                flags: PointFlags(if k == 0 { PointFlags::PASS_START } else { 0 }),
                counts: one_count(),
            })
            .expect("fits");
        }
        let rows = s
            .accept_batch(&PointBatch::from_writer(4, 0, &w))
            .expect("ok");
        let r = &rows[0];
        assert!(r.energy_start[0].is_nan(), "began at the arm");
        assert_eq!(r.energy_start[1], r.energy[0]);
        assert_eq!(r.energy_start[2], r.energy[1]);
        assert!(
            r.energy_start[3].is_nan(),
            "began outside the window, at no known position"
        );
        assert_eq!(r.energy_start[4], r.energy[3]);
        // The next batch continues from the last point.
        let mut w = BatchWriter::new(Encoding::Compact, 1, 0);
        w.push(&Point {
            position: 46,
            timestamp: 8000,
            live_time: 1000,
            flags: PointFlags(0),
            counts: one_count(),
        })
        .expect("fits");
        let rows = s
            .accept_batch(&PointBatch::from_writer(4, 5, &w))
            .expect("ok");
        assert_eq!(rows[0].energy_start[0], r.energy[4]);
    }

    #[test]
    fn energies_follow_the_presets_and_the_calibration() {
        let cfg = ScanConfig {
            start: 250_000,
            step: 50,
            count: 5,
            passes: 2,
            direction: Direction::Bidirectional,
            channel_mask: 1,
            ..ScanConfig::default()
        };
        let mut s = ActiveScan::new(3, cfg, Vec::new(), 1000);
        s.calibration = Calibration {
            d_spacing: 3.135_60,
            counts_per_degree: 20_000.0,
            angle_offset: 0.0,
        };
        let mut w = BatchWriter::new(Encoding::Compact, 1, 0);
        // Pass 0 forward, pass 1 backward, as the firmware fires them.
        let presets = [0i64, 1, 2, 3, 4, 4, 3, 2, 1, 0].map(|k| 250_000 + 50 * k);
        for (i, &pos) in presets.iter().enumerate() {
            w.push(&Point {
                position: pos,
                timestamp: i as u64,
                live_time: 1,
                flags: PointFlags(0),
                counts: flyscan_protocol::point::Counts::from_slice(&[1]).expect("one"),
            })
            .expect("fits");
        }
        let rows = s
            .accept_batch(&PointBatch::from_writer(3, 0, &w))
            .expect("accepted");
        let r = &rows[0];
        // An independent computation: E = hc / (2 d sin θ).
        let e = |pos: f64| 12_398.419_843 / (2.0 * 3.135_60 * (pos / 20_000.0).to_radians().sin());
        for (i, &pos) in presets.iter().enumerate() {
            assert!((r.energy[i] - e(pos as f64)).abs() < 1e-6, "point {i}");
            if i == 0 || i == 5 {
                assert!(r.energy_start[i].is_nan(), "first point of a pass {i}");
                assert!(r.energy_centre[i].is_nan());
            } else {
                let prev = presets[i - 1] as f64;
                assert!((r.energy_start[i] - e(prev)).abs() < 1e-6, "point {i}");
                let mid = (prev + pos as f64) / 2.0;
                assert!((r.energy_centre[i] - e(mid)).abs() < 1e-6, "point {i}");
            }
        }
    }

    #[test]
    fn wrong_frames_change_nothing() {
        let mut s = ActiveScan::new(7, cfg(), Vec::new(), 1000);
        let before = s.clone();
        let w = writer(0, 3, 0b101);
        assert!(s.accept_batch(&PointBatch::from_writer(8, 0, &w)).is_err());
        let w2 = writer(0, 3, 0b111);
        assert!(s.accept_batch(&PointBatch::from_writer(7, 0, &w2)).is_err());
        let w3 = writer(0, 3, 0b101);
        assert!(s.accept_batch(&PointBatch::from_writer(7, 9, &w3)).is_err());
        assert_eq!(s, before);
        s.accept_batch(&PointBatch::from_writer(7, 0, &w))
            .expect("accepted");
        assert!(
            s.accept_batch(&PointBatch::from_writer(7, 1, &w))
                .unwrap_err()
                .0
                .contains("goes back")
        );
        let done = |total| ScanDone {
            scan_id: 7,
            total_points: total,
            reason: DoneReason::Completed,
            error_code: 0,
        };
        assert!(s.accept_done(&done(2)).is_err());
        assert!(s.accept_done(&done(11)).is_err());
    }

    #[test]
    fn every_kth_row_is_numbered_by_its_index_over_k() {
        let mut s = ActiveScan::new(7, cfg(), Vec::new(), 1000);
        let w = writer(0, 3, 0b101);
        s.accept_batch(&PointBatch::from_writer(7, 0, &w))
            .expect("ok");
        let w = writer(3, 7, 0b101);
        let rows = s
            .accept_batch(&PointBatch::from_writer(7, 3, &w))
            .expect("ok");
        let p = rows[0].every(3);
        // Indices 3..10: 3, 6, 9 → preview elements 1, 2, 3.
        assert_eq!(p.first, 1);
        assert_eq!(p.position, vec![30.0, 60.0, 90.0]);
        assert_eq!(p.counts[1].1, vec![301.0, 601.0, 901.0]);
        assert!(rows[0].every(100).is_empty());
    }

    #[test]
    fn a_batch_that_does_not_decode_shows_nothing() {
        let mut s = ActiveScan::new(7, cfg(), Vec::new(), 1000);
        let w = writer(0, 3, 0b101);
        let mut b = PointBatch::from_writer(7, 0, &w);
        let data = &b.data[..b.data.len() - 1];
        b.data = data;
        assert!(s.accept_batch(&b).is_err());
        assert_eq!((s.captured, s.next_index), (0, 0));
    }
}
