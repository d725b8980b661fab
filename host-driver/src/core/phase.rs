//! The scan phases of the driver core and the table of its transitions. The table is data:
//! `host-driver/README.md` and `ARCHITECTURE.md` print it (a test keeps them equal to
//! [`render_table`]), and `tests/phase_table.rs` drives the core through every row.

use std::fmt;

/// Where the driver is in arming and running a scan. Link state (port, device session,
/// liveness) is kept apart: a scan keeps its phase while the line is away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// No scan of this driver in progress.
    Idle,
    /// `Configure` sent, waiting for its reply.
    Configuring,
    /// List mode: the first window of positions being sent before `Arm`.
    Loading,
    /// `Arm` sent, waiting for its reply.
    Arming,
    /// `Arm` acknowledged, waiting for `ScanArmed`.
    Armed,
    /// `ScanArmed` received: points arriving.
    Running,
    /// `Abort` sent, waiting for `ScanDone`.
    Aborting,
}

impl Phase {
    /// A scan of this driver is in progress (`Busy` = 1).
    pub fn busy(self) -> bool {
        self != Self::Idle
    }

    /// The device may be scanning: its silence ends the scan after the scan timeout.
    pub fn on_device(self) -> bool {
        matches!(self, Self::Armed | Self::Running | Self::Aborting)
    }

