//! Error types, named by direction: [`FrameError`] and [`ParseError`] mean the peer (or the
//! line) sent something bad; [`EncodeError`] means we asked for something impossible.

use core::fmt;

/// Why a delimited chunk of the byte stream was not accepted as a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// More than [`crate::limits::MAX_ENCODED_FRAME`] bytes arrived without a delimiter; they were
    /// discarded up to the next 0x00.
    Oversize {
        /// Bytes discarded.
        discarded: usize,
    },
    /// The COBS encoding was invalid (a run length pointed past the delimiter).
    Cobs,
    /// The decoded body is shorter than header + CRC.
    TooShort {
        /// Decoded body length.
        len: usize,
    },
    /// The CRC-32C in the trailer does not match the body.
    BadCrc {
        /// CRC carried by the frame.
        received: u32,
        /// CRC computed over the received body.
        computed: u32,
    },
    /// The frame's protocol version is not one this decoder speaks.
    UnsupportedVersion {
        /// Version byte received.
        version: u8,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Oversize { discarded } => {
                write!(
                    f,
                    "no frame delimiter within limit; discarded {discarded} bytes"
                )
            }
            Self::Cobs => f.write_str("invalid COBS encoding"),
            Self::TooShort { len } => {
                write!(f, "frame body of {len} bytes is shorter than header + CRC")
            }
            Self::BadCrc { received, computed } => {
                write!(
                    f,
                    "CRC mismatch: frame carries {received:#010x}, body gives {computed:#010x}"
                )
            }
            Self::UnsupportedVersion { version } => write!(
                f,
                "protocol version {version} not supported (this build speaks {})",
                crate::limits::PROTOCOL_VERSION
            ),
        }
    }
}

impl core::error::Error for FrameError {}

/// Why a frame's payload was not accepted as a message (the CRC passed, so this is a peer bug or
/// a version mismatch, not line noise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The message type byte is not known.
    UnknownType(u8),
    /// The payload ended before the message did.
    Truncated {
        /// Message type being parsed.
        msg_type: u8,
    },
    /// Bytes were left over after the message.
    TrailingBytes {
        /// Message type being parsed.
        msg_type: u8,
        /// Number of unexpected bytes.
        extra: usize,
    },
    /// A field holds a value outside its documented range.
    InvalidField {
        /// Field name as in PROTOCOL.md.
        field: &'static str,
        /// The value received.
        value: u64,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownType(t) => write!(f, "unknown message type {t:#04x}"),
            Self::Truncated { msg_type } => write!(f, "message {msg_type:#04x} truncated"),
            Self::TrailingBytes { msg_type, extra } => {
                write!(f, "message {msg_type:#04x} has {extra} trailing bytes")
            }
            Self::InvalidField { field, value } => {
                write!(f, "field {field} has invalid value {value}")
            }
        }
    }
}

impl core::error::Error for ParseError {}

/// Why a message or frame could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer is too small.
    BufferTooSmall {
        /// Bytes needed (at least).
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// The payload exceeds [`crate::limits::MAX_PAYLOAD`].
    PayloadTooLong {
        /// Payload length requested.
        len: usize,
    },
    /// A value cannot be represented (e.g. a point with more counts than the channel mask has
    /// bits, or a batch that is full).
    InvalidValue {
        /// What was wrong.
        what: &'static str,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed, available } => {
                write!(
                    f,
                    "output buffer too small: need {needed} bytes, have {available}"
                )
            }
            Self::PayloadTooLong { len } => write!(
                f,
                "payload of {len} bytes exceeds the {}-byte limit",
                crate::limits::MAX_PAYLOAD
            ),
            Self::InvalidValue { what } => write!(f, "cannot encode: {what}"),
        }
    }
}

impl core::error::Error for EncodeError {}
