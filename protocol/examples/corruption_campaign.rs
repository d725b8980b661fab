//! Corruption campaign: realistic device frames, each damaged by a random line error, fed as one
//! stream through the [`Deframer`]. Counts what comes out: intact frames, frames lost, and bad
//! frames that passed the CRC (the protocol's acceptance target is zero).
//!
//! For comparison only, the same campaign (same frames, same kinds and rates of damage, same
//! seeds) is run on a variant of the frame format that carries a 16-bit CRC
//! (CRC-16/IBM-3740, the "CCITT-FALSE" CRC, polynomial 0x1021) instead of CRC-32C, to show what
//! the shorter check would have let through (PROTOCOL.md §Why CRC-32C and not CRC-16).
//!
//! Run: `cargo run --release -p flyscan-protocol --example corruption_campaign -- --frames 1000000`

use clap::Parser;
use flyscan_protocol::limits::{HEADER_LEN, MAX_BODY, MAX_ENCODED_FRAME};
use flyscan_protocol::{
    BatchWriter, CommandReply, DeviceState, EncodeError, Encoding, Feed, Health, Message, NakCode,
    Point, PointBatch,
};
use flyscan_protocol::{Deframer, PROTOCOL_VERSION};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

// Shared with the benchmarks; only its point generator is used here.
#[allow(dead_code)]
#[path = "../benches/support/exafs.rs"]
mod exafs;

/// The 16-bit CRC of the comparison run.
const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_IBM_3740);
/// Length of the 16-bit check value.
const CRC16_LEN: usize = 2;
/// Detector channels of every point batch (a typical 8-channel scaler).
const CHANNELS: usize = 8;
/// Points in the pool batches are cut from.
const POINT_POOL: usize = 50_000;
/// Frames generated, damaged and checked together (originals are kept for two blocks, since a
/// frame whose delimiter was destroyed comes out while the next block is fed).
const BLOCK: usize = 4096;

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "Feeds randomly damaged frames through the deframer and counts what passes")]
struct Args {
    /// Frames to generate (each one is damaged once).
    #[arg(long, default_value_t = 1_000_000)]
    frames: usize,
    /// Seed of every random choice (frames, damage, chunking).
    #[arg(long, default_value_t = 0x5eed_f1a5)]
    seed: u64,
    /// Skip the CRC-16 comparison run.
    #[arg(long)]
    no_crc16: bool,
}

/// Kinds of damage applied to a frame's wire bytes (delimiter included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    /// One bit flipped.
    SingleBit,
    /// 2 to 8 bits flipped at random places.
    MultiBit,
    /// Each bit flipped independently at a bit error rate drawn log-uniformly from 1e-5 to
    /// 1e-2 (at least one flip).
    Ber,
    /// A burst 2 to 64 bits long: first and last bit flipped, the bits between random.
    Burst,
    /// 1 to 4 bytes lost.
    ByteDrop,
    /// 1 to 4 random bytes inserted.
    ByteInsert,
    /// The frame cut short; its delimiter kept or (half the time) lost too.
    Truncate,
}

impl Damage {
    const ALL: [Damage; 7] = [
        Self::SingleBit,
        Self::MultiBit,
        Self::Ber,
        Self::Burst,
        Self::ByteDrop,
        Self::ByteInsert,
        Self::Truncate,
    ];
    /// Relative frequencies, in the order of [`Damage::ALL`].
    const WEIGHTS: [u32; 7] = [20, 15, 20, 15, 10, 10, 10];

    fn pick(rng: &mut SmallRng) -> Self {
        let total: u32 = Self::WEIGHTS.iter().sum();
        let mut x = rng.random_range(0..total);
        for (d, w) in Self::ALL.iter().zip(Self::WEIGHTS) {
            if x < w {
                return *d;
            }
            x -= w;
        }
        Self::SingleBit
    }

    fn name(self) -> &'static str {
        match self {
            Self::SingleBit => "single bit flip",
            Self::MultiBit => "2-8 bit flips",
            Self::Ber => "BER 1e-5..1e-2",
            Self::Burst => "burst 2-64 bits",
            Self::ByteDrop => "1-4 bytes dropped",
            Self::ByteInsert => "1-4 bytes inserted",
            Self::Truncate => "truncated",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|d| *d == self).unwrap_or(0)
    }
}

/// Kinds of frame generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    CompactBatch,
    RawBatch,
    Health,
    Reply,
}

