//! Shows the core's outputs in the IOC's records, in-process: scalars through `dbPutField`
//! when they change; per-point rows copied into the waveforms' own buffers as they arrive
//! (O(new points)), with the waveforms processed (timestamp, monitors) on a schedule that keeps
//! what a monitoring client receives proportional to the final arrays: whenever the arrays have
//! doubled since they were last posted (and at most every `min_interval`), when the points
//! stop coming for a moment (a slow or stalled scan still shows all it has), and once more when
//! the scan ends. Waveforms are posted before the scalars, and `Status` last, so a client that
//! sees `Status = Done` reads final arrays.

use super::ffi::{ArrayRecord, Record};
use flyscan_host::core::{Image, RowBlock};
use flyscan_host::pv_table::{Control, Output, PVS, Role};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A per-point waveform of the driver.
#[derive(Debug, Clone, Copy)]
struct Wave(ArrayRecord);

impl Wave {
    fn find(name: &str) -> Option<Self> {
        ArrayRecord::find(name).map(Self)
    }

    fn write_doubles(&self, first: usize, data: &[f64]) {
        self.0.with_lock(|mut l| {
            if let Some(buf) = l.doubles() {
                let end = (first + data.len()).min(buf.len());
                if first < end {
                    buf[first..end].copy_from_slice(&data[..end - first]);
                }
            }
        });
    }

    fn write_bytes(&self, first: usize, data: &[u8]) {
        self.0.with_lock(|mut l| {
            if let Some(buf) = l.bytes() {
                let end = (first + data.len()).min(buf.len());
                if first < end {
                    buf[first..end].copy_from_slice(&data[..end - first]);
                }
            }
        });
    }

    fn post(&self, len: usize) {
        self.0.with_lock(|mut l| l.process(len));
    }
}

/// The driver's records, found by name.
#[derive(Debug)]
pub struct Records {
    scalars: HashMap<Output, Record>,
    position: Wave,
    timestamp: Wave,
    live_time: Wave,
    flags: Wave,
    energy: [Wave; 3],
    channels: Vec<Wave>,
    /// `CH<n>.DESC`, by channel.
    descs: Vec<Record>,
    arm: Record,
    abort: Record,
    /// Points per waveform (NELM of `Position`).
    pub capacity: usize,
    /// Elements `Positions` holds (its NELM).
    pub list_elements: usize,
}

impl Records {
    /// Finds every record of the PV table for prefix `p` and `channels` channels; the error
    /// lists every record the loaded databases lack.
    pub fn bind(p: &str, channels: usize) -> Result<Self, Vec<String>> {
        let mut missing = Vec::new();
        let mut scalars = HashMap::new();
        let mut waves = HashMap::new();
        let mut channel_waves = Vec::new();
        let mut controls = HashMap::new();
        for pv in PVS {
            let n = if pv.per_channel() { channels } else { 1 };
            for ch in 0..n {
                let name = pv.record_name(p, ch);
                let is_wave = pv.record.starts_with("waveform");
                let found = if is_wave {
                    Wave::find(&name).map(|w| (*w.0.val(), Some(w)))
                } else {
                    Record::find(&name).map(|r| (r, None))
                };
                let Some((rec, wave)) = found else {
                    missing.push(name);
                    continue;
                };
                match pv.role {
                    Role::Output(Output::Channel) => {
                        if let Some(w) = wave {
                            channel_waves.push(w);
                        }
                    }
                    Role::Output(o) => {
                        if let Some(w) = wave {
                            waves.insert(o, w);
                        }
                        scalars.insert(o, rec);
                    }
                    Role::Control(c) => {
                        controls.insert(c, rec);
                    }
                }
            }
        }
        if !missing.is_empty() {
            return Err(missing);
        }
        let wave = |o: Output| waves.get(&o).copied().ok_or(vec![format!("{p}{o:?}")]);
        let ctl = |c: Control| controls.get(&c).copied().ok_or(vec![format!("{p}{c:?}")]);
        let position = wave(Output::Position)?;
        let descs = (0..channels)
            .map(|n| Record::find(&format!("{p}CH{n}.DESC")).ok_or(vec![format!("{p}CH{n}.DESC")]))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            energy: [
                wave(Output::Energy)?,
                wave(Output::EnergyStart)?,
                wave(Output::EnergyCentre)?,
            ],
            descs,
            capacity: position.0.val().capacity(),
            list_elements: ctl(Control::Positions)?.capacity(),
            position,
            timestamp: wave(Output::Timestamp)?,
            live_time: wave(Output::LiveTime)?,
            flags: wave(Output::Flags)?,
            channels: channel_waves,
            arm: ctl(Control::Arm)?,
            abort: ctl(Control::Abort)?,
            scalars,
        })
    }

    /// The per-point waveforms every scan fills (channels apart).
    fn point_waves(&self) -> impl Iterator<Item = &Wave> {
        [
            &self.position,
            &self.timestamp,
            &self.live_time,
            &self.flags,
        ]
        .into_iter()
        .chain(self.energy.iter())
    }

    fn all_waves(&self) -> impl Iterator<Item = &Wave> {
        self.point_waves().chain(self.channels.iter())
    }

    /// Column names of the PVA scan table (`$(P)ScanLabels`).
    fn labels(&self) -> Vec<String> {
        [
            "position",
            "timestamp",
            "live_time",
            "flags",
            "energy",
            "energy_start",
            "energy_centre",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain((0..self.channels.len()).map(|n| format!("ch{n}")))
        .collect()
    }
}

