//! A whole batch: the [`PointBatch`] message body (header fields and the encoded points), the
//! [`BatchWriter`] that fills one, and the decoding loops over its points.

use super::compact::{CompactDecoder, Predictor};
use super::raw::{self, RawDecoder, raw_point_len};
use super::rice::{RiceDecoder, RiceEncoder};
use super::{Decode, Encoding, Point, PointView};
use crate::error::{EncodeError, ParseError};
use crate::fields::record;
use crate::limits::{MAX_BATCH_POINTS, MAX_CHANNELS, MAX_PAYLOAD};

/// Bytes of the batch header that precedes the point data in a `PointBatch` payload.
pub const BATCH_HEADER_LEN: usize = 15;
/// Room for point data in one batch.
pub const MAX_BATCH_DATA: usize = MAX_PAYLOAD - BATCH_HEADER_LEN;

/// A batch of consecutive points of one scan (the payload of a `PointBatch` message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointBatch<'a> {
    /// Scan the points belong to.
    pub scan_id: u32,
    /// Index (0-based, within the scan) of the first point.
    pub first_index: u32,
    /// Channels present in each point.
    pub channel_mask: u32,
    /// Encoding of `data`.
    pub encoding: Encoding,
    /// Number of points in `data`.
    pub n_points: u16,
    /// Encoded points.
    pub data: &'a [u8],
}

record!('a, PointBatch<'a>, "batch", check(PointBatch::check_parsed, PointBatch::check_emit), {
    scan_id, first_index, channel_mask, encoding, n_points, data
});

impl<'a> PointBatch<'a> {
    /// The batch held by `writer`.
    pub fn from_writer(scan_id: u32, first_index: u32, writer: &'a BatchWriter) -> Self {
        Self {
            scan_id,
            first_index,
            channel_mask: writer.channel_mask(),
            encoding: writer.encoding(),
            // BatchWriter never holds more than MAX_BATCH_POINTS (< 2^16).
            n_points: writer.n_points() as u16,
            data: writer.data(),
        }
    }

    /// The rules a batch's header sets for its data that can be checked without decoding: at
    /// most [`MAX_BATCH_POINTS`] points, and a raw batch's exact length.
    fn check_parsed(&self, msg_type: u8) -> Result<(), ParseError> {
        if usize::from(self.n_points) > MAX_BATCH_POINTS {
            return Err(ParseError::InvalidField {
                field: "batch.n_points",
                value: self.n_points.into(),
            });
        }
        if self.encoding == Encoding::Raw {
            let want = usize::from(self.n_points) * raw_point_len(self.n_channels());
            let have = self.data.len();
            if have < want {
                return Err(ParseError::Truncated { msg_type });
            }
            if have > want {
                return Err(ParseError::TrailingBytes {
                    msg_type,
                    extra: have - want,
                });
            }
        }
        Ok(())
    }

    fn check_emit(&self) -> Result<(), EncodeError> {
        if usize::from(self.n_points) > MAX_BATCH_POINTS {
            return Err(EncodeError::InvalidValue {
                what: "more than 1024 points in one batch",
            });
        }
        Ok(())
    }

    fn n_channels(&self) -> usize {
        (self.channel_mask.count_ones() as usize).min(MAX_CHANNELS)
    }

    /// Decodes the points.
    pub fn points(&self) -> PointIter<'a> {
        PointIter::new(
            self.data,
            self.encoding,
            self.n_channels(),
            usize::from(self.n_points),
        )
    }

    /// Decodes every point and calls `f` with each, in order, without building a [`Point`]:
    /// the fast path for a host that copies the values out anyway. Returns the number of
    /// points, or the error [`points`](Self::points) would yield, after `f` has seen the good
    /// points before it.
    pub fn decode_with(&self, f: impl FnMut(&PointView<'_>)) -> Result<usize, ParseError> {
        let (data, n, points) = (self.data, self.n_channels(), usize::from(self.n_points));
        // The encoding is matched once per batch rather than once per point, and the loop has
        // none of the iterator's per-item bookkeeping; the steps are the iterator's own.
        match self.encoding {
            Encoding::Raw => run(RawDecoder::new(data, n), points, f),
            Encoding::Compact => run(CompactDecoder::new(data, n), points, f),
            Encoding::Rice => run(RiceDecoder::new(data, n), points, f),
        }
    }
}

