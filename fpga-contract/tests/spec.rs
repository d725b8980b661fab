//! Keeps FPGA.md honest: every table of commands, registers, record fields, socket bytes and
//! gateware timing is checked against the crate's constants, and every worked example against
//! the reference model.
#![allow(clippy::unwrap_used)]

use flyscan_fpga_contract::model::{ModelConfig, RefModel};
use flyscan_fpga_contract::regs::{self, reg};
use flyscan_fpga_contract::socket::{self, kind};
use flyscan_fpga_contract::vectors;
use flyscan_fpga_contract::{EdgeEvent, Snapshot};

fn spec() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware-odroid/FPGA.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// Rows of the markdown table that follows `heading` (cells trimmed, backticks removed).
fn table(heading: &str) -> Vec<Vec<String>> {
    let text = spec();
    let at = text
        .find(heading)
        .unwrap_or_else(|| panic!("FPGA.md has no {heading:?}"));
    text[at..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and rule
        .map(|l| {
            // `\|` is a pipe inside a cell.
            l.replace("\\|", "\u{1}")
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().replace('`', "").replace('\u{1}', "|"))
                .collect()
        })
        .collect()
}

fn hex(s: &str) -> u32 {
    let s = s.trim();
    u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_else(|_| panic!("hex {s:?}"))
}

/// Hex bytes in a string like "`01 E1 F5 05`".
fn bytes(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).unwrap_or_else(|_| panic!("byte {h:?}")))
        .collect()
}

#[test]
fn command_table_matches_the_constants() {
    let rows = table("### Commands");
    let want = [
        ("READ_REG", regs::CMD_READ_REG),
        ("WRITE_REG", regs::CMD_WRITE_REG),
        ("READ_EDGES", regs::CMD_READ_EDGES),
        ("READ_SNAPSHOT", regs::CMD_READ_SNAPSHOT),
    ];
    assert_eq!(rows.len(), want.len(), "{rows:?}");
    for (row, (name, cmd)) in rows.iter().zip(want) {
        assert_eq!(row[1], name);
        assert_eq!(hex(&row[0]) as u8, cmd, "{name}");
        // The header column spells the header's fields: one token per byte, the command first.
        let header: Vec<&str> = row[2]
            .split('(')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        assert_eq!(
            Some(header.len()),
            regs::header_len(cmd),
            "{name} header {header:?}"
        );
        assert_eq!(hex(header[0]) as u8, cmd, "{name}");
    }
    assert_eq!(regs::header_len(0x00), None);
    assert_eq!(regs::header_len(0x05), None);
    let edges = &rows[2][3];
    assert!(
        edges.contains(&format!("slots of {}", regs::EDGE_EVENT_LEN)),
        "{edges}"
    );
    assert!(rows[2][2].contains(&format!("n ≤ {}", regs::MAX_EDGES_PER_READ)));
}

