//! Point-by-point comparison of what a CA client read back with the ground truth.

use crate::scan_table::ScanTable;
use crate::truth::TruthPoint;

/// What the comparison found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mismatches {
    /// Points compared.
    pub compared: usize,
    /// Human-readable differences (at most the first 20).
    pub first: Vec<String>,
    /// Number of differing values.
    pub count: usize,
}

impl Mismatches {
    fn add(&mut self, what: String) {
        self.count += 1;
        if self.first.len() < 20 {
            self.first.push(what);
        }
    }

    /// True when nothing differed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Compares every point and channel. Timestamps and live times are compared in clock ticks
/// (`clock_hz` converts the seconds the IOC shows back to ticks).
pub fn compare(table: &ScanTable, truth: &[TruthPoint], clock_hz: f64) -> Mismatches {
    let mut m = Mismatches::default();
    if table.len() != truth.len() {
        m.add(format!(
            "IOC has {} points, truth has {}",
            table.len(),
            truth.len()
        ));
    }
    let to_ticks = |s: f64| (s * clock_hz).round();
    for (i, t) in truth.iter().enumerate().take(table.len()) {
        m.compared += 1;
        if table.position[i] != t.position as f64 {
            m.add(format!(
                "point {i}: position {} != truth {}",
                table.position[i], t.position
            ));
        }
        if to_ticks(table.timestamp_s[i]) != t.timestamp as f64 {
            m.add(format!(
                "point {i}: timestamp {} ticks != truth {}",
                to_ticks(table.timestamp_s[i]),
                t.timestamp
            ));
        }
        if to_ticks(table.live_time_s[i]) != f64::from(t.live_time) {
            m.add(format!(
                "point {i}: live time {} ticks != truth {}",
                to_ticks(table.live_time_s[i]),
                t.live_time
            ));
        }
        if table.channels.len() != t.counts.len() {
            m.add(format!(
                "point {i}: {} channels read, truth has {}",
                table.channels.len(),
                t.counts.len()
            ));
            continue;
        }
        for (c, &want) in t.counts.iter().enumerate() {
            let got = table.channels[c][i];
            if got != f64::from(want) {
                m.add(format!("point {i} channel {c}: {got} != truth {want}"));
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth() -> Vec<TruthPoint> {
        vec![TruthPoint {
            index: 0,
            position: 10,
            timestamp: 200,
            live_time: 100,
            flags: 0,
            counts: vec![5, 6],
        }]
    }

    fn table() -> ScanTable {
        ScanTable {
            position: vec![10.0],
            energy_ev: None,
            timestamp_s: vec![2e-6],
            live_time_s: vec![1e-6],
            channels: vec![vec![5.0], vec![6.0]],
            channel_names: vec!["CH0".into(), "CH1".into()],
        }
    }

    #[test]
    fn equal_scan_has_no_mismatch() {
        let m = compare(&table(), &truth(), 1e8);
        assert!(m.is_empty(), "{m:?}");
        assert_eq!(m.compared, 1);
    }

    #[test]
    fn each_kind_of_difference_is_found() {
        let mut t = table();
        t.channels[1][0] = 7.0;
        t.timestamp_s[0] = 3e-6;
        let m = compare(&t, &truth(), 1e8);
        assert_eq!(m.count, 2, "{m:?}");
        let mut short = table();
        short.position.clear();
        assert!(!compare(&short, &truth(), 1e8).is_empty());
    }
}
