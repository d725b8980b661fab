//! FPGA access layer: the driver [`Fpga`], generic over embedded-hal 1.0 `SpiDevice` +
//! `InputPin` so the same code runs on spidev, on a simulator socket and on mocks. The contract
//! it speaks (register map, records, simulator socket, reference model) is the
//! `flyscan-fpga-contract` crate, re-exported here under the names the firmware has always used.

/// The decoded wire records.
pub use flyscan_fpga_contract::records::{EdgeEvent, Snapshot};
/// The register/command contract (FPGA.md).
pub use flyscan_fpga_contract::regs;

/// The simulator socket client (FPGA.md §Simulator socket).
#[cfg(feature = "std")]
pub use flyscan_fpga_contract::socket::client as sim_socket;

/// The reference FPGA model behind embedded-hal traits, for tests, benchmarks and tools.
#[cfg(feature = "std")]
pub mod model {
    pub use flyscan_fpga_contract::hal::{FpgaModel, ModelDrdy, ModelError, ModelSpi};
    pub use flyscan_fpga_contract::model::ModelConfig;
}

use core::fmt;
use embedded_hal::digital::InputPin;
use embedded_hal::spi::{Operation, SpiDevice};
use regs::{EDGE_EVENT_LEN, MAX_EDGES_PER_READ};

// The snapshot record holds as many channels as a protocol point carries.
const _: () = assert!(regs::MAX_N_CHANNELS == flyscan_protocol::limits::MAX_CHANNELS);

/// Static properties of the FPGA design, read once at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FpgaInfo {
    /// Design version (major << 16 | minor).
    pub version: u32,
    /// Timestamp/live-time clock, Hz.
    pub clock_hz: u32,
    /// Detector channels (1–32).
    pub n_channels: u8,
    /// Counter width, bits (8–32).
    pub counter_bits: u8,
    /// Edge FIFO depth, events.
    pub edge_fifo_depth: u32,
    /// Snapshot RAM depth, edges (power of two).
    pub snapshot_depth: u32,
}

/// FPGA design major version this firmware speaks.
pub const SUPPORTED_MAJOR: u32 = 1;

/// Errors of the FPGA driver; `E` is the SPI error, `P` the data-ready pin error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error<E, P> {
    /// The SPI transaction failed.
    Spi(E),
    /// Reading the data-ready pin failed.
    Pin(P),
    /// The ID register did not hold [`regs::ID_MAGIC`] (wrong device, or the bus is dead).
    BadId {
        /// [`regs::ID_MAGIC`].
        expected: u32,
        /// Value read.
        actual: u32,
    },
    /// A read-only geometry register holds a value outside the contract.
    BadRegister {
        /// Register name as in FPGA.md.
        name: &'static str,
        /// Value read.
        value: u32,
    },
    /// The FPGA answered a snapshot read for another channel count than configured.
    BadLength,
}

impl<E, P> From<E> for Error<E, P> {
    fn from(e: E) -> Self {
        Self::Spi(e)
    }
}

impl<E: fmt::Debug, P: fmt::Debug> fmt::Display for Error<E, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spi(e) => write!(f, "SPI transaction failed: {e:?}"),
            Self::Pin(e) => write!(f, "reading the data-ready pin failed: {e:?}"),
            Self::BadId { expected, actual } => write!(
                f,
                "FPGA ID register reads {actual:#010x}, expected {expected:#010x} (wrong device or dead bus)"
            ),
            Self::BadRegister { name, value } => {
                write!(
                    f,
                    "FPGA register {name} holds {value}, outside the contract"
                )
            }
            Self::BadLength => f.write_str("snapshot length does not match the channel count"),
        }
    }
}

impl<E: fmt::Debug, P: fmt::Debug> core::error::Error for Error<E, P> {}

/// Largest READ_EDGES response: count + 256 slots.
const EDGE_BUF_LEN: usize = 2 + EDGE_EVENT_LEN * MAX_EDGES_PER_READ;
/// Largest snapshot response.
const SNAP_BUF_LEN: usize = regs::snapshot_len(flyscan_protocol::limits::MAX_CHANNELS);

/// The FPGA driver: one SPI device plus the data-ready line.
pub struct Fpga<SPI, DRDY> {
    spi: SPI,
    drdy: DRDY,
    n_channels: usize,
    buf: [u8; EDGE_BUF_LEN],
}

/// Driver error for a given SPI/pin pair.
pub type FpgaError<SPI, DRDY> = Error<
    <SPI as embedded_hal::spi::ErrorType>::Error,
    <DRDY as embedded_hal::digital::ErrorType>::Error,
>;

