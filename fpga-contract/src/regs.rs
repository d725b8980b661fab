//! The register map and command set as constants and byte layouts (FPGA.md is the prose
//! version; `tests/spec.rs` checks its tables against these constants).
//!
//! Transport: one SPI device (mode 0, MSB first within bytes, multi-byte fields little-endian)
//! plus a data-ready GPIO line (active high while the edge FIFO is not empty).
//! Every access is one SPI transaction: a command header written, then a response read.
//!
//! Design in one paragraph: the FPGA samples encoder A/B and counts detector pulses; it does no
//! decoding and no compare. Every A/B change becomes an *edge event* (timestamp, edge sequence
//! number, new A/B) in the edge FIFO, and at that same clock edge the FPGA copies the live-time
//! counter and every detector counter into a *snapshot RAM* slot addressed by the edge sequence
//! number (modulo `SNAPSHOT_DEPTH`). The firmware decodes the edges, decides in software which
//! edge crossed a preset, and reads that edge's snapshot: bins end exactly on the encoder edge,
//! whatever the software latency, as long as the firmware stays within `SNAPSHOT_DEPTH` edges.
//! A period timer ([`reg::PERIOD`]) puts *period events* into the same FIFO, with a snapshot
//! each, for time-based triggering; a cycle makes at most one event (an edge on a period
//! event's cycle is that event, flagged [`EDGE_FLAG_PERIOD`]).

/// Command byte: read a 32-bit register. Header `[CMD_READ_REG, addr]`, response 4 bytes.
pub const CMD_READ_REG: u8 = 0x01;
/// Command byte: write a 32-bit register. Header `[CMD_WRITE_REG, addr, v0, v1, v2, v3]`, no response.
pub const CMD_WRITE_REG: u8 = 0x02;
/// Command byte: pop up to `n` edge events. Header `[CMD_READ_EDGES, n_lo, n_hi]`; response
/// `count: u16` then `n` slots of [`EDGE_EVENT_LEN`] bytes of which the first `count` are valid.
pub const CMD_READ_EDGES: u8 = 0x03;
/// Command byte: read the snapshot of edge `seq`. Header `[CMD_READ_SNAPSHOT, s0, s1, s2, s3]`;
/// response [`snapshot_len`]`(n_channels)` bytes.
pub const CMD_READ_SNAPSHOT: u8 = 0x04;

/// Bytes of one edge event: `timestamp u64 | seq u32 | ab u8 | flags u8`.
pub const EDGE_EVENT_LEN: usize = 14;
/// Edge-event flag: events were lost (FIFO overrun) just before this one.
pub const EDGE_FLAG_OVERRUN: u8 = 0x01;
/// Edge-event flag: a period event of the period timer falls on this event's cycle (with or
/// without an edge).
pub const EDGE_FLAG_PERIOD: u8 = 0x02;
/// Edge-event flag, with [`EDGE_FLAG_PERIOD`]: the period timer started on this cycle (a
/// `PERIOD` write); its snapshot starts the first period.
pub const EDGE_FLAG_PERIOD_START: u8 = 0x04;
/// Most edge events one `CMD_READ_EDGES` may ask for.
pub const MAX_EDGES_PER_READ: usize = 256;

/// Header bytes of a WRITE_REG command.
pub const CMD_WRITE_REG_HEADER: usize = 6;

/// Header bytes of command `cmd` (the command byte included), or `None` for an unknown command
/// byte (the FPGA ignores the rest of such a transaction and answers `00`).
pub const fn header_len(cmd: u8) -> Option<usize> {
    match cmd {
        CMD_READ_REG => Some(2),
        CMD_WRITE_REG => Some(CMD_WRITE_REG_HEADER),
        CMD_READ_EDGES => Some(3),
        CMD_READ_SNAPSHOT => Some(5),
        _ => None,
    }
}

/// Bytes of a READ_EDGES response for `n` requested events: `count u16` + `n` slots.
pub const fn read_edges_len(n: usize) -> usize {
    2 + n * EDGE_EVENT_LEN
}

/// Most detector channels a design may have (`N_CHANNELS` is 1–32).
pub const MAX_N_CHANNELS: usize = 32;
/// Narrowest counter width (`COUNTER_BITS` is 8–32).
pub const MIN_COUNTER_BITS: u8 = 8;
/// Widest counter width.
pub const MAX_COUNTER_BITS: u8 = 32;
/// Mask of the A/B bits in an edge event's `ab` byte and in `AB_NOW`: bit 0 = A, bit 1 = B.
pub const AB_MASK: u8 = 0x3;

