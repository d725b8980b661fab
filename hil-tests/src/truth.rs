//! Reads the simulator's ground truth (JSON lines: one object per expected point, then one
//! `{"summary": {...}}` line), parsed here independently of the simulator's own types.

use serde::Deserialize;
use std::path::Path;

/// One expected point.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TruthPoint {
    /// Point index in the scan.
    pub index: u32,
    /// Position reported for the point, counts.
    pub position: i64,
    /// Trigger clock tick.
    pub timestamp: u64,
    /// Live time of the bin, ticks.
    pub live_time: u32,
    /// Flag bits.
    pub flags: u8,
    /// Counts of the enabled channels, in channel order.
    pub counts: Vec<u32>,
}

/// Totals of the run (the fields the bench checks; others are ignored).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct TruthSummary {
    /// Points expected.
    pub points: u64,
    /// Edges lost to the FPGA FIFO overrunning.
    #[serde(default)]
    pub fifo_overruns: u64,
    /// Line bytes the device sent to the host.
    #[serde(default)]
    pub up_bytes_sent: u64,
    /// Illegal quadrature transitions the device should count.
    pub illegal_transitions: u64,
    /// Encoder glitches injected.
    pub glitches_injected: u64,
    /// Points flagged JUMP.
    pub jump_points: u64,
    /// Edges that fired two or more presets.
    pub position_jumps: u64,
    /// Line bytes corrupted device → host.
    pub up_bytes_corrupted: u64,
    /// Line bytes dropped device → host.
    pub up_bytes_dropped: u64,
}

/// The whole truth file.
#[derive(Debug, Clone, Default)]
pub struct Truth {
    /// Points in index order.
    pub points: Vec<TruthPoint>,
    /// The summary line.
    pub summary: TruthSummary,
}

#[derive(Deserialize)]
struct SummaryLine {
    summary: TruthSummary,
}

impl Truth {
    /// Parses a truth file; fails on any line that is neither a point nor the summary.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
        Self::parse(&text)
    }

    /// Parses truth text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut t = Truth::default();
        let mut have_summary = false;
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            if line.trim_start().starts_with("{\"summary\"") {
                let s: SummaryLine =
                    serde_json::from_str(line).map_err(|e| format!("truth line {}: {e}", i + 1))?;
                t.summary = s.summary;
                have_summary = true;
            } else {
                let p: TruthPoint =
                    serde_json::from_str(line).map_err(|e| format!("truth line {}: {e}", i + 1))?;
                t.points.push(p);
            }
        }
        if !have_summary {
            return Err("truth file has no summary line (was the simulator stopped early?)".into());
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_points_and_summary() {
        let text = r#"{"index":0,"pass":0,"preset":5,"position":5,"timestamp":100,"live_time":7,"flags":16,"counts":[1,2],"decoded_position":5,"true_position":5}
{"summary":{"points":1,"illegal_transitions":3,"glitches_injected":3,"jump_points":0,"position_jumps":0,"up_bytes_corrupted":0,"up_bytes_dropped":0,"points_planned":1}}"#;
        let t = Truth::parse(text).unwrap();
        assert_eq!(t.points.len(), 1);
        assert_eq!(t.points[0].counts, vec![1, 2]);
        assert_eq!(t.summary.illegal_transitions, 3);
    }

    #[test]
    fn missing_summary_is_an_error() {
        let err = Truth::parse(
            r#"{"index":0,"position":5,"timestamp":1,"live_time":1,"flags":0,"counts":[]}"#,
        )
        .unwrap_err();
        assert!(err.contains("summary"));
    }
}
