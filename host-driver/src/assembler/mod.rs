//! Sans-I/O link layer: device bytes in, ordered device events and host commands out, time
//! passed in. It owns the deframer, the device session and the [`sequencer::Sequencer`]; the
//! driver core ([`crate::core`]) checks and applies what it reports.
//!
//! **Sessions** (PROTOCOL.md §Sessions): the `boot_id` of `DeviceInfo`, `Health` and `Pong`
//! names the device session. The first `DeviceInfo` is the sync point; the frames before it that
//! the device's resend ring may still hold (`resend_frames` − 1, none before sequence number 0)
//! are requested again and reported as `recovered`, so a scan already running when the driver
//! started is recovered from its `ScanArmed`. A different `boot_id` is a new session: ordering
//! starts again at its `DeviceInfo` (asked for with `GetInfo` if a `Health` or `Pong` told
//! first). A sequence number far behind within one session is a protocol fault
//! ([`Event::SeqWentBack`]).
//!
//! Control frames (`DeviceInfo`, `CommandReply`, `Health`, `Pong`) are handled on arrival;
//! data frames (`ScanArmed`, `PointBatch`, `ScanDone`) come out in sequence order, unparsed
//! beyond the header, for the core to check against the armed scan. Resend naks steer the
//! sequencer: `ResendUnavailable` gives up what the device no longer holds, `Busy` backs
//! requests off.

pub mod sequencer;

use crate::host_message::HostMessage;
use flyscan_protocol::frame::MessageType;
use flyscan_protocol::{CommandReply, Deframer, DeviceInfo, Health, Message, NakCode, ParseError};
use sequencer::{Arrival, SeqAction, Sequencer, SequencerConfig};
use std::time::{Duration, Instant};

/// A data frame delivered in sequence order (its CRC was checked once, on arrival).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderedFrame {
    /// Device sequence number.
    pub seq: u32,
    /// Message type code.
    pub msg_type: u8,
    /// The payload.
    pub payload: Vec<u8>,
    /// Sent before this driver synchronised to the session (recovered from the device's
    /// resend ring at start-up).
    pub recovered: bool,
}

impl OrderedFrame {
    /// Parses the payload.
    pub fn message(&self) -> Result<Message<'_>, ParseError> {
        Message::parse(self.msg_type, &self.payload)
    }
}

/// What the link layer reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Send this command to the device.
    Send(HostMessage),
    /// A device session began (the first one seen, or the device restarted).
    SessionStarted {
        /// The new session.
        boot_id: u32,
        /// The session before, if any.
        previous: Option<u32>,
    },
    /// Identity and limits (on arrival).
    DeviceInfo(DeviceInfo),
    /// Ack or nak of a host command (on arrival).
    Reply(CommandReply),
    /// Health counters (on arrival).
    Health(Health),
    /// Answer to a `Ping` (on arrival).
    Pong {
        /// Token of the ping.
        token: u32,
    },
    /// `ScanArmed`, `PointBatch` or `ScanDone`, in sequence order.
    Data(OrderedFrame),
    /// Device frames that will never arrive.
    FramesLost {
        /// First lost sequence number.
        first_seq: u32,
        /// Number of frames.
        count: u64,
    },
    /// A damaged frame (CRC, COBS, size, version): line noise.
    LinkError(String),
    /// A frame with a good CRC that is not a valid message: the device broke the protocol.
    BadMessage(String),
    /// Within one session the sequence number went back further than any resend could: the
    /// order restarted at `got`.
    SeqWentBack {
        /// The number expected next.
        expected: u32,
        /// The number received.
        got: u32,
    },
}

/// Counters of the link layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AssemblerStats {
    /// Damaged frames (CRC, COBS, framing, version).
    pub link_errors: u64,
    /// Good-CRC frames that did not parse.
    pub bad_messages: u64,
    /// Resend requests sent.
    pub resend_requests: u64,
    /// Frames given up for lost.
    pub frames_lost: u64,
    /// Duplicate frames dropped.
    pub duplicates: u64,
    /// Good frames received.
    pub frames: u64,
}

/// The link layer (see the module doc).
#[derive(Debug)]
pub struct Assembler {
    deframer: Box<Deframer>,
    /// `None` marks a control frame already handled on arrival.
    seq: Sequencer<Option<OrderedFrame>>,
    info: Option<DeviceInfo>,
    /// The session the device is in, as last announced.
    session: Option<u32>,
    /// Frames before this number were sent before the first sync (start-up recovery).
    history_end: Option<u32>,
    /// Set once the first sync happened (later syncs never look back into history).
    ever_synced: bool,
    link_errors: u64,
    bad_messages: u64,
    frames: u64,
    last_get_info: Option<Instant>,
    get_info_interval: Duration,
}

impl Default for Assembler {
    fn default() -> Self {
        Self::new(SequencerConfig::default())
    }
}

fn is_control(t: u8) -> bool {
    matches!(
        MessageType::from_u8(t),
        Some(
            MessageType::CommandReply
                | MessageType::Health
                | MessageType::Pong
                | MessageType::DeviceInfo
        )
    )
}

