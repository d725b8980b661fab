//! The faults operations meet, one test each, against the core alone.

use super::*;

fn done_scan(h: &mut Harness, n: i64) {
    h.configure_ssc(1000.0, 10.0, n, 0b1011);
    h.arm();
    assert_eq!(h.image().status, Status::Armed, "{}", h.image().message);
    h.run_scan(7);
    assert_eq!(h.image().status, Status::Done, "{}", h.image().message);
}

#[test]
fn a_scan_runs_to_done_and_shows_every_point() {
    let mut h = Harness::new();
    assert!(h.image().connected, "{}", h.image().message);
    done_scan(&mut h, 50);
    let im = h.image();
    assert_eq!(
        (im.num_captured, im.lost_points, im.num_expected),
        (50, 0, 50)
    );
    assert!(!im.busy && !h.shown.arm);
    assert_eq!(h.shown.position.len(), 50);
    assert_eq!(h.shown.position[3], 1030.0);
    for ch in [0, 1, 3] {
        h.check_rows(ch);
    }
    assert!(
        h.shown.channels[2].is_empty(),
        "a disabled channel stays empty"
    );
    assert_eq!(h.shown.record, None, "a finished scan leaves no record");
}

#[test]
fn device_restart_while_idle_needs_no_driver_restart() {
    let mut h = Harness::new();
    done_scan(&mut h, 20);
    h.dev = Device::new(0xb007_0002);
    h.settle();
    assert!(
        h.image().message.contains("restarted"),
        "{}",
        h.image().message
    );
    assert_eq!(h.image().device_session, 0xb007_0002);
    assert!(h.image().connected);
    done_scan(&mut h, 30);
    assert_eq!(h.image().num_captured, 30);
    h.check_rows(0);
}

#[test]
fn device_restart_mid_scan_ends_the_scan_with_exact_loss() {
    let mut h = Harness::new();
    h.configure_ssc(0.0, 5.0, 100, 1);
    h.arm();
    h.dev.advance(30);
    h.settle();
    assert_eq!(h.image().status, Status::Scanning);
    h.dev = Device::new(0xb007_0003);
    h.settle();
    let im = h.image().clone();
    assert_eq!(im.status, Status::Error);
    assert!(im.message.contains("restarted"), "{}", im.message);
    assert_eq!(
        (im.num_captured, im.lost_points, im.num_expected),
        (30, 70, 100)
    );
    assert!(!im.busy && !h.shown.arm, "Busy and Arm back to 0");
    assert_eq!(
        h.shown.position.len(),
        100,
        "the lost points are shown as NaN"
    );
    // The next Arm works with no driver restart.
    done_scan(&mut h, 10);
}

#[test]
fn a_stale_list_is_never_armed() {
    let mut h = Harness::new();
    h.write(ControlWrite::Mode(1));
    h.write(ControlWrite::Positions(vec![5000.0, 6000.0]));
    h.write(ControlWrite::ChannelMask(1));
    h.arm();
    assert_eq!(h.image().status, Status::Armed);
    h.write(ControlWrite::Abort(true));
    h.settle();
    assert_eq!(h.image().status, Status::Aborted);
    h.write(ControlWrite::Positions(vec![]));
    let configures = h.sent_of(MessageType::Configure).len();
    h.arm();
    assert_eq!(h.image().status, Status::Error);
    assert!(h.image().message.contains("empty"), "{}", h.image().message);
    assert_eq!(
        h.sent_of(MessageType::Configure).len(),
        configures,
        "nothing sent"
    );
    assert!(!h.shown.arm);
}

#[test]
fn an_idle_device_stays_connected_and_a_gone_one_does_not() {
    let mut h = Harness::new();
    h.wait(Duration::from_secs(30));
    assert!(h.image().connected, "idle 30 s: {}", h.image().message);
    h.cut = true;
    let t0 = h.now;
    while h.image().connected {
        h.wait(Duration::from_millis(100));
        assert!(
            h.now - t0 <= Duration::from_secs(3),
            "still connected after 3 s"
        );
    }
    assert!(
        h.image().message.contains("does not answer"),
        "{}",
        h.image().message
    );
    h.cut = false;
    h.wait(Duration::from_secs(2));
    assert!(h.image().connected);
}

#[test]
fn a_silent_device_fails_the_running_scan_after_the_timeout() {
    let mut h = Harness::new();
    h.configure_ssc(0.0, 5.0, 100, 1);
    h.arm();
    h.dev.advance(10);
    h.settle();
    h.cut = true;
    h.wait(Duration::from_secs(10));
    assert_eq!(
        h.image().status,
        Status::Scanning,
        "a short outage is waited out"
    );
    h.wait(Duration::from_secs(25));
    let im = h.image();
    assert_eq!(im.status, Status::Error);
    assert!(im.message.contains("silent"), "{}", im.message);
    assert_eq!(im.num_captured + im.lost_points, im.num_expected);
    assert!(!h.shown.arm);
}

