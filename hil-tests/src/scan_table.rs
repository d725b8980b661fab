//! A finished scan as columns, as read back from the IOC: the common input of the XDI writer,
//! the plot and the ground-truth comparison.

/// Columns of one scan; every column has one entry per point.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanTable {
    /// Encoder position at each trigger, counts.
    pub position: Vec<f64>,
    /// Monochromator energy at each trigger, eV, when the scan maps positions to energy.
    pub energy_ev: Option<Vec<f64>>,
    /// Trigger time, seconds of device clock.
    pub timestamp_s: Vec<f64>,
    /// Live time of each bin, seconds.
    pub live_time_s: Vec<f64>,
    /// Per-channel counts, `channels[c][i]`.
    pub channels: Vec<Vec<f64>>,
    /// Names of the channels (XDI column names), same order as `channels`.
    pub channel_names: Vec<String>,
}

impl ScanTable {
    /// Number of points (the length of the position column).
    pub fn len(&self) -> usize {
        self.position.len()
    }

    /// True when the scan has no point.
    pub fn is_empty(&self) -> bool {
        self.position.is_empty()
    }

    /// Checks every column has the same length; names the first that does not.
    pub fn check_shape(&self) -> Result<(), String> {
        let n = self.len();
        let mut cols: Vec<(&str, usize)> = vec![
            ("timestamp", self.timestamp_s.len()),
            ("live_time", self.live_time_s.len()),
        ];
        if let Some(e) = &self.energy_ev {
            cols.push(("energy", e.len()));
        }
        for (name, c) in self.channel_names.iter().zip(&self.channels) {
            cols.push((name.as_str(), c.len()));
        }
        if self.channel_names.len() != self.channels.len() {
            return Err(format!(
                "{} channel names for {} channels",
                self.channel_names.len(),
                self.channels.len()
            ));
        }
        match cols.into_iter().find(|(_, l)| *l != n) {
            Some((name, l)) => Err(format!("column {name} has {l} points, position has {n}")),
            None => Ok(()),
        }
    }
}
