//! `sim`: run a virtual flyscan device, or print the scan plan of a scenario.
//!
//! * `sim run --scenario FILE [--link PATH] [--truth FILE] [--firmware-cmd "CMD ARGS…"
//!   [--rtl-bridge PATH] [--hold-tick T] [--motion-tick T]] [--seed N] [--speed X]
//!   [--socket PATH] [--exit-when-done]`
//! * `sim plan --scenario FILE [--seed N]`
//! * `sim scripted --link PATH [--behaviour ok|lost|restart|stall|slow] [--channels N]
//!   [--truth FILE]`: the scripted device (no physics; faults on demand) for tests of clients

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use flyscan_sim::device_clock::{ARM_TICK, DeviceClock};
use flyscan_sim::fpga::lock;
use flyscan_sim::fpga::{Pacing, Registers};
use flyscan_sim::link::Link;
use flyscan_sim::pty::Pty;
use flyscan_sim::rng::{rng_for, stream};
use flyscan_sim::rtl::RtlRegisters;
use flyscan_sim::simulation::{
    ArmWatch, Device, Simulation, build_fpga_on, fpga_params, summarize, write_truth_file,
};
use flyscan_sim::socket::{SocketServer, WallClock};
use flyscan_sim::{ScanPlan, Scenario};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "sim",
    version,
    about = "Deterministic simulator of the flyscan device"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a virtual device behind a pseudo-terminal.
    Run(RunArgs),
    /// A scripted device (every point known, faults on demand) behind a pseudo-terminal.
    Scripted(ScriptedArgs),
    /// Print the scan configuration and position list as JSON.
    Plan {
        /// Scenario file (TOML).
        #[arg(long)]
        scenario: PathBuf,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
    },
}

/// What the scripted device does to every scan.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    /// Every point, then ScanDone.
    Ok,
    /// The fourth batch is lost for good (the host counts its points lost).
    Lost,
    /// Half way through the scan the device restarts (a new session).
    Restart,
    /// Half way through the scan the device stops streaming until aborted.
    Stall,
    /// Every point, at 50 points/s (long enough to pause and abort).
    Slow,
}

#[derive(clap::Args, Debug)]
struct ScriptedArgs {
    /// Stable symlink to the host-side pty (re-created if it exists).
    #[arg(long)]
    link: PathBuf,
    /// What to do to every scan.
    #[arg(long, value_enum, default_value_t = Behaviour::Ok)]
    behaviour: Behaviour,
    /// Detector channels.
    #[arg(long, default_value_t = 8)]
    channels: u8,
    /// Points per batch.
    #[arg(long, default_value_t = 10)]
    batch_points: u16,
    /// Append every armed scan's points (as sent, lost ones included) here, JSON lines.
    #[arg(long)]
    truth: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Scenario file (TOML).
    #[arg(long)]
    scenario: PathBuf,
    /// Stable symlink to the host-side pty.
    #[arg(long)]
    link: Option<PathBuf>,
    /// Write the ground truth (JSON lines) here at the end.
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Run this firmware binary (split on whitespace) instead of the in-process core; it gets
    /// `--fpga sim --sim-socket S --serial <device pty>` appended.
    #[arg(long)]
    firmware_cmd: Option<String>,
    /// Override the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Simulated seconds per wall second.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// FPGA socket path for an external firmware (default: next to the link, or in /tmp).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Serve the gateware itself instead of the reference model: this RTL bridge program
    /// (`python -m flyscan_gateware.bridge`, built for the scenario's FPGA parameters). Needs
    /// `--firmware-cmd`; the RTL runs slower than real time, so lower `--speed` to match.
    #[arg(long, requires = "firmware_cmd")]
    rtl_bridge: Option<PathBuf>,
    /// Device tick the clock is held at until the arm, where the motion starts (external
    /// firmware runs). On the RTL, SPI traffic before the arm moves the design's clock from 0
    /// on; a hold tick far enough out keeps it short of the start however long the host takes.
    #[arg(long, default_value_t = ARM_TICK, requires = "firmware_cmd")]
    hold_tick: u64,
    /// Device tick where the clock resumes at the arm and the motion starts (default: the hold
    /// tick). On the RTL the simulator moves it past the cycle the design has reached (SPI
    /// traffic before the arm takes bus time there) and announces it in `DEVICE_CLOCK`; a run
    /// on the reference model given the same tick has the same stimulus.
    #[arg(long, requires = "firmware_cmd")]
    motion_tick: Option<u64>,
    /// Exit once the scan is complete and the line is idle for a second.
    #[arg(long)]
    exit_when_done: bool,
}

