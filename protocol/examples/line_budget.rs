//! Line budget of the point stream: wire bytes per point in every encoding, framing overhead,
//! bits per point against the information in the data, and points per second on a serial
//! line, beside Diamond Zebra's ASCII point lines.
//!
//! Run: `cargo run --release -p flyscan-protocol --example line_budget`
//!
//! Data: the benches' EXAFS-like streams (`benches/support/exafs.rs`) at 1 ms/point and at
//! 70 µs/point, 100 000 points each, three seeds; every figure is the median over the seeds
//! (they differ by well under 1 %). Every stream is decoded again and checked point by point
//! before it is counted.

use flyscan_protocol::{Deframer, Encoding, Feed, Message};

#[allow(dead_code)] // each user takes a part of the shared data generator
#[path = "../benches/support/exafs.rs"]
mod exafs;

/// Serial line rates compared, in baud; 8N1 puts 10 line bits on each byte.
const BAUDS: [u32; 2] = [115_200, 921_600];
const POINTS: usize = 100_000;
const SEEDS: [u64; 3] = [7, 8, 9];

/// What one stream measured.
#[derive(Debug, Clone, Copy)]
struct Measured {
    /// Wire bytes per point (frames, COBS and delimiters included).
    wire: f64,
    /// Bits of point data per point (batch data only).
    data_bits: f64,
    /// Points per frame.
    per_frame: f64,
    /// Entropy of the generated data, bits per point.
    entropy: f64,
}

fn measure(
    profile: &exafs::Profile,
    channels: usize,
    encoding: Encoding,
    seed: u64,
) -> Result<Measured, String> {
    let s = exafs::generate(profile, POINTS, channels, seed);
    let (wire, frames) = exafs::stream(&s.points, encoding, exafs::mask(channels));
    // Decode it again so the figures are for a stream known to be good.
    let mut d = Deframer::new();
    let mut data = 0usize;
    let mut decoded = Vec::with_capacity(POINTS);
    let mut input = &wire[..];
    loop {
        match d.feed(input) {
            Feed::Consumed => break,
            Feed::Frame { frame, remaining } => {
                let Ok(Message::PointBatch(b)) = frame.message() else {
                    return Err("frame is not a point batch".into());
                };
                data += b.data.len();
                b.decode_with(|p| decoded.push(p.to_point()))
                    .map_err(|e| e.to_string())?;
                input = remaining;
            }
            Feed::Error { error, .. } => return Err(error.to_string()),
        }
    }
    if decoded != s.points {
        return Err(format!(
            "decoded {} points, not the {POINTS} sent",
            decoded.len()
        ));
    }
    let n = POINTS as f64;
    Ok(Measured {
        wire: wire.len() as f64 / n,
        data_bits: data as f64 * 8.0 / n,
        per_frame: n / frames as f64,
        entropy: s.entropy_bits / n,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Characters of one Zebra `P` line: 'P', 8 hex digits of timestamp, 8 per 32-bit field, '\n'.
fn zebra_chars(fields: usize) -> usize {
    1 + 8 + 8 * fields + 1
}

fn main() {
    println!(
        "{POINTS} EXAFS-like points per row, median of seeds {SEEDS:?}; batches as full as a frame allows"
    );
    println!(
        "wire = all line bytes (COBS, delimiter, frame and batch headers, CRC); data = batch data only"
    );
    println!("H = entropy of the generated data (position step, timing jitter, Poisson counts)");
    println!();
    for profile in [exafs::SLOW, exafs::FAST] {
        for channels in [1usize, 8, 32] {
            // Zebra sends 32-bit fields: one counter for the 1-channel row (timestamp + 1
            // counter); the encoder and the counters for the others.
            let fields = if channels == 1 { 1 } else { 1 + channels };
            let zebra = zebra_chars(fields);
            let what = if channels == 1 {
                "timestamp + 1 counter".to_string()
            } else {
                format!("{channels} channels")
            };
            println!("{} — {what} (Zebra: {zebra} chars/point)", profile.name);
            let mut compact_wire = None;
            for encoding in Encoding::ALL {
                let mut runs = Vec::new();
                for seed in SEEDS {
                    match measure(&profile, channels, encoding, seed) {
                        Ok(m) => runs.push(m),
                        Err(e) => {
                            eprintln!("{} {what} {encoding:?}: {e}", profile.name);
                            std::process::exit(1);
                        }
                    }
                }
                let pick = |f: fn(&Measured) -> f64| median(runs.iter().map(f).collect());
                let (wire, data_bits) = (pick(|m| m.wire), pick(|m| m.data_bits));
                let (per_frame, entropy) = (pick(|m| m.per_frame), pick(|m| m.entropy));
                if encoding == Encoding::Compact {
                    compact_wire = Some(wire);
                }
                let vs_compact =
                    compact_wire.map_or(String::from("—"), |c| format!("{:.2}×", c / wire));
                let rates: Vec<String> = BAUDS
                    .iter()
                    .map(|&b| {
                        let bytes_s = f64::from(flyscan_protocol::limits::line_bytes_per_sec(b));
                        format!("{:>7.0}", bytes_s / wire)
                    })
                    .collect();
                println!(
                    "  {:<8} wire {wire:7.2} B/pt  data {data_bits:7.2} bit/pt (H {entropy:6.2}, {:5.2}× H)  {per_frame:6.1} pts/frame  pts/s at {BAUDS:?} Bd: {}  vs compact {vs_compact}  vs Zebra {:.2}×",
                    format!("{encoding:?}").to_lowercase(),
                    data_bits / entropy,
                    rates.join(" "),
                    zebra as f64 / wire,
                );
            }
            let zebra_rates: Vec<String> = BAUDS
                .iter()
                .map(|&b| {
                    format!(
                        "{:.0}",
                        f64::from(flyscan_protocol::limits::line_bytes_per_sec(b)) / zebra as f64
                    )
                })
                .collect();
            println!(
                "  zebra    pts/s at {BAUDS:?} Bd: {}",
                zebra_rates.join(" ")
            );
            println!();
        }
    }
}
