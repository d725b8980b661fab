//! Sans-I/O scan assembler: device bytes in, ordered events and host commands out, time passed
//! in. It owns the deframer and the [`sequencer::Sequencer`]; the driver applies the events it
//! returns (batches go into [`crate::scan::ScanData`]).
//!
//! Start-up (or reconnection) sends `GetInfo`; the `DeviceInfo` answer is the sync point, and
//! the frames before it that the device's resend ring may still hold (`resend_frames` − 1, but
//! none before sequence number 0 unless the counter wrapped) are requested again, so a scan
//! already running when the driver started is recovered from its `ScanArmed`. Until then,
//! ordered frames are dropped (they are inside that look-back) and control frames are passed
//! through. Resend naks steer the sequencer: `ResendUnavailable` gives up what the device no
//! longer holds, `Busy` backs requests off.

pub mod sequencer;

use crate::host_message::HostMessage;
use flyscan_protocol::frame::{Frame, MessageType};
use flyscan_protocol::{
    CommandReply, Deframer, DeviceInfo, Health, Message, NakCode, Point, ScanArmed, ScanDone,
};
use sequencer::{Arrival, SeqAction, Sequencer, SequencerConfig};
use std::time::{Duration, Instant};

/// A decoded batch, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedBatch {
    /// Scan id.
    pub scan_id: u32,
    /// Index of the first point.
    pub first_index: u32,
    /// Channels present in each point.
    pub channel_mask: u32,
    /// The points decoded (fewer than announced if the data was malformed).
    pub points: Vec<Point>,
    /// Points announced by the batch header.
    pub announced: u16,
}

/// What the assembler reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Send this command to the device.
    Send(HostMessage),
    /// Identity and limits (on arrival).
    DeviceInfo(DeviceInfo),
    /// Ack or nak of a host command (on arrival).
    Reply(CommandReply),
    /// Health counters (on arrival).
    Health(Health),
    /// A scan was armed (in order).
    ScanArmed(ScanArmed),
    /// Points (in order).
    Batch(OwnedBatch),
    /// A scan ended (in order).
    ScanDone(ScanDone),
    /// Device frames that will never arrive.
    FramesLost {
        /// First lost sequence number.
        first_seq: u32,
        /// Number of frames.
        count: u64,
    },
    /// A damaged frame or an unparsable message (counted in [`Assembler::link_errors`]).
    LinkError(String),
    /// The device's frame counter restarted (device reboot).
    DeviceRestarted,
}

/// Counters of the assembler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AssemblerStats {
    /// CRC, COBS, framing and message parse failures.
    pub link_errors: u64,
    /// Resend requests sent.
    pub resend_requests: u64,
    /// Frames given up for lost.
    pub frames_lost: u64,
    /// Duplicate frames dropped.
    pub duplicates: u64,
    /// Good frames received.
    pub frames: u64,
}

/// The assembler (see the module doc).
#[derive(Debug)]
pub struct Assembler {
    deframer: Box<Deframer>,
    /// `None` marks a control frame already handled on arrival (or a bad payload).
    seq: Sequencer<Option<Vec<u8>>>,
    info: Option<DeviceInfo>,
    link_errors: u64,
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

impl Assembler {
    /// A fresh, unsynchronised assembler.
    pub fn new(cfg: SequencerConfig) -> Self {
        Self {
            deframer: Box::new(Deframer::new()),
            seq: Sequencer::new(cfg),
            info: None,
            link_errors: 0,
            frames: 0,
            last_get_info: None,
            get_info_interval: Duration::from_secs(1),
        }
    }

    /// The last `DeviceInfo` seen.
    pub fn device_info(&self) -> Option<&DeviceInfo> {
        self.info.as_ref()
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
            resend_requests: self.seq.resend_requests,
            frames_lost: self.seq.frames_lost,
            duplicates: self.seq.duplicates,
            frames: self.frames,
        }
    }

    /// The serial port was reopened: drop a partial frame and ask who is there again. Order is
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
                    let body = frame.body().to_vec();
                    bytes = remaining;
                    self.frames += 1;
                    self.on_frame(seq, t, body, now, out);
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

