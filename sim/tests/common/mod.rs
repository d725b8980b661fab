//! A tiny protocol host for the tests: configures and arms the scenario's scan with frames
//! built by the protocol crate, collects points, asks for resends of missing frames, and
//! retries commands whose reply was lost.

#![allow(dead_code)]

use flyscan_protocol::message::Positions;
use flyscan_protocol::{
    Deframer, DeviceState, Health, Message, MessageType, NakCode, Point, ScanDone, TriggerMode,
};
use flyscan_sim::firmware::InProcessFirmware;
use flyscan_sim::{ScanPlan, Scenario, Simulation, TruthPoint, TruthSummary};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The scenario file `name` of sim/scenarios.
pub fn scenario(name: &str) -> Scenario {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Configure,
    Chunks,
    Arm,
    Running,
}

/// What a finished run gives the assertions.
pub struct Outcome {
    pub points: BTreeMap<u32, Point>,
    pub truth: Vec<TruthPoint>,
    pub summary: TruthSummary,
    pub health: Health,
    pub done: ScanDone,
    pub crc_errors: u64,
    pub resend_requests: u64,
    pub retries: u64,
}

/// More of a run than [`Outcome`]: the firmware's view and the time taken.
pub struct RunStats {
    /// The firmware's counters at the end.
    pub fw_counters: flyscan_firmware::Counters,
    /// Frames the host gave up on (span policy).
    pub frames_given_up: u64,
    /// Link time from start to the end of the run, s.
    pub seconds: f64,
}

pub struct TestHost {
    plan: ScanPlan,
    deframer: Deframer,
    tx_seq: u32,
    phase: Phase,
    /// Outstanding command: (seq, type, sent at tick).
    pending: Option<(u32, u8, u64)>,
    list_sent: u32,
    next_rx: u32,
    missing: BTreeMap<u32, u64>,
    pub points: BTreeMap<u32, Point>,
    pub health_after_done: Option<Health>,
    pub done: Option<ScanDone>,
    pub resend_requests: u64,
    pub retries: u64,
    timeout: u64,
    /// Ask for missing frames as one span from the first to the last hole, again at once when a
    /// new hole appears beyond it, and after `span_timeout` otherwise, giving up after
    /// `SPAN_RETRIES` requests (the host driver's policy), instead of per contiguous run.
    pub span_requests: bool,
    span_timeout: u64,
    /// Outstanding span request: (first, last, sent at, requests so far).
    span: Option<(u32, u32, u64, u32)>,
    /// Frames given up for lost (span policy only).
    pub frames_given_up: u64,
}

/// Span requests per hole before its frames are given up (the host driver's default).
const SPAN_RETRIES: u32 = 4;

impl TestHost {
    pub fn new(plan: ScanPlan, clock_hz: u64) -> Self {
        Self {
            plan,
            deframer: Deframer::new(),
            tx_seq: 0,
            phase: Phase::Configure,
            pending: None,
            list_sent: 0,
            next_rx: 0,
            missing: BTreeMap::new(),
            points: BTreeMap::new(),
            health_after_done: None,
            done: None,
            resend_requests: 0,
            retries: 0,
            // 30 ms of device time before a command or resend is retried.
            timeout: clock_hz * 3 / 100,
            span_requests: false,
            // 250 ms, the host driver's default.
            span_timeout: clock_hz / 4,
            span: None,
            frames_given_up: 0,
        }
    }

    fn send(&mut self, msg: &Message<'_>, out: &mut Vec<u8>) -> u32 {
        let seq = self.tx_seq;
        self.tx_seq = self.tx_seq.wrapping_add(1);
        let mut buf = [0u8; flyscan_protocol::limits::MAX_ENCODED_FRAME];
        let n = msg.encode_frame(seq, &mut buf).expect("host frames fit");
        out.extend_from_slice(&buf[..n]);
        seq
    }

    fn send_command(&mut self, now: u64, out: &mut Vec<u8>) {
        let cfg = self.plan.config;
        let (seq, ty) = match self.phase {
            Phase::Configure => (
                self.send(&Message::Configure(cfg), out),
                MessageType::Configure,
            ),
            Phase::Chunks => {
                let start = self.list_sent as usize;
                let end = (start + 250).min(self.plan.positions.len());
                let chunk = self.plan.positions[start..end].to_vec();
                let msg = Message::PositionChunk {
                    offset: self.list_sent,
                    positions: Positions::Values(&chunk),
                };
                (self.send(&msg, out), MessageType::PositionChunk)
            }
            Phase::Arm => (
                self.send(
                    &Message::Arm {
                        scan_id: self.plan.scan_id,
                    },
                    out,
                ),
                MessageType::Arm,
            ),
            Phase::Running => return,
        };
        self.pending = Some((seq, ty as u8, now));
    }

    fn advance_phase(&mut self) {
        self.phase = match self.phase {
            Phase::Configure if self.plan.config.mode == TriggerMode::List => Phase::Chunks,
            Phase::Configure => Phase::Arm,
            Phase::Chunks if (self.list_sent as usize) < self.plan.positions.len() => Phase::Chunks,
            Phase::Chunks => Phase::Arm,
            _ => Phase::Running,
        };
    }

