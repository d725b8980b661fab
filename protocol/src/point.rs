//! Points and their two encodings inside a point batch (PROTOCOL.md §Points).
//!
//! * **Raw**: fixed width, `position i64 | timestamp u64 | live_time u32 | flags u8 | counts u32×n`
//!   (21 + 4n bytes), little-endian.
//! * **Compact** (firmware default): `flags u8`, then zigzag varints of the second difference of
//!   position and of timestamp, the first difference of live time, and the first difference of
//!   each channel's count, all against the previous point *of the same batch* (the first point of
//!   a batch is predicted from zeros, so every batch decodes on its own). At steady velocity the
//!   second differences are near 0 and take one byte.

use crate::cursor::Cursor;
use crate::error::{EncodeError, ParseError};
use crate::frame::MessageType;
use crate::limits::{MAX_CHANNELS, MAX_COMPACT_POINT, MAX_PAYLOAD};
use crate::message::PointBatch;
use crate::varint;
use heapless::Vec;

/// Point encoding inside a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Encoding {
    /// Fixed-width little-endian fields.
    Raw = 0,
    /// Delta/zigzag-varint fields.
    Compact = 1,
}

impl Encoding {
    /// From the wire code.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Raw),
            1 => Some(Self::Compact),
            _ => None,
        }
    }
}

/// Per-point flag bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PointFlags(pub u8);

impl PointFlags {
    /// The preset was passed within a position jump (several presets between two encoder
    /// samples); the point is interpolated from the jump, not measured at the preset.
    pub const JUMP: u8 = 0x01;
    /// A count or the live time exceeded 32 bits in this bin and was clamped.
    pub const CLAMPED: u8 = 0x02;
    /// The motor moved towards −∞ when the trigger fired.
    pub const NEGATIVE: u8 = 0x04;
    /// An illegal quadrature transition occurred during this bin.
    pub const QUAD_ERROR: u8 = 0x08;
    /// First point of a pass (bidirectional scans: where the direction turned).
    pub const PASS_START: u8 = 0x10;

    /// True if every bit of `bit` is set.
    pub fn has(self, bit: u8) -> bool {
        self.0 & bit == bit
    }
}

/// Counts of the enabled channels of one point, in channel order.
pub type Counts = Vec<u32, MAX_CHANNELS>;

/// One latched point: where and when the trigger fired, and what each channel counted in the bin
/// that ended there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Point {
    /// Encoder position at the trigger, counts.
    pub position: i64,
    /// Device clock at the trigger, ticks since power-up (64-bit: never wraps in practice).
    pub timestamp: u64,
    /// Gate (live) time of the bin, ticks.
    pub live_time: u32,
    /// Flag bits ([`PointFlags`] constants).
    pub flags: PointFlags,
    /// Per-bin counts, one per enabled channel.
    pub counts: Counts,
}

/// Bytes of one raw point with `n` channels.
pub const fn raw_point_len(n: usize) -> usize {
    21 + 4 * n
}

/// Prediction state of the compact encoding (identical on both sides).
#[derive(Debug, Clone, Default)]
struct Predictor {
    pos: i64,
    dpos: i64,
    ts: u64,
    dts: u64,
    live: u32,
    counts: [u32; MAX_CHANNELS],
}

/// Bytes of the batch header that precedes the point data in a `PointBatch` payload.
pub const BATCH_HEADER_LEN: usize = 15;
/// Room for point data in one batch.
pub const MAX_BATCH_DATA: usize = MAX_PAYLOAD - BATCH_HEADER_LEN;

/// Accumulates points into the data area of one batch (no allocation; 2 KiB).
#[derive(Debug, Clone)]
pub struct BatchWriter {
    encoding: Encoding,
    channel_mask: u32,
    n_channels: usize,
    max_points: usize,
    buf: [u8; MAX_BATCH_DATA],
    len: usize,
    n_points: usize,
    pred: Predictor,
}

