//! Every PV of the flyscan IOC, declared once: its name (after the prefix), record type, who
//! writes it and what it means. The device support binds records by this table, the driver
//! checks at start that the loaded databases hold every row, and tests check `db/*.db`, the PV
//! table in `host-driver/README.md` and the ophyd-async device against it; adding a PV is one
//! row here (and its record in the database).

/// Who writes a PV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// Clients (from the control hosts): configuration, Arm, Abort.
    Client,
    /// The driver only (read-only to every client).
    Driver,
}

/// What a client-written PV sets in the driver core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Control {
    /// `Mode`.
    Mode,
    /// `Start`.
    Start,
    /// `Step`.
    Step,
    /// `NPoints`.
    NPoints,
    /// `Period`.
    Period,
    /// `GateLow`.
    GateLow,
    /// `GateHigh`.
    GateHigh,
    /// `Positions`.
    Positions,
    /// `Direction`.
    Direction,
    /// `Passes`.
    Passes,
    /// `ChannelMask`.
    ChannelMask,
    /// `Encoding`.
    Encoding,
    /// `Arm`.
    Arm,
    /// `Abort`.
    Abort,
    /// `DSpacing`.
    DSpacing,
    /// `CountsPerDegree`.
    CountsPerDegree,
    /// `AngleOffset`.
    AngleOffset,
    /// `Crystal`.
    Crystal,
    /// `CH$(N):Role`.
    Role,
}

/// What a driver-written PV shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Output {
    /// Per-point encoder position.
    Position,
    /// Per-point device time.
    Timestamp,
    /// Per-point gate time.
    LiveTime,
    /// Per-point flag bits.
    Flags,
    /// Per-point energy at the trigger (bin end).
    Energy,
    /// Per-point energy at the bin start.
    EnergyStart,
    /// Per-point energy at the bin centre.
    EnergyCentre,
    /// Points the per-point waveforms show now (their NORD); triggers the PVA scan group.
    NumShown,
    /// Column names of the PVA scan table.
    ScanLabels,
    /// Indices of the points in the tail.
    TailIndex,
    /// Tail: positions.
    TailPosition,
    /// Tail: device times.
    TailTimestamp,
    /// Tail: gate times.
    TailLiveTime,
    /// Tail: flags.
    TailFlags,
    /// Tail: energies (bin end).
    TailEnergy,
    /// Tail: energies where the bins began.
    TailEnergyStart,
    /// Tail: energies at the bins' centres.
    TailEnergyCentre,
    /// Tail: counts of one channel (`CH$(N):Tail`).
    TailChannel,
    /// Preview: positions.
    PreviewPosition,
    /// Preview: energies.
    PreviewEnergy,
    /// Preview: counts of one channel (`CH$(N):Preview`).
    PreviewChannel,
    /// Per-point counts of one channel (`CH$(N)`).
    Channel,
    /// `Image::num_captured`.
    NumCaptured,
    /// `Image::num_expected`.
    NumExpected,
    /// `Image::lost_points`.
    LostPoints,
    /// `Image::quad_errors`.
    QuadErrors,
    /// `Image::position_jumps`.
    PositionJumps,
    /// `Image::link_errors`.
    LinkErrors,
    /// `Image::protocol_errors`.
    ProtocolErrors,
    /// `Image::resends`.
    Resends,
    /// `Image::status`.
    Status,
    /// `Image::message`.
    StatusMessage,
    /// `Image::busy`.
    Busy,
    /// `Image::firmware_version`.
    FirmwareVersion,
    /// `Image::num_channels`.
    NumChannels,
    /// `Image::max_points`.
    MaxPoints,
    /// `Image::scan_id`.
    ScanId,
    /// `Image::connected`.
    Connected,
    /// `Image::device_session`.
    DeviceSession,
}

/// The role of a PV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Written by clients, handed to the core in record-processing order.
    Control(Control),
    /// Written by the driver.
    Output(Output),
}

