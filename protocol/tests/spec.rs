//! Keeps PROTOCOL.md honest: every worked example's hex is checked against the encoder and the
//! decoder, and every table of codes and limits against the crate's constants.

use flyscan_protocol::config::{ConfigError, SCAN_CONFIG_LEN};
use flyscan_protocol::limits::*;
use flyscan_protocol::point::{BATCH_HEADER_LEN, Counts, MAX_BATCH_DATA};
use flyscan_protocol::varint::{MAX_VARINT_LEN, encode_u64, parse_u64, zigzag};
use flyscan_protocol::{
    BatchWriter, CommandReply, Deframer, Direction, Encoding, Message, MessageType, NakCode, Point,
    PointBatch, PointFlags, ScanConfig, TriggerMode,
};

fn spec() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/PROTOCOL.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The bytes of the ```hex example=NAME block (text after `#` on a line is a comment).
fn example(name: &str) -> Vec<u8> {
    let text = spec();
    let fence = format!("```hex example={name}\n");
    let start = text
        .find(&fence)
        .unwrap_or_else(|| panic!("PROTOCOL.md has no example {name}"))
        + fence.len();
    let end = start
        + text[start..]
            .find("```")
            .unwrap_or_else(|| panic!("example {name} not closed"));
    text[start..end]
        .lines()
        .flat_map(|l| l.split('#').next().unwrap_or("").split_whitespace())
        .map(|h| {
            u8::from_str_radix(h, 16).unwrap_or_else(|_| panic!("bad hex {h:?} in example {name}"))
        })
        .collect()
}

/// Rows of the markdown table that follows `heading` (cells trimmed, backticks removed).
fn table(heading: &str) -> Vec<Vec<String>> {
    let text = spec();
    let at = text
        .find(heading)
        .unwrap_or_else(|| panic!("PROTOCOL.md has no {heading:?}"));
    text[at..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and rule
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().replace('`', ""))
                .collect()
        })
        .collect()
}

fn emit(msg: &Message<'_>) -> Vec<u8> {
    let mut out = vec![0u8; MAX_PAYLOAD];
    let n = msg.emit(&mut out).expect("fits");
    out.truncate(n);
    out
}

fn example_points() -> Vec<Point> {
    let rows = [
        (1000, 100_000, 99_960, [500, 30]),
        (1100, 200_003, 99_963, [510, 28]),
        (1199, 300_001, 99_958, [495, 31]),
    ];
    rows.iter()
        .map(|&(position, timestamp, live_time, c)| Point {
            position,
            timestamp,
            live_time,
            flags: PointFlags(0),
            counts: Counts::from_slice(&c).expect("2 channels"),
        })
        .collect()
}

#[test]
fn ping_frame_example() {
    let mut out = [0u8; 64];
    let n = Message::Ping { token: 0x1122_3344 }
        .encode_frame(1, &mut out)
        .expect("fits");
    assert_eq!(out[..n], example("ping-frame"));
    let mut d = Deframer::new();
    let ex = example("ping-frame");
    let Feed::Frame { frame, .. } = d.feed(&ex) else {
        panic!("example does not deframe")
    };
    assert_eq!(frame.seq(), 1);
    assert_eq!(frame.message(), Ok(Message::Ping { token: 0x1122_3344 }));
}
use flyscan_protocol::Feed;

#[test]
fn configure_example() {
    let cfg = ScanConfig {
        mode: TriggerMode::StartStepCount,
        direction: Direction::Positive,
        encoding: Encoding::Compact,
        start: -1000,
        step: 100,
        count: 500,
        passes: 1,
        channel_mask: 0xff,
        max_batch_points: 0,
        max_latency_us: 10_000,
        gate_span: 0,
    };
    let bytes = example("configure");
    assert_eq!(bytes.len(), SCAN_CONFIG_LEN);
    assert_eq!(emit(&Message::Configure(cfg)), bytes);
    assert_eq!(Message::parse(0x02, &bytes), Ok(Message::Configure(cfg)));
}

#[test]
fn nak_example() {
    let reply = CommandReply::nak(
        5,
        0x02,
        NakCode::InvalidConfig,
        ConfigError::ZeroStep.code(),
        format_args!("{}", ConfigError::ZeroStep),
    );
    let bytes = example("nak");
    assert_eq!(emit(&Message::CommandReply(reply.clone())), bytes);
    assert_eq!(
        Message::parse(0x86, &bytes),
        Ok(Message::CommandReply(reply))
    );
}

fn batch_example(encoding: Encoding) -> (Vec<u8>, Vec<Point>) {
    let points = example_points();
    let mut w = BatchWriter::new(encoding, 0b11, 0);
    for p in &points {
        w.push(p).expect("fits");
    }
    (
        emit(&Message::PointBatch(PointBatch::from_writer(1, 0, &w))),
        points,
    )
}