/// Writes one point into `out` (which must hold it) against the predictor `pred`; returns its
/// length. Does not touch the predictor.
fn encode_point(
    pred: &Predictor,
    encoding: Encoding,
    p: &Point,
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    let mut c = Cursor::new(out);
    match encoding {
        Encoding::Raw => {
            c.i64(p.position)?;
            c.u64(p.timestamp)?;
            c.u32(p.live_time)?;
            c.u8(p.flags.0)?;
            for &v in &p.counts {
                c.u32(v)?;
            }
        }
        Encoding::Compact => {
            c.u8(p.flags.0)?;
            let dpos = p.position.wrapping_sub(pred.pos);
            c.varint(varint::zigzag(dpos.wrapping_sub(pred.dpos)))?;
            let dts = p.timestamp.wrapping_sub(pred.ts);
            c.varint(varint::zigzag(dts.wrapping_sub(pred.dts) as i64))?;
            c.varint(varint::zigzag(
                i64::from(p.live_time) - i64::from(pred.live),
            ))?;
            for (&v, &prev) in p.counts.iter().zip(&pred.counts) {
                c.varint(varint::zigzag(i64::from(v) - i64::from(prev)))?;
            }
        }
    }
    Ok(c.position())
}

impl BatchWriter {
    /// An empty batch for `channel_mask` in `encoding`, holding at most `max_points` points
    /// (0 = as many as fit; never more than [`crate::limits::MAX_BATCH_POINTS`]).
    pub fn new(encoding: Encoding, channel_mask: u32, max_points: u16) -> Self {
        let cap = crate::limits::MAX_BATCH_POINTS;
        let max_points = if max_points == 0 {
            cap
        } else {
            usize::from(max_points).min(cap)
        };
        Self {
            encoding,
            channel_mask,
            n_channels: channel_mask.count_ones() as usize,
            max_points,
            buf: [0; MAX_BATCH_DATA],
            len: 0,
            n_points: 0,
            pred: Predictor::default(),
        }
    }

    /// Starts a new batch with the same settings.
    pub fn clear(&mut self) {
        self.len = 0;
        self.n_points = 0;
        self.pred = Predictor::default();
    }

    /// Points in the batch.
    pub fn n_points(&self) -> usize {
        self.n_points
    }

    /// True when no point has been added.
    pub fn is_empty(&self) -> bool {
        self.n_points == 0
    }

    /// Bytes of point data so far.
    pub fn data_len(&self) -> usize {
        self.len
    }

    /// The encoded point data.
    pub fn data(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The encoding in use.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The channel mask in use.
    pub fn channel_mask(&self) -> u32 {
        self.channel_mask
    }

    /// True when the point count limit is reached.
    pub fn is_full(&self) -> bool {
        self.n_points >= self.max_points
    }

    /// Appends a point. Fails with [`EncodeError::BufferTooSmall`] (batch unchanged) when it does
    /// not fit: send the batch, [`clear`](Self::clear), and push again.
    pub fn push(&mut self, p: &Point) -> Result<(), EncodeError> {
        if p.counts.len() != self.n_channels {
            return Err(EncodeError::InvalidValue {
                what: "point has a count per enabled channel",
            });
        }
        if self.is_full() {
            return Err(EncodeError::BufferTooSmall {
                needed: self.len + 1,
                available: self.len,
            });
        }
        // Encode straight into the batch when the worst case fits (the common case), else via a
        // scratch buffer so a point that does not fit leaves the batch unchanged. The predictor
        // is only read here and updated after the point is in.
        let worst = match self.encoding {
            Encoding::Raw => raw_point_len(self.n_channels),
            Encoding::Compact => 1 + 3 * varint::MAX_VARINT_LEN + 5 * self.n_channels,
        };
        let n = if MAX_BATCH_DATA - self.len >= worst {
            encode_point(&self.pred, self.encoding, p, &mut self.buf[self.len..])?
        } else {
            let mut tmp = [0u8; MAX_COMPACT_POINT];
            let n = encode_point(&self.pred, self.encoding, p, &mut tmp)?;
            let end = self.len + n;
            if end > MAX_BATCH_DATA {
                return Err(EncodeError::BufferTooSmall {
                    needed: end,
                    available: MAX_BATCH_DATA,
                });
            }
            self.buf[self.len..end].copy_from_slice(&tmp[..n]);
            n
        };
        self.len += n;
        self.n_points += 1;
        if self.encoding == Encoding::Compact {
            let pred = &mut self.pred;
            let dpos = p.position.wrapping_sub(pred.pos);
            let dts = p.timestamp.wrapping_sub(pred.ts);
            pred.pos = p.position;
            pred.dpos = dpos;
            pred.ts = p.timestamp;
            pred.dts = dts;
            pred.live = p.live_time;
            pred.counts[..p.counts.len()].copy_from_slice(&p.counts);
        }
        Ok(())
    }
}

/// One decoded point, borrowed from the decoder: the same fields as [`Point`], with the counts
/// as a slice of the decoder's state instead of a copy, so visiting a point moves no 160-byte
/// struct around (the host's fast path, [`PointBatch::decode_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PointView<'s> {
    /// Encoder position at the trigger, counts.
    pub position: i64,
    /// Device clock at the trigger, ticks since power-up.
    pub timestamp: u64,
    /// Gate (live) time of the bin, ticks.
    pub live_time: u32,
    /// Flag bits ([`PointFlags`] constants).
    pub flags: PointFlags,
    /// Per-bin counts, one per enabled channel, in channel order.
    pub counts: &'s [u32],
}