/// Bytes of a snapshot response with `n` channels: `valid u8 | seq u32 | live u32 | counts u32×n`.
/// `valid` is 0 when the slot was overwritten by a newer edge (the firmware fell behind).
pub const fn snapshot_len(n_channels: usize) -> usize {
    1 + 4 + 4 + 4 * n_channels
}

/// Register addresses (all 32-bit).
pub mod reg {
    /// Read-only: `ID_MAGIC`.
    pub const ID: u8 = 0x00;
    /// Read-only: FPGA design version (major << 16 | minor).
    pub const VERSION: u8 = 0x01;
    /// Read-only: clock rate of timestamps and live time, Hz.
    pub const CLOCK_HZ: u8 = 0x02;
    /// Read-only: detector channels (1–32).
    pub const N_CHANNELS: u8 = 0x03;
    /// Read-only: width of the detector and live-time counters, bits (they wrap at 2^bits).
    pub const COUNTER_BITS: u8 = 0x04;
    /// Read-only: edge FIFO depth, events.
    pub const EDGE_FIFO_DEPTH: u8 = 0x05;
    /// Read-only: snapshot RAM depth, edges (a power of two).
    pub const SNAPSHOT_DEPTH: u8 = 0x06;
    /// Read/write: bit 0 capture enable, bit 1 (write 1) reset counters and edge sequence,
    /// bit 2 (write 1) clear the edge FIFO.
    pub const CONTROL: u8 = 0x08;
    /// Read-only: bit 0 data ready (FIFO not empty), bit 1 overrun since last read (clears on read).
    pub const STATUS: u8 = 0x09;
    /// Read-only: events in the edge FIFO.
    pub const EDGE_FIFO_LEVEL: u8 = 0x0A;
    /// Read-only: edge events lost to FIFO overrun since reset (wrapping 32-bit).
    pub const OVERRUN_COUNT: u8 = 0x0B;
    /// Read-only: current A/B levels (bit 0 A, bit 1 B).
    pub const AB_NOW: u8 = 0x0C;
    /// Read-only: clock, low 32 bits (reading it latches `TIME_HI`).
    pub const TIME_LO: u8 = 0x0D;
    /// Read-only: clock, high 32 bits as latched by the last `TIME_LO` read.
    pub const TIME_HI: u8 = 0x0E;
    /// Read/write: period timer, clock cycles. Writing P ≠ 0 starts it (a start event on the
    /// write's cycle, then a period event every P cycles), 0 stops it; reads the value last
    /// written (0 after a reset). Designs of minor version ≥ [`PERIOD_MINOR`].
    pub const PERIOD: u8 = 0x0F;
}

/// Value of [`reg::ID`]: ASCII "FLYS".
pub const ID_MAGIC: u32 = 0x464C_5953;
/// Design version this contract describes, as [`reg::VERSION`] holds it: major << 16 | minor.
pub const VERSION: u32 = version(1, PERIOD_MINOR);
/// First minor version (of major 1) with the period timer ([`reg::PERIOD`]); 1.0 designs
/// ignore the register, so a firmware must not offer time mode on them.
pub const PERIOD_MINOR: u16 = 1;
/// True when a design of version `version` (as [`reg::VERSION`] holds it) has the period timer.
pub const fn has_period_timer(version: u32) -> bool {
    version >> 16 == 1 && (version & 0xFFFF) >= PERIOD_MINOR as u32
}
/// Packs a design version the way [`reg::VERSION`] holds it.
pub const fn version(major: u16, minor: u16) -> u32 {
    (major as u32) << 16 | minor as u32
}
/// `CONTROL` bit: capture enable.
pub const CONTROL_ENABLE: u32 = 0x1;
/// `CONTROL` bit: reset counters and event sequence, stop the period timer.
pub const CONTROL_RESET: u32 = 0x2;
/// `CONTROL` bit: clear the edge FIFO.
pub const CONTROL_CLEAR_FIFO: u32 = 0x4;
/// `STATUS` bit: data ready.
pub const STATUS_READY: u32 = 0x1;
/// `STATUS` bit: overrun since the last read.
pub const STATUS_OVERRUN: u32 = 0x2;
