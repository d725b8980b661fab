//! The FPGA ↔ firmware contract of `firmware-odroid/FPGA.md`, in one place:
//!
//! * [`regs`]: command bytes, register addresses and bits, record lengths;
//! * [`records`]: the edge-event and snapshot records, encoders and decoders;
//! * [`model`] (std): the register-level reference model, the executable statement of FPGA.md
//!   that the simulator, the firmware's tests and the gateware's test vectors all run;
//! * [`hal`] (std): that model behind embedded-hal `SpiDevice` / `InputPin`;
//! * [`socket`] (std): the simulator socket, client (the firmware's) and server (the
//!   simulator's);
//! * [`vectors`] (std): stimulus → expected-SPI-response vectors from the model, replayed
//!   against the gateware (`gateware/`).
//!
//! Without the `std` feature only [`regs`] and [`records`] are built (no_std, no alloc), which is
//! what the firmware core needs.
#![cfg_attr(not(feature = "std"), no_std)]

pub mod records;
pub mod regs;

#[cfg(feature = "std")]
pub mod hal;
#[cfg(feature = "std")]
pub mod model;
#[cfg(feature = "std")]
pub mod socket;
#[cfg(feature = "std")]
pub mod vectors;

pub use records::{EdgeEvent, Snapshot};
