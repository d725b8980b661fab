//! Assembler tests: byte streams made with the protocol crate, no sockets.

use super::*;
use flyscan_protocol::limits::MAX_ENCODED_FRAME;
use flyscan_protocol::{
    BatchWriter, DoneReason, Encoding, Point, PointBatch, PointFlags, ScanArmed, ScanConfig,
    ScanDone,
};

const RESEND: u32 = 8;

fn info() -> DeviceInfo {
    DeviceInfo {
        protocol_version: flyscan_protocol::PROTOCOL_VERSION,
        n_channels: 2,
        clock_hz: 1000,
        resend_frames: RESEND,
        max_points: 1000,
        list_window: 16,
        boot_id: 0xb007,
        ..Default::default()
    }
}

fn frame(seq: u32, msg: &Message<'_>) -> Vec<u8> {
    let mut out = vec![0u8; MAX_ENCODED_FRAME];
    let n = msg.encode_frame(seq, &mut out).expect("encode");
    out.truncate(n);
    out
}

fn point(i: u32) -> Point {
    let mut p = Point {
        position: i64::from(i) * 3,
        timestamp: u64::from(i) * 10,
        live_time: 9,
        flags: PointFlags(0),
        counts: Default::default(),
    };
    let _ = p.counts.push(i);
    let _ = p.counts.push(i + 1);
    p
}

fn batch(seq: u32, scan_id: u32, first: u32, n: u32) -> Vec<u8> {
    let mut w = BatchWriter::new(Encoding::Compact, 0b11, 0);
    for i in first..first + n {
        w.push(&point(i)).expect("push");
    }
    frame(
        seq,
        &Message::PointBatch(PointBatch::from_writer(scan_id, first, &w)),
    )
}

fn armed(seq: u32, scan_id: u32) -> Vec<u8> {
    frame(
        seq,
        &Message::ScanArmed(ScanArmed {
            scan_id,
            config: ScanConfig {
                count: 10,
                channel_mask: 0b11,
                ..Default::default()
            },
        }),
    )
}

fn done(seq: u32, scan_id: u32, total: u32) -> Vec<u8> {
    frame(
        seq,
        &Message::ScanDone(ScanDone {
            scan_id,
            total_points: total,
            reason: DoneReason::Completed,
            error_code: 0,
        }),
    )
}

fn nak_unavailable(seq: u32, oldest: u32) -> Vec<u8> {
    frame(
        seq,
        &Message::CommandReply(CommandReply::nak(
            0,
            MessageType::ResendRequest as u8,
            NakCode::ResendUnavailable,
            oldest,
            format_args!("gone"),
        )),
    )
}

fn synced(now: Instant, seq: u32) -> Assembler {
    let mut a = Assembler::default();
    let mut ev = Vec::new();
    a.tick(now, &mut ev);
    assert_eq!(ev, vec![Event::Send(HostMessage::GetInfo)]);
    ev.clear();
    a.push_bytes(&frame(seq, &Message::DeviceInfo(info())), now, &mut ev);
    // Look-back recovery asks for the rest of the ring before the DeviceInfo (never before
    // seq 0); pretend it is empty.
    let look_back = seq.min(RESEND - 1);
    let requests: Vec<_> = ev
        .iter()
        .filter(|e| matches!(e, Event::Send(HostMessage::ResendRequest { .. })))
        .collect();
    if look_back == 0 {
        assert!(requests.is_empty(), "{requests:?}");
    } else {
        assert_eq!(
            requests,
            vec![&Event::Send(HostMessage::ResendRequest {
                first_seq: seq - look_back,
                last_seq: seq - 1
            })]
        );
    }
    ev.clear();
    a.push_bytes(&nak_unavailable(seq.wrapping_add(1), seq), now, &mut ev);
    assert!(!a.has_gap());
    a
}

fn data(ev: &[Event]) -> Vec<Message<'_>> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Data(f) => Some(f.message().expect("valid")),
            _ => None,
        })
        .collect()
}

fn batches(ev: &[Event]) -> Vec<(u32, usize)> {
    data(ev)
        .into_iter()
        .filter_map(|m| match m {
            Message::PointBatch(b) => Some((b.first_index, usize::from(b.n_points))),
            _ => None,
        })
        .collect()
}

fn armed_ids(ev: &[Event]) -> Vec<u32> {
    data(ev)
        .into_iter()
        .filter_map(|m| match m {
            Message::ScanArmed(a) => Some(a.scan_id),
            _ => None,
        })
        .collect()
}

#[test]
fn stream_in_any_chunking_gives_ordered_events() {
    let t = Instant::now();
    let mut a = synced(t, 100);
    let mut bytes = armed(102, 5);
    bytes.extend(batch(103, 5, 0, 4));
    bytes.extend(batch(104, 5, 4, 6));
    bytes.extend(done(105, 5, 10));
    let mut ev = Vec::new();
    for chunk in bytes.chunks(7) {
        a.push_bytes(chunk, t, &mut ev);
    }
    assert_eq!(armed_ids(&ev), vec![5]);
    assert_eq!(batches(&ev), vec![(0, 4), (4, 6)]);
    assert!(matches!(
        data(&ev).last(),
        Some(Message::ScanDone(ScanDone {
            total_points: 10,
            ..
        }))
    ));
    assert_eq!(a.stats().link_errors, 0);
}