fn load(path: &Path, seed: Option<u64>) -> Result<Scenario> {
    let mut sc = Scenario::load(path)?;
    if let Some(s) = seed {
        sc.seed = s;
    }
    Ok(sc)
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Plan { scenario, seed } => {
            let sc = load(&scenario, seed)?;
            let plan = ScanPlan::from_scenario(&sc)?;
            let out = plan_json(&sc, &plan)?;
            let text = serde_json::to_string_pretty(&out)?;
            let mut stdout = std::io::stdout().lock();
            match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
                // The reader went away (`sim plan … | head`): nothing left to do.
                Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
                r => r.context("writing the plan to stdout"),
            }
        }
        Cmd::Run(args) => run(args),
        Cmd::Scripted(args) => scripted(args),
    }
}

/// What a client needs to drive the scenario's scan: the configuration and presets, the
/// monochromator calibration (for the host's `DSpacing`, `CountsPerDegree`, `AngleOffset`
/// PVs), the channel roles (`CH<N>:Role`), the sample and, for EXAFS scans, the grid and the
/// energy of every preset.
fn plan_json(sc: &Scenario, plan: &ScanPlan) -> Result<serde_json::Value> {
    let mono = flyscan_sim::mono::Mono::new(&sc.mono);
    let energies: Vec<f64> = plan
        .positions
        .iter()
        .map(|&p| mono.energy(p as f64))
        .collect();
    let roles: Vec<&str> = (0..usize::from(sc.detectors.channels))
        .map(|ch| sc.detectors.role(ch).name())
        .collect();
    let exafs = match sc.scan.mode {
        flyscan_sim::scenario::PlanMode::Exafs => serde_json::to_value(&sc.scan.exafs)?,
        _ => serde_json::Value::Null,
    };
    Ok(serde_json::json!({
        "scan_id": plan.scan_id,
        "config": plan.config_json(),
        "total_points": plan.total_points(),
        "counts_per_unit": sc.encoder.counts_per_unit,
        "unit": sc.encoder.unit,
        "clock_hz": sc.clock.hz,
        "mono": {
            "crystal": sc.mono.crystal.name(),
            "d_spacing": mono.d_spacing,
            "counts_per_degree": mono.counts_per_degree,
            "angle_offset": mono.angle_offset,
        },
        "sample": {
            "element": sc.sample.element,
            "edge": sc.sample.edge,
            "e0_ev": sc.sample.e0_ev,
            "edge_step": sc.sample.edge_step,
        },
        "roles": roles,
        "exafs_grid": exafs,
        "positions": plan.positions,
        "energies": energies,
    }))
}

/// Runs the scripted device until SIGINT/SIGTERM, writing each armed scan's points as truth.
fn scripted(args: ScriptedArgs) -> Result<()> {
    use flyscan_sim::scripted::{CLOCK_HZ, ScriptOptions, ScriptedDevice, expected_point};
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }
    let mut opts = ScriptOptions {
        link: Some(args.link.clone()),
        batch_points: args.batch_points,
        batch_interval: Duration::from_millis(20),
        ..ScriptOptions::default()
    };
    opts.info.n_channels = args.channels;
    // A new session id at every start, as a real board.
    opts.info.boot_id = flyscan_firmware::boot_id::random();
    match args.behaviour {
        Behaviour::Ok => {}
        Behaviour::Lost => opts.unavailable = [3].into_iter().collect(),
        Behaviour::Restart => opts.restart_half_way = true,
        Behaviour::Stall => opts.stall_half_way = true,
        Behaviour::Slow => opts.batch_points = 1,
    }
    let dev = ScriptedDevice::start(opts).context("starting the scripted device")?;
    println!("PTY {}", dev.path.display());
    std::io::stdout().flush().ok();
    let mut written = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let st = dev.stats();
        for (id, cfg, list) in st.scans.iter().skip(written) {
            let total = cfg.total_points() as u32;
            if let Some(path) = &args.truth {
                let mut lines = String::new();
                for i in 0..total {
                    let p = expected_point(cfg, list, i);
                    lines.push_str(&serde_json::to_string(&serde_json::json!({
                        "scan_id": id,
                        "index": i,
                        "position": p.position,
                        "timestamp": p.timestamp,
                        "live_time": p.live_time,
                        "flags": p.flags.0,
                        "counts": p.counts.as_slice(),
                        "clock_hz": CLOCK_HZ,
                    }))?);
                    lines.push('\n');
                }
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))?;
                f.write_all(lines.as_bytes())?;
            }
            written += 1;
        }
        // Polls the device's record of armed scans (it runs on its own thread).
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Stop flag set by SIGINT/SIGTERM.
fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }
    Ok(stop)
}

