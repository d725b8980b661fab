//! Client side of the simulator socket (FPGA.md §Simulator socket): embedded-hal `SpiDevice`
//! and `InputPin` implementations that forward every transaction and data-ready read to a
//! simulator process over a Unix stream socket, so the unchanged firmware binary can run
//! against the simulated FPGA.

use embedded_hal::spi::{ErrorKind, Operation};
use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::rc::Rc;
use std::vec::Vec;

use super::{REQ_DATA_READY, REQ_QUIT, REQ_TRANSACTION, kind};

/// A socket failure, reported as an SPI or pin error.
#[derive(Debug)]
pub struct SimError(pub io::Error);

impl core::fmt::Display for SimError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "simulator socket: {}", self.0)
    }
}

impl std::error::Error for SimError {}

impl SimError {
    /// True when the simulator closed the connection (it quit or crashed).
    pub fn is_disconnect(&self) -> bool {
        matches!(
            self.0.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::NotConnected
        )
    }
}

impl embedded_hal::spi::Error for SimError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

impl embedded_hal::digital::Error for SimError {
    fn kind(&self) -> embedded_hal::digital::ErrorKind {
        embedded_hal::digital::ErrorKind::Other
    }
}

type Link = Rc<RefCell<UnixStream>>;

/// Connects to the simulator at `path`; returns the SPI device and the data-ready pin (they
/// share one connection).
pub fn connect(path: impl AsRef<Path>) -> io::Result<(SimSpi, SimDrdy)> {
    let stream = UnixStream::connect(path)?;
    let link = Rc::new(RefCell::new(stream));
    Ok((
        SimSpi {
            link: link.clone(),
            req: Vec::new(),
            resp: Vec::new(),
        },
        SimDrdy { link },
    ))
}

/// `SpiDevice` over the simulator socket.
#[derive(Debug)]
pub struct SimSpi {
    link: Link,
    req: Vec<u8>,
    resp: Vec<u8>,
}

impl SimSpi {
    /// Tells the simulator this client is done (request `'Q'`).
    pub fn quit(&mut self) -> io::Result<()> {
        let mut s = self.link.borrow_mut();
        s.write_all(&[REQ_QUIT])?;
        s.flush()
    }
}

fn invalid(msg: &str) -> SimError {
    SimError(io::Error::new(
        io::ErrorKind::InvalidInput,
        std::string::String::from(msg),
    ))
}

impl embedded_hal::spi::ErrorType for SimSpi {
    type Error = SimError;
}

impl embedded_hal::spi::SpiDevice for SimSpi {
    fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), SimError> {
        let n_ops = u8::try_from(ops.len()).map_err(|_| invalid("more than 255 operations"))?;
        self.req.clear();
        self.req.extend_from_slice(&[REQ_TRANSACTION, n_ops]);
        let mut expect = 0usize;
        let len32 = |n: usize| u32::try_from(n).map_err(|_| invalid("operation over 4 GiB"));
        for op in ops.iter() {
            match op {
                Operation::Write(w) => {
                    self.req.push(kind::WRITE);
                    self.req.extend_from_slice(&len32(w.len())?.to_le_bytes());
                    self.req.extend_from_slice(w);
                }
                Operation::Read(r) => {
                    self.req.push(kind::READ);
                    self.req.extend_from_slice(&len32(r.len())?.to_le_bytes());
                    expect += r.len();
                }
                Operation::Transfer(r, w) => {
                    let n = r.len().max(w.len());
                    self.req.push(kind::TRANSFER);
                    self.req.extend_from_slice(&len32(n)?.to_le_bytes());
                    self.req.extend_from_slice(w);
                    self.req.resize(self.req.len() + (n - w.len()), 0);
                    expect += n;
                }
                Operation::TransferInPlace(b) => {
                    self.req.push(kind::TRANSFER_IN_PLACE);
                    self.req.extend_from_slice(&len32(b.len())?.to_le_bytes());
                    self.req.extend_from_slice(b);
                    expect += b.len();
                }
                Operation::DelayNs(ns) => {
                    self.req.push(kind::DELAY_NS);
                    self.req.extend_from_slice(&ns.to_le_bytes());
                }
            }
        }
        self.resp.resize(expect, 0);
        {
            let mut s = self.link.borrow_mut();
            s.write_all(&self.req).map_err(SimError)?;
            s.read_exact(&mut self.resp).map_err(SimError)?;
        }
        let mut at = 0;
        for op in ops.iter_mut() {
            match op {
                Operation::Read(r) => {
                    r.copy_from_slice(&self.resp[at..at + r.len()]);
                    at += r.len();
                }
                Operation::Transfer(r, w) => {
                    let n = r.len().max(w.len());
                    r.copy_from_slice(&self.resp[at..at + r.len()]);
                    at += n;
                }
                Operation::TransferInPlace(b) => {
                    b.copy_from_slice(&self.resp[at..at + b.len()]);
                    at += b.len();
                }
                Operation::Write(_) | Operation::DelayNs(_) => {}
            }
        }
        Ok(())
    }
}

