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
            let zero = input.iter().position(|&b| b == 0);
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

/// COBS-decodes `encoded` (ending in its 0x00) into `out`, which is at least as long.
fn decode_into(encoded: &[u8], out: &mut [u8]) -> Result<usize, FrameError> {
    // A decoded COBS frame is never longer than its encoding, so `out` (MAX_ENCODED_FRAME bytes,
    // and `encoded` is no longer) cannot overflow inside corncobs.
    debug_assert!(out.len() >= encoded.len());
    corncobs::decode_buf(encoded, out).map_err(|_| FrameError::Cobs)
}
