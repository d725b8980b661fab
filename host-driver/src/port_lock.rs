//! One IOC per serial port: an exclusive lock held for the life of the process, so a second
//! IOC started on the same port stops at once with a clear error instead of fighting the first
//! over the device. The lock is a file named after the port in a lock folder (the port itself
//! may not exist yet, or be a symlink re-pointed at every device restart), locked with
//! `flock`, which the kernel releases when the process ends however it ends.

#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// A held port lock (released on drop or process exit).
#[derive(Debug)]
pub struct PortLock {
    _file: File,
    path: PathBuf,
}

/// The lock folder: `$FLYSCAN_LOCK_DIR`, else `/run/lock` when writable, else the temp folder.
pub fn lock_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("FLYSCAN_LOCK_DIR") {
        return PathBuf::from(d);
    }
    let run = Path::new("/run/lock");
    let writable = std::fs::metadata(run).is_ok_and(|m| m.is_dir() && !m.permissions().readonly());
    if writable {
        run.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

impl PortLock {
    /// Takes the lock of `port` in `dir`; the error says who holds it.
    pub fn take(port: &str, dir: &Path) -> Result<Self, String> {
        let name: String = port
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let path = dir.join(format!("flyscan-{name}.lock"));
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot create the lock file {}: {e}", path.display()))?;
        // SAFETY: flock on a file descriptor this function owns.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r != 0 {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            return Err(format!(
                "serial port {port} is already used by another flyscan IOC ({}; lock {})",
                holder.trim(),
                path.display()
            ));
        }
        use std::io::{Seek, Write};
        let _ = file.set_len(0);
        let _ = file.seek(std::io::SeekFrom::Start(0));
        let _ = writeln!(file, "pid {}", std::process::id());
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_port_is_refused() {
        let dir = std::env::temp_dir();
        let port = format!("/dev/ttyLOCKTEST{}", std::process::id());
        let a = PortLock::take(&port, &dir).expect("first");
        let e = PortLock::take(&port, &dir).expect_err("second");
        assert!(e.contains("already used"), "{e}");
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(a);
        let _b = PortLock::take(&port, &dir).expect("free again");
    }
}
