//! End-to-end benchmarks of the whole chain (simulated device → paced serial line → host driver
//! → softIoc → CA client):
//!
//! * sustained points/s with the line saturated, per baud rate and encoding, as a percentage of
//!   the line's theoretical maximum for raw points (line bytes/s ÷ raw bytes per point);
//! * trigger → CA monitor latency (p50/p99) at a steady point rate.
//!
//! Run: `cargo run --release -p flyscan-hil-tests --bin e2e-bench` (after building the bench
//! binaries, see BENCHMARKS.md).

use clap::Parser;
use flyscan_hil_tests::chain::{Chain, ChainOptions, scenario_variant};
use flyscan_hil_tests::latency::{CaMonitor, DeviceClock, latencies, quantile};
use flyscan_protocol::point::raw_point_len;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Baud rates to measure throughput at.
    #[arg(long, value_delimiter = ',', default_values_t = [115_200u32, 921_600, 3_000_000])]
    baud: Vec<u32>,
    /// Seconds of saturated scan per measurement.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Skip the throughput runs.
    #[arg(long)]
    no_throughput: bool,
    /// Skip the latency run.
    #[arg(long)]
    no_latency: bool,
    /// Point rate of the latency run, points/s.
    #[arg(long, default_value_t = 1000.0)]
    latency_rate: f64,
}

const CHANNELS: usize = 8;
/// Encoder counts between presets in the generated scans.
const STEP: f64 = 10.0;

fn main() -> Result<(), String> {
    let args = Args::parse();
    if !args.no_throughput {
        println!(
            "| baud | encoding | offered pts/s | delivered pts/s | raw theoretical max pts/s | % of raw max | line bytes/s used |"
        );
        println!("|---:|---|---:|---:|---:|---:|---:|");
        for &baud in &args.baud {
            let raw_max = f64::from(flyscan_protocol::limits::line_bytes_per_sec(baud))
                / raw_point_len(CHANNELS) as f64;
            for (enc, capacity_factor) in [("raw", 1.0), ("compact", 4.0)] {
                // Offer more than the line can carry so the line is the bottleneck.
                let offered = raw_max * capacity_factor * 1.3;
                let r = throughput(baud, enc, offered, args.seconds)?;
                println!(
                    "| {baud} | {enc} | {offered:.0} | {:.0} | {raw_max:.0} | {:.1} % | {:.0} |",
                    r.rate,
                    100.0 * r.rate / raw_max,
                    r.rate * r.bytes_per_point
                );
            }
        }
    }
    if !args.no_latency {
        latency(args.latency_rate)?;
    }
    Ok(())
}

struct Throughput {
    rate: f64,
    bytes_per_point: f64,
}

fn uniform(name: &str, baud: u32, enc: &str, rate: f64, seconds: f64) -> Result<Chain, String> {
    let count = (rate * seconds).round().max(100.0) as i64;
    let s = scenario_variant(
        "uniform.toml",
        name,
        &[
            ("link.baud", toml::Value::Integer(i64::from(baud))),
            ("scan.encoding", toml::Value::String(enc.into())),
            ("scan.step", toml::Value::Integer(STEP as i64)),
            ("scan.count", toml::Value::Integer(count)),
            ("motor.velocity", toml::Value::Float(rate * STEP)),
            ("motor.acceleration", toml::Value::Float(rate * STEP * 50.0)),
        ],
    )?;
    let mut opts = ChainOptions::scenario(name, "uniform.toml");
    opts.scenario = s;
    opts.device = None;
    opts.max_points = count as usize + 10;
    Chain::start(opts)
}

fn throughput(baud: u32, enc: &str, offered: f64, seconds: f64) -> Result<Throughput, String> {
    let name = format!("bench-{baud}-{enc}");
    let mut chain = uniform(&name, baud, enc, offered, seconds)?;
    chain.configure()?;
    chain.arm()?;
    // (wall seconds, NumCaptured) samples while the scan runs.
    let mut samples: Vec<(f64, f64)> = Vec::new();
    let t0 = Instant::now();
    let limit = Duration::from_secs_f64(seconds * 10.0 + 60.0);
    loop {
        let n = chain.get_f64("NumCaptured").unwrap_or(0.0);
        samples.push((t0.elapsed().as_secs_f64(), n));
        let status = chain.ca.get(&chain.pv("Status")).unwrap_or_default();
        if matches!(status.as_str(), "Done" | "Aborted" | "Error") || t0.elapsed() > limit {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let total = samples.last().map_or(0.0, |s| s.1);
    // Steady state: between 20 % and 80 % of the points delivered.
    let a = samples.iter().find(|s| s.1 >= total * 0.2).copied();
    let b = samples.iter().find(|s| s.1 >= total * 0.8).copied();
    let rate = match (a, b) {
        (Some(a), Some(b)) if b.0 > a.0 => (b.1 - a.1) / (b.0 - a.0),
        _ => return Err(format!("{name}: too few samples to measure ({samples:?})")),
    };
    let bytes_per_point = match enc {
        "raw" => raw_point_len(CHANNELS) as f64,
        _ => f64::from(flyscan_protocol::limits::line_bytes_per_sec(baud)) / rate,
    };
    chain.stop_sim()?;
    Ok(Throughput {
        rate,
        bytes_per_point,
    })
}

/// Trigger → CA monitor latency at a steady point rate (see `flyscan_hil_tests::latency`).
fn latency(rate: f64) -> Result<(), String> {
    let seconds = 5.0;
    let mut chain = uniform("bench-latency", 921_600, "compact", rate, seconds)?;
    let mon = CaMonitor::start(
        &chain.ca,
        &flyscan_host::launcher::ca_tool("camonitor"),
        &chain.pv("NumCaptured"),
    )?;
    chain.configure()?;
    chain.arm()?;
    chain.wait_done(Duration::from_secs(120))?;
    std::thread::sleep(Duration::from_millis(300));
    let updates = mon.finish();
    let n = chain.get_f64("NumCaptured")? as usize;
    let table = chain.read_table_caget(n)?;
    let sim_out = std::fs::read_to_string(chain.dir.join("sim.stdout")).unwrap_or_default();
    chain.stop_sim()?;
    let clock = DeviceClock::from_sim_stdout(&sim_out)
        .ok_or("the simulator printed no DEVICE_CLOCK line; cannot map device time to wall time")?;
    let lat = latencies(&updates, &table.timestamp_s, chain.clock_hz(), clock);
    let q = |p: f64| quantile(&lat, p).map_or(f64::NAN, |v| v * 1e3);
    println!(
        "\ntrigger → CA monitor latency at 921 600 baud, {rate:.0} points/s compact: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} updates)",
        q(0.5),
        q(0.99),
        q(1.0),
        lat.len()
    );
    Ok(())
}