#[test]
fn register_map_matches_the_constants() {
    let want: &[(&str, u8, &str)] = &[
        ("ID", reg::ID, "R"),
        ("VERSION", reg::VERSION, "R"),
        ("CLOCK_HZ", reg::CLOCK_HZ, "R"),
        ("N_CHANNELS", reg::N_CHANNELS, "R"),
        ("COUNTER_BITS", reg::COUNTER_BITS, "R"),
        ("EDGE_FIFO_DEPTH", reg::EDGE_FIFO_DEPTH, "R"),
        ("SNAPSHOT_DEPTH", reg::SNAPSHOT_DEPTH, "R"),
        ("CONTROL", reg::CONTROL, "R/W"),
        ("STATUS", reg::STATUS, "R"),
        ("EDGE_FIFO_LEVEL", reg::EDGE_FIFO_LEVEL, "R"),
        ("OVERRUN_COUNT", reg::OVERRUN_COUNT, "R"),
        ("AB_NOW", reg::AB_NOW, "R"),
        ("TIME_LO", reg::TIME_LO, "R"),
        ("TIME_HI", reg::TIME_HI, "R"),
        ("PERIOD", reg::PERIOD, "R/W"),
    ];
    let rows = table("### Register map");
    assert_eq!(rows.len(), want.len(), "{rows:?}");
    for (row, &(name, addr, access)) in rows.iter().zip(want) {
        assert_eq!(row[1], name);
        assert_eq!(hex(&row[0]) as u8, addr, "{name}");
        assert_eq!(row[2], access, "{name}");
    }
    assert!(rows[0][3].contains(&format!("0x{:08X}", regs::ID_MAGIC)));
    let version = &rows[1][3];
    assert!(version.contains("major << 16"), "{version}");
    assert!(version.contains(&format!("accepts major {}", regs::VERSION >> 16)));
    assert!(
        version.contains(&format!(
            "minor ≥ {} has the period timer",
            regs::PERIOD_MINOR
        )) && regs::has_period_timer(regs::VERSION)
            && !regs::has_period_timer(regs::version(1, 0)),
        "{version}"
    );
    let control = &rows[7][3];
    for (bit, what) in [
        (regs::CONTROL_ENABLE, "capture enable"),
        (regs::CONTROL_RESET, "reset counters"),
        (regs::CONTROL_RESET, "stop the period timer"),
        (regs::CONTROL_CLEAR_FIFO, "clear the edge FIFO"),
    ] {
        let at = control
            .find(&format!("bit {}", bit.trailing_zeros()))
            .unwrap_or_else(|| panic!("CONTROL row names no bit for {what}"));
        let next = control[at + 5..]
            .find("bit ")
            .map_or(control.len(), |i| at + 5 + i);
        assert!(control[at..next].contains(what), "CONTROL bit of {what}");
    }
    let status = &rows[8][3];
    assert!(status.contains(&format!(
        "bit {} data ready",
        regs::STATUS_READY.trailing_zeros()
    )));
    assert!(status.contains(&format!(
        "bit {} overrun",
        regs::STATUS_OVERRUN.trailing_zeros()
    )));
    let ab = &rows[11][3];
    assert!(
        ab.contains("bit 0 A, bit 1 B") && regs::AB_MASK == 0b11,
        "{ab}"
    );
}

#[test]
fn edge_event_table_matches_the_codec() {
    let rows = table("Edge event slot");
    let probe = EdgeEvent {
        timestamp: 0x1111_1111_1111_1111,
        seq: 0x2222_2222,
        ab: 0x03,
        flags: 0x01,
    };
    let b = probe.to_bytes();
    let mut end = 0;
    for row in &rows {
        let offset: usize = row[0].parse().unwrap();
        assert_eq!(offset, end, "fields are contiguous: {row:?}");
        let size = match row[2].as_str() {
            "u64" => 8,
            "u32" => 4,
            "u8" => 1,
            t => panic!("type {t}"),
        };
        let fill = match row[1].as_str() {
            "timestamp" => 0x11,
            "seq" => 0x22,
            "ab" => 0x03,
            "flags" => 0x01,
            f => panic!("field {f}"),
        };
        assert!(
            b[offset..offset + size].iter().all(|&x| x == fill),
            "{row:?}"
        );
        end = offset + size;
    }
    assert_eq!(end, regs::EDGE_EVENT_LEN);
    let flags = &rows[3][3];
    for (bit, name) in [
        (regs::EDGE_FLAG_OVERRUN, "OVERRUN"),
        (regs::EDGE_FLAG_PERIOD, "PERIOD"),
        (regs::EDGE_FLAG_PERIOD_START, "PERIOD_START"),
    ] {
        assert!(
            flags.contains(&format!("bit {} {name}:", bit.trailing_zeros())),
            "{name}: {flags}"
        );
    }
    assert!(flags.contains("bits 3–7 are 0"), "{flags}");
}

