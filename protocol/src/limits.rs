//! The protocol's constants in one place: its version and every size bound, as `const`s so
//! no_std buffers can be sized from them. PROTOCOL.md §Limits restates them; a test keeps the
//! two in step. The bottom layer of the crate: it names no other module.

/// The protocol version this build writes and accepts (also `frame::PROTOCOL_VERSION`).
pub const PROTOCOL_VERSION: u8 = 2;

/// Bytes of the frame header: version (1), message type (1), sequence number (4).
pub const HEADER_LEN: usize = 6;
/// Bytes of the CRC-32C trailer.
pub const CRC_LEN: usize = 4;
/// Largest message payload in one frame.
pub const MAX_PAYLOAD: usize = 2048;
/// Largest unencoded frame body: header + payload + CRC.
pub const MAX_BODY: usize = HEADER_LEN + MAX_PAYLOAD + CRC_LEN;
/// Largest frame on the wire: COBS-encoded body plus the 0x00 delimiter.
pub const MAX_ENCODED_FRAME: usize = corncobs::max_encoded_len(MAX_BODY);
/// Most detector channels a device can have (the channel mask is 32 bits).
pub const MAX_CHANNELS: usize = 32;
/// Most positions in one `PositionChunk` message.
pub const MAX_CHUNK_POSITIONS: usize = 250;
/// Longest text detail in a nak reply, in bytes of UTF-8.
pub const MAX_DETAIL: usize = 64;
/// Most points in one batch, whatever their size (the count field is 16 bits; this keeps the
/// host's per-batch work bounded).
pub const MAX_BATCH_POINTS: usize = 1024;
/// Longest raw point: position 8 + timestamp 8 + live time 4 + flags 1 + 32 counts × 4.
pub const MAX_RAW_POINT: usize = 21 + 4 * MAX_CHANNELS;
/// Longest compact point: flags 1 + three 10-byte varints + 32 counts × 5-byte varints.
pub const MAX_COMPACT_POINT: usize = 1 + 3 * 10 + 5 * MAX_CHANNELS;
/// Longest Rice point, in bytes: a flags change (9 bits), and every field an escape (16 zero
/// bits, a 6-bit length, the value less its top bit): 2 × 85 bits for position and timestamp,
/// 53 bits for live time and each of 32 counts.
pub const MAX_RICE_POINT: usize = (9 + 2 * 85 + (1 + MAX_CHANNELS) * 53).div_ceil(8);

/// Line bits per byte on the serial line (8N1: start bit, 8 data bits, stop bit). Every line-rate
/// computation (pacing in the simulator, timeouts in the host, budgets in benchmarks) uses it.
pub const LINE_BITS_PER_BYTE: u32 = 10;
/// Baud rate firmware, simulator and host use unless told otherwise, so programs started with
/// their defaults understand each other.
pub const DEFAULT_BAUD: u32 = 921_600;

/// Shortest time-mode period, µs: the firmware handles a point in well under this, and a
/// period this short already asks 100 000 points/s of the line.
pub const MIN_PERIOD_US: u64 = 10;

/// Shortest time-mode period in ticks of a `clock_hz` clock (at least 1).
pub const fn min_period_ticks(clock_hz: u64) -> u64 {
    let t = clock_hz.saturating_mul(MIN_PERIOD_US).div_ceil(1_000_000);
    if t == 0 { 1 } else { t }
}

/// Bytes per second an 8N1 line at `baud` carries.
pub const fn line_bytes_per_sec(baud: u32) -> u32 {
    baud / LINE_BITS_PER_BYTE
}