#[test]
fn frames_of_a_foreign_scan_are_counted_and_never_shown() {
    let mut h = Harness::new();
    done_scan(&mut h, 20);
    let shown = h.shown.position.clone();
    // Idle: a batch and a ScanArmed nobody armed.
    let seq = h.dev.seq;
    let mut bytes = batch_frame(seq, 4242, 0, 5, 0b1011, Encoding::Compact);
    bytes.extend(frame(
        seq + 1,
        &Message::ScanArmed(ScanArmed {
            scan_id: 4243,
            config: ScanConfig::default(),
        }),
    ));
    h.dev.seq += 2;
    h.core.bytes(&bytes, h.now);
    h.settle();
    assert_eq!(h.image().protocol_errors, 2, "{}", h.image().message);
    assert_eq!(h.shown.position, shown, "the shown scan is untouched");
    assert_eq!(h.image().status, Status::Done);
    // Running: a foreign batch in the middle of a scan.
    h.configure_ssc(0.0, 5.0, 40, 1);
    h.arm();
    h.dev.advance(10);
    h.pump();
    let seq = h.dev.seq;
    h.dev.seq += 1;
    h.core
        .bytes(&batch_frame(seq, 999, 10, 5, 1, Encoding::Compact), h.now);
    h.run_scan(10);
    let im = h.image();
    assert_eq!(im.protocol_errors, 3);
    assert!(im.message.contains("done"), "{}", im.message);
    assert_eq!((im.num_captured, im.lost_points), (40, 0));
    h.check_rows(0);
}

/// Injects a forged batch of the running scan (as the device's next frame).
fn forge(h: &mut Harness, first: u32, n: u32, mask: u32, enc: Encoding) {
    let id = h.dev.armed.expect("armed");
    let seq = h.dev.seq;
    h.dev.seq += 1;
    h.core
        .bytes(&batch_frame(seq, id, first, n, mask, enc), h.now);
    h.pump();
}

#[test]
fn batches_that_do_not_fit_the_armed_scan_are_rejected() {
    let mut h = Harness::new();
    h.configure_ssc(0.0, 5.0, 60, 0b11);
    h.arm();
    h.dev.advance(10);
    h.pump();
    forge(&mut h, 4_000_000, 3, 0b11, Encoding::Compact);
    assert!(
        h.image().message.contains("runs past"),
        "{}",
        h.image().message
    );
    forge(&mut h, 10, 3, 0b111, Encoding::Compact);
    assert!(
        h.image().message.contains("channel_mask"),
        "{}",
        h.image().message
    );
    forge(&mut h, 10, 3, 0b11, Encoding::Raw);
    assert!(
        h.image().message.contains("encoding"),
        "{}",
        h.image().message
    );
    forge(&mut h, 2, 3, 0b11, Encoding::Compact);
    assert!(
        h.image().message.contains("goes back"),
        "{}",
        h.image().message
    );
    assert_eq!(h.image().protocol_errors, 4);
    assert_eq!(h.shown.position.len(), 10, "nothing of them shown");
    h.run_scan(10);
    let im = h.image();
    assert_eq!(
        (im.status, im.num_captured, im.lost_points),
        (Status::Done, 60, 0)
    );
    h.check_rows(1);
}

#[test]
fn a_batch_that_does_not_decode_shows_none_of_its_points() {
    let mut h = Harness::new();
    h.configure_ssc(0.0, 5.0, 30, 1);
    h.arm();
    h.dev.advance(10);
    h.pump();
    // A compact batch whose data ends mid-point: a good CRC around bad points.
    let id = h.dev.armed.expect("armed");
    let mut w = BatchWriter::new(Encoding::Compact, 1, 0);
    for i in 10..15u64 {
        w.push(&point_of(id, i, 1, i as i64)).expect("fits");
    }
    let mut b = PointBatch::from_writer(id, 10, &w);
    let short = &b.data[..b.data.len() - 2];
    b.data = short;
    let seq = h.dev.seq;
    h.dev.seq += 1;
    h.core.bytes(&frame(seq, &Message::PointBatch(b)), h.now);
    h.pump();
    assert_eq!(h.image().protocol_errors, 1);
    assert_eq!(h.shown.position.len(), 10);
    assert_eq!(h.image().num_captured, 10);
}

