//! The publisher stage: Channel Access puts that make the IOC show [`crate::state::Shared`].
//!
//! Changed values are written together, at most once per `min_interval` (stretched to twice
//! the last cycle's duration when big waveforms make cycles slow), so large arrays go out at a
//! steady rate rather than per batch. Waveforms are written before the scalars and Status last,
//! so a client that sees `Status = Done` reads final arrays (one CA circuit keeps order). When
//! the IOC comes back after a restart, everything is written again.

use crate::pvs::{self, out};
use crate::state::{Scalars, Shared};
use epics_ca::channel::Put;
use epics_ca::types::{EpicsEnum, EpicsString, Field};
use epics_ca::{Channel, Context, TypedChannel, ValueChannel};
use std::ffi::CString;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Makes a channel without waiting for it to connect (puts fail until it does).
pub(crate) fn channel<V: epics_ca::types::Value + ?Sized>(
    ctx: &Context,
    name: &str,
) -> anyhow::Result<ValueChannel<V>> {
    let c = CString::new(name)?;
    let ch =
        Channel::new(ctx, &c).map_err(|e| anyhow::anyhow!("creating CA channel {name}: {e:?}"))?;
    Ok(TypedChannel::new_unchecked(ch).into_value())
}

fn connected<V: epics_ca::types::Value + ?Sized>(c: &ValueChannel<V>) -> bool {
    c.field_type().is_ok()
}

struct Outputs {
    position: ValueChannel<[f64]>,
    timestamp: ValueChannel<[f64]>,
    live_time: ValueChannel<[f64]>,
    flags: ValueChannel<[u8]>,
    channels: Vec<ValueChannel<[f64]>>,
    num_captured: ValueChannel<i32>,
    num_expected: ValueChannel<i32>,
    num_channels: ValueChannel<i32>,
    max_points: ValueChannel<i32>,
    lost_points: ValueChannel<f64>,
    quad_errors: ValueChannel<f64>,
    position_jumps: ValueChannel<f64>,
    link_errors: ValueChannel<f64>,
    resends: ValueChannel<f64>,
    scan_id: ValueChannel<f64>,
    status: ValueChannel<EpicsEnum>,
    busy: ValueChannel<EpicsEnum>,
    connected: ValueChannel<EpicsEnum>,
    message: ValueChannel<[u8]>,
    firmware: ValueChannel<EpicsString>,
    arm: ValueChannel<EpicsEnum>,
    abort: ValueChannel<EpicsEnum>,
}

/// What was last written successfully.
#[derive(Default)]
struct Cache {
    scalars: Option<Scalars>,
    /// (scan generation, length) per waveform: position, timestamp, live time, flags, CH0…
    arrays: Vec<Option<(u64, usize)>>,
    arm_resets: u64,
    abort_resets: u64,
}

/// Publisher settings.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// PV prefix.
    pub prefix: String,
    /// Shortest time between two publish cycles.
    pub min_interval: Duration,
}

