//! Typed messages in both directions (PROTOCOL.md §Messages): [`Message::parse`] reads a payload
//! with nom, [`Message::emit`] writes one into a caller's buffer, and
//! [`Message::encode_frame`] wraps it into a wire frame.

use crate::config::{Direction, SCAN_CONFIG_LEN, ScanConfig, TriggerMode};
use crate::cursor::Cursor;
use crate::error::{EncodeError, ParseError};
use crate::frame::{MessageType, encode_frame_with};
use crate::limits::{MAX_BATCH_POINTS, MAX_CHUNK_POSITIONS, MAX_DETAIL};
use crate::point::{BATCH_HEADER_LEN, BatchWriter, Encoding, PointIter};
use core::fmt::Write as _;
use nom::IResult;
use nom::number::complete::{le_i64, le_u8, le_u16, le_u32, le_u64};

type NomErr<'a> = nom::error::Error<&'a [u8]>;

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

/// A batch of consecutive points of one scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointBatch<'a> {
    /// Scan the points belong to.
    pub scan_id: u32,
    /// Index (0-based, within the scan) of the first point.
    pub first_index: u32,
    /// Channels present in each point.
    pub channel_mask: u32,
    /// Encoding of `data`.
    pub encoding: Encoding,
    /// Number of points in `data`.
    pub n_points: u16,
    /// Encoded points.
    pub data: &'a [u8],
}

impl<'a> PointBatch<'a> {
    /// The batch held by `writer`.
    pub fn from_writer(scan_id: u32, first_index: u32, writer: &'a BatchWriter) -> Self {
        Self {
            scan_id,
            first_index,
            channel_mask: writer.channel_mask(),
            encoding: writer.encoding(),
            // BatchWriter never holds more than MAX_BATCH_POINTS (< 2^16).
            n_points: writer.n_points() as u16,
            data: writer.data(),
        }
    }

    /// Decodes the points.
    pub fn points(&self) -> PointIter<'a> {
        PointIter::new(
            self.data,
            self.encoding,
            self.channel_mask.count_ones() as usize,
            usize::from(self.n_points),
        )
    }
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

fn config(i: &[u8]) -> IResult<&[u8], (u8, u8, u8, ScanConfig), NomErr<'_>> {
    let (i, mode) = le_u8(i)?;
    let (i, dir) = le_u8(i)?;
    let (i, enc) = le_u8(i)?;
    let (i, _reserved) = le_u8(i)?;
    let (i, start) = le_i64(i)?;
    let (i, step) = le_i64(i)?;
    let (i, count) = le_u32(i)?;
    let (i, passes) = le_u16(i)?;
    let (i, channel_mask) = le_u32(i)?;
    let (i, max_batch_points) = le_u16(i)?;
    let (i, max_latency_us) = le_u32(i)?;
    let cfg = ScanConfig {
        mode: TriggerMode::StartStepCount,
        direction: Direction::Positive,
        encoding: Encoding::Compact,
        start,
        step,
        count,
        passes,
        channel_mask,
        max_batch_points,
        max_latency_us,
    };
    Ok((i, (mode, dir, enc, cfg)))
}

fn checked_config(raw: (u8, u8, u8, ScanConfig)) -> Result<ScanConfig, ParseError> {
    let (mode, dir, enc, mut cfg) = raw;
    cfg.mode = TriggerMode::from_u8(mode).ok_or(ParseError::InvalidField {
        field: "config.mode",
        value: mode.into(),
    })?;
    cfg.direction = Direction::from_u8(dir).ok_or(ParseError::InvalidField {
        field: "config.direction",
        value: dir.into(),
    })?;
    cfg.encoding = Encoding::from_u8(enc).ok_or(ParseError::InvalidField {
        field: "config.encoding",
        value: enc.into(),
    })?;
    Ok(cfg)
}

fn emit_config(c: &mut Cursor<'_>, cfg: &ScanConfig) -> Result<(), EncodeError> {
    c.u8(cfg.mode as u8)?;
    c.u8(cfg.direction as u8)?;
    c.u8(cfg.encoding as u8)?;
    c.u8(0)?;
    c.i64(cfg.start)?;
    c.i64(cfg.step)?;
    c.u32(cfg.count)?;
    c.u16(cfg.passes)?;
    c.u32(cfg.channel_mask)?;
    c.u16(cfg.max_batch_points)?;
    c.u32(cfg.max_latency_us)
}

