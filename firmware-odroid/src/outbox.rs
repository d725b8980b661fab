//! Everything the device sends goes through the [`Outbox`]: it numbers frames, encodes them
//! once, keeps a copy in the [`ResendRing`] for resend requests, and queues the bytes for the
//! serial line in a bounded [`ByteRing`].
//!
//! Memory is fixed: 256 KiB of resend history (≥ 2048 frames, ~2.8 s of a saturated 921 600 Bd
//! line) and a 32 KiB transmit queue. When the serial side is slow the transmit queue fills;
//! point batches then wait (the caller stops draining the FPGA, whose FIFO absorbs the delay
//! and counts any overrun) while small control frames use a reserved tail of the queue. A
//! control frame that still does not fit is dropped and counted ([`Outbox::dropped`]).
//!
//! **Resends never crowd out new data.** Requested frames wait as sequence ranges (no copies)
//! and are moved into the transmit queue only while it holds less than [`RESEND_FILL`] bytes;
//! new frames may use the whole queue. So resends take the line time new data leaves over, a
//! stream of resend requests cannot stop the FPGA from being drained, and a resend waits behind
//! at most a few KiB (tens of ms), well inside a host's resend timeout. A request for a frame
//! already waiting to be resent adds nothing: a host that asks again (timeouts, overlapping
//! ranges) cannot multiply the resend traffic ([`Outbox::resend_duplicates`]).

use crate::buf::Buf;
use flyscan_protocol::Message;
use flyscan_protocol::limits::{CRC_LEN, HEADER_LEN, MAX_ENCODED_FRAME};

/// Bytes of resend history.
pub const RESEND_BYTES: usize = 256 * 1024;
/// Most frames in the resend history.
pub const RESEND_FRAMES: usize = 2048;
/// Bytes of the transmit queue.
pub const TX_BYTES: usize = 32 * 1024;
/// Part of the transmit queue only control frames (replies, health, scan events) may use.
pub const CONTROL_RESERVE: usize = 4 * 1024;
/// Ranges of frames that may wait to be resent at once.
pub const PENDING_RESENDS: usize = 32;
/// Resent frames enter the transmit queue only while it holds fewer bytes than this (about
/// 22 ms of a 921 600 Bd line), so they fill the line's spare time and wait only briefly.
pub const RESEND_FILL: usize = 2 * 1024;

/// Words of the bitmap of frames waiting to be resent (one bit per resend-ring slot).
const WAITING_WORDS: usize = RESEND_FRAMES / 32;

/// A fixed-capacity FIFO of bytes.
#[derive(Debug, Clone)]
pub struct ByteRing<const N: usize> {
    buf: Buf<u8, N>,
    head: usize,
    len: usize,
}

impl<const N: usize> Default for ByteRing<N> {
    fn default() -> Self {
        Self {
            buf: Buf::default(),
            head: 0,
            len: 0,
        }
    }
}

impl<const N: usize> ByteRing<N> {
    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free bytes.
    pub fn free(&self) -> usize {
        N - self.len
    }

    /// Appends all of `parts` or nothing; returns false when they do not fit.
    pub fn push(&mut self, parts: &[&[u8]]) -> bool {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total > self.free() {
            return false;
        }
        for part in parts {
            let mut tail = (self.head + self.len) % N;
            let mut rest: &[u8] = part;
            while !rest.is_empty() {
                let n = rest.len().min(N - tail);
                self.buf[tail..tail + n].copy_from_slice(&rest[..n]);
                rest = &rest[n..];
                self.len += n;
                tail = (tail + n) % N;
            }
        }
        true
    }

    /// Moves up to `out.len()` bytes out; returns how many.
    pub fn pop(&mut self, out: &mut [u8]) -> usize {
        let mut done = 0;
        while done < out.len() && self.len > 0 {
            let n = (out.len() - done).min(self.len).min(N - self.head);
            out[done..done + n].copy_from_slice(&self.buf[self.head..self.head + n]);
            self.head = (self.head + n) % N;
            self.len -= n;
            done += n;
        }
        done
    }
}

