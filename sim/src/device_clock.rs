//! The device clock (FPGA model time: edge timestamps, detector pulses, live time, the TIME
//! registers), kept apart from the wall clock that paces the serial line.
//!
//! Rule: the device clock is held at [`ARM_TICK`] until the scan is armed (the simulation sees
//! `ScanArmed` in the device's output), then runs at the link clock's rate from there. The arm,
//! and so the start of the motion, always happen at device tick [`ARM_TICK`], however long the
//! host took to configure and arm; everything after depends on the scenario and seed only.
//!
//! [`HeldClock`] is the rule for a single-threaded loop stepping in link ticks;
//! [`DeviceClock`] applies it to a [`WallClock`] and is shared between threads (the socket
//! server and the line loop of an external firmware run).

use crate::socket::{TickSource, WallClock};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Device tick at which the clock waits for the arm: 10 ms at 100 MHz. Non-zero so that the
/// firmware's start-up reset and the detector counters have a past before the scan.
pub const ARM_TICK: u64 = 1_000_000;

/// Marks "not released yet" in [`DeviceClock`].
const HELD: u64 = u64::MAX;

/// The hold rule over link ticks: device tick = `t0` until released at link tick `r`, then
/// `t0 + (link − r)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldClock {
    t0: u64,
    released_at: Option<u64>,
}

impl HeldClock {
    /// Held at `t0`.
    pub fn new(t0: u64) -> Self {
        Self {
            t0,
            released_at: None,
        }
    }

    /// The tick the clock is held at.
    pub fn hold_tick(&self) -> u64 {
        self.t0
    }

    /// Device tick at link tick `link`.
    pub fn device_tick(&self, link: u64) -> u64 {
        match self.released_at {
            None => self.t0,
            Some(r) => self.t0 + link.saturating_sub(r),
        }
    }

    /// Lets the clock run from link tick `link` on (only the first call counts).
    pub fn release(&mut self, link: u64) {
        self.released_at.get_or_insert(link);
    }

    /// Link tick of the release, if released.
    pub fn released_at(&self) -> Option<u64> {
        self.released_at
    }
}

/// The hold rule over a [`WallClock`], shared between threads: clones see the same release.
/// The clock may also jump forward at the release ([`DeviceClock::release_at`]).
#[derive(Debug, Clone)]
pub struct DeviceClock {
    wall: WallClock,
    t0: u64,
    /// Device tick at the release (`t0` unless released at a later tick).
    start: Arc<AtomicU64>,
    /// Wall tick of the release, or [`HELD`].
    released_at: Arc<AtomicU64>,
}

impl DeviceClock {
    /// Held at `t0` on `wall`'s time base (so `--speed` applies once released).
    pub fn new(wall: WallClock, t0: u64) -> Self {
        Self {
            wall,
            t0,
            start: Arc::new(AtomicU64::new(t0)),
            released_at: Arc::new(AtomicU64::new(HELD)),
        }
    }

    /// The tick the clock is held at.
    pub fn hold_tick(&self) -> u64 {
        self.t0
    }

    /// Device tick now.
    pub fn ticks(&self) -> u64 {
        match self.released_at.load(Ordering::Acquire) {
            HELD => self.t0,
            r => self.start.load(Ordering::Acquire) + self.wall.ticks().saturating_sub(r),
        }
    }

    /// Lets the clock run from now on; later calls change nothing. Returns the wall tick of
    /// the release.
    ///
    /// To start the motion exactly at the hold tick, call this while holding the FPGA model's
    /// lock, after `start_motion`: readers lock the model before reading the clock, so none
    /// can advance the model past the hold tick first.
    pub fn release(&self) -> u64 {
        self.release_at(self.t0)
    }

    /// As [`DeviceClock::release`], the clock jumping to device tick `start` (≥ the hold
    /// tick) first: nothing happened while it was held, so where it resumes is a choice.
    pub fn release_at(&self, start: u64) -> u64 {
        if self.released_at.load(Ordering::Acquire) == HELD {
            self.start.store(start.max(self.t0), Ordering::Release);
        }
        let now = self.wall.ticks().min(HELD - 1);
        match self
            .released_at
            .compare_exchange(HELD, now, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => now,
            Err(earlier) => earlier,
        }
    }

    /// True once released.
    pub fn released(&self) -> bool {
        self.released_at.load(Ordering::Acquire) != HELD
    }
}

impl TickSource for DeviceClock {
    fn ticks(&self) -> u64 {
        DeviceClock::ticks(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_clock_waits_then_follows_the_link() {
        let mut c = HeldClock::new(ARM_TICK);
        assert_eq!(c.device_tick(0), ARM_TICK);
        assert_eq!(c.device_tick(5_000_000), ARM_TICK);
        c.release(5_000_000);
        c.release(9_000_000);
        assert_eq!(c.released_at(), Some(5_000_000));
        assert_eq!(c.device_tick(5_000_000), ARM_TICK);
        assert_eq!(c.device_tick(5_000_123), ARM_TICK + 123);
    }

    #[test]
    fn device_clock_is_held_until_released_and_shared_by_clones() {
        let c = DeviceClock::new(WallClock::new(100_000_000, 1.0), 42);
        let other = c.clone();
        assert_eq!(c.ticks(), 42);
        assert!(!other.released());
        let r = other.release();
        assert!(c.released());
        assert_eq!(c.release(), r, "the first release stands");
        assert!(c.ticks() >= 42);
    }

    #[test]
    fn device_clock_can_resume_later_than_it_was_held() {
        let c = DeviceClock::new(WallClock::new(100_000_000, 1.0), 42);
        let other = c.clone();
        other.release_at(5_000);
        assert!(c.ticks() >= 5_000, "clones see the jump");
        c.release_at(9_000_000);
        assert!(c.ticks() < 9_000_000, "the first release stands");
    }
}
