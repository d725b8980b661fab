//! The serial line as a tty file set to raw 8N1 with `tcgetattr`/`tcsetattr`.
//!
//! Why not the `serialport` crate here: on Linux it configures the line with the `termios2`
//! ioctls (TCGETS2/TCSETS2), which `qemu-aarch64` user emulation does not implement, and the
//! bench runs exactly the binary we ship under qemu. Classic termios covers every standard
//! rate an ODROID UART or USB adapter uses (up to 4 000 000 Bd).

use nix::fcntl::OFlag;
use nix::sys::termios::{self, BaudRate, ControlFlags, SetArg};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;

/// An open, configured serial port; reads and writes never block (`WouldBlock` instead).
#[derive(Debug)]
pub struct SerialPort {
    file: File,
}

impl SerialPort {
    /// Opens `path` non-blocking, without becoming its controlling terminal, raw 8N1 at `baud`
    /// with no flow control.
    pub fn open(path: &str, baud: u32) -> io::Result<Self> {
        let speed = baud_rate(baud)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags((OFlag::O_NOCTTY | OFlag::O_NONBLOCK).bits())
            .open(path)?;
        let mut t = termios::tcgetattr(&file).map_err(io::Error::from)?;
        termios::cfmakeraw(&mut t);
        termios::cfsetspeed(&mut t, speed).map_err(io::Error::from)?;
        t.control_flags |= ControlFlags::CLOCAL | ControlFlags::CREAD | ControlFlags::CS8;
        t.control_flags &= !(ControlFlags::CRTSCTS | ControlFlags::CSTOPB | ControlFlags::PARENB);
        termios::tcsetattr(&file, SetArg::TCSANOW, &t).map_err(io::Error::from)?;
        Ok(Self { file })
    }
}

/// The termios constant for a baud rate, or a clear error for a non-standard one.
fn baud_rate(baud: u32) -> io::Result<BaudRate> {
    Ok(match baud {
        9_600 => BaudRate::B9600,
        19_200 => BaudRate::B19200,
        38_400 => BaudRate::B38400,
        57_600 => BaudRate::B57600,
        115_200 => BaudRate::B115200,
        230_400 => BaudRate::B230400,
        460_800 => BaudRate::B460800,
        500_000 => BaudRate::B500000,
        921_600 => BaudRate::B921600,
        1_000_000 => BaudRate::B1000000,
        1_500_000 => BaudRate::B1500000,
        2_000_000 => BaudRate::B2000000,
        3_000_000 => BaudRate::B3000000,
        4_000_000 => BaudRate::B4000000,
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{other} Bd is not a standard rate (9600 … 4000000, e.g. 115200, 921600, 3000000)"
                ),
            ));
        }
    })
}

impl Read for SerialPort {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }
}

impl Write for SerialPort {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serialport::SerialPort as _;

    #[test]
    fn standard_rates_map_and_odd_ones_are_refused() {
        assert!(matches!(baud_rate(921_600), Ok(BaudRate::B921600)));
        let err = baud_rate(1_234).unwrap_err();
        assert!(err.to_string().contains("1234 Bd"), "{err}");
    }

    #[test]
    fn opens_a_pty_raw_and_moves_bytes() {
        // A real pseudo-terminal pair: the slave is what the firmware opens.
        let (mut master, slave) = serialport::TTYPort::pair().expect("pty pair");
        let name = slave.name().expect("slave name");
        let mut port = SerialPort::open(&name, 921_600).expect("open slave");
        port.write_all(&[0x00, 0x11, 0x0a, 0xff]).expect("write");
        let mut got = [0u8; 4];
        master
            .set_timeout(std::time::Duration::from_secs(2))
            .expect("timeout");
        master.read_exact(&mut got).expect("read back");
        assert_eq!(
            got,
            [0x00, 0x11, 0x0a, 0xff],
            "raw mode: no byte translated"
        );
        let mut buf = [0u8; 8];
        let e = port.read(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }
}