/// Recent frames by sequence number, as sent (so resends are byte-identical).
#[derive(Debug, Clone)]
pub struct ResendRing {
    bytes: ByteRingStore,
    frames: heapless::Deque<(usize, u16), RESEND_FRAMES>,
    oldest: u32,
}

/// Backing store of [`ResendRing`]: frames laid end to end, wrapping.
#[derive(Debug, Clone)]
struct ByteRingStore {
    buf: Buf<u8, RESEND_BYTES>,
    head: usize,
    used: usize,
}

impl Default for ResendRing {
    fn default() -> Self {
        Self {
            bytes: ByteRingStore {
                buf: Buf::default(),
                head: 0,
                used: 0,
            },
            frames: heapless::Deque::new(),
            oldest: 0,
        }
    }
}

impl ResendRing {
    /// Stores frame `seq` (must follow the newest; otherwise the history restarts at `seq`).
    pub fn push(&mut self, seq: u32, frame: &[u8]) {
        let len = frame.len().min(RESEND_BYTES);
        if seq != self.oldest.wrapping_add(self.frames.len() as u32) {
            self.frames.clear();
            self.bytes.used = 0;
            self.oldest = seq;
        }
        while self.frames.is_full() || self.bytes.used + len > RESEND_BYTES {
            match self.frames.pop_front() {
                Some((_, l)) => {
                    self.bytes.used -= usize::from(l);
                    self.oldest = self.oldest.wrapping_add(1);
                }
                None => break,
            }
        }
        let start = self.bytes.head;
        let first = len.min(RESEND_BYTES - start);
        self.bytes.buf[start..start + first].copy_from_slice(&frame[..first]);
        self.bytes.buf[..len - first].copy_from_slice(&frame[first..len]);
        self.bytes.head = (start + len) % RESEND_BYTES;
        self.bytes.used += len;
        // Cannot fail: a slot was freed above; frames never exceed u16.
        let _ = self.frames.push_back((start, len as u16));
        if self.frames.len() == 1 {
            self.oldest = seq;
        }
    }

    /// Oldest sequence number held, if any.
    pub fn oldest(&self) -> Option<u32> {
        (!self.frames.is_empty()).then_some(self.oldest)
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The bytes of frame `seq` (in up to two pieces), if still held.
    pub fn get(&self, seq: u32) -> Option<[&[u8]; 2]> {
        let i = seq.wrapping_sub(self.oldest) as usize;
        let &(start, len) = self.frames.iter().nth(i)?;
        let len = usize::from(len);
        let first = len.min(RESEND_BYTES - start);
        Some([
            &self.bytes.buf[start..start + first],
            &self.bytes.buf[..len - first],
        ])
    }
}

/// How a frame may use the transmit queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Point batches: only up to the control reserve.
    Bulk,
    /// Replies, health, scan events: the whole queue.
    Control,
}

/// Outcome of a resend request ([`Outbox::request_resend`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResendOutcome {
    /// Frames that will be sent again.
    pub hits: u32,
    /// Requested frames no longer (or never) held.
    pub misses: u64,
    /// Oldest sequence number held (0 when none).
    pub oldest: u32,
    /// False when too many requests are already waiting.
    pub queued: bool,
}

/// The numbering, history and transmit queue of outgoing frames.
#[derive(Debug, Clone)]
pub struct Outbox {
    next_seq: u32,
    tx: ByteRing<TX_BYTES>,
    ring: ResendRing,
    pending: heapless::Deque<(u32, u32), PENDING_RESENDS>,
    /// Bit `seq % RESEND_FRAMES` set: frame `seq` waits in `pending`. The ring holds at most
    /// `RESEND_FRAMES` consecutive numbers, so the slot identifies the frame.
    waiting: [u32; WAITING_WORDS],
    frames_sent: u64,
    resends: u64,
    resend_misses: u64,
    resend_duplicates: u64,
    dropped: u64,
}

/// Upper bound of the wire size of a frame with a `payload`-byte payload.
pub const fn frame_bound(payload: usize) -> usize {
    corncobs::max_encoded_len(HEADER_LEN + payload + CRC_LEN)
}

