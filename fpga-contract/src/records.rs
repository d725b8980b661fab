//! The two records the FPGA sends: the 14-byte event (an edge, a period event of the period
//! timer, or both on one cycle) of a READ_EDGES response and the
//! snapshot response of READ_SNAPSHOT, with their encoders (FPGA models) and decoders (the
//! firmware's driver). Layouts are in FPGA.md §Commands.

use crate::regs::{self, EDGE_EVENT_LEN, MAX_N_CHANNELS};

/// One event as popped from the FPGA's event FIFO: an edge, a period event, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EdgeEvent {
    /// FPGA clock cycle of the event (at an edge: when the new A/B levels were sampled).
    pub timestamp: u64,
    /// Event sequence number (lost events consume numbers too).
    pub seq: u32,
    /// A/B levels at that cycle (an edge's new levels): bit 0 = A, bit 1 = B.
    pub ab: u8,
    /// [`regs::EDGE_FLAG_OVERRUN`], [`regs::EDGE_FLAG_PERIOD`],
    /// [`regs::EDGE_FLAG_PERIOD_START`].
    pub flags: u8,
}

impl EdgeEvent {
    /// Decodes one 14-byte slot.
    pub fn from_bytes(b: &[u8; EDGE_EVENT_LEN]) -> Self {
        Self {
            timestamp: u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            seq: u32::from_le_bytes([b[8], b[9], b[10], b[11]]),
            ab: b[12] & regs::AB_MASK,
            flags: b[13],
        }
    }

    /// Encodes the 14-byte slot (used by FPGA models).
    pub fn to_bytes(&self) -> [u8; EDGE_EVENT_LEN] {
        let mut b = [0u8; EDGE_EVENT_LEN];
        b[0..8].copy_from_slice(&self.timestamp.to_le_bytes());
        b[8..12].copy_from_slice(&self.seq.to_le_bytes());
        b[12] = self.ab;
        b[13] = self.flags;
        b
    }

    /// True when events were lost just before this one.
    pub fn overrun(&self) -> bool {
        self.flags & regs::EDGE_FLAG_OVERRUN != 0
    }

    /// True when a period event of the period timer falls on this event's cycle (its start
    /// included).
    pub fn period(&self) -> bool {
        self.flags & regs::EDGE_FLAG_PERIOD != 0
    }

    /// True for the period timer's start event (period 0: the arm tick).
    pub fn period_start(&self) -> bool {
        self.flags & (regs::EDGE_FLAG_PERIOD | regs::EDGE_FLAG_PERIOD_START)
            == regs::EDGE_FLAG_PERIOD | regs::EDGE_FLAG_PERIOD_START
    }
}

/// Counter values the FPGA copied at the clock cycle of one edge.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// False when the slot held another edge (overwritten) or was never written.
    pub valid: bool,
    /// Edge sequence number stored in the slot.
    pub seq: u32,
    /// Live-time counter (wraps at 2^COUNTER_BITS).
    pub live: u32,
    /// Detector counters, one per hardware channel (wrap at 2^COUNTER_BITS).
    pub counts: heapless::Vec<u32, MAX_N_CHANNELS>,
}

impl Snapshot {
    /// Decodes a READ_SNAPSHOT response for edge `requested` with `n_channels` channels
    /// (clamped to `1..=MAX_N_CHANNELS`) into `self`. `valid` is true only when the FPGA said so
    /// *and* the slot's seq is the one asked for, so a confused FPGA cannot pass off another
    /// edge's counts. Bytes missing from a short `resp` read as 0.
    pub fn decode_into(&mut self, resp: &[u8], n_channels: usize, requested: u32) {
        let n = n_channels.clamp(1, MAX_N_CHANNELS);
        let len = regs::snapshot_len(n);
        // A short response is padded with zeros once, so the decode below reads whole,
        // fixed-size fields with no per-byte bounds checks (it runs for every point).
        let mut padded = [0u8; regs::snapshot_len(MAX_N_CHANNELS)];
        let resp = match resp.get(..len) {
            Some(whole) => whole,
            None => {
                padded[..resp.len()].copy_from_slice(resp);
                &padded[..len]
            }
        };
        let (head, counts) = resp.split_at(9);
        let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        self.seq = word(&head[1..5]);
        self.valid = head[0] == 1 && self.seq == requested;
        self.live = word(&head[5..9]);
        self.counts.clear();
        for c in counts.chunks_exact(4) {
            // Cannot fail: `counts` holds n <= MAX_N_CHANNELS words.
            let _ = self.counts.push(word(c));
        }
    }

