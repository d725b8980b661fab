//! Compact encoding (1): `flags u8`, then zigzag varints of the second difference of position
//! and of timestamp, the first difference of live time, and the first difference of each
//! channel's count, all against the previous point *of the same batch* (the first point of a
//! batch is predicted from zeros, so every batch decodes on its own). At steady velocity the
//! second differences are near 0 and take one byte.

use super::{Decode, Last, Point, PointFlags, PointView, trailing, truncated};
use crate::cursor::Cursor;
use crate::error::{EncodeError, ParseError};
use crate::varint;

/// Prediction state of the compact encoding (identical on both sides): the last point, and the
/// last first differences of position and timestamp.
#[derive(Debug, Clone, Default)]
pub(super) struct Predictor {
    last: Last,
    dpos: i64,
    dts: u64,
}

/// Longest compact point with `n` channels: flags, three 10-byte varints, 5-byte count varints.
pub(super) const fn max_len(n: usize) -> usize {
    1 + 3 * varint::MAX_VARINT_LEN + 5 * n
}

impl Predictor {
    /// Writes one point into `out` (which must hold it); returns its length. Does not touch
    /// the predictor.
    pub(super) fn encode(&self, p: &Point, out: &mut [u8]) -> Result<usize, EncodeError> {
        let mut c = Cursor::new(out);
        c.u8(p.flags.0)?;
        let dpos = p.position.wrapping_sub(self.last.pos);
        c.varint(varint::zigzag(dpos.wrapping_sub(self.dpos)))?;
        let dts = p.timestamp.wrapping_sub(self.last.ts);
        c.varint(varint::zigzag(dts.wrapping_sub(self.dts) as i64))?;
        c.varint(varint::zigzag(
            i64::from(p.live_time) - i64::from(self.last.live),
        ))?;
        for (&v, &prev) in p.counts.iter().zip(&self.last.counts) {
            c.varint(varint::zigzag(i64::from(v) - i64::from(prev)))?;
        }
        Ok(c.position())
    }

    /// Takes `p` (just written) as the last point.
    pub(super) fn update(&mut self, p: &Point) {
        let dpos = p.position.wrapping_sub(self.last.pos);
        let dts = p.timestamp.wrapping_sub(self.last.ts);
        self.last.pos = p.position;
        self.dpos = dpos;
        self.last.ts = p.timestamp;
        self.dts = dts;
        self.last.live = p.live_time;
        self.last.counts[..p.counts.len()].copy_from_slice(&p.counts);
    }
}

/// Reads compact points one at a time, straight into the predictor.
#[derive(Debug, Clone)]
pub(super) struct CompactDecoder<'a> {
    rest: &'a [u8],
    n_channels: usize,
    pred: Predictor,
}

impl<'a> Decode<'a> for CompactDecoder<'a> {
    fn new(data: &'a [u8], n_channels: usize) -> Self {
        Self {
            rest: data,
            n_channels,
            pred: Predictor::default(),
        }
    }

    /// Errors are the ones met first in field order: a bad varint, or a live time or count that
    /// leaves u32. After an error the state is meaningless (the caller stops).
    #[inline(always)]
    fn step(&mut self) -> Result<(), ParseError> {
        let (&flags, mut rest) = self.rest.split_first().ok_or(truncated())?;
        let bad = |field| ParseError::InvalidField { field, value: 0 };
        let ddpos = read_varint(&mut rest).ok_or(bad("point.position"))?;
        let ddts = read_varint(&mut rest).ok_or(bad("point.timestamp"))?;
        let dlive = read_varint(&mut rest).ok_or(bad("point.live_time"))?;
        let pred = &mut self.pred;
        pred.last.live = add_to_u32(pred.last.live, dlive, "point.live_time")?;
        for c in pred.last.counts.iter_mut().take(self.n_channels) {
            let d = read_varint(&mut rest).ok_or(bad("point.count"))?;
            *c = add_to_u32(*c, d, "point.count")?;
        }
        pred.dpos = pred.dpos.wrapping_add(varint::unzigzag(ddpos));
        pred.dts = pred.dts.wrapping_add(varint::unzigzag(ddts) as u64);
        pred.last.pos = pred.last.pos.wrapping_add(pred.dpos);
        pred.last.ts = pred.last.ts.wrapping_add(pred.dts);
        pred.last.flags = PointFlags(flags);
        self.rest = rest;
        Ok(())
    }

    #[inline(always)]
    fn view(&self) -> PointView<'_> {
        self.pred.last.view(self.n_channels)
    }

    fn finish(&self) -> Result<(), ParseError> {
        trailing(self.rest.len())
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
