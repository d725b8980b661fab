//! The committed test vectors (`gateware/vectors/*.jsonl`, replayed against the gateware by
//! `gateware/tests/test_vectors.py`) are exactly what the reference model generates now, and
//! each set exercises what it is named for. `FLYSCAN_BLESS=1` rewrites the files.
#![allow(clippy::unwrap_used)]

use flyscan_fpga_contract::regs::{self, reg};
use flyscan_fpga_contract::vectors::{self, Step, VectorSet};
use flyscan_fpga_contract::{EdgeEvent, Snapshot};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../gateware/vectors")
}

#[test]
fn committed_vectors_are_current() {
    let bless = std::env::var_os("FLYSCAN_BLESS").is_some();
    let sets = vectors::all();
    let mut names: Vec<String> = Vec::new();
    for set in &sets {
        let path = dir().join(format!("{}.jsonl", set.name));
        let want = set.to_jsonl();
        if bless {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run `cargo run -p flyscan-fpga-contract --bin fpga-vectors -- gateware/vectors`)",
                path.display()
            )
        });
        assert!(
            have == want,
            "{} is stale: regenerate with `cargo run -p flyscan-fpga-contract --bin fpga-vectors -- gateware/vectors`",
            path.display()
        );
        names.push(format!("{}.jsonl", set.name));
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jsonl"))
        .collect();
    on_disk.sort();
    names.sort();
    assert_eq!(on_disk, names, "no stray vector files");
}

fn set(name: &str) -> VectorSet {
    vectors::all().into_iter().find(|s| s.name == name).unwrap()
}

/// (MOSI, MISO after the header) of every transaction whose MOSI starts with `prefix`.
fn answers(s: &VectorSet, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    s.steps
        .iter()
        .filter_map(|st| match st {
            Step::Spi { mosi, miso, .. } if mosi.starts_with(prefix) => {
                let h = regs::header_len(mosi[0]).unwrap_or(0).min(mosi.len());
                Some((mosi.clone(), miso[h..].to_vec()))
            }
            _ => None,
        })
        .collect()
}

fn reg_reads(s: &VectorSet, addr: u8) -> Vec<u32> {
    answers(s, &[regs::CMD_READ_REG, addr])
        .into_iter()
        .filter(|(m, _)| m.len() == 6)
        .map(|(_, r)| u32::from_le_bytes([r[0], r[1], r[2], r[3]]))
        .collect()
}

