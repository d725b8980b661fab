//! Ground truth: the points the firmware must produce, computed by the simulator's own
//! reference decoder and compare from the edges the FPGA saw and the exact pulse counts.
//!
//! Conventions (SCENARIOS.md §Ground truth states them for users):
//! * Decoder: position 0 and the current A/B at the FPGA reset the firmware issues at start-up;
//!   each edge moves ±1 (A leads B = up); an illegal transition (both lines) moves 2 in the last
//!   known direction (up if none yet) and is counted.
//! * Compare: only the next preset is tested, on the segment from the position after the previous
//!   edge `a` to the position after this edge `x`: up-crossing `a < p ≤ x`, down-crossing
//!   `x ≤ p < a`. Positive/Negative accept one sense, Either both; Bidirectional walks the
//!   presets forward on even passes and backward on odd ones, accepting only the pass's own
//!   sense (forward = towards the last preset).
//! * Bins: bin 0 starts at the first edge after the arm; every point ends its bin at the edge
//!   that fired it.
//! * A point: position = the preset, timestamp = the edge's clock tick, live time = ticks in
//!   the bin (the gate is always open), counts = pulses in the bin. Flags: NEGATIVE when `x < a`;
//!   PASS_START on the first point of every pass; QUAD_ERROR on the first point after an illegal
//!   transition in its bin (the bin-0 start edge itself excluded); JUMP when the firing edge
//!   moved more than one count, and on every point but the first that one edge fires.
//! * Time mode (PROTOCOL.md *Time mode*): no compare. The FPGA's period timer starts at the
//!   tick `a` its `PERIOD` write executes; the truth takes the scan's own period `P` (not the
//!   value written) and makes period `k` end at tick `a + k·P`. Bin `k` is the ticks
//!   `a + (k−1)·P … a + k·P − 1` and the edges after `a + (k−1)·P` up to `a + k·P` (an edge on
//!   the tick itself is the FPGA's same event); its point, when the decoded position at its end
//!   is inside the window (or there is none): position = that decoded position, timestamp =
//!   `a + k·P`, live time = `P`, counts = pulses in the bin; NEGATIVE when the last move went
//!   down, PASS_START on the first point, QUAD_ERROR when the bin saw an illegal transition. The
//!   scan ends after `count` points.

use crate::encoder::quadrature_step;
use flyscan_protocol::{Direction, PointFlags};
use serde::Serialize;

/// One expected point (in time mode `preset` repeats the position: there is no preset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TruthPoint {
    /// Point index in the scan.
    pub index: u32,
    /// Pass number.
    pub pass: u16,
    /// The preset that fired.
    pub preset: i64,
    /// Position at the trigger, counts.
    pub position: i64,
    /// Clock tick of the trigger edge.
    pub timestamp: u64,
    /// Live time of the bin, ticks.
    pub live_time: u32,
    /// Flag bits (protocol `PointFlags`).
    pub flags: u8,
    /// Counts of the enabled channels, in channel order.
    pub counts: Vec<u32>,
    /// Decoded position after the firing edge.
    pub decoded_position: i64,
    /// The physical encoder count after the firing edge (differs from the decoded one only
    /// after a decoder slip).
    pub true_position: i64,
}

/// End-of-run totals written as the last truth line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TruthSummary {
    /// Points expected.
    pub points: u64,
    /// Points the scan asked for.
    pub points_planned: u64,
    /// Encoder glitches injected.
    pub glitches_injected: u64,
    /// Encoder edges the FPGA missed (injected).
    pub missing_edges_injected: u64,
    /// Visible edges with both lines changed (= the firmware's quad_errors after its reset).
    pub illegal_transitions: u64,
    /// Illegal transitions the decoder resolved the wrong way (position off by 4 after each).
    pub decoder_slips: u64,
    /// Edges lost to FIFO overrun.
    pub fifo_overruns: u64,
    /// Points flagged JUMP.
    pub jump_points: u64,
    /// Edges that fired two or more presets (the firmware's `Health.position_jumps`).
    pub position_jumps: u64,
    /// Line bytes the device sent to the host.
    pub up_bytes_sent: u64,
    /// Line bytes corrupted device → host.
    pub up_bytes_corrupted: u64,
    /// Line bytes dropped device → host.
    pub up_bytes_dropped: u64,
    /// Line bytes corrupted host → device.
    pub down_bytes_corrupted: u64,
    /// Line bytes dropped host → device.
    pub down_bytes_dropped: u64,
}

/// Time-mode parameters of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeScan {
    /// Period, clock ticks.
    pub period: u64,
    /// Inclusive position window, counts, when the scan has one.
    pub window: Option<(i64, i64)>,
    /// Points the scan takes.
    pub count: u32,
}

