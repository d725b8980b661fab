//! The flyscan device support, in safe Rust: which records are controls, what a write to one
//! means for the core ([`ControlWrite`]), and the values restored into them at start.

use super::ffi::{DeviceSupport, Value};
use flyscan_host::core::{ControlWrite, Controls};
use flyscan_host::pv_table::{self, Control, Role};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedSender;

/// What the support knows once `flyscanConfig` ran.
#[derive(Debug, Default)]
pub struct SupportState {
    /// PV prefix.
    pub prefix: Option<String>,
    /// Values to restore (from the settings file).
    pub restore: Option<Controls>,
}

/// The device support handed to the IOC.
pub struct Support {
    tx: UnboundedSender<ControlWrite>,
    state: Arc<Mutex<SupportState>>,
}

impl Support {
    /// Support sending writes to `tx`, configured through `state`.
    pub fn new(tx: UnboundedSender<ControlWrite>, state: Arc<Mutex<SupportState>>) -> Self {
        Self { tx, state }
    }

    fn control_of(&self, name: &str) -> Option<(Control, Option<usize>)> {
        let st = self.state.lock().ok()?;
        let suffix = name.strip_prefix(st.prefix.as_deref()?)?;
        let (pv, n) = pv_table::lookup(suffix)?;
        match pv.role {
            Role::Control(c) => Some((c, n)),
            Role::Output(_) => None,
        }
    }
}

/// A write to control `c` (of channel `n`, for a per-channel control) as the core's input.
pub fn to_write(c: Control, n: Option<usize>, v: Value) -> Option<ControlWrite> {
    let int = |v: &Value| match v {
        Value::I64(x) => Some(*x),
        Value::F64(x) if x.is_finite() => Some(*x as i64),
        _ => None,
    };
    let index = |v: &Value| int(v).map(|x| u16::try_from(x).unwrap_or(u16::MAX));
    let float = |v: &Value| match v {
        Value::F64(x) => Some(*x),
        Value::I64(x) => Some(*x as f64),
        _ => None,
    };
    let text = |v: Value| match v {
        Value::Str(s) => Some(s),
        _ => None,
    };
    Some(match c {
        Control::Mode => ControlWrite::Mode(index(&v)?),
        Control::Direction => ControlWrite::Direction(index(&v)?),
        Control::Encoding => ControlWrite::Encoding(index(&v)?),
        Control::Start => ControlWrite::Start(float(&v)?),
        Control::Step => ControlWrite::Step(float(&v)?),
        Control::Period => ControlWrite::Period(float(&v)?),
        Control::GateLow => ControlWrite::GateLow(float(&v)?),
        Control::GateHigh => ControlWrite::GateHigh(float(&v)?),
        Control::DSpacing => ControlWrite::DSpacing(float(&v)?),
        Control::CountsPerDegree => ControlWrite::CountsPerDegree(float(&v)?),
        Control::AngleOffset => ControlWrite::AngleOffset(float(&v)?),
        Control::Crystal => ControlWrite::Crystal(text(v)?),
        Control::Role => ControlWrite::Role(u8::try_from(n?).ok()?, text(v)?),
        Control::NPoints => ControlWrite::NPoints(int(&v)?),
        Control::Passes => ControlWrite::Passes(int(&v)?),
        Control::ChannelMask => ControlWrite::ChannelMask(int(&v)?),
        Control::Positions => match v {
            Value::Array(a) => ControlWrite::Positions(a),
            _ => return None,
        },
        Control::Arm => ControlWrite::Arm(int(&v)? != 0),
        Control::Abort => ControlWrite::Abort(int(&v)? != 0),
    })
}

/// The restored value of control `c` (of channel `n`, for a per-channel control).
pub fn restored(c: Control, n: Option<usize>, s: &Controls) -> Option<Value> {
    Some(match c {
        Control::Mode => Value::I64(i64::from(s.mode)),
        Control::Start => Value::F64(s.start),
        Control::Step => Value::F64(s.step),
        Control::NPoints => Value::I64(s.npoints),
        Control::Period => Value::F64(s.period),
        Control::GateLow => Value::F64(s.gate_low),
        Control::GateHigh => Value::F64(s.gate_high),
        Control::Positions => Value::Array(s.positions.clone()),
        Control::Direction => Value::I64(i64::from(s.direction)),
        Control::Passes => Value::I64(s.passes),
        Control::ChannelMask => Value::I64(s.channel_mask),
        Control::Encoding => Value::I64(i64::from(s.encoding)),
        Control::DSpacing => Value::F64(s.calibration.d_spacing),
        Control::CountsPerDegree => Value::F64(s.calibration.counts_per_degree),
        Control::AngleOffset => Value::F64(s.calibration.angle_offset),
        Control::Crystal => Value::Str(s.crystal.clone()),
        Control::Role => Value::Str(s.role(n?).to_owned()),
        Control::Arm | Control::Abort => return None,
    })
}

impl DeviceSupport for Support {
    fn init_record(&self, name: &str) -> Option<Value> {
        let (c, n) = self.control_of(name)?;
        let st = self.state.lock().ok()?;
        restored(c, n, st.restore.as_ref()?)
    }

    fn is_control(&self, name: &str) -> bool {
        self.control_of(name).is_some()
    }

    fn written(&self, name: &str, value: Value) {
        let Some((c, n)) = self.control_of(name) else {
            return;
        };
        match to_write(c, n, value) {
            // The core's thread may be gone at shutdown: nothing left to tell.
            Some(w) => {
                let _ = self.tx.send(w);
            }
            None => tracing::warn!(record = name, "value of an unexpected type ignored"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_round_trips_through_its_record_value() {
        let s = Controls {
            calibration: flyscan_host::core::Calibration {
                d_spacing: 1.6375,
                counts_per_degree: -5000.0,
                angle_offset: 12.0,
            },
            crystal: "Si(311)".into(),
            roles: vec!["I0".into(), "It".into(), String::new(), "If".into()],
            mode: 1,
            start: -5.0,
            step: 3.0,
            npoints: 7,
            period: 0.0025,
            gate_low: -100.0,
            gate_high: 900.0,
            positions: vec![1.0, 2.0],
            direction: 3,
            passes: 2,
            channel_mask: 4_294_967_295,
            encoding: 1,
        };
        let mut back = Controls::default();
        for p in pv_table::PVS {
            let Role::Control(c) = p.role else { continue };
            let channels: Vec<Option<usize>> = if p.per_channel() {
                (0..4).map(Some).collect()
            } else {
                vec![None]
            };
            for n in channels {
                if let Some(v) = restored(c, n, &s) {
                    let w = to_write(c, n, v).expect("converts");
                    assert!(back.apply(&w), "{c:?}");
                }
            }
        }
        assert_eq!(back, s);
        assert_eq!(
            to_write(Control::Arm, None, Value::I64(1)),
            Some(ControlWrite::Arm(true))
        );
    }
}