impl<'a> Message<'a> {
    /// The message's type code.
    pub fn msg_type(&self) -> MessageType {
        match self {
            Self::GetInfo => MessageType::GetInfo,
            Self::Configure(_) => MessageType::Configure,
            Self::PositionChunk { .. } => MessageType::PositionChunk,
            Self::Arm { .. } => MessageType::Arm,
            Self::Abort => MessageType::Abort,
            Self::ResendRequest { .. } => MessageType::ResendRequest,
            Self::Ping { .. } => MessageType::Ping,
            Self::DeviceInfo(_) => MessageType::DeviceInfo,
            Self::ScanArmed(_) => MessageType::ScanArmed,
            Self::PointBatch(_) => MessageType::PointBatch,
            Self::ScanDone(_) => MessageType::ScanDone,
            Self::Health(_) => MessageType::Health,
            Self::CommandReply(_) => MessageType::CommandReply,
            Self::Pong { .. } => MessageType::Pong,
        }
    }

    /// Parses the payload of a frame of type `msg_type`.
    pub fn parse(msg_type: u8, payload: &'a [u8]) -> Result<Self, ParseError> {
        let t = MessageType::from_u8(msg_type).ok_or(ParseError::UnknownType(msg_type))?;
        let trunc = |_| ParseError::Truncated { msg_type };
        let (rest, msg) = match t {
            MessageType::GetInfo => (payload, Self::GetInfo),
            MessageType::Abort => (payload, Self::Abort),
            MessageType::Configure => {
                let (r, raw) = config(payload).map_err(trunc)?;
                (r, Self::Configure(checked_config(raw)?))
            }
            MessageType::PositionChunk => {
                let (r, offset) = le_u32::<_, NomErr<'_>>(payload).map_err(trunc)?;
                let (r, n) = le_u16::<_, NomErr<'_>>(r).map_err(trunc)?;
                let n = usize::from(n);
                if n > MAX_CHUNK_POSITIONS {
                    return Err(ParseError::InvalidField {
                        field: "chunk.count",
                        value: n as u64,
                    });
                }
                if r.len() < n * 8 {
                    return Err(ParseError::Truncated { msg_type });
                }
                let (bytes, r) = r.split_at(n * 8);
                (
                    r,
                    Self::PositionChunk {
                        offset,
                        positions: Positions::Bytes(bytes),
                    },
                )
            }
            MessageType::Arm => {
                let (r, scan_id) = le_u32::<_, NomErr<'_>>(payload).map_err(trunc)?;
                (r, Self::Arm { scan_id })
            }
            MessageType::ResendRequest => {
                let (r, first_seq) = le_u32::<_, NomErr<'_>>(payload).map_err(trunc)?;
                let (r, last_seq) = le_u32::<_, NomErr<'_>>(r).map_err(trunc)?;
                (
                    r,
                    Self::ResendRequest {
                        first_seq,
                        last_seq,
                    },
                )
            }
            MessageType::Ping => {
                let (r, token) = le_u32::<_, NomErr<'_>>(payload).map_err(trunc)?;
                (r, Self::Ping { token })
            }
            MessageType::Pong => {
                let (r, token) = le_u32::<_, NomErr<'_>>(payload).map_err(trunc)?;
                let (r, uptime_ticks) = le_u64::<_, NomErr<'_>>(r).map_err(trunc)?;
                let (r, boot_id) = le_u32::<_, NomErr<'_>>(r).map_err(trunc)?;
                (
                    r,
                    Self::Pong {
                        token,
                        uptime_ticks,
                        boot_id,
                    },
                )
            }
            MessageType::DeviceInfo => {
                let (r, v) = device_info(payload).map_err(trunc)?;
                (r, Self::DeviceInfo(v))
            }
            MessageType::ScanArmed => {
                let (r, scan_id) = le_u32::<_, NomErr<'_>>(payload).map_err(trunc)?;
                let (r, raw) = config(r).map_err(trunc)?;
                (
                    r,
                    Self::ScanArmed(ScanArmed {
                        scan_id,
                        config: checked_config(raw)?,
                    }),
                )
            }
            MessageType::PointBatch => {
                let (r, (scan_id, first_index, channel_mask, enc, n_points)) =
                    batch_header(payload).map_err(trunc)?;
                let encoding = Encoding::from_u8(enc).ok_or(ParseError::InvalidField {
                    field: "batch.encoding",
                    value: enc.into(),
                })?;
                if usize::from(n_points) > MAX_BATCH_POINTS {
                    return Err(ParseError::InvalidField {
                        field: "batch.n_points",
                        value: n_points.into(),
                    });
                }
                let n_ch = channel_mask.count_ones() as usize;
                if encoding == Encoding::Raw {
                    let want = usize::from(n_points) * crate::point::raw_point_len(n_ch);
                    if r.len() < want {
                        return Err(ParseError::Truncated { msg_type });
                    }
                    if r.len() > want {
                        return Err(ParseError::TrailingBytes {
                            msg_type,
                            extra: r.len() - want,
                        });
                    }
                }
                let b = PointBatch {
                    scan_id,
                    first_index,
                    channel_mask,
                    encoding,
                    n_points,
                    data: r,
                };
                (&r[r.len()..], Self::PointBatch(b))
            }
            MessageType::ScanDone => {
                let (r, scan_id) = le_u32::<_, NomErr<'_>>(payload).map_err(trunc)?;
                let (r, total_points) = le_u32::<_, NomErr<'_>>(r).map_err(trunc)?;
                let (r, reason) = le_u8::<_, NomErr<'_>>(r).map_err(trunc)?;
                let (r, error_code) = le_u16::<_, NomErr<'_>>(r).map_err(trunc)?;
                let reason = match reason {
                    0 => DoneReason::Completed,
                    1 => DoneReason::Aborted,
                    2 => DoneReason::Error,
                    v => {
                        return Err(ParseError::InvalidField {
                            field: "done.reason",
                            value: v.into(),
                        });
                    }
                };
                (
                    r,
                    Self::ScanDone(ScanDone {
                        scan_id,
                        total_points,
                        reason,
                        error_code,
                    }),
                )
            }
            MessageType::Health => {
                let (r, h) = health(payload).map_err(trunc)?;
                let state = match h.1 {
                    0 => DeviceState::Idle,
                    1 => DeviceState::Configured,
                    2 => DeviceState::Armed,
                    3 => DeviceState::Scanning,
                    v => {
                        return Err(ParseError::InvalidField {
                            field: "health.state",
                            value: v.into(),
                        });
                    }
                };
                (r, Self::Health(Health { state, ..h.0 }))
            }
            MessageType::CommandReply => {
                let (r, request_seq) = le_u32::<_, NomErr<'_>>(payload).map_err(trunc)?;
                let (r, request_type) = le_u8::<_, NomErr<'_>>(r).map_err(trunc)?;
                let (r, code) = le_u8::<_, NomErr<'_>>(r).map_err(trunc)?;
                let (r, arg) = le_u32::<_, NomErr<'_>>(r).map_err(trunc)?;
                let (r, len) = le_u8::<_, NomErr<'_>>(r).map_err(trunc)?;
                let code = NakCode::from_u8(code).ok_or(ParseError::InvalidField {
                    field: "reply.code",
                    value: code.into(),
                })?;
                let len = usize::from(len);
                if len > MAX_DETAIL {
                    return Err(ParseError::InvalidField {
                        field: "reply.detail_len",
                        value: len as u64,
                    });
                }
                if r.len() < len {
                    return Err(ParseError::Truncated { msg_type });
                }
                let (text, r) = r.split_at(len);
                let text = core::str::from_utf8(text).map_err(|_| ParseError::InvalidField {
                    field: "reply.detail",
                    value: len as u64,
                })?;
                let mut detail = heapless::String::new();
                // Cannot fail: len ≤ MAX_DETAIL was checked above.
                let _ = detail.push_str(text);
                (
                    r,
                    Self::CommandReply(CommandReply {
                        request_seq,
                        request_type,
                        code,
                        arg,
                        detail,
                    }),
                )
            }
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
        match self {
            Self::GetInfo | Self::Abort => {}
            Self::Configure(cfg) => emit_config(&mut c, cfg)?,
            Self::PositionChunk { offset, positions } => {
                if positions.len() > MAX_CHUNK_POSITIONS {
                    return Err(EncodeError::InvalidValue {
                        what: "more than 250 positions in one chunk",
                    });
                }
                c.u32(*offset)?;
                c.u16(positions.len() as u16)?;
                for p in positions.iter() {
                    c.i64(p)?;
                }
            }
            Self::Arm { scan_id } => c.u32(*scan_id)?,
            Self::ResendRequest {
                first_seq,
                last_seq,
            } => {
                c.u32(*first_seq)?;
                c.u32(*last_seq)?;
            }
            Self::Ping { token } => c.u32(*token)?,
            Self::Pong {
                token,
                uptime_ticks,
                boot_id,
            } => {
                c.u32(*token)?;
                c.u64(*uptime_ticks)?;
                c.u32(*boot_id)?;
            }
            Self::DeviceInfo(d) => {
                c.u8(d.protocol_version)?;
                c.u16(d.fw_major)?;
                c.u16(d.fw_minor)?;
                c.u16(d.fw_patch)?;
                c.u8(d.n_channels)?;
                c.u8(d.counter_bits)?;
                c.u64(d.clock_hz)?;
                c.u32(d.fifo_depth)?;
                c.u32(d.resend_frames)?;
                c.u32(d.max_points)?;
                c.u32(d.list_window)?;
                c.u32(d.boot_id)?;
            }
            Self::ScanArmed(a) => {
                c.u32(a.scan_id)?;
                emit_config(&mut c, &a.config)?;
            }
            Self::PointBatch(b) => {
                if usize::from(b.n_points) > MAX_BATCH_POINTS {
                    return Err(EncodeError::InvalidValue {
                        what: "more than 1024 points in one batch",
                    });
                }
                c.u32(b.scan_id)?;
                c.u32(b.first_index)?;
                c.u32(b.channel_mask)?;
                c.u8(b.encoding as u8)?;
                c.u16(b.n_points)?;
                debug_assert_eq!(c.position(), BATCH_HEADER_LEN);
                c.put(b.data)?;
            }
            Self::ScanDone(d) => {
                c.u32(d.scan_id)?;
                c.u32(d.total_points)?;
                c.u8(d.reason as u8)?;
                c.u16(d.error_code)?;
            }
            Self::Health(h) => {
                c.u64(h.uptime_ticks)?;
                c.u8(h.state as u8)?;
                c.u32(h.scan_id)?;
                c.i64(h.position)?;
                c.u32(h.points)?;
                for v in [
                    h.quad_errors,
                    h.position_jumps,
                    h.fifo_overruns,
                    h.frames_sent,
                    h.resends,
                    h.resend_misses,
                    h.rx_errors,
                    h.naks,
                ] {
                    c.u64(v)?;
                }
                c.u32(h.boot_id)?;
            }
            Self::CommandReply(r) => {
                c.u32(r.request_seq)?;
                c.u8(r.request_type)?;
                c.u8(r.code as u8)?;
                c.u32(r.arg)?;
                c.u8(r.detail.len() as u8)?;
                c.put(r.detail.as_bytes())?;
            }
        }
        Ok(c.position())
    }

    /// Writes the complete wire frame (COBS + delimiter) with sequence number `seq` into `out`
    /// (at least [`crate::limits::MAX_ENCODED_FRAME`] bytes is always enough).
    pub fn encode_frame(&self, seq: u32, out: &mut [u8]) -> Result<usize, EncodeError> {
        encode_frame_with(self.msg_type() as u8, seq, out, |dst| self.emit(dst))
    }
}

/// Wire length of a [`ScanConfig`] (re-exported for the spec test).
pub const CONFIG_LEN: usize = SCAN_CONFIG_LEN;

fn device_info(i: &[u8]) -> IResult<&[u8], DeviceInfo, NomErr<'_>> {
    let (i, protocol_version) = le_u8(i)?;
    let (i, fw_major) = le_u16(i)?;
    let (i, fw_minor) = le_u16(i)?;
    let (i, fw_patch) = le_u16(i)?;
    let (i, n_channels) = le_u8(i)?;
    let (i, counter_bits) = le_u8(i)?;
    let (i, clock_hz) = le_u64(i)?;
    let (i, fifo_depth) = le_u32(i)?;
    let (i, resend_frames) = le_u32(i)?;
    let (i, max_points) = le_u32(i)?;
    let (i, list_window) = le_u32(i)?;
    let (i, boot_id) = le_u32(i)?;
    Ok((
        i,
        DeviceInfo {
            protocol_version,
            fw_major,
            fw_minor,
            fw_patch,
            n_channels,
            counter_bits,
            clock_hz,
            fifo_depth,
            resend_frames,
            max_points,
            list_window,
            boot_id,
        },
    ))
}

