//! Arbitrary bytes: parsing never panics, and whatever parses is canonical (emitting it again
//! gives the same bytes), so a message has exactly one accepted encoding.

mod common;

use common::*;
use flyscan_protocol::limits::{MAX_BODY, MAX_PAYLOAD};
use flyscan_protocol::point::BATCH_HEADER_LEN;
use flyscan_protocol::{
    BatchWriter, Encoding, Frame, Message, MessageType, ParseError, PointBatch,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// Parses `payload` as `msg_type` and, for a batch, decodes every point. Returns whether the
/// whole message (all points included) was accepted.
fn parse_all(msg_type: u8, payload: &[u8]) -> bool {
    match Message::parse(msg_type, payload) {
        Ok(Message::PointBatch(b)) => {
            let n = b.points().count();
            assert!(
                n <= usize::from(b.n_points) + 1,
                "at most one item past the points"
            );
            b.points().all(|p| p.is_ok())
        }
        Ok(_) => true,
        Err(_) => false,
    }
}

/// Accepted input re-emits to the same bytes (Configure's reserved byte is ignored on input
/// and written as 0, so it is zeroed before comparing).
fn assert_canonical(msg_type: u8, bytes: &[u8]) {
    let Ok(msg) = Message::parse(msg_type, bytes) else {
        return;
    };
    let mut want = bytes.to_vec();
    match msg {
        Message::Configure(_) => want[3] = 0,
        Message::ScanArmed(_) => want[4 + 3] = 0,
        Message::PointBatch(b) => {
            let points: Result<Vec<_>, _> = b.points().collect();
            let Ok(points) = points else { return };
            let mut w = BatchWriter::new(b.encoding, b.channel_mask, 0);
            for p in &points {
                w.push(p).expect("accepted points fit again");
            }
            assert_eq!(w.data(), b.data, "batch data re-encodes to the same bytes");
        }
        _ => {}
    }
    assert_eq!(payload(&msg), want, "type {msg_type:#04x}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn any_type_any_bytes(msg_type: u8, bytes in vec(any::<u8>(), 0..MAX_PAYLOAD + 64)) {
        let accepted = parse_all(msg_type, &bytes);
        if MessageType::from_u8(msg_type).is_none() {
            prop_assert!(!accepted);
        }
        assert_canonical(msg_type, &bytes);
    }

    /// Every known type, with lengths near the real ones so parsing gets past the header.
    #[test]
    fn known_type_short_bytes(i in 0usize..14, bytes in vec(any::<u8>(), 0..120)) {
        let t = MessageType::ALL[i] as u8;
        parse_all(t, &bytes);
        assert_canonical(t, &bytes);
    }

    /// Point batches with a valid header and arbitrary (mostly small-valued) point data, so the
    /// point decoders see varints of every length and deltas that leave the u32 range.
    #[test]
    fn batch_with_arbitrary_points(
        mask in prop_oneof![Just(1u32), Just(3), Just(0xff), any::<u32>()],
        compact: bool,
        n_points in 0u16..1100,
        data in vec(prop_oneof![4 => 0u8..0x80, 1 => any::<u8>()], 0..600),
    ) {
        let mut p = Vec::new();
        p.extend_from_slice(&9u32.to_le_bytes());
        p.extend_from_slice(&0u32.to_le_bytes());
        p.extend_from_slice(&mask.to_le_bytes());
        p.push(u8::from(compact));
        p.extend_from_slice(&n_points.to_le_bytes());
        prop_assert_eq!(p.len(), BATCH_HEADER_LEN);
        p.extend_from_slice(&data);
        parse_all(MessageType::PointBatch as u8, &p);
        assert_canonical(MessageType::PointBatch as u8, &p);
    }

    /// Compact batches built from well-formed varints, some of them padded with a redundant
    /// 0x80 … 0x00 tail: the decoder must refuse exactly those (otherwise two encodings of one
    /// point would be accepted and `assert_canonical` fails).
    #[test]
    fn compact_batch_padded_varints(
        two_channels: bool,
        points in vec((any::<u8>(), vec((0u64..5000, prop::bool::weighted(0.05)), 5)), 1..6),
    ) {
        let n_ch = if two_channels { 2 } else { 1 };
        let mut p = Vec::new();
        p.extend_from_slice(&9u32.to_le_bytes());
        p.extend_from_slice(&0u32.to_le_bytes());
        p.extend_from_slice(&(if two_channels { 3u32 } else { 1 }).to_le_bytes());
        p.push(Encoding::Compact as u8);
        p.extend_from_slice(&(points.len() as u16).to_le_bytes());
        let mut padded_any = false;
        for (flags, fields) in &points {
            p.push(*flags);
            for &(v, padded) in fields.iter().take(3 + n_ch) {
                let mut tmp = [0u8; flyscan_protocol::varint::MAX_VARINT_LEN];
                // Even zigzag codes are non-negative deltas, so counts stay in range.
                let n = flyscan_protocol::varint::encode_u64(2 * v, &mut tmp);
                p.extend_from_slice(&tmp[..n]);
                if padded {
                    let last = p.len() - 1;
                    p[last] |= 0x80;
                    p.push(0);
                    padded_any = true;
                }
            }
        }
        let accepted = parse_all(MessageType::PointBatch as u8, &p);
        prop_assert_eq!(accepted, !padded_any);
        assert_canonical(MessageType::PointBatch as u8, &p);
    }

    #[test]
    fn frame_check_any_body(body in vec(any::<u8>(), 0..MAX_BODY + 8)) {
        if let Ok(f) = Frame::new_checked(&body) {
            let _ = f.message();
        }
    }

    #[test]
    fn deframe_any_bytes(bytes in vec(any::<u8>(), 0..6000), chunk in 1usize..700) {
        let mut d = flyscan_protocol::Deframer::new();
        let events = deframe_chunks(&mut d, bytes.chunks(chunk));
        for e in events {
            if let Event::Frame(s) = e {
                parse_all(s.msg_type, &s.payload);
            }
        }
        prop_assert_eq!(d.stats().bytes, bytes.len() as u64);
    }
}

/// Compact deltas that would overflow or wrap the u32 range are refused, not wrapped (wrapping
/// would give a second encoding of the same point, and overflowed in debug builds).
#[test]
fn compact_delta_out_of_range_rejected() {
    use flyscan_protocol::varint::{MAX_VARINT_LEN, encode_u64, zigzag};
    for (field, delta) in [
        ("point.live_time", i64::MAX),
        ("point.live_time", i64::MIN),
        ("point.live_time", -1),
        ("point.live_time", 1 << 32),
        ("point.count", i64::MAX),
        ("point.count", i64::MIN + 1),
        ("point.count", -1),
        ("point.count", 1 << 32),
    ] {
        let mut data = vec![0u8, 0, 0]; // flags, Δ²position, Δ²timestamp
        let mut v = [0u8; MAX_VARINT_LEN];
        let (live, count) = if field == "point.live_time" {
            (delta, 0)
        } else {
            (0, delta)
        };
        for x in [live, count] {
            let n = encode_u64(zigzag(x), &mut v);
            data.extend_from_slice(&v[..n]);
        }
        let it = flyscan_protocol::PointIter::new(&data, Encoding::Compact, 1, 1);
        let got: Vec<_> = it.collect();
        assert!(
            matches!(got.as_slice(), [Err(ParseError::InvalidField { field: f, .. })] if *f == field),
            "{field} delta {delta}: {got:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Rice batches with a valid header and arbitrary data (biased towards the short codes and
    /// long zero runs the format has): whatever decodes re-encodes to the same bytes, so the
    /// decoder accepts exactly one encoding of each point sequence.
    #[test]
    fn rice_batch_any_bits(
        mask in prop_oneof![Just(1u32), Just(3), Just(0xff), any::<u32>()],
        n_points in 0u16..40,
        data in vec(prop_oneof![3 => any::<u8>(), 1 => Just(0u8), 1 => Just(0xffu8)], 0..300),
    ) {
        let mut p = Vec::new();
        p.extend_from_slice(&9u32.to_le_bytes());
        p.extend_from_slice(&0u32.to_le_bytes());
        p.extend_from_slice(&mask.to_le_bytes());
        p.push(Encoding::Rice as u8);
        p.extend_from_slice(&n_points.to_le_bytes());
        p.extend_from_slice(&data);
        parse_all(MessageType::PointBatch as u8, &p);
        assert_canonical(MessageType::PointBatch as u8, &p);
    }

    /// A real Rice batch with one bit flipped: it is refused, or it decodes to points that
    /// re-encode to exactly the damaged bytes (never to a second encoding of other points).
    #[test]
    fn rice_batch_one_bit_flipped(
        (mask, points) in arb_mask_and_points(30),
        bit in any::<prop::sample::Index>(),
    ) {
        let (first, w) = batches(Encoding::Rice, mask, 0, &points).remove(0);
        let mut bytes = payload(&Message::PointBatch(PointBatch::from_writer(1, first, &w)));
        let data_bits = (bytes.len() - BATCH_HEADER_LEN) * 8;
        let at = BATCH_HEADER_LEN * 8 + bit.index(data_bits);
        bytes[at / 8] ^= 1 << (at % 8);
        parse_all(MessageType::PointBatch as u8, &bytes);
        assert_canonical(MessageType::PointBatch as u8, &bytes);
    }
}

/// Bits in stream order ('0'/'1', spaces ignored), packed least significant bit first.
fn pack(bits: &str) -> Vec<u8> {
    let bits: Vec<u8> = bits.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    bits.chunks(8)
        .map(|c| c.iter().rev().fold(0u8, |b, &x| b << 1 | (x - b'0')))
        .collect()
}

/// The Rice rules that keep one encoding per point sequence, each on a hand-made stream of one
/// channel (PROTOCOL.md §Rice encoding).
#[test]
fn rice_second_encodings_rejected() {
    // Point 0 of zeros: flags unchanged, plain lengths 0 (7, 7, 6 and 6 bits): 27 bits.
    let zero_point = "0 0000000 0000000 000000 000000";
    let cases: &[(&str, &str, u16)] = &[
        // A flags change to the flags already in force.
        ("point.flags", "1 00000000", 1),
        // A plain count 33 bits long.
        ("point.count", "0 0000000 0000000 000000 100001", 1),
        // Point 1's position escaped although its z = 1 fits a Rice code (k = 0).
        ("point.position", "0 0000000000000000 000000", 2),
        // A set padding bit after point 0.
        ("point.padding", "0 1000", 1),
    ];
    for &(field, tail, n_points) in cases {
        let bits = if field == "point.flags" || field == "point.count" {
            tail.to_string()
        } else {
            format!("{zero_point} {tail}")
        };
        let data = pack(&bits);
        let got: Vec<_> =
            flyscan_protocol::PointIter::new(&data, Encoding::Rice, 1, n_points.into()).collect();
        assert!(
            matches!(got.last(), Some(Err(ParseError::InvalidField { field: f, .. })) if *f == field),
            "{field}: {got:?}"
        );
    }
    // The same stream with the padding clear decodes.
    let data = pack(zero_point);
    let got: Vec<_> = flyscan_protocol::PointIter::new(&data, Encoding::Rice, 1, 1).collect();
    assert_eq!(got.len(), 1);
    assert!(got[0].is_ok(), "{got:?}");
}
