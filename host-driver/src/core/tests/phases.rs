//! Drives the core through every row of [`crate::core::phase::TABLE`]: from the row's phase,
//! the row's input must lead to the row's phase and Status. The documents print the same
//! table (checked in `tests/docs.rs`), so what they say is what the code does.

use super::*;
use crate::core::phase::{On, TABLE};

/// A harness brought into `phase`.
fn reach(phase: Phase) -> Harness {
    let mut h = Harness::new();
    let list = matches!(phase, Phase::Loading);
    if list {
        h.write(ControlWrite::Mode(1));
        h.write(ControlWrite::Positions((0..40).map(f64::from).collect()));
        h.write(ControlWrite::ChannelMask(1));
    } else {
        h.configure_ssc(0.0, 1.0, 100, 1);
    }
    match phase {
        Phase::Idle => {}
        Phase::Configuring => {
            h.dev.hold = true;
            h.write(ControlWrite::Arm(true));
        }
        Phase::Loading | Phase::Arming => {
            h.dev.hold = true;
            h.write(ControlWrite::Arm(true));
            h.dev.release();
            h.pump();
        }
        Phase::Armed => {
            h.dev.drop_types.push(MessageType::ScanArmed);
            h.arm();
        }
        Phase::Running => {
            h.arm();
            h.dev.advance(5);
            h.settle();
        }
        Phase::Aborting => {
            h.arm();
            h.dev.advance(5);
            h.settle();
            h.dev.hold = true;
            h.write(ControlWrite::Abort(true));
        }
    }
    assert_eq!(
        h.core.phase(),
        phase,
        "reaching {phase}: {}",
        h.image().message
    );
    h
}

fn apply(h: &mut Harness, from: Phase, on: On) {
    match on {
        On::Arm => {
            h.dev.hold = true;
            h.write(ControlWrite::Arm(true));
        }
        On::ArmAgain => h.write(ControlWrite::Arm(true)),
        On::ArmRefused => {
            h.write(ControlWrite::NPoints(0));
            h.write(ControlWrite::Arm(true));
        }
        On::Abort => {
            // The device's answer (ScanDone) is another row.
            h.dev.hold = true;
            h.write(ControlWrite::Abort(true));
        }
        On::ConfigureAck | On::ChunkAck | On::ArmAck => {
            if on == On::ArmAck {
                // The ack alone: ScanArmed is still on its way.
                h.dev.drop_types.push(MessageType::ScanArmed);
            }
            h.dev.release();
            h.pump();
        }
        On::Nak => {
            h.dev.nak_next = Some(NakCode::Busy);
            h.dev.release();
            h.pump();
        }
        On::NoReply => {
            h.dev.deaf = true;
            h.dev.release();
            h.wait(Duration::from_secs(4));
        }
        On::ScanArmed => {
            if from == Phase::Arming {
                // The Arm ack is lost, ScanArmed arrives.
                h.dev.drop_types.push(MessageType::CommandReply);
                h.dev.hold = false;
                h.dev.release();
                h.pump();
            } else {
                // A later frame shows the gap; the resend brings ScanArmed.
                h.dev.health();
                h.settle();
            }
        }
        On::Batch => {
            h.dev.advance(5);
            h.pump();
        }
        On::BadFrame => {
            let seq = h.dev.seq;
            h.dev.seq += 1;
            h.core
                .bytes(&batch_frame(seq, 31337, 0, 3, 1, Encoding::Compact), h.now);
            h.pump();
        }
        On::ScanDone => {
            if from == Phase::Aborting {
                h.dev.hold = false;
                h.dev.release();
            } else {
                h.dev.finish();
            }
            h.settle();
        }
        On::DeviceRestart => {
            h.dev = Device::new(0xfeed_0001);
            h.pump();
        }
        On::SeqBack => {
            h.dev.seq = h.dev.seq.wrapping_sub(100_000);
            for _ in 0..20 {
                h.dev.health();
            }
            h.pump();
        }
        On::Silence => {
            h.cut = true;
            h.wait(Duration::from_secs(31));
        }
        On::PortLost => {
            h.core.port_closed("Input/output error (os error 5)", h.now);
            h.pump();
        }
    }
}

#[test]
fn every_row_of_the_table_is_what_the_core_does() {
    for row in TABLE {
        let mut h = reach(row.from);
        let status_before = h.image().status;
        apply(&mut h, row.from, row.on);
        let what = format!("{:?} on {:?}: {}", row.from, row.on, h.image().message);
        assert_eq!(h.core.phase(), row.to, "{what}");
        let want = row.status.unwrap_or(status_before);
        assert_eq!(h.image().status, want, "{what}");
        if row.to == Phase::Idle && row.from != Phase::Idle {
            assert!(
                !h.image().busy && !h.shown.arm,
                "{what}: Busy/Arm not back to 0"
            );
        }
    }
}

#[test]
fn the_rendered_table_has_every_row() {
    let t = crate::core::phase::render_table();
    assert_eq!(t.lines().count(), TABLE.len() + 2);
}
