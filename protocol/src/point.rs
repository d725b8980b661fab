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
use crate::varint;
use heapless::Vec;
use nom::number::complete::{le_i64, le_u8, le_u32, le_u64};

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
        let mut tmp = [0u8; MAX_COMPACT_POINT];
        let mut pred = self.pred.clone();
        let n = {
            let mut c = Cursor::new(&mut tmp);
            match self.encoding {
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
                    for (i, &v) in p.counts.iter().enumerate() {
                        c.varint(varint::zigzag(i64::from(v) - i64::from(pred.counts[i])))?;
                        pred.counts[i] = v;
                    }
                    pred.pos = p.position;
                    pred.dpos = dpos;
                    pred.ts = p.timestamp;
                    pred.dts = dts;
                    pred.live = p.live_time;
                }
            }
            c.position()
        };
        let end = self.len + n;
        if end > MAX_BATCH_DATA {
            return Err(EncodeError::BufferTooSmall {
                needed: end,
                available: MAX_BATCH_DATA,
            });
        }
        self.buf[self.len..end].copy_from_slice(&tmp[..n]);
        self.len = end;
        self.n_points += 1;
        self.pred = pred;
        Ok(())
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
    pred: Predictor,
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
            pred: Predictor::default(),
        }
    }

    fn decode_one(&mut self) -> Result<Point, ParseError> {
        let trunc = ParseError::Truncated {
            msg_type: MessageType::PointBatch as u8,
        };
        let mut p = Point::default();
        let mut i = self.data;
        match self.encoding {
            Encoding::Raw => {
                let (r, pos) = le_i64::<_, nom::error::Error<&[u8]>>(i).map_err(|_| trunc)?;
                let (r, ts) = le_u64::<_, nom::error::Error<&[u8]>>(r).map_err(|_| trunc)?;
                let (r, live) = le_u32::<_, nom::error::Error<&[u8]>>(r).map_err(|_| trunc)?;
                let (mut r, flags) = le_u8::<_, nom::error::Error<&[u8]>>(r).map_err(|_| trunc)?;
                for _ in 0..self.n_channels {
                    let (r2, v) = le_u32::<_, nom::error::Error<&[u8]>>(r).map_err(|_| trunc)?;
                    // Cannot fail: n_channels ≤ MAX_CHANNELS.
                    let _ = p.counts.push(v);
                    r = r2;
                }
                p.position = pos;
                p.timestamp = ts;
                p.live_time = live;
                p.flags = PointFlags(flags);
                i = r;
            }
            Encoding::Compact => {
                // Hand-rolled rather than nom: this loop is the host's hot path (≈13 varints a
                // point), and the one-byte fast path of `read_varint` carries most of it.
                let bad = |field| ParseError::InvalidField { field, value: 0 };
                let (&flags, mut r) = i.split_first().ok_or(trunc)?;
                let ddpos = read_varint(&mut r).ok_or(bad("point.position"))?;
                let ddts = read_varint(&mut r).ok_or(bad("point.timestamp"))?;
                let dlive = read_varint(&mut r).ok_or(bad("point.live_time"))?;
                let (ddpos, ddts, dlive) = (
                    varint::unzigzag(ddpos),
                    varint::unzigzag(ddts),
                    varint::unzigzag(dlive),
                );
                let pred = &mut self.pred;
                let dpos = pred.dpos.wrapping_add(ddpos);
                let dts = pred.dts.wrapping_add(ddts as u64);
                p.position = pred.pos.wrapping_add(dpos);
                p.timestamp = pred.ts.wrapping_add(dts);
                // checked_add: a hostile delta near ±2^63 must neither overflow nor wrap into a
                // second encoding of a valid value.
                p.live_time = i64::from(pred.live)
                    .checked_add(dlive)
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or(ParseError::InvalidField {
                        field: "point.live_time",
                        value: dlive as u64,
                    })?;
                p.flags = PointFlags(flags);
                for c in pred.counts.iter_mut().take(self.n_channels) {
                    let d = varint::unzigzag(read_varint(&mut r).ok_or(bad("point.count"))?);
                    let v = i64::from(*c)
                        .checked_add(d)
                        .and_then(|v| u32::try_from(v).ok())
                        .ok_or(ParseError::InvalidField {
                            field: "point.count",
                            value: d as u64,
                        })?;
                    *c = v;
                    // Cannot fail: n_channels ≤ MAX_CHANNELS.
                    let _ = p.counts.push(v);
                }
                pred.pos = p.position;
                pred.dpos = dpos;
                pred.ts = p.timestamp;
                pred.dts = dts;
                pred.live = p.live_time;
                i = r;
            }
        }
        self.data = i;
        Ok(p)
    }
}

/// Reads one varint from the front of `r`, advancing it; None if truncated or invalid.
#[inline(always)]
fn read_varint(r: &mut &[u8]) -> Option<u64> {
    if let [b, rest @ ..] = *r
        && *b < 0x80
    {
        *r = rest;
        return Some(u64::from(*b));
    }
    let (rest, v) = varint::parse_u64(r).ok()?;
    *r = rest;
    Some(v)
}

impl Iterator for PointIter<'_> {
    type Item = Result<Point, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
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
        let r = self.decode_one();
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining + 1))
    }
}
