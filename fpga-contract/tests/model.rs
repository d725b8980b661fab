//! The reference model against FPGA.md's rules, through its byte-level SPI interface and
//! through the embedded-hal views the firmware's tests use.
#![allow(clippy::unwrap_used)]

use embedded_hal::digital::InputPin;
use embedded_hal::spi::{Operation, SpiDevice};
use flyscan_fpga_contract::hal::FpgaModel;
use flyscan_fpga_contract::model::{ModelConfig, RefModel};
use flyscan_fpga_contract::regs::{self, reg};
use flyscan_fpga_contract::{EdgeEvent, Snapshot};

fn cfg(fifo: u32, snaps: u32, bits: u8) -> ModelConfig {
    ModelConfig {
        clock_hz: 1_000_000,
        n_channels: 2,
        counter_bits: bits,
        fifo_depth: fifo,
        snapshot_depth: snaps,
    }
}

fn started(c: ModelConfig) -> RefModel {
    let mut m = RefModel::new(c);
    m.write_reg(reg::CONTROL, regs::CONTROL_RESET | regs::CONTROL_CLEAR_FIFO);
    m.write_reg(reg::CONTROL, regs::CONTROL_ENABLE);
    m
}

fn edges(m: &mut RefModel, n: usize, clocked: usize) -> (usize, Vec<EdgeEvent>) {
    let mut mosi = vec![0u8; 3 + clocked];
    mosi[0] = regs::CMD_READ_EDGES;
    mosi[1..3].copy_from_slice(&(n as u16).to_le_bytes());
    let miso = m.exchange_vec(&mosi);
    let count = usize::from(u16::from_le_bytes([miso[3], miso[4]]));
    let evs = miso[5..]
        .chunks_exact(regs::EDGE_EVENT_LEN)
        .take(count)
        .map(|c| EdgeEvent::from_bytes(c.try_into().unwrap()))
        .collect();
    (count, evs)
}

fn snapshot(m: &mut RefModel, seq: u32) -> Snapshot {
    let mut mosi = vec![0u8; 5 + regs::snapshot_len(2)];
    mosi[0] = regs::CMD_READ_SNAPSHOT;
    mosi[1..5].copy_from_slice(&seq.to_le_bytes());
    let miso = m.exchange_vec(&mosi);
    let mut s = Snapshot::default();
    s.decode_into(&miso[5..], 2, seq);
    s
}

#[test]
fn an_edge_snapshots_the_counters_of_the_cycles_before_it() {
    let mut m = started(cfg(16, 16, 32));
    m.advance(100);
    m.count(0, 3);
    m.advance(1);
    m.set_ab(1);
    m.count(1, 5); // same cycle as the edge: next bin
    m.advance(9);
    m.set_ab(3);
    let (count, evs) = edges(&mut m, 4, regs::read_edges_len(4));
    assert_eq!(count, 2);
    assert_eq!(
        (evs[0].timestamp, evs[0].seq, evs[0].ab),
        (101, 0, 1),
        "stamped with its cycle"
    );
    assert_eq!((evs[1].timestamp, evs[1].seq, evs[1].ab), (110, 1, 3));
    let s0 = snapshot(&mut m, 0);
    assert_eq!(
        (s0.valid, s0.live, &s0.counts[..]),
        (true, 101, &[3, 0][..])
    );
    let s1 = snapshot(&mut m, 1);
    assert_eq!((s1.live, &s1.counts[..]), (110, &[3, 5][..]));
}

