//! `flyscan-demo`: the README's first command, the scientist's path. Starts the simulated
//! device (a double-crystal monochromator scanning the Cu K edge) and flyscan-ioc (the IOC with
//! the host driver inside); runs the Bluesky half (`python -m flyscan_bluesky.demo`): a
//! `fly_exafs` plan through a real RunEngine with its progress bar, the run stored in the
//! embedded Tiled catalog, read back, exported as XDI and plotted as μ(E)/χ(k); then compares
//! every point read back from the catalog with the simulator's ground truth and prints the
//! summary (points, lost, differences, latency). Stops everything it started (also on Ctrl-C).

use clap::Parser;
use flyscan_hil_tests::chain::{Chain, ChainOptions, binary, workspace_root};
use flyscan_hil_tests::compare::compare;
use flyscan_hil_tests::latency::{CaMonitor, DeviceClock, latencies, quantile};
use flyscan_hil_tests::scan_table::ScanTable;
use flyscan_hil_tests::truth::Truth;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Run a simulated fly EXAFS scan from Bluesky into a Tiled catalog, an XDI file and a plot.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Scenario file (an EXAFS scenario; default: sim/scenarios/cu_exafs.toml).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Simulated seconds per wall second.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Give up if the scan has not ended after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout_s: u64,
    /// Tiled catalog: a directory for the embedded catalog, or a Tiled server's address
    /// (default: out/catalog in the project).
    #[arg(long)]
    catalog: Option<String>,
    /// Folder for scan.xdi and scan.png (default: out/demo in the project).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Without the handler Ctrl-C still ends the children (same process group); with it the
        // demo also reaps them and removes its pty link.
        let _ = signal_hook::flag::register(sig, Arc::clone(&stop));
    }
    watch_for_interrupt(Arc::clone(&stop));
    let t = Instant::now();
    match run(&args, &stop) {
        Ok(()) => {
            println!("demo done in {:.0} s", t.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("\nflyscan-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// On Ctrl-C the Bluesky half (same process group) gets the signal too and the RunEngine aborts
/// the scan; if the main thread is inside a blocking wait, this thread gives it a moment, then
/// stops the whole process group (the IOC and simulator the demo started are in it) and exits.
fn watch_for_interrupt(stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_secs(5));
        eprintln!("\nflyscan-demo: interrupted; stopping everything it started");
        let pgid = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                s.rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().nth(2))
                    .map(str::to_owned)
            });
        if let Some(pgid) = pgid {
            // Our own SIGTERM only sets the flag again (the handler is registered).
            let _ = std::process::Command::new("kill")
                .args(["-TERM", "--", &format!("-{pgid}")])
                .status();
        }
        std::thread::sleep(Duration::from_millis(500));
        std::process::exit(130);
    });
}

/// What the Bluesky half wrote (`--result`): its summary and the points read back from Tiled.
#[derive(Deserialize)]
struct BlueskyResult {
    uid: String,
    run_s: f64,
    points_stored: usize,
    e0_scenario: f64,
    e0_larch: BTreeMap<String, f64>,
    readback: Readback,
}

#[derive(Deserialize)]
struct Readback {
    position: Vec<f64>,
    timestamp: Vec<f64>,
    live_time: Vec<f64>,
    wall_time: Vec<f64>,
    /// Counts by channel number.
    channels: BTreeMap<u32, Vec<f64>>,
}

/// A path given on the command line, relative to the folder the command was typed in
/// (`$FLYSCAN_CALLER_DIR`, set by `./flyscan.sh`; else the current one).
fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_owned();
    }
    match std::env::var_os("FLYSCAN_CALLER_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join(p),
        _ => std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_owned()),
    }
}

