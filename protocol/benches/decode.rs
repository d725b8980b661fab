//! Host decode throughput: deframe + CRC + parse + decode every point, on a realistic 8-channel
//! stream in every encoding, at 1 ms/point (`slow`: hundreds to thousands of counts) and at
//! 70 µs/point (`fast`: a few to a few tens). Reported in bytes of wire data per second and in
//! points per second.
//!
//! `raw`, `compact` and `rice` use the path a host should use, [`PointBatch::decode_with`] (no
//! `Point` built per point); `*_iter` the owned-`Point` iterator, `*_deframe_only` stops after
//! the CRC. Before criterion's runs, each variant's fastest and median of 500 runs are printed
//! (`best of 500:`).
//!
//! Run: `cargo bench -p flyscan-protocol --bench decode`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flyscan_protocol::{Deframer, Encoding, Feed, Message, PointBatch};
use std::hint::black_box;
use std::time::Instant;

#[allow(dead_code)] // each user takes a part of the shared data generator
#[path = "support/exafs.rs"]
mod exafs;

/// Deframes the whole stream and hands every point batch to `on_batch`.
fn each_batch(d: &mut Deframer, wire: &[u8], mut on_batch: impl FnMut(&PointBatch<'_>)) {
    let mut input = wire;
    loop {
        match d.feed(input) {
            Feed::Consumed => break,
            Feed::Frame { frame, remaining } => {
                if let Ok(Message::PointBatch(b)) = frame.message() {
                    on_batch(&b);
                }
                input = remaining;
            }
            Feed::Error { remaining, .. } => input = remaining,
        }
    }
}

/// The host's path: a view of each point, nothing copied but what is used. Returns a checksum
/// so nothing is optimised away, and the number of points.
fn decode_views(d: &mut Deframer, wire: &[u8]) -> (u64, usize) {
    let (mut sum, mut n) = (0u64, 0usize);
    each_batch(d, wire, |b| {
        let r = b.decode_with(|p| {
            sum = sum
                .wrapping_add(p.position as u64)
                .wrapping_add(p.timestamp)
                .wrapping_add(u64::from(p.live_time))
                .wrapping_add(p.counts.iter().map(|&c| u64::from(c)).sum::<u64>());
        });
        n += r.unwrap_or(0);
    });
    (sum, n)
}

/// The same through the owned-`Point` iterator.
fn decode_iter(d: &mut Deframer, wire: &[u8]) -> (u64, usize) {
    let (mut sum, mut n) = (0u64, 0usize);
    each_batch(d, wire, |b| {
        for p in b.points().flatten() {
            sum = sum
                .wrapping_add(p.position as u64)
                .wrapping_add(p.timestamp)
                .wrapping_add(u64::from(p.live_time))
                .wrapping_add(p.counts.iter().map(|&c| u64::from(c)).sum::<u64>());
            n += 1;
        }
    });
    (sum, n)
}

/// Fastest and median of `reps` runs, printed as wire MB/s (10^6 bytes) and M points/s: on a
/// machine shared with other work the fastest run is the one least disturbed, where criterion's
/// mean is not. `points` is what one run decodes.
fn best_of(
    name: &str,
    wire: &[u8],
    points: usize,
    reps: usize,
    f: impl Fn(&mut Deframer, &[u8]) -> (u64, usize),
) {
    let mut d = Deframer::new();
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            black_box(f(&mut d, black_box(wire)));
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let (best, median) = (times[0], times[reps / 2]);
    println!(
        "best of {reps}: {name:<30} {:8.1} µs (median {:8.1})  {:6.0} MB/s  {:6.1} M points/s (median {:6.1})",
        best * 1e6,
        median * 1e6,
        wire.len() as f64 / best / 1e6,
        points as f64 / best / 1e6,
        points as f64 / median / 1e6,
    );
}

fn bench(c: &mut Criterion) {
    const POINTS: usize = 20_000;
    for profile in [exafs::SLOW, exafs::FAST] {
        let points = exafs::generate(&profile, POINTS, 8, 1).points;
        let tag = if profile.interval == exafs::SLOW.interval {
            "slow"
        } else {
            "fast"
        };
        let mut group = c.benchmark_group(format!("host_decode_8ch_{tag}"));
        for enc in Encoding::ALL {
            let name = format!("{}_{tag}", format!("{enc:?}").to_lowercase());
            let (wire, _) = exafs::stream(&points, enc, 0xff);
            // The bench is meaningless if the stream does not decode completely, or if the two
            // paths disagree.
            let views = decode_views(&mut Deframer::new(), &wire);
            assert_eq!(views.1, POINTS);
            assert_eq!(views, decode_iter(&mut Deframer::new(), &wire));
            best_of(&name, &wire, POINTS, 500, decode_views);
            best_of(&format!("{name}_iter"), &wire, POINTS, 500, decode_iter);
            best_of(
                &format!("{name}_deframe_only"),
                &wire,
                POINTS,
                500,
                |d, w| {
                    let mut n = 0usize;
                    d.feed_all(w, |f| n += f.payload().len(), |_| {});
                    (0, n)
                },
            );
            group.throughput(Throughput::Bytes(wire.len() as u64));
            group.bench_function(&name, |b| {
                let mut d = Deframer::new();
                b.iter(|| black_box(decode_views(&mut d, black_box(&wire))))
            });
            group.bench_function(format!("{name}_iter"), |b| {
                let mut d = Deframer::new();
                b.iter(|| black_box(decode_iter(&mut d, black_box(&wire))))
            });
            // The same stream without parsing, to show where the time goes.
            group.bench_function(format!("{name}_deframe_only"), |b| {
                let mut d = Deframer::new();
                b.iter(|| {
                    let mut n = 0usize;
                    d.feed_all(black_box(&wire), |f| n += f.payload().len(), |_| {});
                    black_box(n)
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
