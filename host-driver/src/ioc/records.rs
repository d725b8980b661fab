//! The driver's records, found by name from the PV table: scalar outputs, the per-point
//! waveforms of the three views of a scan (the full arrays, the tail of the newest points, the
//! decimated preview), the control records the driver writes back (Arm, Abort) and the
//! channels' descriptions. A record the loaded databases lack is named at start.

use super::ffi::{ArrayRecord, Record};
use flyscan_host::core::RowBlock;
use flyscan_host::pv_table::{Control, Output, PVS, Role};
use std::collections::HashMap;

/// A per-point waveform of the driver.
#[derive(Debug, Clone, Copy)]
pub struct Wave(ArrayRecord);

impl Wave {
    fn find(name: &str) -> Option<Self> {
        ArrayRecord::find(name).map(Self)
    }

    /// Elements it holds (NELM).
    pub fn capacity(&self) -> usize {
        self.0.val().capacity()
    }

    /// Copies `data` into its buffer from element `first` (what does not fit is left out).
    pub fn write(&self, first: usize, data: Column<'_>) {
        self.0.with_lock(|mut l| match data {
            Column::F64(d) => {
                if let Some(buf) = l.doubles() {
                    copy_into(buf, first, d);
                }
            }
            Column::U8(d) => {
                if let Some(buf) = l.bytes() {
                    copy_into(buf, first, d);
                }
            }
        });
    }

    /// Processes it with `len` elements valid (time stamp, monitors).
    pub fn post(&self, len: usize) {
        self.0.with_lock(|mut l| l.process(len));
    }

    /// Writes strings (a STRING waveform).
    pub fn put_strings(&self, items: &[String]) -> Result<(), i64> {
        self.0.val().put_strings(items)
    }
}

fn copy_into<T: Copy>(buf: &mut [T], first: usize, data: &[T]) {
    let end = (first + data.len()).min(buf.len());
    if first < end {
        buf[first..end].copy_from_slice(&data[..end - first]);
    }
}

/// One column of rows.
#[derive(Debug, Clone, Copy)]
pub enum Column<'a> {
    /// Doubles.
    F64(&'a [f64]),
    /// Bytes (flags).
    U8(&'a [u8]),
}

/// The per-point quantities, as the views' columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quantity {
    /// Index of the point in the scan.
    Index,
    /// Encoder position.
    Position,
    /// Device time.
    Timestamp,
    /// Gate time.
    LiveTime,
    /// Flag bits.
    Flags,
    /// Energy at the bin end.
    Energy,
    /// Energy at the bin start.
    EnergyStart,
    /// Energy at the bin centre.
    EnergyCentre,
}

impl Quantity {
    /// This quantity's column of `r` (`Index` has none: it is made by the view).
    pub fn of(self, r: &RowBlock) -> Option<Column<'_>> {
        Some(match self {
            Self::Index => return None,
            Self::Position => Column::F64(&r.position),
            Self::Timestamp => Column::F64(&r.timestamp),
            Self::LiveTime => Column::F64(&r.live_time),
            Self::Flags => Column::U8(&r.flags),
            Self::Energy => Column::F64(&r.energy),
            Self::EnergyStart => Column::F64(&r.energy_start),
            Self::EnergyCentre => Column::F64(&r.energy_centre),
        })
    }
}

/// The waveforms of one view of the scan.
#[derive(Debug)]
pub struct View {
    /// Per-point columns (in posting order).
    pub columns: Vec<(Quantity, Wave)>,
    /// Counts, by channel.
    pub channels: Vec<Wave>,
}

impl View {
    /// Elements each of its waveforms holds (the smallest NELM).
    pub fn capacity(&self) -> usize {
        self.columns
            .iter()
            .map(|(_, w)| w)
            .chain(&self.channels)
            .map(Wave::capacity)
            .min()
            .unwrap_or(0)
    }

    /// Copies `r`'s rows (from row `skip`, `n` of them) to element `at` of every waveform.
    pub fn write(&self, at: usize, r: &RowBlock, skip: usize, n: usize) {
        for (q, w) in &self.columns {
            match q.of(r) {
                Some(Column::F64(d)) => w.write(at, Column::F64(&d[skip..skip + n])),
                Some(Column::U8(d)) => w.write(at, Column::U8(&d[skip..skip + n])),
                None => {
                    let idx: Vec<f64> = (0..n)
                        .map(|k| (r.first + (skip + k) as u64) as f64)
                        .collect();
                    w.write(at, Column::F64(&idx));
                }
            }
        }
        for (ch, v) in &r.counts {
            if let Some(w) = self.channels.get(usize::from(*ch)) {
                w.write(at, Column::F64(&v[skip..skip + n]));
            }
        }
    }

