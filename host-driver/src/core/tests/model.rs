//! Model-based test: random sequences of control writes, device behaviour (good frames, lost
//! frames, foreign and out-of-order frames, restarts, silence) and time, with the invariants
//! of the control plane checked after every step:
//!
//! * nothing invalid is sent to the device (every `Configure` passes the protocol's rules,
//!   list chunks go out in order from offset 0);
//! * nothing of a foreign scan is shown (rows only of the scan the core started, every value
//!   the device's);
//! * `Busy` and `Arm` are 0 whenever no scan is in progress (after Done, Error, Abort);
//! * once everything has settled, `NumCaptured + LostPoints = NumExpected`.

use super::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Act {
    Write(ControlWrite),
    Arm,
    Abort,
    Advance(u64),
    DropNext(usize),
    Foreign,
    OutOfOrder,
    Restart,
    Wait(u64),
    Cut,
    Mend,
    Health,
}

fn write() -> impl Strategy<Value = ControlWrite> {
    prop_oneof![
        (0u16..3).prop_map(ControlWrite::Mode),
        prop_oneof![Just(0.0), Just(-50.0), Just(0.5), -1000.0..1000.0f64]
            .prop_map(|v: f64| ControlWrite::Start(v.round())),
        prop_oneof![Just(0.0), Just(1.0), Just(-3.0), Just(7.0), Just(2.5)]
            .prop_map(ControlWrite::Step),
        (-2i64..300).prop_map(ControlWrite::NPoints),
        prop::collection::vec(-500i32..500, 0..60).prop_map(|mut v| {
            // Mostly ordered lists (valid for direction positive), sometimes not.
            if v.len() % 3 != 0 {
                v.sort_unstable();
                v.dedup();
            }
            ControlWrite::Positions(v.into_iter().map(f64::from).collect())
        }),
        (0u16..5).prop_map(ControlWrite::Direction),
        (-1i64..4).prop_map(ControlWrite::Passes),
        prop_oneof![
            Just(0i64),
            Just(1),
            Just(0b1011),
            Just(0x1ff),
            Just(-1),
            Just(255)
        ]
        .prop_map(ControlWrite::ChannelMask),
        (0u16..3).prop_map(ControlWrite::Encoding),
    ]
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        4 => write().prop_map(Act::Write),
        3 => Just(Act::Arm),
        1 => Just(Act::Abort),
        6 => (1u64..40).prop_map(Act::Advance),
        1 => (1usize..4).prop_map(Act::DropNext),
        1 => Just(Act::Foreign),
        1 => Just(Act::OutOfOrder),
        1 => Just(Act::Restart),
        2 => (20u64..3000).prop_map(Act::Wait),
        1 => Just(Act::Cut),
        1 => Just(Act::Mend),
        1 => Just(Act::Health),
    ]
}

fn check(h: &Harness) {
    // Nothing invalid sent.
    let limits = Limits::device(8, 100_000, WINDOW);
    let mut next_chunk = 0u32;
    for (_, t, payload) in &h.shown.sent {
        let msg = Message::parse(*t, payload).expect("the core sends valid frames");
        match msg {
            Message::Configure(c) => {
                c.validate(&limits).expect("every Configure is valid");
                next_chunk = 0;
            }
            Message::PositionChunk { offset, positions } => {
                assert_eq!(offset, next_chunk, "chunks in order from 0");
                next_chunk += positions.len() as u32;
            }
            _ => {}
        }
    }
    // Only the device's values of the started scan are shown.
    for ch in 0..8 {
        h.check_rows(ch);
    }
    // Busy and Arm at rest.
    if h.core.phase() == Phase::Idle {
        assert!(!h.image().busy, "Busy at rest: {}", h.image().message);
        assert!(!h.shown.arm, "Arm at rest: {}", h.image().message);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn control_plane_invariants(acts in prop::collection::vec(act(), 1..40)) {
        let mut h = Harness::new();
        let mut boot = 0xb007_1000u32;
        for a in acts {
            match a {
                Act::Write(w) => h.write(w),
                Act::Arm => h.write(ControlWrite::Arm(true)),
                Act::Abort => h.write(ControlWrite::Abort(true)),
                Act::Advance(n) => {
                    h.dev.advance(n);
                    h.pump();
                }
                Act::DropNext(k) => h.dev.drop_next = k,
                Act::Foreign => {
                    let seq = h.dev.seq;
                    h.dev.seq += 1;
                    h.core.bytes(&batch_frame(seq, 77, 0, 4, 0b1011, Encoding::Compact), h.now);
                    h.pump();
                }
                Act::OutOfOrder => {
                    if let Some(id) = h.dev.armed {
                        let seq = h.dev.seq;
                        h.dev.seq += 1;
                        h.core.bytes(&batch_frame(seq, id, 0, 2, 0b1011, Encoding::Compact), h.now);
                        h.pump();
                    }
                }
                Act::Restart => {
                    boot += 1;
                    h.dev = Device::new(boot);
                    h.pump();
                }
                Act::Wait(ms) => h.wait(Duration::from_millis(ms)),
                Act::Cut => h.cut = true,
                Act::Mend => h.cut = false,
                Act::Health => {
                    h.dev.health();
                    h.pump();
                }
            }
            check(&h);
        }
        // Settle: the line mends, the device finishes what it runs, time passes.
        h.cut = false;
        h.dev.drop_next = 0;
        h.dev.hold = false;
        h.dev.release();
        for _ in 0..45 {
            while h.dev.advance(50) > 0 {
                h.pump();
            }
            h.dev.finish();
            h.wait(Duration::from_secs(1));
        }
        check(&h);
        prop_assert_eq!(h.core.phase(), Phase::Idle, "{}", h.image().message);
        let im = h.image();
        prop_assert_eq!(im.num_captured + im.lost_points, im.num_expected, "{}", im.message);
        prop_assert_eq!(h.shown.position.len() as u64, im.num_expected);
    }
}
