//! The firmware on a line that loses frames: batches shrink on resend requests and grow back.

use super::Firmware;
use crate::Settings;
use crate::batch_cap::{CAP_FLOOR, CAP_MAX};
use crate::fpga::Fpga;
use crate::fpga::model::{FpgaModel, ModelConfig, ModelDrdy, ModelSpi};
use flyscan_protocol::limits::{MAX_COMPACT_POINT, MAX_ENCODED_FRAME};
use flyscan_protocol::{Deframer, Direction, Encoding, Message, ScanConfig, TriggerMode};
extern crate std;
use std::boxed::Box;
use std::vec;
use std::vec::Vec;

struct Rig {
    fw: Box<Firmware<ModelSpi, ModelDrdy>>,
    model: FpgaModel,
    deframer: Deframer,
    host_seq: u32,
    /// (first_index, n_points, data bytes) of every batch received, in order (resends of
    /// frames already received are left out).
    batches: Vec<(u32, u16, usize)>,
    next_seq: u32,
}

impl Rig {
    fn new() -> Self {
        let model = FpgaModel::new(ModelConfig {
            clock_hz: 1_000_000,
            n_channels: 8,
            counter_bits: 24,
            fifo_depth: 4096,
            snapshot_depth: 4096,
        });
        let fpga = Fpga::new(model.spi(), model.drdy());
        let fw = Box::new(Firmware::new(fpga, Settings::default()).unwrap());
        Self {
            fw,
            model,
            deframer: Deframer::new(),
            host_seq: 0,
            batches: Vec::new(),
            next_seq: 0,
        }
    }

    fn send(&mut self, msg: &Message<'_>) {
        let mut buf = vec![0u8; MAX_ENCODED_FRAME];
        let n = msg.encode_frame(self.host_seq, &mut buf).unwrap();
        self.host_seq += 1;
        self.fw.receive(&buf[..n]);
        self.drain();
    }

    fn drain(&mut self) {
        let mut buf = [0u8; 512];
        let mut wire = Vec::new();
        loop {
            let n = self.fw.transmit(&mut buf);
            if n == 0 {
                break;
            }
            wire.extend_from_slice(&buf[..n]);
        }
        let batches = &mut self.batches;
        let next_seq = &mut self.next_seq;
        self.deframer.feed_all(
            &wire,
            |f| {
                if f.seq() < *next_seq {
                    return;
                }
                *next_seq = f.seq() + 1;
                if let Ok(Message::PointBatch(b)) = f.message() {
                    batches.push((b.first_index, b.n_points, b.data.len()));
                }
            },
            |e| panic!("bad frame on a clean line: {e}"),
        );
    }

    /// Moves `n` counts forward, 10 ticks each, polling every count.
    fn run(&mut self, n: u32) {
        for _ in 0..n {
            self.model.advance(10);
            self.model.count(2, 3);
            self.model.step(1);
            self.fw.poll(self.model.time()).unwrap();
            self.drain();
        }
    }

    /// Lets `ticks` of device time pass without motion, polling every ms.
    fn wait(&mut self, ticks: u64) {
        for _ in 0..ticks / 1000 {
            self.model.advance(1000);
            self.fw.poll(self.model.time()).unwrap();
            self.drain();
        }
    }

    fn largest_batch_since(&self, from: usize) -> usize {
        self.batches[from..].iter().map(|b| b.2).max().unwrap_or(0)
    }
}

#[test]
fn batches_shrink_on_resend_requests_and_grow_back_when_quiet() {
    let mut r = Rig::new();
    r.send(&Message::Configure(ScanConfig {
        mode: TriggerMode::StartStepCount,
        direction: Direction::Positive,
        encoding: Encoding::Compact,
        start: 1,
        step: 1,
        count: 30_000,
        passes: 1,
        channel_mask: 0xFF,
        max_batch_points: 0,
        // Long enough that only the byte limits end a batch.
        max_latency_us: 1_000_000,
        gate_span: 0,
    }));
    r.send(&Message::Arm { scan_id: 3 });

    // Clean line: batches fill whole frames.
    r.run(1000);
    assert_eq!(r.fw.batch_cap(), CAP_MAX);
    assert!(r.largest_batch_since(0) > CAP_MAX / 2, "{:?}", r.batches);

    // The host reports losses: each request halves the cap, down to the floor.
    for i in 0..6 {
        r.send(&Message::ResendRequest {
            first_seq: i,
            last_seq: i,
        });
    }
    assert_eq!(r.fw.batch_cap(), CAP_FLOOR);
    let from = r.batches.len();
    r.run(300);
    assert!(r.batches.len() > from + 10, "many small batches");
    // The batch in progress at the requests may exceed the cap; later ones keep to it.
    let small = r.largest_batch_since(from + 1);
    assert!(small <= CAP_FLOOR + MAX_COMPACT_POINT, "{small} bytes");

    // A quiet line: the cap grows back to whole frames.
    r.wait(3_000_000);
    assert_eq!(r.fw.batch_cap(), CAP_MAX);
    let from = r.batches.len();
    r.run(1000);
    assert!(r.largest_batch_since(from + 1) > CAP_MAX / 2);

    // Nothing lost or repeated on the way: indices are contiguous (after the latency flush).
    r.wait(1_100_000);
    let mut next = 0u32;
    for &(first, n, _) in &r.batches {
        assert_eq!(first, next);
        next += u32::from(n);
    }
    assert_eq!(next, r.fw.stats().points);
    assert_eq!(r.fw.counters().loss_signals, 6);
}
