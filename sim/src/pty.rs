//! Pseudo-terminals standing in for serial ports: the simulator keeps the master side and a
//! handle on the slave (so the pty survives the peer closing and reopening it), and publishes
//! the slave's path, optionally behind a stable symlink.

use serialport::{SerialPort, TTYPort};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One pty pair.
#[derive(Debug)]
pub struct Pty {
    /// The side the simulator reads and writes.
    pub master: TTYPort,
    _slave: TTYPort,
    /// Path of the slave device.
    pub slave_path: PathBuf,
    /// The symlink pointing at it, if any.
    pub link: Option<PathBuf>,
}

impl Pty {
    /// Opens a pty; with `link`, (re)creates that symlink to the slave. Reads on the master
    /// time out after `read_timeout`.
    pub fn open(link: Option<&Path>, read_timeout: Duration) -> io::Result<Self> {
        let (mut master, slave) = TTYPort::pair().map_err(io::Error::other)?;
        master.set_timeout(read_timeout).map_err(io::Error::other)?;
        let slave_path = slave
            .name()
            .map(PathBuf::from)
            .ok_or_else(|| io::Error::other("pty slave has no name"))?;
        if let Some(l) = link {
            if let Some(dir) = l.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            if l.symlink_metadata().is_ok() {
                std::fs::remove_file(l)?;
            }
            std::os::unix::fs::symlink(&slave_path, l)?;
        }
        Ok(Self {
            master,
            _slave: slave,
            slave_path,
            link: link.map(Path::to_path_buf),
        })
    }

    /// The path peers should open: the symlink if there is one.
    pub fn public_path(&self) -> &Path {
        self.link.as_deref().unwrap_or(&self.slave_path)
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if let Some(l) = &self.link {
            let _ = std::fs::remove_file(l);
        }
    }
}