/// `a` comes before `b` in wrapping sequence order.
fn before(a: u32, b: u32) -> bool {
    let d = b.wrapping_sub(a);
    d != 0 && d < 1 << 31
}

impl Assembler {
    /// A fresh, unsynchronised link layer.
    pub fn new(cfg: SequencerConfig) -> Self {
        Self {
            deframer: Box::new(Deframer::new()),
            seq: Sequencer::new(cfg),
            info: None,
            session: None,
            history_end: None,
            ever_synced: false,
            link_errors: 0,
            bad_messages: 0,
            frames: 0,
            last_get_info: None,
            get_info_interval: Duration::from_secs(1),
        }
    }

    /// The last `DeviceInfo` of the current session.
    pub fn device_info(&self) -> Option<&DeviceInfo> {
        self.info.as_ref()
    }

    /// The current device session (`boot_id`), once known.
    pub fn session(&self) -> Option<u32> {
        self.session
    }

    /// True once frames are being ordered.
    pub fn is_synced(&self) -> bool {
        self.seq.is_synced()
    }

    /// True while frames are missing and being recovered.
    pub fn has_gap(&self) -> bool {
        self.seq.has_gap()
    }

    /// Counters so far.
    pub fn stats(&self) -> AssemblerStats {
        AssemblerStats {
            link_errors: self.link_errors,
            bad_messages: self.bad_messages,
            resend_requests: self.seq.resend_requests,
            frames_lost: self.seq.frames_lost,
            duplicates: self.seq.duplicates,
            frames: self.frames,
        }
    }

    /// The serial port was (re)opened: drop a partial frame and ask who is there. Order is
    /// kept, so frames missed while the port was away are requested again.
    pub fn reconnected(&mut self, now: Instant, out: &mut Vec<Event>) {
        self.deframer.reset();
        self.last_get_info = Some(now);
        out.push(Event::Send(HostMessage::GetInfo));
    }

    /// Feeds received bytes.
    pub fn push_bytes(&mut self, mut bytes: &[u8], now: Instant, out: &mut Vec<Event>) {
        loop {
            match self.deframer.feed(bytes) {
                flyscan_protocol::Feed::Consumed => break,
                flyscan_protocol::Feed::Error { error, remaining } => {
                    self.link_errors += 1;
                    out.push(Event::LinkError(error.to_string()));
                    bytes = remaining;
                }
                flyscan_protocol::Feed::Frame { frame, remaining } => {
                    let seq = frame.seq();
                    let t = frame.msg_type();
                    let payload = frame.payload().to_vec();
                    bytes = remaining;
                    self.frames += 1;
                    self.on_frame(seq, t, payload, now, out);
                }
            }
        }
        self.poll(now, out);
    }

    /// Periodic work: resend retries and give-ups, `GetInfo` while unsynchronised.
    pub fn tick(&mut self, now: Instant, out: &mut Vec<Event>) {
        if !self.seq.is_synced() {
            let due = self
                .last_get_info
                .is_none_or(|t| now.saturating_duration_since(t) >= self.get_info_interval);
            if due {
                self.last_get_info = Some(now);
                out.push(Event::Send(HostMessage::GetInfo));
            }
        }
        self.poll(now, out);
    }

    fn poll(&mut self, now: Instant, out: &mut Vec<Event>) {
        self.drain(out);
        let mut actions = Vec::new();
        self.seq.poll(now, &mut actions);
        let lost = actions.iter().any(|a| matches!(a, SeqAction::Lost { .. }));
        for a in actions {
            Self::seq_action(a, out);
        }
        if lost {
            // Frames given up may unblock the ones held behind them.
            self.drain(out);
        }
    }

    fn seq_action(a: SeqAction, out: &mut Vec<Event>) {
        match a {
            SeqAction::RequestResend {
                first_seq,
                last_seq,
            } => out.push(Event::Send(HostMessage::ResendRequest {
                first_seq,
                last_seq,
            })),
            SeqAction::Lost { first_seq, count } => {
                out.push(Event::FramesLost { first_seq, count })
            }
        }
    }

    /// Stores a frame in the sequencer and reports what its arrival means.
    fn arrive(&mut self, seq: u32, item: Option<OrderedFrame>, out: &mut Vec<Event>) -> bool {
        let prev_next = self.seq.next_seq();
        match self.seq.arrive(seq, item) {
            Arrival::New => true,
            Arrival::Duplicate | Arrival::Behind => false,
            Arrival::Resynced { lost } => {
                match prev_next {
                    Some(expected) if before(seq, expected) => {
                        out.push(Event::SeqWentBack { expected, got: seq });
                    }
                    _ if lost > 0 => out.push(Event::FramesLost {
                        first_seq: seq,
                        count: lost,
                    }),
                    _ => {}
                }
                true
            }
        }
    }

