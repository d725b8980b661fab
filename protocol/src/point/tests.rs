//! The fast decoders against field-by-field reference decoders written from PROTOCOL.md
//! §Points, on valid, damaged and arbitrary data, for every encoding.

extern crate std;
use super::*;
use crate::varint;
use proptest::collection::vec;
use proptest::prelude::*;
use std::vec::Vec;

type Items = Vec<Result<Point, ParseError>>;

fn trunc() -> ParseError {
    ParseError::Truncated {
        msg_type: MessageType::PointBatch as u8,
    }
}

/// Raw and compact, one field and one varint at a time, kept simple on purpose: the fast
/// decoders must yield exactly its items.
fn reference_bytes(data: &[u8], encoding: Encoding, n_channels: usize, n_points: usize) -> Items {
    let bad = |field| ParseError::InvalidField { field, value: 0 };
    let in_u32 = |field, old: u32, d: i64| {
        i64::from(old)
            .checked_add(d)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or(ParseError::InvalidField {
                field,
                value: d as u64,
            })
    };
    let take = |r: &mut &[u8], n: usize| -> Result<u64, ParseError> {
        let (b, rest) = r.split_at_checked(n).ok_or(trunc())?;
        *r = rest;
        Ok(b.iter().rev().fold(0u64, |a, &x| a << 8 | u64::from(x)))
    };
    let varint = |r: &mut &[u8], field| -> Result<i64, ParseError> {
        let (rest, v) = varint::parse_u64(r).map_err(|_| bad(field))?;
        *r = rest;
        Ok(varint::unzigzag(v))
    };
    let mut out = Vec::new();
    let mut r = data;
    let (mut pos, mut dpos, mut ts, mut dts, mut live) = (0i64, 0i64, 0u64, 0u64, 0u32);
    let mut counts = [0u32; MAX_CHANNELS];
    for _ in 0..n_points {
        let mut one = || -> Result<Point, ParseError> {
            let mut p = Point::default();
            if encoding == Encoding::Raw {
                p.position = take(&mut r, 8)? as i64;
                p.timestamp = take(&mut r, 8)?;
                p.live_time = take(&mut r, 4)? as u32;
                p.flags = PointFlags(take(&mut r, 1)? as u8);
                for _ in 0..n_channels {
                    let _ = p.counts.push(take(&mut r, 4)? as u32);
                }
                return Ok(p);
            }
            p.flags = PointFlags(take(&mut r, 1)? as u8);
            let ddpos = varint(&mut r, "point.position")?;
            let ddts = varint(&mut r, "point.timestamp")?;
            let dlive = varint(&mut r, "point.live_time")?;
            dpos = dpos.wrapping_add(ddpos);
            dts = dts.wrapping_add(ddts as u64);
            pos = pos.wrapping_add(dpos);
            ts = ts.wrapping_add(dts);
            live = in_u32("point.live_time", live, dlive)?;
            for c in counts.iter_mut().take(n_channels) {
                *c = in_u32("point.count", *c, varint(&mut r, "point.count")?)?;
                let _ = p.counts.push(*c);
            }
            p.position = pos;
            p.timestamp = ts;
            p.live_time = live;
            Ok(p)
        };
        let item = one();
        let failed = item.is_err();
        out.push(item);
        if failed {
            return out;
        }
    }
    if !r.is_empty() {
        out.push(Err(ParseError::TrailingBytes {
            msg_type: MessageType::PointBatch as u8,
            extra: r.len(),
        }));
    }
    out
}