#[test]
fn a_sequence_number_going_back_ends_the_scan_clearly() {
    let mut h = Harness::new();
    h.configure_ssc(0.0, 5.0, 100, 1);
    h.arm();
    h.dev.advance(10);
    h.settle();
    // Same session, counter far back (no new DeviceInfo).
    h.dev.seq = h.dev.seq.wrapping_sub(10_000);
    for _ in 0..20 {
        h.dev.health();
    }
    h.settle();
    let im = h.image();
    assert_eq!(im.status, Status::Error, "{}", im.message);
    assert!(im.message.contains("went back"), "{}", im.message);
    assert!(!im.busy && !h.shown.arm);
    assert!(im.protocol_errors >= 1);
}

#[test]
fn arm_while_scanning_leaves_the_scan_alone() {
    let mut h = Harness::new();
    h.configure_ssc(0.0, 5.0, 40, 1);
    h.arm();
    h.dev.advance(10);
    h.settle();
    assert_eq!(h.image().status, Status::Scanning);
    let configures = h.dev.configures.len();
    h.write(ControlWrite::Arm(true));
    assert_eq!(h.image().status, Status::Scanning);
    assert!(
        h.image().message.contains("Arm ignored"),
        "{}",
        h.image().message
    );
    assert_eq!(h.dev.configures.len(), configures);
    h.run_scan(10);
    assert_eq!(h.image().status, Status::Done);
    assert_eq!(h.image().num_captured, 40);
}

#[test]
fn configuration_rules_refuse_before_anything_is_sent() {
    let mut h = Harness::new();
    h.configure_ssc(0.0, -20.0, 10, 1);
    h.arm();
    assert_eq!(h.image().status, Status::Error);
    assert!(
        h.image().message.contains("against"),
        "{}",
        h.image().message
    );
    // Longer than the waveforms.
    h.configure_ssc(0.0, 1.0, 10_001, 1);
    h.arm();
    assert!(
        h.image().message.contains("exceed"),
        "{}",
        h.image().message
    );
    // A list as long as the Positions record (which may have cut it).
    h.write(ControlWrite::Mode(1));
    h.write(ControlWrite::Positions(
        (0..10_000).map(f64::from).collect(),
    ));
    h.arm();
    assert!(h.image().message.contains("10000"), "{}", h.image().message);
    // Out of order for the direction.
    h.write(ControlWrite::Positions(vec![1.0, 3.0, 2.0]));
    h.arm();
    assert!(
        h.image().message.contains("out of order"),
        "{}",
        h.image().message
    );
    assert!(h.dev.configures.is_empty());
    assert!(!h.shown.arm);
    // A start/step/count scan as long as the waveforms is not bounded by the list's record.
    h.write(ControlWrite::Mode(0));
    h.configure_ssc(0.0, 1.0, 10_000, 1);
    h.arm();
    assert_eq!(h.dev.configures.len(), 1, "{}", h.image().message);
    assert_eq!(h.dev.configures[0].count, 10_000);
}

#[test]
fn all_32_channels_from_a_full_mask() {
    let mut h = Harness::new();
    h.dev = Device::with_channels(0xb007_0032, 32);
    h.settle();
    h.configure_ssc(0.0, 1.0, 12, 4_294_967_295);
    h.arm();
    h.run_scan(5);
    assert_eq!(h.image().status, Status::Done, "{}", h.image().message);
    assert_eq!(h.dev.configures[0].channel_mask, u32::MAX);
    for ch in 0..32 {
        assert_eq!(h.shown.channels[ch].len(), 12, "channel {ch}");
        h.check_rows(ch as u8);
    }
}

#[test]
fn a_list_streams_through_the_window_and_runs() {
    let mut h = Harness::new();
    let list: Vec<f64> = (0..100).map(|i| f64::from(i * 7)).collect();
    h.write(ControlWrite::Mode(1));
    h.write(ControlWrite::Positions(list.clone()));
    h.write(ControlWrite::ChannelMask(1));
    h.arm();
    assert_eq!(h.image().status, Status::Armed, "{}", h.image().message);
    h.run_scan(5);
    assert_eq!(h.image().status, Status::Done, "{}", h.image().message);
    let want: Vec<i64> = list.iter().map(|&v| v as i64).collect();
    assert_eq!(h.dev.received_positions, want);
    assert_eq!(h.shown.position, list);
}

