//! Rice encoding (2): a bit stream of adaptive Rice codes of prediction residuals
//! (PROTOCOL.md §Rice encoding). Per point, least significant bit first:
//!
//! 1. one bit: 0 = same flags as the previous point (0 before the first), 1 = eight bits of new
//!    flags follow (which must differ);
//! 2. position minus its prediction, the last position plus a running mean of the steps
//!    (i64, wrapping), zigzag;
//! 3. timestamp, the same way (u64 wrapping, read as i64);
//! 4. live time minus its prediction, the last live time plus the change of the timestamp step
//!    (u32 wrapping, read as i32), zigzag;
//! 5. per channel, the count minus its prediction, a running mean of the channel's counts in
//!    this batch (u32 wrapping, read as i32), zigzag.
//!
//! Point 0 of a batch is predicted from zeros and written plain (bit length, then the bits);
//! every later field is a Rice code whose parameter `k` comes from a running mean of the
//! field's last coded values, so a channel of thousands of counts and one of a few both cost
//! about their entropy. Everything starts from zero at the start of a batch, so every batch
//! decodes on its own. A value whose quotient would reach [`QMAX`] is written as an escape
//! instead; the batch ends with zero bits up to a byte boundary. Every point sequence has
//! exactly one encoding: the decoder refuses an escape of a value the Rice code holds, a field
//! longer than its width, a flags change to the same flags, and non-zero padding.

use super::bits::{BitReader, BitWriter};
use super::{Decode, Last, Point, PointFlags, PointView, trailing, truncated};
use crate::error::{EncodeError, ParseError};
use crate::limits::MAX_CHANNELS;
use crate::varint::{unzigzag, zigzag};

/// A run of this many zero bits is an escape: a Rice code's quotient is always smaller.
pub const QMAX: u32 = 16;
/// Bits of an escape's length field (value = significant bits of the value − 1).
pub const ESCAPE_LEN_BITS: u32 = 6;
/// The running mean of a field is kept ×16 (`s`); `k` = bit length of `s >> K_SHIFT`, so
/// 2^k is about the mean coded value (the usual choice for geometric-like residuals).
pub const K_SHIFT: u32 = 5;
/// A coded value counts in the running mean as at most 2^(k + ADAPT_CLAMP).
pub const ADAPT_CLAMP: u32 = 8;
/// Largest `k` of a 64-bit field: keeps the running mean below 2^64 (16 × 2^(51 + 8)) and every
/// plain code below 2^55.
pub const KMAX_64: u32 = 51;
/// Largest `k` of a 32-bit field: below 2^32 every plain code stays (16 × 2^27 = 2^31), so
/// a decoded value never leaves the field and larger values take the escape.
pub const KMAX_32: u32 = 27;
/// A channel's running mean of coded values starts at `COUNT_START × √(first count)`.
pub const COUNT_START: u32 = 27;
/// The running mean of position and timestamp steps moves 1/2^STEP_SHIFT of the way to each
/// step.
pub const STEP_SHIFT: u32 = 2;
/// Bits of the length of a plain 64-bit field (point 0 of a batch).
pub const LEN_BITS_64: u32 = 7;
/// Bits of the length of a plain 32-bit field.
pub const LEN_BITS_32: u32 = 6;
/// The running mean of a channel's counts moves 1/2^COUNT_SHIFT of the way to each count.
pub const COUNT_SHIFT: u32 = 2;

/// Longest Rice point with `n` channels, in bytes: a flags change, two 64-bit and `1 + n`
/// 32-bit escapes (a plain point 0 is shorter).
pub(super) const fn max_len(n: usize) -> usize {
    let escape = QMAX + ESCAPE_LEN_BITS;
    let bits = 9 + 2 * (escape + 63) as usize + (1 + n) * (escape + 31) as usize;
    bits.div_ceil(8)
}

/// The adaptive Rice parameter of one field: 16 × a running mean of its coded values.
#[derive(Debug, Clone, Copy, Default)]
struct Adapt(u64);

impl Adapt {
    #[inline(always)]
    fn k(self, kmax: u32) -> u32 {
        (64 - (self.0 >> K_SHIFT).leading_zeros()).min(kmax)
    }

