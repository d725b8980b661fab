//! The device byte stream and the host's decode path, shared by the host driver's benches.
#![allow(dead_code)]

use flyscan_host::assembler::{Assembler, Event};
use flyscan_host::core::ActiveScan;
use flyscan_protocol::frame::Frame;
use flyscan_protocol::limits::MAX_ENCODED_FRAME;
use flyscan_protocol::{
    BatchWriter, Deframer, DeviceInfo, Encoding, Message, Point, PointBatch, PointFlags, ScanConfig,
};
use std::time::Instant;

/// Points per stream.
pub const POINTS: u32 = 100_000;
/// Channels per point.
pub const CHANNELS: u32 = 8;

/// A small deterministic generator (the numbers only need to look like counts).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }
    /// Roughly Poisson-like around `mean`: mean ± a few √mean.
    fn count(&mut self, mean: u32) -> u32 {
        let sd = (f64::from(mean)).sqrt().max(1.0);
        let u = f64::from(self.next() % 1000) / 1000.0 - 0.5;
        (f64::from(mean) + 4.0 * sd * u).max(0.0) as u32
    }
}

fn info() -> DeviceInfo {
    DeviceInfo {
        protocol_version: flyscan_protocol::PROTOCOL_VERSION,
        fw_major: 0,
        fw_minor: 9,
        fw_patch: 1,
        n_channels: CHANNELS as u8,
        counter_bits: 32,
        clock_hz: 100_000_000,
        fifo_depth: 1024,
        resend_frames: 64,
        max_points: POINTS,
        list_window: 16,
        boot_id: 7,
    }
}

fn config(encoding: Encoding) -> ScanConfig {
    ScanConfig {
        start: 0,
        step: 10,
        count: POINTS,
        channel_mask: (1 << CHANNELS) - 1,
        encoding,
        ..ScanConfig::default()
    }
}

/// The device's byte stream: `DeviceInfo`, then batches as full as a frame allows.
pub fn stream(encoding: Encoding) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut seq = 0u32;
    let mut emit = |m: &Message<'_>, out: &mut Vec<u8>| {
        let mut buf = vec![0u8; MAX_ENCODED_FRAME];
        let n = m.encode_frame(seq, &mut buf).expect("encode");
        out.extend_from_slice(&buf[..n]);
        seq += 1;
    };
    emit(&Message::DeviceInfo(info()), &mut out);
    let mask = (1u32 << CHANNELS) - 1;
    let mut rng = Lcg(11);
    let mut w = BatchWriter::new(encoding, mask, 0);
    let mut first = 0u32;
    let mut frames = 0;
    for i in 0..POINTS {
        let mut p = Point {
            position: i64::from(i) * 10,
            timestamp: u64::from(i) * 100_000 + u64::from(rng.next() % 41),
            live_time: 99_960,
            flags: PointFlags(0),
            counts: Default::default(),
        };
        for c in 0..CHANNELS {
            let _ = p.counts.push(rng.count(if c == 0 { 4000 } else { 800 }));
        }
        if w.push(&p).is_err() {
            emit(
                &Message::PointBatch(PointBatch::from_writer(1, first, &w)),
                &mut out,
            );
            frames += 1;
            first = i;
            w.clear();
            w.push(&p).expect("a point fits an empty batch");
        }
    }
    emit(
        &Message::PointBatch(PointBatch::from_writer(1, first, &w)),
        &mut out,
    );
    (out, frames + 1)
}

/// The host's path today; returns points placed in columns. `energies`: with a monochromator
/// calibration, so each point's three energies are computed too (without one they are NaN).
pub fn in_place(bytes: &[u8], encoding: Encoding, energies: bool) -> u64 {
    let mut asm = Assembler::default();
    let mut scan = ActiveScan::new(1, config(encoding), Vec::new(), 100_000_000);
    if !energies {
        scan.calibration.d_spacing = 0.0;
    }
    let mut events = Vec::new();
    asm.push_bytes(bytes, Instant::now(), &mut events);
    let mut placed = 0u64;
    for e in &events {
        if let Event::Data(f) = e
            && let Ok(Message::PointBatch(b)) = f.message()
        {
            for rows in scan.accept_batch(&b).expect("accepted") {
                placed += rows.len() as u64;
            }
        }
    }
    placed
}

/// The steps of the host's former path (see the file's doc); returns points placed.
pub fn via_points(bytes: &[u8]) -> u64 {
    let mut d = Deframer::new();
    let mut position = Vec::new();
    let mut timestamp = Vec::new();
    let mut live = Vec::new();
    let mut counts: Vec<Vec<f64>> = vec![Vec::new(); CHANNELS as usize];
    let mut frames: Vec<Vec<u8>> = Vec::new();
    // The copy of every frame the former path made.
    d.feed_all(bytes, |f| frames.push(f.body().to_vec()), |_| {});
    for body in &frames {
        // Its second CRC check.
        let f = Frame::new_checked(body).expect("good frame");
        if let Ok(Message::PointBatch(b)) = Message::parse(f.msg_type(), f.payload()) {
            let pts: Vec<Point> = b.points().map(|p| p.expect("decodes")).collect();
            for p in &pts {
                position.push(p.position as f64);
                timestamp.push(p.timestamp as f64 / 1e8);
                live.push(f64::from(p.live_time) / 1e8);
                for (c, v) in counts.iter_mut().zip(&p.counts) {
                    c.push(f64::from(*v));
                }
            }
        }
    }
    std::hint::black_box((&timestamp, &live, &counts));
    position.len() as u64
}
