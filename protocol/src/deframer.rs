//! Streaming deframer: feed it byte chunks of any size (1 byte to megabytes); it yields checked
//! frames and counted errors, and resynchronises at the next 0x00 after any damage.
//!
//! Damage is confined to the frame it hits: a corrupted byte can only change the frame it lies
//! in, because 0x00 never occurs inside a COBS frame; a corrupted byte that *becomes* 0x00 splits
//! one frame into two bad ones, and a destroyed delimiter merges two frames into one bad one.
//!
//! Buffers are fixed: one accumulator of [`MAX_ENCODED_FRAME`] bytes for a frame split across
//! chunks, one output area for the decoded body. Frames that arrive whole inside a chunk are
//! decoded straight from the chunk with no copy.

use crate::error::FrameError;
use crate::frame::Frame;
use crate::limits::MAX_ENCODED_FRAME;

/// Counters of what the deframer has seen; they only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeframerStats {
    /// Good frames delivered.
    pub frames: u64,
    /// Bytes fed in total.
    pub bytes: u64,
    /// Frames that failed any check (sum of the error counters below).
    pub errors: u64,
    /// Over-long chunks without delimiter.
    pub oversize: u64,
    /// COBS decode failures.
    pub cobs: u64,
    /// Bodies too short to be a frame.
    pub too_short: u64,
    /// CRC mismatches.
    pub bad_crc: u64,
    /// Frames of an unsupported protocol version.
    pub bad_version: u64,
    /// Wire bytes thrown away with failed frames (delimiters not included), however the input
    /// was chunked.
    pub bytes_discarded: u64,
}

/// Result of one [`Deframer::feed`] step. `remaining` is the unconsumed rest of the input; feed
/// it again to continue.
#[derive(Debug)]
pub enum Feed<'a, 'i> {
    /// All input consumed; no complete frame yet.
    Consumed,
    /// A good frame.
    Frame {
        /// The checked frame (borrows the deframer until dropped).
        frame: Frame<'a>,
        /// Input not yet consumed.
        remaining: &'i [u8],
    },
    /// A delimited chunk failed a check; it was discarded and counted.
    Error {
        /// What was wrong.
        error: FrameError,
        /// Input not yet consumed.
        remaining: &'i [u8],
    },
}

/// The streaming deframer (see the module doc).
#[derive(Debug)]
pub struct Deframer {
    acc: [u8; MAX_ENCODED_FRAME],
    acc_len: usize,
    /// Set after an oversize: drop bytes until the next delimiter.
    skipping: bool,
    out: [u8; MAX_ENCODED_FRAME],
    stats: DeframerStats,
}

impl Default for Deframer {
    fn default() -> Self {
        Self::new()
    }
}