/// One PV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pv {
    /// Name after the prefix; `CH$(N)` for the per-channel waveforms.
    pub name: &'static str,
    /// Record type (and element type of a waveform), as in the database.
    pub record: &'static str,
    /// What it is for.
    pub role: Role,
    /// Meaning, for the documents.
    pub meaning: &'static str,
}

impl Pv {
    /// Who writes it.
    pub fn writer(&self) -> Writer {
        match self.role {
            Role::Control(_) => Writer::Client,
            Role::Output(_) => Writer::Driver,
        }
    }

    /// One record per detector channel.
    pub fn per_channel(&self) -> bool {
        self.name.contains("$(N)")
    }

    /// The record name for prefix `p` (and channel `n` for a per-channel PV).
    pub fn record_name(&self, p: &str, n: usize) -> String {
        format!("{p}{}", self.name.replace("$(N)", &n.to_string()))
    }
}

const fn c(name: &'static str, record: &'static str, ctl: Control, meaning: &'static str) -> Pv {
    Pv {
        name,
        record,
        role: Role::Control(ctl),
        meaning,
    }
}

const fn o(name: &'static str, record: &'static str, out: Output, meaning: &'static str) -> Pv {
    Pv {
        name,
        record,
        role: Role::Output(out),
        meaning,
    }
}

