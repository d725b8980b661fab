//! The firmware's command path, end to end: a `Firmware` on the in-memory FPGA model is driven
//! by a script read from the fuzz input (raw host bytes, well-framed host messages of every type,
//! encoder motion, clock ticks, polls, drains). Whatever the device transmits is deframed
//! and checked as it comes out, and at the end the device must still answer a Ping.
//!
//! Invariants checked:
//! * nothing panics (including overflow checks, which cargo-fuzz builds enable);
//! * every byte the device sends belongs to a good frame (COBS + CRC-32C + version), every frame
//!   parses as a device → host message, and point batches decode to their stated point count;
//! * first transmissions are numbered without gaps (a lossless line must show no missing
//!   sequence number); any other frame is a resend of a number already seen;
//! * every well-framed host command gets a `CommandReply` for its sequence number and type,
//!   unless the device counted a dropped control frame;
//! * after all that, a Ping is acked and answered by a Pong with its token.
#![no_main]

use flyscan_firmware::fpga::model::{FpgaModel, ModelConfig, ModelDrdy, ModelSpi};
use flyscan_firmware::{Firmware, Fpga, Settings};
use flyscan_protocol::limits::{MAX_CHUNK_POSITIONS, MAX_ENCODED_FRAME, MAX_PAYLOAD};
use flyscan_protocol::{Deframer, Feed, Message, encode_frame};
use libfuzzer_sys::fuzz_target;

/// Host → device type codes, in code order (GetInfo … Ping).
const HOST_TYPES: [u8; 7] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07];
/// Exact payload lengths of the fixed-size host messages (PositionChunk is computed).
const HOST_LENS: [usize; 7] = [0, 36, 0, 4, 0, 8, 4];
/// Bound on device work per input, so one input cannot run for seconds.
const MAX_DRAIN_ROUNDS: usize = 64;

type Device = Firmware<ModelSpi, ModelDrdy>;

/// The host's sending side: numbers and frames commands, and remembers them.
struct Commander {
    seq: u32,
    frame: [u8; MAX_ENCODED_FRAME],
    /// (seq, type) of each well-framed command sent, to check its reply.
    sent: Vec<(u32, u8)>,
}

impl Commander {
    fn send(&mut self, fw: &mut Device, ty: u8, payload: &[u8]) {
        let Ok(n) = encode_frame(ty, self.seq, payload, &mut self.frame) else {
            return;
        };
        // A leading delimiter ends whatever partial frame raw bytes left behind, as a host
        // does after a line error; then the frame is whole.
        fw.receive(&[0]);
        fw.receive(&self.frame[..n]);
        self.sent.push((self.seq, ty));
        self.seq = self.seq.wrapping_add(1);
    }
}

/// Reads the script; past the end every read yields zeros, so any input is a valid script.
struct Script<'a> {
    data: &'a [u8],
}

impl<'a> Script<'a> {
    fn done(&self) -> bool {
        self.data.is_empty()
    }
    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    /// Up to `n` bytes (fewer at the end of the input).
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }
    /// Exactly `n` bytes into `out`, zero-padded.
    fn fill(&mut self, out: &mut [u8]) {
        let src = self.bytes(out.len());
        out[..src.len()].copy_from_slice(src);
        out[src.len()..].fill(0);
    }
}

/// The host's view of the device's output, with the invariants above.
struct HostSide {
    deframer: Deframer,
    /// Sequence number the next first transmission must carry.
    next_seq: u32,
    /// (request_seq, request_type) of every CommandReply seen.
    replies: Vec<(u32, u8)>,
    /// Tokens of every Pong seen.
    pongs: Vec<u32>,
}

impl HostSide {
    fn new() -> Self {
        Self {
            deframer: Deframer::new(),
            next_seq: 0,
            replies: Vec::new(),
            pongs: Vec::new(),
        }
    }

