//! The EPICS IOC this process is: record and device support, Channel Access (RSRV) and PV
//! Access (QSRV) servers from the EPICS libraries, the flyscan driver inside.
//!
//! Start-up: the database definitions (EPICS base, PVA, the flyscan device support) are loaded
//! and registered, then the `st.cmd` runs: `flyscanConfig` (prefix, serial port, baud, channels,
//! settings folder; takes the port's exclusive lock and reads the settings file), the
//! databases, access security, `iocInit`. At `iocInit`, before any client is served, every
//! record of the PV table must be loaded (else the IOC stops and names the missing ones); once
//! the IOC runs, the driver starts on its own thread. The seam: the device support
//! ([`devsup`]) hands control writes to the core in record-processing order; the
//! [`publisher`] writes the core's outputs into the records in-process.

pub mod devsup;
pub mod ffi;
pub mod publisher;
pub mod records;

use devsup::{Support, SupportState};
use flyscan_host::core::{ControlWrite, Controls, Core, CoreConfig, Image, RowBlock};
use flyscan_host::port_lock::{PortLock, lock_dir};
use flyscan_host::serial::SerialConfig;
use flyscan_host::settings_file::{Saved, SettingsFile};
use flyscan_host::shell::{self, Sink};
use publisher::Publisher;
use records::Records;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use tokio::sync::mpsc;

/// What `flyscanConfig` set.
#[derive(Debug, Clone)]
pub struct DriverSettings {
    /// PV prefix.
    pub prefix: String,
    /// Serial port.
    pub port: String,
    /// Baud rate.
    pub baud: u32,
    /// Detector channel records loaded (`CH0` … `CH<n−1>`).
    pub channels: usize,
    /// Settings folder (None: nothing kept across restarts).
    pub settings_dir: Option<PathBuf>,
}

/// Start-up state shared by the shell command, the init hooks and `main`.
struct Startup {
    support: Arc<Mutex<SupportState>>,
    writes: Option<mpsc::UnboundedReceiver<ControlWrite>>,
    settings: Option<DriverSettings>,
    saved: Option<Saved>,
    lock: Option<PortLock>,
    records: Option<Records>,
    running: bool,
}

static STARTUP: OnceLock<Mutex<Startup>> = OnceLock::new();

fn startup() -> std::sync::MutexGuard<'static, Startup> {
    let m = STARTUP.get_or_init(|| {
        Mutex::new(Startup {
            support: Arc::default(),
            writes: None,
            settings: None,
            saved: None,
            lock: None,
            records: None,
            running: false,
        })
    });
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Stops the IOC at start-up with a message (nothing has been served).
fn die(msg: &str) -> ! {
    eprintln!("flyscan-ioc: error: {msg}");
    tracing::error!("{msg}");
    ffi::exit(1)
}

static CONFIG_CMD: ffi::Command = ffi::Command {
    name: c"flyscanConfig",
    args: &[
        (c"prefix", false),
        (c"serial port", false),
        (c"baud", true),
        (c"channels", true),
        (c"settings folder", false),
    ],
    usage: c"flyscanConfig(prefix, port, baud, channels, settingsDir)\n\
        Configures the flyscan driver of this IOC; call before dbLoadRecords and iocInit.\n\
        prefix: PV prefix (P macro of the databases); port: serial device of the flyscan\n\
        controller (a symlink is followed at every reopen); baud: line rate (921600);\n\
        channels: detector channel records loaded (CH0..CH<n-1>); settingsDir: folder of\n\
        the settings file kept across restarts (\"\" for none).\n",
    run: flyscan_config,
};

fn flyscan_config(args: &[String]) {
    let get = |i: usize| args.get(i).cloned().unwrap_or_default();
    let prefix = get(0);
    let port = get(1);
    let baud: u32 = get(2).parse().unwrap_or(0);
    let channels: usize = get(3).parse().unwrap_or(0);
    let dir = get(4);
    if prefix.is_empty() || port.is_empty() {
        die("flyscanConfig needs a prefix and a serial port");
    }
    if baud == 0 {
        die(&format!("flyscanConfig: baud {} is not a rate", get(2)));
    }
    if !(1..=32).contains(&channels) {
        die(&format!(
            "flyscanConfig: channels must be 1 … 32 (got {})",
            get(3)
        ));
    }
    let mut st = startup();
    if st.settings.is_some() {
        die("flyscanConfig was called twice (one driver per IOC)");
    }
    let lock = match PortLock::take(&port, &lock_dir()) {
        Ok(l) => l,
        Err(e) => die(&e),
    };
    let settings_dir = (!dir.is_empty()).then(|| PathBuf::from(&dir));
    if let Some(d) = &settings_dir {
        match SettingsFile::in_dir(d).load() {
            Ok(Some(saved)) => {
                tracing::info!(file = %SettingsFile::in_dir(d).path().display(), "settings restored");
                let controls = Controls::from(&saved.controls);
                if let Ok(mut s) = st.support.lock() {
                    s.restore = Some(controls);
                }
                st.saved = Some(saved);
            }
            Ok(None) => tracing::info!(folder = %d.display(), "no settings file yet"),
            Err(e) => tracing::warn!("{e}; starting from the database's values"),
        }
    }
    if let Ok(mut s) = st.support.lock() {
        s.prefix = Some(prefix.clone());
    }
    st.lock = Some(lock);
    st.settings = Some(DriverSettings {
        prefix,
        port,
        baud,
        channels,
        settings_dir,
    });
}

