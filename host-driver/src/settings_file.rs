//! The settings file: the configuration as last written and the scan in progress, kept across
//! restarts of the IOC (autosave is not part of the libraries this IOC links). Written whole to
//! a temporary file, flushed to disk and renamed over the old one, so a crash or a kill at any
//! moment leaves either the old file or the new one, never a mix.

use crate::core::{Controls, ScanRecord};
use flyscan_protocol::{Direction, Encoding, ScanConfig, TriggerMode};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the file holds.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Saved {
    /// The control values.
    pub controls: SavedControls,
    /// The scan in progress when it was written.
    pub scan: Option<SavedScan>,
}

/// [`Controls`] as stored (a value missing from an older file takes the record's default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)]
pub struct SavedControls {
    pub mode: u16,
    pub start: f64,
    pub step: f64,
    pub npoints: i64,
    pub period: f64,
    pub gate_low: f64,
    pub gate_high: f64,
    pub positions: Vec<f64>,
    pub direction: u16,
    pub passes: i64,
    pub channel_mask: i64,
    pub encoding: u16,
    pub d_spacing: f64,
    pub counts_per_degree: f64,
    pub angle_offset: f64,
    pub crystal: String,
    pub roles: Vec<String>,
}

impl Default for SavedControls {
    fn default() -> Self {
        Self::from(&Controls::default())
    }
}

impl From<&Controls> for SavedControls {
    fn from(c: &Controls) -> Self {
        Self {
            mode: c.mode,
            start: c.start,
            step: c.step,
            npoints: c.npoints,
            period: c.period,
            gate_low: c.gate_low,
            gate_high: c.gate_high,
            positions: c.positions.clone(),
            direction: c.direction,
            passes: c.passes,
            channel_mask: c.channel_mask,
            encoding: c.encoding,
            d_spacing: c.calibration.d_spacing,
            counts_per_degree: c.calibration.counts_per_degree,
            angle_offset: c.calibration.angle_offset,
            crystal: c.crystal.clone(),
            roles: c.roles.clone(),
        }
    }
}

impl From<&SavedControls> for Controls {
    fn from(c: &SavedControls) -> Self {
        Self {
            mode: c.mode,
            start: c.start,
            step: c.step,
            npoints: c.npoints,
            period: c.period,
            gate_low: c.gate_low,
            gate_high: c.gate_high,
            positions: c.positions.clone(),
            direction: c.direction,
            passes: c.passes,
            channel_mask: c.channel_mask,
            encoding: c.encoding,
            calibration: crate::core::Calibration {
                d_spacing: c.d_spacing,
                counts_per_degree: c.counts_per_degree,
                angle_offset: c.angle_offset,
            },
            crystal: c.crystal.clone(),
            roles: c.roles.clone(),
        }
    }
}

/// [`ScanRecord`] as stored (protocol codes for the enums).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct SavedScan {
    pub boot_id: u32,
    pub scan_id: u32,
    pub mode: u8,
    pub direction: u8,
    pub encoding: u8,
    pub start: i64,
    pub step: i64,
    pub count: u32,
    pub passes: u16,
    pub channel_mask: u32,
    pub max_batch_points: u16,
    pub max_latency_us: u32,
    /// Absent from files written before time mode existed.
    #[serde(default)]
    pub gate_span: u32,
}

impl From<&ScanRecord> for SavedScan {
    fn from(r: &ScanRecord) -> Self {
        let c = r.config;
        Self {
            boot_id: r.boot_id,
            scan_id: r.scan_id,
            mode: c.mode as u8,
            direction: c.direction as u8,
            encoding: c.encoding as u8,
            start: c.start,
            step: c.step,
            count: c.count,
            passes: c.passes,
            channel_mask: c.channel_mask,
            max_batch_points: c.max_batch_points,
            max_latency_us: c.max_latency_us,
            gate_span: c.gate_span,
        }
    }
}

impl SavedScan {
    /// The record, if its codes are valid.
    pub fn record(&self) -> Option<ScanRecord> {
        Some(ScanRecord {
            boot_id: self.boot_id,
            scan_id: self.scan_id,
            config: ScanConfig {
                mode: TriggerMode::from_u8(self.mode)?,
                direction: Direction::from_u8(self.direction)?,
                encoding: Encoding::from_u8(self.encoding)?,
                start: self.start,
                step: self.step,
                count: self.count,
                passes: self.passes,
                channel_mask: self.channel_mask,
                max_batch_points: self.max_batch_points,
                max_latency_us: self.max_latency_us,
                gate_span: self.gate_span,
            },
        })
    }
}

/// The settings file of one IOC.
#[derive(Debug, Clone)]
pub struct SettingsFile {
    path: PathBuf,
}

impl SettingsFile {
    /// The file `settings.json` in `dir` (created when first written).
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            path: dir.join("settings.json"),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads it: `Ok(None)` if there is none yet; an error names the file and the fault
    /// (the IOC then starts from the database's values and says so).
    pub fn load(&self) -> Result<Option<Saved>, String> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", self.path.display())),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{} is not a settings file: {e}", self.path.display()))
    }

    /// Writes it atomically (temporary file, fsync, rename, fsync of the folder).
    pub fn store(&self, s: &Saved) -> std::io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_vec(s).map_err(std::io::Error::other)?;
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        // The rename itself must reach the disk too.
        std::fs::File::open(dir)?.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_file() {
        let dir = std::env::temp_dir().join(format!("flyscan-settings-{}", std::process::id()));
        let f = SettingsFile::in_dir(&dir);
        let _ = std::fs::remove_file(f.path());
        assert_eq!(f.load(), Ok(None));
        let controls = Controls {
            mode: 1,
            positions: vec![1.0, 2.5, -3.0],
            channel_mask: 4_294_967_295,
            roles: vec!["I0".into(), String::new(), "It".into()],
            crystal: "Si(311)".into(),
            ..Controls::default()
        };
        let rec = ScanRecord {
            boot_id: 7,
            scan_id: 9,
            config: ScanConfig::default(),
        };
        let s = Saved {
            controls: SavedControls::from(&controls),
            scan: Some(SavedScan::from(&rec)),
        };
        f.store(&s).expect("store");
        let back = f.load().expect("load").expect("present");
        assert_eq!(back, s);
        assert_eq!(Controls::from(&back.controls), controls);
        assert_eq!(back.scan.and_then(|x| x.record()), Some(rec));
        // A file of an older version (no calibration, no roles) loads with the defaults.
        std::fs::write(f.path(), br#"{"controls":{"npoints":7},"scan":null}"#).expect("write");
        let old = f.load().expect("load").expect("present");
        assert_eq!(old.controls.npoints, 7);
        assert_eq!(
            Controls::from(&old.controls).calibration.d_spacing,
            3.135_60
        );
        std::fs::write(f.path(), b"{ not json").expect("write");
        assert!(f.load().unwrap_err().contains("not a settings file"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
