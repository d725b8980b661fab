//! An in-memory behavioural model of the FPGA (FPGA.md), for tests, benchmarks and tools.
//!
//! [`FpgaModel`] holds the state; [`FpgaModel::spi`] and [`FpgaModel::drdy`] hand out the
//! embedded-hal `SpiDevice` and `InputPin` views the driver talks to. The test side moves the
//! encoder ([`FpgaModel::step`], [`FpgaModel::set_ab`]), counts detector pulses
//! ([`FpgaModel::count`]) and advances the clock ([`FpgaModel::advance`]).

use super::EdgeEvent;
use super::regs::{self, reg};
use embedded_hal::spi::{ErrorKind, Operation};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::vec::Vec;

/// Geometry of a modelled FPGA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelConfig {
    /// Clock, Hz.
    pub clock_hz: u32,
    /// Detector channels.
    pub n_channels: u8,
    /// Counter width, bits.
    pub counter_bits: u8,
    /// Edge FIFO depth.
    pub fifo_depth: u32,
    /// Snapshot RAM depth (power of two).
    pub snapshot_depth: u32,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            clock_hz: 100_000_000,
            n_channels: 8,
            counter_bits: 32,
            fifo_depth: 4096,
            snapshot_depth: 4096,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Slot {
    written: bool,
    seq: u32,
    live: u32,
    counts: Vec<u32>,
}

#[derive(Debug)]
struct State {
    cfg: ModelConfig,
    id: u32,
    mask: u32,
    time: u64,
    ab: u8,
    phase: u8,
    enable: bool,
    seq: u32,
    live: u32,
    counts: Vec<u32>,
    fifo: VecDeque<EdgeEvent>,
    overrun_pending: bool,
    overrun_status: bool,
    overrun_count: u32,
    time_hi_latch: u32,
    slots: Vec<Slot>,
    transactions: u64,
}

/// Error of the model's bus (a malformed transaction shape).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelError;

impl embedded_hal::spi::Error for ModelError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

impl embedded_hal::digital::Error for ModelError {
    fn kind(&self) -> embedded_hal::digital::ErrorKind {
        embedded_hal::digital::ErrorKind::Other
    }
}

/// The shared model (cheap to clone; all clones see one FPGA).
#[derive(Debug, Clone)]
pub struct FpgaModel {
    s: Rc<RefCell<State>>,
}

const GRAY: [u8; 4] = [0b00, 0b01, 0b11, 0b10];

impl FpgaModel {
    /// A freshly configured FPGA: A/B low, counters 0, capture off.
    pub fn new(cfg: ModelConfig) -> Self {
        let bits = cfg.counter_bits.clamp(8, 32);
        let mask = if bits == 32 {
            u32::MAX
        } else {
            (1 << bits) - 1
        };
        let depth = cfg.snapshot_depth.max(1) as usize;
        Self {
            s: Rc::new(RefCell::new(State {
                cfg,
                id: regs::ID_MAGIC,
                mask,
                time: 0,
                ab: 0,
                phase: 0,
                enable: false,
                seq: 0,
                live: 0,
                counts: vec![0; usize::from(cfg.n_channels)],
                fifo: VecDeque::new(),
                overrun_pending: false,
                overrun_status: false,
                overrun_count: 0,
                time_hi_latch: 0,
                slots: vec![Slot::default(); depth],
                transactions: 0,
            })),
        }
    }

    /// The SPI view.
    pub fn spi(&self) -> ModelSpi {
        ModelSpi { m: self.clone() }
    }

    /// The data-ready view.
    pub fn drdy(&self) -> ModelDrdy {
        ModelDrdy { m: self.clone() }
    }

    /// Replaces the ID register (to test start-up checks).
    pub fn set_id(&self, id: u32) {
        self.s.borrow_mut().id = id;
    }

