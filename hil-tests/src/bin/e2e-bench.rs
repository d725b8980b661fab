//! End-to-end benchmarks of the whole chain (simulated device → paced serial line →
//! `flyscan-ioc` → Channel Access clients), printed as the Markdown tables of BENCHMARKS.md.
//!
//! * `throughput`: per baud rate and encoding, the highest offered point rate at or just under
//!   the line's capacity that gives clean scans (Done, no FIFO overrun, every point exact and
//!   valid), then `--repeats` runs there; a run that is not clean is reported as such, never
//!   as throughput.
//! * `scale`: scans of 10 k / 100 k / 1 M points on 1 / 8 / 32 channels: per-point latency, CA
//!   bytes a client monitoring every full waveform receives, host CPU and memory.
//!
//! Run: `cargo xtask e2e-bench` (builds the release binaries first; see BENCHMARKS.md).

use clap::{Parser, Subcommand};
use flyscan_hil_tests::bench::{RunResult, RunSpec, run};
use flyscan_protocol::limits::line_bytes_per_sec;
use flyscan_protocol::point::raw_point_len;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    what: Option<What>,
}

#[derive(Subcommand)]
enum What {
    /// Throughput at the line's capacity and trigger → CA latency, per baud and encoding.
    Throughput(ThroughputArgs),
    /// The scaling table: scan sizes × channel counts.
    Scale(ScaleArgs),
    /// Both, with their defaults.
    All,
}

#[derive(Parser, Clone)]
struct ThroughputArgs {
    /// Baud rates.
    #[arg(long, value_delimiter = ',', default_values_t = [115_200u32, 921_600, 3_000_000])]
    baud: Vec<u32>,
    /// Encodings.
    #[arg(long, value_delimiter = ',', default_values_t = ["raw".to_owned(), "compact".to_owned(), "rice".to_owned()])]
    encoding: Vec<String>,
    /// Channels per point.
    #[arg(long, default_value_t = 8)]
    channels: u8,
    /// Seconds of scan per run.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Measured runs per row (after finding the rate).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
}

#[derive(Parser, Clone)]
struct ScaleArgs {
    /// Scan sizes, points.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000u64, 100_000, 1_000_000])]
    points: Vec<u64>,
    /// Channel counts.
    #[arg(long, value_delimiter = ',', default_values_t = [1u8, 8, 32])]
    channels: Vec<u8>,
    /// Point rate, points/s.
    #[arg(long, default_value_t = 20_000.0)]
    rate: f64,
    /// Line rate (a fast USB-serial line, so that the line is not what is measured).
    #[arg(long, default_value_t = 12_000_000)]
    baud: u32,
    /// Encoding.
    #[arg(long, default_value = "rice")]
    encoding: String,
    /// Runs per row.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    match args.what.unwrap_or(What::All) {
        What::Throughput(a) => throughput(&a),
        What::Scale(a) => scale(&a),
        What::All => {
            throughput(&ThroughputArgs::parse_from(["throughput"]))?;
            scale(&ScaleArgs::parse_from(["scale"]))
        }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::min)
}

/// `min / median` of one measure over runs.
fn min_med(runs: &[RunResult], f: impl Fn(&RunResult) -> f64) -> String {
    let mut v: Vec<f64> = runs.iter().map(f).collect();
    let lo = min(&v);
    format!("{lo:.1} / {:.1}", median(&mut v))
}

fn note(r: &RunResult, what: &str) {
    eprintln!(
        "  {what}: {}, {} points, {} valid, {:.0} pts/s delivered (offered {:.0}), line use {:.1} %, latency p50 {:.1} p99 {:.1} max {:.1} ms{}",
        r.status,
        r.points,
        r.valid,
        r.delivered,
        r.offered,
        100.0 * r.line_use,
        r.latency_ms(0.5),
        r.latency_ms(0.99),
        r.latency_ms(1.0),
        if r.clean() {
            String::new()
        } else {
            format!(" — NOT CLEAN: {}", r.problems())
        }
    );
}

/// The chain carried the offered rate (within 3 %: the scan's start and end take a little).
fn keeps_up(r: &RunResult) -> bool {
    r.delivered >= 0.97 * r.offered
}

