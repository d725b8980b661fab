//! Channel Access through EPICS base's own C command-line clients (`caget`, `caput`) and through
//! pyepics: the bench reads results with clients that share no code with the host driver.

use std::path::PathBuf;
use std::process::Command;

/// A CA client configuration: the venv holding the tools and the environment pointing at one IOC.
#[derive(Debug, Clone)]
pub struct Ca {
    venv: PathBuf,
    env: Vec<(String, String)>,
}

impl Ca {
    /// Clients for the IOC reached with `env` (see `flyscan_host::launcher::client_env`).
    pub fn new(venv: PathBuf, env: Vec<(String, String)>) -> Self {
        Self { venv, env }
    }

    /// The client environment.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// A command for one of the venv's tools (`python`, or an EPICS base client such as
    /// `caget`), with this IOC's client environment.
    pub fn tool(&self, name: &str) -> Command {
        let path = if name == "python" {
            self.venv.join("bin").join(name)
        } else {
            flyscan_host::launcher::ca_tool(name)
        };
        let mut c = Command::new(path);
        c.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c
    }

    fn run(&self, mut cmd: Command) -> Result<String, String> {
        let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(format!(
                "{cmd:?} failed ({}): {}{}",
                out.status,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(stdout)
    }

    /// `caput -c -w T pv value` (waits for completion; enum PVs take their index or string).
    pub fn put(&self, pv: &str, value: &str) -> Result<(), String> {
        let mut c = self.tool("caput");
        c.args(["-t", "-w", "10", pv, value]);
        self.run(c).map(|_| ())
    }

    /// Writes an array (`caput -a`).
    pub fn put_array(&self, pv: &str, values: &[f64]) -> Result<(), String> {
        let mut c = self.tool("caput");
        c.args(["-t", "-w", "10", "-a", pv])
            .arg(values.len().to_string());
        c.args(values.iter().map(|v| format!("{v}")));
        self.run(c).map(|_| ())
    }

    /// Reads a scalar as text (`caget -t`); enums come back as their state string.
    pub fn get(&self, pv: &str) -> Result<String, String> {
        let mut c = self.tool("caget");
        c.args(["-t", "-w", "5", pv]);
        self.run(c).map(|s| s.trim().to_owned())
    }

    /// Reads a CHAR waveform holding a long string (`caget -t -S`).
    pub fn get_string(&self, pv: &str) -> Result<String, String> {
        let mut c = self.tool("caget");
        c.args(["-t", "-S", "-w", "5", pv]);
        self.run(c).map(|s| s.trim().to_owned())
    }

    /// Reads a scalar as a number (`caget -t -n`, enums as their index).
    pub fn get_f64(&self, pv: &str) -> Result<f64, String> {
        let mut c = self.tool("caget");
        c.args(["-t", "-n", "-w", "5", "-g17", pv]);
        let s = self.run(c)?;
        s.trim()
            .parse()
            .map_err(|e| format!("{pv}: '{}' is not a number: {e}", s.trim()))
    }

    /// Reads the first `count` elements of a waveform with full double precision.
    pub fn get_array(&self, pv: &str, count: usize) -> Result<Vec<f64>, String> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut c = self.tool("caget");
        c.args(["-t", "-w", "10", "-g17", "-#"])
            .arg(count.to_string())
            .arg(pv);
        let s = self.run(c)?;
        let mut it = s.split_whitespace();
        let n: usize = it
            .next()
            .ok_or_else(|| format!("{pv}: empty reply"))?
            .parse()
            .map_err(|e| format!("{pv}: bad element count: {e}"))?;
        let v: Result<Vec<f64>, _> = it
            .map(|x| {
                if x == "nan" {
                    Ok(f64::NAN)
                } else {
                    x.parse::<f64>()
                }
            })
            .collect();
        let v = v.map_err(|e| format!("{pv}: bad element: {e}"))?;
        if v.len() != n || n != count {
            return Err(format!(
                "{pv}: asked {count} elements, got {n} announced and {} values",
                v.len()
            ));
        }
        Ok(v)
    }

    /// Reads waveforms with pyepics (a second, independent client): returns each PV's values,
    /// `count` elements each.
    pub fn get_arrays_pyepics(
        &self,
        pvs: &[String],
        count: usize,
    ) -> Result<Vec<Vec<f64>>, String> {
        let script = r#"
import json, sys
import epicscorelibs.path.pyepics  # use the venv's libca
import epics
count = int(sys.argv[1])
out = []
for name in sys.argv[2:]:
    v = epics.caget(name, count=count, timeout=10.0, use_monitor=False)
    if v is None:
        sys.exit(f"pyepics: no value for {name}")
    out.append([None if x != x else float(x) for x in list(v)])
json.dump(out, sys.stdout)
"#;
        let mut c = self.tool("python");
        c.arg("-c").arg(script).arg(count.to_string()).args(pvs);
        let s = self.run(c)?;
        let v: Vec<Vec<Option<f64>>> =
            serde_json::from_str(&s).map_err(|e| format!("pyepics output: {e}"))?;
        Ok(v.into_iter()
            .map(|col| col.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
            .collect())
    }
}