    /// Advances the clock by `ticks`, with the gate open (live time counts along).
    pub fn advance(&self, ticks: u64) {
        let mut s = self.s.borrow_mut();
        s.time += ticks;
        let m = s.mask;
        s.live = s.live.wrapping_add(ticks as u32) & m;
    }

    /// Current clock.
    pub fn time(&self) -> u64 {
        self.s.borrow().time
    }

    /// Adds `n` pulses on channel `ch`.
    pub fn count(&self, ch: usize, n: u32) {
        let mut s = self.s.borrow_mut();
        let m = s.mask;
        if let Some(c) = s.counts.get_mut(ch) {
            *c = c.wrapping_add(n) & m;
        }
    }

    /// One quadrature step (+1 or −1 count): a legal A/B change.
    pub fn step(&self, dir: i32) {
        let phase = {
            let s = self.s.borrow();
            if dir >= 0 {
                (s.phase + 1) % 4
            } else {
                (s.phase + 3) % 4
            }
        };
        self.set_ab(GRAY[usize::from(phase)]);
    }

    /// Sets new A/B levels (any change makes one edge event, legal or not).
    pub fn set_ab(&self, ab: u8) {
        let mut s = self.s.borrow_mut();
        let ab = ab & 3;
        if ab == s.ab {
            return;
        }
        s.ab = ab;
        s.phase = GRAY.iter().position(|&g| g == ab).unwrap_or(0) as u8;
        if !s.enable {
            return;
        }
        let seq = s.seq;
        s.seq = seq.wrapping_add(1);
        let depth = s.slots.len();
        let (live, counts) = (s.live, s.counts.clone());
        s.slots[seq as usize % depth] = Slot {
            written: true,
            seq,
            live,
            counts,
        };
        if s.fifo.len() >= s.cfg.fifo_depth as usize {
            s.overrun_pending = true;
            s.overrun_status = true;
            s.overrun_count = s.overrun_count.wrapping_add(1);
            return;
        }
        let flags = if s.overrun_pending {
            regs::EDGE_FLAG_OVERRUN
        } else {
            0
        };
        s.overrun_pending = false;
        let ev = EdgeEvent {
            timestamp: s.time,
            seq,
            ab,
            flags,
        };
        s.fifo.push_back(ev);
    }

    /// Events waiting in the FIFO.
    pub fn fifo_level(&self) -> usize {
        self.s.borrow().fifo.len()
    }

    /// SPI transactions served so far.
    pub fn transactions(&self) -> u64 {
        self.s.borrow().transactions
    }

    fn read_reg(s: &mut State, addr: u8) -> u32 {
        match addr {
            reg::ID => s.id,
            reg::VERSION => 1 << 16,
            reg::CLOCK_HZ => s.cfg.clock_hz,
            reg::N_CHANNELS => u32::from(s.cfg.n_channels),
            reg::COUNTER_BITS => u32::from(s.cfg.counter_bits),
            reg::EDGE_FIFO_DEPTH => s.cfg.fifo_depth,
            reg::SNAPSHOT_DEPTH => s.cfg.snapshot_depth,
            reg::CONTROL => u32::from(s.enable),
            reg::STATUS => {
                let v = u32::from(!s.fifo.is_empty()) | u32::from(s.overrun_status) << 1;
                s.overrun_status = false;
                v
            }
            reg::EDGE_FIFO_LEVEL => s.fifo.len() as u32,
            reg::OVERRUN_COUNT => s.overrun_count,
            reg::AB_NOW => u32::from(s.ab),
            reg::TIME_LO => {
                s.time_hi_latch = (s.time >> 32) as u32;
                s.time as u32
            }
            reg::TIME_HI => s.time_hi_latch,
            _ => 0,
        }
    }