impl<SPI: SpiDevice, DRDY: InputPin> Fpga<SPI, DRDY> {
    /// Wraps the bus and pin; no traffic until [`Fpga::init`] or another call. Snapshots are read
    /// for 1 channel until [`Fpga::init`] (or [`Fpga::set_channels`]) learns the real count.
    pub fn new(spi: SPI, drdy: DRDY) -> Self {
        Self {
            spi,
            drdy,
            n_channels: 1,
            buf: [0; EDGE_BUF_LEN],
        }
    }

    /// Hands back the bus and pin.
    pub fn release(self) -> (SPI, DRDY) {
        (self.spi, self.drdy)
    }

    /// Sets the channel count used for snapshot reads (1–32).
    pub fn set_channels(&mut self, n: usize) {
        self.n_channels = n.clamp(1, flyscan_protocol::limits::MAX_CHANNELS);
    }

    /// Reads a 32-bit register.
    pub fn read_reg(&mut self, addr: u8) -> Result<u32, FpgaError<SPI, DRDY>> {
        let mut v = [0u8; 4];
        self.spi.transaction(&mut [
            Operation::Write(&[regs::CMD_READ_REG, addr]),
            Operation::Read(&mut v),
        ])?;
        Ok(u32::from_le_bytes(v))
    }

    /// Writes a 32-bit register.
    pub fn write_reg(&mut self, addr: u8, value: u32) -> Result<(), FpgaError<SPI, DRDY>> {
        let v = value.to_le_bytes();
        self.spi
            .write(&[regs::CMD_WRITE_REG, addr, v[0], v[1], v[2], v[3]])?;
        Ok(())
    }

    /// Data-ready line level (true = FIFO not empty).
    pub fn data_ready(&mut self) -> Result<bool, FpgaError<SPI, DRDY>> {
        self.drdy.is_high().map_err(Error::Pin)
    }

    /// Reads the 64-bit FPGA clock (TIME_LO latches TIME_HI, so the pair is consistent).
    pub fn read_time(&mut self) -> Result<u64, FpgaError<SPI, DRDY>> {
        let lo = self.read_reg(regs::reg::TIME_LO)?;
        let hi = self.read_reg(regs::reg::TIME_HI)?;
        Ok(u64::from(hi) << 32 | u64::from(lo))
    }

    /// Pops up to `out.len()` (at most 256) edge events into `out`; returns how many are valid.
    pub fn read_edges(&mut self, out: &mut [EdgeEvent]) -> Result<usize, FpgaError<SPI, DRDY>> {
        let n = out.len().min(MAX_EDGES_PER_READ);
        if n == 0 {
            return Ok(0);
        }
        let resp = &mut self.buf[..2 + n * EDGE_EVENT_LEN];
        let nb = (n as u16).to_le_bytes();
        self.spi.transaction(&mut [
            Operation::Write(&[regs::CMD_READ_EDGES, nb[0], nb[1]]),
            Operation::Read(resp),
        ])?;
        // The FPGA never reports more than asked; clamp anyway so bad hardware cannot index out.
        let count = usize::from(u16::from_le_bytes([resp[0], resp[1]])).min(n);
        for (i, slot) in resp[2..]
            .chunks_exact(EDGE_EVENT_LEN)
            .take(count)
            .enumerate()
        {
            let mut b = [0u8; EDGE_EVENT_LEN];
            b.copy_from_slice(slot);
            out[i] = EdgeEvent::from_bytes(&b);
        }
        Ok(count)
    }

    /// Reads the snapshot of edge `seq` into `snap` (all hardware channels).
    pub fn read_snapshot(
        &mut self,
        seq: u32,
        snap: &mut Snapshot,
    ) -> Result<(), FpgaError<SPI, DRDY>> {
        let len = regs::snapshot_len(self.n_channels);
        let mut resp = [0u8; SNAP_BUF_LEN];
        let s = seq.to_le_bytes();
        self.spi.transaction(&mut [
            Operation::Write(&[regs::CMD_READ_SNAPSHOT, s[0], s[1], s[2], s[3]]),
            Operation::Read(&mut resp[..len]),
        ])?;
        snap.decode_into(&resp[..len], self.n_channels, seq);
        Ok(())
    }

