//! Bit streams for the entropy-coded encoding: bits are packed least significant first (bit
//! `i` of the stream is bit `i mod 8` of byte `i / 8`), so a little-endian load of eight bytes
//! shows the next 57 or more bits with the first one at the bottom.

/// Appends bits to a byte buffer from a given bit position. Writes whole 64-bit words, so the
/// bytes after the last bit written may be overwritten (with zeros); never writes outside the
/// buffer: what does not fit sets [`overflowed`](Self::overflowed) instead.
#[derive(Debug)]
pub(super) struct BitWriter<'b> {
    buf: &'b mut [u8],
    /// Byte at which `acc` starts.
    at: usize,
    acc: u64,
    /// Bits held in `acc` (< 32 between calls).
    n: u32,
    overflowed: bool,
}

impl<'b> BitWriter<'b> {
    /// Continues a stream of `bit_len` bits held in `buf` (bits past `bit_len` in its last byte
    /// are ignored and written as zeros).
    #[inline]
    pub(super) fn new(buf: &'b mut [u8], bit_len: usize) -> Self {
        let at = bit_len / 8;
        let n = (bit_len % 8) as u32;
        let partial = buf.get(at).copied().unwrap_or(0) & ((1u16 << n) - 1) as u8;
        Self {
            buf,
            at,
            acc: u64::from(partial),
            n,
            overflowed: false,
        }
    }

    /// Moves the writer out, leaving one over an empty buffer.
    #[inline]
    pub(super) fn take(&mut self) -> Self {
        core::mem::replace(
            self,
            Self {
                buf: &mut [],
                at: 0,
                acc: 0,
                n: 0,
                overflowed: false,
            },
        )
    }

    /// Appends the low `bits` bits of `v` (`bits` ≤ 32, the rest of `v` zero).
    #[inline(always)]
    pub(super) fn put(&mut self, v: u64, bits: u32) {
        debug_assert!(bits <= 32 && (bits == 64 || v >> bits == 0));
        self.acc |= v << self.n;
        self.n += bits;
        if self.n >= 32 {
            self.spill();
        }
    }

    /// Appends the low `bits` bits of `v`, any number up to 64.
    #[inline(always)]
    pub(super) fn put_long(&mut self, v: u64, bits: u32) {
        if bits > 32 {
            self.put(v & 0xffff_ffff, 32);
            self.put(v >> 32, bits - 32);
        } else {
            self.put(v, bits);
        }
    }

    /// Moves the whole bytes of `acc` into the buffer.
    #[inline(always)]
    fn spill(&mut self) {
        match self.buf.get_mut(self.at..self.at + 8) {
            Some(dst) => dst.copy_from_slice(&self.acc.to_le_bytes()),
            None => self.overflowed = true,
        }
        let bytes = self.n / 8;
        self.at += bytes as usize;
        self.acc >>= bytes * 8;
        self.n -= bytes * 8;
    }

    /// Writes out what is held and returns the stream's length in bits, or None if it did not
    /// fit the buffer.
    #[inline]
    pub(super) fn finish(mut self) -> Option<usize> {
        let bytes = self.n.div_ceil(8) as usize;
        match self.buf.get_mut(self.at..self.at + bytes) {
            Some(dst) => dst.copy_from_slice(&self.acc.to_le_bytes()[..bytes]),
            None => self.overflowed = true,
        }
        (!self.overflowed).then_some(self.at * 8 + self.n as usize)
    }
}

/// Reads a bit stream. Reading past the end yields zeros; [`is_past_end`](Self::is_past_end)
/// tells afterwards.
#[derive(Debug, Clone)]
pub(super) struct BitReader<'a> {
    data: &'a [u8],
    /// Bit position of the next bit.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// Starts at the first bit of `data`.
    pub(super) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// The next bits, the first at the bottom: at least 57 are valid (zeros past the end).
    #[inline(always)]
    pub(super) fn peek(&self) -> u64 {
        let at = self.pos / 8;
        let word = match self.data.get(at..at + 8) {
            Some(b) => u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            None => {
                let mut tmp = [0u8; 8];
                let tail = self.data.get(at..).unwrap_or(&[]);
                tmp[..tail.len()].copy_from_slice(tail);
                u64::from_le_bytes(tmp)
            }
        };
        word >> (self.pos % 8)
    }

    /// Moves past `bits` bits.
    #[inline(always)]
    pub(super) fn skip(&mut self, bits: u32) {
        self.pos += bits as usize;
    }

    /// Reads `bits` bits (≤ 56).
    #[inline(always)]
    pub(super) fn take(&mut self, bits: u32) -> u64 {
        debug_assert!(bits <= 56);
        let v = self.peek() & ((1u64 << bits) - 1);
        self.skip(bits);
        v
    }

    /// Reads `bits` bits, any number up to 64.
    #[inline]
    pub(super) fn take_long(&mut self, bits: u32) -> u64 {
        if bits > 32 {
            let lo = self.take(32);
            lo | (self.take(bits - 32) << 32)
        } else {
            self.take(bits)
        }
    }

    /// True if `bits` more bits lie within the data.
    #[inline(always)]
    pub(super) fn has(&self, bits: u32) -> bool {
        self.pos + bits as usize <= self.data.len() * 8
    }

    /// True once a read went past the last bit.
    #[inline(always)]
    pub(super) fn is_past_end(&self) -> bool {
        self.pos > self.data.len() * 8
    }

    /// Whole bytes after the byte holding the last bit read.
    pub(super) fn bytes_left(&self) -> usize {
        self.data.len().saturating_sub(self.pos.div_ceil(8))
    }

    /// The bits after the last bit read up to the end of its byte (the padding).
    pub(super) fn padding(&self) -> u64 {
        let used = (self.pos % 8) as u32;
        if used == 0 {
            0
        } else {
            self.peek() & ((1u64 << (8 - used)) - 1)
        }
    }
}