impl Kind {
    const ALL: [Kind; 4] = [
        Self::CompactBatch,
        Self::RawBatch,
        Self::Health,
        Self::Reply,
    ];

    fn pick(rng: &mut SmallRng) -> Self {
        match rng.random_range(0..100) {
            0..40 => Self::CompactBatch,
            40..70 => Self::RawBatch,
            70..85 => Self::Health,
            _ => Self::Reply,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::CompactBatch => "point batch, compact, 8 ch",
            Self::RawBatch => "point batch, raw, 8 ch",
            Self::Health => "health",
            Self::Reply => "command reply (ack/nak)",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }
}

/// Which integrity check a run's frames carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// The protocol's frames, checked by [`Deframer`].
    Crc32c,
    /// The comparison variant: same header and payload, 16-bit CRC.
    Crc16,
}

/// What one run counted.
#[derive(Debug, Default, Clone)]
struct Tally {
    frames: u64,
    wire_bytes: u64,
    by_kind: [u64; 4],
    /// Per damage kind: frames damaged, delivered intact, delivered bad.
    damaged: [u64; 7],
    intact: [u64; 7],
    bad: [u64; 7],
    /// Bad frames whose header no longer names a recent frame (not in `bad`).
    bad_unknown_seq: u64,
    /// Delimited chunks that decoded to a body long enough to reach the CRC check.
    crc_checked: u64,
    /// Deframer errors by kind.
    cobs: u64,
    too_short: u64,
    bad_crc: u64,
    bad_version: u64,
    oversize: u64,
}

impl Tally {
    fn delivered(&self) -> u64 {
        self.intact.iter().sum::<u64>() + self.bad_total()
    }
    fn bad_total(&self) -> u64 {
        self.bad.iter().sum::<u64>() + self.bad_unknown_seq
    }
}

/// Builds frames deterministically from a frame index (the same in both runs).
struct Generator {
    pool: Vec<Point>,
    frame: [u8; MAX_ENCODED_FRAME],
}

impl Generator {
    fn new(seed: u64) -> Self {
        Self {
            pool: exafs::points(POINT_POOL, CHANNELS, seed),
            frame: [0; MAX_ENCODED_FRAME],
        }
    }

    /// The message of frame `i`, emitted into `payload`; returns its type and payload length.
    fn payload(
        &mut self,
        rng: &mut SmallRng,
        i: u32,
        payload: &mut [u8],
    ) -> Result<(Kind, u8, usize), EncodeError> {
        let kind = Kind::pick(rng);
        let emitted = match kind {
            Kind::CompactBatch | Kind::RawBatch => {
                let enc = if kind == Kind::CompactBatch {
                    Encoding::Compact
                } else {
                    Encoding::Raw
                };
                let mask = (1u32 << CHANNELS) - 1;
                let mut w = BatchWriter::new(enc, mask, 0);
                // Half the batches are as full as a frame allows (a fast scan); the others were
                // sent early by the latency limit and hold fewer points.
                let limit = if rng.random_bool(0.5) {
                    usize::MAX
                } else {
                    rng.random_range(1..=200)
                };
                let start = rng.random_range(0..POINT_POOL - 1100);
                for p in self.pool[start..].iter().take(limit) {
                    if w.push(p).is_err() {
                        break;
                    }
                }
                Message::PointBatch(PointBatch::from_writer(7, start as u32, &w)).emit(payload)
            }
            Kind::Health => Message::Health(Health {
                uptime_ticks: u64::from(i) * 10_000_000 + rng.random_range(0..1000),
                state: DeviceState::Scanning,
                scan_id: 7,
                position: rng.random_range(-250_000..2_000_000),
                points: i,
                quad_errors: rng.random_range(0..3),
                position_jumps: rng.random_range(0..2),
                fifo_overruns: 0,
                frames_sent: u64::from(i),
                resends: rng.random_range(0..10),
                resend_misses: 0,
                rx_errors: rng.random_range(0..5),
                naks: rng.random_range(0..3),
                boot_id: 0x5eed_b007,
            })
            .emit(payload),
            Kind::Reply => {
                let seq = rng.random_range(0..10_000);
                let r = if rng.random_bool(0.7) {
                    CommandReply::ack(seq, 0x02)
                } else {
                    CommandReply::nak(
                        seq,
                        0x02,
                        NakCode::InvalidConfig,
                        3,
                        format_args!("step must not be 0"),
                    )
                };
                Message::CommandReply(r).emit(payload)
            }
        };
        let msg_type = match kind {
            Kind::CompactBatch | Kind::RawBatch => 0x83,
            Kind::Health => 0x85,
            Kind::Reply => 0x86,
        };
        Ok((kind, msg_type, emitted?))
    }