/// Runs the publisher until `shared.shutdown` is set (after a final cycle).
pub async fn run(
    ctx: Context,
    cfg: PublishConfig,
    shared: Arc<Mutex<Shared>>,
    notify: Arc<Notify>,
) -> anyhow::Result<()> {
    let p = &cfg.prefix;
    let name = |s: &str| format!("{p}{s}");
    let mut o = Outputs {
        position: channel(&ctx, &name(out::POSITION))?,
        timestamp: channel(&ctx, &name(out::TIMESTAMP))?,
        live_time: channel(&ctx, &name(out::LIVE_TIME))?,
        flags: channel(&ctx, &name(out::FLAGS))?,
        channels: Vec::new(),
        num_captured: channel(&ctx, &name(out::NUM_CAPTURED))?,
        num_expected: channel(&ctx, &name(out::NUM_EXPECTED))?,
        num_channels: channel(&ctx, &name(out::NUM_CHANNELS))?,
        max_points: channel(&ctx, &name(out::MAX_POINTS))?,
        lost_points: channel(&ctx, &name(out::LOST_POINTS))?,
        quad_errors: channel(&ctx, &name(out::QUAD_ERRORS))?,
        position_jumps: channel(&ctx, &name(out::POSITION_JUMPS))?,
        link_errors: channel(&ctx, &name(out::LINK_ERRORS))?,
        resends: channel(&ctx, &name(out::RESENDS))?,
        scan_id: channel(&ctx, &name(out::SCAN_ID))?,
        status: channel(&ctx, &name(out::STATUS))?,
        busy: channel(&ctx, &name(out::BUSY))?,
        connected: channel(&ctx, &name(out::CONNECTED))?,
        message: channel(&ctx, &name(out::STATUS_MESSAGE))?,
        firmware: channel(&ctx, &name(out::FIRMWARE_VERSION))?,
        arm: channel(&ctx, &name(pvs::ctl::ARM))?,
        abort: channel(&ctx, &name(pvs::ctl::ABORT))?,
    };
    let mut cache = Cache::default();
    let mut was_up = false;
    let mut interval = cfg.min_interval;
    let mut last_cycle = Instant::now() - interval;
    loop {
        // Wake on news, or every 200 ms to notice IOC restarts and retry failed puts.
        let _ = tokio::time::timeout(Duration::from_millis(200), notify.notified()).await;
        let wait = interval.saturating_sub(last_cycle.elapsed());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let shutting_down = lock(&shared).shutdown;
        let up = connected(&o.status);
        if up && !was_up {
            tracing::info!("IOC connected; publishing everything");
            cache = Cache::default();
            if connected(&o.position)
                && let Ok(n) = o.position.element_count()
            {
                lock(&shared).ioc_capacity = Some(n);
            }
        } else if !up && was_up {
            tracing::warn!("IOC disconnected; will republish when it returns");
        }
        was_up = up;
        // Channel waveforms for every channel the device has.
        let want = usize::try_from(lock(&shared).scalars.num_channels.max(0)).unwrap_or(0);
        while o.channels.len() < want.min(32) {
            let n = o.channels.len();
            o.channels.push(channel(&ctx, &pvs::channel(p, n))?);
        }
        if up {
            let t0 = Instant::now();
            cycle(&mut o, &mut cache, &shared).await;
            let took = t0.elapsed();
            interval = cfg.min_interval.max(took * 2);
            last_cycle = Instant::now();
        }
        if shutting_down {
            return Ok(());
        }
    }
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    // A panic elsewhere must not stop publishing: the data is still consistent enough to show.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

fn message_bytes(s: &str) -> Vec<u8> {
    let mut b: Vec<u8> = s.bytes().filter(|&c| c != 0).take(255).collect();
    b.push(0);
    b
}

fn en(b: bool) -> EpicsEnum {
    EpicsEnum(u16::from(b))
}

/// Starts a waveform put (NORD becomes `data.len()`).
fn put_wave<'a, T: Field>(ch: &'a mut ValueChannel<[T]>, data: &[T]) -> Option<Put<'a>> {
    match ch.put_ref(data) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::debug!(error = ?e, len = data.len(), "waveform put failed");
            None
        }
    }
}

/// Queues a scalar put if the value changed.
fn put_scalar<'a, T: Field + PartialEq>(
    puts: &mut Vec<Put<'a>>,
    ch: &'a mut ValueChannel<T>,
    old: Option<T>,
    new: T,
) -> bool {
    if old == Some(new) {
        return true;
    }
    match ch.put(new) {
        Ok(p) => {
            puts.push(p);
            true
        }
        Err(e) => {
            tracing::debug!(error = ?e, "scalar put failed");
            false
        }
    }
}

