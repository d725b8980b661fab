//! End-to-end tests of the firmware core against the in-memory FPGA model: host frames in,
//! wire bytes out, decoded with the protocol crate's deframer exactly as the host driver does.
#![allow(clippy::unwrap_used)]

use flyscan_firmware::fpga::model::{FpgaModel, ModelConfig, ModelDrdy, ModelSpi};
use flyscan_firmware::fpga::{Error as FpgaErr, Fpga};
use flyscan_firmware::outbox::{RESEND_FRAMES, TX_BYTES};
use flyscan_firmware::{Firmware, Settings};
use flyscan_protocol::limits::MAX_ENCODED_FRAME;
use flyscan_protocol::message::Positions;
use flyscan_protocol::{
    Deframer, DeviceState, Direction, DoneReason, Encoding, Message, MessageType, NakCode, Point,
    PointFlags, ScanConfig, TriggerMode,
};

type Fw = Firmware<ModelSpi, ModelDrdy>;

/// One decoded device frame, owned.
#[derive(Debug, Clone)]
struct Got {
    seq: u32,
    ty: u8,
    payload: Vec<u8>,
    wire: Vec<u8>,
}

impl Got {
    fn msg(&self) -> Message<'_> {
        Message::parse(self.ty, &self.payload).expect("device sent an unparsable message")
    }
}

struct Host {
    fw: Box<Fw>,
    model: FpgaModel,
    seq: u32,
    deframer: Deframer,
    got: Vec<Got>,
    now: u64,
}

fn model_cfg() -> ModelConfig {
    ModelConfig {
        clock_hz: 1_000_000,
        n_channels: 8,
        counter_bits: 24,
        fifo_depth: 4096,
        snapshot_depth: 4096,
    }
}

impl Host {
    fn new(cfg: ModelConfig) -> Self {
        let model = FpgaModel::new(cfg);
        let fpga = Fpga::new(model.spi(), model.drdy());
        let fw = Box::new(Firmware::new(fpga, Settings::default()).expect("init"));
        let mut h = Self {
            fw,
            model,
            seq: 0,
            deframer: Deframer::new(),
            got: Vec::new(),
            now: 0,
        };
        h.pump();
        h
    }

    /// Moves all queued device bytes to the host side, splitting them into frames.
    fn pump(&mut self) {
        let mut buf = vec![0u8; 777]; // odd size: frames straddle reads
        let mut wire = Vec::new();
        loop {
            let n = self.fw.transmit(&mut buf);
            if n == 0 {
                break;
            }
            wire.extend_from_slice(&buf[..n]);
        }
        for chunk in wire.split_inclusive(|&b| b == 0) {
            let mut ok = None;
            self.deframer.feed_all(
                chunk,
                |f| ok = Some((f.seq(), f.msg_type(), f.payload().to_vec())),
                |e| panic!("device sent a bad frame: {e}"),
            );
            let (seq, ty, payload) = ok.expect("one frame per delimiter");
            self.got.push(Got {
                seq,
                ty,
                payload,
                wire: chunk.to_vec(),
            });
        }
    }

    fn send(&mut self, msg: &Message<'_>) -> u32 {
        let mut out = vec![0u8; MAX_ENCODED_FRAME];
        let n = msg.encode_frame(self.seq, &mut out).unwrap();
        self.seq += 1;
        // Feed in two pieces to exercise chunking.
        let (a, b) = out[..n].split_at(n / 2);
        self.fw.receive(a);
        self.fw.receive(b);
        self.pump();
        self.seq - 1
    }

    fn poll(&mut self) {
        loop {
            let st = self.fw.poll(self.now).expect("poll");
            self.pump();
            if !st.more {
                break;
            }
        }
    }

