//! flyscan host driver, run as EPICS IOC support: reads the device's framed stream from a serial
//! port, checks and reassembles scans (ordering, resends, loss accounting) and shows them in the
//! records of the IOC it runs in; client writes to the control records configure, arm and abort
//! the device.
//!
//! Layers, bottom up: [`assembler`] (sans-I/O deframing, device session, ordering, resend
//! requests) → [`core`] (the sans-I/O state machine from control writes to device frames and
//! back: phases, checks against the armed scan, liveness) → the tokio shell ([`serial`],
//! [`shell`]) → [`ioc`] (the EPICS IOC in this process: records, device support, publishing).
//! [`pv_table`] declares every PV once.

pub mod assembler;
pub mod core;
pub mod host_message;
pub mod serial;
