//! The simulator socket (FPGA.md §Simulator socket): embedded-hal `SpiDevice` transactions and
//! the `DRDY` level carried over a Unix stream socket, so the unchanged firmware binary can run
//! against a simulated FPGA. [`client`] is the firmware's side, [`server`] the simulator's;
//! both take their bytes from the constants here.

pub mod client;
pub mod server;

pub use client::{SimDrdy, SimError, SimSpi, connect};
pub use server::{Served, SocketTarget, Transaction, serve_connection};

/// Request byte: one SPI transaction (`'T'`, `n_ops u8`, then the operations).
pub const REQ_TRANSACTION: u8 = b'T';
/// Request byte: read the data-ready level (answer: one byte, 0 or 1).
pub const REQ_DATA_READY: u8 = b'R';
/// Request byte: end the session (no answer; the server closes the connection).
pub const REQ_QUIT: u8 = b'Q';

/// Operation kinds of a transaction request (`kind u8`, `len u32`, data for 0, 2 and 3).
pub mod kind {
    /// `Write(buf)`: `len` data bytes sent, nothing returned.
    pub const WRITE: u8 = 0;
    /// `Read(buf)`: no data sent, `len` bytes returned.
    pub const READ: u8 = 1;
    /// `Transfer(read, write)`: `len` = the longer buffer; `write` padded with `00` sent,
    /// `len` bytes returned.
    pub const TRANSFER: u8 = 2;
    /// `TransferInPlace(buf)`: `len` bytes sent, `len` bytes returned.
    pub const TRANSFER_IN_PLACE: u8 = 3;
    /// `DelayNs(ns)`: `len` is the delay; no data either way.
    pub const DELAY_NS: u8 = 4;
}

/// Longest operation a server accepts (a READ_EDGES of 256 events is ~3.6 KiB).
pub const MAX_OP_LEN: u32 = 1 << 20;
