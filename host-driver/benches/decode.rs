//! The host's decode path alone, no I/O (prints numbers; see BENCHMARKS.md, section Host
//! driver): serial bytes → [`Assembler`] (deframe, CRC-32C once, sequence order) → the
//! `PointBatch` checked against the armed scan and decoded with the zero-copy `decode_with`
//! straight into the scan's columns ([`ActiveScan::accept_batch`]).
//!
//! Beside it, for comparison, the steps the host took before the in-place path: the frame
//! copied, its CRC checked a second time, the points decoded through the `points()` iterator
//! into a `Vec<Point>` (~160 bytes each) and then copied into columns.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;
use flyscan_protocol::Encoding;
use std::time::{Duration, Instant};
use support::{CHANNELS, POINTS, in_place, stream, via_points};

const REPEATS: usize = 30;

fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[0], v[v.len() / 2])
}

fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    println!(
        "{POINTS} points × {CHANNELS} channels, {REPEATS} repeats; ns per point (min / median) and M points/s at the min"
    );
    for enc in Encoding::ALL {
        let (bytes, frames) = stream(enc);
        let per = |d: Duration| d.as_secs_f64() * 1e9 / f64::from(POINTS);
        print!("{enc:?}: {} bytes in {frames} frames", bytes.len());
        for energies in [false, true] {
            let mut a = Vec::new();
            for _ in 0..REPEATS {
                let t = Instant::now();
                let n = in_place(&bytes, enc, energies);
                a.push(t.elapsed());
                assert_eq!(n, u64::from(POINTS));
            }
            let (amin, amed) = stats(a);
            print!(
                "; in place{} {:.1} / {:.1} ns ({:.1} M points/s)",
                if energies { " + energies" } else { "" },
                per(amin),
                per(amed),
                f64::from(POINTS) / amin.as_secs_f64() / 1e6
            );
        }
        let mut b = Vec::new();
        for _ in 0..REPEATS {
            let t = Instant::now();
            let n = via_points(&bytes);
            b.push(t.elapsed());
            assert_eq!(n, u64::from(POINTS));
        }
        let (bmin, bmed) = stats(b);
        println!(
            "; former steps {:.1} / {:.1} ns ({:.1} M points/s)",
            per(bmin),
            per(bmed),
            f64::from(POINTS) / bmin.as_secs_f64() / 1e6
        );
    }
}
