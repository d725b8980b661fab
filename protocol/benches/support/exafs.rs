//! Realistic point streams for benchmarks: an EXAFS-like fly scan at steady velocity, shared by
//! `benches/decode.rs` and the examples (included with `#[path]`).
//!
//! Position steps a fixed distance ±1 count per point, timestamps from a 100 MHz clock with
//! ±20 ticks of uniform jitter, live time 40 ticks short of the interval, and Poisson counts
//! whose means follow a slow EXAFS-like modulation. Two profiles of the same beam and sample:
//! [`SLOW`], 1 ms per point (hundreds to thousands of counts), and [`FAST`], 70 µs per point
//! (the rate a 921 600 Bd line carries in the Rice encoding; a few to a few tens of counts, like
//! the simulator's detectors at that rate). Seeded, so every run sees the same data.
//!
//! [`Stream::entropy_bits`] is the information the generator put in: for every point, the
//! entropy of its position step (log2 3), of its timing jitter (log2 41) and of each Poisson
//! count at its mean; the live time adds none. No coder that does not know the means can do
//! better on average.

use flyscan_protocol::point::Counts;
use flyscan_protocol::{BatchWriter, Encoding, Message, Point, PointBatch, PointFlags};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Poisson};

/// One point rate and count level.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    /// Short name for tables.
    pub name: &'static str,
    /// Point interval, 100 MHz ticks.
    pub interval: u64,
    /// Position step per point, counts (±1 of noise on top).
    pub step: i64,
    /// Mean counts per point of channel 0 (an I0-like monitor).
    pub i0: f64,
    /// Mean counts per point of channel c ≥ 1 are `signal × (200 + 150 c) / 1250`.
    pub signal: f64,
}

/// 1 ms per point: I0 4 000 counts, other channels 350–1 250 (more beyond channel 7).
pub const SLOW: Profile = Profile {
    name: "1 ms/point",
    interval: 100_000,
    step: 100,
    i0: 4000.0,
    signal: 1250.0,
};

/// 70 µs per point, the same rates: I0 28 counts, other channels 2.5–8.8.
pub const FAST: Profile = Profile {
    name: "70 µs/point",
    interval: 7_000,
    step: 7,
    i0: 28.0,
    signal: 8.75,
};

/// Timing jitter, ± ticks (uniform).
const JITTER: i64 = 20;

/// Points and the information they carry.
pub struct Stream {
    /// The points.
    pub points: Vec<Point>,
    /// Sum over all points of the entropy of their random parts, bits.
    pub entropy_bits: f64,
}

/// Entropy of a Poisson distribution of mean `m`, bits: summed exactly for small means, by
/// its asymptotic series (error < 0.001 bit) beyond.
pub fn poisson_entropy(m: f64) -> f64 {
    if m <= 0.0 {
        return 0.0;
    }
    if m > 60.0 {
        let e = core::f64::consts::E;
        return 0.5 * (2.0 * core::f64::consts::PI * e * m).log2()
            - 1.0 / (12.0 * m * core::f64::consts::LN_2)
            - 1.0 / (24.0 * m * m * core::f64::consts::LN_2);
    }
    let mut p = (-m).exp();
    let mut h = 0.0;
    let kmax = (m + 20.0 * m.sqrt() + 30.0) as u32;
    for k in 0..=kmax {
        if p > 0.0 {
            h -= p * p.log2();
        }
        p *= m / f64::from(k + 1);
    }
    h
}

/// `n` points of `channels` channels in `profile`.
pub fn generate(profile: &Profile, n: usize, channels: usize, seed: u64) -> Stream {
    let mut rng = SmallRng::seed_from_u64(seed);
    let means: Vec<f64> = (0..channels)
        .map(|c| {
            if c == 0 {
                profile.i0
            } else {
                profile.signal * (200.0 + 150.0 * c as f64) / 1250.0
            }
        })
        .collect();
    let mut position: i64 = -250_000;
    let mut timestamp: u64 = 12_345_678_901;
    let mut out = Vec::with_capacity(n);
    let timing_bits = 3f64.log2() + ((2 * JITTER + 1) as f64).log2();
    let mut entropy_bits = 0.0;
    for i in 0..n {
        // EXAFS: slowly varying absorption modulates the rates.
        let wiggle = 1.0 + 0.2 * (i as f64 / 40.0).sin();
        position += profile.step + rng.random_range(-1..=1);
        let interval = (profile.interval as i64 + rng.random_range(-JITTER..=JITTER)) as u64;
        timestamp += interval;
        entropy_bits += timing_bits;
        let counts: Vec<u32> = means
            .iter()
            .map(|&m| {
                let mean = m * wiggle;
                entropy_bits += poisson_entropy(mean);
                Poisson::new(mean).map_or(0, |d| d.sample(&mut rng) as u32)
            })
            .collect();
        out.push(Point {
            position,
            timestamp,
            live_time: (interval - 40) as u32,
            flags: PointFlags(0),
            counts: Counts::from_slice(&counts).unwrap_or_default(),
        });
    }
    Stream {
        points: out,
        entropy_bits,
    }
}

/// `n` points of `channels` channels in the [`SLOW`] profile.
pub fn points(n: usize, channels: usize, seed: u64) -> Vec<Point> {
    generate(&SLOW, n, channels, seed).points
}

/// Encodes `points` into back-to-back wire frames, each batch as full as a frame allows.
/// Returns the stream and the number of frames.
pub fn stream(points: &[Point], encoding: Encoding, mask: u32) -> (Vec<u8>, usize) {
    let mut wire = Vec::new();
    let mut frame = [0u8; flyscan_protocol::limits::MAX_ENCODED_FRAME];
    let mut w = BatchWriter::new(encoding, mask, 0);
    let mut first = 0u32;
    let mut seq = 0u32;
    let mut emit = |w: &BatchWriter, first: u32, seq: &mut u32, wire: &mut Vec<u8>| {
        let msg = Message::PointBatch(PointBatch::from_writer(1, first, w));
        let n = msg.encode_frame(*seq, &mut frame).unwrap_or(0);
        wire.extend_from_slice(&frame[..n]);
        *seq += 1;
    };
    for (i, p) in points.iter().enumerate() {
        if w.push(p).is_err() {
            emit(&w, first, &mut seq, &mut wire);
            w.clear();
            first = i as u32;
            // A point always fits an empty batch.
            let _ = w.push(p);
        }
    }
    if !w.is_empty() {
        emit(&w, first, &mut seq, &mut wire);
    }
    (wire, seq as usize)
}

/// The channel mask of the first `channels` channels.
pub fn mask(channels: usize) -> u32 {
    if channels >= 32 {
        u32::MAX
    } else {
        (1u32 << channels) - 1
    }
}