impl PointView<'_> {
    /// An owned copy.
    pub fn to_point(&self) -> Point {
        Point {
            position: self.position,
            timestamp: self.timestamp,
            live_time: self.live_time,
            flags: self.flags,
            // Cannot fail: a view never has more than MAX_CHANNELS counts.
            counts: Counts::from_slice(self.counts).unwrap_or_default(),
        }
    }
}

/// The decoder's state between points: the last point decoded, which is also the compact
/// predictor (the last values, and the last first differences of position and timestamp).
#[derive(Debug, Clone, Default)]
struct DecodeState {
    pred: Predictor,
    flags: PointFlags,
}

impl DecodeState {
    fn view(&self, n_channels: usize) -> PointView<'_> {
        PointView {
            position: self.pred.pos,
            timestamp: self.pred.ts,
            live_time: self.pred.live,
            flags: self.flags,
            counts: self.pred.counts.get(..n_channels).unwrap_or(&[]),
        }
    }

    /// Decodes one raw point from the front of `r` into the state.
    #[inline]
    fn step_raw(&mut self, r: &mut &[u8], n_channels: usize) -> Result<(), ParseError> {
        let trunc = ParseError::Truncated {
            msg_type: MessageType::PointBatch as u8,
        };
        let (head, mut rest) = r.split_first_chunk::<21>().ok_or(trunc)?;
        let (pos, head) = head.split_first_chunk::<8>().ok_or(trunc)?;
        let (ts, head) = head.split_first_chunk::<8>().ok_or(trunc)?;
        let (live, flags) = head.split_first_chunk::<4>().ok_or(trunc)?;
        for c in self.pred.counts.iter_mut().take(n_channels) {
            let (v, r2) = rest.split_first_chunk::<4>().ok_or(trunc)?;
            *c = u32::from_le_bytes(*v);
            rest = r2;
        }
        self.pred.pos = i64::from_le_bytes(*pos);
        self.pred.ts = u64::from_le_bytes(*ts);
        self.pred.live = u32::from_le_bytes(*live);
        self.flags = PointFlags(flags.first().copied().unwrap_or(0));
        *r = rest;
        Ok(())
    }

    /// Decodes one compact point from the front of `r` into the state. Errors are the ones met
    /// first in field order: a bad varint, or a live time or count that leaves u32. After an
    /// error the state is meaningless (the iterator stops).
    #[inline(always)]
    fn step_compact(&mut self, r: &mut &[u8], n_channels: usize) -> Result<(), ParseError> {
        let (&flags, mut rest) = r.split_first().ok_or(ParseError::Truncated {
            msg_type: MessageType::PointBatch as u8,
        })?;
        let bad = |field| ParseError::InvalidField { field, value: 0 };
        let ddpos = read_varint(&mut rest).ok_or(bad("point.position"))?;
        let ddts = read_varint(&mut rest).ok_or(bad("point.timestamp"))?;
        let dlive = read_varint(&mut rest).ok_or(bad("point.live_time"))?;
        let pred = &mut self.pred;
        pred.live = add_to_u32(pred.live, dlive, "point.live_time")?;
        for c in pred.counts.iter_mut().take(n_channels) {
            let d = read_varint(&mut rest).ok_or(bad("point.count"))?;
            *c = add_to_u32(*c, d, "point.count")?;
        }
        pred.dpos = pred.dpos.wrapping_add(varint::unzigzag(ddpos));
        pred.dts = pred.dts.wrapping_add(varint::unzigzag(ddts) as u64);
        pred.pos = pred.pos.wrapping_add(pred.dpos);
        pred.ts = pred.ts.wrapping_add(pred.dts);
        self.flags = PointFlags(flags);
        *r = rest;
        Ok(())
    }
}

