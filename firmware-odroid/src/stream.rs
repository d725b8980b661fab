//! Point batching: collects latched points into one `PointBatch` payload and decides when it
//! goes out — when the next point might not fit, when `max_batch_points` is reached, or when the
//! oldest point has waited the scan's latency budget (device time, passed in).

use crate::outbox::{Class, Outbox};
use flyscan_protocol::limits::{MAX_COMPACT_POINT, MAX_RAW_POINT};
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
}

impl Default for Batcher {
    fn default() -> Self {
        Self {
            writer: BatchWriter::new(Encoding::Compact, 1, 0),
            scan_id: 0,
            first_index: 0,
            since: None,
            latency_ticks: 0,
            worst_point: MAX_COMPACT_POINT,
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
        let n = channel_mask.count_ones() as usize;
        // Worst case of one point, so a push after a positive `has_room` cannot fail.
        self.worst_point = match encoding {
            Encoding::Raw => MAX_RAW_POINT - 4 * (32 - n),
            Encoding::Compact => MAX_COMPACT_POINT - 5 * (32 - n),
        };
    }

    /// True when one more point surely fits.
    pub fn has_room(&self) -> bool {
        !self.writer.is_full() && self.writer.data_len() + self.worst_point <= MAX_BATCH_DATA
    }

    /// True when no point waits.
    pub fn is_empty(&self) -> bool {
        self.writer.is_empty()
    }

    /// Appends a point latched at device time `now`.
    pub fn push(&mut self, p: &Point, now: u64) -> Result<(), EncodeError> {
        self.writer.push(p)?;
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