    /// Takes `z`, coded with parameter `k`, into the mean. A value counts as at most 2^(k+8)
    /// (16 × the escape threshold), so one outlier moves `k` up by at most about four, and a
    /// field whose level jumps gets there in a few points.
    #[inline(always)]
    fn update(&mut self, z: u64, k: u32) {
        self.0 = self.0 - (self.0 >> 4) + z.min(1 << (k + ADAPT_CLAMP));
    }
}

/// The state both sides keep between points of a batch (all zero at its start).
#[derive(Debug, Clone)]
pub(super) struct State {
    last: Last,
    /// Points coded so far in this batch (saturating).
    index: u32,
    /// 16 × running mean of the position step and of the timestamp step (wrapping).
    vpos: i64,
    vts: i64,
    /// The last timestamp step, and this point's change of it (0 until there are two steps).
    dts: i64,
    ddts: i64,
    /// 16 × running mean of each channel's counts.
    mean: [u64; MAX_CHANNELS],
    a_pos: Adapt,
    a_ts: Adapt,
    a_live: Adapt,
    a_count: [Adapt; MAX_CHANNELS],
}

impl Default for State {
    fn default() -> Self {
        Self {
            last: Last::default(),
            index: 0,
            vpos: 0,
            vts: 0,
            dts: 0,
            ddts: 0,
            mean: [0; MAX_CHANNELS],
            a_pos: Adapt::default(),
            a_ts: Adapt::default(),
            a_live: Adapt::default(),
            a_count: [Adapt::default(); MAX_CHANNELS],
        }
    }
}

#[inline(always)]
fn zigzag32(v: u32) -> u64 {
    let v = v as i32;
    u64::from(((v << 1) ^ (v >> 31)) as u32)
}

#[inline(always)]
fn unzigzag32(z: u64) -> u32 {
    let z = z as u32;
    (z >> 1) ^ (z & 1).wrapping_neg()
}

/// A running mean ×16, rounded to a value.
#[inline(always)]
fn predict(mean: u64) -> u32 {
    ((mean + 8) >> 4) as u32
}

/// Moves a running mean ×16 of steps a fraction of the way to `step` (wrapping: absurd steps
/// give absurd predictions, never an error).
#[inline(always)]
fn follow(mean: i64, step: i64, first: bool) -> i64 {
    let target = step.wrapping_shl(4);
    if first {
        target
    } else {
        mean.wrapping_add(target.wrapping_sub(mean) >> STEP_SHIFT)
    }
}

impl State {
    // For each field, `*_z` is the coded value of a point's field and `*_apply` takes the coded
    // value back, rebuilds the field and moves the state on. The encoder calls the same
    // `*_apply` with the value it wrote, so both sides hold the same state by construction.
    // Point 0 of a batch is predicted from zeros; position and timestamp are then predicted as
    // the last value plus the running mean of the steps (taken from the first step at point 1).

    #[inline(always)]
    fn pos_pred(&self) -> i64 {
        self.last.pos.wrapping_add(self.vpos.wrapping_add(8) >> 4)
    }
    #[inline(always)]
    fn pos_z(&self, pos: i64) -> u64 {
        zigzag(pos.wrapping_sub(self.pos_pred()))
    }
    #[inline(always)]
    fn pos_apply(&mut self, z: u64) {
        let pos = self.pos_pred().wrapping_add(unzigzag(z));
        if self.index > 0 {
            self.vpos = follow(self.vpos, pos.wrapping_sub(self.last.pos), self.index == 1);
        }
        self.last.pos = pos;
    }

    #[inline(always)]
    fn ts_pred(&self) -> u64 {
        self.last
            .ts
            .wrapping_add((self.vts.wrapping_add(8) >> 4) as u64)
    }
    #[inline(always)]
    fn ts_z(&self, ts: u64) -> u64 {
        zigzag(ts.wrapping_sub(self.ts_pred()) as i64)
    }
    #[inline(always)]
    fn ts_apply(&mut self, z: u64) {
        let ts = self.ts_pred().wrapping_add(unzigzag(z) as u64);
        if self.index > 0 {
            let step = ts.wrapping_sub(self.last.ts) as i64;
            self.vts = follow(self.vts, step, self.index == 1);
            self.ddts = if self.index > 1 {
                step.wrapping_sub(self.dts)
            } else {
                0
            };
            self.dts = step;
        }
        self.last.ts = ts;
    }