    /// The reply to request `seq`: (code, arg, detail).
    fn reply(&self, seq: u32) -> (NakCode, u32, String) {
        let replies: Vec<_> = self
            .got
            .iter()
            .filter_map(|g| match g.msg() {
                Message::CommandReply(r) if r.request_seq == seq => {
                    Some((r.code, r.arg, r.detail.to_string()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(replies.len(), 1, "exactly one reply to request {seq}");
        replies[0].clone()
    }

    fn cmd(&mut self, msg: &Message<'_>) -> (NakCode, u32, String) {
        let s = self.send(msg);
        self.reply(s)
    }

    fn of_type(&self, t: MessageType) -> Vec<Got> {
        self.got
            .iter()
            .filter(|g| g.ty == t as u8)
            .cloned()
            .collect()
    }

    /// Every point of `scan_id`, in order, checking batch indices are contiguous.
    fn points(&self, scan_id: u32) -> Vec<Point> {
        let mut pts = Vec::new();
        for g in self.of_type(MessageType::PointBatch) {
            let Message::PointBatch(b) = g.msg() else {
                unreachable!()
            };
            if b.scan_id != scan_id {
                continue;
            }
            assert_eq!(b.first_index as usize, pts.len(), "batches contiguous");
            for p in b.points() {
                pts.push(p.expect("point decodes"));
            }
        }
        pts
    }

    fn done(&self, scan_id: u32) -> Option<(DoneReason, u32)> {
        self.of_type(MessageType::ScanDone)
            .iter()
            .find_map(|g| match g.msg() {
                Message::ScanDone(d) if d.scan_id == scan_id => Some((d.reason, d.total_points)),
                _ => None,
            })
    }

    /// Moves the motor `n` counts in direction `dir`, `dt` ticks per count, with channel `ch`
    /// counting `rate` pulses per count; polls every `poll_every` counts.
    fn move_by(&mut self, n: i64, dt: u64, counts: &[(usize, u32)], poll_every: i64) {
        for i in 0..n.abs() {
            self.model.advance(dt);
            for &(ch, k) in counts {
                self.model.count(ch, k);
            }
            self.model.step(if n > 0 { 1 } else { -1 });
            self.now = self.model.time();
            if (i + 1) % poll_every == 0 {
                self.poll();
            }
        }
        self.poll();
    }
}

fn uniform(start: i64, step: i64, count: u32, mask: u32) -> ScanConfig {
    ScanConfig {
        mode: TriggerMode::StartStepCount,
        direction: Direction::Positive,
        encoding: Encoding::Compact,
        start,
        step,
        count,
        passes: 1,
        channel_mask: mask,
        max_batch_points: 0,
        max_latency_us: 0,
        gate_span: 0,
    }
}

#[test]
fn start_up_sends_device_info_and_checks_the_id() {
    let h = Host::new(model_cfg());
    let info = h.of_type(MessageType::DeviceInfo);
    assert_eq!(info.len(), 1);
    let Message::DeviceInfo(d) = info[0].msg() else {
        unreachable!()
    };
    assert_eq!(
        (d.n_channels, d.counter_bits, d.clock_hz),
        (8, 24, 1_000_000)
    );
    assert_eq!(d.resend_frames as usize, RESEND_FRAMES);

    let model = FpgaModel::new(model_cfg());
    model.set_id(0x1234_5678);
    match Firmware::new(Fpga::new(model.spi(), model.drdy()), Settings::default()) {
        Err(FpgaErr::BadId { expected, actual }) => {
            assert_eq!((expected, actual), (0x464C_5953, 0x1234_5678))
        }
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("accepted a wrong ID"),
    }
}

#[test]
fn uniform_scan_end_to_end_bins_end_on_the_preset_edge() {
    let mut h = Host::new(model_cfg());
    let cfg = uniform(100, 10, 50, 0b1000_0101);
    assert_eq!(h.cmd(&Message::Configure(cfg)).0, NakCode::Ack);
    assert_eq!(h.cmd(&Message::Arm { scan_id: 7 }).0, NakCode::Ack);
    assert_eq!(h.of_type(MessageType::ScanArmed).len(), 1);
    // Rates: ch0 1/count, ch2 3/count, ch7 0, ch1 (disabled) 5/count; 100 ticks per count.
    let rates = [(0, 1), (2, 3), (1, 5)];
    h.move_by(700, 100, &rates, 37);
    let pts = h.points(7);
    assert_eq!(pts.len(), 50);
    assert_eq!(h.done(7), Some((DoneReason::Completed, 50)));
    for (i, p) in pts.iter().enumerate() {
        let preset = 100 + 10 * i as i64;
        assert_eq!(p.position, preset);
        // Edge k (1-based) happens at time 100·k: the preset edge is edge `preset`.
        assert_eq!(p.timestamp, 100 * preset as u64);
        assert_eq!(p.flags.0 & (PointFlags::JUMP | PointFlags::QUAD_ERROR), 0);
        assert!(!p.flags.has(PointFlags::NEGATIVE));
        assert_eq!(p.flags.has(PointFlags::PASS_START), i == 0);
        // The first bin starts at the first edge after Arm (edge 1); others span 10 edges.
        let edges = if i == 0 { preset - 1 } else { 10 } as u32;
        assert_eq!(&p.counts[..], &[edges, 3 * edges, 0], "point {i}");
        assert_eq!(p.live_time, 100 * edges);
    }
    let health = h.of_type(MessageType::Health);
    let Message::Health(last) = health.last().unwrap().msg() else {
        unreachable!()
    };
    assert_eq!(last.state, DeviceState::Configured);
    assert_eq!(last.points, 50);
    assert_eq!(last.position, 592, "position when the last batch left");
    assert_eq!(h.fw.stats().position, 700);
    assert_eq!(
        (last.quad_errors, last.position_jumps, last.fifo_overruns),
        (0, 0, 0)
    );
    // Health comes after ScanDone.
    let done_at = h
        .got
        .iter()
        .position(|g| g.ty == MessageType::ScanDone as u8);
    let health_at = h
        .got
        .iter()
        .rposition(|g| g.ty == MessageType::Health as u8);
    assert!(health_at > done_at);
    // Sequence numbers count up with no gap.
    for (i, g) in h.got.iter().enumerate() {
        assert_eq!(g.seq, i as u32);
    }
}

/// A scan configured with any encoding streams its points in it, and they decode to the same
/// points whatever the encoding.
#[test]
fn every_encoding_streams_the_same_points() {
    let mut all = Vec::new();
    for encoding in Encoding::ALL {
        let mut h = Host::new(model_cfg());
        let cfg = ScanConfig {
            encoding,
            ..uniform(100, 10, 400, 0b1000_0101)
        };
        assert_eq!(h.cmd(&Message::Configure(cfg)).0, NakCode::Ack);
        assert_eq!(h.cmd(&Message::Arm { scan_id: 7 }).0, NakCode::Ack);
        // Uneven rates and speeds, so counts, intervals and live times vary.
        for (i, rates) in [[(0, 1), (2, 3)], [(0, 4), (2, 1)], [(0, 2), (2, 7)]]
            .iter()
            .cycle()
            .take(60)
            .enumerate()
        {
            h.move_by(70, 90 + (i as u64 % 5) * 7, rates, 13);
        }
        let batches = h.of_type(MessageType::PointBatch);
        assert!(batches.len() > 1, "{encoding:?}: several batches");
        for g in &batches {
            let Message::PointBatch(b) = g.msg() else {
                unreachable!()
            };
            assert_eq!(b.encoding, encoding);
        }
        let pts = h.points(7);
        assert_eq!(pts.len(), 400, "{encoding:?}");
        assert_eq!(h.done(7), Some((DoneReason::Completed, 400)));
        all.push((encoding, pts));
    }
    for (encoding, pts) in &all[1..] {
        assert_eq!(pts, &all[0].1, "{encoding:?} against {:?}", all[0].0);
    }
}

#[test]
fn batches_respect_max_points_and_latency() {
    let mut h = Host::new(model_cfg());
    let cfg = ScanConfig {
        max_batch_points: 4,
        max_latency_us: 5_000,
        ..uniform(1, 1, 30, 1)
    };
    h.cmd(&Message::Configure(cfg));
    h.cmd(&Message::Arm { scan_id: 1 });
    // 2 points, then silence: the batch must leave once 5 ms of device time passed.
    h.move_by(2, 10, &[], 1);
    assert!(h.points(1).is_empty(), "sent before the latency budget");
    h.model.advance(5_000);
    h.now = h.model.time();
    h.poll();
    assert_eq!(h.points(1).len(), 2);
    h.move_by(28, 10, &[], 100);
    let batches = h.of_type(MessageType::PointBatch);
    for b in &batches {
        let Message::PointBatch(b) = b.msg() else {
            unreachable!()
        };
        assert!(b.n_points <= 4);
    }
    assert_eq!(h.points(1).len(), 30);
}

#[test]
fn illegal_transition_jump_yields_every_point_flagged() {
    let mut h = Host::new(model_cfg());
    h.cmd(&Message::Configure(uniform(10, 1, 10, 1)));
    h.cmd(&Message::Arm { scan_id: 2 });
    h.move_by(12, 10, &[(0, 1)], 1); // positions 1..=12: presets 10, 11, 12
    // Skip a state: 12 → (illegal) 14, crossing presets 13 and 14 in one edge.
    let gray = [0b00u8, 0b01, 0b11, 0b10];
    h.model.advance(10);
    h.model.count(0, 2);
    h.model.set_ab(gray[14 % 4]);
    h.now = h.model.time();
    h.poll();
    h.move_by(10, 10, &[(0, 1)], 1);
    let pts = h.points(2);
    assert_eq!(pts.len(), 10);
    assert_eq!(
        pts.iter().map(|p| p.position).collect::<Vec<_>>(),
        (10..20).collect::<Vec<_>>()
    );
    let (p13, p14) = (&pts[3], &pts[4]);
    assert!(p13.flags.has(PointFlags::JUMP) && p13.flags.has(PointFlags::QUAD_ERROR));
    assert!(p14.flags.has(PointFlags::JUMP));
    // Both come from the same snapshot: the first carries the bin, the skipped one 0.
    assert_eq!(p13.counts[0], 2);
    assert_eq!(p14.counts[0], 0);
    assert_eq!(p13.timestamp, p14.timestamp);
    assert!(!pts[5].flags.has(PointFlags::JUMP));
    let s = h.fw.stats();
    assert_eq!((s.quad_errors, s.position_jumps), (1, 1));
}

#[test]
fn list_scan_streams_chunks_during_the_scan() {
    let mut h = Host::new(model_cfg());
    const N: u32 = 6000;
    // Non-uniform grid: gaps of 1 and 2 alternating.
    let list: Vec<i64> = (0..N as i64).map(|i| 10 + i + i / 2).collect();
    let cfg = ScanConfig {
        mode: TriggerMode::List,
        ..uniform(0, 1, N, 0b11)
    };
    h.cmd(&Message::Configure(cfg));
    // A host sends chunks sized to the free slots the last ack reported.
    let mut free = 4096usize - 250;
    let mut send_chunks = |h: &mut Host, next: &mut usize| {
        while *next < list.len() && free > 0 {
            let n = 250.min(list.len() - *next).min(free);
            let (code, arg, _) = h.cmd(&Message::PositionChunk {
                offset: *next as u32,
                positions: Positions::Values(&list[*next..*next + n]),
            });
            if code != NakCode::Ack {
                assert_eq!(code, NakCode::Busy);
                return;
            }
            *next += n;
            free = arg as usize;
        }
        // The window frees as points fire; ask again next time.
        free = 250;
    };
    // Arm before the first window is full → ListIncomplete, arg = loaded.
    h.cmd(&Message::PositionChunk {
        offset: 0,
        positions: Positions::Values(&list[..250]),
    });
    let mut next = 250;
    let (code, arg, _) = h.cmd(&Message::Arm { scan_id: 3 });
    assert_eq!((code, arg), (NakCode::ListIncomplete, 250));
    send_chunks(&mut h, &mut next);
    assert_eq!(h.cmd(&Message::Arm { scan_id: 3 }).0, NakCode::Ack);
    let end = *list.last().unwrap() + 5;
    let mut x = 0;
    while x < end {
        h.move_by(100, 10, &[(1, 1)], 100);
        x += 100;
        send_chunks(&mut h, &mut next);
    }
    let pts = h.points(3);
    assert_eq!(pts.len(), N as usize);
    assert!(pts.iter().zip(&list).all(|(p, &l)| p.position == l));
    assert!(pts.iter().all(|p| p.flags.0 & PointFlags::JUMP == 0));
    assert_eq!(h.done(3), Some((DoneReason::Completed, N)));
    assert_eq!(h.fw.counters().list_underruns, 0);
}

#[test]
fn abort_ends_the_scan_and_the_device_can_rearm() {
    let mut h = Host::new(model_cfg());
    h.cmd(&Message::Configure(uniform(5, 5, 100, 1)));
    h.cmd(&Message::Arm { scan_id: 4 });
    h.move_by(22, 10, &[], 1);
    assert_eq!(h.cmd(&Message::Abort).0, NakCode::Ack);
    assert_eq!(h.done(4), Some((DoneReason::Aborted, 4)));
    assert_eq!(
        h.points(4).len(),
        4,
        "latched points are flushed before ScanDone"
    );
    assert_eq!(h.fw.stats().state, DeviceState::Configured);
    assert_eq!(h.cmd(&Message::Arm { scan_id: 5 }).0, NakCode::Ack);
    h.move_by(-22, 10, &[], 1);
    h.move_by(30, 10, &[], 1);
    assert!(h.points(5).is_empty(), "batch waits for its latency budget");
    h.model.advance(10_000);
    h.now = h.model.time();
    h.poll();
    let pts = h.points(5);
    assert_eq!(
        pts.iter().map(|p| p.position).collect::<Vec<_>>(),
        [5, 10, 15, 20, 25, 30]
    );
}

#[test]
fn every_nak_path_leaves_the_device_usable() {
    let mut h = Host::new(model_cfg());
    let list_cfg = ScanConfig {
        mode: TriggerMode::List,
        ..uniform(0, 1, 10, 1)
    };
    let cases: Vec<(Message<'_>, NakCode)> = vec![
        (Message::Arm { scan_id: 1 }, NakCode::NotConfigured),
        (
            Message::PositionChunk {
                offset: 0,
                positions: Positions::Values(&[1]),
            },
            NakCode::NotConfigured,
        ),
        (
            Message::Configure(uniform(0, 0, 10, 1)),
            NakCode::InvalidConfig,
        ),
        (
            Message::Configure(uniform(0, 1, 0, 1)),
            NakCode::InvalidConfig,
        ),
        (
            Message::Configure(uniform(0, 1, 10, 1 << 8)),
            NakCode::InvalidConfig,
        ),
        (
            Message::Configure(ScanConfig {
                passes: 2,
                direction: Direction::Bidirectional,
                mode: TriggerMode::List,
                ..uniform(0, 1, 5000, 1)
            }),
            NakCode::InvalidConfig,
        ),
        (Message::Health(Default::default()), NakCode::UnknownCommand),
    ];
    for (m, want) in &cases {
        assert_eq!(h.cmd(m).0, *want, "{m:?}");
    }
    // Configure error arguments identify the check.
    assert_eq!(h.cmd(&Message::Configure(uniform(0, 0, 10, 1))).1, 3);
    // Unknown type and a malformed payload.
    let mut out = vec![0u8; 64];
    let n = flyscan_protocol::encode_frame(0x55, 900, &[], &mut out).unwrap();
    h.fw.receive(&out[..n]);
    let n = flyscan_protocol::encode_frame(MessageType::Arm as u8, 901, &[1, 2], &mut out).unwrap();
    h.fw.receive(&out[..n]);
    h.pump();
    assert_eq!(h.reply(900).0, NakCode::UnknownCommand);
    let (code, _, detail) = h.reply(901);
    assert_eq!(code, NakCode::Malformed);
    assert!(!detail.is_empty());
    // A corrupted frame: counted, not answered.
    let n = Message::Ping { token: 1 }
        .encode_frame(902, &mut out)
        .unwrap();
    out[3] ^= 0x40;
    h.fw.receive(&out[..n]);
    h.pump();
    assert_eq!(h.fw.stats().rx_errors, 1);
    assert!(
        h.got
            .iter()
            .all(|g| !matches!(g.msg(), Message::CommandReply(r) if r.request_seq == 902))
    );

    // List mode chunk errors.
    assert_eq!(h.cmd(&Message::Configure(list_cfg)).0, NakCode::Ack);
    let (code, arg, _) = h.cmd(&Message::PositionChunk {
        offset: 3,
        positions: Positions::Values(&[1]),
    });
    assert_eq!((code, arg), (NakCode::BadChunk, 0));
    let (code, arg, _) = h.cmd(&Message::PositionChunk {
        offset: 0,
        positions: Positions::Values(&[0; 11]),
    });
    assert_eq!((code, arg), (NakCode::BadChunk, 0), "past the list end");
    assert_eq!(
        h.cmd(&Message::Arm { scan_id: 1 }).0,
        NakCode::ListIncomplete
    );
    // Chunk in uniform mode.
    h.cmd(&Message::Configure(uniform(10, 10, 3, 1)));
    assert_eq!(
        h.cmd(&Message::PositionChunk {
            offset: 0,
            positions: Positions::Values(&[1]),
        })
        .0,
        NakCode::BadChunk
    );
    // Busy while armed.
    assert_eq!(h.cmd(&Message::Arm { scan_id: 9 }).0, NakCode::Ack);
    assert_eq!(h.cmd(&Message::Arm { scan_id: 9 }).0, NakCode::Busy);
    assert_eq!(
        h.cmd(&Message::Configure(uniform(0, 1, 1, 1))).0,
        NakCode::Busy
    );
    let naks = h.fw.stats().naks;
    assert!(naks >= 15, "naks counted: {naks}");
    // And the device still scans.
    h.move_by(40, 10, &[(0, 2)], 3);
    let pts = h.points(9);
    assert_eq!(pts.len(), 3);
    assert_eq!(pts[1].counts[0], 20);
    assert_eq!(h.cmd(&Message::Ping { token: 77 }).0, NakCode::Ack);
    assert!(
        h.got
            .iter()
            .any(|g| matches!(g.msg(), Message::Pong { token: 77, .. }))
    );
}

#[test]
fn resend_is_byte_identical_and_reports_evicted_frames() {
    let mut h = Host::new(model_cfg());
    h.cmd(&Message::Configure(uniform(1, 1, 40, 0xFF)));
    h.cmd(&Message::Arm { scan_id: 6 });
    h.move_by(45, 10, &[(0, 3), (5, 1)], 1);
    let originals = h.got.clone();
    let first = originals[2].seq;
    let last = originals[originals.len() - 1].seq;
    let before = h.got.len();
    let (code, _, _) = h.cmd(&Message::ResendRequest {
        first_seq: first,
        last_seq: last,
    });
    assert_eq!(code, NakCode::Ack);
    // Everything after the request except its own reply (which has a new, higher seq).
    let resent: Vec<_> = h.got[before..].iter().filter(|g| g.seq <= last).collect();
    assert_eq!(resent.len(), (last - first + 1) as usize);
    for (r, o) in resent.iter().zip(&originals[2..]) {
        assert_eq!(r.wire, o.wire, "seq {}", o.seq);
    }
    assert_eq!(h.fw.stats().resends, u64::from(last - first + 1));

    // Push the early frames out of the ring, then ask for them.
    for t in 0..(RESEND_FRAMES as u32) {
        h.send(&Message::Ping { token: t });
        if t % 64 == 0 {
            h.got.clear();
        }
    }
    let (code, arg, _) = h.cmd(&Message::ResendRequest {
        first_seq: 0,
        last_seq: 3,
    });
    assert_eq!(code, NakCode::ResendUnavailable);
    assert!(arg > 3);
    assert_eq!(h.fw.stats().resend_misses, 4);
    // The ring still answers for frames it holds.
    // (arg is the oldest held when the request was handled; the nak itself may push out more.)
    let (code, _, _) = h.cmd(&Message::ResendRequest {
        first_seq: arg + 16,
        last_seq: arg + 16,
    });
    assert_eq!(code, NakCode::Ack);
}

#[test]
fn slow_serial_line_backpressures_into_counted_fpga_overruns() {
    let cfg = ModelConfig {
        fifo_depth: 64,
        snapshot_depth: 64,
        ..model_cfg()
    };
    let mut h = Host::new(cfg);
    const N: u32 = 20_000;
    let scfg = ScanConfig {
        encoding: Encoding::Raw,
        ..uniform(1, 1, N, 0xFF)
    };
    h.cmd(&Message::Configure(scfg));
    h.cmd(&Message::Arm { scan_id: 8 });
    // Move half the scan with the serial line stalled: poll but never transmit.
    let mut max_queued = 0;
    for _ in 0..N / 2 {
        h.model.advance(10);
        h.model.count(3, 1);
        h.model.step(1);
        h.now = h.model.time();
        if h.model.fifo_level() >= 32 {
            h.fw.poll(h.now).unwrap();
            max_queued = max_queued.max(h.fw.tx_queued());
        }
    }
    assert!(max_queued <= TX_BYTES);
    assert!(h.fw.counters().tx_stalls > 0);
    // Serial line back: the rest of the scan runs normally. Lost edges are only seen (and the
    // position resynchronised) with the next edge the FIFO keeps.
    h.move_by(i64::from(N / 2 + 10), 10, &[(3, 1)], 16);
    let pts = h.points(8);
    assert_eq!(pts.len(), N as usize);
    assert_eq!(h.done(8), Some((DoneReason::Completed, N)));
    assert!(pts.iter().any(|p| p.flags.has(PointFlags::JUMP)));
    let s = h.fw.stats();
    assert!(s.fifo_overruns > 0, "overruns must be counted");
    assert!(s.position_jumps > 0);
    assert_eq!(
        s.position,
        i64::from(N + 10),
        "position resynchronised after the overrun"
    );
    assert!(h.fw.counters().lost_edges > 0);
    // Counts are never invented: per-bin counts sum to at most the pulses sent.
    let total: u64 = pts.iter().map(|p| u64::from(p.counts[3])).sum();
    assert!(total <= u64::from(N + 10));
}

// ---- time mode ------------------------------------------------------------------------------

fn timed(period: i64, count: u32, mask: u32) -> ScanConfig {
    ScanConfig {
        mode: TriggerMode::Time,
        direction: Direction::Either,
        encoding: Encoding::Compact,
        start: 0,
        step: period,
        count,
        passes: 1,
        channel_mask: mask,
        max_batch_points: 0,
        max_latency_us: 0,
        gate_span: 0,
    }
}

/// The motion and detector stimulus of the time-mode tests, tick by tick, with an account of
/// it kept by the test itself: the position after each tick's step, and channel 0's pulses.
struct Drive {
    /// Position after every tick (index = tick − the tick the drive started at).
    positions: Vec<i64>,
    /// Cumulative pulses of channel 0 the drive counted before each tick (index as above).
    pulses_before: Vec<u64>,
    first: u64,
    x: i64,
    total: u64,
}

impl Drive {
    fn new(h: &Host) -> Self {
        Self {
            positions: vec![h.fw.position()],
            pulses_before: vec![0],
            first: h.model.time(),
            x: h.fw.position(),
            total: 0,
        }
    }

    /// `ticks` more ticks: in each, a step `dir(t)` (−1, 0, +1) on the tick itself and
    /// `t % 3` pulses on channel 0 (counted after the tick's own events, so they belong to the
    /// next period); polls every `poll_every` ticks (0: never).
    fn run(&mut self, h: &mut Host, ticks: u64, dir: impl Fn(u64) -> i32, poll_every: u64) {
        for _ in 0..ticks {
            h.model.advance(1);
            let t = h.model.time();
            self.pulses_before.push(self.total);
            let d = dir(t);
            if d != 0 {
                h.model.step(d);
                self.x += i64::from(d);
            }
            self.positions.push(self.x);
            let n = (t % 3) as u32;
            h.model.count(0, n);
            self.total += u64::from(n);
            h.now = t;
            if poll_every > 0 && t.is_multiple_of(poll_every) {
                h.poll();
            }
        }
        h.poll();
    }

    fn position_at(&self, t: u64) -> i64 {
        self.positions[(t - self.first) as usize]
    }

    /// Channel 0's pulses in the cycles `from..to`.
    fn pulses(&self, from: u64, to: u64) -> u32 {
        let at = |t: u64| self.pulses_before[(t - self.first) as usize];
        (at(to) - at(from)) as u32
    }
}

#[test]
fn time_scan_takes_a_point_every_period_with_its_own_bin() {
    let mut h = Host::new(model_cfg());
    assert_eq!(
        h.cmd(&Message::Configure(timed(100, 6, 0b11))).0,
        NakCode::Ack
    );
    assert_eq!(h.cmd(&Message::Arm { scan_id: 4 }).0, NakCode::Ack);
    assert_eq!(h.model.period(), 0, "the timer starts at the next poll");
    h.model.advance(5);
    h.now = h.model.time();
    h.poll();
    let arm = h.model.time();
    assert_eq!(h.model.period(), 100);
    let mut drive = Drive::new(&h);
    // Up one count every 7 ticks, then down every 5 ticks from tick arm + 350 on.
    let turn = arm + 350;
    drive.run(
        &mut h,
        800,
        |t| match t {
            t if t < turn && t.is_multiple_of(7) => 1,
            t if t >= turn && t.is_multiple_of(5) => -1,
            _ => 0,
        },
        10,
    );
    let pts = h.points(4);
    assert_eq!(pts.len(), 6);
    assert_eq!(h.done(4), Some((DoneReason::Completed, 6)));
    assert_eq!(h.model.period(), 0, "the timer is stopped at the end");
    for (i, p) in pts.iter().enumerate() {
        let k = i as u64 + 1;
        let t = arm + 100 * k;
        assert_eq!(
            p.timestamp, t,
            "point {i}: period event k at arm + k × period"
        );
        assert_eq!(
            p.position,
            drive.position_at(t),
            "point {i}: the position at its tick"
        );
        assert_eq!(p.live_time, 100, "point {i}: the gate is always open");
        assert_eq!(
            &p.counts[..],
            &[drive.pulses(t - 100, t), 0],
            "point {i}: the pulses of exactly the period before it"
        );
        let negative = t >= turn;
        assert_eq!(p.flags.has(PointFlags::NEGATIVE), negative, "point {i}");
        assert_eq!(p.flags.has(PointFlags::PASS_START), i == 0, "point {i}");
        assert_eq!(p.flags.0 & (PointFlags::JUMP | PointFlags::QUAD_ERROR), 0);
    }
    assert!(
        pts.iter()
            .any(|p| p.timestamp >= turn && p.timestamp.is_multiple_of(5)),
        "a step on a period event's tick (its point's position includes it, checked above)"
    );
    let stats = h.fw.stats();
    assert_eq!((stats.points, stats.fifo_overruns), (6, 0));
}

#[test]
fn time_scan_takes_points_only_inside_the_window() {
    let mut h = Host::new(model_cfg());
    let cfg = ScanConfig {
        start: 20,
        gate_span: 20,
        ..timed(50, 4, 0b1)
    };
    assert_eq!(h.cmd(&Message::Configure(cfg)).0, NakCode::Ack);
    assert_eq!(h.cmd(&Message::Arm { scan_id: 5 }).0, NakCode::Ack);
    h.poll();
    let arm = h.model.time();
    let mut drive = Drive::new(&h);
    // Up one count every 10 ticks: position 20 at tick arm + 200, 40 at arm + 400.
    drive.run(&mut h, 1000, |t| i32::from((t - arm).is_multiple_of(10)), 7);
    let pts = h.points(5);
    let want: Vec<u64> = (1..=20)
        .map(|k| arm + 50 * k)
        .filter(|&t| (20..=40).contains(&drive.position_at(t)))
        .take(4)
        .collect();
    assert_eq!(want.len(), 4);
    assert_eq!(
        pts.iter().map(|p| p.timestamp).collect::<Vec<_>>(),
        want,
        "the period events whose position is in 20 … 40"
    );
    for (p, &t) in pts.iter().zip(&want) {
        assert!((20..=40).contains(&p.position));
        assert_eq!(p.live_time, 50, "each point's bin is its own period");
        assert_eq!(p.counts[0], drive.pulses(t - 50, t));
    }
    assert!(pts[0].flags.has(PointFlags::PASS_START));
    assert_eq!(h.done(5), Some((DoneReason::Completed, 4)));
}

#[test]
fn time_mode_configuration_is_checked() {
    let mut h = Host::new(model_cfg());
    // 1 MHz: the shortest period is 10 µs = 10 ticks.
    let (code, arg, detail) = h.cmd(&Message::Configure(timed(9, 5, 1)));
    assert_eq!((code, arg), (NakCode::InvalidConfig, 14), "{detail}");
    assert_eq!(h.cmd(&Message::Configure(timed(10, 5, 1))).0, NakCode::Ack);
    let (code, arg, _) = h.cmd(&Message::Configure(ScanConfig {
        direction: Direction::Positive,
        ..timed(100, 5, 1)
    }));
    assert_eq!((code, arg), (NakCode::InvalidConfig, 13));
    let (code, arg, _) = h.cmd(&Message::Configure(ScanConfig {
        gate_span: 5,
        ..uniform(0, 1, 5, 1)
    }));
    assert_eq!((code, arg), (NakCode::InvalidConfig, 15));
    let (code, arg, _) = h.cmd(&Message::PositionChunk {
        offset: 0,
        positions: Positions::Values(&[1, 2]),
    });
    assert_eq!((code, arg), (NakCode::BadChunk, 0), "no list in time mode");

    // A design without the period timer (1.0) cannot run time mode.
    let model = FpgaModel::new(model_cfg());
    model.set_version(0x0001_0000);
    let fw =
        Box::new(Firmware::new(Fpga::new(model.spi(), model.drdy()), Settings::default()).unwrap());
    let mut old = Host {
        fw,
        model,
        seq: 0,
        deframer: Deframer::new(),
        got: Vec::new(),
        now: 0,
    };
    old.pump();
    let (code, arg, detail) = old.cmd(&Message::Configure(timed(100, 5, 1)));
    assert_eq!((code, arg), (NakCode::InvalidConfig, 14));
    assert!(detail.contains("no period timer"), "{detail}");
    assert_eq!(
        old.cmd(&Message::Configure(uniform(0, 1, 5, 1))).0,
        NakCode::Ack,
        "position modes still work"
    );
}

#[test]
fn abort_stops_the_timer_and_a_rearm_ignores_the_old_periods() {
    let mut h = Host::new(model_cfg());
    assert_eq!(
        h.cmd(&Message::Configure(timed(100, 50, 1))).0,
        NakCode::Ack
    );
    assert_eq!(h.cmd(&Message::Arm { scan_id: 1 }).0, NakCode::Ack);
    h.poll();
    let first_arm = h.model.time();
    // Two periods pass unread; then Abort and Arm again before the device polls: the old
    // scan's start and period events are still in the FIFO.
    h.model.advance(250);
    h.now = h.model.time();
    assert_eq!(
        h.model.fifo_level(),
        2,
        "periods 1 and 2 (the poll took the start event)"
    );
    assert_eq!(h.cmd(&Message::Abort).0, NakCode::Ack);
    assert_eq!(h.done(1), Some((DoneReason::Aborted, 0)));
    assert_eq!(h.cmd(&Message::Arm { scan_id: 2 }).0, NakCode::Ack);
    h.poll();
    let arm = h.model.time();
    assert!(arm > first_arm + 200);
    let mut drive = Drive::new(&h);
    drive.run(&mut h, 5000, |_| 0, 50);
    let pts = h.points(2);
    assert_eq!(pts.len(), 50);
    for (i, p) in pts.iter().enumerate() {
        assert_eq!(p.timestamp, arm + 100 * (i as u64 + 1), "point {i}");
        assert_eq!(p.live_time, 100);
    }
    // Abort of a running time scan stops the timer.
    assert_eq!(h.cmd(&Message::Arm { scan_id: 3 }).0, NakCode::Ack);
    h.poll();
    assert_eq!(h.model.period(), 100);
    assert_eq!(h.cmd(&Message::Abort).0, NakCode::Ack);
    h.poll();
    assert_eq!(h.model.period(), 0);
    assert_eq!(h.done(3), Some((DoneReason::Aborted, 0)));
}

#[test]
fn dropped_period_events_make_no_point_and_the_next_bin_spans_them() {
    let mut h = Host::new(ModelConfig {
        fifo_depth: 4,
        ..model_cfg()
    });
    assert_eq!(h.cmd(&Message::Configure(timed(100, 8, 1))).0, NakCode::Ack);
    assert_eq!(h.cmd(&Message::Arm { scan_id: 9 }).0, NakCode::Ack);
    h.poll();
    let arm = h.model.time();
    let mut drive = Drive::new(&h);
    // 750 ticks unread (the arm's poll took the start event): periods 1–4 fill the FIFO,
    // periods 5–7 are dropped.
    drive.run(&mut h, 750, |_| 0, 0);
    drive.run(&mut h, 1000, |_| 0, 10);
    let pts = h.points(9);
    let ticks: Vec<u64> = pts.iter().map(|p| (p.timestamp - arm) / 100).collect();
    assert_eq!(ticks, [1, 2, 3, 4, 8, 9, 10, 11]);
    for (p, k) in pts.iter().zip(&ticks) {
        let t = arm + 100 * k;
        let spans: u64 = if *k == 8 { 4 } else { 1 };
        assert_eq!(u64::from(p.live_time), 100 * spans, "period {k}");
        assert_eq!(p.counts[0], drive.pulses(t - 100 * spans, t), "period {k}");
        assert_eq!(p.flags.has(PointFlags::JUMP), *k == 8, "period {k}");
    }
    let c = h.fw.counters();
    assert_eq!((c.lost_periods, c.lost_edges), (3, 0));
    assert!(h.fw.stats().fifo_overruns >= 1);
}