/// Every PV.
pub const PVS: &[Pv] = &[
    o(
        "CH$(N)",
        "waveform DOUBLE",
        Output::Channel,
        "counts of channel N (bit N of ChannelMask) per point; empty if the channel is off; NaN where a point was lost",
    ),
    o(
        "Position",
        "waveform DOUBLE",
        Output::Position,
        "encoder position at each trigger, counts",
    ),
    o(
        "Timestamp",
        "waveform DOUBLE",
        Output::Timestamp,
        "device time at each trigger, s",
    ),
    o(
        "LiveTime",
        "waveform DOUBLE",
        Output::LiveTime,
        "gate time of each bin, s",
    ),
    o(
        "Flags",
        "waveform UCHAR",
        Output::Flags,
        "point flag bits: 1 jump, 2 clamped, 4 negative, 8 quadrature error, 16 pass start (the bin began at the arm or the turn-around: keep it out of mu(E))",
    ),
    o(
        "Energy",
        "waveform DOUBLE",
        Output::Energy,
        "photon energy at each trigger (the end of the point's bin), eV",
    ),
    o(
        "EnergyStart",
        "waveform DOUBLE",
        Output::EnergyStart,
        "energy at the start of each bin (the previous preset), eV; NaN for the first point of a pass",
    ),
    o(
        "EnergyCentre",
        "waveform DOUBLE",
        Output::EnergyCentre,
        "energy at the middle of each bin, eV; NaN for the first point of a pass",
    ),
    o(
        "NumShown",
        "int64in",
        Output::NumShown,
        "points the per-point waveforms hold now (their NORD); each update is a consistent scan table over PV Access",
    ),
    o(
        "ScanLabels",
        "waveform STRING",
        Output::ScanLabels,
        "column names of the PV Access scan table $(P)Scan",
    ),
    o(
        "Tail:Index",
        "waveform DOUBLE",
        Output::TailIndex,
        "indices of the newest points (those since the previous update), posted every tick after the other Tail records: each point reaches a monitor once, within a tick",
    ),
    o(
        "Tail:Position",
        "waveform DOUBLE",
        Output::TailPosition,
        "positions of the newest points",
    ),
    o(
        "Tail:Timestamp",
        "waveform DOUBLE",
        Output::TailTimestamp,
        "device times of the newest points, s",
    ),
    o(
        "Tail:LiveTime",
        "waveform DOUBLE",
        Output::TailLiveTime,
        "gate times of the newest points, s",
    ),
    o(
        "Tail:Flags",
        "waveform UCHAR",
        Output::TailFlags,
        "flags of the newest points",
    ),
    o(
        "Tail:Energy",
        "waveform DOUBLE",
        Output::TailEnergy,
        "energies of the newest points, eV",
    ),
    o(
        "Tail:EnergyStart",
        "waveform DOUBLE",
        Output::TailEnergyStart,
        "energies where the newest points' bins began, eV",
    ),
    o(
        "Tail:EnergyCentre",
        "waveform DOUBLE",
        Output::TailEnergyCentre,
        "energies at the newest points' bin centres, eV",
    ),
    o(
        "CH$(N):Tail",
        "waveform DOUBLE",
        Output::TailChannel,
        "counts of channel N of the newest points",
    ),
    o(
        "Preview:Position",
        "waveform DOUBLE",
        Output::PreviewPosition,
        "every k-th point's position (k from the scan's length so it fits), for screens; updated at most 5 times a second",
    ),
    o(
        "Preview:Energy",
        "waveform DOUBLE",
        Output::PreviewEnergy,
        "every k-th point's energy, eV",
    ),
    o(
        "CH$(N):Preview",
        "waveform DOUBLE",
        Output::PreviewChannel,
        "every k-th point's counts of channel N",
    ),
    o(
        "NumCaptured",
        "int64in",
        Output::NumCaptured,
        "points received in this scan",
    ),
    o(
        "NumExpected",
        "int64in",
        Output::NumExpected,
        "points the scan should give (the device's total once it ended)",
    ),
    o(
        "LostPoints",
        "int64in",
        Output::LostPoints,
        "points that will never arrive",
    ),
    o(
        "QuadErrors",
        "int64in",
        Output::QuadErrors,
        "the device's illegal quadrature transitions",
    ),
    o(
        "PositionJumps",
        "int64in",
        Output::PositionJumps,
        "the device's multi-preset position jumps",
    ),
    o(
        "LinkErrors",
        "int64in",
        Output::LinkErrors,
        "damaged frames on the serial line (CRC, COBS, framing)",
    ),
    o(
        "ProtocolErrors",
        "int64in",
        Output::ProtocolErrors,
        "frames with a good CRC that were wrong (foreign scan, mask, index, undecodable): rejected, never shown",
    ),
    o(
        "Resends",
        "int64in",
        Output::Resends,
        "resend requests sent",
    ),
    o(
        "Status",
        "mbbi",
        Output::Status,
        "Idle / Armed / Scanning / Done / Aborted / Error",
    ),
    o(
        "StatusMessage",
        "waveform CHAR",
        Output::StatusMessage,
        "the latest news or error, in words",
    ),
    o(
        "Busy",
        "bi",
        Output::Busy,
        "1 while a scan is being armed, runs or is being aborted",
    ),
    o(
        "FirmwareVersion",
        "stringin",
        Output::FirmwareVersion,
        "device firmware major.minor.patch",
    ),
    o(
        "NumChannels",
        "longin",
        Output::NumChannels,
        "detector channels on the device",
    ),
    o(
        "MaxPoints",
        "int64in",
        Output::MaxPoints,
        "the device's limit of presets per pass",
    ),
    o(
        "ScanId",
        "int64in",
        Output::ScanId,
        "id of the current or last scan",
    ),
    o(
        "Connected",
        "bi",
        Output::Connected,
        "the device answered within the last 2 s",
    ),
    o(
        "DeviceSession",
        "int64in",
        Output::DeviceSession,
        "the device's boot id: changes when it restarts",
    ),
    c(
        "Mode",
        "mbbo",
        Control::Mode,
        "Start-Step-Count / List / Time",
    ),
    c(
        "Start",
        "ao",
        Control::Start,
        "first preset, counts (whole number)",
    ),
    c(
        "Step",
        "ao",
        Control::Step,
        "distance between presets, counts (whole, not 0, sign as Direction)",
    ),
    c(
        "NPoints",
        "longout",
        Control::NPoints,
        "presets per pass (Start-Step-Count); points (Time)",
    ),
    c(
        "Period",
        "ao",
        Control::Period,
        "Time mode: seconds between points (≥ 10 µs, rounded to the device clock)",
    ),
    c(
        "GateLow",
        "ao",
        Control::GateLow,
        "Time mode: points only while the position is from GateLow …, counts (whole)",
    ),
    c(
        "GateHigh",
        "ao",
        Control::GateHigh,
        "… to GateHigh, counts (whole); GateHigh = GateLow: no window",
    ),
    c(
        "Positions",
        "waveform DOUBLE",
        Control::Positions,
        "the preset list (List mode; its length is the count; at most NPTS − 1: a list that fills the record may have been cut by it)",
    ),
    c(
        "Direction",
        "mbbo",
        Control::Direction,
        "Positive / Negative / Either / Bidirectional (not used in Time mode)",
    ),
    c(
        "Passes",
        "longout",
        Control::Passes,
        "passes (more than 1 only with Bidirectional)",
    ),
    c(
        "ChannelMask",
        "int64out",
        Control::ChannelMask,
        "enabled channels, bit N = CH N (4294967295 = all 32)",
    ),
    c(
        "Encoding",
        "mbbo",
        Control::Encoding,
        "Compact / Raw point encoding on the line",
    ),
    c(
        "Arm",
        "bo",
        Control::Arm,
        "write 1 to arm; back to 0 when the scan ends (at once when refused)",
    ),
    c(
        "Abort",
        "bo",
        Control::Abort,
        "write 1 to abort; back to 0 at once",
    ),
    c(
        "DSpacing",
        "ao",
        Control::DSpacing,
        "monochromator crystal d-spacing, Angstrom (Si(111) 3.13560)",
    ),
    c(
        "CountsPerDegree",
        "ao",
        Control::CountsPerDegree,
        "encoder counts per degree of Bragg angle (negative if the encoder runs backwards)",
    ),
    c(
        "AngleOffset",
        "ao",
        Control::AngleOffset,
        "encoder position at Bragg angle 0, counts; energy = 12398.419843 / (2 d sin((position - AngleOffset) / CountsPerDegree))",
    ),
    c(
        "Crystal",
        "stringout",
        Control::Crystal,
        "crystal name (metadata), e.g. Si(111)",
    ),
    c(
        "CH$(N):Role",
        "stringout",
        Control::Role,
        "what channel N measures: I0, It, If, Iref, ... (also in the DESC of CH$(N))",
    ),
];

