//! One measured end-to-end scan for the benchmarks (`e2e-bench`): simulated device → paced
//! serial line → `flyscan-ioc` → Channel Access clients, with the ground truth beside it.
//!
//! A run counts only what a user could rely on: the scan must reach `Done`, the FPGA model must
//! not have overrun, every point is checked against the simulator's truth, and points flagged
//! JUMP are not valid. Latency is measured per point: each point's trigger (the device clock
//! mapped to wall time) → the first `Tail:Index` update that carried its index to a CA client.

use crate::ca::Ca;
use crate::chain::{Chain, ChainOptions, scenario_variant};
use crate::compare::compare;
use crate::latency::{DeviceClock, quantile};
use crate::procs::Proc;
use crate::scan_table::ScanTable;
use crate::truth::Truth;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Encoder counts between presets in the generated scans.
pub const STEP: i64 = 10;

/// The JUMP flag bit of a point (protocol `PointFlags`).
const JUMP: u8 = flyscan_protocol::PointFlags::JUMP;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Output directory and PV prefix are derived from it.
    pub name: String,
    /// Line rate.
    pub baud: u32,
    /// Point encoding ("raw", "compact", "rice").
    pub encoding: String,
    /// Enabled channels (the first `channels` of the device).
    pub channels: u8,
    /// Points in the scan.
    pub points: u64,
    /// Offered point rate (motor velocity ÷ step), points/s.
    pub rate: f64,
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    /// Final `Status`.
    pub status: String,
    /// Points the truth holds.
    pub points: u64,
    /// Points that match the truth and carry no JUMP flag (0 unless the run is clean).
    pub valid: u64,
    /// Points differing from the truth.
    pub mismatches: usize,
    /// First differences, for the report.
    pub first_mismatches: Vec<String>,
    /// Edges the FPGA model lost to FIFO overrun.
    pub overruns: u64,
    /// Points flagged JUMP by the truth.
    pub jumps: u64,
    /// Offered point rate.
    pub offered: f64,
    /// Valid points ÷ (first trigger → last point seen by the tail monitor), points/s.
    pub delivered: f64,
    /// Device → host line bytes.
    pub line_bytes: u64,
    /// Line bytes ÷ the line's capacity over the same time.
    pub line_use: f64,
    /// Per-point latency, seconds (points the tail monitor saw).
    pub latency: Vec<f64>,
    /// Points no tail update carried (a slow client's monitor queue coalesced them).
    pub tail_missed: u64,
    /// Bytes a client monitoring every full waveform received over the scan.
    pub ca_full_bytes: u64,
    /// Final size of those waveforms (NumShown × 8 bytes each, as served).
    pub final_full_bytes: u64,
    /// Last point's trigger → the last full waveform reaching its final length, seconds.
    pub full_complete_after_s: f64,
    /// IOC process CPU seconds during the scan.
    pub cpu_s: f64,
    /// Scan wall time (first trigger → last point in the tail), seconds.
    pub wall_s: f64,
    /// IOC resident set at the end, bytes.
    pub rss: u64,
    /// IOC peak resident set, bytes.
    pub rss_peak: u64,
}

impl RunResult {
    /// A run whose points may count as throughput: Done, no overrun, every point valid.
    pub fn clean(&self) -> bool {
        self.status == "Done"
            && self.overruns == 0
            && self.mismatches == 0
            && self.valid == self.points
            && self.points > 0
    }

    /// Why the run is not clean ("" when it is).
    pub fn problems(&self) -> String {
        let mut p = Vec::new();
        if self.status != "Done" {
            p.push(format!("status {}", self.status));
        }
        if self.overruns > 0 {
            p.push(format!("FIFO overran ({} edges lost)", self.overruns));
        }
        if self.jumps > 0 {
            p.push(format!("{} JUMP points", self.jumps));
        }
        if self.mismatches > 0 {
            p.push(format!(
                "{} differences from the truth (first: {})",
                self.mismatches,
                self.first_mismatches.join("; ")
            ));
        }
        p.join(", ")
    }

    /// Latency quantile in ms.
    pub fn latency_ms(&self, q: f64) -> f64 {
        quantile(&self.latency, q).map_or(f64::NAN, |v| v * 1e3)
    }

    /// CA bytes ÷ final waveform bytes.
    pub fn ca_ratio(&self) -> f64 {
        self.ca_full_bytes as f64 / self.final_full_bytes.max(1) as f64
    }
}