    /// Data frames of this driver's scan are taken (from `Arming` on: the `Arm` ack and
    /// `ScanArmed` may both have been lost).
    pub fn awaits_data(self) -> bool {
        matches!(
            self,
            Self::Arming | Self::Armed | Self::Running | Self::Aborting
        )
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What happens to the driver (the inputs of the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum On {
    /// `Arm` = 1 with a valid configuration and a connected device.
    Arm,
    /// `Arm` = 1 refused: invalid configuration or no device.
    ArmRefused,
    /// `Arm` = 1 while a scan is in progress.
    ArmAgain,
    /// `Abort` = 1.
    Abort,
    /// Ack of `Configure`.
    ConfigureAck,
    /// Ack of the position chunk that fills the device's list window.
    ChunkAck,
    /// Ack of `Arm`.
    ArmAck,
    /// Nak of the command in flight.
    Nak,
    /// No reply after the last retry.
    NoReply,
    /// `ScanArmed` of this scan.
    ScanArmed,
    /// A `PointBatch` that passes every check.
    Batch,
    /// A data frame that fails a check (foreign scan, mask, index, decode).
    BadFrame,
    /// `ScanDone` of this scan.
    ScanDone,
    /// The device started a new session (restart).
    DeviceRestart,
    /// The device's sequence number went back within its session.
    SeqBack,
    /// The device stayed silent past the scan timeout.
    Silence,
    /// The serial port closed.
    PortLost,
}

/// One row: in `from`, on `on`, the driver goes to `to` and does `does`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// Phase before.
    pub from: Phase,
    /// The input.
    pub on: On,
    /// Phase after.
    pub to: Phase,
    /// Status afterwards (`None`: unchanged).
    pub status: Option<super::Status>,
    /// What the driver does, in words.
    pub does: &'static str,
}

use super::Status as S;
use On::*;
use Phase::*;

const fn t(from: Phase, on: On, to: Phase, status: Option<S>, does: &'static str) -> Transition {
    Transition {
        from,
        on,
        to,
        status,
        does,
    }
}

/// Every transition of the driver core. Inputs not listed for a phase leave it unchanged
/// (frames of finished scans are dropped, `Abort` when idle is passed to the device).
pub const TABLE: &[Transition] = &[
    t(Idle, Arm, Configuring, None, "send Configure; Busy 1"),
    t(
        Idle,
        ArmRefused,
        Idle,
        Some(S::Error),
        "say why; Arm back to 0",
    ),
    t(
        Idle,
        Abort,
        Idle,
        None,
        "send Abort (stops a scan this driver does not know)",
    ),
    t(
        Idle,
        BadFrame,
        Idle,
        None,
        "count a protocol error; show nothing",
    ),
    t(
        Configuring,
        ConfigureAck,
        Arming,
        None,
        "send Arm (list mode: Loading, send chunks)",
    ),
    t(
        Configuring,
        Nak,
        Idle,
        Some(S::Error),
        "say what the device refused; Arm 0, Busy 0",
    ),
    t(
        Configuring,
        NoReply,
        Idle,
        Some(S::Error),
        "after 3 tries: say so; Arm 0, Busy 0",
    ),
    t(
        Configuring,
        Abort,
        Idle,
        Some(S::Aborted),
        "send Abort; Arm 0, Busy 0",
    ),
    t(
        Configuring,
        ArmAgain,
        Configuring,
        None,
        "refuse in StatusMessage only",
    ),
    t(
        Configuring,
        DeviceRestart,
        Idle,
        Some(S::Error),
        "name the restart; Arm 0, Busy 0",
    ),
    t(
        Configuring,
        PortLost,
        Idle,
        Some(S::Error),
        "name the port error; Arm 0, Busy 0",
    ),
    t(
        Loading,
        ChunkAck,
        Arming,
        None,
        "window loaded: send Arm (before that, the next chunk)",
    ),
    t(
        Loading,
        Nak,
        Idle,
        Some(S::Error),
        "say what the device refused; Arm 0, Busy 0",
    ),
    t(
        Loading,
        Abort,
        Idle,
        Some(S::Aborted),
        "send Abort; Arm 0, Busy 0",
    ),
    t(Arming, ArmAck, Armed, None, "wait for ScanArmed"),
    t(
        Arming,
        ScanArmed,
        Running,
        Some(S::Armed),
        "the Arm ack was lost: start the scan",
    ),
    t(
        Arming,
        Nak,
        Idle,
        Some(S::Error),
        "say what the device refused; Arm 0, Busy 0",
    ),
    t(
        Arming,
        Abort,
        Idle,
        Some(S::Aborted),
        "send Abort; Arm 0, Busy 0",
    ),
    t(
        Armed,
        ScanArmed,
        Running,
        Some(S::Armed),
        "clear the waveforms; record the scan",
    ),
    t(
        Armed,
        Batch,
        Running,
        Some(S::Scanning),
        "ScanArmed was lost: start the scan, show the points",
    ),
    t(Armed, Abort, Aborting, None, "send Abort"),
    t(
        Running,
        Batch,
        Running,
        Some(S::Scanning),
        "show the points (a hole before them is lost)",
    ),
    t(
        Running,
        BadFrame,
        Running,
        None,
        "count a protocol error; show nothing of it",
    ),
    t(
        Running,
        ArmAgain,
        Running,
        None,
        "refuse in StatusMessage only; Status unchanged",
    ),
    t(
        Running,
        ScanDone,
        Idle,
        Some(S::Done),
        "final totals; Arm 0, Busy 0",
    ),
    t(Running, Abort, Aborting, None, "send Abort"),
    t(
        Running,
        DeviceRestart,
        Idle,
        Some(S::Error),
        "name the restart; the rest is lost; Arm 0, Busy 0",
    ),
    t(
        Running,
        SeqBack,
        Idle,
        Some(S::Error),
        "name the fault; the rest is lost; Arm 0, Busy 0",
    ),
    t(
        Running,
        Silence,
        Idle,
        Some(S::Error),
        "send Abort; the rest is lost; Arm 0, Busy 0",
    ),
    t(
        Running,
        PortLost,
        Running,
        None,
        "keep waiting: the device resends when it is back",
    ),
    t(
        Aborting,
        ScanDone,
        Idle,
        Some(S::Aborted),
        "final totals; Arm 0, Busy 0",
    ),
    t(
        Aborting,
        NoReply,
        Idle,
        Some(S::Error),
        "after 3 tries: say so; the rest is lost; Arm 0, Busy 0",
    ),
];

/// The table as markdown (the form README.md and ARCHITECTURE.md carry).
pub fn render_table() -> String {
    let mut s =
        String::from("| phase | on | next | Status | the driver |\n|---|---|---|---|---|\n");
    for r in TABLE {
        let status = r.status.map_or("—".to_owned(), |st| format!("{st:?}"));
        s.push_str(&format!(
            "| {} | {:?} | {} | {} | {} |\n",
            r.from, r.on, r.to, status, r.does
        ));
    }
    s
}