/// Data-ready `InputPin` over the simulator socket.
#[derive(Debug)]
pub struct SimDrdy {
    link: Link,
}

impl embedded_hal::digital::ErrorType for SimDrdy {
    type Error = SimError;
}

impl embedded_hal::digital::InputPin for SimDrdy {
    fn is_high(&mut self) -> Result<bool, SimError> {
        let mut s = self.link.borrow_mut();
        s.write_all(&[REQ_DATA_READY]).map_err(SimError)?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b).map_err(SimError)?;
        Ok(b[0] != 0)
    }
    fn is_low(&mut self) -> Result<bool, SimError> {
        self.is_high().map(|h| !h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal::digital::InputPin;
    use embedded_hal::spi::SpiDevice;
    use std::os::unix::net::UnixListener;

    /// A tiny server that records the request bytes and answers with fixed responses.
    #[test]
    fn request_bytes_follow_the_spec() {
        let dir = std::env::temp_dir().join(format!("flyscan-sim-sock-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let listener = UnixListener::bind(&dir).unwrap();
        let server = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            // Transaction: Write [1, 2], Read 4, Transfer(read 2, write [9]), DelayNs 500.
            let mut req = [0u8; 2 + 5 + 2 + 5 + 5 + 2 + 5];
            c.read_exact(&mut req).unwrap();
            c.write_all(&[10, 11, 12, 13, 20, 21]).unwrap();
            let mut r = [0u8; 1];
            c.read_exact(&mut r).unwrap();
            assert_eq!(r[0], b'R');
            c.write_all(&[1]).unwrap();
            c.read_exact(&mut r).unwrap();
            assert_eq!(r[0], b'Q');
            req
        });
        let (mut spi, mut drdy) = connect(&dir).unwrap();
        let mut rd = [0u8; 4];
        let mut tr = [0u8; 2];
        spi.transaction(&mut [
            Operation::Write(&[1, 2]),
            Operation::Read(&mut rd),
            Operation::Transfer(&mut tr, &[9]),
            Operation::DelayNs(500),
        ])
        .unwrap();
        assert_eq!(rd, [10, 11, 12, 13]);
        assert_eq!(tr, [20, 21]);
        assert!(drdy.is_high().unwrap());
        spi.quit().unwrap();
        let req = server.join().unwrap();
        let expected: &[u8] = &[
            b'T', 4, //
            0, 2, 0, 0, 0, 1, 2, //
            1, 4, 0, 0, 0, //
            2, 2, 0, 0, 0, 9, 0, //
            4, 0xF4, 0x01, 0, 0,
        ];
        assert_eq!(&req[..], expected);
        let _ = std::fs::remove_file(&dir);
    }

    #[test]
    fn a_closed_socket_is_a_disconnect_error() {
        let dir = std::env::temp_dir().join(format!("flyscan-sim-eof-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let listener = UnixListener::bind(&dir).unwrap();
        let server = std::thread::spawn(move || drop(listener.accept().unwrap()));
        let (mut spi, _drdy) = connect(&dir).unwrap();
        server.join().unwrap();
        let mut rd = [0u8; 4];
        let e = spi
            .transaction(&mut [Operation::Write(&[1, 0]), Operation::Read(&mut rd)])
            .unwrap_err();
        assert!(e.is_disconnect(), "{e}");
        let _ = std::fs::remove_file(&dir);
    }
}
