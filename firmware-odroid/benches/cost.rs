//! Cost benchmark: instructions per edge and per latched point, meant for
//! `valgrind --tool=callgrind --toggle-collect=<function>` (see BENCHMARKS.md, section Firmware).
//!
//! `cost MODE N [ENCODING] [COUNTS]` runs one of:
//! * `decode`: the quadrature decoder over N edges (function `bench_decode`);
//! * `edges`: the whole `Firmware::poll` path over N edges that cross no preset, with an
//!   in-memory SPI fake that makes edge events on the fly (function `bench_poll`);
//! * `points`: the same with a preset on every edge, 8 channels, so every edge latches a point
//!   (function `bench_poll`); per point = points − edges;
//! * `periods`: a time-mode scan (no window) whose every event is a period event and an edge,
//!   one per 1 000 ticks (the shortest period at 100 MHz), so every event latches a point
//!   (function `bench_poll`); per point = periods − edges;
//! * `latch`: latch + batch encode + framing alone over N points (function `bench_latch`).
//!
//! ENCODING is `compact` (default), `raw` or `rice`. The detector counts are Poisson draws
//! (pre-drawn, so drawing costs nothing in the measured functions) with the means of the
//! protocol benches' EXAFS profiles: COUNTS `slow` (default; 1 ms/point: 4 000 on channel 0,
//! 350–1 250 on the others) or `fast` (70 µs/point: 28 and 2.5–8.8); edge timestamps have ±20
//! ticks of jitter, and the live time is the interval less 5 ticks.
//!
//! Without valgrind it prints wall time per unit as a rough guide.

use embedded_hal::spi::{ErrorKind, ErrorType, Operation, SpiDevice};
use flyscan_firmware::fpga::regs::{self, reg};
use flyscan_firmware::latch::{Latch, Latched};
use flyscan_firmware::outbox::Outbox;
use flyscan_firmware::quadrature::Decoder;
use flyscan_firmware::stream::Batcher;
use flyscan_firmware::{EdgeEvent, Firmware, Fpga, Settings, Snapshot};
use flyscan_protocol::{Direction, Encoding, Message, Point, ScanConfig, TriggerMode};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Poisson};
use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::Instant;

const GRAY: [u8; 4] = [0b00, 0b01, 0b11, 0b10];
const CHANNELS: u32 = 8;

#[derive(Debug)]
struct FakeError;
impl embedded_hal::spi::Error for FakeError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}
impl embedded_hal::digital::Error for FakeError {
    fn kind(&self) -> embedded_hal::digital::ErrorKind {
        embedded_hal::digital::ErrorKind::Other
    }
}

/// Edges still to produce, shared with the data-ready pin.
type Left = Rc<Cell<u64>>;

/// Entries of the pre-drawn tables (a power of two; the data repeats after it).
const TABLE: usize = 4096;

/// Pre-drawn detector and timing data, indexed by edge sequence number modulo [`TABLE`].
struct Tables {
    /// Hardware counter values at edge `i` (cumulative Poisson counts), per channel.
    counts: Vec<[u32; CHANNELS as usize]>,
    /// What the counters gain over one pass through the table, per channel.
    per_pass: [u32; CHANNELS as usize],
    /// Timestamp jitter of edge `i`, 0–40 ticks (intervals of 100 ± 40).
    jitter: Vec<u8>,
}

impl Tables {
    fn new(fast: bool) -> Self {
        let mut rng = SmallRng::seed_from_u64(7);
        let scale = if fast { 0.07 } else { 1.0 };
        let mut acc = [0u32; CHANNELS as usize];
        let mut counts = Vec::with_capacity(TABLE);
        let mut jitter = Vec::with_capacity(TABLE);
        for i in 0..TABLE {
            let wiggle = 1.0 + 0.2 * (i as f64 / 40.0).sin();
            for (ch, a) in acc.iter_mut().enumerate() {
                let mean = if ch == 0 {
                    4000.0
                } else {
                    200.0 + 150.0 * ch as f64
                };
                let mean = mean * scale * wiggle;
                let d = Poisson::new(mean).map_or(0.0, |p| p.sample(&mut rng));
                *a = a.wrapping_add(d as u32);
            }
            counts.push(acc);
            jitter.push(rng.random_range(0..=40));
        }
        Self {
            counts,
            per_pass: acc,
            jitter,
        }
    }

    fn timestamp(&self, seq: u32) -> u64 {
        u64::from(seq) * 100 + u64::from(self.jitter[seq as usize % TABLE])
    }

    fn counter(&self, seq: u32, ch: usize) -> u32 {
        let pass = seq / TABLE as u32;
        self.counts[seq as usize % TABLE][ch].wrapping_add(pass.wrapping_mul(self.per_pass[ch]))
    }
}

/// An FPGA that produces a steady forward motion, one edge per 100 ± 20 ticks; with `period`,
/// every edge is also a period event (the first the timer's start), `period` ticks apart.
struct FakeSpi {
    left: Left,
    seq: u32,
    tables: Rc<Tables>,
    period: Option<u64>,
}

