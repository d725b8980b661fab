//! Frames: `COBS(version | type | seq | payload | CRC-32C) 0x00` (PROTOCOL.md §Frames).
//!
//! Header fields are little-endian at fixed offsets (the `field` module). The CRC is CRC-32C
//! (Castagnoli) over header + payload, stored little-endian after the payload. What a payload
//! means is the next layer up: `Frame::message` lives with the messages (`message.rs`).

use crate::error::{EncodeError, FrameError};
pub use crate::limits::PROTOCOL_VERSION;
use crate::limits::{CRC_LEN, HEADER_LEN, MAX_BODY, MAX_PAYLOAD};

/// CRC-32C (Castagnoli, reflected, init and xorout 0xFFFFFFFF; check value 0xE3069283).
/// The 16-slice table costs 16 KiB and runs at several GB/s on the host.
pub static CRC32C: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);

mod field {
    use core::ops::Range;
    pub const VERSION: usize = 0;
    pub const TYPE: usize = 1;
    pub const SEQ: Range<usize> = 2..6;
}

/// Message type codes. Device → host codes have the top bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// Host → device: request [`MessageType::DeviceInfo`].
    GetInfo = 0x01,
    /// Host → device: scan configuration.
    Configure = 0x02,
    /// Host → device: a piece of the position list.
    PositionChunk = 0x03,
    /// Host → device: arm the configured scan.
    Arm = 0x04,
    /// Host → device: abort the scan.
    Abort = 0x05,
    /// Host → device: resend frames by sequence number.
    ResendRequest = 0x06,
    /// Host → device: liveness check, answered by [`MessageType::Pong`].
    Ping = 0x07,
    /// Device → host: identity and limits.
    DeviceInfo = 0x81,
    /// Device → host: a scan was armed.
    ScanArmed = 0x82,
    /// Device → host: a batch of points.
    PointBatch = 0x83,
    /// Device → host: a scan ended.
    ScanDone = 0x84,
    /// Device → host: health counters.
    Health = 0x85,
    /// Device → host: ack or nak of a host command.
    CommandReply = 0x86,
    /// Device → host: answer to [`MessageType::Ping`].
    Pong = 0x87,
}

impl MessageType {
    /// Every message type, in code order.
    pub const ALL: [MessageType; 14] = [
        Self::GetInfo,
        Self::Configure,
        Self::PositionChunk,
        Self::Arm,
        Self::Abort,
        Self::ResendRequest,
        Self::Ping,
        Self::DeviceInfo,
        Self::ScanArmed,
        Self::PointBatch,
        Self::ScanDone,
        Self::Health,
        Self::CommandReply,
        Self::Pong,
    ];

    /// Maps a type byte to a type, if known.
    pub fn from_u8(b: u8) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| *t as u8 == b)
    }

    /// True for messages the device sends.
    pub fn is_from_device(self) -> bool {
        (self as u8) & 0x80 != 0
    }
}

/// The decoded header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Protocol version byte.
    pub version: u8,
    /// Message type byte (may be unknown to this build; see [`MessageType::from_u8`]).
    pub msg_type: u8,
    /// Sender's sequence number (each direction counts on its own, wrapping).
    pub seq: u32,
}

/// A checked frame: version supported, CRC good. Borrows the decoded body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    body: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Checks a decoded (un-COBSed) body: length, CRC, then version.
    pub fn new_checked(body: &'a [u8]) -> Result<Self, FrameError> {
        if body.len() < HEADER_LEN + CRC_LEN {
            return Err(FrameError::TooShort { len: body.len() });
        }
        let (covered, trailer) = body.split_at(body.len() - CRC_LEN);
        let received = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        let computed = CRC32C.checksum(covered);
        if received != computed {
            return Err(FrameError::BadCrc { received, computed });
        }
        if body[field::VERSION] != PROTOCOL_VERSION {
            return Err(FrameError::UnsupportedVersion {
                version: body[field::VERSION],
            });
        }
        Ok(Self { body })
    }

    /// The header fields.
    pub fn header(&self) -> FrameHeader {
        let s = &self.body[field::SEQ];
        FrameHeader {
            version: self.body[field::VERSION],
            msg_type: self.body[field::TYPE],
            seq: u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        }
    }

    /// Sequence number.
    pub fn seq(&self) -> u32 {
        self.header().seq
    }

    /// Message type byte.
    pub fn msg_type(&self) -> u8 {
        self.body[field::TYPE]
    }

    /// The message payload (between header and CRC).
    pub fn payload(&self) -> &'a [u8] {
        &self.body[HEADER_LEN..self.body.len() - CRC_LEN]
    }

    /// The whole decoded body including header and CRC.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
}

