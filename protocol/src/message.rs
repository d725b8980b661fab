//! Typed messages in both directions (PROTOCOL.md §Messages): [`Message::parse`] reads a payload
//! with nom, [`Message::emit`] writes one into a caller's buffer,
//! [`Message::encode_frame`] wraps it into a wire frame, and [`Frame::message`] reads a checked
//! frame's payload. Each message's layout is written once, as the field list of a `record!` or
//! a row of `messages!`, and both directions follow it.

use crate::config::{SCAN_CONFIG_LEN, ScanConfig};
use crate::cursor::Cursor;
use crate::error::{EncodeError, ParseError};
use crate::fields::{At, Field, code_field, record};
use crate::frame::{Frame, MessageType, encode_frame_with};
use crate::limits::{MAX_CHUNK_POSITIONS, MAX_DETAIL};
use crate::point::PointBatch;
use core::fmt::Write as _;

/// Identity and limits of a device (reply to `GetInfo`, also sent at start-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DeviceInfo {
    /// Protocol version the firmware speaks.
    pub protocol_version: u8,
    /// Firmware version major.
    pub fw_major: u16,
    /// Firmware version minor.
    pub fw_minor: u16,
    /// Firmware version patch.
    pub fw_patch: u16,
    /// Detector channels the device has (1–32).
    pub n_channels: u8,
    /// Width of the hardware detector counters, bits.
    pub counter_bits: u8,
    /// Device clock rate, Hz (timestamps and live times are in its ticks).
    pub clock_hz: u64,
    /// Depth of the FPGA event FIFO, entries.
    pub fifo_depth: u32,
    /// Frames kept for resend requests.
    pub resend_frames: u32,
    /// Longest position list (and most presets per pass) accepted.
    pub max_points: u32,
    /// Positions the device holds at once while a list streams in.
    pub list_window: u32,
    /// Chosen at random at every start of the firmware: a new value means a new device session
    /// (its sequence numbers, resend ring and scan state began again).
    pub boot_id: u32,
}

/// Sent when a scan is armed: its id and the configuration in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScanArmed {
    /// Scan id given by the host's `Arm`.
    pub scan_id: u32,
    /// Echo of the configuration.
    pub config: ScanConfig,
}

/// Why a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DoneReason {
    /// Every preset fired.
    Completed = 0,
    /// The host aborted it.
    Aborted = 1,
    /// The device stopped it; `error_code` says why.
    Error = 2,
}

/// Sent when a scan ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScanDone {
    /// The scan.
    pub scan_id: u32,
    /// Points the device latched and sent.
    pub total_points: u32,
    /// Why it ended.
    pub reason: DoneReason,
    /// Device error code when `reason` is `Error` (PROTOCOL.md §ScanDone), else 0.
    pub error_code: u16,
}

impl DoneReason {
    /// From the wire code.
    pub fn from_u8(v: u8) -> Option<Self> {
        [Self::Completed, Self::Aborted, Self::Error]
            .into_iter()
            .find(|r| *r as u8 == v)
    }
}

impl ScanDone {
    /// `error_code`: the FPGA event FIFO overran and events were lost.
    pub const ERR_FIFO_OVERRUN: u16 = 1;
    /// `error_code`: a list scan reached a position the host had not yet sent.
    pub const ERR_LIST_UNDERRUN: u16 = 2;
    /// `error_code`: the device's own fault (see its log).
    pub const ERR_INTERNAL: u16 = 3;
}

/// What the device is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum DeviceState {
    /// No valid configuration.
    #[default]
    Idle = 0,
    /// Configured, not armed.
    Configured = 1,
    /// Armed, waiting for the first preset.
    Armed = 2,
    /// At least one point latched; scan running.
    Scanning = 3,
}

impl DeviceState {
    /// From the wire code.
    pub fn from_u8(v: u8) -> Option<Self> {
        [Self::Idle, Self::Configured, Self::Armed, Self::Scanning]
            .into_iter()
            .find(|s| *s as u8 == v)
    }
}

