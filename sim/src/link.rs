//! Serial line model, one instance per direction: UART pacing (8N1: 10 bit times per byte, so
//! baud/10 bytes/s), independent bit errors on the 8 data bits, and lost bytes. Time is in
//! clock ticks of the caller's time base; all randomness comes from the scenario seed.

use rand::Rng;
use rand::rngs::SmallRng;
use std::collections::VecDeque;

/// Bytes the transmitter accepts ahead of the line (a UART FIFO), so a sender can keep the
/// line busy without queueing unboundedly.
pub const TX_FIFO: usize = 64;

/// Counters of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Bytes sent into the line.
    pub bytes_sent: u64,
    /// Bytes delivered (corrupted ones included).
    pub bytes_delivered: u64,
    /// Bytes with at least one flipped bit.
    pub bytes_corrupted: u64,
    /// Bytes lost.
    pub bytes_dropped: u64,
}

/// One direction of the line.
#[derive(Debug)]
pub struct Link {
    byte_ticks: f64,
    ber: f64,
    drop_rate: f64,
    rng: SmallRng,
    /// Time the line finishes the last queued byte, ticks.
    line_free: f64,
    /// (tick at which the stop bit ends, byte or None if lost).
    queue: VecDeque<(f64, Option<u8>)>,
    stats: LinkStats,
}

impl Link {
    /// A line of `baud` in a time base of `ticks_per_s`, with the given error rates.
    pub fn new(baud: u32, ticks_per_s: f64, ber: f64, drop_rate: f64, rng: SmallRng) -> Self {
        Self {
            byte_ticks: f64::from(flyscan_protocol::limits::LINE_BITS_PER_BYTE) * ticks_per_s
                / f64::from(baud.max(1)),
            ber,
            drop_rate,
            rng,
            line_free: 0.0,
            queue: VecDeque::new(),
            stats: LinkStats::default(),
        }
    }

    /// Bytes the transmitter can take at `now` without holding more than [`TX_FIFO`] bytes
    /// ahead of the line.
    pub fn room(&self, now: u64) -> usize {
        let ahead = ((self.line_free - now as f64) / self.byte_ticks).ceil();
        if ahead <= 0.0 {
            TX_FIFO
        } else {
            TX_FIFO.saturating_sub(ahead as usize)
        }
    }

    /// Queues `bytes` at `now`: each occupies the line for 10 bit times after the previous one.
    pub fn send(&mut self, now: u64, bytes: &[u8]) {
        for &b in bytes {
            let start = self.line_free.max(now as f64);
            self.line_free = start + self.byte_ticks;
            self.stats.bytes_sent += 1;
            let out = if self.drop_rate > 0.0 && self.rng.random::<f64>() < self.drop_rate {
                self.stats.bytes_dropped += 1;
                None
            } else {
                let mut v = b;
                if self.ber > 0.0 {
                    for bit in 0..8 {
                        if self.rng.random::<f64>() < self.ber {
                            v ^= 1 << bit;
                        }
                    }
                    if v != b {
                        self.stats.bytes_corrupted += 1;
                    }
                }
                Some(v)
            };
            self.queue.push_back((self.line_free, out));
        }
    }

    /// Appends to `out` every byte whose stop bit has ended by `now`.
    pub fn deliver(&mut self, now: u64, out: &mut Vec<u8>) {
        while let Some(&(t, b)) = self.queue.front() {
            if t > now as f64 {
                break;
            }
            self.queue.pop_front();
            if let Some(b) = b {
                out.push(b);
                self.stats.bytes_delivered += 1;
            }
        }
    }

    /// True when nothing is in flight.
    pub fn idle(&self) -> bool {
        self.queue.is_empty()
    }

    /// Counters.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Bytes per second this line carries at most.
    pub fn bytes_per_second(&self, ticks_per_s: f64) -> f64 {
        ticks_per_s / self.byte_ticks
    }
}