/// Rice, one bit at a time, straight from PROTOCOL.md §Rice encoding.
fn reference_rice(data: &[u8], n_channels: usize, n_points: usize) -> Items {
    struct Bits<'d> {
        data: &'d [u8],
        pos: usize,
    }
    impl Bits<'_> {
        fn bit(&mut self) -> Result<u64, ParseError> {
            let byte = self.data.get(self.pos / 8).ok_or(trunc())?;
            let b = u64::from(byte >> (self.pos % 8) & 1);
            self.pos += 1;
            Ok(b)
        }
        fn bits(&mut self, n: u32) -> Result<u64, ParseError> {
            (0..n).try_fold(0u64, |v, i| Ok(v | self.bit()? << i))
        }
        /// Point 0: length, then the bits below the top one.
        fn plain(
            &mut self,
            len_bits: u32,
            width: u32,
            field: &'static str,
        ) -> Result<u64, ParseError> {
            let n = self.bits(len_bits)? as u32;
            if n > width {
                return Err(ParseError::InvalidField {
                    field,
                    value: n.into(),
                });
            }
            if n <= 1 {
                return Ok(n.into());
            }
            Ok((1u64 << (n - 1)) | self.bits(n - 1)?)
        }
        /// An adaptive Rice code: `s` is 16 × the running mean, `kmax` the field's largest k.
        fn rice(
            &mut self,
            s: &mut u64,
            kmax: u32,
            width: u32,
            field: &'static str,
        ) -> Result<u64, ParseError> {
            let k = (64 - (*s >> 5).leading_zeros()).min(kmax);
            let mut q = 0;
            while q < 16 && self.bit()? == 0 {
                q += 1;
            }
            let z = if q < 16 {
                (q << k) | self.bits(k)?
            } else {
                let n = self.bits(6)? as u32 + 1;
                if n > width {
                    return Err(ParseError::InvalidField {
                        field,
                        value: n.into(),
                    });
                }
                let z = (1u64 << (n - 1)) | self.bits(n - 1)?;
                if z >> k < 16 {
                    return Err(ParseError::InvalidField { field, value: z });
                }
                z
            };
            *s = *s - *s / 16 + z.min(1 << (k + 8));
            Ok(z)
        }
    }
    let un32 = |z: u64| varint::unzigzag(z) as u32;
    // 16 × running mean of steps: the first step itself, then a quarter of the way each time.
    let follow = |m: i64, step: i64, i: usize| {
        let t = step.wrapping_mul(16);
        if i == 1 {
            t
        } else {
            m.wrapping_add(t.wrapping_sub(m).div_euclid(4))
        }
    };
    let mut b = Bits { data, pos: 0 };
    let mut out = Vec::new();
    let (mut pos, mut ts, mut live, mut flags) = (0i64, 0u64, 0u32, 0u8);
    let (mut vpos, mut vts, mut dts, mut ddts) = (0i64, 0i64, 0i64, 0i64);
    let mut counts = [0u32; MAX_CHANNELS];
    let mut mean = [0u64; MAX_CHANNELS];
    let (mut s_pos, mut s_ts, mut s_live, mut s_count) = (0, 0, 0, [0u64; MAX_CHANNELS]);
    for i in 0..n_points {
        let mut one = || -> Result<Point, ParseError> {
            if b.bit()? == 1 {
                let f = b.bits(8)? as u8;
                if f == flags {
                    return Err(ParseError::InvalidField {
                        field: "point.flags",
                        value: f.into(),
                    });
                }
                flags = f;
            }
            let z = if i == 0 {
                b.plain(7, 64, "point.position")?
            } else {
                b.rice(&mut s_pos, 51, 64, "point.position")?
            };
            let new = pos
                .wrapping_add(vpos.wrapping_add(8) >> 4)
                .wrapping_add(varint::unzigzag(z));
            if i > 0 {
                vpos = follow(vpos, new.wrapping_sub(pos), i);
            }
            pos = new;
            let z = if i == 0 {
                b.plain(7, 64, "point.timestamp")?
            } else {
                b.rice(&mut s_ts, 51, 64, "point.timestamp")?
            };
            let new = ts
                .wrapping_add((vts.wrapping_add(8) >> 4) as u64)
                .wrapping_add(varint::unzigzag(z) as u64);
            if i > 0 {
                let step = new.wrapping_sub(ts) as i64;
                vts = follow(vts, step, i);
                ddts = if i > 1 { step.wrapping_sub(dts) } else { 0 };
                dts = step;
            }
            ts = new;
            let z = if i == 0 {
                b.plain(6, 32, "point.live_time")?
            } else {
                b.rice(&mut s_live, 27, 32, "point.live_time")?
            };
            live = live.wrapping_add(ddts as u32).wrapping_add(un32(z));
            let mut p = Point {
                position: pos,
                timestamp: ts,
                live_time: live,
                flags: PointFlags(flags),
                counts: Counts::new(),
            };
            for ch in 0..n_channels {
                let pred = ((mean[ch] + 8) >> 4) as u32;
                if i == 0 {
                    counts[ch] = pred.wrapping_add(un32(b.plain(6, 32, "point.count")?));
                    mean[ch] = u64::from(counts[ch]) * 16;
                    s_count[ch] = 27 * u64::from(counts[ch].isqrt());
                } else {
                    let z = b.rice(&mut s_count[ch], 27, 32, "point.count")?;
                    counts[ch] = pred.wrapping_add(un32(z));
                    let (t, m) = (i64::from(counts[ch]) * 16, mean[ch] as i64);
                    mean[ch] = (m + (t - m).div_euclid(4)) as u64;
                }
                let _ = p.counts.push(counts[ch]);
            }
            Ok(p)
        };
        let item = one();
        let failed = item.is_err();
        out.push(item);
        if failed {
            return out;
        }
    }
    let extra = data.len() - b.pos.div_ceil(8);
    if extra > 0 {
        out.push(Err(ParseError::TrailingBytes {
            msg_type: MessageType::PointBatch as u8,
            extra,
        }));
    } else if !b.pos.is_multiple_of(8) {
        let padding = b.bits(8 - (b.pos % 8) as u32).unwrap_or(0);
        if padding != 0 {
            out.push(Err(ParseError::InvalidField {
                field: "point.padding",
                value: padding,
            }));
        }
    }
    out
}

