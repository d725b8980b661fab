//! The whole chain on one machine: the simulator (or a real device on a named serial port) and
//! `flyscan-ioc` (the IOC with the host driver inside, shipped database) on private CA and PVA
//! ports. Everything started here is stopped when the [`Chain`] is dropped.

use crate::ca::Ca;
use crate::procs::Proc;
use crate::scan_table::ScanTable;
use flyscan_host::launcher::{FlyscanIoc, IocOptions};
use flyscan_protocol::{Encoding, TriggerMode};
use flyscan_sim::plan::ScanPlan;
use flyscan_sim::scenario::Scenario;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The workspace root (hil-tests sits one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where the `sim`, `flyscan-ioc` and `firmware-odroid` binaries are: `$FLYSCAN_BIN_DIR`, else
/// `<workspace>/target/release`.
pub fn bin_dir() -> PathBuf {
    match std::env::var_os("FLYSCAN_BIN_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => workspace_root().join("target").join("release"),
    }
}

/// Path of a built binary, or a clear error saying how to build it.
pub fn binary(name: &str) -> Result<PathBuf, String> {
    let p = bin_dir().join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(format!(
            "{} not found: build the bench binaries first with \
             `cargo build --release -p flyscan-sim -p flyscan-host -p flyscan-firmware` \
             (`cargo xtask test` does), or point FLYSCAN_BIN_DIR at them",
            p.display()
        ))
    }
}

/// How to start a chain.
#[derive(Debug, Clone)]
pub struct ChainOptions {
    /// Short name: output directory and PV prefix are derived from it.
    pub name: String,
    /// Scenario file the simulator runs and the scan is configured from.
    pub scenario: PathBuf,
    /// Run this firmware command (e.g. the aarch64 binary under qemu) instead of the in-process core.
    pub firmware_cmd: Option<String>,
    /// Simulated seconds per wall second.
    pub speed: f64,
    /// A real device's serial port: no simulator is started.
    pub device: Option<PathBuf>,
    /// Waveform length of the IOC (NPTS).
    pub max_points: usize,
    /// Extra arguments for the simulator.
    pub sim_args: Vec<String>,
}

impl ChainOptions {
    /// Options for a scenario file of the shipped set (`sim/scenarios/<file>`).
    pub fn scenario(name: &str, file: &str) -> Self {
        Self {
            name: name.into(),
            scenario: workspace_root().join("sim").join("scenarios").join(file),
            firmware_cmd: None,
            speed: 1.0,
            device: std::env::var_os("FLYSCAN_HIL_DEVICE")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from),
            max_points: 20_000,
            sim_args: Vec::new(),
        }
    }
}

/// A running chain.
#[derive(Debug)]
pub struct Chain {
    /// Output directory of this run (logs, truth, results).
    pub dir: PathBuf,
    /// PV prefix.
    pub prefix: String,
    /// CA clients pointed at the IOC.
    pub ca: Ca,
    /// The scan to configure.
    pub plan: ScanPlan,
    /// The scenario.
    pub scenario: Scenario,
    /// Serial port the IOC's driver opens.
    pub serial: PathBuf,
    // Drop order: the IOC first, then the device.
    ioc: Option<FlyscanIoc>,
    sim: Option<Proc>,
    opts: ChainOptions,
}

