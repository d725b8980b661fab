//! The flyscan wire protocol, shared by the firmware (which mostly encodes) and the host driver
//! (which mostly decodes), so the two sides can never drift apart. The specification is
//! `protocol/PROTOCOL.md`.
//!
//! Layers, bottom up. A module uses only modules of the layers before it (the `layers` test
//! reads this list and checks every `crate::` path in the sources against it):
//!
//! 1. [`limits`]: the protocol version and every size bound, as constants.
//! 2. [`error`]: what can go wrong, by direction (peer/line errors apart from local ones).
//! 3. [`varint`]: LEB128 varints and zigzag mapping.
//! 4. [`cursor`]: a bounds-checked little-endian writer over a caller's buffer.
//! 5. `fields`: the one field list per message that both parse (nom) and emit follow.
//! 6. [`frame`]: one frame = `COBS(version | type | seq | payload | CRC-32C) 0x00`;
//!    [`frame::encode_frame`] writes a frame into a caller's buffer.
//! 7. [`deframer`]: finds frames in an arbitrarily chunked byte stream, checks them and
//!    resynchronises after damage.
//! 8. [`point`]: the per-trigger data points, their three encodings (fixed-width raw, compact
//!    varint differences, entropy-coded Rice) and the [`PointBatch`] that carries them.
//! 9. [`config`]: the scan configuration and the validation both sides share.
//! 10. [`message`]: the typed payloads ([`message::Message`]) in both directions, and
//!     [`Frame::message`].
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
mod fields;
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
    CommandReply, DeviceInfo, DeviceState, DoneReason, Health, Message, NakCode, ScanArmed,
    ScanDone,
};
pub use point::{BatchWriter, Encoding, Point, PointBatch, PointFlags, PointIter, PointView};
