//! Time mode (PROTOCOL.md *Time mode*): points at the FPGA's period events (FPGA.md *Period
//! timer*) instead of at preset positions.
//!
//! The device writes the period into the FPGA's `PERIOD` register at the arm; the FPGA answers
//! with a *start event* on the write's cycle (the arm tick) and then a period event every period,
//! each with a snapshot of the counters at its cycle, in the same FIFO as the encoder edges. The
//! start event's snapshot starts the first bin; every later period event ends one bin (a point
//! when the position is inside the window) and starts the next, so a point's bin is exactly the
//! period before it, to one clock.
//!
//! [`Periods`] is the bookkeeping of one scan, without I/O: which period events belong to the
//! scan (older ones, left in the FIFO by an earlier timer, are stale), how many periods a bin
//! spans (more than one only when the FPGA dropped period events), the position window, and how
//! many of the events lost in a sequence gap were period events (so the quadrature decoder
//! resynchronises on the edges alone).

use crate::fpga::EdgeEvent;
use flyscan_protocol::{ScanConfig, TriggerMode};

/// What the device still has to tell the FPGA's period timer (done at the next poll, so that an
/// SPI error only delays it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimerCmd {
    /// Nothing.
    #[default]
    None,
    /// Read the clock, then write `PERIOD` = this period (starts the timer).
    Start(u32),
    /// Write `PERIOD` = 0.
    Stop,
}

/// What a period event means to the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Made by an earlier timer (older than the arm): ignored.
    Stale,
    /// The first period event of the scan: its snapshot starts the first bin. Normally the start
    /// event; a later one when the FIFO dropped the start event.
    First,
    /// A period event ending a bin of `periods` periods (1 unless period events were dropped
    /// in between).
    Period {
        /// Periods since the previous period event taken.
        periods: u64,
    },
}

/// The period-event bookkeeping of one time-mode scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    period: u64,
    /// Inclusive position window, when the scan has one.
    window: Option<(i64, i64)>,
    count: u32,
    /// The clock just before the `PERIOD` write: period events older than this are stale
    /// (`u64::MAX` until the timer was started, so nothing is taken before).
    after: u64,
    /// Tick of the last period event taken (the start of the current bin), once there is one.
    bin_tick: Option<u64>,
    /// The period grid up to which the events of sequence gaps were accounted, once known.
    seen_tick: Option<u64>,
}

impl Periods {
    /// The bookkeeping of a time-mode scan of `cfg` (validated: period ≥ 1, window in range);
    /// `None` for the other modes.
    pub fn new(cfg: &ScanConfig) -> Option<Self> {
        if cfg.mode != TriggerMode::Time {
            return None;
        }
        let window = (cfg.gate_span != 0).then(|| {
            (
                cfg.start,
                cfg.start.saturating_add(i64::from(cfg.gate_span)),
            )
        });
        Some(Self {
            period: u64::try_from(cfg.step).unwrap_or(1).max(1),
            window,
            count: cfg.count,
            after: u64::MAX,
            bin_tick: None,
            seen_tick: None,
        })
    }

    /// The period, clock ticks, as the `PERIOD` register takes it.
    pub fn period_register(&self) -> u32 {
        u32::try_from(self.period).unwrap_or(u32::MAX)
    }

    /// Points the scan takes.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The timer is being started: `now` is the clock read just before the `PERIOD` write.
    pub fn started_after(&mut self, now: u64) {
        self.after = now;
        self.bin_tick = None;
        self.seen_tick = None;
    }

    /// True when position `x` is inside the window (or there is none).
    pub fn in_window(&self, x: i64) -> bool {
        self.window.is_none_or(|(lo, hi)| lo <= x && x <= hi)
    }

    /// What the period event `ev` means now (no state changes: a point that waits for room in
    /// a batch is classified again).
    pub fn classify(&self, ev: &EdgeEvent) -> Kind {
        if ev.timestamp < self.after {
            return Kind::Stale;
        }
        match self.bin_tick {
            None => Kind::First,
            // A start event within a running scan: the timer was restarted, a new grid begins.
            Some(_) if ev.period_start() => Kind::First,
            Some(t) => Kind::Period {
                periods: (ev.timestamp.saturating_sub(t) / self.period).max(1),
            },
        }
    }

    /// The period event at `tick` was taken (a point or not): the next bin starts there.
    pub fn taken(&mut self, tick: u64) {
        self.bin_tick = Some(tick);
    }