#[test]
fn batch_examples() {
    for (name, enc) in [
        ("compact-batch", Encoding::Compact),
        ("raw-batch", Encoding::Raw),
        ("rice-batch", Encoding::Rice),
    ] {
        let (bytes, points) = batch_example(enc);
        let ex = example(name);
        assert_eq!(bytes, ex, "{name}");
        let Ok(Message::PointBatch(b)) = Message::parse(0x83, &ex) else {
            panic!("{name} does not parse")
        };
        let got: Vec<Point> = b.points().map(|p| p.expect("decodes")).collect();
        assert_eq!(got, points, "{name}");
    }
    let (payload, _) = batch_example(Encoding::Compact);
    let mut out = [0u8; MAX_ENCODED_FRAME];
    let n = flyscan_protocol::encode_frame(0x83, 42, &payload, &mut out).expect("fits");
    assert_eq!(out[..n], example("compact-batch-frame"));
}

/// The per-field table of the compact example lists the values and bytes the encoder writes.
#[test]
fn compact_field_table() {
    let rows = table("Values encoded (Δ² for position");
    assert_eq!(rows.len(), 3);
    let (bytes, _) = batch_example(Encoding::Compact);
    let mut written = Vec::new();
    for row in &rows {
        for cell in &row[1..] {
            let (value, hex) = match cell.split_once('→') {
                Some((v, h)) => (Some(v.trim().replace('−', "-")), h),
                None => (None, cell.as_str()),
            };
            let b: Vec<u8> = hex
                .split_whitespace()
                .map(|h| u8::from_str_radix(h, 16).expect("hex"))
                .collect();
            if let Some(v) = value {
                let v: i64 = v.parse().expect("number");
                let mut tmp = [0u8; MAX_VARINT_LEN];
                let n = encode_u64(zigzag(v), &mut tmp);
                assert_eq!(tmp[..n], b, "{cell}");
            }
            written.extend(b);
        }
    }
    assert_eq!(written, bytes[BATCH_HEADER_LEN..]);
}

/// The per-field table of the Rice example: each row's residual, `z` and bits follow the
/// spec's rules, and the rows' bits, in order and padded, are the data the encoder writes.
#[test]
fn rice_field_table() {
    let rows = table("| i | field | prediction | residual | z | k | bits |");
    assert_eq!(
        rows.len(),
        3 * 6,
        "three points of flags, 3 fields and 2 counts"
    );
    let lsb = |v: u64, n: u32| -> String {
        (0..n)
            .map(|i| if v >> i & 1 == 1 { '1' } else { '0' })
            .collect()
    };
    let bitlen = |v: u64| 64 - v.leading_zeros();
    let mut stream = String::new();
    for r in &rows {
        let bits: String = r[6].split_whitespace().collect();
        if r[1] == "flags" {
            assert_eq!(bits, "0", "flags unchanged");
        } else {
            let wide = r[1] == "position" || r[1] == "timestamp";
            let residual: i64 = r[3].replace('−', "-").parse().expect("residual");
            let z: u64 = r[4].parse().expect("z");
            let want_z = if wide {
                zigzag(residual)
            } else {
                u64::from(((residual as i32) << 1 ^ (residual as i32) >> 31) as u32)
            };
            assert_eq!(z, want_z, "zigzag in row {r:?}");
            let code = if r[5] == "—" {
                let n = bitlen(z);
                let mut c = lsb(n.into(), if wide { 7 } else { 6 });
                if n > 1 {
                    c += &lsb(z & !(1 << (n - 1)), n - 1);
                }
                c
            } else {
                let k: u32 = r[5].parse().expect("k");
                if z >> k < 16 {
                    "0".repeat((z >> k) as usize) + "1" + &lsb(z, k)
                } else {
                    let n = bitlen(z);
                    "0".repeat(16) + &lsb((n - 1).into(), 6) + &lsb(z & !(1 << (n - 1)), n - 1)
                }
            };
            assert_eq!(bits, code, "code in row {r:?}");
        }
        stream += &bits;
    }
    while !stream.len().is_multiple_of(8) {
        stream.push('0');
    }
    let bytes: Vec<u8> = stream
        .as_bytes()
        .chunks(8)
        .map(|c| c.iter().rev().fold(0u8, |b, &x| b << 1 | (x - b'0')))
        .collect();
    let (payload, _) = batch_example(Encoding::Rice);
    assert_eq!(bytes, payload[BATCH_HEADER_LEN..]);
    assert!(spec().contains("198 bits, padded to 25 bytes"));
    assert_eq!(payload.len() - BATCH_HEADER_LEN, 25);
}