/// Health counters; all only grow, and are 64-bit so they never roll over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Health {
    /// Device clock now, ticks.
    pub uptime_ticks: u64,
    /// Device state.
    pub state: DeviceState,
    /// Current or last scan id.
    pub scan_id: u32,
    /// Current encoder position.
    pub position: i64,
    /// Points latched in the current or last scan.
    pub points: u32,
    /// Illegal quadrature transitions (both lines changed at once).
    pub quad_errors: u64,
    /// Position jumps across more than one preset between two samples.
    pub position_jumps: u64,
    /// FPGA FIFO overruns (events lost in hardware).
    pub fifo_overruns: u64,
    /// Frames sent, resends included.
    pub frames_sent: u64,
    /// Frames sent again on request.
    pub resends: u64,
    /// Requested frames that had already left the resend ring.
    pub resend_misses: u64,
    /// Bad frames received from the host (CRC, COBS, …).
    pub rx_errors: u64,
    /// Host commands answered with a nak.
    pub naks: u64,
    /// The device session (see [`DeviceInfo::boot_id`]).
    pub boot_id: u32,
}

/// Reply code of a [`CommandReply`]; 0 is the ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum NakCode {
    /// Command accepted.
    Ack = 0,
    /// The payload did not parse.
    Malformed = 1,
    /// The configuration is invalid (`arg` = [`crate::config::ConfigError`] code).
    InvalidConfig = 2,
    /// Not allowed in the current state (e.g. configure or arm while armed).
    Busy = 3,
    /// Arm without a configuration.
    NotConfigured = 4,
    /// A list chunk outside the list or out of order (`arg` = next offset expected).
    BadChunk = 5,
    /// Arm in list mode before the list's first window is loaded.
    ListIncomplete = 6,
    /// Some requested frames already left the ring (`arg` = oldest sequence number still held).
    ResendUnavailable = 7,
    /// Unknown or device-to-host message type.
    UnknownCommand = 8,
}

impl NakCode {
    /// From the wire code.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Ack,
            1 => Self::Malformed,
            2 => Self::InvalidConfig,
            3 => Self::Busy,
            4 => Self::NotConfigured,
            5 => Self::BadChunk,
            6 => Self::ListIncomplete,
            7 => Self::ResendUnavailable,
            8 => Self::UnknownCommand,
            _ => return None,
        })
    }
}

/// The device's answer to one host command.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CommandReply {
    /// Sequence number of the host frame answered.
    pub request_seq: u32,
    /// Message type of the host frame answered.
    pub request_type: u8,
    /// Ack or the reason for the nak.
    pub code: NakCode,
    /// Code-specific value (see [`NakCode`]).
    pub arg: u32,
    /// Human-readable detail (UTF-8, ≤ 64 bytes), empty for an ack.
    pub detail: heapless::String<MAX_DETAIL>,
}

impl CommandReply {
    /// An ack of the given request.
    pub fn ack(request_seq: u32, request_type: u8) -> Self {
        Self {
            request_seq,
            request_type,
            code: NakCode::Ack,
            arg: 0,
            detail: heapless::String::new(),
        }
    }

    /// A nak; `detail` is formatted and cut at 64 bytes (on a char boundary).
    pub fn nak(
        request_seq: u32,
        request_type: u8,
        code: NakCode,
        arg: u32,
        detail: core::fmt::Arguments<'_>,
    ) -> Self {
        let mut w = Truncating(heapless::String::new());
        let _ = w.write_fmt(detail);
        Self {
            request_seq,
            request_type,
            code,
            arg,
            detail: w.0,
        }
    }

    /// True for an ack.
    pub fn is_ack(&self) -> bool {
        self.code == NakCode::Ack
    }
}

/// A `fmt::Write` that silently stops at capacity instead of failing.
struct Truncating(heapless::String<MAX_DETAIL>);

impl core::fmt::Write for Truncating {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for ch in s.chars() {
            if self.0.push(ch).is_err() {
                break;
            }
        }
        Ok(())
    }
}