#[inline(always)]
fn run<'a, D: Decode<'a>>(
    mut d: D,
    points: usize,
    mut f: impl FnMut(&PointView<'_>),
) -> Result<usize, ParseError> {
    for _ in 0..points {
        d.step()?;
        f(&d.view());
    }
    d.finish()?;
    Ok(points)
}

/// The encoder state of one batch. Inline, not boxed: there is no allocator, and a writer is
/// made once per scan.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
enum Encoder {
    Raw,
    Compact(Predictor),
    Rice(RiceEncoder),
}

impl Encoder {
    fn new(encoding: Encoding) -> Self {
        match encoding {
            Encoding::Raw => Self::Raw,
            Encoding::Compact => Self::Compact(Predictor::default()),
            Encoding::Rice => Self::Rice(RiceEncoder::default()),
        }
    }
}

/// Slack after the data area: the bit writer stores whole 64-bit words.
const SLACK: usize = 8;

/// Accumulates points into the data area of one batch (no allocation; 2 KiB).
#[derive(Debug, Clone)]
pub struct BatchWriter {
    encoding: Encoding,
    channel_mask: u32,
    n_channels: usize,
    max_points: usize,
    buf: [u8; MAX_BATCH_DATA + SLACK],
    len: usize,
    n_points: usize,
    enc: Encoder,
}

impl BatchWriter {
    /// An empty batch for `channel_mask` in `encoding`, holding at most `max_points` points
    /// (0 = as many as fit; never more than [`MAX_BATCH_POINTS`]).
    pub fn new(encoding: Encoding, channel_mask: u32, max_points: u16) -> Self {
        let max_points = if max_points == 0 {
            MAX_BATCH_POINTS
        } else {
            usize::from(max_points).min(MAX_BATCH_POINTS)
        };
        Self {
            encoding,
            channel_mask,
            n_channels: channel_mask.count_ones() as usize,
            max_points,
            buf: [0; MAX_BATCH_DATA + SLACK],
            len: 0,
            n_points: 0,
            enc: Encoder::new(encoding),
        }
    }

    /// Starts a new batch with the same settings.
    pub fn clear(&mut self) {
        self.len = 0;
        self.n_points = 0;
        match &mut self.enc {
            Encoder::Raw => {}
            Encoder::Compact(p) => *p = Predictor::default(),
            Encoder::Rice(r) => r.clear(),
        }
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
        let room = MAX_BATCH_DATA - self.len;
        let worst = self.encoding.max_point_len(self.n_channels);
        self.len = match &mut self.enc {
            Encoder::Rice(r) => r.push(&mut self.buf, MAX_BATCH_DATA, p)?,
            // Encode straight into the batch when the worst case fits (the common case), else
            // via a scratch buffer so a point that does not fit leaves the batch unchanged.
            // The predictor is only read here and updated after the point is in.
            Encoder::Raw | Encoder::Compact(_) => {
                let enc = &self.enc;
                let write = |out: &mut [u8]| match enc {
                    Encoder::Compact(pred) => pred.encode(p, out),
                    _ => raw::encode(p, out),
                };
                let n = if room >= worst {
                    write(&mut self.buf[self.len..MAX_BATCH_DATA])?
                } else {
                    let mut tmp = [0u8; crate::limits::MAX_COMPACT_POINT];
                    let n = write(&mut tmp)?;
                    let dst = self
                        .buf
                        .get_mut(self.len..self.len + n)
                        .filter(|_| n <= room);
                    dst.ok_or(EncodeError::BufferTooSmall {
                        needed: self.len + n,
                        available: MAX_BATCH_DATA,
                    })?
                    .copy_from_slice(&tmp[..n]);
                    n
                };
                if let Encoder::Compact(pred) = &mut self.enc {
                    pred.update(p);
                }
                self.len + n
            }
        };
        self.n_points += 1;
        Ok(())
    }
}

/// The decoder of one batch, whichever its encoding (inline: there is no allocator).
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
enum Decoder<'a> {
    Raw(RawDecoder<'a>),
    Compact(CompactDecoder<'a>),
    Rice(RiceDecoder<'a>),
}

/// Decodes the points of one batch, in order. Yields at most `n_points` items; after an error it
/// yields nothing more. A batch whose data has bytes left after the last point yields a final
/// [`ParseError::TrailingBytes`] (or, for a Rice batch with non-zero padding bits, a final
/// [`ParseError::InvalidField`]).
#[derive(Debug, Clone)]
pub struct PointIter<'a> {
    decoder: Decoder<'a>,
    remaining: usize,
    done: bool,
}

impl<'a> PointIter<'a> {
    /// Iterates `n_points` points of `n_channels` channels in `data`.
    pub fn new(data: &'a [u8], encoding: Encoding, n_channels: usize, n_points: usize) -> Self {
        let n = n_channels.min(MAX_CHANNELS);
        Self {
            decoder: match encoding {
                Encoding::Raw => Decoder::Raw(RawDecoder::new(data, n)),
                Encoding::Compact => Decoder::Compact(CompactDecoder::new(data, n)),
                Encoding::Rice => Decoder::Rice(RiceDecoder::new(data, n)),
            },
            remaining: n_points,
            done: false,
        }
    }

    /// The next point as a view into the iterator (no copy of the counts); the same sequence
    /// as [`Iterator::next`], which is this plus [`PointView::to_point`].
    #[inline]
    pub fn next_view(&mut self) -> Option<Result<PointView<'_>, ParseError>> {
        if self.done {
            return None;
        }
        if self.remaining == 0 {
            self.done = true;
            let end = match &self.decoder {
                Decoder::Raw(d) => d.finish(),
                Decoder::Compact(d) => d.finish(),
                Decoder::Rice(d) => d.finish(),
            };
            return end.err().map(Err);
        }
        self.remaining -= 1;
        let r = match &mut self.decoder {
            Decoder::Raw(d) => d.step(),
            Decoder::Compact(d) => d.step(),
            Decoder::Rice(d) => d.step(),
        };
        if let Err(e) = r {
            self.done = true;
            return Some(Err(e));
        }
        Some(Ok(match &self.decoder {
            Decoder::Raw(d) => d.view(),
            Decoder::Compact(d) => d.view(),
            Decoder::Rice(d) => d.view(),
        }))
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