fn throughput(a: &ThroughputArgs) -> Result<(), String> {
    let raw_len = raw_point_len(usize::from(a.channels)) as f64;
    let mut rows = Vec::new();
    for &baud in &a.baud {
        let line = f64::from(line_bytes_per_sec(baud));
        let raw_max = line / raw_len;
        for enc in &a.encoding {
            eprintln!("throughput {baud} Bd {enc}:");
            let spec = |rate: f64, tag: &str| RunSpec {
                name: format!("tp-{baud}-{enc}-{tag}"),
                baud,
                encoding: enc.clone(),
                channels: a.channels,
                points: (rate * a.seconds).round().max(200.0) as u64,
                rate,
            };
            // Bytes per point at a rate the line carries easily, then the capacity they imply.
            let guess = raw_max * if enc == "raw" { 0.5 } else { 1.5 };
            let cal = run(&spec(guess, "cal"))?;
            note(&cal, "calibration");
            if !cal.clean() {
                return Err(format!(
                    "{baud} Bd {enc}: the calibration run at {guess:.0} pts/s is not clean: {}",
                    cal.problems()
                ));
            }
            let mut capacity = line * cal.points as f64 / cal.line_bytes.max(1) as f64;
            // Approach the capacity from below: bytes per point shrink a little as batches
            // grow, so re-estimate it from each clean run.
            let mut rate = 0.97 * capacity;
            let mut refused = Vec::new();
            for attempt in 0..4 {
                let r = run(&spec(rate, &format!("find{attempt}")))?;
                note(&r, &format!("at {rate:.0} pts/s"));
                if r.clean() && !keeps_up(&r) {
                    // Something before the line (the simulated device) cannot produce this
                    // rate: back off below what it delivered.
                    refused.push(format!(
                        "{rate:.0} pts/s: delivered only {:.0} pts/s (the simulated device does not keep up)",
                        r.delivered
                    ));
                    rate = rate.min(r.delivered) * 0.95;
                    continue;
                }
                if r.clean() {
                    let c = line * r.points as f64 / r.line_bytes.max(1) as f64;
                    if c <= capacity * 1.01 {
                        break;
                    }
                    capacity = c;
                    rate = 0.97 * capacity;
                } else {
                    refused.push(format!("{rate:.0} pts/s: {}", r.problems()));
                    rate *= 0.95;
                }
            }
            let mut runs = Vec::new();
            for k in 0..a.repeats {
                let r = run(&spec(rate, &format!("run{k}")))?;
                note(&r, &format!("run {k}"));
                if !r.clean() {
                    refused.push(format!("{rate:.0} pts/s: {}", r.problems()));
                } else if !keeps_up(&r) {
                    refused.push(format!(
                        "{rate:.0} pts/s: delivered only {:.0} pts/s",
                        r.delivered
                    ));
                }
                runs.push(r);
            }
            rows.push((baud, enc.clone(), rate, raw_max, runs, refused));
        }
    }
    println!(
        "\n| baud | encoding | offered pts/s | clean runs that kept up | delivered pts/s (min / median) | % of raw max (median) | line use % (median) | latency p50 ms (min / median) | p99 ms (min / median) | max ms (min / median) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (baud, enc, rate, raw_max, runs, _) in &rows {
        let clean: Vec<RunResult> = runs
            .iter()
            .filter(|r| r.clean() && keeps_up(r))
            .cloned()
            .collect();
        let mut d: Vec<f64> = clean.iter().map(|r| r.delivered).collect();
        let dmin = min(&d);
        let dmed = median(&mut d);
        let mut u: Vec<f64> = clean.iter().map(|r| 100.0 * r.line_use).collect();
        println!(
            "| {baud} | {enc} | {rate:.0} | {}/{} | {dmin:.0} / {dmed:.0} | {:.1} % | {:.1} % | {} | {} | {} |",
            clean.len(),
            runs.len(),
            100.0 * dmed / raw_max,
            median(&mut u),
            min_med(&clean, |r| r.latency_ms(0.5)),
            min_med(&clean, |r| r.latency_ms(0.99)),
            min_med(&clean, |r| r.latency_ms(1.0)),
        );
    }
    let refused: Vec<String> = rows
        .iter()
        .flat_map(|(b, e, _, _, _, f)| f.iter().map(move |s| format!("- {b} Bd {e}: {s}")))
        .collect();
    if !refused.is_empty() {
        println!("\nRuns not counted (not clean):\n{}", refused.join("\n"));
    }
    Ok(())
}

fn scale(a: &ScaleArgs) -> Result<(), String> {
    let mut rows = Vec::new();
    for &points in &a.points {
        for &channels in &a.channels {
            eprintln!("scale {points} points × {channels} channels:");
            let mut runs = Vec::new();
            for k in 0..a.repeats {
                let r = run(&RunSpec {
                    name: format!("scale-{points}-{channels}-{k}"),
                    baud: a.baud,
                    encoding: a.encoding.clone(),
                    channels,
                    points,
                    rate: a.rate,
                })?;
                note(&r, &format!("run {k}"));
                runs.push(r);
            }
            rows.push((points, channels, runs));
        }
    }
    println!(
        "\n{} Bd, {} encoding, {:.0} points/s offered; {} runs per row, min / median over runs.\n",
        a.baud, a.encoding, a.rate, a.repeats
    );
    println!(
        "| points × channels | clean runs | latency p50 ms | p99 ms | max ms | tail-missed points | CA bytes, full-waveform client (MB) | ÷ final waveforms | full arrays complete after last trigger (ms) | IOC CPU % of a core | IOC RSS end (MB) | IOC peak RSS (MB) | peak RSS ÷ final waveforms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (points, channels, runs) in &rows {
        let clean = runs.iter().filter(|r| r.clean()).count();
        println!(
            "| {points} × {channels} | {clean}/{} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            runs.len(),
            min_med(runs, |r| r.latency_ms(0.5)),
            min_med(runs, |r| r.latency_ms(0.99)),
            min_med(runs, |r| r.latency_ms(1.0)),
            runs.iter().map(|r| r.tail_missed).max().unwrap_or(0),
            min_med(runs, |r| r.ca_full_bytes as f64 / 1e6),
            min_med(runs, RunResult::ca_ratio),
            min_med(runs, |r| r.full_complete_after_s * 1e3),
            min_med(runs, |r| 100.0 * r.cpu_s / r.wall_s),
            min_med(runs, |r| r.rss as f64 / 1e6),
            min_med(runs, |r| r.rss_peak as f64 / 1e6),
            min_med(runs, |r| r.rss_peak as f64
                / r.final_full_bytes.max(1) as f64),
        );
        for r in runs.iter().filter(|r| !r.clean()) {
            println!("|   ↳ not clean: {} |||||||||||||", r.problems());
        }
    }
    Ok(())
}
