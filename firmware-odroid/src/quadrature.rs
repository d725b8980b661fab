//! x4 quadrature decoding of edge events.
//!
//! A/B levels form a 2-bit Gray code. With bit 0 = A and bit 1 = B, the *phase* sequence
//! `00 → 01 → 11 → 10 → 00` (A leads B) counts up; the reverse counts down. Every edge event
//! carries the new levels, so each event moves the position by one count — except:
//!
//! * **illegal transition** (both lines changed, a skipped state): the direction is unknown;
//!   the decoder assumes the motor kept its last direction and moves two counts, and counts the
//!   error ([`Decoder::illegal`]);
//! * **no change** (same levels as before, possible around lost events): no move;
//! * **lost events** (a gap in the edge sequence numbers, or the overrun flag): the decoder moves
//!   by the displacement closest to `lost + 1` counts in the last direction that agrees with the
//!   observed phase change ([`Decoder::resync`]).
//!
//! The decoder never panics; all arithmetic wraps.

/// Phase (0–3) of each A/B state, indexed by `ab`.
const PHASE: [u8; 4] = [0, 1, 3, 2];

/// Displacement of one transition, indexed by `prev_ab << 2 | new_ab`: 0 for no change,
/// ±1 for a legal step, [`ILLEGAL`] when both lines changed.
const ILLEGAL: i8 = 2;
const STEP: [i8; 16] = {
    let mut t = [0i8; 16];
    let mut prev = 0;
    while prev < 4 {
        let mut new = 0;
        while new < 4 {
            let d = (PHASE[new] + 4 - PHASE[prev]) % 4;
            t[prev << 2 | new] = match d {
                0 => 0,
                1 => 1,
                3 => -1,
                _ => ILLEGAL,
            };
            new += 1;
        }
        prev += 1;
    }
    t
};

/// Direction of the last move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// No move yet.
    #[default]
    Unknown,
    /// Towards +∞.
    Positive,
    /// Towards −∞.
    Negative,
}

impl Direction {
    fn sign(self) -> i64 {
        match self {
            Self::Negative => -1,
            _ => 1,
        }
    }
}

/// The decoder state.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    ab: u8,
    position: i64,
    direction: Direction,
    illegal: u64,
}

impl Decoder {
    /// Starts at `position` with the current A/B levels.
    pub fn new(ab: u8, position: i64) -> Self {
        Self {
            ab: ab & 3,
            position,
            direction: Direction::Unknown,
            illegal: 0,
        }
    }

    /// Applies one edge event's new levels; returns the displacement (−2..=2).
    #[inline]
    pub fn step(&mut self, ab: u8) -> i64 {
        let ab = ab & 3;
        let idx = usize::from(self.ab << 2 | ab);
        self.ab = ab;
        let mut d = i64::from(STEP[idx]);
        if d == i64::from(ILLEGAL) {
            self.illegal += 1;
            d = 2 * self.direction.sign();
        } else if d > 0 {
            self.direction = Direction::Positive;
        } else if d < 0 {
            self.direction = Direction::Negative;
        }
        self.position = self.position.wrapping_add(d);
        d
    }

    /// Applies new levels after `lost` events went missing: moves by the displacement with the
    /// observed phase change closest to `lost + 1` counts in the last direction. Returns it.
    pub fn resync(&mut self, ab: u8, lost: u32) -> i64 {
        let ab = ab & 3;
        let phase = i64::from((PHASE[usize::from(ab)] + 4 - PHASE[usize::from(self.ab)]) % 4);
        self.ab = ab;
        let sign = self.direction.sign();
        let guess = sign * (i64::from(lost) + 1);
        // Candidates congruent to `phase` mod 4 around the guess; pick the nearest.
        let base = guess - (guess - phase).rem_euclid(4);
        let d = if guess - base <= 2 { base } else { base + 4 };
        if d > 0 {
            self.direction = Direction::Positive;
        } else if d < 0 {
            self.direction = Direction::Negative;
        }
        self.position = self.position.wrapping_add(d);
        d
    }

    /// Current position, counts.
    pub fn position(&self) -> i64 {
        self.position
    }

    /// Direction of the last move.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Illegal transitions seen.
    pub fn illegal(&self) -> u64 {
        self.illegal
    }

    /// Current A/B levels.
    pub fn ab(&self) -> u8 {
        self.ab
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Forward Gray sequence with bit 0 = A, bit 1 = B.
    const FWD: [u8; 4] = [0b00, 0b01, 0b11, 0b10];

    #[test]
    fn all_sixteen_transitions() {
        for prev in 0..4u8 {
            for new in 0..4u8 {
                let mut d = Decoder::new(prev, 100);
                let moved = d.step(new);
                let pi = FWD.iter().position(|&x| x == prev).unwrap();
                let expected: i64 = if new == prev {
                    0
                } else if new == FWD[(pi + 1) % 4] {
                    1
                } else if new == FWD[(pi + 3) % 4] {
                    -1
                } else {
                    // Illegal from rest: direction unknown → assumed positive, 2 counts.
                    2
                };
                assert_eq!(moved, expected, "{prev:02b} → {new:02b}");
                assert_eq!(d.position(), 100 + expected);
                assert_eq!(
                    d.illegal(),
                    u64::from(expected == 2),
                    "{prev:02b} → {new:02b}"
                );
            }
        }
    }

    #[test]
    fn full_cycles_count_four_per_cycle_both_ways() {
        let mut d = Decoder::new(0, 0);
        for i in 1..=40 {
            d.step(FWD[i % 4]);
        }
        assert_eq!(d.position(), 40);
        assert_eq!(d.direction(), Direction::Positive);
        for i in (0..40).rev() {
            d.step(FWD[i % 4]);
        }
        assert_eq!(d.position(), 0);
        assert_eq!(d.direction(), Direction::Negative);
        assert_eq!(d.illegal(), 0);
    }

    #[test]
    fn illegal_transition_keeps_direction_and_is_counted() {
        let mut d = Decoder::new(FWD[0], 0);
        d.step(FWD[3]); // −1
        assert_eq!(d.step(FWD[1]), -2); // skipped FWD[2]; moving negative
        assert_eq!(d.position(), -3);
        assert_eq!(d.illegal(), 1);
        assert_eq!(d.direction(), Direction::Negative);
    }

    #[test]
    fn resync_after_lost_events_matches_phase() {
        for lost in 0..20u32 {
            for sign in [1i64, -1] {
                let mut d = Decoder::new(0, 0);
                // Establish the direction with one step.
                let first = if sign > 0 { FWD[1] } else { FWD[3] };
                d.step(first);
                let true_moves = i64::from(lost) + 1;
                let target = sign + sign * true_moves;
                let ab = FWD[target.rem_euclid(4) as usize];
                d.resync(ab, lost);
                assert_eq!(d.position(), target, "lost {lost} sign {sign}");
            }
        }
    }

    #[test]
    fn garbage_levels_never_panic() {
        let mut d = Decoder::new(0xFF, i64::MAX);
        for b in 0..=255u8 {
            d.step(b);
            d.resync(b, u32::MAX);
        }
        assert!(d.ab() < 4);
    }
}
