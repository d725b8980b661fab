//! Raw encoding (0): every point at fixed width,
//! `position i64 | timestamp u64 | live_time u32 | flags u8 | counts u32×n`, little-endian.

use super::{Decode, Last, Point, PointFlags, PointView, trailing, truncated};
use crate::cursor::Cursor;
use crate::error::{EncodeError, ParseError};

/// Bytes of one raw point with `n` channels.
pub const fn raw_point_len(n: usize) -> usize {
    21 + 4 * n
}

/// Writes one raw point into `out`; returns its length.
pub(super) fn encode(p: &Point, out: &mut [u8]) -> Result<usize, EncodeError> {
    let mut c = Cursor::new(out);
    c.i64(p.position)?;
    c.u64(p.timestamp)?;
    c.u32(p.live_time)?;
    c.u8(p.flags.0)?;
    for &v in &p.counts {
        c.u32(v)?;
    }
    Ok(c.position())
}

/// Reads raw points one at a time.
#[derive(Debug, Clone)]
pub(super) struct RawDecoder<'a> {
    rest: &'a [u8],
    n_channels: usize,
    last: Last,
}

impl<'a> Decode<'a> for RawDecoder<'a> {
    fn new(data: &'a [u8], n_channels: usize) -> Self {
        Self {
            rest: data,
            n_channels,
            last: Last::default(),
        }
    }

    #[inline]
    fn step(&mut self) -> Result<(), ParseError> {
        let (head, mut rest) = self.rest.split_first_chunk::<21>().ok_or(truncated())?;
        let (pos, head) = head.split_first_chunk::<8>().ok_or(truncated())?;
        let (ts, head) = head.split_first_chunk::<8>().ok_or(truncated())?;
        let (live, flags) = head.split_first_chunk::<4>().ok_or(truncated())?;
        for c in self.last.counts.iter_mut().take(self.n_channels) {
            let (v, r2) = rest.split_first_chunk::<4>().ok_or(truncated())?;
            *c = u32::from_le_bytes(*v);
            rest = r2;
        }
        self.last.pos = i64::from_le_bytes(*pos);
        self.last.ts = u64::from_le_bytes(*ts);
        self.last.live = u32::from_le_bytes(*live);
        self.last.flags = PointFlags(flags.first().copied().unwrap_or(0));
        self.rest = rest;
        Ok(())
    }

    #[inline(always)]
    fn view(&self) -> PointView<'_> {
        self.last.view(self.n_channels)
    }

    fn finish(&self) -> Result<(), ParseError> {
        trailing(self.rest.len())
    }
}
