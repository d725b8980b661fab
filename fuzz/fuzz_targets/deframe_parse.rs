//! Arbitrary bytes in arbitrary chunks through the deframer; every frame is parsed as a message
//! and every batch's points are iterated. Nothing may panic, and the deframer's counters must
//! add up.
#![no_main]

use flyscan_protocol::{Deframer, Feed, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk sizes, so the same stream is also seen split differently.
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let mut d = Deframer::new();
    let mut frames = 0u64;
    let mut errors = 0u64;
    let mut at = 0usize;
    let mut step = usize::from(seed) + 1;
    while at < stream.len() {
        let end = (at + step).min(stream.len());
        let mut input = &stream[at..end];
        loop {
            match d.feed(input) {
                Feed::Consumed => break,
                Feed::Frame { frame, remaining } => {
                    frames += 1;
                    if let Ok(Message::PointBatch(b)) = frame.message() {
                        for p in b.points() {
                            let _ = p;
                        }
                    }
                    input = remaining;
                }
                Feed::Error { remaining, .. } => {
                    errors += 1;
                    input = remaining;
                }
            }
        }
        at = end;
        // Vary chunk sizes between 1 and 256 bytes.
        step = (step * 7 + 3) % 256 + 1;
    }
    let s = d.stats();
    assert_eq!(s.frames, frames);
    assert_eq!(s.errors, errors);
    assert_eq!(s.bytes, stream.len() as u64);
    assert!(d.pending() < flyscan_protocol::limits::MAX_ENCODED_FRAME);
});