fn reference(data: &[u8], encoding: Encoding, n_channels: usize, n_points: usize) -> Items {
    match encoding {
        Encoding::Rice => reference_rice(data, n_channels, n_points),
        _ => reference_bytes(data, encoding, n_channels, n_points),
    }
}

/// What `decode_with` delivers, in the shape of the iterator's items.
fn via_decode_with(batch: &PointBatch<'_>) -> Items {
    let mut out = Vec::new();
    let r = batch.decode_with(|v| out.push(Ok(v.to_point())));
    match r {
        Ok(n) => assert_eq!(n, out.len(), "count returned"),
        Err(e) => out.push(Err(e)),
    }
    out
}

fn batch(data: &[u8], encoding: Encoding, n_channels: usize, n_points: u16) -> PointBatch<'_> {
    PointBatch {
        scan_id: 1,
        first_index: 0,
        channel_mask: (1u64 << n_channels).wrapping_sub(1) as u32,
        encoding,
        n_points,
        data,
    }
}

/// Checks the three decoders agree on one batch.
fn check(data: &[u8], encoding: Encoding, n_channels: usize, n_points: u16) {
    let b = batch(data, encoding, n_channels, n_points);
    let want = reference(data, encoding, n_channels, usize::from(n_points));
    let got: Vec<_> = b.points().collect();
    assert_eq!(got, want, "PointIter against the reference");
    assert_eq!(
        via_decode_with(&b),
        want,
        "decode_with against the reference"
    );
}

/// Points whose fields have differences of every size (1 to 10 varint bytes, Rice codes of
/// every length and escapes), so encoded batches exercise every fast-path boundary.
fn arb_batch_points(n_channels: usize) -> impl Strategy<Value = Vec<Point>> {
    let small = prop_oneof![
        -3i64..3,
        -100i64..100,
        -20_000i64..20_000,
        any::<i64>().prop_map(|v| v >> 16),
        any::<i64>(),
    ];
    let count = prop_oneof![0u32..4, 100u32..300, 0u32..70_000, any::<u32>()];
    let flags = prop_oneof![Just(0u8), Just(PointFlags::JUMP), any::<u8>()];
    let point = (
        small.clone(),
        small,
        any::<u32>(),
        flags,
        vec(count, n_channels),
    );
    vec(point, 1..60).prop_map(|raw| {
        let (mut pos, mut ts, mut dpos, mut dts) = (0i64, 0u64, 0i64, 0u64);
        raw.into_iter()
            .map(|(ddp, ddt, live, flags, counts)| {
                dpos = dpos.wrapping_add(ddp);
                dts = dts.wrapping_add(ddt as u64);
                pos = pos.wrapping_add(dpos);
                ts = ts.wrapping_add(dts);
                Point {
                    position: pos,
                    timestamp: ts,
                    live_time: live,
                    flags: PointFlags(flags),
                    counts: Counts::from_slice(&counts).unwrap_or_default(),
                }
            })
            .collect()
    })
}

fn encoded(points: &[Point], encoding: Encoding, n_channels: usize) -> (Vec<u8>, u16) {
    let mask = (1u64 << n_channels).wrapping_sub(1) as u32;
    let mut w = BatchWriter::new(encoding, mask, 0);
    for p in points {
        if w.push(p).is_err() {
            break;
        }
    }
    (w.data().to_vec(), w.n_points() as u16)
}