/// The worked examples of §Commands, run on the reference model.
#[test]
fn examples_hold_on_the_reference_model() {
    let text = spec();
    // A list item with its continuation lines.
    let line = |prefix: &str| {
        let mut lines = text
            .lines()
            .skip_while(|l| !l.trim_start().starts_with(prefix));
        let first = lines
            .next()
            .unwrap_or_else(|| panic!("FPGA.md has no example {prefix:?}"));
        let rest = lines
            .take_while(|l| l.starts_with("  "))
            .collect::<Vec<_>>();
        format!("{first} {}", rest.join(" "))
    };
    // "write `01 02`, read `00 E1 F5 05`": the quoted groups that are hex bytes.
    let quoted = |l: &str| -> Vec<Vec<u8>> {
        l.split('`')
            .skip(1)
            .step_by(2)
            .filter(|g| {
                g.split_whitespace()
                    .all(|t| t.len() == 2 && t.chars().all(|c| c.is_ascii_hexdigit()))
            })
            .map(bytes)
            .collect::<Vec<_>>()
    };
    let mut m = RefModel::new(ModelConfig {
        n_channels: 2,
        ..ModelConfig::default()
    });
    let ex = quoted(&line("* read `CLOCK_HZ` = 100 000 000"));
    let (w, r) = (&ex[0], &ex[1]);
    let mut mosi = w.clone();
    mosi.resize(w.len() + r.len(), 0);
    assert_eq!(&m.exchange_vec(&mosi)[w.len()..], &r[..]);

    let ex = quoted(&line("* write `CONTROL` = 1"));
    assert_eq!(m.exchange_vec(&ex[0]), vec![0; ex[0].len()]);
    assert_eq!(m.read_reg(reg::CONTROL), 1);

    // READ_EDGES of up to 2 events with 1 pending.
    let ex = quoted(&line("* READ_EDGES of up to 2 events with 1 pending"));
    m.advance(10);
    m.set_ab(1);
    let mut mosi = ex[0].clone();
    mosi.resize(3 + regs::read_edges_len(2), 0);
    let miso = m.exchange_vec(&mosi);
    assert_eq!(&miso[3..5], &ex[1][..]);
    assert_ne!(&miso[5..19], &[0; 14], "the event");
    assert_eq!(&miso[19..], &[0; 14]);

    // READ_SNAPSHOT of edge 5 with 2 channels: 17 bytes beginning `01 05 00 00 00`.
    let l = line("* READ_SNAPSHOT of edge 5 with 2 channels");
    let ex = quoted(&l);
    for _ in 0..5 {
        m.advance(3);
        m.set_ab(m.ab() ^ 1);
    }
    let mut mosi = ex[0].clone();
    mosi.resize(5 + regs::snapshot_len(2), 0);
    let miso = m.exchange_vec(&mosi);
    let resp = l.split('`').nth(3).expect("the response is quoted");
    let start = bytes(resp.split('|').next().unwrap_or(""));
    assert_eq!(&miso[5..10], &start[..]);
    assert!(l.contains(&format!("({} bytes)", regs::snapshot_len(2))));
    let mut s = Snapshot::default();
    s.decode_into(&miso[5..], 2, 5);
    assert!(s.valid);
    assert!(
        text.contains(&format!(
            "snapshot_len(N_CHANNELS) = {} + {}·N_CHANNELS",
            regs::snapshot_len(0),
            regs::snapshot_len(1) - regs::snapshot_len(0)
        )),
        "the snapshot length formula"
    );
}