fn on_hook(state: i32) {
    match state {
        ffi::HOOK_AFTER_INIT_DATABASE => {
            let mut st = startup();
            let Some(cfg) = st.settings.clone() else {
                die("iocInit without flyscanConfig: the st.cmd must configure the driver first");
            };
            match Records::bind(&cfg.prefix, cfg.channels) {
                Ok(r) => st.records = Some(r),
                Err(missing) => die(&format!(
                    "the loaded databases lack {} record(s) the driver needs: {}",
                    missing.len(),
                    missing.join(", ")
                )),
            }
        }
        ffi::HOOK_AFTER_IOC_RUNNING => start_driver(),
        _ => {}
    }
}

/// The records as the shell's [`Sink`].
struct IocSink(Publisher);

impl Sink for IocSink {
    fn scan_started(&mut self, mask: u32, expected: u64) {
        self.0.scan_started(mask, expected);
    }
    fn rows(&mut self, rows: &RowBlock) {
        self.0.rows(rows);
    }
    fn post(&mut self, now: Instant, end: bool) {
        self.0.post(now, end);
    }
    fn image(&mut self, image: &Image) {
        if let Err(e) = self.0.image(image) {
            tracing::error!(error = %e, "records refused a value");
        }
    }
    fn reset_arm(&mut self) {
        self.0.reset_arm();
    }
    fn reset_abort(&mut self) {
        self.0.reset_abort();
    }
    fn controls(&mut self, controls: &Controls) {
        self.0.roles(|n| controls.role(n).to_owned());
    }
}

fn start_driver() {
    let mut st = startup();
    let (Some(cfg), Some(records), Some(writes)) =
        (st.settings.clone(), st.records.take(), st.writes.take())
    else {
        return;
    };
    let saved = st.saved.clone();
    st.running = true;
    drop(st);
    let mut core_cfg = CoreConfig::new(cfg.port.clone(), records.capacity as u64);
    core_cfg.baud = cfg.baud;
    // One more element than a valid list: a list the record had to cut shows as too long.
    core_cfg.list_capacity =
        u32::try_from(records.list_elements.saturating_sub(1)).unwrap_or(u32::MAX);
    let mut core = Core::new(core_cfg);
    if let Some(r) = saved.as_ref().and_then(|s| s.scan).and_then(|s| s.record()) {
        core.restore_record(r);
    }
    let settings = cfg
        .settings_dir
        .as_ref()
        .map(|d| (SettingsFile::in_dir(d), saved));
    let serial = SerialConfig::new(&cfg.port, cfg.baud);
    let spawned = std::thread::Builder::new()
        .name("flyscan-driver".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the driver's runtime");
                    return;
                }
            };
            let mut sink = IocSink(Publisher::new(records));
            rt.block_on(shell::run(
                core,
                serial,
                writes,
                &mut sink,
                settings,
                std::future::pending::<()>(),
            ));
        });
    if let Err(e) = spawned {
        die(&format!("cannot start the driver thread: {e}"));
    }
}

/// The folder of the EPICS database definitions (`base.dbd`, …): `$FLYSCAN_EPICS_DBD`, else
/// the one the binary was built against.
pub fn epics_dbd_dir() -> String {
    std::env::var("FLYSCAN_EPICS_DBD")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| env!("FLYSCAN_EPICS_DBD").to_owned())
}

/// Sets up the IOC: database definitions, device support, the `flyscanConfig` command and the
/// init hooks. Then the caller runs the `st.cmd`.
pub fn prepare() -> Result<(), String> {
    let (tx, rx) = mpsc::unbounded_channel();
    let support = {
        let mut st = startup();
        st.writes = Some(rx);
        st.support.clone()
    };
    let dbd = std::env::temp_dir().join(format!("flyscan-ioc-{}.dbd", std::process::id()));
    std::fs::write(&dbd, ffi::DEVICE_SUPPORT_DBD)
        .map_err(|e| format!("cannot write {}: {e}", dbd.display()))?;
    let dbd_s = dbd.to_string_lossy().into_owned();
    let dir = epics_dbd_dir();
    let r = ffi::prepare(
        &dir,
        &["base.dbd", "PVAServerRegister.dbd", "qsrv.dbd"],
        &[&dbd_s],
        Box::new(Support::new(tx, support)),
    );
    let _ = std::fs::remove_file(&dbd);
    r.map_err(|e| format!("{e} (EPICS definitions from {dir})"))?;
    ffi::register_command(&CONFIG_CMD);
    ffi::on_init_hook(on_hook);
    Ok(())
}

/// True once `iocInit` started the driver.
pub fn driver_running() -> bool {
    startup().running
}
