//! Shared proptest strategies and helpers for the integration tests.
#![allow(dead_code)]

use flyscan_protocol::limits::{MAX_CHANNELS, MAX_CHUNK_POSITIONS, MAX_DETAIL, MAX_ENCODED_FRAME};
use flyscan_protocol::message::Positions;
use flyscan_protocol::point::Counts;
use flyscan_protocol::{
    BatchWriter, CommandReply, Deframer, DeviceInfo, DeviceState, Direction, DoneReason, Encoding,
    Feed, FrameError, Health, Message, NakCode, Point, PointFlags, ScanArmed, ScanConfig, ScanDone,
    TriggerMode,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// One good frame as seen by a test: header fields and payload, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub msg_type: u8,
    pub seq: u32,
    pub payload: Vec<u8>,
}

/// What the deframer reported, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Frame(Seen),
    Error(FrameError),
}

/// Feeds `chunks` in order and records every event.
pub fn deframe_chunks<'c>(
    d: &mut Deframer,
    chunks: impl IntoIterator<Item = &'c [u8]>,
) -> Vec<Event> {
    let mut events = Vec::new();
    for chunk in chunks {
        let mut input = chunk;
        loop {
            match d.feed(input) {
                Feed::Consumed => break,
                Feed::Frame { frame, remaining } => {
                    events.push(Event::Frame(Seen {
                        msg_type: frame.msg_type(),
                        seq: frame.seq(),
                        payload: frame.payload().to_vec(),
                    }));
                    input = remaining;
                }
                Feed::Error { error, remaining } => {
                    events.push(Event::Error(error));
                    input = remaining;
                }
            }
        }
    }
    events
}

/// Feeds `bytes` as one chunk into a fresh deframer.
pub fn deframe(bytes: &[u8]) -> Vec<Event> {
    let mut d = Deframer::new();
    deframe_chunks(&mut d, [bytes])
}

/// The good frames among `events`.
pub fn frames(events: &[Event]) -> Vec<Seen> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Frame(s) => Some(s.clone()),
            Event::Error(_) => None,
        })
        .collect()
}

/// Encodes a message into a wire frame.
pub fn wire(msg: &Message<'_>, seq: u32) -> Vec<u8> {
    let mut out = vec![0u8; MAX_ENCODED_FRAME];
    let n = msg
        .encode_frame(seq, &mut out)
        .expect("message fits a frame");
    out.truncate(n);
    out
}

/// Payload bytes of a message.
pub fn payload(msg: &Message<'_>) -> Vec<u8> {
    let mut out = vec![0u8; flyscan_protocol::limits::MAX_PAYLOAD];
    let n = msg.emit(&mut out).expect("message fits a payload");
    out.truncate(n);
    out
}

pub fn arb_config() -> impl Strategy<Value = ScanConfig> {
    (
        (0u8..3, 0u8..4, 0u8..3, any::<u32>()),
        any::<i64>(),
        any::<i64>(),
        any::<u32>(),
        any::<u16>(),
        any::<u32>(),
        any::<u16>(),
        any::<u32>(),
    )
        .prop_map(
            |(
                (m, d, e, gate_span),
                start,
                step,
                count,
                passes,
                channel_mask,
                max_batch_points,
                lat,
            )| {
                ScanConfig {
                    mode: TriggerMode::from_u8(m).expect("0..3"),
                    direction: Direction::from_u8(d).expect("0..4"),
                    encoding: Encoding::from_u8(e).expect("0..3"),
                    start,
                    step,
                    count,
                    passes,
                    channel_mask,
                    max_batch_points,
                    max_latency_us: lat,
                    gate_span,
                }
            },
        )
}

pub fn arb_device_info() -> impl Strategy<Value = DeviceInfo> {
    (
        (any::<u8>(), any::<u16>(), any::<u16>(), any::<u16>()),
        (any::<u8>(), any::<u8>(), any::<u64>()),
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
        any::<u32>(),
    )
        .prop_map(
            |((pv, a, b, c), (n, bits, hz), (fifo, rs, maxp, win), boot_id)| DeviceInfo {
                protocol_version: pv,
                fw_major: a,
                fw_minor: b,
                fw_patch: c,
                n_channels: n,
                counter_bits: bits,
                clock_hz: hz,
                fifo_depth: fifo,
                resend_frames: rs,
                max_points: maxp,
                list_window: win,
                boot_id,
            },
        )
}

pub fn arb_health() -> impl Strategy<Value = Health> {
    (
        (
            any::<u64>(),
            0u8..4,
            any::<u32>(),
            any::<i64>(),
            any::<u32>(),
        ),
        [any::<u64>(); 8],
        any::<u32>(),
    )
        .prop_map(|((up, st, id, pos, pts), c, boot_id)| Health {
            uptime_ticks: up,
            state: match st {
                0 => DeviceState::Idle,
                1 => DeviceState::Configured,
                2 => DeviceState::Armed,
                _ => DeviceState::Scanning,
            },
            scan_id: id,
            position: pos,
            points: pts,
            quad_errors: c[0],
            position_jumps: c[1],
            fifo_overruns: c[2],
            frames_sent: c[3],
            resends: c[4],
            resend_misses: c[5],
            rx_errors: c[6],
            naks: c[7],
            boot_id,
        })
}