#[test]
fn overrun_drops_events_but_keeps_numbers_and_snapshots() {
    let mut m = started(cfg(2, 8, 32));
    for i in 0..5u8 {
        m.advance(10);
        m.count(0, 1);
        m.set_ab([1, 3, 2, 0, 1][usize::from(i)]);
    }
    assert_eq!(m.fifo_level(), 2);
    assert_eq!(m.read_reg(reg::OVERRUN_COUNT), 3);
    assert_eq!(
        m.read_reg(reg::STATUS),
        regs::STATUS_READY | regs::STATUS_OVERRUN
    );
    assert_eq!(
        m.read_reg(reg::STATUS),
        regs::STATUS_READY,
        "cleared by the read"
    );
    let (_, evs) = edges(&mut m, 2, regs::read_edges_len(2));
    assert_eq!(evs.iter().map(|e| e.seq).collect::<Vec<_>>(), [0, 1]);
    m.advance(10);
    m.set_ab(3);
    let (_, evs) = edges(&mut m, 2, regs::read_edges_len(2));
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].seq, 5, "the gap tells how many were lost");
    assert!(evs[0].overrun());
    let s = snapshot(&mut m, 3);
    assert!(s.valid, "dropped events still have snapshots");
    assert_eq!(s.counts[0], 4);
}

#[test]
fn snapshots_are_overwritten_and_invalidated_by_a_reset() {
    let mut m = started(cfg(16, 4, 32));
    for i in 0..6u32 {
        m.advance(5);
        m.set_ab((i as u8 + 1) & 3);
    }
    let s = snapshot(&mut m, 1);
    assert!(!s.valid);
    assert_eq!(s.seq, 5, "the slot's own seq is echoed");
    assert!(snapshot(&mut m, 5).valid);
    assert!(!snapshot(&mut m, 6).valid, "not yet written");
    m.write_reg(reg::CONTROL, regs::CONTROL_RESET | regs::CONTROL_ENABLE);
    let s = snapshot(&mut m, 5);
    assert!(!s.valid && s.seq == 5, "stale after a reset");
}

#[test]
fn counters_wrap_at_counter_bits() {
    let mut m = started(cfg(16, 16, 8));
    m.count(0, 300);
    m.advance(300);
    m.set_ab(1);
    let s = snapshot(&mut m, 0);
    assert_eq!((s.live, s.counts[0]), (300 % 256, 300 % 256));
}

#[test]
fn a_reset_counts_its_own_cycle_afterwards() {
    let mut m = started(cfg(16, 16, 32));
    m.advance(50);
    m.count(0, 7);
    m.write_reg(reg::CONTROL, regs::CONTROL_RESET | regs::CONTROL_ENABLE);
    m.count(1, 2);
    m.advance(4);
    m.set_ab(2);
    let s = snapshot(&mut m, 0);
    assert_eq!((s.live, &s.counts[..]), (4, &[0, 2][..]));
}

#[test]
fn aborted_transactions() {
    let mut m = started(cfg(16, 16, 32));
    for ab in [1, 3, 2] {
        m.advance(5);
        m.set_ab(ab);
    }
    // Header incomplete: nothing happens.
    assert_eq!(m.exchange_vec(&[regs::CMD_READ_EDGES, 3]), [0, 0]);
    assert_eq!(m.fifo_level(), 3);
    // Cut inside the second slot: only the first event leaves the FIFO.
    let (count, _) = edges(&mut m, 3, 2 + regs::EDGE_EVENT_LEN + 4);
    assert_eq!(count, 3, "count is fixed by the header");
    assert_eq!(m.fifo_level(), 2);
    let (_, evs) = edges(&mut m, 2, regs::read_edges_len(2));
    assert_eq!(evs[0].seq, 1, "the cut event is sent again");
    // A register read cut after one byte had its side effect.
    m.advance(5);
    m.set_ab(0);
    let _ = m.exchange_vec(&[regs::CMD_READ_REG, reg::TIME_LO, 0]);
    assert_eq!(m.read_reg(reg::TIME_HI), 0);
    // Unknown commands and bytes past a response read 00.
    assert_eq!(m.exchange_vec(&[0x55, 1, 2, 3]), [0; 4]);
    let miso = m.exchange_vec(&[regs::CMD_READ_REG, reg::ID, 0, 0, 0, 0, 9, 9]);
    assert_eq!(&miso[2..], &[0x53, 0x59, 0x4C, 0x46, 0, 0]);
}