/// Positions of a list chunk: parsed bytes, or values to send.
#[derive(Debug, Clone, Copy)]
pub enum Positions<'a> {
    /// Little-endian i64s as received.
    Bytes(&'a [u8]),
    /// Values to emit.
    Values(&'a [i64]),
}

impl Positions<'_> {
    /// Number of positions.
    pub fn len(&self) -> usize {
        match self {
            Self::Bytes(b) => b.len() / 8,
            Self::Values(v) => v.len(),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The positions in order.
    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        let (bytes, values): (&[u8], &[i64]) = match self {
            Self::Bytes(b) => (b, &[]),
            Self::Values(v) => (&[], v),
        };
        bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .chain(values.iter().copied())
    }
}

impl PartialEq for Positions<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}
impl Eq for Positions<'_> {}

/// Every message of the protocol. Borrowed parts (`PointBatch::data`, list positions) point into
/// the frame they were parsed from, or at the caller's data when emitting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// Host → device: send [`Message::DeviceInfo`].
    GetInfo,
    /// Host → device: set the scan configuration (device must not be armed).
    Configure(ScanConfig),
    /// Host → device: positions `offset..offset+len` of the list.
    PositionChunk {
        /// Index of the first position in the list.
        offset: u32,
        /// The positions (≤ [`MAX_CHUNK_POSITIONS`]).
        positions: Positions<'a>,
    },
    /// Host → device: arm the configured scan under this id.
    Arm {
        /// Scan id chosen by the host, echoed in every message of the scan.
        scan_id: u32,
    },
    /// Host → device: stop the scan now.
    Abort,
    /// Host → device: send frames `first_seq..=last_seq` again (wrapping range).
    ResendRequest {
        /// First sequence number wanted.
        first_seq: u32,
        /// Last sequence number wanted.
        last_seq: u32,
    },
    /// Host → device: liveness check.
    Ping {
        /// Echoed in the pong.
        token: u32,
    },
    /// Device → host: identity and limits.
    DeviceInfo(DeviceInfo),
    /// Device → host: scan armed.
    ScanArmed(ScanArmed),
    /// Device → host: points.
    PointBatch(PointBatch<'a>),
    /// Device → host: scan ended.
    ScanDone(ScanDone),
    /// Device → host: counters.
    Health(Health),
    /// Device → host: ack or nak.
    CommandReply(CommandReply),
    /// Device → host: ping answer.
    Pong {
        /// Token of the ping.
        token: u32,
        /// Device clock, ticks.
        uptime_ticks: u64,
        /// The device session (see [`DeviceInfo::boot_id`]).
        boot_id: u32,
    },
}

code_field!(DoneReason, DeviceState, NakCode);

