//! The gateware as the simulator's register level: a Verilator build of `gateware/` run as a
//! child process (the RTL bridge, `gateware/bridge/rtl_bridge.cpp`) and driven over its
//! stdin/stdout, so `sim run --rtl-bridge PATH` serves the RTL behind the FPGA socket.
//!
//! The bridge's clock cycle is the device tick. The physics decides edges and pulse counts in
//! ticks; this module turns them into pin levels: A/B change `input_latency` cycles before the
//! edge's tick (so the RTL stamps the edge with that very tick), and the pulses counted between
//! two observations are spread over the cycles between them, at most one every 2 cycles per
//! channel. Pins can only be set ahead of the RTL, so the physics runs ahead of it, and the
//! device clock follows the RTL's pace ([`RtlRegisters::pacing`]).

use crate::fpga::{FpgaParams, FpgaStats, Pacing, Registers};
use flyscan_fpga_contract::vectors::SpiTiming;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// What the bridge says on start: its build's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Detector channels.
    pub n_channels: u32,
    /// Counter width.
    pub counter_bits: u32,
    /// Edge FIFO depth.
    pub fifo_depth: u32,
    /// Snapshot RAM depth.
    pub snapshot_depth: u32,
    /// Cycles from an A/B pin change to the edge (synchroniser plus glitch filter).
    pub input_latency: u32,
    /// SCLK half period of the bridge's SPI host, cycles.
    pub half_period: u32,
}

const MAGIC: &[u8; 8] = b"FLYSRTL1";
/// Pin numbers of the bridge protocol.
const PIN_A: u8 = 0;
const PIN_B: u8 = 1;
const PIN_DET0: u8 = 3;
/// Detector pulses need a pin high for one cycle and low for one: 2 cycles each.
const PULSE_CYCLES: u64 = 2;
/// Detector input latency (two synchroniser flip-flops; no filter on detector inputs).
const DET_LATENCY: u64 = flyscan_fpga_contract::vectors::INPUT_LATENCY;

/// The running bridge.
#[derive(Debug)]
pub struct RtlRegisters {
    child: Child,
    tx: BufWriter<ChildStdin>,
    rx: BufReader<ChildStdout>,
    hello: Hello,
    /// The cycle the RTL has reached.
    rtl_now: u64,
    /// Pin changes not yet sent: (cycle, pin, level).
    pins: Vec<(u64, u8, u8)>,
    stats: FpgaStats,
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl RtlRegisters {
    /// Starts the bridge program at `path` and reads its hello.
    pub fn spawn(path: &Path) -> io::Result<Self> {
        let mut child = Command::new(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("starting {}: {e}", path.display())))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(io::Error::other("the RTL bridge has no pipes"));
        };
        let mut rx = BufReader::new(stdout);
        let mut h = [0u8; 8 + 6 * 4];
        rx.read_exact(&mut h).map_err(|e| {
            bad(format!(
                "no hello from the RTL bridge {}: {e}",
                path.display()
            ))
        })?;
        if &h[..8] != MAGIC {
            return Err(bad(format!("{} is not an RTL bridge", path.display())));
        }
        let w = |i: usize| {
            u32::from_le_bytes([h[8 + 4 * i], h[9 + 4 * i], h[10 + 4 * i], h[11 + 4 * i]])
        };
        let hello = Hello {
            n_channels: w(0),
            counter_bits: w(1),
            fifo_depth: w(2),
            snapshot_depth: w(3),
            input_latency: w(4),
            half_period: w(5),
        };
        Ok(Self {
            child,
            tx: BufWriter::new(stdin),
            rx,
            hello,
            rtl_now: 0,
            pins: Vec::new(),
            stats: FpgaStats::default(),
        })
    }

    /// The bridge's build parameters.
    pub fn hello(&self) -> Hello {
        self.hello
    }

    /// Checks that the bridge was built for the scenario's FPGA.
    pub fn check(&self, p: &FpgaParams) -> Result<(), String> {
        let h = self.hello;
        let want = (
            u32::from(p.n_channels),
            u32::from(p.counter_bits),
            p.fifo_depth,
            p.snapshot_depth,
        );
        let have = (h.n_channels, h.counter_bits, h.fifo_depth, h.snapshot_depth);
        if want != have {
            return Err(format!(
                "the RTL bridge was built for (channels, counter bits, FIFO depth, snapshot depth) \
                 = {have:?}, the scenario wants {want:?}: rebuild it with those parameters"
            ));
        }
        Ok(())
    }

    /// How the physics drives the RTL: the clock moved at most 1 ms at a time, and 4 ms of
    /// look-ahead (room for the pulses between two edges after such a step).
    pub fn pacing(clock_hz: u64) -> Pacing {
        Pacing {
            lookahead: clock_hz / 250,
            max_step: clock_hz / 1000,
        }
    }

    fn pin(&mut self, cycle: u64, pin: u8, level: u8) -> io::Result<()> {
        if cycle < self.rtl_now {
            return Err(bad(format!(
                "pin {pin} would change at cycle {cycle}, behind the RTL at {} (the physics does \
                 not run far enough ahead)",
                self.rtl_now
            )));
        }
        self.pins.push((cycle, pin, level));
        Ok(())
    }

    fn flush_pins(&mut self) -> io::Result<()> {
        if self.pins.is_empty() {
            return Ok(());
        }
        self.pins.sort_by_key(|p| p.0);
        let n = u32::try_from(self.pins.len()).map_err(|_| bad("too many pin changes".into()))?;
        self.tx.write_all(b"P")?;
        self.tx.write_all(&n.to_le_bytes())?;
        for &(cycle, pin, level) in &self.pins {
            self.tx.write_all(&cycle.to_le_bytes())?;
            self.tx.write_all(&[pin, level])?;
        }
        self.pins.clear();
        Ok(())
    }

    fn read_u64(&mut self) -> io::Result<u64> {
        let mut b = [0u8; 8];
        self.rx.read_exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn died(e: io::Error) -> io::Error {
        io::Error::new(
            e.kind(),
            format!("the RTL bridge stopped answering ({e}); its own message is above"),
        )
    }
}