async fn cycle(o: &mut Outputs, cache: &mut Cache, shared: &Mutex<Shared>) {
    let mut puts: Vec<Put<'_>> = Vec::new();
    let mut ok = true;
    let (snapshot, arrays, arm_resets, abort_resets) = {
        let s = lock(shared);
        let generation = s.scan_generation;
        let n = s.scan.len();
        let n_arrays = 4 + o.channels.len();
        cache.arrays.resize(n_arrays, None);
        let mut arrays = vec![None; n_arrays];
        let stale = |i: usize| cache.arrays[i] != Some((generation, n));
        let Outputs {
            position,
            timestamp,
            live_time,
            flags,
            channels,
            ..
        } = o;
        let fixed: [(&mut ValueChannel<[f64]>, &[f64]); 3] = [
            (position, &s.scan.position),
            (timestamp, &s.scan.timestamp),
            (live_time, &s.scan.live_time),
        ];
        for (i, (ch, data)) in fixed.into_iter().enumerate() {
            if stale(i)
                && let Some(p) = put_wave(ch, &data[..n.min(data.len())])
            {
                arrays[i] = Some((generation, n));
                puts.push(p);
            }
        }
        if stale(3)
            && let Some(p) = put_wave(flags, &s.scan.flags[..n.min(s.scan.flags.len())])
        {
            arrays[3] = Some((generation, n));
            puts.push(p);
        }
        for (k, ch) in channels.iter_mut().enumerate() {
            if !connected(ch) {
                continue;
            }
            // Disabled channels show an empty waveform for this scan.
            let data = s.scan.channels.get(k).map(|v| v.as_slice()).unwrap_or(&[]);
            let len = data.len().min(n);
            if cache.arrays[4 + k] != Some((generation, len))
                && let Some(p) = put_wave(ch, &data[..len])
            {
                arrays[4 + k] = Some((generation, len));
                puts.push(p);
            }
        }
        (s.scalars.clone(), arrays, s.arm_resets, s.abort_resets)
    };
    let old = cache.scalars.clone();
    let o_ = old.as_ref();
    let Outputs {
        num_captured,
        num_expected,
        num_channels,
        max_points,
        lost_points,
        quad_errors,
        position_jumps,
        link_errors,
        resends,
        scan_id,
        status,
        busy,
        connected: conn,
        message,
        firmware,
        arm,
        abort,
        ..
    } = o;
    let s = &snapshot;
    ok &= put_scalar(
        &mut puts,
        num_captured,
        o_.map(|v| v.num_captured),
        s.num_captured,
    );
    ok &= put_scalar(
        &mut puts,
        num_expected,
        o_.map(|v| v.num_expected),
        s.num_expected,
    );
    ok &= put_scalar(
        &mut puts,
        num_channels,
        o_.map(|v| v.num_channels),
        s.num_channels,
    );
    ok &= put_scalar(
        &mut puts,
        max_points,
        o_.map(|v| v.max_points),
        s.max_points,
    );
    ok &= put_scalar(
        &mut puts,
        lost_points,
        o_.map(|v| v.lost_points),
        s.lost_points,
    );
    ok &= put_scalar(
        &mut puts,
        quad_errors,
        o_.map(|v| v.quad_errors),
        s.quad_errors,
    );
    ok &= put_scalar(
        &mut puts,
        position_jumps,
        o_.map(|v| v.position_jumps),
        s.position_jumps,
    );
    ok &= put_scalar(
        &mut puts,
        link_errors,
        o_.map(|v| v.link_errors),
        s.link_errors,
    );
    ok &= put_scalar(&mut puts, resends, o_.map(|v| v.resends), s.resends);
    ok &= put_scalar(&mut puts, scan_id, o_.map(|v| v.scan_id), s.scan_id);
    ok &= put_scalar(
        &mut puts,
        conn,
        o_.map(|v| en(v.connected)),
        en(s.connected),
    );
    if o_.map(|v| &v.firmware_version) != Some(&s.firmware_version) {
        let text = s.firmware_version.chars().take(39).collect::<String>();
        match CString::new(text)
            .ok()
            .and_then(|c| EpicsString::from_cstr(&c))
            .map(|v| firmware.put(v))
        {
            Some(Ok(p)) => puts.push(p),
            _ => ok = false,
        }
    }
    if o_.map(|v| &v.message) != Some(&s.message) {
        match message.put_ref(&message_bytes(&s.message)) {
            Ok(p) => puts.push(p),
            Err(_) => ok = false,
        }
    }
    let arm_reset = arm_resets > cache.arm_resets;
    if arm_reset {
        match arm.put(EpicsEnum(0)) {
            Ok(p) => puts.push(p),
            Err(_) => ok = false,
        }
    }
    let abort_reset = abort_resets > cache.abort_resets;
    if abort_reset {
        match abort.put(EpicsEnum(0)) {
            Ok(p) => puts.push(p),
            Err(_) => ok = false,
        }
    }
    ok &= put_scalar(&mut puts, busy, o_.map(|v| en(v.busy)), en(s.busy));
    ok &= put_scalar(
        &mut puts,
        status,
        o_.map(|v| EpicsEnum(v.status as u16)),
        EpicsEnum(s.status as u16),
    );
    let n_puts = puts.len();
    let results = tokio::time::timeout(Duration::from_secs(5), async move {
        let mut errors = 0usize;
        for p in puts {
            if let Err(e) = p.await {
                tracing::debug!(error = ?e, "put completion failed");
                errors += 1;
            }
        }
        errors
    })
    .await;
    let all_done = matches!(results, Ok(0));
    if !all_done {
        tracing::warn!(n_puts, ?results, "some CA puts failed; retrying next cycle");
    }
    if all_done && ok {
        cache.scalars = Some(snapshot);
        for (c, a) in cache.arrays.iter_mut().zip(arrays) {
            if a.is_some() {
                *c = a;
            }
        }
        cache.arm_resets = arm_resets;
        cache.abort_resets = abort_resets;
    } else {
        *cache = Cache {
            arm_resets: cache.arm_resets,
            abort_resets: cache.abort_resets,
            ..Cache::default()
        };
        if all_done {
            cache.arm_resets = arm_resets;
            cache.abort_resets = abort_resets;
        }
    }
}