/// How an integer record's value comes from the image.
type IntOf = fn(&Image) -> i64;

/// No new rows for this long: the arrays are shown as they are.
const QUIET: Duration = Duration::from_millis(250);

/// Publishing state.
#[derive(Debug)]
pub struct Publisher {
    recs: Records,
    last: Option<Image>,
    /// Rows held in the waveforms' buffers.
    len: usize,
    /// Rows shown at the last post.
    posted: usize,
    last_post: Option<Instant>,
    /// Channels of the current scan.
    mask: u32,
    /// Roles last written into the channels' DESC.
    roles: Vec<String>,
    /// When rows last arrived.
    last_rows: Option<Instant>,
    /// Shortest time between two posts of the waveforms.
    pub min_interval: Duration,
}

impl Publisher {
    /// Publishes into `recs`.
    pub fn new(recs: Records) -> Self {
        if let Some(r) = recs.scalars.get(&Output::ScanLabels)
            && let Err(s) = r.put_strings(&recs.labels())
        {
            tracing::error!(status = s, "cannot write ScanLabels");
        }
        Self {
            recs,
            last: None,
            len: 0,
            posted: 0,
            last_post: None,
            mask: 0,
            roles: Vec::new(),
            last_rows: None,
            min_interval: Duration::from_millis(50),
        }
    }

    /// A new scan: every waveform empty.
    pub fn scan_started(&mut self, mask: u32) {
        self.mask = mask;
        self.len = 0;
        self.posted = 0;
        for w in self.recs.all_waves() {
            w.post(0);
        }
        self.shown(0);
        self.last_post = None;
    }

    /// `NumShown` after the arrays were posted: sends the PVA scan table as one update.
    fn shown(&self, n: usize) {
        if let Some(r) = self.recs.scalars.get(&Output::NumShown)
            && let Err(s) = r.put_i64(n as i64)
        {
            tracing::error!(status = s, "cannot write NumShown");
        }
    }

    /// Writes each channel's role into its `DESC` when it changed.
    pub fn roles(&mut self, role: impl Fn(usize) -> String) {
        for (n, d) in self.recs.descs.iter().enumerate() {
            let r = role(n);
            if self.roles.get(n) == Some(&r) {
                continue;
            }
            let text = if r.is_empty() {
                format!("Counts of channel {n}")
            } else {
                format!("{r}: counts of channel {n}")
            };
            match d.put_string(&text) {
                Ok(()) => {
                    if self.roles.len() <= n {
                        self.roles.resize(n + 1, String::new());
                    }
                    self.roles[n] = r;
                }
                Err(s) => tracing::error!(status = s, channel = n, "cannot write DESC"),
            }
        }
    }

    /// Copies rows into the waveforms (shown at the next post).
    pub fn rows(&mut self, r: &RowBlock) {
        let first = usize::try_from(r.first).unwrap_or(usize::MAX);
        if first > self.recs.capacity {
            return;
        }
        self.recs.position.write_doubles(first, &r.position);
        self.recs.timestamp.write_doubles(first, &r.timestamp);
        self.recs.live_time.write_doubles(first, &r.live_time);
        self.recs.flags.write_bytes(first, &r.flags);
        for (w, v) in self
            .recs
            .energy
            .iter()
            .zip([&r.energy, &r.energy_start, &r.energy_centre])
        {
            w.write_doubles(first, v);
        }
        for (ch, v) in &r.counts {
            if let Some(w) = self.recs.channels.get(usize::from(*ch)) {
                w.write_doubles(first, v);
            }
        }
        self.len = (first + r.len()).min(self.recs.capacity).max(self.len);
        self.last_rows = Some(Instant::now());
    }