    /// Encodes a READ_SNAPSHOT response: `valid u8 | seq u32 | live u32 | counts u32 × n` into
    /// `out`, which must hold [`regs::snapshot_len`]`(counts.len())` bytes; returns the length.
    /// Bytes of `out` past the response are left alone.
    pub fn encode(valid: bool, seq: u32, live: u32, counts: &[u32], out: &mut [u8]) -> usize {
        let len = regs::snapshot_len(counts.len());
        out[0] = u8::from(valid);
        out[1..5].copy_from_slice(&seq.to_le_bytes());
        out[5..9].copy_from_slice(&live.to_le_bytes());
        for (ch, c) in counts.iter().enumerate() {
            out[9 + 4 * ch..13 + 4 * ch].copy_from_slice(&c.to_le_bytes());
        }
        len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_event_round_trips_and_masks_ab() {
        let e = EdgeEvent {
            timestamp: 0x0102_0304_0506_0708,
            seq: 0xA0B0_C0D0,
            ab: 2,
            flags: regs::EDGE_FLAG_OVERRUN,
        };
        let b = e.to_bytes();
        assert_eq!(
            b,
            [8, 7, 6, 5, 4, 3, 2, 1, 0xD0, 0xC0, 0xB0, 0xA0, 2, 1],
            "little-endian fields in FPGA.md order"
        );
        assert_eq!(EdgeEvent::from_bytes(&b), e);
        assert!(e.overrun());
        assert!(!e.period() && !e.period_start());
        let mut junk = b;
        junk[12] = 0xFE;
        assert_eq!(
            EdgeEvent::from_bytes(&junk).ab,
            2,
            "bits above A/B are ignored"
        );
    }

    #[test]
    fn period_flags_are_told_apart() {
        let ev = |flags| EdgeEvent {
            flags,
            ..EdgeEvent::default()
        };
        let start = ev(regs::EDGE_FLAG_PERIOD | regs::EDGE_FLAG_PERIOD_START);
        assert!(start.period() && start.period_start());
        let tick = ev(regs::EDGE_FLAG_PERIOD | regs::EDGE_FLAG_OVERRUN);
        assert!(tick.period() && !tick.period_start() && tick.overrun());
        // START without PERIOD is no period event at all.
        let stray = ev(regs::EDGE_FLAG_PERIOD_START);
        assert!(!stray.period() && !stray.period_start());
    }

    #[test]
    fn snapshot_round_trips_and_checks_the_seq() {
        let mut out = [0xEEu8; regs::snapshot_len(2) + 3];
        let n = Snapshot::encode(true, 5, 1000, &[11, 22], &mut out);
        assert_eq!(n, 17);
        assert_eq!(&out[..5], &[1, 5, 0, 0, 0]);
        assert_eq!(&out[17..], &[0xEE; 3], "nothing written past the response");
        let mut s = Snapshot::default();
        s.decode_into(&out[..n], 2, 5);
        assert!(s.valid);
        assert_eq!((s.seq, s.live, &s.counts[..]), (5, 1000, &[11, 22][..]));
        s.decode_into(&out[..n], 2, 6);
        assert!(!s.valid, "another edge's slot is not valid");
        s.decode_into(&out[..1], 2, 5);
        assert!(!s.valid, "a short response decodes as zeros");
        assert_eq!(&s.counts[..], &[0, 0]);
        s.decode_into(&out[..n - 2], 2, 5);
        assert!(
            s.valid,
            "a response cut inside the last count keeps the whole fields"
        );
        assert_eq!(
            (s.seq, s.live, &s.counts[..]),
            (5, 1000, &[11, 22][..]),
            "the cut bytes of 22 were zeros anyway"
        );
        s.decode_into(&out[..n], 0, 5);
        assert_eq!(&s.counts[..], &[11], "at least one channel");
        let wide = [1u8; regs::snapshot_len(MAX_N_CHANNELS) + 8];
        s.decode_into(&wide, MAX_N_CHANNELS + 5, 1);
        assert_eq!(
            s.counts.len(),
            MAX_N_CHANNELS,
            "at most MAX_N_CHANNELS channels"
        );
    }
}
