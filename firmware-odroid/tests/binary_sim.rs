//! The Linux binary against a simulator socket served by the reference FPGA model (the FPGA
//! contract crate's server), with a pty as the serial line: start-up, a command round trip,
//! and a clean SIGTERM shutdown.
#![allow(clippy::unwrap_used)]

use flyscan_fpga_contract::model::{ModelConfig, RefModel};
use flyscan_fpga_contract::socket::{Served, serve_connection};
use flyscan_protocol::limits::MAX_ENCODED_FRAME;
use flyscan_protocol::{Deframer, Message, MessageType};
use serialport::SerialPort;
use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// Serves one connection with the model; returns how it ended.
fn serve(listener: UnixListener) -> Served {
    let (c, _) = listener.accept().unwrap();
    let mut model = RefModel::new(ModelConfig::default());
    serve_connection(c, &mut model, &AtomicBool::new(false)).unwrap()
}

#[test]
fn binary_talks_to_the_simulator_and_shuts_down_cleanly() {
    let dir = std::env::temp_dir().join(format!("flyscan-bin-{}", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    let listener = UnixListener::bind(&dir).unwrap();
    let server = std::thread::spawn(move || serve(listener));
    let (mut master, slave) = serialport::TTYPort::pair().unwrap();
    let slave_name = slave.name().unwrap();
    drop(slave);
    let mut child = Command::new(env!("CARGO_BIN_EXE_firmware-odroid"))
        .args(["--fpga", "sim", "--sim-socket"])
        .arg(&dir)
        .args(["--serial", &slave_name, "--log", "warn"])
        .spawn()
        .unwrap();
    master.set_timeout(Duration::from_millis(50)).unwrap();
    let mut out = vec![0u8; MAX_ENCODED_FRAME];
    let n = Message::Ping { token: 0xBEEF }
        .encode_frame(0, &mut out)
        .unwrap();
    let mut deframer = Deframer::new();
    let mut seen: Vec<u8> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut sent_at = Instant::now() - Duration::from_secs(1);
    let mut buf = [0u8; 4096];
    while !seen.contains(&(MessageType::Pong as u8)) && Instant::now() < deadline {
        // The binary may not have opened the port yet: repeat the ping now and then.
        if sent_at.elapsed() > Duration::from_millis(300) {
            // Fails (EIO) until the binary has opened the slave side.
            let _ = master.write_all(&out[..n]);
            sent_at = Instant::now();
        }
        if let Ok(k) = master.read(&mut buf) {
            deframer.feed_all(&buf[..k], |f| seen.push(f.msg_type()), |_| {});
        }
    }
    assert!(
        seen.contains(&(MessageType::Pong as u8)),
        "got types {seen:x?}"
    );
    assert!(seen.contains(&(MessageType::CommandReply as u8)));
    let pid = child.id().to_string();
    if let Ok(st) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
        let rss = st.lines().find(|l| l.starts_with("VmRSS")).unwrap_or("");
        eprintln!("firmware-odroid {rss}");
    }
    // SIGTERM → exit 0 and a 'Q' to the simulator.
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        server.join().unwrap(),
        Served::Quit,
        "simulator got a quit request"
    );
    let _ = std::fs::remove_file(&dir);
}