/// The period timer's worked example (§Period timer) and the `PERIOD` write example of
/// §Commands, on the reference model.
#[test]
fn period_timer_example_holds_on_the_reference_model() {
    let text = spec();
    let at = text.find("### Period timer").expect("the section");
    let section = &text[at..];
    let block = section
        .split("```text")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the event listing");
    let want: Vec<Vec<u8>> = block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let b = bytes(
                &l.split_whitespace()
                    .take(regs::EDGE_EVENT_LEN)
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            assert_eq!(b.len(), regs::EDGE_EVENT_LEN, "{l}");
            b
        })
        .collect();
    assert_eq!(want.len(), 3);
    // One channel, capture on after the reset sequence at cycle 0, one pulse every 10 cycles.
    let mut m = RefModel::new(ModelConfig {
        n_channels: 1,
        ..ModelConfig::default()
    });
    m.write_reg(reg::CONTROL, regs::CONTROL_RESET | regs::CONTROL_CLEAR_FIFO);
    m.write_reg(reg::CONTROL, regs::CONTROL_ENABLE);
    let pulse_until = |m: &mut RefModel, end: u64| {
        while m.now() < end {
            if m.now().is_multiple_of(10) {
                m.count(0, 1);
            }
            m.advance(1);
        }
    };
    pulse_until(&mut m, 5000);
    assert!(section.contains("`PERIOD` = 1000 is written so that it executes on cycle 5000"));
    m.write_reg(reg::PERIOD, 1000);
    if m.now().is_multiple_of(10) {
        m.count(0, 1);
    }
    m.advance(1);
    pulse_until(&mut m, 6000);
    assert!(section.contains(
        "an edge to A/B =
`01` is sampled on cycle 6000"
    ));
    m.set_ab(0b01);
    m.count(0, 1);
    m.advance(1);
    pulse_until(&mut m, 7500);
    m.write_reg(reg::PERIOD, 0);
    pulse_until(&mut m, 9000);
    let mut mosi = vec![0u8; 3 + regs::read_edges_len(4)];
    mosi[..3].copy_from_slice(&[regs::CMD_READ_EDGES, 4, 0]);
    let miso = m.exchange_vec(&mosi);
    assert_eq!(u16::from_le_bytes([miso[3], miso[4]]), 3);
    for (i, w) in want.iter().enumerate() {
        let at = 5 + i * regs::EDGE_EVENT_LEN;
        assert_eq!(&miso[at..at + regs::EDGE_EVENT_LEN], &w[..], "event {i}");
    }
    let mut snap = Snapshot::default();
    let mut lives = Vec::new();
    for seq in 0..3u32 {
        let mut mosi = vec![0u8; 5 + regs::snapshot_len(1)];
        mosi[0] = regs::CMD_READ_SNAPSHOT;
        mosi[1..5].copy_from_slice(&seq.to_le_bytes());
        snap.decode_into(&m.exchange_vec(&mosi)[5..], 1, seq);
        assert!(snap.valid);
        lives.push((snap.live, snap.counts[0]));
    }
    assert!(section.contains("hold live times 5000, 6000 and 7000"));
    assert_eq!(
        lives,
        [(5000, 500), (6000, 600), (7000, 700)],
        "period 1: live 1000 and the pulses of cycles 5000 … 5999"
    );

    // §Commands: "start the period timer at 1000 clocks: write `02 0F E8 03 00 00`".
    let l = text
        .lines()
        .find(|l| l.contains("* start the period timer at 1000 clocks"))
        .expect("the example");
    let w = bytes(l.split('`').nth(1).expect("quoted bytes"));
    let mut m = RefModel::new(ModelConfig::default());
    m.write_reg(reg::CONTROL, regs::CONTROL_ENABLE);
    m.advance(7);
    assert_eq!(m.exchange_vec(&w), vec![0; w.len()]);
    assert_eq!(m.read_reg(reg::PERIOD), 1000);
    m.advance(1000);
    assert_eq!(m.fifo_level(), 2, "the start event and period 1");
}

#[test]
fn socket_tables_match_the_constants() {
    let rows = table("## Simulator socket");
    let want = [
        ("transaction", socket::REQ_TRANSACTION),
        ("data ready", socket::REQ_DATA_READY),
        ("quit", socket::REQ_QUIT),
    ];
    assert_eq!(rows.len(), want.len());
    for (row, (name, byte)) in rows.iter().zip(want) {
        assert_eq!(row[0], name);
        let spelled = format!("'{}' (0x{byte:02X})", byte as char);
        assert!(row[1].starts_with(&spelled), "{name}: {:?}", row[1]);
    }
    let kinds = table("Operation encoding");
    let want = [
        ("Write(buf)", kind::WRITE),
        ("Read(buf)", kind::READ),
        ("Transfer(read, write)", kind::TRANSFER),
        ("TransferInPlace(buf)", kind::TRANSFER_IN_PLACE),
        ("DelayNs(ns)", kind::DELAY_NS),
    ];
    assert_eq!(kinds.len(), want.len());
    for (row, (op, k)) in kinds.iter().zip(want) {
        assert_eq!(row[0].parse::<u8>().unwrap(), k, "{op}");
        assert_eq!(row[1], op);
    }
}

#[test]
fn gateware_timing_table_matches_the_constants() {
    let rows = table("Its timing, in sampling-clock cycles");
    let want = [
        ("INPUT_LATENCY", vectors::INPUT_LATENCY),
        ("SPI_EXEC_LATENCY", vectors::SPI_EXEC_LATENCY),
        ("MIN_CS_HIGH", vectors::MIN_CS_HIGH),
        ("MIN_CLOCKS_PER_SCLK", vectors::MIN_CLOCKS_PER_SCLK),
    ];
    assert_eq!(rows.len(), want.len());
    for (row, (name, v)) in rows.iter().zip(want) {
        assert_eq!(row[0], name);
        assert_eq!(row[1].parse::<u64>().unwrap(), v, "{name}");
    }
    assert!(
        rows[3][2].contains(&format!("CLOCK_HZ / {}", vectors::MIN_CLOCKS_PER_SCLK)),
        "{:?}",
        rows[3]
    );
}