// The wire layout of every message with a struct of its own (PROTOCOL.md §Messages): one field
// list each, in wire order, that both parse and emit follow.
record!('a, DeviceInfo, "info", {
    protocol_version, fw_major, fw_minor, fw_patch, n_channels, counter_bits, clock_hz,
    fifo_depth, resend_frames, max_points, list_window, boot_id
});
record!('a, ScanArmed, "armed", { scan_id, config });
record!('a, ScanDone, "done", { scan_id, total_points, reason, error_code });
record!('a, Health, "health", {
    uptime_ticks, state, scan_id, position, points, quad_errors, position_jumps, fifo_overruns,
    frames_sent, resends, resend_misses, rx_errors, naks, boot_id
});
record!('a, CommandReply, "reply", { request_seq, request_type, code, arg, detail });

/// `n u16` (≤ 250) then `n` little-endian i64s.
impl<'a> Field<'a> for Positions<'a> {
    fn parse(i: &'a [u8], at: At) -> Result<(&'a [u8], Self), ParseError> {
        let (r, n) = u16::parse(i, at)?;
        let n = usize::from(n);
        if n > MAX_CHUNK_POSITIONS {
            return Err(ParseError::InvalidField {
                field: "chunk.n",
                value: n as u64,
            });
        }
        let (bytes, r) = r.split_at_checked(n * 8).ok_or(at.truncated())?;
        Ok((r, Positions::Bytes(bytes)))
    }

    fn emit(&self, c: &mut Cursor<'_>) -> Result<(), EncodeError> {
        if self.len() > MAX_CHUNK_POSITIONS {
            return Err(EncodeError::InvalidValue {
                what: "more than 250 positions in one chunk",
            });
        }
        c.u16(self.len() as u16)?;
        self.iter().try_for_each(|p| c.i64(p))
    }
}

/// The table of messages: `unit` ones have no payload, `record` ones carry one value that is a
/// [`Field`], `fields` ones list their fields in wire order (errors name them `prefix.field`).
/// Generates [`Message::msg_type`], [`Message::parse`] and [`Message::emit`]; the compiler
/// checks the table covers every variant and every field.
macro_rules! messages {
    (
        unit: $($u:ident),*;
        record: $($r:ident),*;
        fields: $($f:ident $p:literal { $($name:ident),* }),*;
    ) => {
        impl<'a> Message<'a> {
            /// The message's type code.
            pub fn msg_type(&self) -> MessageType {
                match self {
                    $(Self::$u => MessageType::$u,)*
                    $(Self::$r(_) => MessageType::$r,)*
                    $(Self::$f { .. } => MessageType::$f,)*
                }
            }

            /// Parses the payload of a frame of type `msg_type`.
            pub fn parse(msg_type: u8, payload: &'a [u8]) -> Result<Self, ParseError> {
                let t = MessageType::from_u8(msg_type).ok_or(ParseError::UnknownType(msg_type))?;
                let i = payload;
                let (rest, msg) = match t {
                    $(MessageType::$u => (i, Self::$u),)*
                    $(MessageType::$r => {
                        let (i, v) = Field::parse(i, At { msg_type, field: "" })?;
                        (i, Self::$r(v))
                    })*
                    $(MessageType::$f => {
                        $crate::fields::parse_fields!(i, msg_type, $p, [Self::$f], [] $($name),*)
                    })*
                };
                if !rest.is_empty() {
                    return Err(ParseError::TrailingBytes {
                        msg_type,
                        extra: rest.len(),
                    });
                }
                Ok(msg)
            }

            /// Writes the payload into `out`; returns its length.
            pub fn emit(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
                let mut c = Cursor::new(out);
                let c = &mut c;
                match self {
                    $(Self::$u => {})*
                    $(Self::$r(v) => v.emit(c)?,)*
                    $(Self::$f { $($name),* } => { $(Field::emit($name, c)?;)* })*
                }
                Ok(c.position())
            }
        }
    };
}

messages! {
    unit: GetInfo, Abort;
    record: Configure, DeviceInfo, ScanArmed, PointBatch, ScanDone, Health, CommandReply;
    fields:
        PositionChunk "chunk" { offset, positions },
        Arm "arm" { scan_id },
        ResendRequest "resend" { first_seq, last_seq },
        Ping "ping" { token },
        Pong "pong" { token, uptime_ticks, boot_id };
}

impl Message<'_> {
    /// Writes the complete wire frame (COBS + delimiter) with sequence number `seq` into `out`
    /// (at least [`crate::limits::MAX_ENCODED_FRAME`] bytes is always enough).
    pub fn encode_frame(&self, seq: u32, out: &mut [u8]) -> Result<usize, EncodeError> {
        encode_frame_with(self.msg_type() as u8, seq, out, |dst| self.emit(dst))
    }
}

impl<'a> Frame<'a> {
    /// Parses the payload as a message.
    pub fn message(&self) -> Result<Message<'a>, ParseError> {
        Message::parse(self.msg_type(), self.payload())
    }
}

/// Wire length of a [`ScanConfig`] (re-exported for the spec test).
pub const CONFIG_LEN: usize = SCAN_CONFIG_LEN;