pub fn arb_reply() -> impl Strategy<Value = CommandReply> {
    (
        any::<u32>(),
        any::<u8>(),
        0u8..9,
        any::<u32>(),
        // Any Unicode text; the strategy trims it to 64 bytes on a char boundary.
        ".{0,40}",
    )
        .prop_map(|(seq, ty, code, arg, text)| {
            let mut detail = heapless::String::<MAX_DETAIL>::new();
            for ch in text.chars() {
                if detail.push(ch).is_err() {
                    break;
                }
            }
            CommandReply {
                request_seq: seq,
                request_type: ty,
                code: NakCode::from_u8(code).expect("0..9"),
                arg,
                detail,
            }
        })
}

/// An owned message whose borrowed parts (positions) live in the value itself.
#[derive(Debug, Clone)]
pub enum Owned {
    Plain(Message<'static>),
    Chunk { offset: u32, positions: Vec<i64> },
}

impl Owned {
    pub fn message(&self) -> Message<'_> {
        match self {
            Self::Plain(m) => m.clone(),
            Self::Chunk { offset, positions } => Message::PositionChunk {
                offset: *offset,
                positions: Positions::Values(positions),
            },
        }
    }
}

/// Every message type except `PointBatch` (which has its own tests), with arbitrary fields.
pub fn arb_message() -> impl Strategy<Value = Owned> {
    prop_oneof![
        Just(Owned::Plain(Message::GetInfo)),
        arb_config().prop_map(|c| Owned::Plain(Message::Configure(c))),
        (any::<u32>(), vec(any::<i64>(), 0..=MAX_CHUNK_POSITIONS))
            .prop_map(|(offset, positions)| Owned::Chunk { offset, positions }),
        any::<u32>().prop_map(|scan_id| Owned::Plain(Message::Arm { scan_id })),
        Just(Owned::Plain(Message::Abort)),
        (any::<u32>(), any::<u32>()).prop_map(|(first_seq, last_seq)| Owned::Plain(
            Message::ResendRequest {
                first_seq,
                last_seq
            }
        )),
        any::<u32>().prop_map(|token| Owned::Plain(Message::Ping { token })),
        arb_device_info().prop_map(|d| Owned::Plain(Message::DeviceInfo(d))),
        (any::<u32>(), arb_config()).prop_map(|(scan_id, config)| Owned::Plain(
            Message::ScanArmed(ScanArmed { scan_id, config })
        )),
        (any::<u32>(), any::<u32>(), 0u8..3, any::<u16>()).prop_map(|(id, n, r, code)| {
            Owned::Plain(Message::ScanDone(ScanDone {
                scan_id: id,
                total_points: n,
                reason: match r {
                    0 => DoneReason::Completed,
                    1 => DoneReason::Aborted,
                    _ => DoneReason::Error,
                },
                error_code: code,
            }))
        }),
        arb_health().prop_map(|h| Owned::Plain(Message::Health(h))),
        arb_reply().prop_map(|r| Owned::Plain(Message::CommandReply(r))),
        (any::<u32>(), any::<u64>(), any::<u32>()).prop_map(|(token, uptime_ticks, boot_id)| {
            Owned::Plain(Message::Pong {
                token,
                uptime_ticks,
                boot_id,
            })
        }),
    ]
}

/// A channel mask with 1–32 channels set, anywhere in the 32 bits.
pub fn arb_mask() -> impl Strategy<Value = u32> {
    any::<u32>().prop_filter("at least one channel", |m| *m != 0)
}

/// Points for `n` channels with any field values.
pub fn arb_points(n: usize, max: usize) -> impl Strategy<Value = Vec<Point>> {
    vec(
        (
            any::<i64>(),
            any::<u64>(),
            any::<u32>(),
            any::<u8>(),
            vec(any::<u32>(), n..=n),
        )
            .prop_map(|(position, timestamp, live_time, flags, counts)| Point {
                position,
                timestamp,
                live_time,
                flags: PointFlags(flags),
                counts: Counts::from_slice(&counts).expect("n ≤ 32"),
            }),
        1..=max,
    )
}

/// A mask and points for it (1–32 channels).
pub fn arb_mask_and_points(max: usize) -> impl Strategy<Value = (u32, Vec<Point>)> {
    arb_mask().prop_flat_map(move |mask| {
        let n = (mask.count_ones() as usize).min(MAX_CHANNELS);
        (Just(mask), arb_points(n, max))
    })
}

/// Packs `points` into as many batches as needed; returns (first_index, writer) pairs.
pub fn batches(
    encoding: Encoding,
    mask: u32,
    max_points: u16,
    points: &[Point],
) -> Vec<(u32, BatchWriter)> {
    let mut out = Vec::new();
    let mut w = BatchWriter::new(encoding, mask, max_points);
    let mut first = 0u32;
    for (i, p) in points.iter().enumerate() {
        if w.push(p).is_err() {
            assert!(!w.is_empty(), "a single point must fit an empty batch");
            let full = core::mem::replace(&mut w, BatchWriter::new(encoding, mask, max_points));
            out.push((first, full));
            first = i as u32;
            w.push(p).expect("a single point fits an empty batch");
        }
    }
    if !w.is_empty() {
        out.push((first, w));
    }
    out
}