    /// Live time is predicted to change as the timestamp step does (a gate that stays open for
    /// the interval less a fixed dead part). Call after `ts_apply`.
    #[inline(always)]
    fn live_pred(&self) -> u32 {
        self.last.live.wrapping_add(self.ddts as u32)
    }
    #[inline(always)]
    fn live_apply(&mut self, z: u64) {
        self.last.live = self.live_pred().wrapping_add(unzigzag32(z));
    }

    #[inline(always)]
    fn count_apply(&mut self, ch: usize, z: u64, k: u32) -> u32 {
        let c = predict(self.mean[ch]).wrapping_add(unzigzag32(z));
        let target = u64::from(c) << 4;
        if self.index == 0 {
            // The mean starts at the first count, and the channel's Rice parameter at what
            // Poisson noise around it would need (E[z] ≈ 1.7 √c).
            self.mean[ch] = target;
            self.a_count[ch] = Adapt(u64::from(COUNT_START * c.isqrt()));
        } else {
            self.mean[ch] = follow_count(self.mean[ch], c);
            self.a_count[ch].update(z, k);
        }
        c
    }

    /// After the last field of a point.
    #[inline(always)]
    fn next_point(&mut self) {
        self.index = self.index.saturating_add(1);
    }
}

/// Moves a channel's running mean ×16 a fraction of the way to count `c` (floor, in i64: both
/// are below 2^36).
#[inline(always)]
fn follow_count(mean: u64, c: u32) -> u64 {
    let (m, target) = (mean as i64, i64::from(c) << 4);
    (m + ((target - m) >> COUNT_SHIFT)) as u64
}

/// Writes a Rice code of `z` with the field's parameter and takes `z` into it.
#[inline(always)]
fn code(w: &mut BitWriter<'_>, a: &mut Adapt, z: u64, kmax: u32) {
    let k = a.k(kmax);
    put_rice(w, z, k);
    a.update(z, k);
}

/// Writes `z` as the first point of a batch does: its bit length `n` in `len_bits` bits, then
/// its `n − 1` bits below the top one.
#[inline]
fn put_plain(w: &mut BitWriter<'_>, z: u64, len_bits: u32) {
    let n = 64 - z.leading_zeros();
    w.put(u64::from(n), len_bits);
    if n > 1 {
        w.put_long(z & !(1u64 << (n - 1)), n - 1);
    }
}

/// Writes one Rice code of `z` with parameter `k` (or its escape).
#[inline(always)]
fn put_rice(w: &mut BitWriter<'_>, z: u64, k: u32) {
    let q = z >> k;
    if q < u64::from(QMAX) {
        let q = q as u32;
        let rem = z & ((1u64 << k) - 1);
        if q + 1 + k <= 32 {
            w.put((1 << q) | (rem << (q + 1)), q + 1 + k);
        } else {
            w.put(1 << q, q + 1);
            w.put_long(rem, k);
        }
    } else {
        // z ≥ QMAX << k ≥ 16, so it has n ≥ 5 significant bits; the top one is implied.
        let n = 64 - z.leading_zeros();
        w.put(0, QMAX);
        w.put(u64::from(n - 1), ESCAPE_LEN_BITS);
        w.put_long(z & !(1u64 << (n - 1)), n - 1);
    }
}

/// Encodes points into a batch's bit stream.
#[derive(Debug, Clone, Default)]
pub(super) struct RiceEncoder {
    state: State,
    /// Bits written so far.
    bit_len: usize,
}

impl RiceEncoder {
    /// Appends `p` to the stream in `buf` and returns the new byte length, or fails with the
    /// batch unchanged if it does not fit in `limit` bytes. `buf` must be 8 bytes longer than
    /// `limit` (whole words are written).
    pub(super) fn push(
        &mut self,
        buf: &mut [u8],
        limit: usize,
        p: &Point,
    ) -> Result<usize, EncodeError> {
        let old_bits = self.bit_len;
        if old_bits.div_ceil(8) + max_len(p.counts.len()) <= limit {
            // The worst case fits (every point but the last few of a batch): no undo needed.
            let mut w = BitWriter::new(buf, old_bits);
            self.write(&mut w, p);
            let bits = w.finish().ok_or(EncodeError::BufferTooSmall {
                needed: limit + 1,
                available: limit,
            })?;
            self.bit_len = bits;
            return Ok(bits.div_ceil(8));
        }
        let saved = self.state.clone();
        let partial = buf.get(old_bits / 8).copied().unwrap_or(0);
        let mut w = BitWriter::new(buf, old_bits);
        self.write(&mut w, p);
        match w.finish() {
            Some(bits) if bits.div_ceil(8) <= limit => {
                self.bit_len = bits;
                Ok(bits.div_ceil(8))
            }
            _ => {
                // Bytes past the old end are not part of the batch; only the partial last byte
                // needs its old value back.
                if let Some(b) = buf.get_mut(old_bits / 8) {
                    *b = partial;
                }
                self.state = saved;
                Err(EncodeError::BufferTooSmall {
                    needed: limit + 1,
                    available: limit,
                })
            }
        }
    }