/// Reads a pty master on a thread and forwards chunks.
fn reader(mut port: serialport::TTYPort, stop: Arc<AtomicBool>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while !stop.load(Ordering::Relaxed) {
            match port.read(&mut buf) {
                Ok(0) => std::thread::sleep(Duration::from_millis(1)),
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // EIO while no peer has the slave open: wait for one.
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    rx
}

/// A line output that never blocks the simulation: chunks go to a writer thread through a
/// bounded queue. When the reader at the other end does not keep up (or is gone), the queue
/// fills and further chunks are lost, as bytes on a real line with no receiver are.
struct LineOut {
    tx: mpsc::SyncSender<Vec<u8>>,
}

impl LineOut {
    /// Queue depth in chunks (the simulation sends one chunk per poll interval at most).
    const DEPTH: usize = 256;

    fn new(mut port: serialport::TTYPort, stop: Arc<AtomicBool>) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(Self::DEPTH);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok(chunk) = rx.recv_timeout(Duration::from_millis(50)) else {
                    continue;
                };
                // The port's write timeout bounds how long an unread line can hold us up; a
                // failed write loses the chunk, as a line fault would.
                if write_line(&mut port, &chunk).is_err() {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        });
        Self { tx }
    }

    fn send(&self, bytes: &[u8]) {
        // Full queue: the receiver is not reading; the bytes are lost on the line.
        let _ = self.tx.try_send(bytes.to_vec());
    }
}

fn run(args: RunArgs) -> Result<()> {
    let sc = load(&args.scenario, args.seed)?;
    let stop = stop_flag()?;
    let host = Pty::open(args.link.as_deref(), Duration::from_millis(20))
        .context("opening the host pty")?;
    println!("PTY {}", host.public_path().display());
    std::io::stdout().flush()?;
    match &args.firmware_cmd {
        None => run_in_process(&args, sc, host, stop),
        Some(cmd) => run_external(&args, sc, host, cmd, stop),
    }
}

/// Wraps the firmware core as a [`Device`] once it exists in the firmware crate.
fn in_process_device(sim: &Simulation) -> Result<Box<dyn Device>> {
    flyscan_sim::firmware::device(sim).map_err(anyhow::Error::msg)
}