/// Every encoding the spec names has its code, and no other code is accepted.
#[test]
fn encoding_codes() {
    let text = spec();
    for e in Encoding::ALL {
        let name = format!("{e:?}").to_lowercase();
        assert!(
            text.contains(&format!("{} = {name}", e as u8)),
            "{name} in the spec"
        );
        assert_eq!(Encoding::from_u8(e as u8), Some(e));
    }
    assert_eq!(Encoding::from_u8(Encoding::ALL.len() as u8), None);
}

#[test]
fn varint_tables() {
    let rows = table("| value                | bytes |");
    assert!(rows.len() >= 6);
    for r in table("Unsigned LEB128") {
        let v: u64 = r[0].parse().expect("value");
        let b: Vec<u8> = r[1]
            .split_whitespace()
            .map(|h| u8::from_str_radix(h, 16).expect("hex"))
            .collect();
        let mut tmp = [0u8; MAX_VARINT_LEN];
        let n = encode_u64(v, &mut tmp);
        assert_eq!(tmp[..n], b, "varint of {v}");
        assert_eq!(parse_u64(&b), Ok((&[][..], v)));
    }
    let zz = table("| signed value ");
    assert_eq!(zz.len(), 6);
    for r in zz {
        let v: i64 = r[0].replace('−', "-").parse().expect("signed");
        let z: u64 = r[1].parse().expect("zigzag");
        assert_eq!(zigzag(v), z, "zigzag of {v}");
    }
}

#[test]
fn message_type_table() {
    let rows = table("| code   | name            |");
    assert_eq!(rows.len(), MessageType::ALL.len());
    for r in rows {
        let code = u8::from_str_radix(r[0].trim_start_matches("0x"), 16).expect("code");
        let t = MessageType::from_u8(code).unwrap_or_else(|| panic!("{code:#x} unknown"));
        assert_eq!(format!("{t:?}"), r[1]);
        assert_eq!(t.is_from_device(), r[2].starts_with("device"));
    }
}

#[test]
fn nak_code_table() {
    let rows = table("| code | name                |");
    assert_eq!(rows.len(), 9);
    for r in &rows {
        let code: u8 = r[0].parse().expect("code");
        let c = NakCode::from_u8(code).unwrap_or_else(|| panic!("nak {code} unknown"));
        assert_eq!(format!("{c:?}"), r[1]);
    }
    assert_eq!(
        NakCode::from_u8(rows.len() as u8),
        None,
        "table lists every code"
    );
    let errs = [
        ConfigError::ZeroCount,
        ConfigError::TooManyPoints { count: 0, max: 0 },
        ConfigError::ZeroStep,
        ConfigError::NoChannels,
        ConfigError::ChannelMissing {
            mask: 0,
            n_channels: 0,
        },
        ConfigError::BadPasses { passes: 0 },
        ConfigError::PositionOverflow,
        ConfigError::ListExceedsWindow {
            count: 0,
            window: 0,
        },
        ConfigError::StepAgainstDirection {
            step: 0,
            direction: Direction::Positive,
        },
        ConfigError::ListOrder { index: 0 },
        ConfigError::ListLength { len: 0, count: 0 },
        ConfigError::ExceedsCapacity {
            total: 0,
            capacity: 0,
        },
        ConfigError::TimeDirection {
            direction: Direction::Positive,
        },
        ConfigError::BadPeriod { period: 0, min: 0 },
        ConfigError::GateOutsideTime,
    ];
    let rows = table("| code | error               |");
    assert_eq!(rows.len(), errs.len());
    for (r, e) in rows.iter().zip(errs) {
        assert_eq!(r[0].parse::<u32>().expect("code"), e.code());
        assert!(format!("{e:?}").starts_with(&r[1]), "{:?} vs {e:?}", r[1]);
    }
}

