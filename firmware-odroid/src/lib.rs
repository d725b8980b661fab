//! flyscan firmware core: what runs on the controller between the FPGA and the serial line.
//!
//! Layers, bottom up (the folder tree follows them):
//!
//! * [`fpga`]: the FPGA contract (`regs`, prose in `FPGA.md`) and the driver [`fpga::Fpga`],
//!   generic over embedded-hal 1.0 `SpiDevice` + `InputPin`. With `std`: the simulator-socket
//!   client ([`fpga::sim_socket`]) and an in-memory FPGA model for tests and benchmarks
//!   ([`fpga::model`]).
//! * [`quadrature`]: x4 decoding of edge events into a position.
//! * [`compare`]: which edge crosses which preset (start/step/count or a streamed list);
//!   [`period`]: time mode, points at the FPGA's period events instead.
//! * [`latch`]: per-bin counts from the snapshot of the triggering edge.
//! * [`stream`] and [`outbox`]: point batches, frame numbering, resend history, bounded
//!   transmit queue; [`batch_cap`]: batch size adapted to line noise.
//! * [`device`]: the sans-I/O [`Firmware`] object tying them together and handling commands.
//! * `boot_id` (std): the random session id a start announces.
//!
//! **Architecture invariants:** the core does no I/O of its own and reads no clock (time is
//! passed to [`Firmware::poll`]); it allocates nothing (heapless, fixed buffers); no host bytes
//! can make it panic; it builds without `std` (`--no-default-features`).
#![cfg_attr(not(feature = "std"), no_std)]
// Tests may unwrap: a panic there is a failed test.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod batch_cap;
#[cfg(feature = "std")]
pub mod boot_id;
pub mod buf;
pub mod compare;
pub mod device;
pub mod fpga;
pub mod latch;
pub mod outbox;
pub mod period;
pub mod quadrature;
pub mod stream;

pub use device::{Counters, Firmware, InitError, PollStatus, Settings};
pub use fpga::{EdgeEvent, Fpga, FpgaError, FpgaInfo, Snapshot};