fn run(args: &Args, stop: &AtomicBool) -> Result<(), String> {
    let root = workspace_root();
    let scenario = args.scenario.as_deref().map_or_else(
        || root.join("sim").join("scenarios").join("cu_exafs.toml"),
        absolute,
    );
    let catalog = match &args.catalog {
        Some(c) if c.starts_with("http://") || c.starts_with("https://") => c.clone(),
        Some(c) => absolute(Path::new(c)).display().to_string(),
        None => root.join("out").join("catalog").display().to_string(),
    };
    let out = args
        .out
        .as_deref()
        .map_or_else(|| root.join("out").join("demo"), absolute);
    let mut opts = ChainOptions::scenario("demo", "cu_exafs.toml");
    opts.scenario = scenario.clone();
    opts.speed = args.speed;
    opts.device = None;
    println!("starting the simulated monochromator and flyscan-ioc ...");
    let mut chain = Chain::start(opts)?;
    let total = chain.plan.config.total_points();
    let sc = &chain.scenario;
    println!(
        "IOC prefix {}  scan: {} {} edge (E0 {} eV), {} crystal, {} points, channels {:?}",
        chain.prefix,
        sc.sample.element,
        sc.sample.edge,
        sc.sample.e0_ev,
        sc.mono.crystal.name(),
        total,
        (0..usize::from(sc.detectors.channels))
            .map(|c| sc.detectors.role(c).name())
            .collect::<Vec<_>>()
    );
    // What the Bluesky plan applies: the simulator's own description of the scenario's scan.
    let plan_json = chain.dir.join("plan.json");
    let plan_out = Command::new(binary("sim")?)
        .arg("plan")
        .arg("--scenario")
        .arg(&scenario)
        .output()
        .map_err(|e| format!("sim plan: {e}"))?;
    if !plan_out.status.success() {
        return Err(format!(
            "sim plan failed: {}",
            String::from_utf8_lossy(&plan_out.stderr)
        ));
    }
    std::fs::write(&plan_json, &plan_out.stdout).map_err(|e| e.to_string())?;
    let monitor = CaMonitor::start(
        &chain.ca,
        &flyscan_host::launcher::ca_tool("camonitor"),
        &chain.pv("NumCaptured"),
    )?;
    println!("running fly_exafs through a Bluesky RunEngine (storing into {catalog}) ...");
    let result_path = chain.dir.join("bluesky-result.json");
    let python = flyscan_host::launcher::venv_dir()
        .join("bin")
        .join("python");
    let mut py = Command::new(&python);
    py.args(["-m", "flyscan_bluesky.demo", "--prefix", &chain.prefix])
        .arg("--plan")
        .arg(&plan_json)
        .arg("--catalog")
        .arg(&catalog)
        .arg("--out")
        .arg(&out)
        .arg("--result")
        .arg(&result_path)
        .arg("--timeout")
        .arg(args.timeout_s.to_string())
        .envs(chain.ca.env().iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("EPICS_CA_MAX_ARRAY_BYTES", "100000000");
    let mut child = py
        .spawn()
        .map_err(|e| format!("{}: {e} (run scripts/setup.sh)", python.display()))?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_s + 120);
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = chain.ca.put(&chain.pv("Abort"), "1");
            return Err(if stop.load(Ordering::Relaxed) {
                "interrupted: scan aborted, everything stopped".into()
            } else {
                format!("the Bluesky half did not finish in time\n{}", chain.logs())
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if !status.success() {
        return Err(format!(
            "the Bluesky half failed ({status})\n{}",
            chain.logs()
        ));
    }
    let result: BlueskyResult = serde_json::from_str(
        &std::fs::read_to_string(&result_path)
            .map_err(|e| format!("{}: {e}", result_path.display()))?,
    )
    .map_err(|e| format!("{}: {e}", result_path.display()))?;
    let updates = monitor.finish();
    let sim_stdout = std::fs::read_to_string(chain.dir.join("sim.stdout")).unwrap_or_default();
    let lost = chain.get_f64("LostPoints")?;
    let link_errors = chain.get_f64("LinkErrors")?;
    let resends = chain.get_f64("Resends")?;
    chain.stop_sim()?;
    let truth = Truth::load(&chain.truth_path())?;
    let rb = &result.readback;
    let enabled = chain.enabled_channels();
    let mut table = ScanTable {
        position: rb.position.clone(),
        energy_ev: None,
        timestamp_s: rb.timestamp.clone(),
        live_time_s: rb.live_time.clone(),
        ..Default::default()
    };
    for ch in &enabled {
        let col = rb
            .channels
            .get(ch)
            .ok_or_else(|| format!("the stored run has no channel {ch}"))?;
        table.channels.push(col.clone());
        table.channel_names.push(format!("CH{ch}"));
    }
    table.check_shape()?;
    let mism = compare(&table, &truth.points, chain.clock_hz());
    let clock = DeviceClock::from_sim_stdout(&sim_stdout);
    let latency = clock
        .map(|c| latencies(&updates, &table.timestamp_s, chain.clock_hz(), c))
        .unwrap_or_default();
    // How far the stored wall-clock stamps are from the simulator's own clock.
    let stamp_error: Vec<f64> = clock
        .map(|c| {
            rb.wall_time
                .iter()
                .zip(&rb.timestamp)
                .map(|(w, t)| w - c.wall(t * chain.clock_hz()))
                .collect()
        })
        .unwrap_or_default();
    println!("\nsummary");
    println!(
        "  points          {} stored and read back from Tiled, of {total} (lost {lost}); run {}",
        result.points_stored, result.uid
    );
    println!(
        "  vs ground truth {} points compared, {} differences",
        mism.compared, mism.count
    );
    for d in &mism.first {
        println!("    {d}");
    }
    println!("  link errors     {link_errors} (resends {resends})");
    for (kind, e0) in &result.e0_larch {
        println!(
            "  edge (Larch)    {kind}: E0 {e0:.2} eV, scenario {:.2} eV ({:+.2} eV)",
            result.e0_scenario,
            e0 - result.e0_scenario
        );
    }
    match (quantile(&latency, 0.5), quantile(&latency, 0.99)) {
        (Some(p50), Some(p99)) => println!(
            "  latency         trigger → CA monitor p50 {:.1} ms, p99 {:.1} ms ({} updates)",
            p50 * 1e3,
            p99 * 1e3,
            latency.len()
        ),
        _ => println!("  latency         not measured (no monitor updates or device clock)"),
    }
    if let Some(med) = quantile(&stamp_error, 0.5) {
        println!(
            "  wall-clock      point time stamps {:+.1} ms from the simulator's clock (median)",
            med * 1e3
        );
    }
    println!("  RunEngine       {:.1} s for the plan", result.run_s);
    drop(chain);
    println!("stopped flyscan-ioc and the simulator");
    if !mism.is_empty() || lost > 0.0 || result.points_stored as u64 != total {
        return Err("the run read back from Tiled differs from the ground truth".into());
    }
    Ok(())
}