fn run_in_process(args: &RunArgs, sc: Scenario, host: Pty, stop: Arc<AtomicBool>) -> Result<()> {
    let hz = sc.clock.hz;
    let mut sim = Simulation::new(sc)?;
    let mut dev = in_process_device(&sim)?;
    // Link ticks follow the wall clock; the device clock is held until the arm
    // (`Simulation::step_held`).
    let clock = WallClock::new(hz, args.speed);
    let wall0 = unix_now();
    let mut announced = false;
    let host_w = LineOut::new(host.master.try_clone_native()?, stop.clone());
    let rx = reader(host.master.try_clone_native()?, stop.clone());
    let mut to_host = Vec::new();
    let mut from_host = Vec::new();
    // Link tick at which every expected point existed and the line had carried them out.
    let mut done_at: Option<u64> = None;
    while !stop.load(Ordering::Relaxed) {
        let target = clock.ticks();
        // Step in poll intervals up to wall-clock time.
        while sim.link_now() + sim.poll_ticks() <= target {
            from_host.clear();
            while let Ok(chunk) = rx.try_recv() {
                from_host.extend_from_slice(&chunk);
            }
            let t = sim.link_now() + sim.poll_ticks();
            sim.step_held(t, dev.as_mut(), &from_host, &mut to_host)?;
            if !announced && let Some(at) = sim.armed_at_link_tick() {
                announced = true;
                announce_device_clock(
                    wall0 + at as f64 / clock.ticks_per_s(),
                    ARM_TICK,
                    clock.ticks_per_s(),
                );
            }
            if !to_host.is_empty() {
                host_w.send(&to_host);
                to_host.clear();
            }
        }
        if args.exit_when_done {
            let t = sim.link_now();
            if done_at.is_none()
                && sim.summary().points >= sim.plan().total_points()
                && sim.line_idle()
            {
                done_at = Some(t);
            }
            // Periodic device messages keep coming; they do not delay the exit.
            if done_at.is_some_and(|d| (t - d) as f64 > clock.ticks_per_s()) {
                break;
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    if let Some(p) = &args.truth {
        sim.write_truth(p)?;
    }
    let s = sim.summary();
    eprintln!("sim: {}", serde_json::to_string(&s)?);
    drop(host);
    Ok(())
}

/// Writes line output to a pty master. Bytes the reader leaves unread for the write timeout are
/// lost, as on a real line whose receiver does not keep up; other errors end the run.
fn write_line(w: &mut impl Write, bytes: &[u8]) -> Result<()> {
    match w.write_all(bytes) {
        Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => Ok(()),
        r => r.context("writing to a pty"),
    }
}

/// Wall time now, Unix seconds.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Tells a bench how device time maps to wall time: `DEVICE_CLOCK <unix s of the arm tick>
/// <arm tick> <device ticks per wall second>` on stdout (the latency benchmark reads it).
fn announce_device_clock(unix_s: f64, arm_tick: u64, ticks_per_s: f64) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "DEVICE_CLOCK {unix_s:.6} {arm_tick} {ticks_per_s}");
    let _ = out.flush();
}

/// Where the motion starts: `wanted`, or for an RTL register level that SPI traffic has
/// already moved past it, the next whole million ticks at least a million past its cycle
/// (room for the pulses before the first edge; ~0.1 s of simulation to get there).
fn motion_tick(wanted: u64, rtl_cycle: Option<u64>) -> u64 {
    const STEP: u64 = 1_000_000;
    match rtl_cycle {
        Some(c) if c + STEP > wanted => (c + 2 * STEP) / STEP * STEP,
        _ => wanted,
    }
}

/// Watches a device → host byte stream for `ScanDone`.
#[derive(Default)]
struct DoneWatch {
    deframer: flyscan_protocol::Deframer,
    seen: bool,
}

impl DoneWatch {
    fn feed(&mut self, bytes: &[u8]) {
        let mut seen = false;
        self.deframer.feed_all(
            bytes,
            |f| seen |= matches!(f.message(), Ok(flyscan_protocol::Message::ScanDone(_))),
            |_| {},
        );
        self.seen |= seen;
    }
}

/// Tells a bench how fast device time ran from the arm until every point was out: `PACE
/// <device s> <wall s>` on stdout (the RTL runs slower than real time; see BENCHMARKS.md).
fn announce_pace(device_s: f64, wall_s: f64) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "PACE {device_s:.6} {wall_s:.6}");
    let _ = out.flush();
}