#[test]
fn time_lo_latches_time_hi() {
    let mut m = RefModel::with_time(cfg(4, 4, 32), (1 << 32) - 2);
    assert_eq!(m.read_reg(reg::TIME_LO), u32::MAX - 1);
    m.advance(5);
    assert_eq!(m.read_reg(reg::TIME_HI), 0, "latched by the TIME_LO read");
    assert_eq!(m.read_reg(reg::TIME_LO), 3);
    assert_eq!(m.read_reg(reg::TIME_HI), 1);
}

#[test]
fn the_embedded_hal_views_serve_the_firmware_shapes_only() {
    let model = FpgaModel::new(cfg(16, 16, 32));
    let mut spi = model.spi();
    let mut drdy = model.drdy();
    spi.write(&[regs::CMD_WRITE_REG, reg::CONTROL, 1, 0, 0, 0])
        .unwrap();
    model.advance(3);
    model.step(1);
    model.step(1);
    model.step(-1);
    assert!(drdy.is_high().unwrap());
    assert_eq!(model.fifo_level(), 3);
    let mut r = [0u8; 4];
    spi.transaction(&mut [
        Operation::Write(&[regs::CMD_READ_REG, reg::AB_NOW]),
        Operation::Read(&mut r),
    ])
    .unwrap();
    assert_eq!(u32::from_le_bytes(r), 0b01, "forward, forward, back");
    assert!(
        spi.transaction(&mut [Operation::Read(&mut r)]).is_err(),
        "a shape the firmware never uses"
    );
    assert_eq!(model.transactions(), 2);
}

fn write_period(m: &mut RefModel, p: u32) {
    let v = p.to_le_bytes();
    let miso = m.exchange_vec(&[regs::CMD_WRITE_REG, reg::PERIOD, v[0], v[1], v[2], v[3]]);
    assert_eq!(miso, [0; 6]);
}

#[test]
fn the_period_timer_makes_a_start_event_then_one_every_period() {
    let mut m = started(cfg(16, 16, 32));
    m.advance(40);
    m.count(0, 2);
    m.advance(10);
    write_period(&mut m, 25);
    assert_eq!(m.read_reg(reg::PERIOD), 25);
    // One pulse in each of the first periods' cycles 51, 76, 101.
    for at in [51, 76, 101] {
        m.advance_to(at);
        m.count(1, 1);
    }
    m.advance_to(110);
    let (count, evs) = edges(&mut m, 8, regs::read_edges_len(8));
    assert_eq!(count, 3, "{evs:?}");
    let flags: Vec<u8> = evs.iter().map(|e| e.flags).collect();
    assert_eq!(
        flags,
        [
            regs::EDGE_FLAG_PERIOD | regs::EDGE_FLAG_PERIOD_START,
            regs::EDGE_FLAG_PERIOD,
            regs::EDGE_FLAG_PERIOD,
        ]
    );
    let ticks: Vec<u64> = evs.iter().map(|e| e.timestamp).collect();
    assert_eq!(ticks, [50, 75, 100], "arm + k × period");
    assert!(evs[0].period_start() && !evs[1].period_start());
    assert_eq!(evs.iter().map(|e| e.seq).collect::<Vec<_>>(), [0, 1, 2]);
    // Snapshots at the start of each period's cycle: live since the reset, counts before it.
    let snaps: Vec<(u32, [u32; 2])> = (0..3)
        .map(|q| {
            let s = snapshot(&mut m, q);
            assert!(s.valid);
            (s.live, [s.counts[0], s.counts[1]])
        })
        .collect();
    assert_eq!(
        snaps,
        [(50, [2, 0]), (75, [2, 1]), (100, [2, 2])],
        "the pulse of cycle 76 is period 2's, that of cycle 101 period 3's"
    );
}

