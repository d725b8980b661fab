//! Test harness: a fake device on a pseudo-terminal speaking the protocol crate's frames, the
//! `flyscan-ioc` binary (the IOC with the driver inside), and independent CA clients (C
//! `caget`, pyepics, caproto).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use flyscan_host::launcher::{self as ioc, FlyscanIoc, IocOptions};
use flyscan_protocol::{Encoding, ScanConfig};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use flyscan_sim::scripted::{
    CLOCK_HZ, ScriptOptions as DevOptions, ScriptedDevice, expected_point,
};

/// The scripted device of `flyscan-sim`, as these tests use it.
pub struct FakeDevice(ScriptedDevice);

impl FakeDevice {
    pub fn start(opts: DevOptions) -> Self {
        Self(ScriptedDevice::start(opts).expect("scripted device"))
    }
}

impl std::ops::Deref for FakeDevice {
    type Target = ScriptedDevice;
    fn deref(&self) -> &ScriptedDevice {
        &self.0
    }
}

/// Peak resident set of a process so far, bytes (VmHWM).
pub fn peak_rss(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// Options for a `flyscan-ioc` of 4 channels on `serial`.
pub fn ioc_options(prefix: &str, serial: &std::path::Path, npts: usize) -> IocOptions {
    IocOptions::new(env!("CARGO_BIN_EXE_flyscan-ioc"), prefix, serial, 4, npts)
}

/// Starts a `flyscan-ioc` of 4 channels on `serial`.
pub fn start_ioc(prefix: &str, serial: &std::path::Path, npts: usize) -> FlyscanIoc {
    FlyscanIoc::start(ioc_options(prefix, serial, npts)).expect("flyscan-ioc")
}

/// `caget` (C client) of a PV; arrays come back as numbers, printed with 17 digits.
pub fn caget(ioc: &FlyscanIoc, pv: &str) -> Vec<f64> {
    let out = Command::new(ioc::ca_tool("caget"))
        .args(["-t", "-n", "-w", "5", "-g", "17", pv])
        .envs(ioc.client_env())
        .output()
        .expect("caget");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "caget {pv} failed: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let words: Vec<&str> = text.split_whitespace().collect();
    let nums: Vec<f64> = words
        .iter()
        .map(|w| {
            if *w == "nan" || *w == "-nan" {
                f64::NAN
            } else {
                w.parse().unwrap_or(f64::NAN)
            }
        })
        .collect();
    nums
}

/// `caget` of a waveform: reads `.NORD`, then that many elements (this caget otherwise
/// returns all NELM elements).
pub fn caget_array(ioc: &FlyscanIoc, pv: &str) -> Vec<f64> {
    let nord = caget(ioc, &format!("{pv}.NORD"))[0] as usize;
    if nord == 0 {
        return Vec::new();
    }
    let out = Command::new(ioc::ca_tool("caget"))
        .args(["-t", "-w", "5", "-g", "17", "-#", &nord.to_string(), pv])
        .envs(ioc.client_env())
        .output()
        .expect("caget");
    assert!(
        out.status.success(),
        "caget {pv}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<f64> = text
        .split_whitespace()
        .map(|w| w.parse().unwrap_or(f64::NAN))
        .collect();
    // First number is the element count.
    assert_eq!(
        nums.first().copied(),
        Some(nord as f64),
        "caget count for {pv}"
    );
    nums[1..].to_vec()
}

pub fn caget_text(ioc: &FlyscanIoc, pv: &str) -> String {
    let out = Command::new(ioc::ca_tool("caget"))
        .args(["-t", "-w", "5", "-S", pv])
        .envs(ioc.client_env())
        .output()
        .expect("caget");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn caput(ioc: &FlyscanIoc, pv: &str, value: &str) {
    let out = Command::new(ioc::ca_tool("caput"))
        .args(["-t", "-w", "5", pv, value])
        .envs(ioc.client_env())
        .output()
        .expect("caput");
    assert!(
        out.status.success(),
        "caput {pv} {value}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn caput_array(ioc: &FlyscanIoc, pv: &str, values: &[f64]) {
    let mut args = vec![
        "-t".to_owned(),
        "-w".into(),
        "5".into(),
        "-a".into(),
        pv.to_owned(),
        values.len().to_string(),
    ];
    args.extend(values.iter().map(|v| v.to_string()));
    let out = Command::new(ioc::ca_tool("caput"))
        .args(&args)
        .envs(ioc.client_env())
        .output()
        .expect("caput");
    assert!(
        out.status.success(),
        "caput -a {pv}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// pyepics put of `n` values 0, 1, … to an array PV (pyepics cuts what exceeds the record).
pub fn pyput_range(ioc: &FlyscanIoc, pv: &str, n: usize) {
    let out = python(ioc)
        .args(["put_range", pv, &n.to_string()])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "pyepics put: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn python(ioc: &FlyscanIoc) -> Command {
    let mut c = Command::new(ioc::venv_dir().join("bin").join("python"));
    c.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ca_client.py"))
        .envs(ioc.client_env());
    c
}

/// pyepics reads of several PVs.
pub fn pyget(ioc: &FlyscanIoc, pvs: &[String]) -> serde_json::Value {
    let out = python(ioc).arg("get").args(pvs).output().expect("python");
    assert!(
        out.status.success(),
        "pyepics get: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Starts a pyepics monitor (returns once it is connected); `finish` gives what it saw.
pub struct PyMonitor(Child);

impl PyMonitor {
    pub fn start(ioc: &FlyscanIoc, kind: &str, pv: &str, seconds: f64) -> Self {
        let mut child = python(ioc)
            .args([kind, pv, &seconds.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python");
        let mut out = child.stdout.take().unwrap();
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while out.read(&mut b).unwrap_or(0) == 1 && b[0] != b'\n' {
            line.push(b[0]);
        }
        assert_eq!(String::from_utf8_lossy(&line), "READY");
        child.stdout = Some(out);
        Self(child)
    }

    pub fn finish(self) -> serde_json::Value {
        let out = self.0.wait_with_output().expect("python");
        serde_json::from_slice(&out.stdout).expect("json")
    }
}

/// Runs `n` rounds of "write a random valid configuration, then Arm at once, wait for the end"
/// in one pyepics process; returns the configurations written, in order.
pub fn race(ioc: &FlyscanIoc, n: u32, seed: u64) -> serde_json::Value {
    let out = python(ioc)
        .args(["race", ioc.prefix(), &n.to_string(), &seed.to_string()])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "race: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        ioc.log_text()
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// `pvget -M json` (PV Access, C++ client) of a PV: its whole output.
pub fn pvget_text(ioc: &FlyscanIoc, pv: &str) -> String {
    let out = Command::new(ioc::ca_tool("pvget"))
        .args(["-w", "5", "-M", "json", pv])
        .envs(ioc.client_env())
        .output()
        .expect("pvget");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "pvget {pv}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The array `key:[…]` in `pvget -M json` output.
pub fn json_array(text: &str, key: &str) -> Vec<f64> {
    let tag = format!("{key}:[");
    let start = text
        .find(&tag)
        .unwrap_or_else(|| panic!("no {key} array in {text}"))
        + tag.len();
    let end = start + text[start..].find(']').expect("closing bracket");
    text[start..end]
        .split(',')
        .filter(|w| !w.trim().is_empty())
        .map(|w| {
            let w = w.trim();
            if w.eq_ignore_ascii_case("nan") || w.eq_ignore_ascii_case("-nan") {
                f64::NAN
            } else {
                w.parse().unwrap_or_else(|_| panic!("{key}: {w:?}"))
            }
        })
        .collect()
}

/// `pvget` (PV Access) of an array PV.
pub fn pvget_array(ioc: &FlyscanIoc, pv: &str) -> Vec<f64> {
    json_array(&pvget_text(ioc, pv), "value")
}

pub fn caput_as(ioc: &FlyscanIoc, host: &str, pv: &str, value: f64) -> serde_json::Value {
    let out = python(ioc)
        .args(["put_as", host, pv, &value.to_string()])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "caproto put: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Polls `f` until it returns Some, or panics after `secs` with `what` and the IOC's log.
pub fn wait_for<T>(
    secs: u64,
    what: &str,
    ioc: Option<&FlyscanIoc>,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!(
                "timed out waiting for {what}\n--- IOC log ---\n{}",
                ioc.map(|d| d.log_text()).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Expected waveforms for `n` points of `cfg`.
pub struct Expected {
    pub position: Vec<f64>,
    pub timestamp: Vec<f64>,
    pub live_time: Vec<f64>,
    pub channels: Vec<Vec<f64>>,
}

pub fn expected(cfg: &ScanConfig, list: &[i64], n: u32) -> Expected {
    let mut e = Expected {
        position: vec![],
        timestamp: vec![],
        live_time: vec![],
        channels: vec![vec![]; 32],
    };
    for i in 0..n {
        let p = expected_point(cfg, list, i);
        e.position.push(p.position as f64);
        e.timestamp.push(p.timestamp as f64 / CLOCK_HZ as f64);
        e.live_time.push(f64::from(p.live_time) / CLOCK_HZ as f64);
        let mut c = p.counts.iter();
        for ch in 0..32 {
            if cfg.channel_mask & (1 << ch) != 0 {
                e.channels[ch].push(f64::from(*c.next().unwrap()));
            }
        }
    }
    e
}

/// Exact equality that treats NaN as equal to NaN (lost points).
pub fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
}

pub fn json_f64s(v: &serde_json::Value) -> Vec<f64> {
    match v {
        serde_json::Value::Array(a) => a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect(),
        x => vec![x.as_f64().unwrap_or(f64::NAN)],
    }
}

pub fn unique_prefix(name: &str) -> String {
    format!("T{}{}:", std::process::id() % 10000, name)
}

pub fn encoding_default() -> Encoding {
    Encoding::Compact
}

/// Asserts exact equality (NaN = NaN), reporting the first difference.
pub fn assert_same(got: &[f64], want: &[f64], what: &str) {
    if same(got, want) {
        return;
    }
    let first = got
        .iter()
        .zip(want)
        .position(|(x, y)| !(x == y || (x.is_nan() && y.is_nan())));
    panic!(
        "{what}: got {} values, want {}; first difference at {first:?}: got {:?} want {:?}",
        got.len(),
        want.len(),
        first.and_then(|i| got.get(i)),
        first.and_then(|i| want.get(i))
    );
}