    /// Frame `i` on the wire (COBS + delimiter) in `check`'s format, and its decoded body.
    fn frame(
        &mut self,
        rng: &mut SmallRng,
        i: u32,
        check: Check,
        body: &mut Vec<u8>,
    ) -> Result<(Kind, &[u8]), EncodeError> {
        let mut payload = [0u8; MAX_BODY];
        let (kind, msg_type, len) = self.payload(rng, i, &mut payload)?;
        body.clear();
        body.push(PROTOCOL_VERSION);
        body.push(msg_type);
        body.extend_from_slice(&i.to_le_bytes());
        body.extend_from_slice(&payload[..len]);
        match check {
            Check::Crc32c => {
                let c = flyscan_protocol::frame::CRC32C.checksum(body);
                body.extend_from_slice(&c.to_le_bytes());
            }
            Check::Crc16 => {
                let c = CRC16.checksum(body);
                body.extend_from_slice(&c.to_le_bytes());
            }
        }
        let n = corncobs::encode_buf(body, &mut self.frame);
        Ok((kind, &self.frame[..n]))
    }
}

/// Damages `wire` (one frame with its delimiter) into `out`.
fn damage(rng: &mut SmallRng, wire: &[u8], out: &mut Vec<u8>) -> Damage {
    let d = Damage::pick(rng);
    out.clear();
    out.extend_from_slice(wire);
    let bits = out.len() * 8;
    let flip = |out: &mut Vec<u8>, bit: usize| out[bit / 8] ^= 1 << (bit % 8);
    match d {
        Damage::SingleBit => flip(out, rng.random_range(0..bits)),
        Damage::MultiBit => {
            let k = rng.random_range(2..=8);
            let mut done = Vec::with_capacity(k);
            while done.len() < k.min(bits) {
                let b = rng.random_range(0..bits);
                if !done.contains(&b) {
                    done.push(b);
                    flip(out, b);
                }
            }
        }
        Damage::Ber => {
            // Log-uniform rate; flips placed by geometric gaps (exact for independent errors).
            let ber = 10f64.powf(rng.random_range(-5.0..-2.0));
            let ln_q = (1.0 - ber).ln();
            let mut at = 0usize;
            let mut flips = 0;
            loop {
                let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
                at += (u.ln() / ln_q) as usize;
                if at >= bits {
                    break;
                }
                flip(out, at);
                flips += 1;
                at += 1;
            }
            if flips == 0 {
                // The campaign damages every frame: condition on at least one error.
                flip(out, rng.random_range(0..bits));
            }
        }
        Damage::Burst => {
            let len = rng.random_range(2..=64).min(bits);
            let first = rng.random_range(0..=bits - len);
            flip(out, first);
            flip(out, first + len - 1);
            for b in first + 1..first + len - 1 {
                if rng.random_bool(0.5) {
                    flip(out, b);
                }
            }
        }
        Damage::ByteDrop => {
            for _ in 0..rng.random_range(1..=4) {
                if out.is_empty() {
                    break;
                }
                let at = rng.random_range(0..out.len());
                out.remove(at);
            }
        }
        Damage::ByteInsert => {
            for _ in 0..rng.random_range(1..=4) {
                let at = rng.random_range(0..=out.len());
                out.insert(at, rng.random());
            }
        }
        Damage::Truncate => {
            // Keep 0 … len−2 bytes of the encoded frame (at least one is lost).
            let keep = rng.random_range(0..wire.len() - 1);
            out.truncate(keep);
            if rng.random_bool(0.5) {
                out.push(0);
            }
        }
    }
    d
}

/// The originals of recent frames, by sequence number: (body, damage kind).
type Originals = HashMap<u32, (Vec<u8>, Damage)>;