#[test]
fn gap_is_requested_and_resend_restores_order() {
    let t = Instant::now();
    let mut a = synced(t, 0);
    let mut ev = Vec::new();
    a.push_bytes(&armed(2, 1), t, &mut ev);
    a.push_bytes(&batch(3, 1, 0, 2), t, &mut ev);
    // Frame 4 is dropped on the line.
    ev.clear();
    a.push_bytes(&batch(5, 1, 4, 2), t, &mut ev);
    assert_eq!(batches(&ev), vec![]);
    assert!(ev.contains(&Event::Send(HostMessage::ResendRequest {
        first_seq: 4,
        last_seq: 4
    })));
    ev.clear();
    a.push_bytes(&batch(4, 1, 2, 2), t, &mut ev);
    assert_eq!(batches(&ev), vec![(2, 2), (4, 2)]);
    // A second copy of the resent frame is a duplicate.
    ev.clear();
    a.push_bytes(&batch(4, 1, 2, 2), t, &mut ev);
    assert_eq!(batches(&ev), vec![]);
    assert_eq!(a.stats().duplicates, 1);
}

#[test]
fn nak_resend_unavailable_declares_frames_lost() {
    let t = Instant::now();
    let mut a = synced(t, 0);
    let mut ev = Vec::new();
    a.push_bytes(&armed(2, 1), t, &mut ev);
    a.push_bytes(&batch(5, 1, 4, 2), t, &mut ev);
    ev.clear();
    a.push_bytes(&nak_unavailable(6, 5), t, &mut ev);
    assert!(ev.contains(&Event::FramesLost {
        first_seq: 3,
        count: 2
    }));
    assert_eq!(batches(&ev), vec![(4, 2)]);
}

#[test]
fn corrupt_bytes_are_counted_and_data_survives() {
    let t = Instant::now();
    let mut a = synced(t, 0);
    let mut ev = Vec::new();
    let mut bad = batch(2, 1, 0, 3);
    bad[5] ^= 0x40;
    a.push_bytes(&bad, t, &mut ev);
    assert_eq!(a.stats().link_errors, 1);
    a.push_bytes(&batch(3, 1, 3, 3), t, &mut ev);
    assert!(ev.contains(&Event::Send(HostMessage::ResendRequest {
        first_seq: 2,
        last_seq: 2
    })));
    ev.clear();
    a.push_bytes(&batch(2, 1, 0, 3), t, &mut ev);
    assert_eq!(batches(&ev), vec![(0, 3), (3, 3)]);
}

#[test]
fn startup_mid_scan_recovers_from_scan_armed() {
    let t = Instant::now();
    let mut a = Assembler::default();
    let mut ev = Vec::new();
    a.tick(t, &mut ev);
    // Frames of a running scan arrive before the DeviceInfo: dropped for now.
    a.push_bytes(&batch(41, 9, 2, 2), t, &mut ev);
    ev.clear();
    a.push_bytes(&frame(42, &Message::DeviceInfo(info())), t, &mut ev);
    assert!(ev.contains(&Event::Send(HostMessage::ResendRequest {
        first_seq: 35,
        last_seq: 41
    })));
    // The device holds 39..41: ScanArmed at 39, batches at 40 and 41.
    ev.clear();
    a.push_bytes(&nak_unavailable(43, 39), t, &mut ev);
    a.push_bytes(&armed(39, 9), t, &mut ev);
    a.push_bytes(&batch(40, 9, 0, 2), t, &mut ev);
    a.push_bytes(&batch(41, 9, 2, 2), t, &mut ev);
    assert_eq!(armed_ids(&ev), vec![9]);
    assert_eq!(batches(&ev), vec![(0, 2), (2, 2)]);
    assert!(
        ev.iter()
            .all(|e| !matches!(e, Event::Data(f) if !f.recovered)),
        "frames from before the sync point are marked recovered"
    );
    // Frames after the sync point are not.
    ev.clear();
    a.push_bytes(&batch(44, 9, 4, 2), t, &mut ev);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Data(f) if !f.recovered))
    );
}

#[test]
fn unanswered_resends_go_on_until_the_frame_leaves_the_device_ring() {
    let t = Instant::now();
    let mut a = synced(t, 0);
    let mut ev = Vec::new();
    a.push_bytes(&batch(3, 1, 2, 2), t, &mut ev);
    let mut now = t;
    let mut requests = 0;
    for _ in 0..20 {
        now += Duration::from_millis(300);
        ev.clear();
        a.tick(now, &mut ev);
        requests += ev
            .iter()
            .filter(|e| matches!(e, Event::Send(HostMessage::ResendRequest { .. })))
            .count();
        assert!(!ev.iter().any(|e| matches!(e, Event::FramesLost { .. })));
    }
    assert!(requests >= 10, "{requests} requests in 6 s");
    // RESEND newer frames later the device cannot hold frame 2 any more.
    ev.clear();
    for q in 4..2 + RESEND {
        a.push_bytes(&batch(q, 1, 2 * (q - 2), 2), now, &mut ev);
    }
    assert!(!ev.iter().any(|e| matches!(e, Event::FramesLost { .. })));
    a.push_bytes(&batch(2 + RESEND, 1, 2 * RESEND, 2), now, &mut ev);
    assert!(ev.contains(&Event::FramesLost {
        first_seq: 2,
        count: 1
    }));
    assert_eq!(batches(&ev).first(), Some(&(2, 2)));
}

