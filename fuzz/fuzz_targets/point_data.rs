//! Arbitrary point data of every encoding straight into the point decoders (the header bytes
//! of a real batch would reach the Rice decoder in one input of 256): the first byte picks the
//! encoding, the second the channel count, the next two the point count. Nothing may panic;
//! the iterator and the zero-copy `decode_with` must yield the same points and the same error;
//! and data that decodes whole must be the one encoding of its points (re-encoding gives the
//! same bytes).
#![no_main]

use flyscan_protocol::{BatchWriter, Encoding, PointBatch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let [enc, ch, n0, n1, data @ ..] = input else {
        return;
    };
    let encoding = Encoding::ALL[usize::from(*enc) % Encoding::ALL.len()];
    let n_channels = u32::from(*ch) % 33;
    let n_points = u16::from_le_bytes([*n0, *n1]) % 1025;
    let mask = (1u64 << n_channels).wrapping_sub(1) as u32;
    let batch = PointBatch {
        scan_id: 1,
        first_index: 0,
        channel_mask: mask,
        encoding,
        n_points,
        data,
    };
    let items: Vec<_> = batch.points().collect();
    assert!(items.len() <= usize::from(n_points) + 1);
    let mut viewed = Vec::new();
    let r = batch.decode_with(|v| viewed.push(v.to_point()));
    let good: Vec<_> = items.iter().filter_map(|p| p.as_ref().ok().cloned()).collect();
    assert_eq!(viewed, good, "decode_with and points() disagree");
    match (&r, items.iter().find_map(|p| p.as_ref().err())) {
        (Ok(n), None) => assert_eq!(*n, good.len()),
        (Err(a), Some(b)) => assert_eq!(a, b, "different errors"),
        _ => panic!("one path failed, the other did not: {r:?}"),
    }
    // Longer data cannot have come from a batch writer (nor fit a frame).
    if r.is_ok() && data.len() <= flyscan_protocol::point::MAX_BATCH_DATA {
        let mut w = BatchWriter::new(encoding, mask, 0);
        for p in &good {
            w.push(p).expect("decoded points fit again");
        }
        assert_eq!(w.data(), data, "a second encoding of the same points was accepted");
    }
});