    fn on_reply(&mut self, request_seq: u32, code: NakCode, arg: u32) {
        let Some((seq, ty, _)) = self.pending else {
            return;
        };
        if seq != request_seq {
            return;
        }
        self.pending = None;
        match (self.phase, code) {
            (Phase::Chunks, NakCode::Ack) => {
                let end = (self.list_sent as usize + 250).min(self.plan.positions.len());
                self.list_sent = end as u32;
                self.advance_phase();
            }
            // A retried chunk that had arrived: continue where the device is.
            (Phase::Chunks, NakCode::BadChunk) => {
                self.list_sent = arg;
                self.advance_phase();
            }
            (_, NakCode::Ack) => self.advance_phase(),
            // A retried Arm whose first copy armed the device.
            (Phase::Arm, NakCode::Busy) => self.advance_phase(),
            (p, c) => panic!("command {ty:#04x} in phase {p:?} refused: {c:?} arg {arg}"),
        }
    }

    fn on_frame(&mut self, seq: u32, msg: Message<'_>, now: u64) {
        match msg {
            Message::PointBatch(b) => {
                for (i, p) in b.points().enumerate() {
                    let p = p.expect("points decode");
                    self.points.insert(b.first_index + i as u32, p);
                }
            }
            Message::CommandReply(r) => self.on_reply(r.request_seq, r.code, r.arg),
            Message::ScanDone(d) => self.done = Some(d),
            Message::Health(h) if self.done.is_some() && h.state != DeviceState::Scanning => {
                self.health_after_done = Some(h);
            }
            _ => {}
        }
        // Sequence tracking: a jump forward reveals lost frames.
        if seq.wrapping_sub(self.next_rx) < u32::MAX / 2 {
            for s in self.next_rx..seq {
                self.missing.insert(s, 0);
            }
            self.next_rx = seq.wrapping_add(1);
        }
        self.missing.remove(&seq);
        let _ = now;
    }

    /// Waits `ticks` (host time) for a reply before a command or resend is sent again: a
    /// device that answers slowly in wall time (the firmware on the RTL) would otherwise be
    /// sent the same command again and again.
    pub fn set_retry_timeout(&mut self, ticks: u64) {
        self.timeout = ticks;
    }

    /// Frames asked for again and not yet received.
    pub fn missing_frames(&self) -> usize {
        self.missing.len()
    }

    /// One exchange; returns true when the scan is complete.
    pub fn exchange(&mut self, now: u64, rx: &[u8], tx: &mut Vec<u8>) -> bool {
        let mut frames = Vec::new();
        self.deframer.feed_all(
            rx,
            |f| frames.push((f.seq(), f.msg_type(), f.payload().to_vec())),
            |_| {},
        );
        for (seq, ty, payload) in frames {
            if let Ok(m) = Message::parse(ty, &payload) {
                self.on_frame(seq, m, now);
            }
        }
        if self.pending.is_none() && self.phase != Phase::Running {
            self.send_command(now, tx);
        } else if let Some((_, _, at)) = self.pending
            && now - at > self.timeout
        {
            self.retries += 1;
            self.send_command(now, tx);
        }
        if self.span_requests {
            self.request_span(now, tx);
        } else {
            self.request_runs(now, tx);
        }
        let total = self.plan.total_points();
        self.done.is_some()
            && self.health_after_done.is_some()
            && self.missing.is_empty()
            && self.points.len() as u64 >= total
    }

    /// The host driver's policy: one span over all holes.
    fn request_span(&mut self, now: u64, tx: &mut Vec<u8>) {
        let (Some(&first), Some(&last)) = (self.missing.keys().next(), self.missing.keys().last())
        else {
            self.span = None;
            return;
        };
        let requests = match self.span {
            Some((f, l, _, _)) if first < f || last > l => 1,
            None => 1,
            Some((_, _, at, n)) if now - at >= self.span_timeout => {
                if n >= SPAN_RETRIES {
                    self.frames_given_up += self.missing.len() as u64;
                    self.missing.clear();
                    self.span = None;
                    return;
                }
                n + 1
            }
            Some(_) => return,
        };
        self.send(
            &Message::ResendRequest {
                first_seq: first,
                last_seq: last,
            },
            tx,
        );
        self.resend_requests += 1;
        self.span = Some((first, last, now, requests));
    }

