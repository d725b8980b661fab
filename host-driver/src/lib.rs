//! flyscan host driver: reads the device's framed stream from a serial port, reassembles scans
//! (ordering, resends, loss accounting) and publishes them to an EPICS IOC over Channel Access.
//!
//! Pipeline, one module per stage: [`serial`] (port I/O, reopen with backoff) →
//! [`assembler`] (sans-I/O deframing, ordering, resend requests) → [`scan`] (per-scan
//! waveforms and loss counters) → [`publish`] (Channel Access puts). [`controls`] watches the
//! control PVs; [`driver`] ties them together; [`ioc`] starts a soft IOC with the shipped
//! database for tests and demos.

pub mod assembler;
pub mod controls;
pub mod driver;
pub mod host_message;
pub mod ioc;
pub mod publish;
pub mod pvs;
pub mod scan;
pub mod serial;
pub mod state;
