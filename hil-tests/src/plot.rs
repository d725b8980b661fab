//! PNG plot of a scan: one panel per channel against energy (or position), drawn with plotters
//! and the DejaVu font embedded in the binary, so it needs no system fonts.

use crate::scan_table::ScanTable;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();

fn register_fonts() {
    FONT.call_once(|| {
        // A font that fails to register only loses the labels, not the plot.
        let _ = register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

/// Draws every channel of `table` into a PNG at `path` (`width` × `height` pixels).
pub fn plot_png(
    table: &ScanTable,
    title: &str,
    path: &Path,
    width: u32,
    height: u32,
) -> Result<(), String> {
    table.check_shape()?;
    if table.is_empty() {
        return Err("nothing to plot: the scan has no point".into());
    }
    register_fonts();
    let (x, x_label): (&[f64], &str) = match &table.energy_ev {
        Some(e) => (e, "energy (eV)"),
        None => (&table.position, "position (counts)"),
    };
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let root = root
        .titled(title, ("sans-serif", 22))
        .map_err(|e| e.to_string())?;
    let n = table.channels.len().max(1);
    let cols = if n > 4 { 2 } else { 1 };
    let rows = n.div_ceil(cols);
    let panels = root.split_evenly((rows, cols));
    let (xmin, xmax) = range(x);
    for (i, (panel, (name, ys))) in panels
        .iter()
        .zip(table.channel_names.iter().zip(&table.channels))
        .enumerate()
    {
        let (ymin, ymax) = range(ys);
        let mut chart = ChartBuilder::on(panel)
            .margin(6)
            .caption(name, ("sans-serif", 14))
            .x_label_area_size(if i + cols >= n { 28 } else { 14 })
            .y_label_area_size(52)
            .build_cartesian_2d(xmin..xmax, ymin..ymax)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(if i + cols >= n { x_label } else { "" })
            .label_style(("sans-serif", 11))
            .x_labels(6)
            .y_labels(4)
            .draw()
            .map_err(|e| e.to_string())?;
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                x.iter().copied().zip(ys.iter().copied()),
                color.stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
    }
    root.present()
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(())
}

/// Min and max of finite values, widened so a constant column still has a range.
fn range(v: &[f64]) -> (f64, f64) {
    let (lo, hi) = v
        .iter()
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if (hi - lo).abs() < f64::EPSILON {
        (lo - 1.0, hi + 1.0)
    } else {
        let pad = (hi - lo) * 0.02;
        (lo - pad, hi + pad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png() {
        let n = 200;
        let e: Vec<f64> = (0..n).map(|i| 8900.0 + i as f64).collect();
        let t = ScanTable {
            position: e.clone(),
            energy_ev: Some(e.clone()),
            timestamp_s: e.iter().map(|_| 0.0).collect(),
            live_time_s: e.iter().map(|_| 0.001).collect(),
            channels: vec![
                e.iter()
                    .map(|x| (x / 10.0).sin() * 100.0 + 1000.0)
                    .collect(),
                vec![5.0; n],
            ],
            channel_names: vec!["i0".into(), "flat".into()],
        };
        let dir = std::env::temp_dir().join(format!("flyscan-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("scan.png");
        plot_png(&t, "test", &path, 640, 480).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert!(
            bytes.len() > 2000,
            "a plot with lines and labels, got {} bytes",
            bytes.len()
        );
        if std::env::var_os("FLYSCAN_KEEP_PLOT").is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn empty_scan_is_an_error() {
        let err = plot_png(
            &ScanTable::default(),
            "x",
            Path::new("/nonexistent/x.png"),
            10,
            10,
        )
        .unwrap_err();
        assert!(err.contains("no point"));
    }
}