/// Judges one frame that passed the check: intact (first time its sequence number comes out
/// with the original bytes) or bad.
fn judge(
    t: &mut Tally,
    body: &[u8],
    seq: u32,
    cur: &Originals,
    prev: &Originals,
    seen: &mut HashSet<u32>,
) {
    match cur.get(&seq).or_else(|| prev.get(&seq)) {
        Some((orig, d)) if orig.as_slice() == body && seen.insert(seq) => t.intact[d.index()] += 1,
        Some((_, d)) => t.bad[d.index()] += 1,
        // The header itself was changed into a number no recent frame had.
        None => t.bad_unknown_seq += 1,
    }
}

/// The CRC-16 variant's deframer: split at 0x00, COBS-decode, length, CRC-16, version. Kept to
/// the same checks and order as [`Deframer`] so the two runs differ only in the CRC.
struct Crc16Deframer {
    acc: Vec<u8>,
    out: Vec<u8>,
}

impl Crc16Deframer {
    fn feed(&mut self, input: &[u8], t: &mut Tally, mut on_frame: impl FnMut(&mut Tally, &[u8])) {
        for &b in input {
            if b != 0 {
                self.acc.push(b);
                continue;
            }
            if self.acc.is_empty() {
                continue;
            }
            if self.acc.len() + 1 > MAX_ENCODED_FRAME {
                t.oversize += 1;
                self.acc.clear();
                continue;
            }
            self.acc.push(0);
            self.out.resize(self.acc.len(), 0);
            match corncobs::decode_buf(&self.acc, &mut self.out) {
                Err(_) => t.cobs += 1,
                Ok(n) if n < HEADER_LEN + CRC16_LEN => t.too_short += 1,
                Ok(n) => {
                    t.crc_checked += 1;
                    let body = &self.out[..n];
                    let (covered, tail) = body.split_at(n - CRC16_LEN);
                    if CRC16.checksum(covered) != u16::from_le_bytes([tail[0], tail[1]]) {
                        t.bad_crc += 1;
                    } else if body[0] != PROTOCOL_VERSION {
                        t.bad_version += 1;
                    } else {
                        on_frame(t, body);
                    }
                }
            }
            self.acc.clear();
        }
    }
}