#[test]
fn an_edge_on_a_period_events_cycle_is_that_event() {
    let mut m = started(cfg(16, 16, 32));
    write_period(&mut m, 10);
    m.advance(10);
    assert!(m.set_ab(1), "the edge is captured");
    m.count(0, 1);
    m.advance(3);
    m.set_ab(3);
    let (_, evs) = edges(&mut m, 8, regs::read_edges_len(8));
    assert_eq!(
        evs.len(),
        3,
        "start, period 1 with the edge, a lone edge: {evs:?}"
    );
    assert_eq!(
        (evs[1].timestamp, evs[1].seq, evs[1].ab, evs[1].flags),
        (10, 1, 1, regs::EDGE_FLAG_PERIOD),
        "one event: the new levels, flag PERIOD, one seq"
    );
    assert_eq!((evs[2].seq, evs[2].flags), (2, 0));
    // A period event without an edge carries the levels as they are.
    m.advance(10);
    let (_, evs) = edges(&mut m, 8, regs::read_edges_len(8));
    assert_eq!((evs[0].timestamp, evs[0].ab), (20, 3));
    assert_eq!(
        snapshot(&mut m, 1).counts[0],
        0,
        "the pulse of the edge's cycle is next"
    );
}

#[test]
fn stop_restart_capture_off_and_reset() {
    let mut m = started(cfg(64, 64, 32));
    write_period(&mut m, 10);
    m.advance(20);
    // Stop on a period event's cycle: that event is made, none after.
    write_period(&mut m, 0);
    assert_eq!(m.read_reg(reg::PERIOD), 0);
    m.advance(100);
    let (_, evs) = edges(&mut m, 16, regs::read_edges_len(16));
    assert_eq!(
        evs.iter().map(|e| e.timestamp).collect::<Vec<_>>(),
        [0, 10, 20]
    );
    // Restart on a period event's cycle of a running timer: one event, both flags.
    write_period(&mut m, 10);
    m.advance(10);
    write_period(&mut m, 7);
    m.advance(7);
    let (_, evs) = edges(&mut m, 16, regs::read_edges_len(16));
    let got: Vec<(u64, u8)> = evs.iter().map(|e| (e.timestamp, e.flags)).collect();
    let start = regs::EDGE_FLAG_PERIOD | regs::EDGE_FLAG_PERIOD_START;
    assert_eq!(
        got,
        [(120, start), (130, start), (137, regs::EDGE_FLAG_PERIOD)]
    );
    // Capture off: no events, no seq numbers, but the phase is kept.
    m.write_reg(reg::CONTROL, 0);
    m.advance(20);
    m.write_reg(reg::CONTROL, regs::CONTROL_ENABLE);
    m.advance(5);
    let (_, evs) = edges(&mut m, 16, regs::read_edges_len(16));
    assert_eq!(
        evs.iter().map(|e| (e.timestamp, e.seq)).collect::<Vec<_>>(),
        [(158, 6)],
        "137 + 3 × 7, after the events of 144 and 151 were not made"
    );
    // A reset stops the timer.
    m.write_reg(reg::CONTROL, regs::CONTROL_RESET | regs::CONTROL_ENABLE);
    assert_eq!(m.read_reg(reg::PERIOD), 0);
    m.advance(50);
    assert_eq!(m.fifo_level(), 0);
}

#[test]
fn period_events_overrun_like_edges() {
    let mut m = started(cfg(2, 8, 32));
    write_period(&mut m, 5);
    m.advance(20);
    assert_eq!(m.fifo_level(), 2);
    assert_eq!(
        m.read_reg(reg::OVERRUN_COUNT),
        3,
        "the events of 10, 15 and 20"
    );
    assert_eq!(m.stats().period_events, 5);
    let (_, evs) = edges(&mut m, 2, regs::read_edges_len(2));
    assert_eq!(evs.iter().map(|e| e.seq).collect::<Vec<_>>(), [0, 1]);
    m.advance(5);
    let (_, evs) = edges(&mut m, 2, regs::read_edges_len(2));
    assert_eq!((evs[0].seq, evs[0].timestamp), (5, 25));
    assert!(evs[0].overrun() && evs[0].period());
    let s = snapshot(&mut m, 3);
    assert!(
        s.valid && s.live == 15,
        "a dropped period event still has its snapshot"
    );
}