/// `old` plus the zigzag difference `z`, if that stays a u32: a hostile difference near ±2^63
/// must neither overflow nor wrap into a second encoding of a valid value.
#[inline(always)]
fn add_to_u32(old: u32, z: u64, field: &'static str) -> Result<u32, ParseError> {
    let d = varint::unzigzag(z);
    // Wrapping in u64 is exact here: the true sum lies in [−2^63, 2^63 + 2^32), so a negative
    // sum wraps to ≥ 2^63 and a sum ≥ 2^32 stays there; only a true u32 lands below 2^32.
    u32::try_from(u64::from(old).wrapping_add(d as u64)).map_err(|_| ParseError::InvalidField {
        field,
        value: d as u64,
    })
}

/// Reads one varint from the front of `r`, advancing it; None if truncated or invalid.
///
/// One- and two-byte varints carry nearly all compact data; they are read here without a call,
/// the rest by the exact parser.
#[inline(always)]
fn read_varint(r: &mut &[u8]) -> Option<u64> {
    match **r {
        [b0, ref rest @ ..] if b0 < 0x80 => {
            *r = rest;
            Some(u64::from(b0))
        }
        [b0, b1, ref rest @ ..] if b1 < 0x80 && b1 != 0 => {
            *r = rest;
            Some(u64::from(b0 & 0x7f) | (u64::from(b1) << 7))
        }
        _ => {
            let (rest, v) = varint::parse_u64(r).ok()?;
            *r = rest;
            Some(v)
        }
    }
}

impl<'a> PointBatch<'a> {
    /// Decodes every point and calls `f` with each, in order, without building a [`Point`]:
    /// the fast path for a host that copies the values out anyway. Returns the number of
    /// points, or the error [`points`](Self::points) would yield, after `f` has seen the good
    /// points before it.
    pub fn decode_with(&self, mut f: impl FnMut(&PointView<'_>)) -> Result<usize, ParseError> {
        let n_channels = (self.channel_mask.count_ones() as usize).min(MAX_CHANNELS);
        let n_points = usize::from(self.n_points);
        let mut data = self.data;
        let mut state = DecodeState::default();
        // The encoding is matched once per batch rather than once per point, and the loop has
        // none of the iterator's per-item bookkeeping; the steps are the iterator's own.
        match self.encoding {
            Encoding::Raw => {
                for _ in 0..n_points {
                    state.step_raw(&mut data, n_channels)?;
                    f(&state.view(n_channels));
                }
            }
            Encoding::Compact => {
                for _ in 0..n_points {
                    state.step_compact(&mut data, n_channels)?;
                    f(&state.view(n_channels));
                }
            }
        }
        if !data.is_empty() {
            return Err(ParseError::TrailingBytes {
                msg_type: MessageType::PointBatch as u8,
                extra: data.len(),
            });
        }
        Ok(n_points)
    }
}

/// Decodes the points of one batch, in order. Yields at most `n_points` items; after an error it
/// yields nothing more. A batch whose data has bytes left after the last point yields a final
/// [`ParseError::TrailingBytes`].
#[derive(Debug, Clone)]
pub struct PointIter<'a> {
    data: &'a [u8],
    encoding: Encoding,
    n_channels: usize,
    remaining: usize,
    failed: bool,
    state: DecodeState,
}

impl<'a> PointIter<'a> {
    /// Iterates `n_points` points of `n_channels` channels in `data`.
    pub fn new(data: &'a [u8], encoding: Encoding, n_channels: usize, n_points: usize) -> Self {
        Self {
            data,
            encoding,
            n_channels: n_channels.min(MAX_CHANNELS),
            remaining: n_points,
            failed: false,
            state: DecodeState::default(),
        }
    }

