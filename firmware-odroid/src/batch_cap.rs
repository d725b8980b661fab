//! Adaptive size limit of point batches, so a noisy serial line still carries every point.
//!
//! A resend is the byte-identical frame (PROTOCOL.md), so a frame too long to cross the line
//! intact never gets through, however often it is resent: at a bit-error rate of 1e-3 a full
//! 2 KiB batch (~16 000 data bits) arrives intact with probability ≈ e⁻¹⁶. The only cure is to
//! make *new* frames short once the line is seen to be bad, before they are sent.
//!
//! [`BatchCap`] is the byte limit of a batch's point data, adapted like a congestion window:
//!
//! * every loss signal (a `ResendRequest` from the host, a damaged frame from the host) halves
//!   it, down to [`CAP_FLOOR`] bytes (a frame of ~100 bytes on the wire: about half of them
//!   cross a 1e-3 line intact, which is close to the most payload per line byte at that rate);
//! * each [`QUIET_US`] of device time without a loss signal adds [`CAP_STEP`] bytes, up to the
//!   full batch ([`CAP_MAX`]), so a line that recovers returns to large, efficient frames in
//!   about 1.5 s.
//!
//! On a clean line the cap stays at [`CAP_MAX`] and batching is exactly as without it.

use flyscan_protocol::point::MAX_BATCH_DATA;

/// Largest cap: a batch filling a whole frame.
pub const CAP_MAX: usize = MAX_BATCH_DATA;
/// Smallest cap, bytes of point data (a batch always takes at least one point).
pub const CAP_FLOOR: usize = 64;
/// Growth per quiet period, bytes.
pub const CAP_STEP: usize = 64;
/// Device time without loss signals after which the cap grows by [`CAP_STEP`], µs.
pub const QUIET_US: u64 = 50_000;

/// The adaptive batch size limit (see the module doc). Time is in device ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchCap {
    bytes: usize,
    quiet_since: u64,
    shrinks: u64,
}

impl Default for BatchCap {
    fn default() -> Self {
        Self {
            bytes: CAP_MAX,
            quiet_since: 0,
            shrinks: 0,
        }
    }
}

impl BatchCap {
    /// The current limit of a batch's point data, bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Loss signals seen so far.
    pub fn shrinks(&self) -> u64 {
        self.shrinks
    }

    /// A loss signal at device time `now`: halves the cap (not below [`CAP_FLOOR`]) and restarts
    /// the quiet period.
    pub fn on_loss(&mut self, now: u64) {
        self.bytes = (self.bytes / 2).max(CAP_FLOOR);
        self.quiet_since = now;
        self.shrinks += 1;
    }

    /// Grows the cap by [`CAP_STEP`] when `quiet_ticks` have passed since the last loss signal or
    /// growth step.
    pub fn tick(&mut self, now: u64, quiet_ticks: u64) {
        if self.bytes < CAP_MAX && now.wrapping_sub(self.quiet_since) >= quiet_ticks {
            self.bytes = (self.bytes + CAP_STEP).min(CAP_MAX);
            self.quiet_since = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_to_the_floor_then_grows_back_additively() {
        let mut c = BatchCap::default();
        assert_eq!(c.bytes(), CAP_MAX);
        c.on_loss(10);
        assert_eq!(c.bytes(), CAP_MAX / 2);
        for t in 0..20 {
            c.on_loss(10 + t);
        }
        assert_eq!(c.bytes(), CAP_FLOOR);
        // Not quiet long enough yet.
        c.tick(29 + 99, 100);
        assert_eq!(c.bytes(), CAP_FLOOR);
        c.tick(29 + 100, 100);
        assert_eq!(c.bytes(), CAP_FLOOR + CAP_STEP);
        // One step per quiet period, however often it is ticked.
        c.tick(29 + 101, 100);
        assert_eq!(c.bytes(), CAP_FLOOR + CAP_STEP);
        let mut t = 129;
        for _ in 0..100 {
            t += 100;
            c.tick(t, 100);
        }
        assert_eq!(c.bytes(), CAP_MAX);
        assert_eq!(c.shrinks(), 21);
    }
}