    /// Processes every waveform (channels only where `mask` has them) with `len` elements,
    /// `Index` last (it triggers the view's PV Access group).
    pub fn post(&self, len: usize, mask: u32) {
        let (index, rest): (Vec<_>, Vec<_>) = self
            .columns
            .iter()
            .partition(|(q, _)| *q == Quantity::Index);
        for (_, w) in rest {
            w.post(len);
        }
        for (ch, w) in self.channels.iter().enumerate() {
            if mask & (1 << ch) != 0 {
                w.post(len);
            }
        }
        for (_, w) in index {
            w.post(len);
        }
    }

    /// Empties every waveform.
    pub fn clear(&self) {
        for (_, w) in &self.columns {
            w.post(0);
        }
        for w in &self.channels {
            w.post(0);
        }
    }
}

/// The driver's records.
#[derive(Debug)]
pub struct Records {
    /// Scalar outputs (and every other output record, by role).
    pub scalars: HashMap<Output, Record>,
    /// The full per-point arrays.
    pub full: View,
    /// The newest points, with their indices.
    pub tail: View,
    /// Every k-th point of the scan, for screens.
    pub preview: View,
    /// `Arm` and `Abort`.
    pub arm: Record,
    /// `Abort`.
    pub abort: Record,
    /// `CH<n>.DESC`, by channel.
    pub descs: Vec<Record>,
    /// The scan table's column names record.
    pub labels: Option<Wave>,
    /// Points per waveform (NELM of `Position`).
    pub capacity: usize,
    /// Elements `Positions` holds (its NELM).
    pub list_elements: usize,
}

/// Which view and column each per-point output is.
fn placement(o: Output) -> Option<(u8, Option<Quantity>)> {
    use Output as O;
    use Quantity as Q;
    Some(match o {
        O::Position => (0, Some(Q::Position)),
        O::Timestamp => (0, Some(Q::Timestamp)),
        O::LiveTime => (0, Some(Q::LiveTime)),
        O::Flags => (0, Some(Q::Flags)),
        O::Energy => (0, Some(Q::Energy)),
        O::EnergyStart => (0, Some(Q::EnergyStart)),
        O::EnergyCentre => (0, Some(Q::EnergyCentre)),
        O::Channel => (0, None),
        O::TailIndex => (1, Some(Q::Index)),
        O::TailPosition => (1, Some(Q::Position)),
        O::TailTimestamp => (1, Some(Q::Timestamp)),
        O::TailLiveTime => (1, Some(Q::LiveTime)),
        O::TailFlags => (1, Some(Q::Flags)),
        O::TailEnergy => (1, Some(Q::Energy)),
        O::TailEnergyStart => (1, Some(Q::EnergyStart)),
        O::TailEnergyCentre => (1, Some(Q::EnergyCentre)),
        O::TailChannel => (1, None),
        O::PreviewPosition => (2, Some(Q::Position)),
        O::PreviewEnergy => (2, Some(Q::Energy)),
        O::PreviewChannel => (2, None),
        _ => return None,
    })
}

impl Records {
    /// Finds every record of the PV table for prefix `p` and `channels` channels; the error
    /// lists every record the loaded databases lack.
    pub fn bind(p: &str, channels: usize) -> Result<Self, Vec<String>> {
        let mut missing = Vec::new();
        let mut scalars = HashMap::new();
        let mut controls = HashMap::new();
        let mut views: [View; 3] = std::array::from_fn(|_| View {
            columns: Vec::new(),
            channels: Vec::new(),
        });
        let mut labels = None;
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
                    Role::Output(o) => {
                        match (placement(o), wave) {
                            (Some((v, Some(q))), Some(w)) => {
                                views[usize::from(v)].columns.push((q, w))
                            }
                            (Some((v, None)), Some(w)) => views[usize::from(v)].channels.push(w),
                            _ => {}
                        }
                        if o == Output::ScanLabels {
                            labels = wave;
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
        let ctl = |c: Control| controls.get(&c).copied().ok_or(vec![format!("{p}{c:?}")]);
        let descs = (0..channels)
            .filter_map(|n| Record::find(&format!("{p}CH{n}.DESC")))
            .collect();
        let [full, tail, preview] = views;
        let capacity = full
            .columns
            .iter()
            .find(|(q, _)| *q == Quantity::Position)
            .map_or(0, |(_, w)| w.capacity());
        Ok(Self {
            scalars,
            capacity,
            full,
            tail,
            preview,
            list_elements: ctl(Control::Positions)?.capacity(),
            arm: ctl(Control::Arm)?,
            abort: ctl(Control::Abort)?,
            descs,
            labels,
        })
    }

    /// Column names of the PVA scan table (`$(P)ScanLabels`), in the order of its columns.
    pub fn scan_labels(&self) -> Vec<String> {
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
        .chain((0..self.full.channels.len()).map(|n| format!("ch{n}")))
        .collect()
    }
}