fn arb_encoding() -> impl Strategy<Value = Encoding> {
    prop::sample::select(Encoding::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decoders_agree_on_encoded_batches(
        (n_channels, points) in (0usize..=MAX_CHANNELS)
            .prop_flat_map(|n| (Just(n), arb_batch_points(n))),
        encoding in arb_encoding(),
    ) {
        let (data, n) = encoded(&points, encoding, n_channels);
        check(&data, encoding, n_channels, n);
        let decoded: Vec<_> = batch(&data, encoding, n_channels, n).points().collect();
        prop_assert_eq!(decoded.len(), usize::from(n));
        for (got, want) in decoded.iter().zip(&points) {
            prop_assert_eq!(got.as_ref().ok(), Some(want));
        }
    }

    #[test]
    fn decoders_agree_on_damaged_batches(
        (n_channels, points) in (0usize..=12).prop_flat_map(|n| (Just(n), arb_batch_points(n))),
        encoding in arb_encoding(),
        damage in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        extra_points in 0u16..3,
    ) {
        let (mut data, n) = encoded(&points, encoding, n_channels);
        for (at, byte) in damage {
            let i = at.index(data.len());
            data[i] = byte;
        }
        check(&data, encoding, n_channels, n);
        check(&data, encoding, n_channels, n + extra_points);
        check(&data[..cut.index(data.len() + 1)], encoding, n_channels, n);
        check(&data, encoding, n_channels, n.saturating_sub(1));
    }

    #[test]
    fn decoders_agree_on_any_bytes(
        data in vec(any::<u8>(), 0..400),
        n_channels in 0usize..=MAX_CHANNELS,
        n_points in 0u16..40,
        encoding in arb_encoding(),
    ) {
        check(&data, encoding, n_channels, n_points);
    }

    /// A Rice batch filled to the brim stays within the data area, and a point that did not
    /// fit left the batch as it was (it decodes to the points that did fit).
    #[test]
    fn rice_batch_fills_without_damage(
        (n_channels, points) in (1usize..=MAX_CHANNELS)
            .prop_flat_map(|n| (Just(n), arb_batch_points(n))),
    ) {
        let mask = (1u64 << n_channels).wrapping_sub(1) as u32;
        let mut w = BatchWriter::new(Encoding::Rice, mask, 0);
        let mut taken = Vec::new();
        'fill: for _ in 0..200 {
            for p in &points {
                if w.push(p).is_err() {
                    break 'fill;
                }
                taken.push(p.clone());
            }
        }
        prop_assert!(w.data_len() <= MAX_BATCH_DATA);
        let b = PointBatch::from_writer(1, 0, &w);
        let got: Result<Vec<_>, _> = b.points().collect();
        prop_assert_eq!(got, Ok(taken));
    }
}

#[test]
fn worst_case_point_lengths_hold() {
    use crate::limits::{MAX_COMPACT_POINT, MAX_RAW_POINT, MAX_RICE_POINT};
    assert_eq!(Encoding::Raw.max_point_len(MAX_CHANNELS), MAX_RAW_POINT);
    assert_eq!(
        Encoding::Compact.max_point_len(MAX_CHANNELS),
        MAX_COMPACT_POINT
    );
    assert_eq!(Encoding::Rice.max_point_len(MAX_CHANNELS), MAX_RICE_POINT);
    // The worst Rice point: after a point of zeros, every field an escape of its widest value
    // and the flags changed.
    for n in [0, 1, 8, MAX_CHANNELS] {
        let zero = Point {
            counts: Counts::from_slice(&[0; MAX_CHANNELS][..n]).unwrap_or_default(),
            ..Point::default()
        };
        let p = Point {
            position: i64::MIN,
            timestamp: 1 << 63,
            live_time: 1 << 31,
            flags: PointFlags(0xff),
            counts: Counts::from_slice(&[1 << 31; MAX_CHANNELS][..n]).unwrap_or_default(),
        };
        let mask = (1u64 << n).wrapping_sub(1) as u32;
        let mut w = BatchWriter::new(Encoding::Rice, mask, 0);
        w.push(&zero).expect("one point fits");
        let before = w.data_len();
        w.push(&p).expect("two points fit");
        let len = w.data_len() - before;
        assert!(len <= Encoding::Rice.max_point_len(n), "{n} channels");
        assert!(len + 1 >= Encoding::Rice.max_point_len(n), "bound is tight");
    }
}