/// Writes one complete wire frame (COBS-encoded, delimiter included) into `out` and returns its
/// length. `write_payload` fills the payload area (at most [`MAX_PAYLOAD`] bytes) and returns
/// how many bytes it wrote; this lets messages serialise straight into the frame body.
pub fn encode_frame_with(
    msg_type: u8,
    seq: u32,
    out: &mut [u8],
    write_payload: impl FnOnce(&mut [u8]) -> Result<usize, EncodeError>,
) -> Result<usize, EncodeError> {
    let mut body = [0u8; MAX_BODY];
    body[field::VERSION] = PROTOCOL_VERSION;
    body[field::TYPE] = msg_type;
    body[field::SEQ].copy_from_slice(&seq.to_le_bytes());
    let n = write_payload(&mut body[HEADER_LEN..HEADER_LEN + MAX_PAYLOAD])?;
    if n > MAX_PAYLOAD {
        return Err(EncodeError::PayloadTooLong { len: n });
    }
    let crc_at = HEADER_LEN + n;
    let crc = CRC32C.checksum(&body[..crc_at]);
    body[crc_at..crc_at + CRC_LEN].copy_from_slice(&crc.to_le_bytes());
    let body = &body[..crc_at + CRC_LEN];
    let needed = corncobs::max_encoded_len(body.len());
    if out.len() < needed {
        return Err(EncodeError::BufferTooSmall {
            needed,
            available: out.len(),
        });
    }
    Ok(corncobs::encode_buf(body, out))
}

/// Writes a frame carrying an already serialised `payload`.
pub fn encode_frame(
    msg_type: u8,
    seq: u32,
    payload: &[u8],
    out: &mut [u8],
) -> Result<usize, EncodeError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(EncodeError::PayloadTooLong { len: payload.len() });
    }
    encode_frame_with(msg_type, seq, out, |dst| {
        dst[..payload.len()].copy_from_slice(payload);
        Ok(payload.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        assert_eq!(CRC32C.checksum(b"123456789"), 0xE306_9283);
    }

    /// PROTOCOL.md §Frames worked example: a Ping (type 0x07), seq 1, token 0x11223344.
    #[test]
    fn worked_example_bytes() {
        let mut out = [0xa5u8; 32];
        let n = encode_frame(0x07, 1, &0x1122_3344u32.to_le_bytes(), &mut out).expect("fits");
        let body_crc =
            CRC32C.checksum(&[0x02, 0x07, 0x01, 0x00, 0x00, 0x00, 0x44, 0x33, 0x22, 0x11]);
        let c = body_crc.to_le_bytes();
        // COBS: zeros at body offsets 3,4,5 split runs: [01 07 01] [] [] [44 33 22 11 c0..c3]
        let mut expect = [0u8; 32];
        let e = [
            0x04, 0x02, 0x07, 0x01, 0x01, 0x01, 0x09, 0x44, 0x33, 0x22, 0x11, c[0], c[1], c[2],
            c[3], 0x00,
        ];
        expect[..e.len()].copy_from_slice(&e);
        // The CRC bytes happen not to contain zero for this body; assert it so the example stays valid.
        assert!(c.iter().all(|&b| b != 0));
        assert_eq!(&out[..n], &expect[..e.len()]);
        assert_eq!(out[n], 0xa5, "nothing written past the frame");
    }
}