#[test]
fn limits_table() {
    let rows = table("| constant              | value |");
    let consts: &[(&str, usize)] = &[
        ("HEADER_LEN", HEADER_LEN),
        ("CRC_LEN", CRC_LEN),
        ("MAX_PAYLOAD", MAX_PAYLOAD),
        ("MAX_BODY", MAX_BODY),
        ("MAX_ENCODED_FRAME", MAX_ENCODED_FRAME),
        ("MAX_CHANNELS", MAX_CHANNELS),
        ("MAX_CHUNK_POSITIONS", MAX_CHUNK_POSITIONS),
        ("MAX_DETAIL", MAX_DETAIL),
        ("MAX_BATCH_POINTS", MAX_BATCH_POINTS),
        ("MAX_RAW_POINT", MAX_RAW_POINT),
        ("MAX_COMPACT_POINT", MAX_COMPACT_POINT),
        ("MAX_RICE_POINT", MAX_RICE_POINT),
        ("BATCH_HEADER_LEN", BATCH_HEADER_LEN),
        ("MAX_BATCH_DATA", MAX_BATCH_DATA),
        ("SCAN_CONFIG_LEN", SCAN_CONFIG_LEN),
        ("MAX_VARINT_LEN", MAX_VARINT_LEN),
    ];
    assert_eq!(rows.len(), consts.len(), "one row per constant");
    for (name, value) in consts {
        let row = rows
            .iter()
            .find(|r| r[0] == *name)
            .unwrap_or_else(|| panic!("{name} missing from Limits"));
        assert_eq!(row[1].parse::<usize>().expect("number"), *value, "{name}");
    }
    // Formulas stated in the table.
    assert_eq!(MAX_BODY, HEADER_LEN + MAX_PAYLOAD + CRC_LEN);
    assert_eq!(MAX_ENCODED_FRAME, MAX_BODY + MAX_BODY.div_ceil(254) + 1);
    const { assert!(6 + 8 * MAX_CHUNK_POSITIONS <= MAX_PAYLOAD) };
}

/// The payload lengths in the message type table are what the encoder writes.
#[test]
fn payload_lengths() {
    let rows = table("| code   | name            |");
    let len = |name: &str| {
        rows.iter()
            .find(|r| r[1] == name)
            .map(|r| r[3].clone())
            .expect("row")
    };
    let fixed: Vec<(&str, Message<'_>)> = vec![
        ("GetInfo", Message::GetInfo),
        ("Configure", Message::Configure(ScanConfig::default())),
        ("Arm", Message::Arm { scan_id: 1 }),
        ("Abort", Message::Abort),
        (
            "ResendRequest",
            Message::ResendRequest {
                first_seq: 1,
                last_seq: 2,
            },
        ),
        ("Ping", Message::Ping { token: 1 }),
        ("DeviceInfo", Message::DeviceInfo(Default::default())),
        (
            "ScanArmed",
            Message::ScanArmed(flyscan_protocol::ScanArmed {
                scan_id: 1,
                config: ScanConfig::default(),
            }),
        ),
        (
            "ScanDone",
            Message::ScanDone(flyscan_protocol::ScanDone {
                scan_id: 1,
                total_points: 0,
                reason: flyscan_protocol::DoneReason::Completed,
                error_code: 0,
            }),
        ),
        ("Health", Message::Health(Default::default())),
        (
            "Pong",
            Message::Pong {
                token: 1,
                uptime_ticks: 2,
                boot_id: 3,
            },
        ),
    ];
    for (name, m) in fixed {
        assert_eq!(len(name), emit(&m).len().to_string(), "{name}");
    }
    assert_eq!(len("CommandReply"), "11 + len");
    assert_eq!(
        emit(&Message::CommandReply(CommandReply::ack(1, 2))).len(),
        11
    );
    assert_eq!(len("PointBatch"), format!("{BATCH_HEADER_LEN} + data"));
}

/// The longest legal run of encoded bytes is `MAX_ENCODED_FRAME − 1` (the delimiter is the last
/// byte of the frame): one more byte without a 0x00 is oversize (PROTOCOL.md, *What the decoder
/// accepts*).
#[test]
fn longest_legal_run() {
    use flyscan_protocol::FrameError;
    let feed = |run: usize| {
        let mut bytes = vec![0x01u8; run];
        bytes.push(0);
        let mut d = Deframer::new();
        match d.feed(&bytes) {
            Feed::Error { error, .. } => Some(error),
            Feed::Frame { .. } | Feed::Consumed => None,
        }
    };
    // 2067 bytes of 0x01 decode (to zeros) and then fail the size/CRC check, not the length rule.
    assert!(!matches!(
        feed(MAX_ENCODED_FRAME - 1),
        Some(FrameError::Oversize { .. })
    ));
    assert!(matches!(
        feed(MAX_ENCODED_FRAME),
        Some(FrameError::Oversize { .. })
    ));
    assert!(spec().contains("more than 2 067 bytes without a 0x00"));
}

/// The line settings the spec states are the crate's.
#[test]
fn serial_line_defaults() {
    let text = spec();
    assert!(text.contains(&format!("`DEFAULT_BAUD` = {}", group(DEFAULT_BAUD))));
    assert!(text.contains(&format!("`LINE_BITS_PER_BYTE` = {LINE_BITS_PER_BYTE}")));
    assert_eq!(line_bytes_per_sec(921_600), 92_160);
}

/// 921600 → "921 600" (the spec's digit grouping).
fn group(v: u32) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}
