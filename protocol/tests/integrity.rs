//! Damage on the line: bit flips, truncation, garbage, oversize input and arbitrary chunking.
//! The deframer must never deliver a frame whose content differs from what was sent, and must
//! lose only the frames the damage touches.

mod common;

use common::*;
use flyscan_protocol::limits::MAX_ENCODED_FRAME;
use flyscan_protocol::{Deframer, Encoding, FrameError, Message, PointBatch};
use proptest::collection::vec;
use proptest::prelude::*;

/// A small frame that ends a test stream, to check that decoding continues after damage.
fn sentinel() -> Vec<u8> {
    wire(&Message::Ping { token: 0x05e1_71e1 }, 0xffff_fff0)
}

fn sentinel_seen() -> Seen {
    frames(&deframe(&sentinel()))[0].clone()
}

/// Flips every bit of `frame` in turn (delimiter included) and checks that no altered frame
/// gets through and that the following frame survives unless the delimiter itself was hit.
fn check_every_bit_flip(frame: &[u8]) {
    let good = frames(&deframe(frame));
    assert_eq!(good.len(), 1);
    let tail = sentinel();
    let mut stream = frame.to_vec();
    stream.extend_from_slice(&tail);
    for byte in 0..frame.len() {
        for bit in 0..8 {
            stream[byte] ^= 1 << bit;
            let events = deframe(&stream);
            stream[byte] ^= 1 << bit;
            let got = frames(&events);
            let errors = events.len() - got.len();
            assert!(errors >= 1, "flip of byte {byte} bit {bit} went unnoticed");
            for f in &got {
                assert_eq!(
                    f,
                    &sentinel_seen(),
                    "flip of byte {byte} bit {bit} let a changed frame through"
                );
            }
            if byte + 1 < frame.len() {
                assert_eq!(
                    got.len(),
                    1,
                    "flip of byte {byte} bit {bit} lost the next frame"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_bit_flip_detected_messages(owned in arb_message(), seq: u32) {
        check_every_bit_flip(&wire(&owned.message(), seq));
    }
}

#[test]
fn every_bit_flip_detected_full_batches() {
    for encoding in Encoding::ALL {
        let points: Vec<_> = (0..400u32)
            .map(|i| flyscan_protocol::Point {
                position: 1000 + 97 * i64::from(i),
                timestamp: 5_000_000 + 100_003 * u64::from(i),
                live_time: 99_000 + i % 5,
                flags: flyscan_protocol::PointFlags((i % 3) as u8),
                counts: flyscan_protocol::point::Counts::from_slice(&[
                    i,
                    2 * i + 7,
                    300 + i % 11,
                    0,
                ])
                .expect("4 channels"),
            })
            .collect();
        let (first, w) = batches(encoding, 0x0f, 0, &points).remove(0);
        let msg = Message::PointBatch(PointBatch::from_writer(3, first, &w));
        let f = wire(&msg, 1234);
        assert!(f.len() > 1500, "a nearly full frame ({} bytes)", f.len());
        check_every_bit_flip(&f);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A frame cut short at any point never comes out as a frame. Without a delimiter its
    /// remains spoil the frame they run into (the next one is lost, the one after it is found);
    /// a delimiter after the cut (a sender restarting with 0x00) loses nothing else.
    #[test]
    fn truncation_at_every_offset(owned in arb_message(), seq: u32) {
        let f = wire(&owned.message(), seq);
        let next = wire(&Message::Arm { scan_id: 77 }, seq.wrapping_add(1));
        let next_seen = frames(&deframe(&next))[0].clone();
        for cut in 0..f.len() {
            let mut s = f[..cut].to_vec();
            s.extend_from_slice(&next);
            s.extend_from_slice(&sentinel());
            let got = frames(&deframe(&s));
            if cut == 0 {
                prop_assert_eq!(got, vec![next_seen.clone(), sentinel_seen()]);
            } else {
                prop_assert_eq!(got, vec![sentinel_seen()], "cut at {}", cut);
            }

            if cut + 1 == f.len() {
                // Everything but the delimiter: adding 0x00 restores the frame.
                continue;
            }
            let mut s = f[..cut].to_vec();
            s.push(0);
            s.extend_from_slice(&next);
            let events = deframe(&s);
            prop_assert_eq!(frames(&events), vec![next_seen.clone()], "cut at {} then 0x00", cut);
            prop_assert_eq!(events.len(), if cut == 0 { 1 } else { 2 });
        }
    }
}

/// A stream of frames with garbage between some of them, and which frames the garbage touches.
#[derive(Debug, Clone)]
struct Damaged {
    stream: Vec<u8>,
    sent: Vec<Seen>,
    untouched: Vec<Seen>,
}

fn arb_garbage() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => Just(Vec::new()),
        3 => vec(any::<u8>(), 1..40),
        1 => vec(1u8..=255, 1..40).prop_map(|mut v| { v.push(0); v }),
        1 => vec(1u8..=255, MAX_ENCODED_FRAME - 5..MAX_ENCODED_FRAME * 2),
    ]
}

fn arb_damaged() -> impl Strategy<Value = Damaged> {
    vec((arb_message(), arb_garbage()), 1..12).prop_map(|items| {
        let mut d = Damaged {
            stream: Vec::new(),
            sent: Vec::new(),
            untouched: Vec::new(),
        };
        for (seq, (owned, garbage)) in items.iter().enumerate() {
            let f = wire(&owned.message(), seq as u32);
            let seen = frames(&deframe(&f))[0].clone();
            d.stream.extend_from_slice(garbage);
            d.stream.extend_from_slice(&f);
            // Garbage ending in a delimiter is closed off; anything else runs into this frame.
            if garbage.last().is_none_or(|&b| b == 0) {
                d.untouched.push(seen.clone());
            }
            d.sent.push(seen);
        }
        d
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn garbage_loses_only_frames_it_touches(d in arb_damaged()) {
        let got = frames(&deframe(&d.stream));
        prop_assert_eq!(got, d.untouched);
    }

    /// However the stream is cut into chunks (down to single bytes), the deframer reports the
    /// same frames and the same errors (an oversize is reported as soon as the limit is crossed,
    /// so only its `discarded` count can depend on the chunking), and the same totals.
    #[test]
    fn chunking_independence(d in arb_damaged(), cuts in vec(0usize..4000, 0..40), one_byte: bool) {
        let mut whole = Deframer::new();
        let expect = deframe_chunks(&mut whole, [&d.stream[..]]);
        let mut split = Deframer::new();
        let got = if one_byte {
            deframe_chunks(&mut split, d.stream.chunks(1))
        } else {
            let mut at: Vec<usize> = cuts.iter().map(|c| c % (d.stream.len() + 1)).collect();
            at.push(0);
            at.push(d.stream.len());
            at.sort_unstable();
            deframe_chunks(&mut split, at.windows(2).map(|w| &d.stream[w[0]..w[1]]))
        };
        let norm = |events: Vec<Event>| -> Vec<Event> {
            events
                .into_iter()
                .map(|e| match e {
                    Event::Error(FrameError::Oversize { .. }) => {
                        Event::Error(FrameError::Oversize { discarded: 0 })
                    }
                    other => other,
                })
                .collect()
        };
        prop_assert_eq!(norm(got), norm(expect));
        prop_assert_eq!(split.stats(), whole.stats());
        prop_assert_eq!(split.stats().bytes, d.stream.len() as u64);
    }
}

/// Long runs without a delimiter are dropped and counted once; memory stays bounded and
/// decoding resumes at the next delimiter, whatever the chunking.
#[test]
fn oversize_discarded_and_counted() {
    let a = wire(&Message::Ping { token: 1 }, 1);
    let b = wire(&Message::Ping { token: 2 }, 2);
    let seen_a = frames(&deframe(&a))[0].clone();
    let seen_b = frames(&deframe(&b))[0].clone();
    for junk_len in [
        MAX_ENCODED_FRAME - 1,
        MAX_ENCODED_FRAME,
        3 * MAX_ENCODED_FRAME + 17,
    ] {
        let junk: Vec<u8> = (0..junk_len).map(|i| (i % 255) as u8 + 1).collect();
        for closed in [false, true] {
            let mut s = junk.clone();
            if closed {
                s.push(0);
            }
            s.extend_from_slice(&a);
            s.extend_from_slice(&b);
            for chunk in [1usize, 7, 1000, s.len()] {
                let mut d = Deframer::new();
                let mut peak = 0;
                let mut events = Vec::new();
                for c in s.chunks(chunk) {
                    events.extend(deframe_chunks(&mut d, [c]));
                    peak = peak.max(d.pending());
                }
                assert!(peak < MAX_ENCODED_FRAME, "buffer bounded");
                let st = d.stats();
                let got = frames(&events);
                // With the junk closed by a delimiter, frame a survives; otherwise the junk runs
                // into it. Junk one byte under the limit is an ordinary bad frame, not an oversize.
                let want = if closed {
                    vec![seen_a.clone(), seen_b.clone()]
                } else {
                    vec![seen_b.clone()]
                };
                assert_eq!(got, want, "junk {junk_len} closed {closed} chunk {chunk}");
                assert_eq!(
                    st.errors, 1,
                    "junk {junk_len} closed {closed} chunk {chunk}"
                );
                let over = junk_len + usize::from(!closed) * (a.len() - 1) >= MAX_ENCODED_FRAME;
                assert_eq!(
                    st.oversize,
                    u64::from(over),
                    "junk {junk_len} closed {closed} chunk {chunk}"
                );
                assert_eq!(st.frames, got.len() as u64);
                assert_eq!(st.bytes, s.len() as u64);
            }
        }
    }
}

/// A stream that never sends a delimiter is counted once and never grows the buffer.
#[test]
fn endless_stream_without_delimiter() {
    let mut d = Deframer::new();
    let junk = [0x55u8; 997];
    let mut errors = 0;
    for _ in 0..50 {
        errors += deframe_chunks(&mut d, [&junk[..]]).len();
        assert!(d.pending() < MAX_ENCODED_FRAME);
    }
    assert_eq!(errors, 1);
    assert_eq!(d.stats().oversize, 1);
    assert_eq!(d.stats().bytes_discarded, 50 * 997);
    // And it resumes.
    let mut s = vec![0u8];
    s.extend_from_slice(&sentinel());
    assert_eq!(
        frames(&deframe_chunks(&mut d, [&s[..]])),
        vec![sentinel_seen()]
    );
}