#[derive(Deserialize)]
struct Monitor {
    tail: Vec<(f64, u64, u64)>,
    status: Vec<(f64, String)>,
    /// Per waveform: [t, elements, bytes] of every update.
    full: BTreeMap<String, Vec<(f64, u64, u64)>>,
    final_len: Option<u64>,
}

/// The full waveforms of a scan on `channels` channels (PV suffixes).
fn full_waveforms(channels: u8) -> Vec<String> {
    let mut v: Vec<String> = [
        "Position",
        "Timestamp",
        "LiveTime",
        "Flags",
        "Energy",
        "EnergyStart",
        "EnergyCentre",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    v.extend((0..channels).map(|c| format!("CH{c}")));
    v
}

fn scenario(spec: &RunSpec) -> Result<std::path::PathBuf, String> {
    use toml::Value;
    let mask = if spec.channels >= 32 {
        u32::MAX
    } else {
        (1u32 << spec.channels) - 1
    };
    let count = i64::try_from(spec.points).map_err(|e| e.to_string())?;
    scenario_variant(
        "uniform.toml",
        &spec.name,
        &[
            ("link.baud", Value::Integer(i64::from(spec.baud))),
            ("scan.encoding", Value::String(spec.encoding.clone())),
            ("scan.step", Value::Integer(STEP)),
            ("scan.count", Value::Integer(count)),
            ("scan.channel_mask", Value::Integer(i64::from(mask))),
            (
                "detectors.channels",
                Value::Integer(i64::from(spec.channels)),
            ),
            ("motor.velocity", Value::Float(spec.rate * STEP as f64)),
            (
                "motor.acceleration",
                Value::Float(spec.rate * STEP as f64 * 50.0),
            ),
        ],
    )
}

/// Runs one scan and measures it.
pub fn run(spec: &RunSpec) -> Result<RunResult, String> {
    let mut opts = ChainOptions::scenario(&spec.name, "uniform.toml");
    opts.scenario = scenario(spec)?;
    opts.device = None;
    opts.max_points = usize::try_from(spec.points).map_err(|e| e.to_string())? + 10;
    let mut chain = Chain::start(opts)?;
    chain.configure()?;
    let names = full_waveforms(spec.channels);
    let mon_dir = chain.dir.join("monitor");
    std::fs::create_dir_all(&mon_dir).map_err(|e| e.to_string())?;
    let scan_s = spec.points as f64 / spec.rate;
    let timeout = scan_s * 3.0 + 30.0;
    let tail_mon = start_monitor(&chain.ca, "tail", &chain.prefix, &mon_dir, timeout, &[])?;
    let full_mon = start_monitor(&chain.ca, "full", &chain.prefix, &mon_dir, timeout, &names)?;
    let pid = chain.ioc_pid().ok_or("the IOC is not running")?;
    let cpu0 = cpu_seconds(pid)?;
    let armed_at = unix_now();
    chain.arm()?;
    let status = chain.wait_done(Duration::from_secs_f64(timeout))?;
    for mut m in [tail_mon, full_mon] {
        if m.wait_timeout(Duration::from_secs_f64(timeout + 60.0))
            .is_none()
        {
            return Err(format!(
                "{}: a CA monitor did not finish; its log:\n{}",
                spec.name,
                m.log_tail(20)
            ));
        }
    }
    let cpu1 = cpu_seconds(pid)?;
    let (rss, rss_peak) = rss(pid)?;
    chain.stop_sim()?;
    let sim_out = std::fs::read_to_string(chain.dir.join("sim.stdout")).unwrap_or_default();
    let clock = DeviceClock::from_sim_stdout(&sim_out)
        .ok_or("the simulator printed no DEVICE_CLOCK line; cannot map device time to wall time")?;
    let truth = Truth::load(&chain.truth_path())?;
    let tail = read_monitor(&mon_dir, "tail")?;
    let mon = read_monitor(&mon_dir, "full")?;
    let table = read_table(&mon_dir, spec.channels)?;
    let flags = read_f64(&mon_dir.join("Flags.f64"))?;
    let m = compare(&table, &truth.points, chain.clock_hz());
    let wall = |tick: u64| clock.wall(tick as f64);
    let mut r = RunResult {
        status,
        points: truth.points.len() as u64,
        mismatches: m.count,
        first_mismatches: m.first.iter().take(3).cloned().collect(),
        overruns: truth.summary.fifo_overruns,
        jumps: truth.summary.jump_points,
        offered: spec.rate,
        line_bytes: truth.summary.up_bytes_sent,
        cpu_s: cpu1 - cpu0,
        rss,
        rss_peak,
        ..Default::default()
    };
    // Per-point latency: the first tail update that carried each index.
    let n = truth.points.len();
    let mut seen = vec![false; n];
    let mut last_arrival = f64::NAN;
    for &(t, first, count) in tail.tail.iter().filter(|u| u.0 >= armed_at) {
        for i in first..first + count {
            let Some(p) = truth.points.get(i as usize) else {
                continue;
            };
            if !std::mem::replace(&mut seen[i as usize], true) {
                r.latency.push(t - wall(p.timestamp));
                last_arrival = t;
            }
        }
    }
    r.tail_missed = seen.iter().filter(|s| !**s).count() as u64;
    if r.mismatches == 0 && r.overruns == 0 && flags.len() == n {
        r.valid = flags
            .iter()
            .filter(|f| f.is_finite() && (**f as u8) & JUMP == 0)
            .count() as u64;
    }
    if let Some(first) = truth.points.first() {
        r.wall_s = last_arrival - wall(first.timestamp);
        if r.wall_s > 0.0 {
            r.delivered = r.valid as f64 / r.wall_s;
            let capacity = f64::from(flyscan_protocol::limits::line_bytes_per_sec(spec.baud));
            r.line_use = r.line_bytes as f64 / (capacity * r.wall_s);
        }
    }
    let final_len = mon.final_len.unwrap_or(0);
    let scan_updates = |u: &Vec<(f64, u64, u64)>| -> Vec<(f64, u64, u64)> {
        u.iter().copied().filter(|x| x.0 >= armed_at).collect()
    };
    let mut complete_at = f64::NAN;
    let mut short = false;
    for u in mon.full.values().map(scan_updates) {
        r.ca_full_bytes += u.iter().map(|x| x.2).sum::<u64>();
        match u.iter().find(|x| x.1 >= final_len) {
            Some(x) => complete_at = complete_at.max(x.0),
            None => short = true,
        }
    }
    if let Some(last) = truth.points.last() {
        r.full_complete_after_s = complete_at - wall(last.timestamp);
    }
    r.final_full_bytes = final_len * 8 * names.len() as u64;
    if short {
        r.status = format!(
            "{} (a full waveform never reached its final length)",
            r.status
        );
    }
    if ![&mon, &tail]
        .iter()
        .all(|m| m.status.iter().any(|(_, s)| s == "Done"))
        && r.status == "Done"
    {
        r.status = "Done (not seen by the monitor)".into();
    }
    Ok(r)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn read_monitor(dir: &Path, role: &str) -> Result<Monitor, String> {
    let path = dir.join(format!("{role}.json"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn start_monitor(
    ca: &Ca,
    role: &str,
    prefix: &str,
    dir: &Path,
    timeout: f64,
    names: &[String],
) -> Result<Proc, String> {
    let script = crate::chain::workspace_root()
        .join("hil-tests")
        .join("python")
        .join("bench_monitor.py");
    let mut cmd = ca.tool("python");
    cmd.arg(script)
        .arg(role)
        .arg(prefix)
        .arg(dir)
        .arg(timeout.to_string())
        .args(names.iter().map(|n| format!("{prefix}{n}")));
    let (proc, _) = Proc::spawn_until_line(
        &format!("{role} monitor"),
        cmd,
        &dir.join(format!("{role}.log")),
        "READY",
        Duration::from_secs(60),
    )?;
    Ok(proc)
}

fn read_f64(path: &Path) -> Result<Vec<f64>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            f64::from_le_bytes(b)
        })
        .collect())
}

fn read_table(dir: &Path, channels: u8) -> Result<ScanTable, String> {
    let col = |n: &str| read_f64(&dir.join(format!("{n}.f64")));
    let mut t = ScanTable {
        position: col("Position")?,
        energy_ev: None,
        timestamp_s: col("Timestamp")?,
        live_time_s: col("LiveTime")?,
        channels: Vec::new(),
        channel_names: Vec::new(),
    };
    for c in 0..channels {
        t.channels.push(col(&format!("CH{c}"))?);
        t.channel_names.push(format!("CH{c}"));
    }
    Ok(t)
}

/// User + system CPU seconds of a process so far (`/proc/<pid>/stat`).
pub fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat(5), i.e. 11 and 12 after the name.
    Ok((num(11) + num(12)) / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// (VmRSS, VmHWM) of a process, bytes.
pub fn rss(pid: u32) -> Result<(u64, u64), String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    let kb = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |v| v * 1024)
    };
    Ok((kb("VmRSS:"), kb("VmHWM:")))
}