impl Default for Outbox {
    fn default() -> Self {
        Self {
            next_seq: 0,
            tx: ByteRing::default(),
            ring: ResendRing::default(),
            pending: heapless::Deque::new(),
            waiting: [0; WAITING_WORDS],
            frames_sent: 0,
            resends: 0,
            resend_misses: 0,
            resend_duplicates: 0,
            dropped: 0,
        }
    }
}

/// Word and bit of frame `seq` in the waiting bitmap.
fn waiting_bit(seq: u32) -> (usize, u32) {
    let slot = seq as usize % RESEND_FRAMES;
    (slot / 32, 1 << (slot % 32))
}

impl Outbox {
    /// True when a frame with a payload of `payload` bytes would be accepted now.
    pub fn has_room(&self, payload: usize, class: Class) -> bool {
        let reserve = match class {
            Class::Bulk => CONTROL_RESERVE,
            Class::Control => 0,
        };
        // Waiting resends do not block new frames: they only top up a shallow queue (pump).
        self.tx.free() >= frame_bound(payload) + reserve
    }

    /// Numbers, encodes, records and queues `msg`. Returns its sequence number, or `None` when
    /// there was no room (a dropped control frame is counted; bulk frames are the caller's to
    /// retry, so check [`Outbox::has_room`] first).
    pub fn send(&mut self, msg: &Message<'_>, class: Class) -> Option<u32> {
        self.pump();
        let mut frame = [0u8; MAX_ENCODED_FRAME];
        let n = match msg.encode_frame(self.next_seq, &mut frame) {
            Ok(n) => n,
            // Only a message the firmware built wrongly can fail to encode; count it as dropped.
            Err(_) => {
                self.dropped += 1;
                return None;
            }
        };
        let reserve = if class == Class::Bulk {
            CONTROL_RESERVE
        } else {
            0
        };
        if self.tx.free() < n + reserve || !self.tx.push(&[&frame[..n]]) {
            if class == Class::Control {
                self.dropped += 1;
            }
            return None;
        }
        let seq = self.next_seq;
        self.ring.push(seq, &frame[..n]);
        self.next_seq = seq.wrapping_add(1);
        self.frames_sent += 1;
        Some(seq)
    }

    /// Registers a request for frames `first..=last` (wrapping); held ones are queued again,
    /// except those already waiting to be resent (they go once; counted as hits).
    pub fn request_resend(&mut self, first: u32, last: u32) -> ResendOutcome {
        let wanted = u64::from(last.wrapping_sub(first)) + 1;
        let oldest = self.ring.oldest().unwrap_or(0);
        let held = self.ring.len() as u32;
        let (lo, hits) = held_part(first, wanted, oldest, held);
        let misses = wanted - u64::from(hits);
        self.resend_misses += misses;
        let mut queued = true;
        let mut taken = 0u32;
        for i in 0..hits {
            let seq = lo.wrapping_add(i);
            let (w, bit) = waiting_bit(seq);
            if self.waiting[w] & bit != 0 {
                self.resend_duplicates += 1;
                taken += 1;
                continue;
            }
            let merged = match self.pending.back_mut() {
                Some((s, n)) if s.wrapping_add(*n) == seq => {
                    *n += 1;
                    true
                }
                _ => self.pending.push_back((seq, 1)).is_ok(),
            };
            if !merged {
                queued = false;
                break;
            }
            self.waiting[w] |= bit;
            taken += 1;
        }
        self.pump();
        ResendOutcome {
            hits: taken,
            misses,
            oldest,
            queued,
        }
    }

    /// Moves waiting resends into the transmit queue while it holds less than [`RESEND_FILL`].
    pub fn pump(&mut self) {
        while self.tx.len() < RESEND_FILL {
            let Some(&(seq, left)) = self.pending.front() else {
                return;
            };
            if left == 0 {
                self.pending.pop_front();
                continue;
            }
            match self.ring.get(seq) {
                Some(parts) => {
                    if !self.tx.push(&parts) {
                        return;
                    }
                    self.resends += 1;
                    self.frames_sent += 1;
                }
                // Evicted while waiting.
                None => self.resend_misses += 1,
            }
            let (w, bit) = waiting_bit(seq);
            self.waiting[w] &= !bit;
            if let Some(front) = self.pending.front_mut() {
                *front = (seq.wrapping_add(1), left - 1);
            }
        }
    }