fn events(s: &VectorSet) -> Vec<EdgeEvent> {
    answers(s, &[regs::CMD_READ_EDGES])
        .into_iter()
        .flat_map(|(_, r)| {
            let count = usize::from(u16::from_le_bytes([r[0], r[1]]));
            r[2..]
                .chunks_exact(regs::EDGE_EVENT_LEN)
                .take(count)
                .map(|c| EdgeEvent::from_bytes(c.try_into().unwrap()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn snapshots(s: &VectorSet) -> Vec<(u32, Snapshot)> {
    let n = usize::from(s.cfg.n_channels);
    answers(s, &[regs::CMD_READ_SNAPSHOT])
        .into_iter()
        .map(|(m, r)| {
            let seq = u32::from_le_bytes([m[1], m[2], m[3], m[4]]);
            let mut snap = Snapshot::default();
            snap.decode_into(&r, n, seq);
            (seq, snap)
        })
        .collect()
}

#[test]
fn each_set_covers_its_case() {
    let s = set("registers");
    let hi = reg_reads(&s, reg::TIME_HI);
    assert!(
        hi.contains(&0) && hi.contains(&1),
        "TIME_HI before and after the carry: {hi:?}"
    );
    assert_eq!(reg_reads(&s, reg::ID)[0], regs::ID_MAGIC);

    let s = set("edges");
    let ev = events(&s);
    assert_eq!(ev.len(), 5);
    assert!(ev.windows(2).all(|w| w[1].timestamp > w[0].timestamp));
    let snaps = snapshots(&s);
    assert!(snaps.iter().filter(|(_, x)| x.valid).count() >= 5);
    assert!(snaps.iter().any(|(_, x)| x.counts.iter().any(|&c| c > 0)));

    let s = set("simultaneous_ab");
    assert!(
        events(&s).iter().any(|e| e.ab == 0b11),
        "A and B in one event"
    );

    let s = set("fifo_overrun");
    let ev = events(&s);
    assert!(ev.iter().any(|e| e.overrun()), "the OVERRUN flag");
    assert!(
        ev.windows(2).any(|w| w[1].seq > w[0].seq + 1),
        "a gap in seq"
    );
    assert!(reg_reads(&s, reg::OVERRUN_COUNT)[0] > 0);
    assert!(
        reg_reads(&s, reg::STATUS)
            .iter()
            .any(|v| v & regs::STATUS_OVERRUN != 0)
    );

    let s = set("snapshot_overwrite");
    let snaps = snapshots(&s);
    assert!(
        snaps
            .iter()
            .any(|(q, x)| !x.valid && x.seq != *q && x.seq != 0),
        "an overwritten slot echoes its newer seq"
    );
    assert!(
        snaps.iter().any(|(q, x)| !x.valid && x.seq == *q),
        "stale after a reset"
    );

    let s = set("counter_wrap");
    let snaps = snapshots(&s);
    assert!(
        snaps
            .iter()
            .any(|(_, x)| x.valid && x.counts[0] == 300 % 256)
    );
    assert!(snaps.iter().all(|(_, x)| x.live < 256));

    let s = set("aborted");
    let cut = answers(&s, &[regs::CMD_READ_EDGES])
        .into_iter()
        .find(|(m, _)| m.len() > 3 && m.len() < 3 + regs::read_edges_len(3))
        .unwrap();
    assert_eq!(
        u16::from_le_bytes([cut.1[0], cut.1[1]]),
        3,
        "count fixed by the header"
    );
    let levels = reg_reads(&s, reg::EDGE_FIFO_LEVEL);
    assert_eq!(
        &levels[..2],
        &[3, 2],
        "only the completely sent event left the FIFO"
    );

    let s = set("period");
    let ev = events(&s);
    let start = regs::EDGE_FLAG_PERIOD | regs::EDGE_FLAG_PERIOD_START;
    let starts: Vec<&EdgeEvent> = ev.iter().filter(|e| e.period_start()).collect();
    assert!(
        starts.len() >= 3,
        "start, restart and the start before the reset"
    );
    let first = starts[0].timestamp;
    assert!(
        ev.iter().any(|e| e.flags == start
            && e.timestamp > first
            && (e.timestamp - first).is_multiple_of(3000)),
        "a restart on a period event's cycle is one event with both flags"
    );
    assert!(
        ev.windows(2).any(|w| w[1].flags == regs::EDGE_FLAG_PERIOD
            && w[1].ab != w[0].ab
            && (w[1].timestamp - first).is_multiple_of(3000)),
        "an edge on a period event's cycle is that event"
    );
    assert!(
        ev.windows(2).any(|w| w[0].flags == 0 && w[1].period()),
        "a lone edge between period events"
    );
    assert!(
        ev.iter().any(|e| e.overrun() && e.period()),
        "period events dropped on a full FIFO"
    );
    assert!(
        ev.windows(2).any(|w| w[1].seq > w[0].seq + 1),
        "a gap in seq"
    );
    assert_eq!(
        reg_reads(&s, reg::PERIOD),
        [3000, 0, 0],
        "read back, after a stop, after a reset"
    );
    let snaps = snapshots(&s);
    let live = |q: u32| {
        snaps
            .iter()
            .find(|(x, sn)| *x == q && sn.valid)
            .map(|(_, sn)| sn.live)
    };
    assert_eq!(
        live(2).zip(live(0)).map(|(b, a)| b - a),
        Some(3000),
        "the snapshots of the start and of period 1 are one period apart"
    );
    assert!(snaps.iter().any(|(_, x)| !x.valid), "overwritten slots");
}
