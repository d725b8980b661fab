//! Writes a scan as an XDI 1.0 file, the EXAFS community's text format: `# XDI/1.0` version
//! line, `# Namespace.tag: value` header fields, `# ///` then free comments, `# ----`, a column
//! label line, then whitespace-separated numeric rows.

use crate::scan_table::ScanTable;
use std::io::{self, Write};

/// Header facts about the measurement that the scan columns cannot tell.
#[derive(Debug, Clone, Default)]
pub struct XdiMeta {
    /// Absorbing element symbol, e.g. "Cu".
    pub element: Option<String>,
    /// Absorption edge, e.g. "K".
    pub edge: Option<String>,
    /// Monochromator crystal, e.g. "Si(111)".
    pub mono_name: Option<String>,
    /// Monochromator d-spacing, Å.
    pub d_spacing: Option<f64>,
    /// Scan start, ISO 8601.
    pub start_time: Option<String>,
    /// Beamline or facility name.
    pub beamline: Option<String>,
    /// Free comment lines.
    pub comments: Vec<String>,
}

/// Writes `table` as XDI to `w`. Fails if the table's columns disagree in length.
pub fn write_xdi(table: &ScanTable, meta: &XdiMeta, w: &mut impl Write) -> io::Result<()> {
    table.check_shape().map_err(io::Error::other)?;
    writeln!(w, "# XDI/1.0 flyscan/{}", env!("CARGO_PKG_VERSION"))?;
    let mut cols: Vec<(String, &[f64], &str)> = Vec::new();
    if let Some(e) = &table.energy_ev {
        cols.push(("energy".into(), e, "eV"));
    }
    cols.push(("position".into(), &table.position, "counts"));
    cols.push(("time".into(), &table.timestamp_s, "s"));
    cols.push(("livetime".into(), &table.live_time_s, "s"));
    for (name, c) in table.channel_names.iter().zip(&table.channels) {
        cols.push((name.clone(), c, "counts"));
    }
    for (i, (name, _, unit)) in cols.iter().enumerate() {
        writeln!(w, "# Column.{}: {} {}", i + 1, name, unit)?;
    }
    let opt = |w: &mut dyn Write, tag: &str, v: &Option<String>| -> io::Result<()> {
        match v {
            Some(v) => writeln!(w, "# {tag}: {v}"),
            None => Ok(()),
        }
    };
    opt(w, "Element.symbol", &meta.element)?;
    opt(w, "Element.edge", &meta.edge)?;
    opt(w, "Mono.name", &meta.mono_name)?;
    if let Some(d) = meta.d_spacing {
        writeln!(w, "# Mono.d_spacing: {d}")?;
    }
    opt(w, "Scan.start_time", &meta.start_time)?;
    opt(w, "Facility.name", &meta.beamline)?;
    writeln!(w, "# Scan.points: {}", table.len())?;
    writeln!(w, "# ///")?;
    for c in &meta.comments {
        writeln!(w, "# {c}")?;
    }
    writeln!(w, "#----")?;
    let labels: Vec<&str> = cols.iter().map(|(n, _, _)| n.as_str()).collect();
    writeln!(w, "# {}", labels.join(" "))?;
    for i in 0..table.len() {
        let row: Vec<String> = cols.iter().map(|(_, c, _)| format_value(c[i])).collect();
        writeln!(w, "{}", row.join(" "))?;
    }
    Ok(())
}

/// Integers print without a fraction (counts, positions), everything else with enough digits
/// to round-trip.
fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.10e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> ScanTable {
        ScanTable {
            position: vec![100.0, 200.0],
            energy_ev: Some(vec![8979.0, 8979.5]),
            timestamp_s: vec![0.001, 0.002],
            live_time_s: vec![0.001, 0.001],
            channels: vec![vec![1000.0, 1001.0], vec![500.0, 7.0]],
            channel_names: vec!["i0".into(), "itrans".into()],
        }
    }

    #[test]
    fn header_columns_and_rows() {
        let mut out = Vec::new();
        let meta = XdiMeta {
            element: Some("Cu".into()),
            edge: Some("K".into()),
            d_spacing: Some(3.1356),
            ..Default::default()
        };
        write_xdi(&table(), &meta, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("# XDI/1.0 "));
        assert!(text.contains("# Column.1: energy eV"));
        assert!(text.contains("# Column.6: itrans counts"));
        assert!(text.contains("# Element.symbol: Cu"));
        assert!(text.contains("# Mono.d_spacing: 3.1356"));
        let data: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| !l.starts_with('#'))
            .collect();
        assert_eq!(data.len(), 2);
        let first: Vec<f64> = data[0]
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(first, vec![8979.0, 100.0, 0.001, 0.001, 1000.0, 500.0]);
    }

    #[test]
    fn ragged_table_is_refused() {
        let mut t = table();
        t.channels[1].pop();
        let err = write_xdi(&t, &XdiMeta::default(), &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("itrans"), "{err}");
    }
}
