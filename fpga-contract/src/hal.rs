//! The reference model behind embedded-hal 1.0 traits, for the firmware's tests, benchmarks
//! and fuzzing: [`FpgaModel`] is a shared handle (cheap to clone; all clones see one FPGA),
//! [`FpgaModel::spi`] and [`FpgaModel::drdy`] hand out the `SpiDevice` and `InputPin` views the
//! driver talks to. The test side moves the encoder ([`FpgaModel::step`],
//! [`FpgaModel::set_ab`]), counts detector pulses ([`FpgaModel::count`]) and advances the clock
//! ([`FpgaModel::advance`], gate open).

use crate::model::{ModelConfig, RefModel};
use embedded_hal::spi::{ErrorKind, Operation};
use std::cell::RefCell;
use std::rc::Rc;
use std::vec::Vec;

/// Quadrature phases in forward order (bit 0 = A, bit 1 = B).
const GRAY: [u8; 4] = [0b00, 0b01, 0b11, 0b10];

/// Error of the model's bus: a transaction of a shape the firmware never makes.
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

/// The shared reference model.
#[derive(Debug, Clone)]
pub struct FpgaModel {
    m: Rc<RefCell<RefModel>>,
}

impl FpgaModel {
    /// A freshly powered FPGA: A/B low, counters 0, capture off.
    pub fn new(cfg: ModelConfig) -> Self {
        Self {
            m: Rc::new(RefCell::new(RefModel::new(cfg))),
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
        self.m.borrow_mut().set_id(id);
    }

    /// Replaces the VERSION register (to test what the firmware offers an older design).
    pub fn set_version(&self, version: u32) {
        self.m.borrow_mut().set_version(version);
    }

    /// `PERIOD` as last written (0: the period timer is stopped).
    pub fn period(&self) -> u32 {
        self.m.borrow().period()
    }

    /// Advances the clock by `ticks`, with the gate open (live time counts along).
    pub fn advance(&self, ticks: u64) {
        self.m.borrow_mut().advance(ticks);
    }

    /// Current clock.
    pub fn time(&self) -> u64 {
        self.m.borrow().now()
    }

    /// Adds `n` pulses on channel `ch`.
    pub fn count(&self, ch: usize, n: u32) {
        self.m.borrow_mut().count(ch, n);
    }

    /// One quadrature step (+1 or −1 count): a legal A/B change.
    pub fn step(&self, dir: i32) {
        let ab = self.m.borrow().ab();
        let phase = GRAY.iter().position(|&g| g == ab).unwrap_or(0);
        let next = (phase + if dir >= 0 { 1 } else { 3 }) % 4;
        self.set_ab(GRAY[next]);
    }

    /// Sets new A/B levels (any change makes one edge event, legal or not).
    pub fn set_ab(&self, ab: u8) {
        self.m.borrow_mut().set_ab(ab);
    }

    /// Events waiting in the FIFO.
    pub fn fifo_level(&self) -> usize {
        self.m.borrow().fifo_level()
    }

    /// SPI transactions served so far.
    pub fn transactions(&self) -> u64 {
        self.m.borrow().stats().transactions
    }

    fn transaction(&self, ops: &mut [Operation<'_, u8>]) -> Result<(), ModelError> {
        let (header, resp): (&[u8], Option<&mut [u8]>) = match ops {
            [Operation::Write(h)] => (h, None),
            [Operation::Write(h), Operation::Read(r)] => (h, Some(r)),
            _ => return Err(ModelError),
        };
        let read_len = resp.as_ref().map_or(0, |r| r.len());
        let mut mosi = Vec::with_capacity(header.len() + read_len);
        mosi.extend_from_slice(header);
        mosi.resize(header.len() + read_len, 0);
        let miso = self.m.borrow_mut().exchange_vec(&mosi);
        if let Some(r) = resp {
            r.copy_from_slice(&miso[header.len()..]);
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
        Ok(self.m.m.borrow().data_ready())
    }
    fn is_low(&mut self) -> Result<bool, ModelError> {
        self.is_high().map(|h| !h)
    }
}
