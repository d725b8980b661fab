//! flyscan-sim: a deterministic virtual flyscan device.
//!
//! Layers, bottom up:
//!
//! * [`scenario`]: the TOML scenario (seed, clock, motor, encoder, detectors, fpga, link, scan)
//!   and [`plan`]: the scan configuration and preset list it implies.
//! * Physics: [`trajectory`] (motor position vs time), [`encoder`] (A/B edges at clock
//!   resolution, glitches, missing edges), [`mono`] (the encoder reads the Bragg angle of a
//!   double-crystal monochromator: energy by Bragg's law), [`sample`] (the sample's and the
//!   reference foil's absorption around an edge), [`detectors`] (I0, It, If, Iref pulse trains
//!   from those, dead time).
//! * [`fpga`]: the FPGA of firmware-odroid/FPGA.md on top of the physics, as embedded-hal
//!   `SpiDevice` + `InputPin` handles; its register level is the FPGA contract's reference
//!   model, or the gateware itself through [`rtl`] (a Verilator build); [`socket`] serves it to
//!   an external firmware binary.
//! * [`truth`]: the reference decoder/compare giving the exact expected points.
//! * [`link`]: the serial line (pacing, bit errors, drops); [`pty`]: pseudo-terminals.
//! * [`simulation`]: the in-process device loop in simulated time.
//! * [`device_clock`]: the device clock, held until the arm so runs are reproducible.
//! * [`scripted`]: a device with no physics whose every point is known and whose faults are
//!   ordered (tests of the host driver and of the Bluesky device).
//!
//! **Invariant:** every random number comes from the scenario seed through [`rng`], one
//! stream per process; simulated time is the only clock in the models.

pub mod detectors;
pub mod device_clock;
pub mod encoder;
pub mod firmware;
pub mod fpga;
pub mod link;
pub mod mono;
pub mod plan;
pub mod pty;
pub mod rng;
pub mod rtl;
pub mod sample;
pub mod scenario;
pub mod scripted;
pub mod simulation;
pub mod socket;
pub mod trajectory;
pub mod truth;

pub use fpga::{DrdyHandle, FpgaModel, SharedFpga, SpiHandle};
pub use plan::ScanPlan;
pub use scenario::Scenario;
pub use simulation::{Device, SimError, Simulation};
pub use truth::{TruthPoint, TruthSummary};