impl Chain {
    /// Starts IOC, device (simulator unless a real one is named) and host driver, and waits
    /// until the driver reports the device connected.
    pub fn start(opts: ChainOptions) -> Result<Self, String> {
        let scenario = Scenario::load(&opts.scenario)
            .map_err(|e| format!("{}: {e}", opts.scenario.display()))?;
        let plan = ScanPlan::from_scenario(&scenario).map_err(|e| format!("plan: {e}"))?;
        let dir = workspace_root().join("out").join("hil").join(&opts.name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let prefix = format!("HIL{}:", opts.name.to_uppercase().replace(['-', '_'], ""));
        let mut chain = Self {
            dir,
            prefix,
            ca: Ca::new(flyscan_host::launcher::venv_dir(), Vec::new()),
            plan,
            scenario,
            serial: PathBuf::new(),
            ioc: None,
            sim: None,
            opts,
        };
        match chain.opts.device.clone() {
            Some(dev) => chain.serial = dev,
            None => chain.start_sim()?,
        }
        chain.start_ioc()?;
        chain.wait_pv(
            "Connected",
            |v| v == "1" || v.eq_ignore_ascii_case("connected"),
            Duration::from_secs(20),
        )?;
        Ok(chain)
    }

    fn start_sim(&mut self) -> Result<(), String> {
        let link = self.dir.join("ttySIM");
        let mut cmd = Command::new(binary("sim")?);
        cmd.arg("run")
            .arg("--scenario")
            .arg(&self.opts.scenario)
            .arg("--link")
            .arg(&link)
            .arg("--truth")
            .arg(self.truth_path())
            .arg("--speed")
            .arg(self.opts.speed.to_string())
            .arg("--socket")
            .arg(self.dir.join("fpga.sock"))
            .args(&self.opts.sim_args);
        if let Some(fw) = &self.opts.firmware_cmd {
            cmd.arg("--firmware-cmd").arg(fw);
        }
        let (proc, pty) = Proc::spawn_until_line(
            "sim",
            cmd,
            &self.dir.join("sim.log"),
            "PTY ",
            Duration::from_secs(30),
        )?;
        self.sim = Some(proc);
        self.serial = if pty.is_empty() {
            link
        } else {
            PathBuf::from(pty)
        };
        Ok(())
    }

    /// Starts the IOC (with the driver) on the chain's serial port.
    fn start_ioc(&mut self) -> Result<(), String> {
        let n_channels = u32::from(self.scenario.detectors.channels).max(1);
        let mut o = IocOptions::new(
            binary("flyscan-ioc")?,
            self.prefix.clone(),
            &self.serial,
            n_channels,
            self.opts.max_points,
        );
        o.baud = self.scenario.link.baud;
        o.work_dir = Some(self.dir.join("ioc"));
        let ioc = FlyscanIoc::start(o).map_err(|e| format!("flyscan-ioc: {e:#}"))?;
        self.ca = Ca::new(flyscan_host::launcher::venv_dir(), ioc.client_env());
        self.ioc = Some(ioc);
        Ok(())
    }

    fn ioc(&mut self) -> Result<&mut FlyscanIoc, String> {
        self.ioc
            .as_mut()
            .ok_or_else(|| "the IOC is not running".to_owned())
    }

    /// Kills the IOC (and the driver in it) without a clean shutdown (SIGKILL), as a crash or a
    /// power cut would.
    pub fn kill_ioc(&mut self) -> Result<(), String> {
        self.ioc()?.kill();
        Ok(())
    }

    /// Starts the IOC again after [`Chain::kill_ioc`] (same ports, settings file, st.cmd).
    pub fn start_ioc_again(&mut self) -> Result<(), String> {
        self.ioc()?
            .start_again()
            .map_err(|e| format!("flyscan-ioc start: {e:#}"))
    }

    /// Restarts the IOC cleanly (SIGTERM, then start).
    pub fn restart_ioc(&mut self) -> Result<(), String> {
        self.ioc()?
            .restart()
            .map_err(|e| format!("flyscan-ioc restart: {e:#}"))
    }

    /// The simulator's truth file (complete once the simulator has exited).
    pub fn truth_path(&self) -> PathBuf {
        self.dir.join("truth.jsonl")
    }

    /// Full PV name.
    pub fn pv(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Waits until `pred` holds for the PV's `caget -t` text.
    pub fn wait_pv(
        &self,
        name: &str,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, String> {
        let t = Instant::now();
        let mut last = String::new();
        while t.elapsed() < timeout {
            let v = if name == "StatusMessage" {
                self.ca.get_string(&self.pv(name))
            } else {
                self.ca.get(&self.pv(name))
            };
            match v {
                Ok(v) if pred(&v) => return Ok(v),
                Ok(v) => last = v,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "{} stayed '{last}' for {timeout:?}\n{}",
            self.pv(name),
            self.logs()
        ))
    }

    /// Writes the plan's configuration to the control PVs.
    pub fn configure(&self) -> Result<(), String> {
        let c = &self.plan.config;
        let put = |n: &str, v: String| self.ca.put(&self.pv(n), &v);
        // The Mode PV's states: Start-Step-Count, List, Time.
        put(
            "Mode",
            match c.mode {
                TriggerMode::StartStepCount => 0,
                TriggerMode::List => 1,
                TriggerMode::Time => 2,
            }
            .to_string(),
        )?;
        put("Direction", (c.direction as u8).to_string())?;
        put("Passes", c.passes.to_string())?;
        put("ChannelMask", c.channel_mask.to_string())?;
        put(
            "Encoding",
            // The Encoding PV's states (see the host driver's PV table).
            match c.encoding {
                Encoding::Compact => 0,
                Encoding::Raw => 1,
                Encoding::Rice => 2,
            }
            .to_string(),
        )?;
        if c.mode == TriggerMode::List {
            let v: Vec<f64> = self.plan.positions.iter().map(|&p| p as f64).collect();
            self.ca.put_array(&self.pv("Positions"), &v)?;
            put("NPoints", v.len().to_string())?;
        } else if c.mode == TriggerMode::Time {
            // The period in seconds (the driver turns it back into the device's ticks) and the
            // window as its two edges (equal: none).
            let period = c.step as f64 / self.clock_hz();
            put("Period", format!("{period:.12}"))?;
            put("GateLow", c.start.to_string())?;
            let high = if c.gate_span > 0 {
                c.start + i64::from(c.gate_span)
            } else {
                c.start
            };
            put("GateHigh", high.to_string())?;
            put("NPoints", c.count.to_string())?;
        } else {
            put("Start", c.start.to_string())?;
            put("Step", c.step.to_string())?;
            put("NPoints", c.count.to_string())?;
        }
        // No pause before Arm: the records hand every write to the driver in processing order.
        Ok(())
    }

    /// Arms the scan and waits until the driver reports it armed or running.
    pub fn arm(&self) -> Result<(), String> {
        self.ca.put(&self.pv("Arm"), "1")?;
        self.wait_pv(
            "Status",
            |s| matches!(s, "Armed" | "Scanning" | "Done"),
            Duration::from_secs(15),
        )
        .map(|_| ())
    }

    /// Waits for the end of the scan; returns the final Status text.
    pub fn wait_done(&self, timeout: Duration) -> Result<String, String> {
        self.wait_pv(
            "Status",
            |s| matches!(s, "Done" | "Aborted" | "Error"),
            timeout,
        )
    }

    /// Reads a scalar PV as a number.
    pub fn get_f64(&self, name: &str) -> Result<f64, String> {
        self.ca.get_f64(&self.pv(name))
    }

    /// Reads the scan's waveforms (`n` points) with caget.
    pub fn read_table_caget(&self, n: usize) -> Result<ScanTable, String> {
        let mut t = ScanTable {
            position: self.ca.get_array(&self.pv("Position"), n)?,
            energy_ev: None,
            timestamp_s: self.ca.get_array(&self.pv("Timestamp"), n)?,
            live_time_s: self.ca.get_array(&self.pv("LiveTime"), n)?,
            channels: Vec::new(),
            channel_names: Vec::new(),
        };
        for ch in self.enabled_channels() {
            t.channels
                .push(self.ca.get_array(&self.pv(&format!("CH{ch}")), n)?);
            t.channel_names.push(format!("CH{ch}"));
        }
        Ok(t)
    }

    /// Reads the scan's waveforms (`n` points) with pyepics.
    pub fn read_table_pyepics(&self, n: usize) -> Result<ScanTable, String> {
        let chans = self.enabled_channels();
        let mut names: Vec<String> = ["Position", "Timestamp", "LiveTime"]
            .iter()
            .map(|s| self.pv(s))
            .collect();
        names.extend(chans.iter().map(|c| self.pv(&format!("CH{c}"))));
        let mut cols = self.ca.get_arrays_pyepics(&names, n)?.into_iter();
        let mut next = || {
            cols.next()
                .ok_or_else(|| "pyepics returned too few columns".to_string())
        };
        let position = next()?;
        let timestamp_s = next()?;
        let live_time_s = next()?;
        let mut t = ScanTable {
            position,
            energy_ev: None,
            timestamp_s,
            live_time_s,
            ..Default::default()
        };
        for ch in chans {
            t.channels.push(next()?);
            t.channel_names.push(format!("CH{ch}"));
        }
        Ok(t)
    }

    /// Enabled channel numbers of the plan, ascending.
    pub fn enabled_channels(&self) -> Vec<u32> {
        (0..32)
            .filter(|b| self.plan.config.channel_mask & (1 << b) != 0)
            .collect()
    }

    /// The scenario file this chain runs.
    pub fn scenario_path(&self) -> &Path {
        &self.opts.scenario
    }

    /// Process id of the running IOC (the host driver runs inside it).
    pub fn ioc_pid(&self) -> Option<u32> {
        self.ioc.as_ref().and_then(FlyscanIoc::pid)
    }

    /// Device clock rate of the scenario, Hz.
    pub fn clock_hz(&self) -> f64 {
        self.scenario.clock.hz as f64
    }

    /// Stops the simulator (it writes the truth file on the way out) and waits for it.
    pub fn stop_sim(&mut self) -> Result<(), String> {
        if let Some(mut s) = self.sim.take() {
            s.stop();
        }
        if !self.truth_path().is_file() {
            return Err(format!("simulator wrote no truth file\n{}", self.logs()));
        }
        Ok(())
    }

    /// The last lines of every log, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        if let Some(p) = self.sim.as_ref() {
            s.push_str(&format!(
                "--- {} log (tail) ---\n{}\n",
                p.name(),
                p.log_tail(25)
            ));
        }
        if let Some(ioc) = self.ioc.as_ref() {
            let text = ioc.log_text();
            let lines: Vec<&str> = text.lines().collect();
            s.push_str(&format!(
                "--- flyscan-ioc log (tail) ---\n{}\n",
                lines[lines.len().saturating_sub(25)..].join("\n")
            ));
        }
        s
    }
}

/// What a completed scan looked like through CA, next to the ground truth.
#[derive(Debug)]
pub struct Outcome {
    /// Final Status text.
    pub status: String,
    /// Points read with caget.
    pub caget: ScanTable,
    /// Points read with pyepics.
    pub pyepics: ScanTable,
    /// Points read through PV Access (`pvget` of the scan table group).
    pub pva: ScanTable,
    /// `Flags` waveform.
    pub flags: Vec<f64>,
    /// The simulator's truth.
    pub truth: crate::truth::Truth,
}

impl Chain {
    /// Configures, arms, waits for the end (at most `timeout`), reads the result back with
    /// both clients, stops the simulator and loads its truth.
    pub fn run_scan(&mut self, timeout: Duration) -> Result<Outcome, String> {
        self.configure()?;
        self.arm()?;
        self.finish(timeout)
    }

