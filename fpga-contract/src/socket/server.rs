//! Server side of the simulator socket: parses requests, hands each SPI transaction to a
//! [`SocketTarget`] as the bytes on MOSI, and answers with the bytes its operations read.
//! Whatever simulates the FPGA (the reference model, the gateware in an RTL simulator) only
//! implements [`SocketTarget`].

use super::{MAX_OP_LEN, REQ_DATA_READY, REQ_QUIT, REQ_TRANSACTION, kind};
use std::format;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::string::String;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use std::vec::Vec;

/// What serves the FPGA behind the socket.
pub trait SocketTarget {
    /// Runs one SPI transaction (one `CS_N` period): `mosi` are the bytes the host clocks out;
    /// returns the MISO bytes, one per MOSI byte.
    fn transaction(&mut self, mosi: &[u8]) -> io::Result<Vec<u8>>;
    /// The `DRDY` level now.
    fn data_ready(&mut self) -> io::Result<bool>;
}

/// One parsed transaction request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transaction {
    /// The bytes on MOSI: every operation's data in order, `00` for reads.
    pub mosi: Vec<u8>,
    /// `(offset in mosi, length)` of each operation that returns bytes, in order.
    pub reads: Vec<(usize, usize)>,
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl Transaction {
    /// Reads the body of a `'T'` request (what follows the request byte).
    pub fn read_from(s: &mut impl Read) -> io::Result<Self> {
        let mut b = [0u8; 1];
        s.read_exact(&mut b)?;
        let n_ops = b[0];
        let mut t = Self::default();
        for _ in 0..n_ops {
            let mut h = [0u8; 5];
            s.read_exact(&mut h)?;
            let len = u32::from_le_bytes([h[1], h[2], h[3], h[4]]);
            if h[0] != kind::DELAY_NS && len > MAX_OP_LEN {
                return Err(bad(format!(
                    "operation of {len} bytes exceeds the limit of {MAX_OP_LEN}"
                )));
            }
            let len = len as usize;
            let at = t.mosi.len();
            match h[0] {
                kind::WRITE | kind::TRANSFER | kind::TRANSFER_IN_PLACE => {
                    t.mosi.resize(at + len, 0);
                    s.read_exact(&mut t.mosi[at..])?;
                    if h[0] != kind::WRITE {
                        t.reads.push((at, len));
                    }
                }
                kind::READ => {
                    t.mosi.resize(at + len, 0);
                    t.reads.push((at, len));
                }
                kind::DELAY_NS => {}
                k => return Err(bad(format!("unknown operation kind {k}"))),
            }
        }
        Ok(t)
    }

    /// The response: the bytes of `miso` under each reading operation, concatenated.
    pub fn response(&self, miso: &[u8]) -> io::Result<Vec<u8>> {
        if miso.len() != self.mosi.len() {
            return Err(bad(format!(
                "the FPGA answered {} bytes for {} clocked out",
                miso.len(),
                self.mosi.len()
            )));
        }
        let mut out = Vec::with_capacity(self.reads.iter().map(|r| r.1).sum());
        for &(at, len) in &self.reads {
            out.extend_from_slice(&miso[at..at + len]);
        }
        Ok(out)
    }
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// The client sent `'Q'`.
    Quit,
    /// The client closed the connection without `'Q'`.
    Closed,
    /// The server was asked to stop.
    Stopped,
}

/// How often a waiting server looks at its stop flag.
const STOP_POLL: Duration = Duration::from_millis(200);
/// Longest wait for the rest of a request whose first byte arrived.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads one byte; `None` on a clean EOF. A read time-out checks `stop` and tries again.
fn read_request(s: &mut UnixStream, stop: &AtomicBool) -> io::Result<Option<u8>> {
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b) {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(b[0])),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                if stop.load(Ordering::Relaxed) {
                    return Err(io::Error::new(io::ErrorKind::Interrupted, "stopped"));
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Serves one client until it quits, disconnects, sends garbage (an `InvalidData` error), or
/// `stop` is set. Each request is read whole before `target` is touched, so a slow client
/// cannot hold the target up.
pub fn serve_connection(
    mut s: UnixStream,
    target: &mut impl SocketTarget,
    stop: &AtomicBool,
) -> io::Result<Served> {
    s.set_read_timeout(Some(STOP_POLL))?;
    loop {
        let req = match read_request(&mut s, stop) {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(Served::Closed),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Served::Stopped),
            Err(e) => return Err(e),
        };
        match req {
            REQ_TRANSACTION => {
                // The body follows at once; a client stalled this long mid-request is dead.
                s.set_read_timeout(Some(BODY_TIMEOUT))?;
                let t = Transaction::read_from(&mut s)?;
                s.set_read_timeout(Some(STOP_POLL))?;
                let miso = target.transaction(&t.mosi)?;
                s.write_all(&t.response(&miso)?)?;
            }
            REQ_DATA_READY => {
                let v = target.data_ready()?;
                s.write_all(&[u8::from(v)])?;
            }
            REQ_QUIT => return Ok(Served::Quit),
            other => return Err(bad(format!("unknown request byte {other:#04x}"))),
        }
    }
}

/// The reference model served as it stands (its clock moves only when its owner moves it).
impl SocketTarget for crate::model::RefModel {
    fn transaction(&mut self, mosi: &[u8]) -> io::Result<Vec<u8>> {
        Ok(self.exchange_vec(mosi))
    }
    fn data_ready(&mut self) -> io::Result<bool> {
        Ok(crate::model::RefModel::data_ready(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_parsed_into_mosi_and_read_windows() {
        let req: &[u8] = &[
            4, //
            0, 2, 0, 0, 0, 1, 2, // Write [1, 2]
            1, 4, 0, 0, 0, // Read 4
            2, 2, 0, 0, 0, 9, 0, // Transfer 2, write [9] padded
            4, 0xF4, 0x01, 0, 0, // DelayNs 500
        ];
        let t = Transaction::read_from(&mut &req[..]).unwrap();
        assert_eq!(t.mosi, [1, 2, 0, 0, 0, 0, 9, 0]);
        assert_eq!(t.reads, [(2, 4), (6, 2)]);
        let miso = [0, 0, 10, 11, 12, 13, 20, 21];
        assert_eq!(t.response(&miso).unwrap(), [10, 11, 12, 13, 20, 21]);
        assert!(
            t.response(&miso[..7]).is_err(),
            "a short answer is an error"
        );
    }

    #[test]
    fn bad_requests_are_errors_not_panics() {
        let unknown_kind: &[u8] = &[1, 9, 0, 0, 0, 0];
        let e = Transaction::read_from(&mut &unknown_kind[..]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let huge: &[u8] = &[1, 1, 0, 0, 0, 0x80];
        let e = Transaction::read_from(&mut &huge[..]).unwrap_err();
        assert!(e.to_string().contains("exceeds"), "{e}");
        let truncated: &[u8] = &[2, 0, 2, 0, 0, 0, 1];
        let e = Transaction::read_from(&mut &truncated[..]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