    /// Checks the ID, reads and range-checks the geometry registers, resets counters and FIFO,
    /// enables capture (FPGA.md §Reset sequence). Returns the design info and the A/B levels.
    pub fn init(&mut self) -> Result<(FpgaInfo, u8), FpgaError<SPI, DRDY>> {
        use regs::reg;
        let id = self.read_reg(reg::ID)?;
        if id != regs::ID_MAGIC {
            return Err(Error::BadId {
                expected: regs::ID_MAGIC,
                actual: id,
            });
        }
        let check = |name: &'static str, value: u32, ok: bool| {
            if ok {
                Ok(value)
            } else {
                Err(Error::BadRegister { name, value })
            }
        };
        let version = self.read_reg(reg::VERSION)?;
        check("VERSION", version, version >> 16 == SUPPORTED_MAJOR)?;
        let clock_hz = self.read_reg(reg::CLOCK_HZ)?;
        check("CLOCK_HZ", clock_hz, clock_hz > 0)?;
        let n_channels = self.read_reg(reg::N_CHANNELS)?;
        check("N_CHANNELS", n_channels, (1..=32).contains(&n_channels))?;
        let counter_bits = self.read_reg(reg::COUNTER_BITS)?;
        check(
            "COUNTER_BITS",
            counter_bits,
            (8..=32).contains(&counter_bits),
        )?;
        let edge_fifo_depth = self.read_reg(reg::EDGE_FIFO_DEPTH)?;
        check("EDGE_FIFO_DEPTH", edge_fifo_depth, edge_fifo_depth > 0)?;
        let snapshot_depth = self.read_reg(reg::SNAPSHOT_DEPTH)?;
        check(
            "SNAPSHOT_DEPTH",
            snapshot_depth,
            snapshot_depth.is_power_of_two(),
        )?;
        self.write_reg(reg::CONTROL, regs::CONTROL_RESET | regs::CONTROL_CLEAR_FIFO)?;
        self.write_reg(reg::CONTROL, regs::CONTROL_ENABLE)?;
        let ab = (self.read_reg(reg::AB_NOW)? & 0x3) as u8;
        let _ = self.read_reg(reg::STATUS)?;
        self.set_channels(n_channels as usize);
        Ok((
            FpgaInfo {
                version,
                clock_hz,
                n_channels: n_channels as u8,
                counter_bits: counter_bits as u8,
                edge_fifo_depth,
                snapshot_depth,
            },
            ab,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::regs::{self, reg};
    use super::*;
    use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as PinTx};
    use embedded_hal_mock::eh1::spi::{Mock as SpiMock, Transaction as Tx};
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    fn read_reg_tx(addr: u8, value: u32) -> Vec<Tx<u8>> {
        vec![
            Tx::transaction_start(),
            Tx::write_vec(vec![0x01, addr]),
            Tx::read_vec(value.to_le_bytes().to_vec()),
            Tx::transaction_end(),
        ]
    }

    fn write_reg_tx(addr: u8, value: u32) -> Vec<Tx<u8>> {
        let v = value.to_le_bytes();
        vec![
            Tx::transaction_start(),
            Tx::write_vec(vec![0x02, addr, v[0], v[1], v[2], v[3]]),
            Tx::transaction_end(),
        ]
    }

    fn done(f: Fpga<SpiMock<u8>, PinMock>) {
        let (mut spi, mut pin) = f.release();
        spi.done();
        pin.done();
    }

    #[test]
    fn read_and_write_register_bytes() {
        let mut exp = read_reg_tx(0x02, 100_000_000);
        exp.extend(write_reg_tx(0x08, 1));
        let mut f = Fpga::new(SpiMock::new(&exp), PinMock::new(&[]));
        assert_eq!(f.read_reg(0x02).unwrap(), 100_000_000);
        f.write_reg(0x08, 1).unwrap();
        done(f);
    }

    #[test]
    fn read_time_latches_lo_then_hi() {
        let mut exp = read_reg_tx(reg::TIME_LO, 0x8000_0001);
        exp.extend(read_reg_tx(reg::TIME_HI, 0x2));
        let mut f = Fpga::new(SpiMock::new(&exp), PinMock::new(&[]));
        assert_eq!(f.read_time().unwrap(), 0x2_8000_0001);
        done(f);
    }

    #[test]
    fn read_edges_decodes_only_valid_slots() {
        let e0 = EdgeEvent {
            timestamp: 0x0102_0304_0506_0708,
            seq: 7,
            ab: 1,
            flags: 0,
        };
        let e1 = EdgeEvent {
            timestamp: 99,
            seq: 8,
            ab: 3,
            flags: regs::EDGE_FLAG_OVERRUN,
        };
        let mut resp = vec![2u8, 0];
        resp.extend(e0.to_bytes());
        resp.extend(e1.to_bytes());
        resp.extend([0u8; 14]);
        let exp = [
            Tx::transaction_start(),
            Tx::write_vec(vec![0x03, 3, 0]),
            Tx::read_vec(resp),
            Tx::transaction_end(),
        ];
        let mut f = Fpga::new(SpiMock::new(&exp), PinMock::new(&[]));
        let mut out = [EdgeEvent::default(); 3];
        assert_eq!(f.read_edges(&mut out).unwrap(), 2);
        assert_eq!(out[0], e0);
        assert_eq!(out[1], e1);
        assert!(out[1].overrun());
        assert_eq!(out[2], EdgeEvent::default());
        done(f);
    }

    #[test]
    fn read_edges_clamps_a_bogus_count() {
        let mut resp = vec![0xFF, 0xFF];
        resp.extend([0u8; 14]);
        let exp = [
            Tx::transaction_start(),
            Tx::write_vec(vec![0x03, 1, 0]),
            Tx::read_vec(resp),
            Tx::transaction_end(),
        ];
        let mut f = Fpga::new(SpiMock::new(&exp), PinMock::new(&[]));
        let mut out = [EdgeEvent::default(); 1];
        assert_eq!(f.read_edges(&mut out).unwrap(), 1);
        done(f);
    }

    #[test]
    fn read_snapshot_checks_valid_and_seq() {
        let mut good = vec![1u8];
        good.extend(5u32.to_le_bytes());
        good.extend(1000u32.to_le_bytes());
        good.extend(11u32.to_le_bytes());
        good.extend(22u32.to_le_bytes());
        let mut stale = good.clone();
        stale[1] = 6; // slot holds edge 6, not 5
        let mut exp = vec![];
        for r in [good, stale] {
            exp.extend([
                Tx::transaction_start(),
                Tx::write_vec(vec![0x04, 5, 0, 0, 0]),
                Tx::read_vec(r),
                Tx::transaction_end(),
            ]);
        }
        let mut f = Fpga::new(SpiMock::new(&exp), PinMock::new(&[]));
        f.set_channels(2);
        let mut s = Snapshot::default();
        f.read_snapshot(5, &mut s).unwrap();
        assert!(s.valid);
        assert_eq!((s.seq, s.live, &s.counts[..]), (5, 1000, &[11, 22][..]));
        f.read_snapshot(5, &mut s).unwrap();
        assert!(!s.valid);
        done(f);
    }

    fn init_traffic(id: u32) -> Vec<Tx<u8>> {
        let mut exp = read_reg_tx(reg::ID, id);
        if id != regs::ID_MAGIC {
            return exp;
        }
        for (a, v) in [
            (reg::VERSION, 0x0001_0002),
            (reg::CLOCK_HZ, 100_000_000),
            (reg::N_CHANNELS, 8),
            (reg::COUNTER_BITS, 24),
            (reg::EDGE_FIFO_DEPTH, 4096),
            (reg::SNAPSHOT_DEPTH, 4096),
        ] {
            exp.extend(read_reg_tx(a, v));
        }
        exp.extend(write_reg_tx(reg::CONTROL, 0x6));
        exp.extend(write_reg_tx(reg::CONTROL, 0x1));
        exp.extend(read_reg_tx(reg::AB_NOW, 0x2));
        exp.extend(read_reg_tx(reg::STATUS, 0));
        exp
    }

    #[test]
    fn init_follows_the_reset_sequence() {
        let mut f = Fpga::new(
            SpiMock::new(&init_traffic(regs::ID_MAGIC)),
            PinMock::new(&[PinTx::get(State::High)]),
        );
        let (info, ab) = f.init().unwrap();
        assert_eq!(ab, 2);
        assert_eq!(info.n_channels, 8);
        assert_eq!(info.counter_bits, 24);
        assert_eq!(info.clock_hz, 100_000_000);
        assert!(f.data_ready().unwrap());
        done(f);
    }

    #[test]
    fn init_rejects_a_wrong_id() {
        let mut f = Fpga::new(SpiMock::new(&init_traffic(0xFFFF_FFFF)), PinMock::new(&[]));
        assert_eq!(
            f.init().unwrap_err(),
            Error::BadId {
                expected: regs::ID_MAGIC,
                actual: 0xFFFF_FFFF
            }
        );
        done(f);
    }

    #[test]
    fn init_rejects_a_bad_counter_width() {
        let mut exp = read_reg_tx(reg::ID, regs::ID_MAGIC);
        exp.extend(read_reg_tx(reg::VERSION, 0x0001_0000));
        exp.extend(read_reg_tx(reg::CLOCK_HZ, 1000));
        exp.extend(read_reg_tx(reg::N_CHANNELS, 4));
        exp.extend(read_reg_tx(reg::COUNTER_BITS, 40));
        let mut f = Fpga::new(SpiMock::new(&exp), PinMock::new(&[]));
        assert_eq!(
            f.init().unwrap_err(),
            Error::BadRegister {
                name: "COUNTER_BITS",
                value: 40
            }
        );
        done(f);
    }
}
