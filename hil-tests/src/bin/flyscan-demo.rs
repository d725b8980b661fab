//! `flyscan-demo`: the README's first command. Starts the simulated device and flyscan-ioc (the
//! IOC with the host driver inside, shipped database); configures and arms an EXAFS-like scan through
//! Channel Access; shows progress while points arrive; prints a summary; writes the scan as an
//! XDI file and a PNG plot; stops everything (also on Ctrl-C).

use clap::Parser;
use flyscan_hil_tests::chain::{Chain, ChainOptions, workspace_root};
use flyscan_hil_tests::compare::compare;
use flyscan_hil_tests::latency::{CaMonitor, DeviceClock, latencies, quantile};
use flyscan_hil_tests::plot::plot_png;
use flyscan_hil_tests::truth::Truth;
use flyscan_hil_tests::xdi::{XdiMeta, write_xdi};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Run a simulated EXAFS fly scan into a real EPICS IOC.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Scenario file (default: the EXAFS k-grid scan).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Simulated seconds per wall second.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Give up if the scan has not ended after this many seconds.
    #[arg(long, default_value_t = 120)]
    timeout_s: u64,
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
    match run(&args, &stop) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nflyscan-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The progress loop handles Ctrl-C itself (abort the scan, stop everything). Anywhere else —
/// starting up, reading back — the main thread may be inside a blocking wait, so this thread
/// gives it a moment, then stops the whole process group (the IOC, simulator and driver the demo
/// started are in it) and exits.
fn watch_for_interrupt(stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_secs(3));
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