impl FakeSpi {
    fn timestamp(&self, seq: u32) -> u64 {
        match self.period {
            Some(p) => u64::from(seq) * p,
            None => self.tables.timestamp(seq),
        }
    }
}

impl ErrorType for FakeSpi {
    type Error = FakeError;
}

impl SpiDevice for FakeSpi {
    fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), FakeError> {
        let [Operation::Write(h), rest @ ..] = ops else {
            return Err(FakeError);
        };
        let header: &[u8] = h;
        let resp: &mut [u8] = match rest {
            [Operation::Read(r)] => r,
            [] => return Ok(()),
            _ => return Err(FakeError),
        };
        match header[0] {
            regs::CMD_READ_REG => {
                let v: u32 = match header[1] {
                    reg::ID => regs::ID_MAGIC,
                    reg::VERSION => regs::VERSION,
                    reg::CLOCK_HZ => 100_000_000,
                    reg::N_CHANNELS => CHANNELS,
                    reg::COUNTER_BITS => 32,
                    reg::EDGE_FIFO_DEPTH | reg::SNAPSHOT_DEPTH => 4096,
                    reg::EDGE_FIFO_LEVEL => self.left.get().min(4096) as u32,
                    _ => 0,
                };
                resp.copy_from_slice(&v.to_le_bytes());
            }
            regs::CMD_READ_EDGES => {
                let n = usize::from(u16::from_le_bytes([header[1], header[2]]));
                let count = (self.left.get() as usize).min(n);
                self.left.set(self.left.get() - count as u64);
                resp[..2].copy_from_slice(&(count as u16).to_le_bytes());
                for i in 0..count {
                    let flags = match (self.period, self.seq) {
                        (None, _) => 0,
                        (Some(_), 0) => regs::EDGE_FLAG_PERIOD | regs::EDGE_FLAG_PERIOD_START,
                        (Some(_), _) => regs::EDGE_FLAG_PERIOD,
                    };
                    let ev = EdgeEvent {
                        timestamp: self.timestamp(self.seq),
                        seq: self.seq,
                        ab: GRAY[(self.seq as usize + 1) % 4],
                        flags,
                    };
                    self.seq = self.seq.wrapping_add(1);
                    let at = 2 + i * regs::EDGE_EVENT_LEN;
                    resp[at..at + regs::EDGE_EVENT_LEN].copy_from_slice(&ev.to_bytes());
                }
            }
            regs::CMD_READ_SNAPSHOT => {
                let seq = u32::from_le_bytes([header[1], header[2], header[3], header[4]]);
                resp[0] = 1;
                resp[1..5].copy_from_slice(&seq.to_le_bytes());
                // The gate is open for all but 5 ticks of each interval.
                let live = (self.timestamp(seq) as u32).wrapping_sub(seq.wrapping_mul(5));
                resp[5..9].copy_from_slice(&live.to_le_bytes());
                for ch in 0..CHANNELS as usize {
                    let v = self.tables.counter(seq, ch);
                    resp[9 + 4 * ch..13 + 4 * ch].copy_from_slice(&v.to_le_bytes());
                }
            }
            _ => return Err(FakeError),
        }
        Ok(())
    }
}

struct FakeDrdy(Left);
impl embedded_hal::digital::ErrorType for FakeDrdy {
    type Error = FakeError;
}
impl embedded_hal::digital::InputPin for FakeDrdy {
    fn is_high(&mut self) -> Result<bool, FakeError> {
        Ok(self.0.get() > 0)
    }
    fn is_low(&mut self) -> Result<bool, FakeError> {
        Ok(self.0.get() == 0)
    }
}

#[inline(never)]
fn bench_decode(abs: &[u8]) -> i64 {
    let mut d = Decoder::new(0, 0);
    for &ab in abs {
        d.step(ab);
    }
    d.position()
}

#[inline(never)]
fn bench_poll(fw: &mut Firmware<FakeSpi, FakeDrdy>, left: &Left, sink: &mut [u8]) -> u64 {
    let mut now = 0u64;
    let mut sent = 0u64;
    while left.get() > 0 {
        now += 100_000;
        let _ = fw.poll(now);
        loop {
            let n = fw.transmit(sink);
            if n == 0 {
                break;
            }
            sent += n as u64;
        }
    }
    let _ = fw.poll(now + 100_000_000);
    sent + u64::from(fw.transmit(sink) as u32)
}

#[inline(never)]
fn bench_latch(
    n: u32,
    tables: &Tables,
    latch: &mut Latch,
    batch: &mut Batcher,
    out: &mut Outbox,
    sink: &mut [u8],
) {
    let mut snap = Snapshot {
        valid: true,
        ..Snapshot::default()
    };
    for _ in 0..CHANNELS {
        let _ = snap.counts.push(0);
    }
    let mut p = Point::default();
    for i in 0..n {
        let ts = tables.timestamp(i);
        snap.seq = i;
        snap.live = (ts as u32).wrapping_sub(i.wrapping_mul(5));
        for (ch, c) in snap.counts.iter_mut().enumerate() {
            *c = tables.counter(i, ch);
        }
        let (live, r) = latch.latch(&snap, ts, &mut p.counts);
        p.position = i64::from(i);
        p.timestamp = ts;
        p.live_time = live;
        p.flags.0 = if let Latched::Good(f) = r { f } else { 1 };
        if !batch.has_room() {
            batch.flush(out);
            while out.transmit(sink) > 0 {}
        }
        let _ = batch.push(&p, 0);
    }
    batch.flush(out);
}