    /// Moves up to `out.len()` queued bytes out.
    pub fn transmit(&mut self, out: &mut [u8]) -> usize {
        let n = self.tx.pop(out);
        self.pump();
        n
    }

    /// Bytes waiting for the serial line.
    pub fn queued(&self) -> usize {
        self.tx.len()
    }

    /// The resend history.
    pub fn ring(&self) -> &ResendRing {
        &self.ring
    }

    /// Frames sent, resends included.
    pub fn frames_sent(&self) -> u64 {
        self.frames_sent
    }

    /// Frames resent.
    pub fn resends(&self) -> u64 {
        self.resends
    }

    /// Requested frames that were not held.
    pub fn resend_misses(&self) -> u64 {
        self.resend_misses
    }

    /// Requested frames that were already waiting to be resent (not sent twice).
    pub fn resend_duplicates(&self) -> u64 {
        self.resend_duplicates
    }

    /// Frames waiting to be resent.
    pub fn resends_waiting(&self) -> u64 {
        self.pending.iter().map(|&(_, n)| u64::from(n)).sum()
    }

    /// Control frames dropped for lack of queue room.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The held part of a request for `wanted` frames from `first`, given the ring holds `held`
/// frames from `oldest` (all wrapping): (first held frame requested, how many).
fn held_part(first: u32, wanted: u64, oldest: u32, held: u32) -> (u32, u32) {
    if held == 0 {
        return (first, 0);
    }
    // Two arcs of the 2³² circle that together cover less than all of it meet in at most one
    // interval; only an absurdly long request can wrap onto both ends of the ring.
    if wanted + u64::from(held) > 1 << 32 {
        return (oldest, held);
    }
    let a = first.wrapping_sub(oldest);
    if a < held {
        // The request starts inside the ring.
        let n = u64::from(held - a).min(wanted) as u32;
        return (first, n);
    }
    let d = u64::from(oldest.wrapping_sub(first));
    if d < wanted {
        // The request starts before the ring and reaches into it.
        let n = (wanted - d).min(u64::from(held)) as u32;
        return (oldest, n);
    }
    (first, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    #[test]
    fn byte_ring_wraps_and_is_all_or_nothing() {
        let mut r = ByteRing::<8>::default();
        assert!(r.push(&[&[1, 2, 3], &[4, 5]]));
        let mut out = [0u8; 4];
        assert_eq!(r.pop(&mut out), 4);
        assert_eq!(out, [1, 2, 3, 4]);
        assert!(r.push(&[&[6, 7, 8, 9, 10, 11]]));
        assert!(!r.push(&[&[12, 13]]), "7 queued + 2 > 8");
        let mut out = [0u8; 16];
        assert_eq!(r.pop(&mut out), 7);
        assert_eq!(&out[..7], &[5, 6, 7, 8, 9, 10, 11]);
        assert!(r.is_empty());
    }

    fn frame_of(i: u32, len: usize) -> Vec<u8> {
        (0..len).map(|j| (i as usize * 31 + j) as u8 | 1).collect()
    }

    #[test]
    fn resend_ring_evicts_oldest_and_returns_exact_bytes() {
        let mut r = ResendRing::default();
        let len = 2000;
        let n = 300u32; // 600 000 bytes: more than the ring holds
        for i in 0..n {
            r.push(i, &frame_of(i, len));
        }
        let held = r.len() as u32;
        assert_eq!(held as usize, RESEND_BYTES / len);
        let oldest = r.oldest().unwrap();
        assert_eq!(oldest, n - held);
        assert!(r.get(oldest - 1).is_none());
        assert!(r.get(n).is_none());
        for s in oldest..n {
            let [a, b] = r.get(s).unwrap();
            let mut got = a.to_vec();
            got.extend_from_slice(b);
            assert_eq!(got, frame_of(s, len), "seq {s}");
        }
    }

    /// A raw one-channel batch of about 1.9 KB.
    fn big_batch(w: &mut flyscan_protocol::BatchWriter) -> Message<'_> {
        let mut p = flyscan_protocol::Point::default();
        p.counts.push(5).unwrap();
        while w.data_len() + 30 < 1900 {
            w.push(&p).unwrap();
        }
        Message::PointBatch(flyscan_protocol::PointBatch::from_writer(1, 0, w))
    }

    /// Queues a small frame (bulk class) and returns its number.
    fn pong(out: &mut Outbox, token: u32) -> u32 {
        out.send(
            &Message::Pong {
                token,
                uptime_ticks: u64::MAX,
                boot_id: 1,
            },
            Class::Bulk,
        )
        .unwrap()
    }

    fn drain(out: &mut Outbox) -> usize {
        let mut buf = [0u8; 4096];
        let mut total = 0;
        loop {
            let n = out.transmit(&mut buf);
            if n == 0 {
                return total;
            }
            total += n;
        }
    }

    #[test]
    fn repeated_requests_resend_a_frame_once() {
        let mut out = Outbox::default();
        for t in 0..10 {
            pong(&mut out, t);
        }
        drain(&mut out);
        // Fill the queue with new data so the requested frames have to wait.
        while out.has_room(2000, Class::Bulk) {
            let mut w = flyscan_protocol::BatchWriter::new(flyscan_protocol::Encoding::Raw, 1, 0);
            out.send(&big_batch(&mut w), Class::Bulk).unwrap();
        }
        let o = out.request_resend(2, 5);
        assert_eq!((o.hits, o.misses, o.queued), (4, 0, true));
        let o = out.request_resend(0, 6);
        assert_eq!((o.hits, o.misses, o.queued), (7, 0, true));
        assert_eq!(out.resend_duplicates(), 4);
        assert_eq!(out.resends_waiting(), 7);
        drain(&mut out);
        assert_eq!(out.resends(), 7, "frames 0..=6 once each");
        assert_eq!(out.resends_waiting(), 0);
        // Sent frames may be asked for again.
        let o = out.request_resend(2, 2);
        assert_eq!(o.hits, 1);
        drain(&mut out);
        assert_eq!(out.resends(), 8);
    }

    #[test]
    fn waiting_resends_never_block_new_frames() {
        let mut out = Outbox::default();
        let mut w = flyscan_protocol::BatchWriter::new(flyscan_protocol::Encoding::Raw, 1, 0);
        let b = big_batch(&mut w);
        for _ in 0..50 {
            out.send(&b, Class::Bulk).unwrap();
            drain(&mut out);
        }
        let o = out.request_resend(0, 49);
        assert_eq!((o.hits, o.queued), (50, true));
        // Resends only top up a shallow queue ...
        assert!(out.queued() < RESEND_FILL + 2100, "{}", out.queued());
        assert!(out.resends_waiting() > 40);
        // ... so new data still goes in at once.
        assert!(out.has_room(1900, Class::Bulk));
        assert!(out.send(&b, Class::Bulk).is_some());
        drain(&mut out);
        assert_eq!(out.resends(), 50);
    }

    #[test]
    fn held_part_intersects_wrapping_ranges() {
        // Ring holds 100..110.
        assert_eq!(held_part(95, 10, 100, 10), (100, 5));
        assert_eq!(held_part(105, 100, 100, 10), (105, 5));
        assert_eq!(held_part(100, 10, 100, 10), (100, 10));
        assert_eq!(held_part(110, 5, 100, 10), (110, 0));
        assert_eq!(held_part(50, 10, 100, 10), (50, 0));
        // Wrapping through 0: ring holds u32::MAX-1 ..= 2.
        assert_eq!(held_part(u32::MAX, 2, u32::MAX - 1, 5), (u32::MAX, 2));
        assert_eq!(
            held_part(u32::MAX - 5, 7, u32::MAX - 1, 5),
            (u32::MAX - 1, 3)
        );
        // The whole number space.
        assert_eq!(held_part(0, 1 << 32, 7, 5), (7, 5));
        assert_eq!(held_part(1, 3, 0, 0).1, 0);
    }

    #[test]
    fn resend_ring_caps_frame_count() {
        let mut r = ResendRing::default();
        for i in 0..5000u32 {
            r.push(i, &[1, 2, 3]);
        }
        assert_eq!(r.len(), RESEND_FRAMES);
        assert_eq!(r.oldest(), Some(5000 - RESEND_FRAMES as u32));
    }
}
