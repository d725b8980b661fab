//! The flyscan wire protocol, shared by the firmware (which mostly encodes) and the host driver
//! (which mostly decodes), so the two sides can never drift apart.
//!
//! Layers, bottom up (the specification is `protocol/PROTOCOL.md`):
//!
//! * [`frame`]: one frame = `COBS(version | type | seq | payload | CRC-32C) 0x00`.
//!   [`frame::encode_frame`] writes a frame into a caller's buffer; [`deframer::Deframer`] finds
//!   frames in an arbitrarily chunked byte stream, checks them and resynchronises after damage.
//! * [`message`]: the typed payloads ([`message::Message`]) in both directions, parsed with nom and
//!   emitted into caller buffers.
//! * [`point`]: the per-trigger data points and their two encodings (fixed-width raw, and compact
//!   second-order deltas as zigzag varints) inside a point batch.
//!
//! **Invariants:** no I/O, no clock, no allocator; every buffer is bounded by a constant in
//! [`limits`]; no input bytes can make any function here panic.
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod cursor;
pub mod deframer;
pub mod error;
pub mod frame;
pub mod limits;
pub mod message;
pub mod point;
pub mod varint;

pub use config::{ConfigError, Direction, Limits, ScanConfig, TriggerMode};
pub use deframer::{Deframer, DeframerStats, Feed};
pub use error::{EncodeError, FrameError, ParseError};
pub use frame::{Frame, FrameHeader, MessageType, PROTOCOL_VERSION, encode_frame};
pub use message::{
    CommandReply, DeviceInfo, DeviceState, DoneReason, Health, Message, NakCode, PointBatch,
    ScanArmed, ScanDone,
};
pub use point::{BatchWriter, Encoding, Point, PointFlags, PointIter, PointView};
