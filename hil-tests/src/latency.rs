//! Trigger → Channel Access latency: a `camonitor` on `NumCaptured` stamps each update when it
//! reaches the CA client; the simulator prints the wall time at which its device clock started
//! (`DEVICE_CLOCK`), so every point's trigger has a wall time too.

use crate::ca::Ca;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};

/// A running `camonitor -tc` on one PV.
#[derive(Debug)]
pub struct CaMonitor {
    child: Child,
    rx: Receiver<String>,
}

impl CaMonitor {
    /// Starts monitoring `pv` (full name).
    pub fn start(ca: &Ca, camonitor: &std::path::Path, pv: &str) -> Result<Self, String> {
        let mut cmd = Command::new(camonitor);
        cmd.envs(ca.env().iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(["-tc", "-g17", "-f0"])
            .arg(pv)
            // The client timestamps are printed in local time: make that UTC.
            .env("TZ", "UTC")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().map_err(|e| format!("camonitor: {e}"))?;
        let stdout = child.stdout.take().ok_or("no camonitor stdout")?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self { child, rx })
    }

    /// Stops the monitor; returns (client receive time as Unix seconds, value) per update.
    pub fn finish(mut self) -> Vec<(f64, f64)> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.rx
            .try_iter()
            .filter_map(|l| parse_update(&l))
            .collect()
    }
}

impl Drop for CaMonitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses `PV (YYYY-MM-DD hh:mm:ss.ffffff) value [status severity]` (TZ=UTC).
pub fn parse_update(line: &str) -> Option<(f64, f64)> {
    let (open, close) = (line.find('(')?, line.find(')')?);
    let stamp = line.get(open + 1..close)?;
    let t = chrono::NaiveDateTime::parse_from_str(stamp.trim(), "%Y-%m-%d %H:%M:%S%.f").ok()?;
    let utc = t.and_utc();
    let recv = utc.timestamp() as f64 + f64::from(utc.timestamp_subsec_nanos()) * 1e-9;
    let v = line
        .get(close + 1..)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((recv, v))
}

/// The simulator's `DEVICE_CLOCK <unix s> <tick> <ticks per wall s>` line, from its stdout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeviceClock {
    /// Wall time (Unix seconds) of `tick`.
    pub unix_s: f64,
    /// Device tick at that moment.
    pub tick: f64,
    /// Device ticks per wall second.
    pub ticks_per_s: f64,
}

impl DeviceClock {
    /// Finds the announcement in the simulator's stdout.
    pub fn from_sim_stdout(text: &str) -> Option<Self> {
        text.lines().find_map(|l| {
            let mut it = l.strip_prefix("DEVICE_CLOCK ")?.split_whitespace();
            Some(Self {
                unix_s: it.next()?.parse().ok()?,
                tick: it.next()?.parse().ok()?,
                ticks_per_s: it.next()?.parse().ok()?,
            })
        })
    }

    /// Wall time of a device tick.
    pub fn wall(&self, tick: f64) -> f64 {
        self.unix_s + (tick - self.tick) / self.ticks_per_s
    }
}

/// Latency of each update: arrival − trigger of the newest point it made visible
/// (`timestamps_s` are the points' device timestamps in seconds of a `clock_hz` clock).
pub fn latencies(
    updates: &[(f64, f64)],
    timestamps_s: &[f64],
    clock_hz: f64,
    clock: DeviceClock,
) -> Vec<f64> {
    let mut seen = 0usize;
    let mut out = Vec::new();
    for &(recv, v) in updates {
        let n = v.max(0.0) as usize;
        if n <= seen || n > timestamps_s.len() {
            continue;
        }
        seen = n;
        out.push(recv - clock.wall(timestamps_s[n - 1] * clock_hz));
    }
    out
}

/// The `p` quantile (0–1) of `v`, nearest rank; None when empty.
pub fn quantile(v: &[f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    Some(s[((s.len() - 1) as f64 * p.clamp(0.0, 1.0)).round() as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_camonitor_lines() {
        let (t, v) = parse_update(
            "X:NumCaptured                  (2026-11-28 00:17:29.805812) 42 UDF INVALID",
        )
        .unwrap();
        assert_eq!(v, 42.0);
        assert!((t - 1_795_825_049.805_812).abs() < 1e-3, "{t}");
        assert!(parse_update("garbage").is_none());
    }

    #[test]
    fn latency_of_the_newest_point_per_update() {
        let clock = DeviceClock {
            unix_s: 100.0,
            tick: 0.0,
            ticks_per_s: 1e8,
        };
        // Points triggered at 0.1 s and 0.2 s of device time.
        let ts = [0.1, 0.2];
        let updates = [(100.11, 1.0), (100.115, 1.0), (100.23, 2.0)];
        let l = latencies(&updates, &ts, 1e8, clock);
        assert_eq!(l.len(), 2);
        assert!(
            (l[0] - 0.01).abs() < 1e-9 && (l[1] - 0.03).abs() < 1e-9,
            "{l:?}"
        );
        assert_eq!(quantile(&l, 1.0), Some(l[1]));
    }
}