#[test]
fn startup_look_back_never_asks_before_seq_zero() {
    let t = Instant::now();
    let mut a = Assembler::default();
    let mut ev = Vec::new();
    a.tick(t, &mut ev);
    ev.clear();
    a.push_bytes(&frame(3, &Message::DeviceInfo(info())), t, &mut ev);
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, Event::Send(_)))
            .collect::<Vec<_>>(),
        vec![&Event::Send(HostMessage::ResendRequest {
            first_seq: 0,
            last_seq: 2
        })]
    );
    a.push_bytes(&armed(0, 4), t, &mut ev);
    a.push_bytes(&batch(1, 4, 0, 2), t, &mut ev);
    a.push_bytes(&batch(2, 4, 2, 2), t, &mut ev);
    assert_eq!(batches(&ev), vec![(0, 2), (2, 2)]);
    assert!(!ev.iter().any(|e| matches!(e, Event::FramesLost { .. })));
}

#[test]
fn busy_nak_backs_off_and_asks_again() {
    let t = Instant::now();
    let mut a = synced(t, 0);
    let mut ev = Vec::new();
    a.push_bytes(&batch(3, 1, 2, 2), t, &mut ev);
    assert!(ev.contains(&Event::Send(HostMessage::ResendRequest {
        first_seq: 2,
        last_seq: 2
    })));
    ev.clear();
    let busy = frame(
        4,
        &Message::CommandReply(CommandReply::nak(
            0,
            MessageType::ResendRequest as u8,
            NakCode::Busy,
            0,
            format_args!("busy"),
        )),
    );
    a.push_bytes(&busy, t, &mut ev);
    // Well before the resend timeout, once the back-off is over, frame 2 is asked again.
    let mut asked_at = None;
    for i in 1..=10u64 {
        ev.clear();
        a.tick(t + Duration::from_millis(20 * i), &mut ev);
        if ev.contains(&Event::Send(HostMessage::ResendRequest {
            first_seq: 2,
            last_seq: 2,
        })) {
            asked_at = Some(20 * i);
            break;
        }
    }
    let asked_at = asked_at.unwrap_or(u64::MAX);
    assert!(
        (SequencerConfig::default().busy_backoff.as_millis() as u64
            ..SequencerConfig::default().resend_timeout.as_millis() as u64)
            .contains(&asked_at),
        "asked again after {asked_at} ms"
    );
}

#[test]
fn a_new_session_resyncs_at_once() {
    let t = Instant::now();
    let mut a = synced(t, 5000);
    let mut ev = Vec::new();
    let restarted = DeviceInfo {
        boot_id: 0xb008,
        ..info()
    };
    a.push_bytes(&frame(0, &Message::DeviceInfo(restarted)), t, &mut ev);
    assert!(ev.contains(&Event::SessionStarted {
        boot_id: 0xb008,
        previous: Some(0xb007)
    }));
    ev.clear();
    a.push_bytes(&armed(1, 3), t, &mut ev);
    assert_eq!(armed_ids(&ev), vec![3]);
    assert!(!a.has_gap());
}

#[test]
fn a_health_of_a_new_session_asks_for_its_device_info() {
    let t = Instant::now();
    let mut a = synced(t, 50);
    let mut ev = Vec::new();
    let h = flyscan_protocol::Health {
        boot_id: 0xb009,
        ..Default::default()
    };
    a.push_bytes(&frame(7, &Message::Health(h)), t, &mut ev);
    assert!(ev.contains(&Event::SessionStarted {
        boot_id: 0xb009,
        previous: Some(0xb007)
    }));
    assert!(a.device_info().is_none());
    ev.clear();
    a.tick(t + Duration::from_millis(10), &mut ev);
    assert!(ev.contains(&Event::Send(HostMessage::GetInfo)));
}

#[test]
fn the_sequence_going_back_in_a_session_is_reported() {
    let t = Instant::now();
    let mut a = synced(t, 5000);
    let mut ev = Vec::new();
    for q in 100..120 {
        a.push_bytes(&batch(q, 1, 0, 1), t, &mut ev);
    }
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::SeqWentBack { expected: 5002, got } if *got >= 100)),
        "{ev:?}"
    );
}

#[test]
fn garbage_never_panics() {
    let t = Instant::now();
    let mut a = synced(t, 0);
    let mut ev = Vec::new();
    let mut x: u32 = 12345;
    let junk: Vec<u8> = (0..20000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    a.push_bytes(&junk, t, &mut ev);
    a.tick(t + Duration::from_secs(5), &mut ev);
    assert!(a.stats().link_errors > 0);
}