/// One complete run with the given check.
fn run(args: &Args, check: Check) -> Result<Tally, EncodeError> {
    let mut t = Tally::default();
    let mut gen_ = Generator::new(args.seed);
    let mut deframer = Deframer::new();
    let mut d16 = Crc16Deframer {
        acc: Vec::with_capacity(MAX_ENCODED_FRAME),
        out: Vec::with_capacity(MAX_ENCODED_FRAME),
    };
    let mut chunk_rng = SmallRng::seed_from_u64(args.seed ^ 0xc4a2_c4a2);
    let mut prev = Originals::new();
    let mut cur = Originals::new();
    let mut seen: HashSet<u32> = HashSet::new();
    let mut stream = Vec::with_capacity(BLOCK * 1200);
    let mut body = Vec::with_capacity(MAX_BODY);
    let mut damaged = Vec::with_capacity(MAX_ENCODED_FRAME + 8);
    let mut i = 0usize;
    while i < args.frames {
        let end = (i + BLOCK).min(args.frames);
        std::mem::swap(&mut prev, &mut cur);
        cur.clear();
        stream.clear();
        for k in i..end {
            // One generator per frame, seeded by its index: both runs see the same frame contents
            // and the same damage decisions.
            let mut rng =
                SmallRng::seed_from_u64(args.seed ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let (kind, wire) = gen_.frame(&mut rng, k as u32, check, &mut body)?;
            let d = damage(&mut rng, wire, &mut damaged);
            t.frames += 1;
            t.by_kind[kind.index()] += 1;
            t.damaged[d.index()] += 1;
            t.wire_bytes += wire.len() as u64;
            stream.extend_from_slice(&damaged);
            cur.insert(k as u32, (body.clone(), d));
        }
        // The seen-set only needs the frames still held as originals.
        seen.retain(|s| prev.contains_key(s));
        // The serial driver hands over chunks of any size.
        let mut rest = &stream[..];
        while !rest.is_empty() {
            let n = chunk_rng.random_range(1..=4096).min(rest.len());
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            match check {
                Check::Crc32c => {
                    let mut input = chunk;
                    loop {
                        match deframer.feed(input) {
                            Feed::Consumed => break,
                            Feed::Frame { frame, remaining } => {
                                judge(&mut t, frame.body(), frame.seq(), &cur, &prev, &mut seen);
                                input = remaining;
                            }
                            Feed::Error { remaining, .. } => input = remaining,
                        }
                    }
                }
                Check::Crc16 => d16.feed(chunk, &mut t, |t, body| {
                    let seq = u32::from_le_bytes([body[2], body[3], body[4], body[5]]);
                    judge(t, body, seq, &cur, &prev, &mut seen);
                }),
            }
        }
        i = end;
    }
    if check == Check::Crc32c {
        let s = deframer.stats();
        t.cobs = s.cobs;
        t.too_short = s.too_short;
        t.bad_crc = s.bad_crc;
        t.bad_version = s.bad_version;
        t.oversize = s.oversize;
        // Bodies that reached the CRC check: those that failed it, failed the version check
        // after it, or passed.
        t.crc_checked = s.bad_crc + s.bad_version + s.frames;
    }
    Ok(t)
}

fn pct(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

fn print_run(title: &str, t: &Tally, crc_bits: i32) {
    println!("\n## {title}\n");
    println!("| damage | frames | delivered intact | lost | bad frames passed |");
    println!("|---|---:|---:|---:|---:|");
    for d in Damage::ALL {
        let i = d.index();
        println!(
            "| {} | {} | {} | {} | {} |",
            d.name(),
            t.damaged[i],
            t.intact[i],
            t.damaged[i].saturating_sub(t.intact[i]),
            t.bad[i]
        );
    }
    println!(
        "| (bad frame whose sequence number names no recent frame) | | | | {} |",
        t.bad_unknown_seq
    );
    let intact: u64 = t.intact.iter().sum();
    println!(
        "| **total** | {} | {} | {} | **{}** |",
        t.frames,
        intact,
        t.frames - intact,
        t.bad_total()
    );
    println!();
    println!(
        "delivered {} frames ({:.2} % of those sent), {} of them bad ({} with a sequence number \
         never sent)",
        t.delivered(),
        pct(t.delivered(), t.frames),
        t.bad_total(),
        t.bad_unknown_seq
    );
    println!(
        "rejected: cobs {}, too short {}, bad CRC {}, bad version {}, oversize {}",
        t.cobs, t.too_short, t.bad_crc, t.bad_version, t.oversize
    );
    let expected = t.crc_checked as f64 * 2f64.powi(-crc_bits);
    println!(
        "bodies that reached the CRC check: {}; bad ones accepted {} (rate {:.2e}); \
         expected for a random {crc_bits}-bit check: {:.4}",
        t.crc_checked,
        t.bad_total(),
        if t.crc_checked == 0 {
            0.0
        } else {
            t.bad_total() as f64 / t.crc_checked as f64
        },
        expected
    );
}

/// Every generated message fits a frame; an encoder error is a bug in this example.
fn fail(e: EncodeError) -> ! {
    eprintln!("could not encode a generated frame: {e}");
    std::process::exit(2);
}

fn main() {
    let args = Args::parse();
    if args.frames == 0 || args.frames > u32::MAX as usize {
        eprintln!("--frames must be between 1 and {}", u32::MAX);
        std::process::exit(2);
    }
    let t0 = Instant::now();
    let t32 = run(&args, Check::Crc32c).unwrap_or_else(|e| fail(e));
    let dt32 = t0.elapsed();
    println!(
        "# Corruption campaign: {} frames, seed {:#x}\n",
        args.frames, args.seed
    );
    println!("| frame kind | frames |");
    println!("|---|---:|");
    for k in Kind::ALL {
        println!("| {} | {} |", k.name(), t32.by_kind[k.index()]);
    }
    println!(
        "\nwire bytes before damage: {} (mean {:.0} per frame)",
        t32.wire_bytes,
        t32.wire_bytes as f64 / t32.frames as f64
    );
    print_run("CRC-32C (the protocol)", &t32, 32);
    println!("\n(run time {:.1} s)", dt32.as_secs_f64());
    if !args.no_crc16 {
        let t1 = Instant::now();
        let t16 = run(&args, Check::Crc16).unwrap_or_else(|e| fail(e));
        print_run(
            "Comparison only: the same campaign with a CRC-16/IBM-3740 (CCITT-FALSE) in place of CRC-32C",
            &t16,
            16,
        );
        println!("\n(run time {:.1} s)", t1.elapsed().as_secs_f64());
    }
    if t32.bad_total() != 0 {
        eprintln!("FAIL: {} bad frames passed CRC-32C", t32.bad_total());
        std::process::exit(1);
    }
}