    /// The next point as a view into the iterator (no copy of the counts); the same sequence
    /// as [`Iterator::next`], which is this plus [`PointView::to_point`].
    #[inline]
    pub fn next_view(&mut self) -> Option<Result<PointView<'_>, ParseError>> {
        if self.failed {
            return None;
        }
        if self.remaining == 0 {
            if self.data.is_empty() {
                return None;
            }
            self.failed = true;
            return Some(Err(ParseError::TrailingBytes {
                msg_type: MessageType::PointBatch as u8,
                extra: self.data.len(),
            }));
        }
        self.remaining -= 1;
        let r = match self.encoding {
            Encoding::Raw => self.state.step_raw(&mut self.data, self.n_channels),
            Encoding::Compact => self.state.step_compact(&mut self.data, self.n_channels),
        };
        match r {
            Ok(()) => Some(Ok(self.state.view(self.n_channels))),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

impl Iterator for PointIter<'_> {
    type Item = Result<Point, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_view().map(|r| r.map(|v| v.to_point()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining + 1))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// A field-by-field decoder straight from PROTOCOL.md §Points, one varint at a time, kept
    /// simple on purpose: the fast decoder must yield exactly its items.
    fn reference(
        data: &[u8],
        encoding: Encoding,
        n_channels: usize,
        n_points: usize,
    ) -> Vec<Result<Point, ParseError>> {
        let trunc = ParseError::Truncated {
            msg_type: MessageType::PointBatch as u8,
        };
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
            let (b, rest) = r.split_at_checked(n).ok_or(trunc)?;
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
        let mut pred = Predictor::default();
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
                pred.dpos = pred.dpos.wrapping_add(ddpos);
                pred.dts = pred.dts.wrapping_add(ddts as u64);
                pred.pos = pred.pos.wrapping_add(pred.dpos);
                pred.ts = pred.ts.wrapping_add(pred.dts);
                pred.live = in_u32("point.live_time", pred.live, dlive)?;
                for c in pred.counts.iter_mut().take(n_channels) {
                    *c = in_u32("point.count", *c, varint(&mut r, "point.count")?)?;
                    let _ = p.counts.push(*c);
                }
                p.position = pred.pos;
                p.timestamp = pred.ts;
                p.live_time = pred.live;
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

    /// What `decode_with` delivers, in the shape of the iterator's items.
    fn via_decode_with(batch: &PointBatch<'_>) -> Vec<Result<Point, ParseError>> {
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

    /// Points whose fields have differences of every size (1 to 10 varint bytes), so encoded
    /// batches exercise every fast-path boundary.
    fn arb_batch_points(n_channels: usize) -> impl Strategy<Value = Vec<Point>> {
        let small = prop_oneof![
            -3i64..3,
            -100i64..100,
            -20_000i64..20_000,
            any::<i64>().prop_map(|v| v >> 16),
            any::<i64>(),
        ];
        let count = prop_oneof![0u32..4, 100u32..300, 0u32..70_000, any::<u32>()];
        let point = (
            small.clone(),
            small,
            any::<u32>(),
            any::<u8>(),
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn decoders_agree_on_encoded_batches(
            (n_channels, points) in (0usize..=MAX_CHANNELS)
                .prop_flat_map(|n| (Just(n), arb_batch_points(n))),
            compact: bool,
        ) {
            let encoding = if compact { Encoding::Compact } else { Encoding::Raw };
            let (data, n) = encoded(&points, encoding, n_channels);
            check(&data, encoding, n_channels, n);
            let decoded: Vec<_> = batch(&data, encoding, n_channels, n).points().collect();
            for (got, want) in decoded.iter().zip(&points) {
                prop_assert_eq!(got.as_ref().ok(), Some(want));
            }
        }

        #[test]
        fn decoders_agree_on_damaged_batches(
            (n_channels, points) in (0usize..=12).prop_flat_map(|n| (Just(n), arb_batch_points(n))),
            compact: bool,
            damage in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
            extra_points in 0u16..3,
        ) {
            let encoding = if compact { Encoding::Compact } else { Encoding::Raw };
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
            compact: bool,
        ) {
            let encoding = if compact { Encoding::Compact } else { Encoding::Raw };
            check(&data, encoding, n_channels, n_points);
        }
    }
}