/// Scan parameters the reference needs.
#[derive(Debug, Clone)]
pub struct TruthScan {
    /// Presets in pass-0 order.
    pub presets: Vec<i64>,
    /// Direction setting.
    pub direction: Direction,
    /// Passes.
    pub passes: u16,
    /// Enabled channels.
    pub channel_mask: u32,
    /// Time mode: its parameters (the presets are then empty).
    pub time: Option<TimeScan>,
}

/// The reference decoder, compare and bin accounting.
#[derive(Debug, Clone)]
pub struct Reference {
    scan: TruthScan,
    ab: u8,
    pos: i64,
    dir: i64,
    illegal: u64,
    slips: u64,
    jumps: u64,
    multi_fire_edges: u64,
    true_at_reset: i64,
    armed: bool,
    need_base: bool,
    was_reset: bool,
    forward_up: bool,
    pass: u16,
    k: usize,
    last_x: i64,
    bin_tick: u64,
    bin_counts: Vec<u64>,
    quad_in_bin: bool,
    /// Time mode: the period timer runs (its bin started at `bin_tick`).
    timer: bool,
    points: Vec<TruthPoint>,
}

impl Reference {
    /// A reference for `scan`; nothing counts until [`Reference::reset`].
    pub fn new(scan: TruthScan) -> Self {
        let forward_up = match (scan.presets.first(), scan.presets.last()) {
            (Some(f), Some(l)) => l >= f,
            _ => true,
        };
        Self {
            scan,
            ab: 0,
            pos: 0,
            dir: 0,
            illegal: 0,
            slips: 0,
            jumps: 0,
            multi_fire_edges: 0,
            true_at_reset: 0,
            armed: false,
            need_base: false,
            was_reset: false,
            forward_up,
            pass: 0,
            k: 0,
            last_x: 0,
            bin_tick: 0,
            bin_counts: Vec::new(),
            quad_in_bin: false,
            timer: false,
            points: Vec::new(),
        }
    }

    /// Time mode: the scan's period, clock ticks (`None` in the position modes).
    pub fn period(&self) -> Option<u64> {
        self.scan.time.map(|t| t.period)
    }

    /// Time mode: the FPGA's period timer started at `tick` (the arm), with pulse totals
    /// `totals` before that tick: the first bin starts here. Ignored in the position modes and
    /// once the scan is complete.
    pub fn timer_started(&mut self, tick: u64, totals: &[u64]) {
        if self.scan.time.is_none() || self.done() {
            return;
        }
        self.timer = true;
        self.bin_tick = tick;
        self.bin_counts = totals.to_vec();
        self.quad_in_bin = false;
    }

    /// Time mode: the period timer was stopped.
    pub fn timer_stopped(&mut self) {
        self.timer = false;
    }

    /// Time mode: a period ends at `tick` (after every edge up to and including that tick),
    /// with pulse totals `totals` before that tick and `true_count` the physical count: a point
    /// when the position is inside the window, and the start of the next bin either way.
    pub fn period_end(&mut self, tick: u64, totals: &[u64], true_count: i64) {
        let Some(time) = self.scan.time else {
            return;
        };
        if !self.timer || self.done() {
            return;
        }
        let x = self.pos;
        if time.window.is_none_or(|(lo, hi)| lo <= x && x <= hi) {
            let mut flags = 0u8;
            if self.dir < 0 {
                flags |= PointFlags::NEGATIVE;
            }
            if self.points.is_empty() {
                flags |= PointFlags::PASS_START;
            }
            if self.quad_in_bin {
                flags |= PointFlags::QUAD_ERROR;
            }
            let live_time = u32::try_from(tick - self.bin_tick).unwrap_or_else(|_| {
                flags |= PointFlags::CLAMPED;
                u32::MAX
            });
            let counts = self.bin_counts_to(totals, &mut flags);
            self.points.push(TruthPoint {
                index: self.points.len() as u32,
                pass: 0,
                preset: x,
                position: x,
                decoded_position: x,
                timestamp: tick,
                live_time,
                flags,
                counts,
                true_position: true_count - self.true_at_reset,
            });
        }
        self.bin_tick = tick;
        self.bin_counts = totals.to_vec();
        self.quad_in_bin = false;
    }

    /// Counts of the enabled channels since the bin start, clamped to u32 (flagged).
    fn bin_counts_to(&self, totals: &[u64], flags: &mut u8) -> Vec<u32> {
        let mut counts = Vec::new();
        for (ch, &total) in totals.iter().enumerate().take(32) {
            if self.scan.channel_mask & (1 << ch) != 0 {
                let c = total - self.bin_counts.get(ch).copied().unwrap_or(0);
                counts.push(u32::try_from(c).unwrap_or_else(|_| {
                    *flags |= PointFlags::CLAMPED;
                    u32::MAX
                }));
            }
        }
        counts
    }