/// What makes points in a [`firmware`] run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Points {
    /// No preset is crossed.
    None,
    /// A preset on every edge.
    Presets,
    /// Time mode: a period event on every edge.
    Periods,
}

/// Shortest time-mode period at the fake's 100 MHz: 10 µs.
const PERIOD_TICKS: u64 = 1000;

fn firmware(
    n: u64,
    points: Points,
    encoding: Encoding,
    tables: Rc<Tables>,
) -> (Box<Firmware<FakeSpi, FakeDrdy>>, Left) {
    let left: Left = Rc::new(Cell::new(0));
    let spi = FakeSpi {
        left: left.clone(),
        seq: 0,
        tables,
        period: (points == Points::Periods).then_some(PERIOD_TICKS),
    };
    let mut fw = Box::new(
        Firmware::new(Fpga::new(spi, FakeDrdy(left.clone())), Settings::default())
            .unwrap_or_else(|e| panic!("fake FPGA init: {e}")),
    );
    let count = n.min(16_000_000) as u32;
    let cfg = match points {
        Points::Periods => ScanConfig {
            mode: TriggerMode::Time,
            direction: Direction::Either,
            encoding,
            step: PERIOD_TICKS as i64,
            count,
            channel_mask: (1 << CHANNELS) - 1,
            ..ScanConfig::default()
        },
        _ => ScanConfig {
            mode: TriggerMode::StartStepCount,
            encoding,
            start: if points == Points::Presets {
                1
            } else {
                i64::MAX / 2
            },
            step: 1,
            count,
            channel_mask: (1 << CHANNELS) - 1,
            ..ScanConfig::default()
        },
    };
    let mut frame = [0u8; 128];
    for (i, m) in [Message::Configure(cfg), Message::Arm { scan_id: 1 }]
        .iter()
        .enumerate()
    {
        let len = m
            .encode_frame(i as u32, &mut frame)
            .unwrap_or_else(|e| panic!("encode: {e}"));
        fw.receive(&frame[..len]);
    }
    let mut sink = [0u8; 4096];
    while fw.transmit(&mut sink) > 0 {}
    left.set(n);
    (fw, left)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("all");
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let encoding = match args.get(3).map(String::as_str) {
        None | Some("compact") => Encoding::Compact,
        Some("raw") => Encoding::Raw,
        Some("rice") => Encoding::Rice,
        Some(other) => {
            eprintln!("unknown encoding {other:?}: compact, raw or rice");
            std::process::exit(2);
        }
    };
    let fast = match args.get(4).map(String::as_str) {
        None | Some("slow") => false,
        Some("fast") => true,
        Some(other) => {
            eprintln!("unknown counts {other:?}: slow or fast");
            std::process::exit(2);
        }
    };
    let tables = Rc::new(Tables::new(fast));
    let mut sink = vec![0u8; 8192];
    let run = |name: &str, f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        let ns = t.elapsed().as_nanos() as f64 / n as f64;
        println!("{name}: {n} units, {ns:.1} ns/unit (wall clock, rough)");
    };
    if mode == "decode" || mode == "all" {
        let abs: Vec<u8> = (0..n).map(|i| GRAY[(i as usize + 1) % 4]).collect();
        run("decode", &mut || {
            black_box(bench_decode(black_box(&abs)));
        });
    }
    for (name, points) in [
        ("edges", Points::None),
        ("points", Points::Presets),
        ("periods", Points::Periods),
    ] {
        if mode == name || mode == "all" {
            let (mut fw, left) = firmware(n, points, encoding, tables.clone());
            run(name, &mut || {
                black_box(bench_poll(&mut fw, &left, &mut sink));
            });
            let h = fw.stats();
            println!(
                "  points latched: {}, frames sent: {}",
                h.points, h.frames_sent
            );
        }
    }
    if mode == "latch" || mode == "all" {
        let mut latch = Latch::new(32);
        latch.start((1 << CHANNELS) - 1);
        let mut batch = Batcher::default();
        batch.start(1, encoding, (1 << CHANNELS) - 1, 0, u64::MAX);
        let mut out = Box::<Outbox>::default();
        let base = Snapshot {
            valid: true,
            counts: heapless::Vec::from_slice(&[0; CHANNELS as usize]).unwrap_or_default(),
            ..Snapshot::default()
        };
        latch.set_base(&base, 0);
        run("latch", &mut || {
            bench_latch(
                n as u32, &tables, &mut latch, &mut batch, &mut out, &mut sink,
            )
        });
    }
}