impl Deframer {
    /// A deframer waiting for the first delimiter-terminated frame.
    pub const fn new() -> Self {
        Self {
            acc: [0; MAX_ENCODED_FRAME],
            acc_len: 0,
            skipping: false,
            out: [0; MAX_ENCODED_FRAME],
            stats: DeframerStats {
                frames: 0,
                bytes: 0,
                errors: 0,
                oversize: 0,
                cobs: 0,
                too_short: 0,
                bad_crc: 0,
                bad_version: 0,
                bytes_discarded: 0,
            },
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> DeframerStats {
        self.stats
    }

    /// Forgets a partly received frame (e.g. after the port was reopened).
    pub fn reset(&mut self) {
        if self.acc_len > 0 {
            self.stats.bytes_discarded += self.acc_len as u64;
        }
        self.acc_len = 0;
        self.skipping = false;
    }

    /// Bytes of a partial frame currently held.
    pub fn pending(&self) -> usize {
        self.acc_len
    }

    /// Consumes input up to and including the next frame delimiter and reports what it found.
    pub fn feed<'a, 'i>(&'a mut self, input: &'i [u8]) -> Feed<'a, 'i> {
        let mut input = input;
        loop {
            if input.is_empty() {
                return Feed::Consumed;
            }
            // memchr scans a word or vector at a time; frames are ~2 KiB between delimiters.
            let zero = memchr::memchr(0, input);
            let Some(z) = zero else {
                self.stats.bytes += input.len() as u64;
                if let Some(err) = self.absorb(input) {
                    return Feed::Error {
                        error: err,
                        remaining: &[],
                    };
                }
                return Feed::Consumed;
            };
            let (chunk, rest) = (&input[..z], &input[z + 1..]);
            self.stats.bytes += (z + 1) as u64;
            if self.skipping {
                // The oversize was already reported when it happened; this delimiter ends it.
                self.skipping = false;
                self.stats.bytes_discarded += chunk.len() as u64;
                input = rest;
                continue;
            }
            if self.acc_len == 0 && chunk.is_empty() {
                // Idle delimiters between frames are allowed (a sender may flush with 0x00).
                input = rest;
                continue;
            }
            // Wire bytes of this frame without its delimiter, for the discard counter.
            let encoded_len = self.acc_len + chunk.len();
            let result = if self.acc_len == 0 {
                if chunk.len() + 1 > MAX_ENCODED_FRAME {
                    Err(FrameError::Oversize {
                        discarded: chunk.len(),
                    })
                } else {
                    decode_into(&input[..=z], &mut self.out)
                }
            } else {
                let total = self.acc_len + chunk.len() + 1;
                if total > MAX_ENCODED_FRAME {
                    let discarded = self.acc_len + chunk.len();
                    self.acc_len = 0;
                    Err(FrameError::Oversize { discarded })
                } else {
                    self.acc[self.acc_len..self.acc_len + chunk.len()].copy_from_slice(chunk);
                    self.acc[total - 1] = 0;
                    self.acc_len = 0;
                    decode_into(&self.acc[..total], &mut self.out)
                }
            };
            return match result {
                Ok(len) => match Frame::new_checked(&self.out[..len]) {
                    Ok(frame) => {
                        self.stats.frames += 1;
                        Feed::Frame {
                            frame,
                            remaining: rest,
                        }
                    }
                    Err(error) => {
                        Self::count(&mut self.stats, &error, encoded_len);
                        Feed::Error {
                            error,
                            remaining: rest,
                        }
                    }
                },
                Err(error) => {
                    Self::count(&mut self.stats, &error, encoded_len);
                    Feed::Error {
                        error,
                        remaining: rest,
                    }
                }
            };
        }
    }

    /// Feeds a whole chunk, calling `on_frame` for each good frame and `on_error` for each bad
    /// one. Convenience over [`Deframer::feed`].
    pub fn feed_all(
        &mut self,
        mut input: &[u8],
        mut on_frame: impl FnMut(Frame<'_>),
        mut on_error: impl FnMut(FrameError),
    ) {
        loop {
            match self.feed(input) {
                Feed::Consumed => return,
                Feed::Frame { frame, remaining } => {
                    on_frame(frame);
                    input = remaining;
                }
                Feed::Error { error, remaining } => {
                    on_error(error);
                    input = remaining;
                }
            }
        }
    }

    /// Stores delimiter-free bytes; returns an error when the frame limit is crossed.
    fn absorb(&mut self, bytes: &[u8]) -> Option<FrameError> {
        if self.skipping {
            self.stats.bytes_discarded += bytes.len() as u64;
            return None;
        }
        let end = self.acc_len + bytes.len();
        // Keep one byte for the delimiter that completes the frame.
        if end >= MAX_ENCODED_FRAME {
            let discarded = end;
            self.acc_len = 0;
            self.skipping = true;
            let err = FrameError::Oversize { discarded };
            Self::count(&mut self.stats, &err, discarded);
            return Some(err);
        }
        self.acc[self.acc_len..end].copy_from_slice(bytes);
        self.acc_len = end;
        None
    }

    fn count(stats: &mut DeframerStats, err: &FrameError, discarded: usize) {
        stats.errors += 1;
        stats.bytes_discarded += discarded as u64;
        match err {
            FrameError::Oversize { .. } => stats.oversize += 1,
            FrameError::Cobs => stats.cobs += 1,
            FrameError::TooShort { .. } => stats.too_short += 1,
            FrameError::BadCrc { .. } => stats.bad_crc += 1,
            FrameError::UnsupportedVersion { .. } => stats.bad_version += 1,
        }
    }
}

/// COBS-decodes `encoded` (ending in its 0x00, with no other 0x00) into `out`, which is at
/// least as long. Same results as `corncobs::decode_buf`, which it falls back to.
///
/// Why not corncobs alone: it copies run by run, and compact point data has a 0x00 (the flags
/// byte, mostly) every dozen bytes, so the per-run copy call dominated. Unless a run is full
/// (code 0xFF, whose code byte is dropped rather than turned into 0x00), the decoded body is
/// the encoded one shifted by one byte with a 0x00 at each later code byte: one bulk copy, then
/// a walk along the code bytes.
fn decode_into(encoded: &[u8], out: &mut [u8]) -> Result<usize, FrameError> {
    if let Some(len) = decode_short_runs(encoded, out) {
        return len;
    }
    // A decoded COBS frame is never longer than its encoding, so `out` (MAX_ENCODED_FRAME bytes,
    // and `encoded` is no longer) cannot overflow inside corncobs.
    debug_assert!(out.len() >= encoded.len());
    corncobs::decode_buf(encoded, out).map_err(|_| FrameError::Cobs)
}

/// The bulk-copy decode of [`decode_into`]; `None` when a run is full (or the input is not a
/// single zero-free frame plus its delimiter), for corncobs to handle.
fn decode_short_runs(encoded: &[u8], out: &mut [u8]) -> Option<Result<usize, FrameError>> {
    let (&0, body) = encoded.split_last()? else {
        return None;
    };
    let (&first, data) = body.split_first()?;
    if first == 0xff || first == 0 {
        return None;
    }
    out.get_mut(..data.len())?.copy_from_slice(data);
    let mut at = usize::from(first);
    while at < body.len() {
        let code = body.get(at).copied()?;
        if code == 0xff || code == 0 {
            return None;
        }
        // The code byte at `at` in `body` is `at - 1` in `out` (at ≥ first ≥ 1).
        *out.get_mut(at - 1)? = 0;
        at += usize::from(code);
    }
    // Past the end: the last run claims bytes the frame does not have.
    Some(if at == body.len() {
        Ok(data.len())
    } else {
        Err(FrameError::Cobs)
    })
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::vec;

    proptest! {
        /// Same result as corncobs for any zero-free body, valid COBS or not, with and without
        /// full runs.
        #[test]
        fn decode_matches_corncobs(
            body in proptest::collection::vec(
                prop_oneof![1u8..=255, Just(0xffu8), 1u8..4],
                0..600,
            ),
        ) {
            let mut encoded = body.clone();
            encoded.push(0);
            let mut ours = vec![0u8; encoded.len()];
            let mut theirs = vec![0u8; encoded.len()];
            let a = decode_into(&encoded, &mut ours);
            let b = corncobs::decode_buf(&encoded, &mut theirs).map_err(|_| FrameError::Cobs);
            prop_assert_eq!(a, b);
            if let Ok(n) = a {
                prop_assert_eq!(&ours[..n], &theirs[..n]);
            }
        }

        /// Encoded data round-trips through the fast path.
        #[test]
        fn decodes_what_corncobs_encodes(
            data in proptest::collection::vec(prop_oneof![Just(0u8), any::<u8>()], 0..900),
        ) {
            let mut encoded = vec![0u8; corncobs::max_encoded_len(data.len())];
            let n = corncobs::encode_buf(&data, &mut encoded);
            let mut out = vec![0u8; n];
            prop_assert_eq!(decode_into(&encoded[..n], &mut out), Ok(data.len()));
            prop_assert_eq!(&out[..data.len()], &data[..]);
        }
    }
}
