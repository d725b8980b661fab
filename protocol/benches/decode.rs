//! Host decode throughput: deframe + CRC + parse + iterate every point, on a realistic
//! 8-channel stream in both encodings. Reported in bytes of wire data per second.
//!
//! Run: `cargo bench -p flyscan-protocol --bench decode`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flyscan_protocol::{Deframer, Encoding, Message};
use std::hint::black_box;

#[path = "support/exafs.rs"]
mod exafs;

/// Decodes the whole stream the way the host does; returns a checksum so nothing is optimised
/// away, and the number of points.
fn decode(d: &mut Deframer, wire: &[u8]) -> (u64, usize) {
    let mut sum = 0u64;
    let mut n = 0usize;
    let mut input = wire;
    loop {
        match d.feed(input) {
            flyscan_protocol::Feed::Consumed => break,
            flyscan_protocol::Feed::Frame { frame, remaining } => {
                if let Ok(Message::PointBatch(b)) = frame.message() {
                    for p in b.points().flatten() {
                        sum = sum
                            .wrapping_add(p.position as u64)
                            .wrapping_add(p.timestamp)
                            .wrapping_add(u64::from(p.counts[0]));
                        n += 1;
                    }
                }
                input = remaining;
            }
            flyscan_protocol::Feed::Error { remaining, .. } => input = remaining,
        }
    }
    (sum, n)
}

fn bench(c: &mut Criterion) {
    const POINTS: usize = 20_000;
    let points = exafs::points(POINTS, 8, 1);
    let mut group = c.benchmark_group("host_decode_8ch");
    for (name, enc) in [("raw", Encoding::Raw), ("compact", Encoding::Compact)] {
        let (wire, _) = exafs::stream(&points, enc, 0xff);
        // The bench is meaningless if the stream does not decode completely.
        let mut d = Deframer::new();
        assert_eq!(decode(&mut d, &wire).1, POINTS);
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_function(name, |b| {
            let mut d = Deframer::new();
            b.iter(|| black_box(decode(&mut d, black_box(&wire))))
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

criterion_group!(benches, bench);
criterion_main!(benches);
