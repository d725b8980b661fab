//! Points and their encodings inside a point batch (PROTOCOL.md §Points), and the batch itself.
//!
//! * [`raw`](Encoding::Raw): fixed width, 21 + 4n bytes a point (`raw.rs`).
//! * [`compact`](Encoding::Compact): second/first differences as zigzag varints (`compact.rs`).
//! * [`rice`](Encoding::Rice): adaptive Rice codes of prediction residuals in a bit stream
//!   (`rice.rs`, on `bits.rs`).
//!
//! `batch.rs` holds what works on a whole batch: the [`PointBatch`] message body, the
//! [`BatchWriter`] that fills one, and the decoders' loops ([`PointBatch::decode_with`],
//! [`PointIter`]). Every encoding predicts only from points of the same batch, so each batch
//! decodes on its own.

mod batch;
mod bits;
mod compact;
mod raw;
mod rice;

pub use batch::{BATCH_HEADER_LEN, BatchWriter, MAX_BATCH_DATA, PointBatch, PointIter};
pub use raw::raw_point_len;

use crate::error::ParseError;
use crate::frame::MessageType;
use crate::limits::MAX_CHANNELS;
use heapless::Vec;

/// Point encoding inside a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Encoding {
    /// Fixed-width little-endian fields.
    Raw = 0,
    /// Delta/zigzag-varint fields.
    Compact = 1,
    /// Adaptive Rice codes of prediction residuals, bit-packed.
    Rice = 2,
}

impl Encoding {
    /// Every encoding, in code order.
    pub const ALL: [Encoding; 3] = [Self::Raw, Self::Compact, Self::Rice];

    /// From the wire code.
    pub fn from_u8(v: u8) -> Option<Self> {
        Self::ALL.iter().copied().find(|e| *e as u8 == v)
    }

    /// Most bytes one point of `n_channels` channels can take in a batch of this encoding, so a
    /// writer that has this much room left can always take the next point.
    pub const fn max_point_len(self, n_channels: usize) -> usize {
        match self {
            Self::Raw => raw_point_len(n_channels),
            Self::Compact => compact::max_len(n_channels),
            Self::Rice => rice::max_len(n_channels),
        }
    }
}

crate::fields::code_field!(Encoding);

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

/// The last point decoded (or encoded), the part of every codec's state a view shows.
#[derive(Debug, Clone, Default)]
struct Last {
    pos: i64,
    ts: u64,
    live: u32,
    flags: PointFlags,
    counts: [u32; MAX_CHANNELS],
}

impl Last {
    #[inline(always)]
    fn view(&self, n_channels: usize) -> PointView<'_> {
        PointView {
            position: self.pos,
            timestamp: self.ts,
            live_time: self.live,
            flags: self.flags,
            counts: self.counts.get(..n_channels).unwrap_or(&[]),
        }
    }
}

/// One encoding's decoder: it owns the batch's data and the state between points.
trait Decode<'a>: Sized {
    /// A decoder at the first point of `data`, `n_channels` (≤ 32) counts a point.
    fn new(data: &'a [u8], n_channels: usize) -> Self;
    /// Decodes the next point into the state. After an error the state is meaningless.
    fn step(&mut self) -> Result<(), ParseError>;
    /// The point decoded last.
    fn view(&self) -> PointView<'_>;
    /// After the last point: anything left over is an error.
    fn finish(&self) -> Result<(), ParseError>;
}

/// The data ended inside a point.
#[inline(always)]
fn truncated() -> ParseError {
    ParseError::Truncated {
        msg_type: MessageType::PointBatch as u8,
    }
}

/// `extra` bytes after the last point: an error unless 0.
#[inline]
fn trailing(extra: usize) -> Result<(), ParseError> {
    if extra == 0 {
        Ok(())
    } else {
        Err(ParseError::TrailingBytes {
            msg_type: MessageType::PointBatch as u8,
            extra,
        })
    }
}

#[cfg(test)]
mod tests;