    /// The FPGA was reset with the encoder at `ab` (true count `true_count`). The first reset
    /// (the firmware's start-up) starts the decoder at position 0.
    pub fn reset(&mut self, ab: u8, true_count: i64) {
        if self.was_reset {
            return;
        }
        self.was_reset = true;
        self.ab = ab;
        self.pos = 0;
        self.dir = 0;
        self.illegal = 0;
        self.true_at_reset = true_count;
    }

    /// The scan is armed (the motor is about to move): compare starts at the current position
    /// and bin 0 at the next edge.
    pub fn arm(&mut self) {
        self.armed = true;
        self.need_base = true;
        self.last_x = self.pos;
    }

    /// One visible edge at `tick` with new levels `ab`; `totals` are the pulse totals at that
    /// tick and `true_count` the physical count after it.
    pub fn edge(&mut self, tick: u64, ab: u8, true_count: i64, totals: &[u64]) {
        let d = match quadrature_step(self.ab, ab) {
            Some(d) => {
                self.dir = d;
                d
            }
            None if ab == self.ab => 0,
            None => {
                self.illegal += 1;
                self.quad_in_bin = true;
                2 * if self.dir < 0 { -1 } else { 1 }
            }
        };
        self.ab = ab;
        let before = self.pos - (true_count - self.true_at_reset);
        self.pos += d;
        let after = self.pos - (true_count - self.true_at_reset);
        if after != before && before == 0 {
            self.slips += 1;
        }
        if !self.armed || self.scan.time.is_some() {
            return;
        }
        if std::mem::take(&mut self.need_base) {
            self.bin_tick = tick;
            self.bin_counts = totals.to_vec();
            self.quad_in_bin = false;
        }
        let (a, x) = (self.last_x, self.pos);
        let jumpy = d.abs() > 1 || a.abs_diff(x) > 1;
        let mut fired_here = 0;
        while self.pass < self.scan.passes.max(1) {
            let n = self.scan.presets.len();
            let backward = self.scan.direction == Direction::Bidirectional && self.pass % 2 == 1;
            let rank = if backward { n - 1 - self.k } else { self.k };
            let p = self.scan.presets[rank];
            let (up, down) = match self.scan.direction {
                Direction::Positive => (true, false),
                Direction::Negative => (false, true),
                Direction::Either => (true, true),
                Direction::Bidirectional => {
                    let up = self.pass.is_multiple_of(2) == self.forward_up;
                    (up, !up)
                }
            };
            if !((up && a < p && p <= x) || (down && x <= p && p < a)) {
                break;
            }
            let mut flags = 0u8;
            if x < a {
                flags |= PointFlags::NEGATIVE;
            }
            if self.k == 0 {
                flags |= PointFlags::PASS_START;
            }
            if self.quad_in_bin {
                flags |= PointFlags::QUAD_ERROR;
            }
            if jumpy || fired_here > 0 {
                flags |= PointFlags::JUMP;
                self.jumps += 1;
            }
            if fired_here == 1 {
                self.multi_fire_edges += 1;
            }
            let live = tick - self.bin_tick;
            let live_time = u32::try_from(live).unwrap_or_else(|_| {
                flags |= PointFlags::CLAMPED;
                u32::MAX
            });
            let counts = self.bin_counts_to(totals, &mut flags);
            self.points.push(TruthPoint {
                index: self.points.len() as u32,
                pass: self.pass,
                preset: p,
                position: p,
                decoded_position: x,
                timestamp: tick,
                live_time,
                flags,
                counts,
                true_position: true_count - self.true_at_reset,
            });
            self.bin_tick = tick;
            self.bin_counts = totals.to_vec();
            self.quad_in_bin = false;
            fired_here += 1;
            self.k += 1;
            if self.k >= n {
                self.k = 0;
                self.pass += 1;
            }
        }
        self.last_x = x;
    }

    /// Points so far.
    pub fn points(&self) -> &[TruthPoint] {
        &self.points
    }

    /// True when every preset of every pass fired (time mode: every point was taken).
    pub fn done(&self) -> bool {
        match self.scan.time {
            Some(t) => self.points.len() >= t.count as usize,
            None => self.pass >= self.scan.passes.max(1),
        }
    }

    /// Illegal transitions since the reset.
    pub fn illegal(&self) -> u64 {
        self.illegal
    }

    /// Times the decoded position left the physical one.
    pub fn slips(&self) -> u64 {
        self.slips
    }

    /// Points flagged JUMP.
    pub fn jumps(&self) -> u64 {
        self.jumps
    }

    /// Edges that fired two or more presets.
    pub fn multi_fire_edges(&self) -> u64 {
        self.multi_fire_edges
    }

    /// Decoded position now.
    pub fn position(&self) -> i64 {
        self.pos
    }
}