    fn absorb(&mut self, mut bytes: &[u8]) {
        loop {
            match self.deframer.feed(bytes) {
                Feed::Consumed => return,
                Feed::Error { error, .. } => panic!("device sent a bad frame: {error:?}"),
                Feed::Frame { frame, remaining } => {
                    bytes = remaining;
                    let seq = frame.seq();
                    if seq == self.next_seq {
                        self.next_seq = seq.wrapping_add(1);
                    } else {
                        // A resend: must be a number already sent (wrapping "seq < next").
                        let back = self.next_seq.wrapping_sub(seq);
                        assert!(
                            (1..=1 << 31).contains(&back),
                            "device frame seq {seq} skips ahead of {}",
                            self.next_seq
                        );
                    }
                    let msg = match frame.message() {
                        Ok(m) => m,
                        Err(e) => panic!(
                            "device frame type {:#04x} does not parse: {e:?}",
                            frame.msg_type()
                        ),
                    };
                    assert!(
                        msg.msg_type().is_from_device(),
                        "device sent a host message {:?}",
                        msg.msg_type()
                    );
                    match msg {
                        Message::PointBatch(b) => {
                            let mut n = 0usize;
                            for p in b.points() {
                                if let Err(e) = p {
                                    panic!("device batch does not decode: {e:?}");
                                }
                                n += 1;
                            }
                            assert_eq!(n, usize::from(b.n_points), "batch point count");
                        }
                        Message::CommandReply(r) => {
                            self.replies.push((r.request_seq, r.request_type))
                        }
                        Message::Pong { token, .. } => self.pongs.push(token),
                        _ => {}
                    }
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // A smaller snapshot RAM than the default keeps set-up cheap per input, and makes lost
    // snapshots (the ring overtaken by edges) reachable with short inputs.
    let model = FpgaModel::new(ModelConfig {
        snapshot_depth: 256,
        ..ModelConfig::default()
    });
    let Ok(mut fw) = Firmware::new(Fpga::new(model.spi(), model.drdy()), Settings::default())
    else {
        panic!("firmware does not start on the default model");
    };
    let mut host = HostSide::new();
    let mut s = Script { data };
    let mut cmd = Commander {
        seq: 0,
        frame: [0u8; MAX_ENCODED_FRAME],
        sent: Vec::new(),
    };
    let mut payload = [0u8; MAX_PAYLOAD];
    let mut out = [0u8; 4096];

    while !s.done() {
        match s.u8() % 9 {
            // Raw host bytes, in one chunk of up to 255 bytes.
            0 => {
                let n = usize::from(s.u8());
                fw.receive(s.bytes(n));
            }
            // A host message of the right length, payload from the input.
            1 => {
                let i = usize::from(s.u8()) % HOST_TYPES.len();
                let ty = HOST_TYPES[i];
                let len = if ty == 0x03 {
                    let n = usize::from(s.u8()) % (MAX_CHUNK_POSITIONS + 2);
                    let off = s.u32();
                    payload[..4].copy_from_slice(&off.to_le_bytes());
                    payload[4..6].copy_from_slice(&(n as u16).to_le_bytes());
                    s.fill(&mut payload[6..6 + 8 * n]);
                    6 + 8 * n
                } else {
                    s.fill(&mut payload[..HOST_LENS[i]]);
                    HOST_LENS[i]
                };
                cmd.send(&mut fw, ty, &payload[..len]);
            }
            // Any type byte with a payload of any length (unknown types, device types, bad lengths).
            2 => {
                let ty = s.u8();
                let len = usize::from(s.u16()) % (MAX_PAYLOAD + 1);
                let src = s.bytes(len);
                cmd.send(&mut fw, ty, src);
            }
            // A Configure that is valid more often than not, so scans really run.
            3 => {
                let (mode, dir, enc) = (s.u8() % 2, s.u8() % 4, s.u8() % 2);
                let start = i64::from(s.u16() as i16);
                let step = i64::from((s.u8() as i8) | 1);
                let count = 1 + u32::from(s.u8() % 64);
                let passes: u16 = if dir == 3 {
                    1 + u16::from(s.u8() % 3)
                } else {
                    1
                };
                let mask = u32::from(s.u8() | 1);
                let max_batch = u16::from(s.u8() % 16);
                let latency = u32::from(s.u8()) * 10;
                let mut p = [0u8; 36];
                p[0] = mode;
                p[1] = dir;
                p[2] = enc;
                p[4..12].copy_from_slice(&start.to_le_bytes());
                p[12..20].copy_from_slice(&step.to_le_bytes());
                p[20..24].copy_from_slice(&count.to_le_bytes());
                p[24..26].copy_from_slice(&passes.to_le_bytes());
                p[26..30].copy_from_slice(&mask.to_le_bytes());
                p[30..32].copy_from_slice(&max_batch.to_le_bytes());
                p[32..36].copy_from_slice(&latency.to_le_bytes());
                cmd.send(&mut fw, 0x02, &p);
            }
            // Encoder motion: up to 127 steps either way, detector pulses, clock between edges.
            4 => {
                let v = s.u8() as i8;
                let pulses = u32::from(s.u8());
                let dt = u64::from(s.u8()) + 1;
                for _ in 0..v.unsigned_abs() {
                    model.advance(dt);
                    model.count(usize::from(pulses as u8 % 8), pulses);
                    model.step(i32::from(v.signum()));
                }
            }
            // An illegal or odd A/B change (both lines at once, or a glitch).
            5 => model.set_ab(s.u8()),
            // Time passes, then a poll.
            6 => {
                model.advance(u64::from(s.u32()));
                let _ = fw.poll(model.time());
            }
            // A poll without time passing.
            7 => {
                let _ = fw.poll(model.time());
            }
            // The serial line takes some bytes.
            _ => {
                let n = usize::from(s.u16()) % out.len() + 1;
                let got = fw.transmit(&mut out[..n]);
                host.absorb(&out[..got]);
            }
        }
    }

    // Let the device finish its work and empty its queue, then check every command was answered.
    drain(&mut fw, &model, &mut host, &mut out);
    if fw.counters().tx_dropped == 0 {
        for &(seq, ty) in &cmd.sent {
            assert!(
                host.replies.contains(&(seq, ty)),
                "no reply to host frame seq {seq} type {ty:#04x}"
            );
        }
    }

    // Still alive: a Ping after a delimiter is acked and ponged.
    let token = 0x5eed_0000 ^ cmd.seq;
    let ping_seq = cmd.seq;
    cmd.send(&mut fw, 0x07, &token.to_le_bytes());
    drain(&mut fw, &model, &mut host, &mut out);
    assert!(
        host.replies.contains(&(ping_seq, 0x07)),
        "Ping was not acked"
    );
    assert!(host.pongs.contains(&token), "Ping was not answered");
});

/// Polls and transmits until the device has nothing more to send (bounded).
fn drain(fw: &mut Device, model: &FpgaModel, host: &mut HostSide, out: &mut [u8]) {
    for _ in 0..MAX_DRAIN_ROUNDS {
        let more = fw.poll(model.time()).map(|st| st.more).unwrap_or(false);
        let mut sent_any = false;
        loop {
            let n = fw.transmit(out);
            if n == 0 {
                break;
            }
            sent_any = true;
            host.absorb(&out[..n]);
        }
        if !more && !sent_any && fw.tx_queued() == 0 {
            return;
        }
    }
}