/// The row of a record name (prefix removed); per-channel rows match `CH<number>`.
pub fn lookup(suffix: &str) -> Option<(&'static Pv, Option<usize>)> {
    if let Some(rest) = suffix.strip_prefix("CH") {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if let Ok(n) = rest[..digits].parse::<usize>() {
            let pattern = format!("CH$(N){}", &rest[digits..]);
            return PVS.iter().find(|p| p.name == pattern).map(|p| (p, Some(n)));
        }
    }
    PVS.iter().find(|p| p.name == suffix).map(|p| (p, None))
}

/// The PV table as markdown (what `host-driver/README.md` carries).
pub fn render_table() -> String {
    let mut s = String::from("| PV | record | written by | meaning |\n|---|---|---|---|\n");
    for p in PVS {
        let who = match p.writer() {
            Writer::Client => "client",
            Writer::Driver => "driver",
        };
        s.push_str(&format!(
            "| `$(P){}` | {} | {who} | {} |\n",
            p.name, p.record, p.meaning
        ));
    }
    s
}

/// The PV Access groups QSRV serves from the records' `Q:group` info tags (name after the
/// prefix, what it holds).
pub const GROUPS: &[(&str, &str)] = &[
    (
        "Scan",
        "the whole scan as one NTTable (updated with the full waveforms)",
    ),
    (
        "Tail",
        "the newest points, every column at once (updated every tick with Tail:Index)",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        for p in PVS {
            assert_eq!(PVS.iter().filter(|q| q.name == p.name).count(), 1);
            let name = p.name.replace("$(N)", "7");
            let (q, n) = lookup(&name).expect("found");
            assert_eq!(q, p);
            assert_eq!(n.is_some(), p.per_channel());
        }
        assert!(lookup("Nope").is_none());
    }
}
