//! Line budget of the point stream: wire bytes per point, framing overhead, compact/raw ratio,
//! and points per second on a serial line, beside Diamond Zebra's ASCII point lines.
//!
//! Run: `cargo run --release -p flyscan-protocol --example line_budget`

use flyscan_protocol::{Deframer, Encoding, Message};

#[allow(dead_code)] // each user takes a part of the shared data generator
#[path = "../benches/support/exafs.rs"]
mod exafs;

/// Serial line rates compared, in baud; 8N1 puts 10 line bits on each byte.
const BAUDS: [u32; 2] = [115_200, 921_600];
const POINTS: usize = 100_000;

struct Row {
    name: &'static str,
    channels: usize,
    encoding: Encoding,
}

/// Wire bytes of the stream and bytes of point data inside it (the rest is overhead).
fn measure(row: &Row) -> Result<(usize, usize, usize), String> {
    let points = exafs::points(POINTS, row.channels, 7);
    let mask = if row.channels >= 32 {
        u32::MAX
    } else {
        (1u32 << row.channels) - 1
    };
    let (wire, frames) = exafs::stream(&points, row.encoding, mask);
    // Decode it again so the figures are for a stream known to be good.
    let mut d = Deframer::new();
    let mut data = 0usize;
    let mut decoded = 0usize;
    let mut input = &wire[..];
    loop {
        match d.feed(input) {
            flyscan_protocol::Feed::Consumed => break,
            flyscan_protocol::Feed::Frame { frame, remaining } => {
                let Ok(Message::PointBatch(b)) = frame.message() else {
                    return Err("frame is not a point batch".into());
                };
                data += b.data.len();
                decoded += b.points().filter(|p| p.is_ok()).count();
                input = remaining;
            }
            flyscan_protocol::Feed::Error { error, .. } => return Err(error.to_string()),
        }
    }
    if decoded != POINTS {
        return Err(format!("decoded {decoded} of {POINTS} points"));
    }
    Ok((wire.len(), data, frames))
}

/// Characters of one Zebra `P` line: 'P', 8 hex digits of timestamp, 8 per 32-bit field, '\n'.
fn zebra_chars(fields: usize) -> usize {
    1 + 8 + 8 * fields + 1
}

fn main() {
    let rows = [
        Row {
            name: "8 channels, raw",
            channels: 8,
            encoding: Encoding::Raw,
        },
        Row {
            name: "8 channels, compact",
            channels: 8,
            encoding: Encoding::Compact,
        },
        Row {
            name: "timestamp + 1 counter, compact",
            channels: 1,
            encoding: Encoding::Compact,
        },
    ];
    println!(
        "{POINTS} EXAFS-like points per row (steady velocity, ~100 counts/point, 1 ms at 100 MHz)"
    );
    println!(
        "batches as full as a frame allows; overhead = COBS + delimiter + frame header + batch header + CRC"
    );
    println!();
    let mut raw_8: Option<f64> = None;
    for row in &rows {
        let (wire, data, frames) = match measure(row) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{}: {e}", row.name);
                std::process::exit(1);
            }
        };
        let per_point = wire as f64 / POINTS as f64;
        let overhead = 100.0 * (wire - data) as f64 / wire as f64;
        println!("{}", row.name);
        println!(
            "  wire bytes/point        {per_point:8.2}   ({} points/frame)",
            POINTS.div_ceil(frames)
        );
        println!("  overhead of line bytes  {overhead:8.2} %");
        if row.channels == 8 {
            match (row.encoding, raw_8) {
                (Encoding::Raw, _) => raw_8 = Some(per_point),
                (Encoding::Compact, Some(raw)) => {
                    println!("  compact/raw ratio       {:8.2} x", raw / per_point)
                }
                _ => {}
            }
        }
        // Zebra sends 32-bit fields: the counters and, for the 8-channel rows, the encoder.
        let zebra_fields = if row.channels == 1 {
            1
        } else {
            1 + row.channels
        };
        let zebra = zebra_chars(zebra_fields);
        println!(
            "  Zebra ASCII chars/point {zebra:8}   (P + timestamp + {zebra_fields} field(s) + newline; no position/live time/CRC)"
        );
        for baud in BAUDS {
            let bytes_s = f64::from(flyscan_protocol::limits::line_bytes_per_sec(baud));
            println!(
                "  points/s at {baud:>7} baud: flyscan {:8.0}   Zebra {:8.0}",
                bytes_s / per_point,
                bytes_s / zebra as f64
            );
        }
        println!();
    }
}
