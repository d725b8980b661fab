//! Watches the control PVs (CA monitors) and forwards every update to the driver core.
//!
//! Each PV has its own task: connect (waiting as long as it takes), subscribe, forward. Channel
//! Access re-establishes monitors after an IOC restart and sends the current value again.

use crate::pvs::ctl;
use epics_ca::types::{EpicsEnum, Field};
use epics_ca::{Channel, Context, TypedChannel};
use futures::StreamExt;
use std::ffi::CString;
use tokio::sync::mpsc;

/// One control PV update.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// `Mode` (0 = Start-Step-Count, 1 = List).
    Mode(u16),
    /// `Start`.
    Start(f64),
    /// `Step`.
    Step(f64),
    /// `NPoints`.
    NPoints(i32),
    /// `Positions`.
    Positions(Vec<f64>),
    /// `Direction` (protocol order).
    Direction(u16),
    /// `Passes`.
    Passes(i32),
    /// `ChannelMask`.
    ChannelMask(i32),
    /// `Encoding` (0 = Compact, 1 = Raw).
    Encoding(u16),
    /// A write to `Arm` (via `ArmTrig`), with the value written; `initial` marks the value
    /// delivered when the monitor (re)connects, which is not a new request.
    Arm {
        /// Value written.
        value: f64,
        /// First update of this monitor.
        initial: bool,
    },
    /// A write to `Abort` (via `AbortTrig`).
    Abort {
        /// Value written.
        value: f64,
        /// First update of this monitor.
        initial: bool,
    },
}

fn make<V: epics_ca::types::Value + ?Sized>(
    ctx: &Context,
    name: &str,
) -> anyhow::Result<TypedChannel<V>> {
    let c = CString::new(name)?;
    let ch =
        Channel::new(ctx, &c).map_err(|e| anyhow::anyhow!("creating CA channel {name}: {e:?}"))?;
    Ok(TypedChannel::new_unchecked(ch))
}

async fn watch_scalar<T: Field + Copy>(
    mut ch: TypedChannel<T>,
    map: impl Fn(T, bool) -> Control + Send + 'static,
    tx: mpsc::Sender<Control>,
) {
    ch.connected().await;
    let mut ch = ch.into_value();
    let sub = ch.subscribe();
    futures::pin_mut!(sub);
    let mut first = true;
    while let Some(v) = sub.next().await {
        match v {
            Ok(v) => {
                if tx.send(map(v, first)).await.is_err() {
                    return;
                }
                first = false;
            }
            Err(e) => tracing::debug!(error = ?e, "control monitor error"),
        }
    }
}

async fn watch_positions(mut ch: TypedChannel<[f64]>, tx: mpsc::Sender<Control>) {
    ch.connected().await;
    let mut ch = ch.into_value();
    let sub = ch.subscribe_vec();
    futures::pin_mut!(sub);
    while let Some(v) = sub.next().await {
        match v {
            Ok(v) => {
                if tx.send(Control::Positions(v)).await.is_err() {
                    return;
                }
            }
            Err(e) => tracing::debug!(error = ?e, "positions monitor error"),
        }
    }
}

/// Spawns one monitor task per control PV; updates go to `tx`.
pub fn spawn_watchers(
    ctx: &Context,
    prefix: &str,
    tx: mpsc::Sender<Control>,
) -> anyhow::Result<()> {
    let n = |s: &str| format!("{prefix}{s}");
    let e = |ctx: &Context, s: &str| make::<EpicsEnum>(ctx, &n(s));
    tokio::spawn(watch_scalar(
        e(ctx, ctl::MODE)?,
        |v, _| Control::Mode(v.0),
        tx.clone(),
    ));
    tokio::spawn(watch_scalar(
        make::<f64>(ctx, &n(ctl::START))?,
        |v, _| Control::Start(v),
        tx.clone(),
    ));
    tokio::spawn(watch_scalar(
        make::<f64>(ctx, &n(ctl::STEP))?,
        |v, _| Control::Step(v),
        tx.clone(),
    ));
    tokio::spawn(watch_scalar(
        make::<i32>(ctx, &n(ctl::NPOINTS))?,
        |v, _| Control::NPoints(v),
        tx.clone(),
    ));
    tokio::spawn(watch_positions(
        make::<[f64]>(ctx, &n(ctl::POSITIONS))?,
        tx.clone(),
    ));
    tokio::spawn(watch_scalar(
        e(ctx, ctl::DIRECTION)?,
        |v, _| Control::Direction(v.0),
        tx.clone(),
    ));
    tokio::spawn(watch_scalar(
        make::<i32>(ctx, &n(ctl::PASSES))?,
        |v, _| Control::Passes(v),
        tx.clone(),
    ));
    tokio::spawn(watch_scalar(
        make::<i32>(ctx, &n(ctl::CHANNEL_MASK))?,
        |v, _| Control::ChannelMask(v),
        tx.clone(),
    ));
    tokio::spawn(watch_scalar(
        e(ctx, ctl::ENCODING)?,
        |v, _| Control::Encoding(v.0),
        tx.clone(),
    ));
    tokio::spawn(watch_scalar(
        make::<f64>(ctx, &n(ctl::ARM_TRIG))?,
        |value, initial| Control::Arm { value, initial },
        tx.clone(),
    ));
    tokio::spawn(watch_scalar(
        make::<f64>(ctx, &n(ctl::ABORT_TRIG))?,
        |value, initial| Control::Abort { value, initial },
        tx,
    ));
    Ok(())
}