fn run(args: &Args, stop: &AtomicBool) -> Result<(), String> {
    let scenario = args.scenario.clone().unwrap_or_else(|| {
        workspace_root()
            .join("sim")
            .join("scenarios")
            .join("exafs_kgrid.toml")
    });
    let mut opts = ChainOptions::scenario("demo", "exafs_kgrid.toml");
    opts.scenario = scenario;
    opts.speed = args.speed;
    opts.device = None;
    println!("starting the simulated device and flyscan-ioc ...");
    let mut chain = Chain::start(opts)?;
    let total = chain.plan.config.total_points();
    println!(
        "IOC prefix {}  serial {}  scan: {:?} mode, {} points, {} channels",
        chain.prefix,
        chain.serial.display(),
        chain.plan.config.mode,
        total,
        chain.enabled_channels().len()
    );
    chain.configure()?;
    let monitor = CaMonitor::start(
        &chain.ca,
        &flyscan_host::launcher::ca_tool("camonitor"),
        &chain.pv("NumCaptured"),
    )?;
    let t_arm = Instant::now();
    chain.arm()?;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} points  {msg}",
        )
        .map_err(|e| e.to_string())?,
    );
    let deadline = Instant::now() + Duration::from_secs(args.timeout_s);
    let status = loop {
        if stop.load(Ordering::Relaxed) {
            bar.abandon_with_message("interrupted");
            let _ = chain.ca.put(&chain.pv("Abort"), "1");
            return Err("interrupted: scan aborted, everything stopped".into());
        }
        if Instant::now() > deadline {
            bar.abandon_with_message("timed out");
            return Err(format!(
                "scan did not end within {} s\n{}",
                args.timeout_s,
                chain.logs()
            ));
        }
        if let Ok(n) = chain.get_f64("NumCaptured") {
            bar.set_position(n.max(0.0) as u64);
        }
        let s = chain.ca.get(&chain.pv("Status")).unwrap_or_default();
        bar.set_message(s.clone());
        if matches!(s.as_str(), "Done" | "Aborted" | "Error") {
            break s;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let wall = t_arm.elapsed().as_secs_f64();
    let captured = chain.get_f64("NumCaptured")? as usize;
    bar.set_position(captured as u64);
    bar.finish_with_message(status.clone());
    if status != "Done" {
        let msg = chain.ca.get(&chain.pv("StatusMessage")).unwrap_or_default();
        return Err(format!("scan ended with {status}: {msg}"));
    }
    let mut table = chain.read_table_caget(captured)?;
    let updates = monitor.finish();
    let sim_stdout = std::fs::read_to_string(chain.dir.join("sim.stdout")).unwrap_or_default();
    chain.stop_sim()?;
    let latency = DeviceClock::from_sim_stdout(&sim_stdout)
        .map(|clock| latencies(&updates, &table.timestamp_s, chain.clock_hz(), clock))
        .unwrap_or_default();
    let truth = Truth::load(&chain.truth_path())?;
    let mism = compare(&table, &truth.points, chain.clock_hz());
    let lost = chain.get_f64("LostPoints")?;
    let link_errors = chain.get_f64("LinkErrors")?;
    let resends = chain.get_f64("Resends")?;
    let quad = chain.get_f64("QuadErrors")?;
    let span = match (table.timestamp_s.first(), table.timestamp_s.last()) {
        (Some(a), Some(b)) if b > a => b - a,
        _ => f64::NAN,
    };
    let spec = &chain.scenario.detectors.spectrum;
    let energy: Vec<f64> = table
        .position
        .iter()
        .map(|p| spec.energy_at_zero_ev + p / spec.counts_per_ev)
        .collect();
    table.energy_ev = Some(energy);
    println!("\nsummary");
    println!("  points          {captured} of {total} (lost {lost})");
    println!(
        "  vs ground truth {} points compared, {} differences",
        mism.compared, mism.count
    );
    for d in &mism.first {
        println!("    {d}");
    }
    println!("  link errors     {link_errors} (resends {resends}), quadrature errors {quad}");
    println!(
        "  rate            {:.0} points/s during the scan ({:.2} s of device time), {:.1} s wall from arm to done",
        (captured.saturating_sub(1)) as f64 / span,
        span,
        wall
    );
    match (quantile(&latency, 0.5), quantile(&latency, 0.99)) {
        (Some(p50), Some(p99)) => println!(
            "  latency         trigger → CA monitor p50 {:.1} ms, p99 {:.1} ms ({} updates)",
            p50 * 1e3,
            p99 * 1e3,
            latency.len()
        ),
        _ => println!("  latency         not measured (no monitor updates or device clock)"),
    }
    let dir = workspace_root().join("out").join("demo");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let xdi_path = dir.join("scan.xdi");
    let meta = XdiMeta {
        element: Some("Cu".into()),
        edge: Some("K".into()),
        mono_name: Some("simulated".into()),
        start_time: Some(chrono::Local::now().to_rfc3339()),
        beamline: Some("flyscan simulator".into()),
        comments: vec![
            format!("scenario {}", chain.scenario_path().display()),
            format!(
                "energy = {} eV + position / {} counts per eV",
                spec.energy_at_zero_ev, spec.counts_per_ev
            ),
        ],
        ..Default::default()
    };
    let mut f =
        std::fs::File::create(&xdi_path).map_err(|e| format!("{}: {e}", xdi_path.display()))?;
    write_xdi(&table, &meta, &mut f).map_err(|e| e.to_string())?;
    let png = dir.join("scan.png");
    // Bins differ in width (EXAFS grids are non-uniform in energy): plot count rates.
    let mut rates = table.clone();
    for (col, name) in rates
        .channels
        .iter_mut()
        .zip(rates.channel_names.iter_mut())
    {
        for (v, lt) in col.iter_mut().zip(&table.live_time_s) {
            *v = if *lt > 0.0 { *v / lt } else { f64::NAN };
        }
        *name = format!("{name} (counts/s)");
    }
    plot_png(
        &rates,
        "flyscan demo: simulated EXAFS fly scan",
        &png,
        1200,
        900,
    )?;
    println!(
        "  wrote           {}\n                  {}",
        xdi_path.display(),
        png.display()
    );
    drop(chain);
    println!("stopped flyscan-ioc and the simulator");
    if !mism.is_empty() || lost > 0.0 {
        return Err("the scan read back from the IOC differs from the ground truth".into());
    }
    Ok(())
}
