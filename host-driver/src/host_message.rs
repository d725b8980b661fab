//! Owned host → device commands and their framing with the host's own sequence counter.

use flyscan_protocol::ScanConfig;
use flyscan_protocol::limits::MAX_ENCODED_FRAME;
use flyscan_protocol::message::{Message, Positions};

/// A command the host sends to the device (owned, so it can wait in queues).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMessage {
    /// Ask for `DeviceInfo`.
    GetInfo,
    /// Set the scan configuration.
    Configure(ScanConfig),
    /// Positions `offset..offset + positions.len()` of the list.
    PositionChunk {
        /// Index of the first position.
        offset: u32,
        /// The positions (at most 250).
        positions: Vec<i64>,
    },
    /// Arm the configured scan under `scan_id`.
    Arm {
        /// Host-chosen scan id.
        scan_id: u32,
    },
    /// Stop the scan.
    Abort,
    /// Send device frames `first_seq..=last_seq` again.
    ResendRequest {
        /// First sequence number wanted.
        first_seq: u32,
        /// Last sequence number wanted.
        last_seq: u32,
    },
    /// Liveness check.
    Ping {
        /// Echoed token.
        token: u32,
    },
}

impl HostMessage {
    /// The protocol message borrowing from `self`.
    pub fn as_message(&self) -> Message<'_> {
        match self {
            Self::GetInfo => Message::GetInfo,
            Self::Configure(c) => Message::Configure(*c),
            Self::PositionChunk { offset, positions } => Message::PositionChunk {
                offset: *offset,
                positions: Positions::Values(positions),
            },
            Self::Arm { scan_id } => Message::Arm { scan_id: *scan_id },
            Self::Abort => Message::Abort,
            Self::ResendRequest {
                first_seq,
                last_seq,
            } => Message::ResendRequest {
                first_seq: *first_seq,
                last_seq: *last_seq,
            },
            Self::Ping { token } => Message::Ping { token: *token },
        }
    }

    /// The wire type code.
    pub fn type_code(&self) -> u8 {
        self.as_message().msg_type() as u8
    }
}

/// Numbers host frames (wrapping u32, +1 per frame) and encodes them.
#[derive(Debug, Default)]
pub struct HostFramer {
    next_seq: u32,
}

impl HostFramer {
    /// A framer whose first frame has sequence number `first_seq`.
    pub fn new(first_seq: u32) -> Self {
        Self {
            next_seq: first_seq,
        }
    }

    /// Encodes `msg` as the next frame; returns the wire bytes and the sequence number used.
    pub fn encode(
        &mut self,
        msg: &HostMessage,
    ) -> Result<(Vec<u8>, u32), flyscan_protocol::EncodeError> {
        let seq = self.next_seq;
        let mut buf = vec![0u8; MAX_ENCODED_FRAME];
        let n = msg.as_message().encode_frame(seq, &mut buf)?;
        buf.truncate(n);
        self.next_seq = self.next_seq.wrapping_add(1);
        Ok((buf, seq))
    }
}
