//! Round trips: every message through emit/parse and through a wire frame and the deframer;
//! points in every encoding through the whole host path.

mod common;

use common::*;
use flyscan_protocol::{Encoding, Message, PointBatch};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn message_emit_parse(owned in arb_message()) {
        let msg = owned.message();
        let bytes = payload(&msg);
        let back = Message::parse(msg.msg_type() as u8, &bytes);
        prop_assert_eq!(back, Ok(msg));
    }

    #[test]
    fn message_through_frame_and_deframer(owned in arb_message(), seq: u32) {
        let msg = owned.message();
        let w = wire(&msg, seq);
        prop_assert_eq!(w.iter().filter(|&&b| b == 0).count(), 1, "one delimiter, at the end");
        prop_assert_eq!(w.last(), Some(&0));
        let events = deframe(&w);
        let got = frames(&events);
        prop_assert_eq!(events.len(), 1);
        prop_assert_eq!(got.len(), 1);
        prop_assert_eq!(got[0].seq, seq);
        prop_assert_eq!(got[0].msg_type, msg.msg_type() as u8);
        prop_assert_eq!(Message::parse(got[0].msg_type, &got[0].payload), Ok(msg));
    }

    /// A truncated payload never parses as the same message (every field is needed).
    #[test]
    fn message_truncated_payload_rejected(owned in arb_message()) {
        let msg = owned.message();
        let bytes = payload(&msg);
        for cut in 0..bytes.len() {
            prop_assert!(Message::parse(msg.msg_type() as u8, &bytes[..cut]).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(Message::parse(msg.msg_type() as u8, &longer).is_err());
    }
}

/// Sends `points` in batches of `encoding` over frames and decodes them the way the host does.
fn through_host_path(
    encoding: Encoding,
    mask: u32,
    max_points: u16,
    points: &[flyscan_protocol::Point],
) -> Vec<flyscan_protocol::Point> {
    let mut stream = Vec::new();
    let mut n_batches = 0;
    for (seq, (first, w)) in batches(encoding, mask, max_points, points)
        .iter()
        .enumerate()
    {
        let b = PointBatch::from_writer(7, *first, w);
        stream.extend_from_slice(&wire(&Message::PointBatch(b), seq as u32));
        n_batches += 1;
    }
    let events = deframe(&stream);
    assert_eq!(events.len(), n_batches, "only good frames");
    let mut out = Vec::new();
    for f in frames(&events) {
        let Ok(Message::PointBatch(b)) = Message::parse(f.msg_type, &f.payload) else {
            panic!("frame {} is not a point batch", f.seq);
        };
        assert_eq!(b.first_index as usize, out.len(), "batches are consecutive");
        assert_eq!(b.channel_mask, mask);
        assert_eq!(b.encoding, encoding);
        for p in b.points() {
            out.push(p.expect("points decode"));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn points_roundtrip_raw((mask, points) in arb_mask_and_points(40), max in 0u16..8) {
        prop_assert_eq!(through_host_path(Encoding::Raw, mask, max, &points), points);
    }

    #[test]
    fn points_roundtrip_compact((mask, points) in arb_mask_and_points(40), max in 0u16..8) {
        prop_assert_eq!(through_host_path(Encoding::Compact, mask, max, &points), points);
    }

    #[test]
    fn points_roundtrip_rice((mask, points) in arb_mask_and_points(40), max in 0u16..8) {
        prop_assert_eq!(through_host_path(Encoding::Rice, mask, max, &points), points);
    }

    /// Small steady steps (the common case) over many batches exercise the predictor.
    #[test]
    fn points_roundtrip_steady(
        start: i64,
        step in -300i64..300,
        t0: u64,
        dt in 0u64..200_000,
        n in 1usize..3000,
        enc in prop_oneof![Just(Encoding::Raw), Just(Encoding::Compact), Just(Encoding::Rice)],
    ) {
        let points: Vec<_> = (0..n)
            .map(|i| flyscan_protocol::Point {
                position: start.wrapping_add(step.wrapping_mul(i as i64)),
                timestamp: t0.wrapping_add(dt.wrapping_mul(i as u64)),
                live_time: (dt as u32).wrapping_sub(3),
                flags: flyscan_protocol::PointFlags(0),
                counts: flyscan_protocol::point::Counts::from_slice(&[i as u32, 1000 - (i as u32 % 7)])
                    .expect("2 channels"),
            })
            .collect();
        prop_assert_eq!(through_host_path(enc, 0b101, 0, &points), points);
    }
}

/// A raw batch is exactly 21 + 4n bytes per point; the writer fills a frame to the brim.
#[test]
fn raw_batch_size_and_capacity() {
    use flyscan_protocol::point::{MAX_BATCH_DATA, raw_point_len};
    let mask = 0xff;
    let p = flyscan_protocol::Point {
        counts: flyscan_protocol::point::Counts::from_slice(&[1; 8]).expect("8 channels"),
        ..Default::default()
    };
    let mut w = flyscan_protocol::BatchWriter::new(Encoding::Raw, mask, 0);
    while w.push(&p).is_ok() {}
    assert_eq!(w.n_points(), MAX_BATCH_DATA / raw_point_len(8));
    assert_eq!(w.data_len(), w.n_points() * raw_point_len(8));
}
