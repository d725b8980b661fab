//! Shows the core's outputs in the IOC's records, in-process. Scalars go through `dbPutField`
//! when they change. Per-point rows are copied into the records' own buffers as they arrive
//! (O(new points)) and shown in three views, each with its own schedule so that what clients
//! receive stays proportional to the data:
//!
//! * **tail** (`Tail:*`, `CH<n>:Tail`): the points that arrived since the last tick, with their
//!   indices, every tick — every point reaches a monitor within a tick, whatever the scan's size;
//! * **preview** (`Preview:*`, `CH<n>:Preview`): every k-th point of the scan (k from its
//!   expected length, so the preview fits its records), at most every [`PREVIEW_EVERY`] — for
//!   screens that plot the whole scan live;
//! * **full** arrays (`Position`, `CH<n>`, …): posted whenever they have doubled since they were
//!   last posted (a client monitoring them receives at most twice the final arrays, plus one
//!   post per pause in the data), when the points stop coming for a moment, and when the scan
//!   ends.
//!
//! Waveforms are posted before the scalars, and `Status` last, so a client that sees
//! `Status = Done` reads final arrays.

use super::records::{Records, View};
use flyscan_host::core::{Image, RowBlock};
use flyscan_host::pv_table::Output;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How an integer record's value comes from the image.
type IntOf = fn(&Image) -> i64;

/// No new rows for this long: the full arrays are shown as they are.
const QUIET: Duration = Duration::from_millis(250);
/// Shortest time between two posts of the preview.
pub const PREVIEW_EVERY: Duration = Duration::from_millis(200);

/// Publishing state.
#[derive(Debug)]
pub struct Publisher {
    recs: Records,
    last: Option<Image>,
    /// Channels of the current scan.
    mask: u32,
    /// Roles last written into the channels' DESC.
    roles: Vec<String>,
    /// Rows held in the full arrays.
    len: usize,
    /// Rows shown at the last post of the full arrays.
    posted: usize,
    last_post: Option<Instant>,
    /// When rows last arrived.
    last_rows: Option<Instant>,
    /// Rows not yet shown in the tail.
    pending: VecDeque<RowBlock>,
    /// The preview holds every `every`-th point.
    every: u64,
    preview_len: usize,
    preview_posted: usize,
    last_preview: Option<Instant>,
    /// Shortest time between two posts of the full arrays.
    pub min_interval: Duration,
}

impl Publisher {
    /// Publishes into `recs` (and writes the scan table's column names).
    pub fn new(recs: Records) -> Self {
        if let Some(w) = &recs.labels
            && let Err(s) = w.put_strings(&recs.scan_labels())
        {
            tracing::error!(status = s, "cannot write ScanLabels");
        }
        Self {
            recs,
            last: None,
            mask: 0,
            roles: Vec::new(),
            len: 0,
            posted: 0,
            last_post: None,
            last_rows: None,
            pending: VecDeque::new(),
            every: 1,
            preview_len: 0,
            preview_posted: 0,
            last_preview: None,
            min_interval: Duration::from_millis(50),
        }
    }

    /// A new scan of `expected` points on the channels of `mask`: every view empty.
    pub fn scan_started(&mut self, mask: u32, expected: u64) {
        self.mask = mask;
        self.len = 0;
        self.posted = 0;
        self.last_post = None;
        self.pending.clear();
        let room = self.recs.preview.capacity().max(1) as u64;
        self.every = expected.div_ceil(room).max(1);
        self.preview_len = 0;
        self.preview_posted = 0;
        self.last_preview = None;
        for v in [&self.recs.full, &self.recs.tail, &self.recs.preview] {
            v.clear();
        }
        self.shown(0);
    }

    /// Copies rows into the full arrays and the preview; queues them for the tail.
    pub fn rows(&mut self, r: &RowBlock) {
        let first = usize::try_from(r.first).unwrap_or(usize::MAX);
        if first >= self.recs.capacity {
            return;
        }
        let n = r.len().min(self.recs.capacity - first);
        self.recs.full.write(first, r, 0, n);
        self.len = (first + n).max(self.len);
        let p = r.every(self.every);
        if !p.is_empty() {
            let at = usize::try_from(p.first).unwrap_or(usize::MAX);
            let room = self.recs.preview.capacity();
            if at < room {
                let k = p.len().min(room - at);
                self.recs.preview.write(at, &p, 0, k);
                self.preview_len = (at + k).max(self.preview_len);
            }
        }
        self.pending.push_back(r.clone());
        self.last_rows = Some(Instant::now());
    }

    /// Shows what is due: the tail always, the preview and the full arrays on their schedules
    /// (`end`: the scan ended, show everything now).
    pub fn post(&mut self, now: Instant, end: bool) {
        self.post_tail();
        let spaced = |t: Option<Instant>, d: Duration| {
            t.is_none_or(|t| now.saturating_duration_since(t) >= d)
        };
        if self.preview_len > self.preview_posted
            && (end || spaced(self.last_preview, PREVIEW_EVERY))
        {
            self.recs.preview.post(self.preview_len, self.mask);
            self.preview_posted = self.preview_len;
            self.last_preview = Some(now);
        }
        if self.len == self.posted {
            return;
        }
        let doubled = self.len >= 2 * self.posted.max(1);
        let quiet = spaced(self.last_rows, QUIET);
        if !(end || (spaced(self.last_post, self.min_interval) && (doubled || quiet))) {
            return;
        }
        self.recs.full.post(self.len, self.mask);
        self.posted = self.len;
        self.last_post = Some(now);
        self.shown(self.len);
    }

    /// The rows queued since the last tick, in as few tail posts as its records allow.
    fn post_tail(&mut self) {
        let room = self.recs.tail.capacity();
        if room == 0 {
            self.pending.clear();
            return;
        }
        let view: &View = &self.recs.tail;
        let mut filled = 0;
        while let Some(r) = self.pending.pop_front() {
            let mut skip = 0;
            while skip < r.len() {
                let n = (r.len() - skip).min(room - filled);
                view.write(filled, &r, skip, n);
                filled += n;
                skip += n;
                if filled == room {
                    view.post(filled, self.mask);
                    filled = 0;
                }
            }
        }
        if filled > 0 {
            view.post(filled, self.mask);
        }
    }

    /// `NumShown` after the full arrays were posted: sends the PVA scan table as one update.
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