    /// Per contiguous run of missing frames, each re-asked after `timeout`.
    fn request_runs(&mut self, now: u64, tx: &mut Vec<u8>) {
        // Ask for missing frames not requested recently.
        let due: Vec<u32> = self
            .missing
            .iter()
            .filter(|&(_, &at)| at == 0 || now - at > self.timeout)
            .map(|(&s, _)| s)
            .collect();
        if !due.is_empty() {
            // Contiguous runs become one request each.
            let mut runs: Vec<(u32, u32)> = Vec::new();
            for s in due {
                match runs.last_mut() {
                    Some((_, last)) if *last + 1 == s => *last = s,
                    _ => runs.push((s, s)),
                }
            }
            for (first, last) in runs.into_iter().take(4) {
                self.send(
                    &Message::ResendRequest {
                        first_seq: first,
                        last_seq: last,
                    },
                    tx,
                );
                self.resend_requests += 1;
                for s in first..=last {
                    self.missing.insert(s, now.max(1));
                }
            }
        }
    }
}

/// Runs a scenario with the in-process firmware and the test host to the end.
pub fn run(sc: Scenario) -> Outcome {
    run_with(sc, false).0
}

/// Runs a scenario to the end; `span_requests` selects the host driver's resend policy.
pub fn run_with(sc: Scenario, span_requests: bool) -> (Outcome, RunStats) {
    let hz = sc.clock.hz;
    let mut sim = Simulation::new(sc).unwrap_or_else(|e| panic!("{e}"));
    let mut fw = InProcessFirmware::new(&sim).unwrap_or_else(|e| panic!("{e}"));
    let mut host = TestHost::new(sim.plan().clone(), hz);
    host.span_requests = span_requests;
    sim.run_with_host(&mut fw, &mut |now, rx, tx| host.exchange(now, rx, tx))
        .unwrap_or_else(|e| {
            panic!(
                "{e}: {} of {} points, done {:?}",
                host.points.len(),
                sim.plan().total_points(),
                host.done
            )
        });
    let st = sim.link_stats();
    let _ = st;
    let stats = RunStats {
        fw_counters: fw.firmware().counters(),
        frames_given_up: host.frames_given_up,
        seconds: sim.link_now() as f64 / hz as f64,
    };
    let outcome = Outcome {
        truth: sim.truth_points(),
        summary: sim.summary(),
        health: host.health_after_done.expect("health after done"),
        done: host.done.expect("scan done"),
        crc_errors: host.deframer.stats().bad_crc,
        resend_requests: host.resend_requests,
        retries: host.retries,
        points: std::mem::take(&mut host.points),
    };
    (outcome, stats)
}

/// Asserts every point equals the truth, field by field.
pub fn assert_points_match(o: &Outcome) {
    assert_eq!(
        o.truth.len() as u64,
        o.summary.points_planned,
        "the truth has every planned point"
    );
    assert_eq!(o.points.len(), o.truth.len(), "point count");
    for t in &o.truth {
        let p = o
            .points
            .get(&t.index)
            .unwrap_or_else(|| panic!("point {} missing", t.index));
        let ctx = || format!("point {}: device {p:?}\ntruth {t:?}", t.index);
        assert_eq!(p.position, t.position, "position, {}", ctx());
        assert_eq!(p.timestamp, t.timestamp, "timestamp, {}", ctx());
        assert_eq!(p.live_time, t.live_time, "live time, {}", ctx());
        assert_eq!(p.flags.0, t.flags, "flags, {}", ctx());
        assert_eq!(&p.counts[..], &t.counts[..], "counts, {}", ctx());
    }
    assert_eq!(o.done.total_points as usize, o.truth.len());
}

/// A `sim run` child process, stopped if the test fails before it exits.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            // SIGTERM lets the simulator stop its firmware child and clean up.
            let _ = std::process::Command::new("kill")
                .arg(self.0.id().to_string())
                .status();
            let _ = self.0.wait();
        }
    }
}

/// The points of a truth file (JSON lines; the summary line left out).
pub fn truth_file_points(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("truth line {l:?}: {e}")))
        .filter(|v: &serde_json::Value| v.get("summary").is_none())
        .collect()
}

/// Asserts that `points` equal the truth file `text` field for field (position, timestamp,
/// live time, flags, counts); returns the truth's points.
pub fn assert_points_match_truth_file(
    points: &BTreeMap<u32, Point>,
    text: &str,
) -> Vec<serde_json::Value> {
    let truth = truth_file_points(text);
    assert_eq!(points.len(), truth.len(), "point count");
    for t in &truth {
        let i = t["index"].as_u64().expect("an index") as u32;
        let p = points
            .get(&i)
            .unwrap_or_else(|| panic!("point {i} missing"));
        assert_eq!(Some(p.timestamp), t["timestamp"].as_u64(), "point {i}");
        assert_eq!(Some(p.position), t["position"].as_i64(), "point {i}");
        assert_eq!(
            Some(u64::from(p.live_time)),
            t["live_time"].as_u64(),
            "point {i}"
        );
        assert_eq!(Some(u64::from(p.flags.0)), t["flags"].as_u64(), "point {i}");
        let counts: Vec<u64> = p.counts.iter().map(|&c| u64::from(c)).collect();
        let want: Vec<u64> = t["counts"]
            .as_array()
            .expect("counts")
            .iter()
            .filter_map(serde_json::Value::as_u64)
            .collect();
        assert_eq!(counts, want, "point {i} counts");
    }
    truth
}