/// Kills the child when dropped.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_external(
    args: &RunArgs,
    sc: Scenario,
    host: Pty,
    cmd: &str,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    let plan = ScanPlan::from_scenario(&sc)?;
    let regs: Option<(Box<dyn Registers>, Pacing)> = match &args.rtl_bridge {
        None => None,
        Some(path) => {
            let rtl = RtlRegisters::spawn(path)
                .with_context(|| format!("starting the RTL bridge {}", path.display()))?;
            rtl.check(&fpga_params(&sc)).map_err(anyhow::Error::msg)?;
            Some((Box::new(rtl), RtlRegisters::pacing(sc.clock.hz)))
        }
    };
    let fpga = Arc::new(Mutex::new(build_fpga_on(&sc, &plan, regs)));
    // The lines run on wall ticks (`clock`), the FPGA model on the device clock, held at
    // the hold tick until the device announces the arm.
    let clock = WallClock::new(sc.clock.hz, args.speed);
    let wall0 = unix_now();
    let device_clock = DeviceClock::new(clock, args.hold_tick);
    let sock = args.socket.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("flyscan-sim-{}.sock", std::process::id()))
    });
    let server = SocketServer::start(&sock, fpga.clone(), device_clock.clone())
        .with_context(|| format!("binding {}", sock.display()))?;
    let device = Pty::open(None, Duration::from_millis(20)).context("opening the device pty")?;
    let mut parts = cmd.split_whitespace();
    let Some(prog) = parts.next() else {
        bail!("--firmware-cmd is empty")
    };
    let child = Command::new(prog)
        .args(parts)
        .arg("--fpga")
        .arg("sim")
        .arg("--sim-socket")
        .arg(&sock)
        .arg("--serial")
        .arg(&device.slave_path)
        .spawn()
        .with_context(|| format!("starting {cmd}"))?;
    let mut child = ChildGuard(child);
    let tps = clock.ticks_per_s();
    let l = &sc.link;
    let mut up = Link::new(
        l.baud,
        tps,
        l.bit_error_rate,
        l.drop_rate,
        rng_for(sc.seed, stream::LINK_UP),
    );
    let mut down = Link::new(
        l.baud,
        tps,
        l.bit_error_rate,
        l.drop_rate,
        rng_for(sc.seed, stream::LINK_DOWN),
    );
    let mut watch = ArmWatch::default();
    let dev_rx = reader(device.master.try_clone_native()?, stop.clone());
    let host_rx = reader(host.master.try_clone_native()?, stop.clone());
    let mut dev_w = device.master.try_clone_native()?;
    let host_w = LineOut::new(host.master.try_clone_native()?, stop.clone());
    let mut buf = Vec::new();
    // Wall tick at which every expected point existed and the line had carried them out.
    let mut done_at: Option<u64> = None;
    // The RTL runs slower than the wall clock: the firmware may still be reading edges when
    // the physics (and so the truth) is complete, so on the RTL the device's ScanDone counts.
    let mut scan_done = DoneWatch::default();
    let rtl = args.rtl_bridge.is_some();
    // Wall tick of the release (the arm).
    let mut released_at: Option<u64> = None;
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        if let Some(e) = lock(&fpga).failure() {
            break Err(anyhow::anyhow!("{e}"));
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            break Err(anyhow::anyhow!("firmware exited: {status}"));
        }
        let now = clock.ticks();
        while let Ok(chunk) = dev_rx.try_recv() {
            scan_done.feed(&chunk);
            if watch.feed(&chunk) {
                // Under the model's lock, so no socket request advances it past the hold tick
                // before the motion starts there.
                let mut f = lock(&fpga);
                let motion = motion_tick(
                    args.motion_tick.unwrap_or(device_clock.hold_tick()),
                    f.register_cycle(),
                );
                f.advance_to(motion);
                f.start_motion();
                let at = device_clock.release_at(motion);
                released_at = Some(at);
                announce_device_clock(
                    wall0 + at as f64 / clock.ticks_per_s(),
                    motion,
                    clock.ticks_per_s(),
                );
            }
            up.send(now, &chunk);
        }
        while let Ok(chunk) = host_rx.try_recv() {
            down.send(now, &chunk);
        }
        buf.clear();
        up.deliver(now, &mut buf);
        if !buf.is_empty() {
            host_w.send(&buf);
        }
        buf.clear();
        down.deliver(now, &mut buf);
        if !buf.is_empty() {
            write_line(&mut dev_w, &buf)?;
        }
        // Keep the model's clock moving even when the firmware is quiet (lock, then read the
        // clock: see `DeviceClock::release`).
        {
            let mut f = lock(&fpga);
            let t = device_clock.ticks();
            f.advance_to(t);
        }
        if args.exit_when_done {
            if done_at.is_none()
                && lock(&fpga).truth().points().len() as u64 >= plan.total_points()
                && (!rtl || scan_done.seen)
                && up.idle()
            {
                done_at = Some(now);
                if let Some(r) = released_at {
                    let f = lock(&fpga);
                    let device_s =
                        f.now().saturating_sub(f.motion_start_tick()) as f64 / sc.clock.hz as f64;
                    drop(f);
                    announce_pace(device_s, now.saturating_sub(r) as f64 / tps);
                }
            }
            // Periodic device messages keep coming; they do not delay the exit.
            if done_at.is_some_and(|d| (now - d) as f64 > tps) {
                break Ok(());
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    };
    let _ = child.0.kill();
    let _ = child.0.wait();
    server.stop();
    let f = lock(&fpga);
    let summary = summarize(&f, &plan, up.stats(), down.stats());
    if let Some(p) = &args.truth {
        write_truth_file(p, f.truth().points(), &summary)?;
    }
    eprintln!("sim: {}", serde_json::to_string(&summary)?);
    result
}