    /// Second half of [`Chain::run_scan`]: for tests that act while the scan runs.
    pub fn finish(&mut self, timeout: Duration) -> Result<Outcome, String> {
        let status = self.wait_done(timeout)?;
        let n = self.get_f64("NumCaptured")? as usize;
        let caget = self.read_table_caget(n)?;
        let pyepics = self.read_table_pyepics(n)?;
        let pva = self
            .ca
            .get_table_pva(&self.pv("Scan"), &self.enabled_channels())?;
        let flags = self.ca.get_array(&self.pv("Flags"), n)?;
        self.stop_sim()?;
        let truth = crate::truth::Truth::load(&self.truth_path())?;
        Ok(Outcome {
            status,
            caget,
            pyepics,
            pva,
            flags,
            truth,
        })
    }
}

/// Writes a variant of a shipped scenario with some TOML values replaced (dotted keys, e.g.
/// `link.bit_error_rate`) into `dir`, returning its path.
pub fn scenario_variant(
    file: &str,
    name: &str,
    changes: &[(&str, toml::Value)],
) -> Result<PathBuf, String> {
    let src = workspace_root().join("sim").join("scenarios").join(file);
    let text = std::fs::read_to_string(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    let mut doc: toml::Table = text
        .parse()
        .map_err(|e| format!("{}: {e}", src.display()))?;
    for (key, value) in changes {
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().ok_or("empty key")?;
        let mut t = &mut doc;
        for p in parts {
            t = t
                .entry(p)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| format!("{key}: {p} is not a table"))?;
        }
        t.insert(last.to_owned(), value.clone());
    }
    let dir = workspace_root().join("out").join("hil").join("scenarios");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml::to_string(&doc).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    Ok(path)
}