    fn on_frame(&mut self, seq: u32, t: u8, payload: Vec<u8>, now: Instant, out: &mut Vec<Event>) {
        // Wire size: header + CRC, COBS adds a byte per 254 and the delimiter.
        let body = payload.len() + 10;
        self.seq.note_frame_bytes(body + body / 254 + 2);
        if !is_control(t) {
            if !self.seq.is_synced() {
                // Inside the look-back of the coming sync point: recovered by resend then.
                return;
            }
            let item = OrderedFrame {
                seq,
                msg_type: t,
                payload,
                recovered: false,
            };
            self.arrive(seq, Some(item), out);
            self.drain(out);
            return;
        }
        let msg = match Message::parse(t, &payload) {
            Ok(m) => m,
            Err(e) => {
                self.bad_messages += 1;
                out.push(Event::BadMessage(format!("seq {seq}: {e}")));
                if self.seq.is_synced() {
                    let _ = self.seq.arrive(seq, None);
                }
                return;
            }
        };
        let boot_id = match &msg {
            Message::DeviceInfo(i) => Some(i.boot_id),
            Message::Health(h) => Some(h.boot_id),
            Message::Pong { boot_id, .. } => Some(*boot_id),
            _ => None,
        };
        if let Some(b) = boot_id
            && self.session.is_some_and(|s| s != b)
        {
            // A new session: nothing of the old one can come any more.
            out.push(Event::SessionStarted {
                boot_id: b,
                previous: self.session,
            });
            self.session = Some(b);
            self.info = None;
            self.seq.unsync();
            self.history_end = None;
            self.last_get_info = None;
        }
        if let Message::DeviceInfo(info) = msg {
            self.on_device_info(seq, info, out);
            return;
        }
        let fresh = !self.seq.is_synced() || self.arrive(seq, None, out);
        if !fresh {
            return;
        }
        match msg {
            Message::CommandReply(r) => {
                if r.request_type == MessageType::ResendRequest as u8 {
                    match r.code {
                        NakCode::Ack => self.seq.resend_accepted(),
                        // The held part of the range was queued; the rest is gone for good.
                        NakCode::ResendUnavailable => {
                            self.seq.resend_accepted();
                            for a in self.seq.resend_unavailable(r.arg) {
                                Self::seq_action(a, out);
                            }
                        }
                        NakCode::Busy => self.seq.resend_busy(now),
                        _ => {}
                    }
                }
                out.push(Event::Reply(r));
            }
            Message::Health(h) => out.push(Event::Health(h)),
            Message::Pong { token, .. } => out.push(Event::Pong { token }),
            other => {
                self.bad_messages += 1;
                out.push(Event::BadMessage(format!(
                    "seq {seq}: host-to-device message {:?} received from the device",
                    other.msg_type()
                )));
            }
        }
    }

    fn on_device_info(&mut self, seq: u32, info: DeviceInfo, out: &mut Vec<Event>) {
        self.info = Some(info);
        self.seq.set_ring_frames(info.resend_frames);
        if self.session.is_none() {
            out.push(Event::SessionStarted {
                boot_id: info.boot_id,
                previous: None,
            });
            self.session = Some(info.boot_id);
        }
        if self.seq.is_synced() {
            let prev_next = self.seq.next_seq();
            match self.seq.arrive(seq, None) {
                Arrival::New | Arrival::Duplicate => {}
                // Within the resend ring a DeviceInfo may be a late resend.
                Arrival::Behind
                    if prev_next.is_some_and(|n| n.wrapping_sub(seq) <= info.resend_frames) => {}
                Arrival::Behind => {
                    // The same session cannot count backwards: a protocol fault.
                    out.push(Event::SeqWentBack {
                        expected: prev_next.unwrap_or(seq),
                        got: seq,
                    });
                    self.seq.unsync();
                    self.seq.sync_at(seq, None, 0);
                }
                Arrival::Resynced { lost } => match prev_next {
                    Some(expected) if before(seq, expected) => {
                        out.push(Event::SeqWentBack { expected, got: seq })
                    }
                    _ if lost > 0 => out.push(Event::FramesLost {
                        first_seq: seq,
                        count: lost,
                    }),
                    _ => {}
                },
            }
        } else {
            // Sync point of a session: recover what the ring holds of it before this frame.
            let look_back = info.resend_frames.saturating_sub(1).min(seq);
            self.seq.sync_at(seq, None, look_back);
            if !self.ever_synced && look_back > 0 {
                self.history_end = Some(seq);
            }
            self.ever_synced = true;
        }
        out.push(Event::DeviceInfo(info));
    }

    fn drain(&mut self, out: &mut Vec<Event>) {
        while let Some((seq, item)) = self.seq.pop_ready() {
            let recovered = match self.history_end {
                Some(end) if before(seq, end) => true,
                Some(_) => {
                    self.history_end = None;
                    false
                }
                None => false,
            };
            if let Some(mut f) = item {
                f.recovered = recovered;
                out.push(Event::Data(f));
            }
        }
    }
}

#[cfg(test)]
mod tests;