    /// How many of the events lost just before the event `ev` (called for a sequence gap) were
    /// period events: the period ticks strictly between the last period event known (taken, or
    /// accounted at an earlier gap) and `ev`.
    pub fn lost_before(&mut self, ev: &EdgeEvent) -> u32 {
        if ev.timestamp < self.after {
            return 0;
        }
        let Some(last) = self.bin_tick.max(self.seen_tick) else {
            return 0;
        };
        let between = ev.timestamp.saturating_sub(last).saturating_sub(1) / self.period;
        self.seen_tick = Some(last + between * self.period);
        u32::try_from(between).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fpga::regs::{EDGE_FLAG_PERIOD, EDGE_FLAG_PERIOD_START};
    use flyscan_protocol::{Direction, Encoding};

    fn cfg(period: i64, start: i64, span: u32) -> ScanConfig {
        ScanConfig {
            mode: TriggerMode::Time,
            direction: Direction::Either,
            encoding: Encoding::Compact,
            start,
            step: period,
            count: 5,
            passes: 1,
            channel_mask: 1,
            max_batch_points: 0,
            max_latency_us: 0,
            gate_span: span,
        }
    }

    fn ev(timestamp: u64, flags: u8) -> EdgeEvent {
        EdgeEvent {
            timestamp,
            flags,
            ..EdgeEvent::default()
        }
    }

    const START: u8 = EDGE_FLAG_PERIOD | EDGE_FLAG_PERIOD_START;

    #[test]
    fn only_time_mode_has_periods_and_the_window_is_inclusive() {
        assert!(
            Periods::new(&ScanConfig {
                mode: TriggerMode::StartStepCount,
                ..cfg(100, 0, 0)
            })
            .is_none()
        );
        let p = Periods::new(&cfg(100, -10, 20)).unwrap();
        assert_eq!((p.period_register(), p.count()), (100, 5));
        assert!(!p.in_window(-11) && p.in_window(-10) && p.in_window(10) && !p.in_window(11));
        assert!(Periods::new(&cfg(100, -10, 0)).unwrap().in_window(i64::MIN));
    }

    #[test]
    fn events_before_the_arm_are_stale_and_the_first_starts_the_bins() {
        let mut p = Periods::new(&cfg(100, 0, 0)).unwrap();
        assert_eq!(
            p.classify(&ev(5, EDGE_FLAG_PERIOD)),
            Kind::Stale,
            "nothing is taken before the timer was started"
        );
        p.started_after(1000);
        assert_eq!(p.classify(&ev(900, EDGE_FLAG_PERIOD)), Kind::Stale);
        assert_eq!(
            p.classify(&ev(1200, EDGE_FLAG_PERIOD)),
            Kind::First,
            "the start event was dropped: the first period event seen starts the bins"
        );
        assert_eq!(p.classify(&ev(1000, START)), Kind::First, "a held clock");
        p.taken(1000);
        assert_eq!(
            p.classify(&ev(1100, EDGE_FLAG_PERIOD)),
            Kind::Period { periods: 1 }
        );
        assert_eq!(
            p.classify(&ev(1100, EDGE_FLAG_PERIOD)),
            Kind::Period { periods: 1 },
            "classifying again changes nothing"
        );
        p.taken(1100);
        assert_eq!(
            p.classify(&ev(1400, EDGE_FLAG_PERIOD)),
            Kind::Period { periods: 3 },
            "two period events were dropped"
        );
        assert_eq!(p.classify(&ev(1450, START)), Kind::First, "a restart");
    }

    #[test]
    fn lost_period_events_are_counted_from_the_grid() {
        let mut p = Periods::new(&cfg(100, 0, 0)).unwrap();
        p.started_after(1000);
        assert_eq!(
            p.lost_before(&ev(1050, 0)),
            0,
            "no grid before the first event"
        );
        assert_eq!(p.lost_before(&ev(950, EDGE_FLAG_PERIOD)), 0, "stale");
        p.taken(1000);
        assert_eq!(p.lost_before(&ev(1050, 0)), 0, "inside period 1");
        assert_eq!(
            p.lost_before(&ev(1100, EDGE_FLAG_PERIOD)),
            0,
            "period 1 itself"
        );
        assert_eq!(p.lost_before(&ev(1101, 0)), 1, "period 1 was lost");
        assert_eq!(
            p.lost_before(&ev(1350, 0)),
            2,
            "periods 2 and 3, not 1 again"
        );
        p.taken(1400);
        assert_eq!(p.lost_before(&ev(1800, EDGE_FLAG_PERIOD)), 3, "5, 6 and 7");
    }
}
