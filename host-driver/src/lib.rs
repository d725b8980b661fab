//! flyscan host driver, run as EPICS IOC support (the `flyscan-ioc` binary): reads the device's
//! framed stream from a serial port, checks and reassembles scans (ordering, resends, loss
//! accounting) and shows them in the records of the IOC it runs in; client writes to the
//! control records configure, arm and abort the device.
//!
//! This library is everything but the EPICS interface, so it links no EPICS library:
//! [`assembler`] (sans-I/O deframing, device session, ordering, resend requests) → [`core`]
//! (the sans-I/O state machine from control writes to device frames and back) → [`shell`]
//! (tokio: serial port, timers, settings file) with [`serial`], [`settings_file`] and
//! [`port_lock`]. [`pv_table`] declares every PV once; [`launcher`] starts a `flyscan-ioc` for
//! tests, the demo and benchmarks. The binary adds the IOC itself (`src/ioc/`: the C interface,
//! the device support, the publisher).

pub mod assembler;
pub mod core;
pub mod host_message;
pub mod launcher;
pub mod port_lock;
pub mod pv_table;
pub mod serial;
pub mod settings_file;
pub mod shell;