    /// Writes one point. Inlined into `push`, whose writer is a local that never escapes, so
    /// the writer's fields stay in registers instead of going through memory at every code.
    #[inline(always)]
    fn write(&mut self, w: &mut BitWriter<'_>, p: &Point) {
        let s = &mut self.state;
        if p.flags == s.last.flags {
            w.put(0, 1);
        } else {
            w.put(1 | (u64::from(p.flags.0) << 1), 9);
            s.last.flags = p.flags;
        }
        if s.index == 0 {
            // By value, so the writer's address does not escape into the call.
            *w = Self::write_first(s, w.take(), p);
            return;
        }
        let z = s.pos_z(p.position);
        code(w, &mut s.a_pos, z, KMAX_64);
        s.pos_apply(z);
        let z = s.ts_z(p.timestamp);
        code(w, &mut s.a_ts, z, KMAX_64);
        s.ts_apply(z);
        let z = zigzag32(p.live_time.wrapping_sub(s.live_pred()));
        code(w, &mut s.a_live, z, KMAX_32);
        s.live_apply(z);
        let n = p.counts.len().min(MAX_CHANNELS);
        let state = s.mean[..n].iter_mut().zip(&mut s.a_count[..n]);
        let counts = p.counts[..n].iter().zip(&mut s.last.counts[..n]);
        for ((&c, last), (mean, a)) in counts.zip(state) {
            code(w, a, zigzag32(c.wrapping_sub(predict(*mean))), KMAX_32);
            *mean = follow_count(*mean, c);
            *last = c;
        }
        s.next_point();
    }

    /// Point 0 of a batch: every field plain.
    #[cold]
    fn write_first<'b>(s: &mut State, mut w: BitWriter<'b>, p: &Point) -> BitWriter<'b> {
        let z = s.pos_z(p.position);
        put_plain(&mut w, z, LEN_BITS_64);
        s.pos_apply(z);
        let z = s.ts_z(p.timestamp);
        put_plain(&mut w, z, LEN_BITS_64);
        s.ts_apply(z);
        let z = zigzag32(p.live_time.wrapping_sub(s.live_pred()));
        put_plain(&mut w, z, LEN_BITS_32);
        s.live_apply(z);
        for (ch, &c) in p.counts.iter().enumerate().take(MAX_CHANNELS) {
            let z = zigzag32(c.wrapping_sub(predict(s.mean[ch])));
            put_plain(&mut w, z, LEN_BITS_32);
            s.last.counts[ch] = s.count_apply(ch, z, 0);
        }
        s.next_point();
        w
    }

    /// Starts a new batch.
    pub(super) fn clear(&mut self) {
        *self = Self::default();
    }
}

/// Reads Rice points one at a time.
#[derive(Debug, Clone)]
pub(super) struct RiceDecoder<'a> {
    r: BitReader<'a>,
    n_channels: usize,
    state: State,
}

impl RiceDecoder<'_> {
    /// Point 0 of a batch: every field plain.
    #[cold]
    fn first_point(&mut self) -> Result<(), ParseError> {
        let z = plain(&mut self.r, LEN_BITS_64, 64, "point.position")?;
        self.state.pos_apply(z);
        let z = plain(&mut self.r, LEN_BITS_64, 64, "point.timestamp")?;
        self.state.ts_apply(z);
        let z = plain(&mut self.r, LEN_BITS_32, 32, "point.live_time")?;
        self.state.live_apply(z);
        for ch in 0..self.n_channels {
            let z = plain(&mut self.r, LEN_BITS_32, 32, "point.count")?;
            self.state.last.counts[ch] = self.state.count_apply(ch, z, 0);
        }
        self.state.next_point();
        Ok(())
    }
}

