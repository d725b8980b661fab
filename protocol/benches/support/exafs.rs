//! A realistic point stream for benchmarks: an EXAFS-like fly scan at steady velocity, shared by
//! `benches/decode.rs` and `examples/line_budget.rs` (included with `#[path]`).
//!
//! Position steps ~100 counts per point, timestamps from a 100 MHz clock ~1 ms apart with a few
//! ticks of jitter, live time just under the interval, and counts of hundreds to thousands with
//! Poisson-like noise (normal approximation, √λ spread). Seeded, so every run sees the same data.

use flyscan_protocol::point::Counts;
use flyscan_protocol::{BatchWriter, Encoding, Message, Point, PointBatch, PointFlags};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Standard normal sample (Box–Muller).
fn normal(rng: &mut SmallRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (core::f64::consts::TAU * u2).cos()
}

/// Count with Poisson-like noise around `mean`.
fn noisy(rng: &mut SmallRng, mean: f64) -> u32 {
    (mean + mean.sqrt() * normal(rng)).round().max(0.0) as u32
}

/// `n` points of `channels` channels (timestamp-only streams use 1 channel).
pub fn points(n: usize, channels: usize, seed: u64) -> Vec<Point> {
    let mut rng = SmallRng::seed_from_u64(seed);
    // Mean rate per channel: an I0-like monitor in the thousands, others in the hundreds.
    let means: Vec<f64> = (0..channels)
        .map(|c| {
            if c == 0 {
                4000.0
            } else {
                200.0 + 150.0 * c as f64
            }
        })
        .collect();
    let mut position: i64 = -250_000;
    let mut timestamp: u64 = 12_345_678_901;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        // EXAFS: slowly varying absorption modulates the rates.
        let wiggle = 1.0 + 0.2 * (i as f64 / 40.0).sin();
        position += 100 + rng.random_range(-1..=1);
        let interval: u64 = (100_000 + rng.random_range(-20i64..=20)) as u64;
        timestamp += interval;
        let counts: Vec<u32> = means.iter().map(|&m| noisy(&mut rng, m * wiggle)).collect();
        out.push(Point {
            position,
            timestamp,
            live_time: (interval - 40) as u32,
            flags: PointFlags(0),
            counts: Counts::from_slice(&counts).unwrap_or_default(),
        });
    }
    out
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