type BatchHeader = (u32, u32, u32, u8, u16);

fn batch_header(i: &[u8]) -> IResult<&[u8], BatchHeader, NomErr<'_>> {
    let (i, scan_id) = le_u32(i)?;
    let (i, first_index) = le_u32(i)?;
    let (i, channel_mask) = le_u32(i)?;
    let (i, enc) = le_u8(i)?;
    let (i, n_points) = le_u16(i)?;
    Ok((i, (scan_id, first_index, channel_mask, enc, n_points)))
}

fn health(i: &[u8]) -> IResult<&[u8], (Health, u8), NomErr<'_>> {
    let (i, uptime_ticks) = le_u64(i)?;
    let (i, state) = le_u8(i)?;
    let (i, scan_id) = le_u32(i)?;
    let (i, position) = le_i64(i)?;
    let (i, points) = le_u32(i)?;
    let (i, quad_errors) = le_u64(i)?;
    let (i, position_jumps) = le_u64(i)?;
    let (i, fifo_overruns) = le_u64(i)?;
    let (i, frames_sent) = le_u64(i)?;
    let (i, resends) = le_u64(i)?;
    let (i, resend_misses) = le_u64(i)?;
    let (i, rx_errors) = le_u64(i)?;
    let (i, naks) = le_u64(i)?;
    let (i, boot_id) = le_u32(i)?;
    let h = Health {
        uptime_ticks,
        state: DeviceState::Idle,
        scan_id,
        position,
        points,
        quad_errors,
        position_jumps,
        fifo_overruns,
        frames_sent,
        resends,
        resend_misses,
        rx_errors,
        naks,
        boot_id,
    };
    Ok((i, (h, state)))
}