/// Reads a plain field of point 0: its bit length, then the bits below the top one.
fn plain(
    r: &mut BitReader<'_>,
    len_bits: u32,
    width: u32,
    field: &'static str,
) -> Result<u64, ParseError> {
    if !r.has(len_bits) {
        return Err(truncated());
    }
    let n = r.take(len_bits) as u32;
    if n > width {
        return Err(ParseError::InvalidField {
            field,
            value: n.into(),
        });
    }
    if n <= 1 {
        return Ok(n.into());
    }
    if !r.has(n - 1) {
        return Err(truncated());
    }
    Ok((1u64 << (n - 1)) | r.take_long(n - 1))
}

/// Reads one Rice code with parameter `k` of a field `width` bits wide.
#[inline(always)]
fn rice(r: &mut BitReader<'_>, k: u32, width: u32, field: &'static str) -> Result<u64, ParseError> {
    let w = r.peek();
    let q = w.trailing_zeros();
    if q < QMAX && k <= 40 {
        // The whole code lies in the 57 bits peeked.
        r.skip(q + 1 + k);
        return Ok((u64::from(q) << k) | ((w >> (q + 1)) & ((1u64 << k) - 1)));
    }
    rice_slow(r, q, k, width, field)
}

#[cold]
#[inline(never)]
fn rice_slow(
    r: &mut BitReader<'_>,
    q: u32,
    k: u32,
    width: u32,
    field: &'static str,
) -> Result<u64, ParseError> {
    if q < QMAX {
        if !r.has(q + 1 + k) {
            return Err(truncated());
        }
        r.skip(q + 1);
        return Ok((u64::from(q) << k) | r.take_long(k));
    }
    if !r.has(QMAX + ESCAPE_LEN_BITS) {
        return Err(truncated());
    }
    r.skip(QMAX);
    let n = r.take(ESCAPE_LEN_BITS) as u32 + 1;
    if n > width {
        return Err(ParseError::InvalidField {
            field,
            value: n.into(),
        });
    }
    if !r.has(n - 1) {
        return Err(truncated());
    }
    let z = (1u64 << (n - 1)) | r.take_long(n - 1);
    if z >> k < u64::from(QMAX) {
        // The plain code holds this value: an escape of it is a second encoding.
        return Err(ParseError::InvalidField { field, value: z });
    }
    Ok(z)
}

impl<'a> Decode<'a> for RiceDecoder<'a> {
    fn new(data: &'a [u8], n_channels: usize) -> Self {
        Self {
            r: BitReader::new(data),
            n_channels,
            state: State::default(),
        }
    }

    #[inline(always)]
    fn step(&mut self) -> Result<(), ParseError> {
        let w = self.r.peek();
        if w & 1 == 0 {
            self.r.skip(1);
        } else {
            if !self.r.has(9) {
                return Err(truncated());
            }
            let flags = ((w >> 1) & 0xff) as u8;
            self.r.skip(9);
            if flags == self.state.last.flags.0 {
                return Err(ParseError::InvalidField {
                    field: "point.flags",
                    value: flags.into(),
                });
            }
            self.state.last.flags = PointFlags(flags);
        }
        if self.state.index == 0 {
            return self.first_point();
        }
        let st = &mut self.state;
        let k = st.a_pos.k(KMAX_64);
        let z = rice(&mut self.r, k, 64, "point.position")?;
        st.a_pos.update(z, k);
        st.pos_apply(z);
        let k = st.a_ts.k(KMAX_64);
        let z = rice(&mut self.r, k, 64, "point.timestamp")?;
        st.a_ts.update(z, k);
        st.ts_apply(z);
        let k = st.a_live.k(KMAX_32);
        let z = rice(&mut self.r, k, 32, "point.live_time")?;
        st.a_live.update(z, k);
        st.live_apply(z);
        for ch in 0..self.n_channels {
            let k = st.a_count[ch].k(KMAX_32);
            let z = rice(&mut self.r, k, 32, "point.count")?;
            st.last.counts[ch] = st.count_apply(ch, z, k);
        }
        st.next_point();
        if self.r.is_past_end() {
            return Err(truncated());
        }
        Ok(())
    }

    #[inline(always)]
    fn view(&self) -> PointView<'_> {
        self.state.last.view(self.n_channels)
    }

    fn finish(&self) -> Result<(), ParseError> {
        trailing(self.r.bytes_left())?;
        match self.r.padding() {
            0 => Ok(()),
            v => Err(ParseError::InvalidField {
                field: "point.padding",
                value: v,
            }),
        }
    }
}