impl Registers for RtlRegisters {
    fn advance_to(&mut self, tick: u64) -> io::Result<()> {
        if tick <= self.rtl_now {
            return Ok(());
        }
        self.flush_pins()?;
        self.tx.write_all(b"A")?;
        self.tx.write_all(&tick.to_le_bytes())?;
        self.rtl_now = tick;
        Ok(())
    }

    fn pulses(&mut self, from: u64, to: u64, counts: &[u32]) -> io::Result<()> {
        // Counted in cycles [lo, to): after the observation at `from`, before the edge at `to`,
        // with the pin driven DET_LATENCY cycles earlier, not behind the RTL.
        let lo = from.max(self.rtl_now + DET_LATENCY);
        let room = to.saturating_sub(lo);
        for (ch, &n) in counts
            .iter()
            .enumerate()
            .take(self.hello.n_channels as usize)
        {
            if n == 0 {
                continue;
            }
            let n = u64::from(n);
            if room < PULSE_CYCLES * n {
                return Err(bad(format!(
                    "{n} pulses on channel {ch} do not fit in the {room} cycles before tick {to}: \
                     the detector rate is too high for the RTL bridge, or the RTL got too close \
                     (before the arm SPI traffic moves it: raise `--hold-tick`)"
                )));
            }
            let spacing = room / n;
            let pin = PIN_DET0 + ch as u8;
            for i in 0..n {
                let at = lo + i * spacing;
                self.pin(at - DET_LATENCY, pin, 1)?;
                self.pin(at - DET_LATENCY + 1, pin, 0)?;
            }
        }
        Ok(())
    }

    fn edge(&mut self, tick: u64, ab: u8) -> io::Result<()> {
        let at = tick
            .checked_sub(u64::from(self.hello.input_latency))
            .ok_or_else(|| bad(format!("an edge at tick {tick} is before the RTL's start")))?;
        self.pin(at, PIN_A, ab & 1)?;
        self.pin(at, PIN_B, ab >> 1 & 1)
    }

    fn exchange(&mut self, mosi: &[u8]) -> io::Result<Vec<u8>> {
        self.stats.transactions += 1;
        self.flush_pins()?;
        let n = u32::try_from(mosi.len()).map_err(|_| bad("transaction too long".into()))?;
        self.tx.write_all(b"X")?;
        self.tx.write_all(&n.to_le_bytes())?;
        self.tx.write_all(mosi)?;
        self.tx.flush().map_err(Self::died)?;
        let mut miso = vec![0u8; mosi.len()];
        self.rx.read_exact(&mut miso).map_err(Self::died)?;
        self.rtl_now = self.read_u64().map_err(Self::died)?;
        self.stats.events_dropped = self.read_u64().map_err(Self::died)?;
        Ok(miso)
    }

    fn data_ready(&mut self) -> io::Result<bool> {
        self.flush_pins()?;
        self.tx.write_all(b"D")?;
        self.tx.flush().map_err(Self::died)?;
        let mut b = [0u8; 1];
        self.rx.read_exact(&mut b).map_err(Self::died)?;
        Ok(b[0] != 0)
    }

    fn transaction_end(&self, len: usize) -> Option<u64> {
        // The bridge's SPI host: CS_N setup 2, 16 half periods a byte, hold 2, CS_N high 4.
        Some(self.rtl_now + 2 + 16 * u64::from(self.hello.half_period) * len as u64 + 2 + 4)
    }

    fn execution_tick(&self, header_len: usize) -> Option<u64> {
        // The bridge clocks a transaction as the test vectors do (rtl_bridge.cpp), from the
        // cycle it has reached: the command executes where the vectors say.
        let timing = SpiTiming {
            half_period: u64::from(self.hello.half_period),
            cs_setup: 2,
            cs_hold: 2,
            gap: 4,
        };
        Some(self.rtl_now + timing.exec(header_len))
    }

    fn cycle(&self) -> Option<u64> {
        Some(self.rtl_now)
    }

    fn stats(&self) -> FpgaStats {
        self.stats
    }
}

impl Drop for RtlRegisters {
    fn drop(&mut self) {
        let _ = self.tx.write_all(b"Q");
        let _ = self.tx.flush();
        // The bridge exits on 'Q' once it has finished what it was doing; give it 2 s.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while self.child.try_wait().ok().flatten().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let _ = self.child.wait();
    }
}