    /// Posts the waveforms if due (`end`: the scan ended, post now).
    pub fn post(&mut self, now: Instant, end: bool) {
        if self.len == self.posted {
            return;
        }
        let doubled = self.len >= 2 * self.posted.max(1);
        let spaced = self
            .last_post
            .is_none_or(|t| now.saturating_duration_since(t) >= self.min_interval);
        let quiet = self
            .last_rows
            .is_none_or(|t| now.saturating_duration_since(t) >= QUIET);
        if !(end || (spaced && (doubled || quiet))) {
            return;
        }
        let n = self.len;
        for w in self.recs.point_waves() {
            w.post(n);
        }
        for (ch, w) in self.recs.channels.iter().enumerate() {
            if self.mask & (1 << ch) != 0 {
                w.post(n);
            }
        }
        self.shown(n);
        self.posted = n;
        self.last_post = Some(now);
    }

    /// Writes the scalars that changed; `Status` last.
    pub fn image(&mut self, im: &Image) -> Result<(), String> {
        let old = self.last.take();
        let changed = |f: &dyn Fn(&Image) -> i64| old.as_ref().is_none_or(|o| f(o) != f(im));
        let mut errors = Vec::new();
        let mut put = |o: Output, r: Result<(), i64>| {
            if let Err(s) = r {
                errors.push(format!("{o:?}: status {s}"));
            }
        };
        let ints: [(Output, IntOf); 12] = [
            (Output::NumCaptured, |i| i.num_captured as i64),
            (Output::NumExpected, |i| i.num_expected as i64),
            (Output::LostPoints, |i| i.lost_points as i64),
            (Output::QuadErrors, |i| i.quad_errors as i64),
            (Output::PositionJumps, |i| i.position_jumps as i64),
            (Output::LinkErrors, |i| i.link_errors as i64),
            (Output::ProtocolErrors, |i| i.protocol_errors as i64),
            (Output::Resends, |i| i.resends as i64),
            (Output::MaxPoints, |i| i64::from(i.max_points)),
            (Output::ScanId, |i| i64::from(i.scan_id)),
            (Output::DeviceSession, |i| i64::from(i.device_session)),
            (Output::NumChannels, |i| i64::from(i.num_channels)),
        ];
        for (o, f) in ints {
            if changed(&f)
                && let Some(r) = self.recs.scalars.get(&o)
            {
                put(o, r.put_i64(f(im)));
            }
        }
        if old
            .as_ref()
            .is_none_or(|o| o.firmware_version != im.firmware_version)
            && let Some(r) = self.recs.scalars.get(&Output::FirmwareVersion)
        {
            put(Output::FirmwareVersion, r.put_string(&im.firmware_version));
        }
        if old.as_ref().is_none_or(|o| o.message != im.message)
            && let Some(r) = self.recs.scalars.get(&Output::StatusMessage)
        {
            put(Output::StatusMessage, r.put_chars(&im.message));
        }
        for (o, v) in [(Output::Connected, im.connected), (Output::Busy, im.busy)] {
            let was = old.as_ref().map(|x| match o {
                Output::Connected => x.connected,
                _ => x.busy,
            });
            if was != Some(v)
                && let Some(r) = self.recs.scalars.get(&o)
            {
                put(o, r.put_enum(u16::from(v)));
            }
        }
        if old.as_ref().is_none_or(|o| o.status != im.status)
            && let Some(r) = self.recs.scalars.get(&Output::Status)
        {
            put(Output::Status, r.put_enum(im.status as u16));
        }
        self.last = Some(im.clone());
        if errors.is_empty() {
            Ok(())
        } else {
            // Publish everything again next time.
            self.last = None;
            Err(errors.join(", "))
        }
    }

    /// Writes `Arm` back to 0.
    pub fn reset_arm(&self) {
        if let Err(s) = self.recs.arm.put_enum(0) {
            tracing::error!(status = s, "cannot reset Arm");
        }
    }

    /// Writes `Abort` back to 0.
    pub fn reset_abort(&self) {
        if let Err(s) = self.recs.abort.put_enum(0) {
            tracing::error!(status = s, "cannot reset Abort");
        }
    }
}
