//! Point batching: collects latched points into one `PointBatch` payload and decides when it
//! goes out — when the next point might not fit, when `max_batch_points` is reached, when the
//! batch reaches its byte cap ([`Batcher::set_cap`], adapted to the line's noise by
//! [`crate::batch_cap`]), or when the oldest point has waited the scan's latency budget (device
//! time, passed in).
//!
//! The byte cap is a hard limit while the transmit queue is full: the batch waits (and the caller
//! stops draining the FPGA) rather than growing into a frame too long for a noisy line.

use crate::outbox::{Class, Outbox};
use flyscan_protocol::point::{BATCH_HEADER_LEN, MAX_BATCH_DATA};
use flyscan_protocol::{BatchWriter, EncodeError, Encoding, Message, Point, PointBatch};

/// Batching state of one scan.
#[derive(Debug, Clone)]
pub struct Batcher {
    writer: BatchWriter,
    scan_id: u32,
    first_index: u32,
    since: Option<u64>,
    latency_ticks: u64,
    worst_point: usize,
    cap: usize,
    last_point: usize,
}

impl Default for Batcher {
    fn default() -> Self {
        Self {
            writer: BatchWriter::new(Encoding::Compact, 1, 0),
            scan_id: 0,
            first_index: 0,
            since: None,
            latency_ticks: 0,
            worst_point: Encoding::Compact.max_point_len(1),
            cap: MAX_BATCH_DATA,
            last_point: 0,
        }
    }
}

impl Batcher {
    /// Starts the batches of a scan.
    pub fn start(
        &mut self,
        scan_id: u32,
        encoding: Encoding,
        channel_mask: u32,
        max_points: u16,
        latency_ticks: u64,
    ) {
        self.writer = BatchWriter::new(encoding, channel_mask, max_points);
        self.scan_id = scan_id;
        self.first_index = 0;
        self.since = None;
        self.latency_ticks = latency_ticks;
        self.last_point = 0;
        // Worst case of one point, so a push after a positive `has_room` cannot fail.
        self.worst_point = encoding.max_point_len(channel_mask.count_ones() as usize);
    }

    /// Sets the byte cap of a batch's point data (takes effect for the batch being filled).
    pub fn set_cap(&mut self, bytes: usize) {
        self.cap = bytes;
    }

    /// The byte cap of a batch's point data.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// True when one more point surely fits and, by the size of the last point, stays within
    /// the byte cap (an empty batch always takes a point).
    pub fn has_room(&self) -> bool {
        let len = self.writer.data_len();
        !self.writer.is_full()
            && len + self.worst_point <= MAX_BATCH_DATA
            && (len == 0 || len + self.last_point <= self.cap)
    }

    /// True when no point waits.
    pub fn is_empty(&self) -> bool {
        self.writer.is_empty()
    }

    /// Appends a point latched at device time `now`.
    pub fn push(&mut self, p: &Point, now: u64) -> Result<(), EncodeError> {
        let before = self.writer.data_len();
        self.writer.push(p)?;
        self.last_point = self.writer.data_len() - before;
        self.since.get_or_insert(now);
        Ok(())
    }

    /// True when the oldest waiting point has used up the latency budget.
    pub fn due(&self, now: u64) -> bool {
        self.since
            .is_some_and(|t| now.wrapping_sub(t) >= self.latency_ticks)
    }

    /// Sends the batch if there is one and the transmit queue has room; true when nothing is
    /// left waiting.
    pub fn flush(&mut self, out: &mut Outbox) -> bool {
        if self.writer.is_empty() {
            return true;
        }
        if !out.has_room(BATCH_HEADER_LEN + self.writer.data_len(), Class::Bulk) {
            return false;
        }
        let n = self.writer.n_points() as u32;
        let msg = Message::PointBatch(PointBatch::from_writer(
            self.scan_id,
            self.first_index,
            &self.writer,
        ));
        if out.send(&msg, Class::Bulk).is_none() {
            return false;
        }
        self.first_index = self.first_index.wrapping_add(n);
        self.writer.clear();
        self.since = None;
        true
    }
}