    fn on_frame(&mut self, seq: u32, t: u8, body: Vec<u8>, now: Instant, out: &mut Vec<Event>) {
        // Wire size: COBS adds a byte per 254 and the delimiter.
        self.seq.note_frame_bytes(body.len() + body.len() / 254 + 2);
        if is_control(t) {
            // Parse once to route it; handled now, the ordered slot just marks it as seen.
            let Some(msg) = self.parse_owned(&body, out) else {
                if self.seq.is_synced() {
                    let _ = self.seq.arrive(seq, None);
                }
                return;
            };
            if let Event::DeviceInfo(info) = &msg {
                let info = *info;
                self.info = Some(info);
                self.seq.set_ring_frames(info.resend_frames);
                let prev_next = self.seq.next_seq();
                let behind_by = prev_next.map_or(0, |n| n.wrapping_sub(seq));
                let arrival = if self.seq.is_synced() {
                    self.seq.arrive(seq, None)
                } else {
                    Arrival::Resynced { lost: 0 }
                };
                match arrival {
                    Arrival::New | Arrival::Duplicate => {}
                    // Within the resend ring it may be a late resend; stale frames that keep
                    // coming are caught by the sequencer's restart rule instead.
                    Arrival::Behind if behind_by <= info.resend_frames => {}
                    Arrival::Behind => {
                        // A DeviceInfo from behind the window is a restarted device: its
                        // counter began again, so start over here (no look-back past seq 0).
                        out.push(Event::DeviceRestarted);
                        self.seq.unsync();
                        self.seq
                            .sync_at(seq, None, look_back(seq, None, info.resend_frames));
                    }
                    Arrival::Resynced { lost } => {
                        if lost > 0 {
                            out.push(Event::FramesLost {
                                first_seq: seq,
                                count: lost,
                            });
                        }
                        self.seq.unsync();
                        self.seq
                            .sync_at(seq, None, look_back(seq, prev_next, info.resend_frames));
                    }
                }
                out.push(msg);
                return;
            }
            let fresh = if self.seq.is_synced() {
                match self.seq.arrive(seq, None) {
                    Arrival::New => true,
                    Arrival::Duplicate | Arrival::Behind => false,
                    Arrival::Resynced { lost } => {
                        if lost > 0 {
                            out.push(Event::FramesLost {
                                first_seq: seq,
                                count: lost,
                            });
                        }
                        true
                    }
                }
            } else {
                true
            };
            if !fresh {
                return;
            }
            if let Event::Reply(r) = &msg
                && r.request_type == MessageType::ResendRequest as u8
            {
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
            out.push(msg);
            return;
        }
        if !self.seq.is_synced() {
            // Inside the look-back of the coming sync point: recovered by resend then.
            return;
        }
        match self.seq.arrive(seq, Some(body)) {
            Arrival::New | Arrival::Duplicate | Arrival::Behind => {}
            Arrival::Resynced { lost } => {
                if lost > 0 {
                    out.push(Event::FramesLost {
                        first_seq: seq,
                        count: lost,
                    });
                }
            }
        }
        self.drain(out);
    }

    fn drain(&mut self, out: &mut Vec<Event>) {
        while let Some((_, item)) = self.seq.pop_ready() {
            if let Some(body) = item
                && let Some(ev) = self.parse_owned(&body, out)
            {
                out.push(ev);
            }
        }
    }

    /// Parses a checked frame body into an owned event; counts and reports failures.
    fn parse_owned(&mut self, body: &[u8], out: &mut Vec<Event>) -> Option<Event> {
        let frame = match Frame::new_checked(body) {
            Ok(f) => f,
            Err(e) => {
                self.link_errors += 1;
                out.push(Event::LinkError(e.to_string()));
                return None;
            }
        };
        let msg = match frame.message() {
            Ok(m) => m,
            Err(e) => {
                self.link_errors += 1;
                out.push(Event::LinkError(format!("seq {}: {e}", frame.seq())));
                return None;
            }
        };
        Some(match msg {
            Message::DeviceInfo(i) => Event::DeviceInfo(i),
            Message::CommandReply(r) => Event::Reply(r),
            Message::Health(h) => Event::Health(h),
            Message::ScanArmed(a) => Event::ScanArmed(a),
            Message::ScanDone(d) => Event::ScanDone(d),
            Message::PointBatch(b) => {
                let mut points = Vec::with_capacity(usize::from(b.n_points));
                for p in b.points() {
                    match p {
                        Ok(p) => points.push(p),
                        Err(e) => {
                            self.link_errors += 1;
                            out.push(Event::LinkError(format!(
                                "seq {}: bad point data: {e}",
                                frame.seq()
                            )));
                            break;
                        }
                    }
                }
                Event::Batch(OwnedBatch {
                    scan_id: b.scan_id,
                    first_index: b.first_index,
                    channel_mask: b.channel_mask,
                    points,
                    announced: b.n_points,
                })
            }
            Message::Pong { .. } => return None,
            other => {
                self.link_errors += 1;
                out.push(Event::LinkError(format!(
                    "seq {}: host-to-device message {:?} received from the device",
                    frame.seq(),
                    other.msg_type()
                )));
                return None;
            }
        })
    }
}

/// How many frames before the sync point `seq` to recover: the rest of the device's ring (it
/// holds `seq` itself too), but no further back than its counter's start (asking for frames
/// before 0 is pointless) unless the counter has wrapped since `prev_next` (the last position
/// known, if any).
fn look_back(seq: u32, prev_next: Option<u32>, ring_frames: u32) -> u32 {
    let held_before = ring_frames.saturating_sub(1);
    let wrapped = prev_next.is_some_and(|p| p > seq && seq.wrapping_sub(p) < 1 << 31);
    if wrapped {
        held_before
    } else {
        held_before.min(seq)
    }
}

#[cfg(test)]
mod tests;