    fn write_reg(s: &mut State, addr: u8, v: u32) {
        if addr != reg::CONTROL {
            return;
        }
        if v & regs::CONTROL_RESET != 0 {
            s.seq = 0;
            s.live = 0;
            s.counts.iter_mut().for_each(|c| *c = 0);
            s.slots.iter_mut().for_each(|sl| sl.written = false);
            s.overrun_count = 0;
            s.overrun_pending = false;
        }
        if v & regs::CONTROL_CLEAR_FIFO != 0 {
            s.fifo.clear();
        }
        s.enable = v & regs::CONTROL_ENABLE != 0;
    }

    fn transaction(&self, ops: &mut [Operation<'_, u8>]) -> Result<(), ModelError> {
        let mut s = self.s.borrow_mut();
        s.transactions += 1;
        let (header, resp): (&[u8], Option<&mut [u8]>) = match ops {
            [Operation::Write(h)] => (h, None),
            [Operation::Write(h), Operation::Read(r)] => (h, Some(r)),
            _ => return Err(ModelError),
        };
        match (header, resp) {
            ([regs::CMD_READ_REG, addr], Some(r)) if r.len() == 4 => {
                let v = Self::read_reg(&mut s, *addr);
                r.copy_from_slice(&v.to_le_bytes());
            }
            ([regs::CMD_WRITE_REG, addr, a, b, c, d], None) => {
                Self::write_reg(&mut s, *addr, u32::from_le_bytes([*a, *b, *c, *d]));
            }
            ([regs::CMD_READ_EDGES, lo, hi], Some(r)) => {
                let n = usize::from(u16::from_le_bytes([*lo, *hi]));
                if n == 0 || n > regs::MAX_EDGES_PER_READ || r.len() != 2 + n * regs::EDGE_EVENT_LEN
                {
                    return Err(ModelError);
                }
                r.fill(0);
                let count = n.min(s.fifo.len());
                r[..2].copy_from_slice(&(count as u16).to_le_bytes());
                for i in 0..count {
                    let ev = s.fifo.pop_front().unwrap_or_default();
                    let at = 2 + i * regs::EDGE_EVENT_LEN;
                    r[at..at + regs::EDGE_EVENT_LEN].copy_from_slice(&ev.to_bytes());
                }
            }
            ([regs::CMD_READ_SNAPSHOT, a, b, c, d], Some(r)) => {
                let n = usize::from(s.cfg.n_channels);
                if r.len() != regs::snapshot_len(n) {
                    return Err(ModelError);
                }
                let seq = u32::from_le_bytes([*a, *b, *c, *d]);
                let depth = s.slots.len();
                let slot = &s.slots[seq as usize % depth];
                r[0] = u8::from(slot.written && slot.seq == seq);
                r[1..5].copy_from_slice(&slot.seq.to_le_bytes());
                r[5..9].copy_from_slice(&slot.live.to_le_bytes());
                for ch in 0..n {
                    let v = slot.counts.get(ch).copied().unwrap_or(0);
                    r[9 + 4 * ch..13 + 4 * ch].copy_from_slice(&v.to_le_bytes());
                }
            }
            _ => return Err(ModelError),
        }
        Ok(())
    }
}

/// The model's `SpiDevice`.
#[derive(Debug, Clone)]
pub struct ModelSpi {
    m: FpgaModel,
}

impl embedded_hal::spi::ErrorType for ModelSpi {
    type Error = ModelError;
}

impl embedded_hal::spi::SpiDevice for ModelSpi {
    fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), ModelError> {
        self.m.transaction(ops)
    }
}

/// The model's data-ready `InputPin`.
#[derive(Debug, Clone)]
pub struct ModelDrdy {
    m: FpgaModel,
}

impl embedded_hal::digital::ErrorType for ModelDrdy {
    type Error = ModelError;
}

impl embedded_hal::digital::InputPin for ModelDrdy {
    fn is_high(&mut self) -> Result<bool, ModelError> {
        Ok(!self.m.s.borrow().fifo.is_empty())
    }
    fn is_low(&mut self) -> Result<bool, ModelError> {
        self.is_high().map(|h| !h)
    }
}