#[test]
fn a_list_failure_mid_scan_returns_arm_to_zero() {
    let mut h = Harness::new();
    h.write(ControlWrite::Mode(1));
    h.write(ControlWrite::Positions((0..100).map(f64::from).collect()));
    h.write(ControlWrite::ChannelMask(1));
    h.arm();
    assert!(h.shown.arm);
    h.dev.advance(10);
    h.pump();
    // The device stops answering commands (chunks time out) but the line stays up.
    h.dev.deaf = true;
    h.dev.advance(5);
    h.pump();
    h.wait(Duration::from_secs(5));
    let im = h.image();
    assert_eq!(im.status, Status::Error, "{}", im.message);
    assert!(im.message.contains("PositionChunk"), "{}", im.message);
    assert!(!h.shown.arm && !im.busy);
}

#[test]
fn a_port_that_cannot_open_says_why_at_once() {
    let mut h = Harness::new();
    h.core
        .port_failed("No such file or directory (os error 2)", h.now);
    assert!(
        h.image().message.contains("os error 2"),
        "{}",
        h.image().message
    );
    assert!(h.image().message.contains("/dev/ttyTEST"));
    h.wait(Duration::from_secs(3));
    assert!(!h.image().connected);
}

#[test]
fn a_lost_frame_is_resent_and_nothing_is_lost() {
    let mut h = Harness::new();
    h.configure_ssc(0.0, 1.0, 200, 0b1);
    h.arm();
    h.dev.advance(20);
    h.dev.drop_next = 2;
    h.dev.advance(20);
    h.dev.advance(20);
    h.run_scan(20);
    let im = h.image();
    assert_eq!(
        (im.status, im.num_captured, im.lost_points),
        (Status::Done, 200, 0)
    );
    assert!(im.resends >= 1);
    h.check_rows(0);
}

#[test]
fn a_restarted_driver_takes_up_the_recorded_scan() {
    let mut h = Harness::new();
    h.configure_ssc(0.0, 1.0, 500, 1);
    h.arm();
    h.dev.advance(10);
    h.settle();
    let record = h.shown.record.expect("the running scan is recorded");
    // The driver restarts: a new core; the device ran on and its ScanArmed left the ring.
    for _ in 0..(RING as u64) {
        h.dev.advance(2);
    }
    h.dev.out.clear();
    let mut core = Core::new(CoreConfig::new("/dev/ttyTEST", 10_000));
    core.restore_record(record);
    h.core = core;
    h.core.port_opened(h.now);
    h.settle();
    h.dev.health();
    h.settle();
    assert_eq!(h.core.phase(), Phase::Running, "{}", h.image().message);
    h.run_scan(10);
    let im = h.image();
    assert_eq!(im.status, Status::Done, "{}", im.message);
    assert_eq!(im.num_captured + im.lost_points, 500);
    assert!(im.lost_points > 0 && im.lost_points < 500);
    h.check_rows(0);
}

#[test]
fn a_time_scan_runs_and_its_bins_begin_at_the_previous_period() {
    let mut h = Harness::new();
    h.write(ControlWrite::Mode(2));
    // 100 ticks of the 1 MHz device clock: the period the test device's timestamps keep.
    h.write(ControlWrite::Period(1e-4));
    h.write(ControlWrite::NPoints(30));
    h.write(ControlWrite::Start(5000.0));
    h.write(ControlWrite::ChannelMask(0b11));
    // Bragg angles near 20°: finite energies at every position.
    h.write(ControlWrite::AngleOffset(-200_000.0));
    h.arm();
    let cfg = *h.dev.configures.last().expect("configured");
    assert_eq!(cfg.mode, TriggerMode::Time);
    assert_eq!(
        (cfg.step, cfg.direction, cfg.gate_span),
        (100, flyscan_protocol::Direction::Either, 0)
    );
    h.run_scan(7);
    assert_eq!(h.image().status, Status::Done, "{}", h.image().message);
    assert_eq!(h.image().num_captured, 30);
    // No window: the Start record is not part of a time scan.
    assert_eq!(
        h.shown.position[4],
        f64::from(3 * 4),
        "positions are the device's"
    );
    assert!(
        h.shown.energy_start[0].is_nan(),
        "the first bin began at the arm"
    );
    for i in 1..30 {
        assert!(h.shown.energy[i].is_finite());
        assert_eq!(h.shown.energy_start[i], h.shown.energy[i - 1], "point {i}");
    }
    // A period shorter than 10 µs of the device's clock is refused before anything is sent.
    let sent = h.dev.configures.len();
    h.write(ControlWrite::Period(5e-6));
    h.arm();
    assert_eq!(h.image().status, Status::Error);
    assert!(
        h.image().message.contains("period"),
        "{}",
        h.image().message
    );
    assert_eq!(h.dev.configures.len(), sent);
}
