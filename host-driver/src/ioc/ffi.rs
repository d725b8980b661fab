//! The only `unsafe` of the host driver: the C interface of the EPICS IOC libraries
//! (`libCom`, `libdbCore`, `libdbRecStd`, QSRV) that this process links, and the device support
//! tables the IOC calls back into. Everything above this module is safe Rust.
//!
//! What is used, and why it is sound:
//! * start-up calls (`dbLoadDatabase`, `registerDevices`, `iocsh`, …) run on the main thread in
//!   the order EPICS documents; strings passed are NUL-terminated `CString`s that outlive the
//!   call;
//! * device support: static tables of `extern "C"` functions; the IOC calls them with a record
//!   it has locked; they only read the record's name (the first field of every record, a
//!   NUL-terminated `char[61]`) and its fields through addresses the IOC resolved with
//!   `dbNameToAddr`, and hand values to safe code;
//! * record access from the driver thread goes through `dbPutField` (which locks), or through
//!   [`Record::with_lock`], which holds `dbScanLock` for as long as the record's array is
//!   written.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_long, c_short, c_void};
use std::sync::OnceLock;

/// `struct dbAddr` (dbAddr.h): where a field lives.
#[repr(C)]
#[derive(Clone, Copy)]
struct DbAddr {
    precord: *mut c_void,
    pfield: *mut c_void,
    pfld_des: *mut c_void,
    no_elements: c_long,
    field_type: c_short,
    field_size: c_short,
    special: c_short,
    dbr_field_type: c_short,
}

/// Field and request types (dbFldTypes.h).
pub mod dbf {
    /// `DBF_STRING`.
    pub const STRING: i16 = 0;
    /// `DBF_CHAR`.
    pub const CHAR: i16 = 1;
    /// `DBF_UCHAR`.
    pub const UCHAR: i16 = 2;
    /// `DBF_SHORT`.
    pub const SHORT: i16 = 3;
    /// `DBF_USHORT`.
    pub const USHORT: i16 = 4;
    /// `DBF_LONG`.
    pub const LONG: i16 = 5;
    /// `DBF_ULONG`.
    pub const ULONG: i16 = 6;
    /// `DBF_INT64`.
    pub const INT64: i16 = 7;
    /// `DBF_DOUBLE`.
    pub const DOUBLE: i16 = 10;
    /// `DBF_ENUM`.
    pub const ENUM: i16 = 11;
    /// `DBF_MENU`.
    pub const MENU: i16 = 12;
}

type Report = Option<unsafe extern "C" fn(c_int) -> c_long>;
type Init = Option<unsafe extern "C" fn(c_int) -> c_long>;
type RecFn = Option<unsafe extern "C" fn(*mut c_void) -> c_long>;
type IointInfo = Option<unsafe extern "C" fn(c_int, *mut c_void, *mut *mut c_void) -> c_long>;

/// A device support table (`dset` with one record-specific function, plus the `ao`'s
/// `special_linconv`).
#[repr(C)]
struct Dset {
    number: c_long,
    report: Report,
    init: Init,
    init_record: RecFn,
    get_ioint_info: IointInfo,
    io: RecFn,
    linconv: Option<unsafe extern "C" fn(*mut c_void, c_int) -> c_long>,
}

// SAFETY: the tables are immutable function pointers; the IOC only reads them.
unsafe impl Sync for Dset {}

unsafe extern "C" {
    static mut pdbbase: *mut c_void;
    static mut asCheckClientIP: c_int;
    fn iocshRegisterCommon();
    fn dbLoadDatabase(file: *const c_char, path: *const c_char, subs: *const c_char) -> c_long;
    fn registerAllRecordDeviceDrivers(pdbbase: *mut c_void) -> c_long;
    fn registerDevices(
        pbase: *mut c_void,
        n: c_int,
        names: *const *const c_char,
        dsets: *const *const Dset,
    );
    fn iocsh(path: *const c_char) -> c_int;
    fn iocshCmd(cmd: *const c_char) -> c_int;
    fn iocshRegister(def: *const IocshFuncDef, func: unsafe extern "C" fn(*const IocshArgBuf));
    fn iocshRegisterVariable(defs: *const IocshVarDef);
    fn dbNameToAddr(name: *const c_char, addr: *mut DbAddr) -> c_long;
    fn dbPutField(addr: *mut DbAddr, t: c_short, buf: *const c_void, n: c_long) -> c_long;
    fn dbScanLock(prec: *mut c_void);
    fn dbScanUnlock(prec: *mut c_void);
    fn dbProcess(prec: *mut c_void) -> c_long;
    fn initHookRegister(f: unsafe extern "C" fn(c_int)) -> c_int;
    fn epicsExit(status: c_int);
}

#[repr(C)]
struct IocshArg {
    name: *const c_char,
    ty: c_int,
}

#[repr(C)]
struct IocshFuncDef {
    name: *const c_char,
    nargs: c_int,
    args: *const *const IocshArg,
    usage: *const c_char,
}

#[repr(C)]
struct IocshVarDef {
    name: *const c_char,
    ty: c_int,
    pval: *mut c_void,
}

/// `iocshArgBuf`: one argument as the IOC shell passes it.
#[repr(C)]
#[derive(Clone, Copy)]
union IocshArgBuf {
    ival: c_int,
    dval: f64,
    sval: *mut c_char,
    vval: *mut c_void,
    aval: [usize; 2],
}

const IOCSH_ARG_INT: c_int = 0;
const IOCSH_ARG_STRING: c_int = 2;

/// A record of the IOC's database, found by name. Its address stays valid for the life of the
/// process (records are never freed while the IOC runs).
#[derive(Clone, Copy)]
pub struct Record {
    addr: DbAddr,
}

// SAFETY: a `Record` is the address of a field in the IOC's database, which lives as long as
// the process; every access from another thread locks the record (`dbPutField`, `with_lock`).
unsafe impl Send for Record {}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("name", &self.name())
            .field("elements", &self.addr.no_elements)
            .finish()
    }
}

impl Record {
    /// Finds `name` (a record, or `record.FIELD`).
    pub fn find(name: &str) -> Option<Self> {
        let c = CString::new(name).ok()?;
        let mut addr = DbAddr {
            precord: std::ptr::null_mut(),
            pfield: std::ptr::null_mut(),
            pfld_des: std::ptr::null_mut(),
            no_elements: 0,
            field_type: 0,
            field_size: 0,
            special: 0,
            dbr_field_type: 0,
        };
        // SAFETY: `c` is NUL-terminated and `addr` is a valid out-pointer; dbNameToAddr only
        // reads the static database.
        let status = unsafe { dbNameToAddr(c.as_ptr(), &mut addr) };
        (status == 0).then_some(Self { addr })
    }

    /// The record's name.
    pub fn name(&self) -> String {
        record_name(self.addr.precord)
    }

    /// Elements the field holds (NELM of an array).
    pub fn capacity(&self) -> usize {
        usize::try_from(self.addr.no_elements).unwrap_or(0)
    }

    /// The field's type (see [`dbf`]).
    pub fn field_type(&self) -> i16 {
        self.addr.field_type
    }

    /// `dbPutField` of one value of request type `dbr`: writes and processes the record.
    fn put_raw(&self, dbr: i16, data: *const c_void, n: usize) -> Result<(), i64> {
        let mut addr = self.addr;
        // SAFETY: `data` points at `n` values of type `dbr` (callers below), and dbPutField
        // copies them under the record's lock.
        let s = unsafe { dbPutField(&mut addr, dbr, data, n as c_long) };
        // c_long is 32 bits on some targets, 64 on this one.
        #[allow(clippy::useless_conversion)]
        if s == 0 { Ok(()) } else { Err(i64::from(s)) }
    }

    /// Writes a 64-bit integer.
    pub fn put_i64(&self, v: i64) -> Result<(), i64> {
        self.put_raw(dbf::INT64, (&v as *const i64).cast(), 1)
    }

    /// Writes an enum index.
    pub fn put_enum(&self, v: u16) -> Result<(), i64> {
        self.put_raw(dbf::ENUM, (&v as *const u16).cast(), 1)
    }

    /// Writes a string (at most 39 bytes, cut at a character boundary).
    pub fn put_string(&self, s: &str) -> Result<(), i64> {
        let mut buf = [0u8; 40];
        let mut n = 0;
        for ch in s.chars() {
            let w = ch.len_utf8();
            if n + w > 39 {
                break;
            }
            ch.encode_utf8(&mut buf[n..]);
            n += w;
        }
        self.put_raw(dbf::STRING, buf.as_ptr().cast(), 1)
    }

    /// Writes an array of strings (each cut to 39 bytes; at most the field's length).
    pub fn put_strings(&self, items: &[String]) -> Result<(), i64> {
        let n = items.len().min(self.capacity().max(1));
        let mut buf = vec![0u8; 40 * n.max(1)];
        for (k, s) in items.iter().take(n).enumerate() {
            let b = s.as_bytes();
            let len = b.len().min(39);
            buf[40 * k..40 * k + len].copy_from_slice(&b[..len]);
        }
        self.put_raw(dbf::STRING, buf.as_ptr().cast(), n)
    }

    /// Reads a string field (record locked by the caller).
    fn read_string(&self) -> Option<String> {
        if self.addr.field_type != dbf::STRING || self.addr.pfield.is_null() {
            return None;
        }
        // SAFETY: a DBF_STRING field is a NUL-terminated char[40] (field_size bytes); the
        // record is locked by the IOC while its device support runs.
        let bytes = unsafe {
            std::slice::from_raw_parts(
                self.addr.pfield as *const u8,
                usize::try_from(self.addr.field_size).unwrap_or(0),
            )
        };
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Some(String::from_utf8_lossy(&bytes[..end]).into_owned())
    }

    /// Writes a char array (a message; at most the field's length, NUL-terminated).
    pub fn put_chars(&self, s: &str) -> Result<(), i64> {
        let cap = self.capacity().max(1);
        let mut b: Vec<u8> = s.bytes().filter(|&c| c != 0).take(cap - 1).collect();
        b.push(0);
        self.put_raw(dbf::CHAR, b.as_ptr().cast(), b.len())
    }

    /// Reads a scalar field as f64 (record locked by the caller, e.g. in device support).
    fn read_f64(&self) -> Option<f64> {
        let p = self.addr.pfield;
        // SAFETY: pfield points at a field of the type field_type says (dbNameToAddr), and the
        // record is locked by the IOC while its device support runs.
        unsafe {
            Some(match self.addr.field_type {
                dbf::DOUBLE => *(p as *const f64),
                dbf::LONG => f64::from(*(p as *const i32)),
                dbf::ULONG => f64::from(*(p as *const u32)),
                dbf::INT64 => *(p as *const i64) as f64,
                dbf::SHORT => f64::from(*(p as *const i16)),
                dbf::USHORT | dbf::ENUM | dbf::MENU => f64::from(*(p as *const u16)),
                _ => return None,
            })
        }
    }

    /// Reads a scalar integer field (record locked by the caller).
    fn read_i64(&self) -> Option<i64> {
        let p = self.addr.pfield;
        // SAFETY: as in read_f64.
        unsafe {
            Some(match self.addr.field_type {
                dbf::INT64 => *(p as *const i64),
                dbf::LONG => i64::from(*(p as *const i32)),
                dbf::ULONG => i64::from(*(p as *const u32)),
                dbf::SHORT => i64::from(*(p as *const i16)),
                dbf::USHORT | dbf::ENUM | dbf::MENU => i64::from(*(p as *const u16)),
                _ => return None,
            })
        }
    }

    /// Writes a scalar field in place (record locked by the caller; at initialisation).
    fn write_scalar(&self, v: &Value) {
        let p = self.addr.pfield;
        // SAFETY: as in read_f64; the value is converted to the field's own type.
        unsafe {
            match (self.addr.field_type, v) {
                (dbf::DOUBLE, Value::F64(x)) => *(p as *mut f64) = *x,
                (dbf::LONG, Value::I64(x)) => *(p as *mut i32) = *x as i32,
                (dbf::INT64, Value::I64(x)) => *(p as *mut i64) = *x,
                (dbf::STRING, Value::Str(x)) => {
                    let size = usize::try_from(self.addr.field_size).unwrap_or(0);
                    if size > 0 {
                        let b = x.as_bytes();
                        let n = b.len().min(size - 1);
                        std::ptr::copy_nonoverlapping(b.as_ptr(), p as *mut u8, n);
                        *(p as *mut u8).add(n) = 0;
                    }
                }
                (dbf::ENUM | dbf::USHORT | dbf::MENU, Value::I64(x)) => {
                    *(p as *mut u16) = *x as u16
                }
                _ => {}
            }
        }
    }
}

/// An array record (waveform): the address of its value field (element type, NELM), of its
/// buffer pointer `BPTR` and of `NORD`. The buffer is found through `BPTR` at every use (with
/// EPICS 7 the value field's address is not the buffer: the record hands it out only through
/// its array-info support).
#[derive(Clone, Copy)]
pub struct ArrayRecord {
    val: Record,
    bptr: Record,
    nord: Record,
}

// SAFETY: as for `Record`: addresses in the IOC's database, accessed under the record's lock.
unsafe impl Send for ArrayRecord {}

impl std::fmt::Debug for ArrayRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.val.fmt(f)
    }
}

impl ArrayRecord {
    /// Finds the array record `name`.
    pub fn find(name: &str) -> Option<Self> {
        let a = Self {
            val: Record::find(&format!("{name}.VAL"))?,
            bptr: Record::find(&format!("{name}.BPTR"))?,
            nord: Record::find(&format!("{name}.NORD"))?,
        };
        (a.nord.addr.field_type == dbf::ULONG && !a.bptr.addr.pfield.is_null()).then_some(a)
    }

    /// The value field (for `dbPutField`, the type and the capacity).
    pub fn val(&self) -> &Record {
        &self.val
    }

    /// Runs `f` with the record locked and its buffer at hand.
    pub fn with_lock<R>(&self, f: impl FnOnce(Locked<'_>) -> R) -> R {
        let prec = self.val.addr.precord;
        // SAFETY: prec is a record of the database; the lock is released below on every path
        // (f cannot unwind past it: it runs inside catch_unwind).
        unsafe { dbScanLock(prec) };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            f(Locked {
                rec: self,
                _not_send: std::marker::PhantomData,
            })
        }));
        // SAFETY: the lock taken above.
        unsafe { dbScanUnlock(prec) };
        match r {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        }
    }

    /// The buffer (record locked by the caller).
    fn buffer(&self) -> *mut c_void {
        // SAFETY: BPTR is the record's `void *bptr`; the record is locked by the caller.
        unsafe { *(self.bptr.addr.pfield as *const *mut c_void) }
    }

    /// NORD (record locked by the caller).
    fn nord(&self) -> usize {
        // SAFETY: NORD is the record's epicsUInt32 (checked in find); locked by the caller.
        unsafe { *(self.nord.addr.pfield as *const u32) as usize }
    }

    /// Sets NORD (record locked by the caller).
    fn set_nord(&self, n: usize) {
        let n = n.min(self.val.capacity()) as u32;
        // SAFETY: as in nord().
        unsafe { *(self.nord.addr.pfield as *mut u32) = n };
    }
}

/// A locked array record: its buffer can be read and written in place.
pub struct Locked<'a> {
    rec: &'a ArrayRecord,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Locked<'_> {
    /// The buffer as doubles (`None` unless the element type is DOUBLE).
    pub fn doubles(&mut self) -> Option<&mut [f64]> {
        let p = self.rec.buffer();
        if self.rec.val.addr.field_type != dbf::DOUBLE || p.is_null() {
            return None;
        }
        // SAFETY: bptr points at NELM doubles; the record lock is held for the life of self.
        Some(unsafe { std::slice::from_raw_parts_mut(p as *mut f64, self.rec.val.capacity()) })
    }

    /// The buffer as bytes (`None` unless the element type is CHAR or UCHAR).
    pub fn bytes(&mut self) -> Option<&mut [u8]> {
        let p = self.rec.buffer();
        if !matches!(self.rec.val.addr.field_type, dbf::UCHAR | dbf::CHAR) || p.is_null() {
            return None;
        }
        // SAFETY: as in doubles().
        Some(unsafe { std::slice::from_raw_parts_mut(p as *mut u8, self.rec.val.capacity()) })
    }

    /// NORD.
    pub fn nord(&self) -> usize {
        self.rec.nord()
    }

    /// Processes the record (timestamp, monitors) with `nord` elements valid.
    pub fn process(&mut self, nord: usize) {
        self.rec.set_nord(nord);
        // SAFETY: the record is locked (dbProcess requires it).
        unsafe { dbProcess(self.rec.val.addr.precord) };
    }
}

fn record_name(prec: *mut c_void) -> String {
    if prec.is_null() {
        return String::new();
    }
    // SAFETY: every record begins with `char name[61]`, NUL-terminated (dbCommon).
    unsafe { CStr::from_ptr(prec as *const c_char) }
        .to_string_lossy()
        .into_owned()
}

// ---- device support ----------------------------------------------------------------------

/// A value read from (or restored into) a control record.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A double (ao).
    F64(f64),
    /// An integer (longout, int64out, mbbo, bo).
    I64(i64),
    /// An array of doubles (waveform, NORD elements).
    Array(Vec<f64>),
    /// A string (stringout, at most 39 bytes).
    Str(String),
}

/// What the safe side does with the flyscan device support.
pub trait DeviceSupport: Send + Sync {
    /// A record using the support is initialised; a value returned is written into it (the
    /// restored setting) before the IOC runs.
    fn init_record(&self, name: &str) -> Option<Value>;
    /// The record is one clients write (its value goes to the driver).
    fn is_control(&self, name: &str) -> bool;
    /// A client (or the driver) wrote the record: its new value, in processing order. Also
    /// called once at initialisation with the value the record starts with.
    fn written(&self, name: &str, value: Value);
}

static SUPPORT: OnceLock<Box<dyn DeviceSupport>> = OnceLock::new();

fn support() -> Option<&'static dyn DeviceSupport> {
    SUPPORT.get().map(|b| b.as_ref())
}

/// Reads a scalar control record's VAL.
fn scalar_of(prec: *mut c_void) -> Option<(String, Record)> {
    let name = record_name(prec);
    let rec = Record::find(&format!("{name}.VAL"))?;
    Some((name, rec))
}

unsafe extern "C" fn init_scalar(prec: *mut c_void) -> c_long {
    let (Some(s), Some((name, rec))) = (support(), scalar_of(prec)) else {
        return 0;
    };
    if let Some(v) = s.init_record(&name) {
        rec.write_scalar(&v);
    }
    // The driver starts from what the record holds (restored, or the database's value).
    let v = match rec.field_type() {
        dbf::DOUBLE => rec.read_f64().map(Value::F64),
        dbf::STRING => rec.read_string().map(Value::Str),
        _ => rec.read_i64().map(Value::I64),
    };
    if let Some(v) = v {
        s.written(&name, v);
    }
    0
}

/// `ao`: 2 = do not convert RVAL.
unsafe extern "C" fn init_ao(prec: *mut c_void) -> c_long {
    // SAFETY: same contract as init_scalar (called by the IOC with the record).
    unsafe { init_scalar(prec) };
    2
}

/// `mbbo`/`bo`: 2 = do not convert RVAL to VAL at initialisation.
unsafe extern "C" fn init_enum(prec: *mut c_void) -> c_long {
    // SAFETY: as above.
    unsafe { init_scalar(prec) };
    2
}

unsafe extern "C" fn write_double(prec: *mut c_void) -> c_long {
    if let (Some(s), Some((name, rec))) = (support(), scalar_of(prec))
        && let Some(v) = rec.read_f64()
    {
        s.written(&name, Value::F64(v));
    }
    0
}

unsafe extern "C" fn write_string(prec: *mut c_void) -> c_long {
    if let (Some(s), Some((name, rec))) = (support(), scalar_of(prec))
        && let Some(v) = rec.read_string()
    {
        s.written(&name, Value::Str(v));
    }
    0
}

unsafe extern "C" fn write_integer(prec: *mut c_void) -> c_long {
    if let (Some(s), Some((name, rec))) = (support(), scalar_of(prec))
        && let Some(v) = rec.read_i64()
    {
        s.written(&name, Value::I64(v));
    }
    0
}

unsafe extern "C" fn init_waveform(prec: *mut c_void) -> c_long {
    let Some(s) = support() else { return 0 };
    let name = record_name(prec);
    if !s.is_control(&name) {
        return 0;
    }
    let Some(arr) = ArrayRecord::find(&name) else {
        return 0;
    };
    // At initialisation nothing else runs; the lock is cheap and keeps the rule simple.
    let restored = s.init_record(&name);
    let v = arr.with_lock(|mut l| {
        if let Some(Value::Array(v)) = &restored
            && let Some(buf) = l.doubles()
        {
            let n = v.len().min(buf.len());
            buf[..n].copy_from_slice(&v[..n]);
            l.rec.set_nord(n);
        }
        let n = l.nord();
        l.doubles().map(|b| b[..n.min(b.len())].to_vec())
    });
    if let Some(v) = v {
        s.written(&name, Value::Array(v));
    }
    0
}

/// `read_wf`: for a client-written waveform, hand its new contents to the driver; for a
/// driver-written one (the driver processes it after filling it), nothing to do. NORD is left
/// as it is (the put or the driver set it).
unsafe extern "C" fn read_waveform(prec: *mut c_void) -> c_long {
    let Some(s) = support() else { return 0 };
    let name = record_name(prec);
    if !s.is_control(&name) {
        return 0;
    }
    let Some(arr) = ArrayRecord::find(&name) else {
        return 0;
    };
    // The IOC holds the record's lock while read_wf runs (the lock is recursive).
    let v = arr.with_lock(|mut l| {
        let n = l.nord();
        l.doubles().map(|b| b[..n.min(b.len())].to_vec())
    });
    s.written(&name, Value::Array(v.unwrap_or_default()));
    0
}

const fn dset(n: c_long, init_record: RecFn, io: RecFn) -> Dset {
    Dset {
        number: n,
        report: None,
        init: None,
        init_record,
        get_ioint_info: None,
        io,
        linconv: None,
    }
}

static DEV_AO: Dset = dset(6, Some(init_ao), Some(write_double));
static DEV_LONGOUT: Dset = dset(5, Some(init_scalar), Some(write_integer));
static DEV_INT64OUT: Dset = dset(5, Some(init_scalar), Some(write_integer));
static DEV_MBBO: Dset = dset(5, Some(init_enum), Some(write_integer));
static DEV_BO: Dset = dset(5, Some(init_enum), Some(write_integer));
static DEV_WAVEFORM: Dset = dset(5, Some(init_waveform), Some(read_waveform));
static DEV_STRINGOUT: Dset = dset(5, Some(init_scalar), Some(write_string));

/// The names the support is declared under in `flyscan.dbd`.
pub const DEVICE_SUPPORT_DBD: &str = "\
device(ao, INST_IO, devFlyscanAo, \"flyscan\")
device(longout, INST_IO, devFlyscanLongout, \"flyscan\")
device(int64out, INST_IO, devFlyscanInt64out, \"flyscan\")
device(mbbo, INST_IO, devFlyscanMbbo, \"flyscan\")
device(bo, INST_IO, devFlyscanBo, \"flyscan\")
device(waveform, INST_IO, devFlyscanWaveform, \"flyscan\")
device(stringout, INST_IO, devFlyscanStringout, \"flyscan\")
";

// ---- start-up ------------------------------------------------------------------------------

/// Why the IOC could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A database definition file did not load.
    #[error("cannot load {0}")]
    Dbd(String),
    /// Record, device or registrar support was missing.
    #[error("cannot register the record and device support (see the messages above)")]
    Register,
    /// The device support was installed twice.
    #[error("the flyscan device support is already installed")]
    Twice,
}

fn cstr(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

/// Loads the database definitions (`dbd_files` from `dbd_dir`, then `extra` files by path),
/// registers the flyscan device support with `handler` and all other support found in the
/// loaded libraries, and the common IOC shell commands.
pub fn prepare(
    dbd_dir: &str,
    dbd_files: &[&str],
    extra: &[&str],
    handler: Box<dyn DeviceSupport>,
) -> Result<(), StartError> {
    SUPPORT.set(handler).map_err(|_| StartError::Twice)?;
    // SAFETY: start-up calls on the main thread before iocInit, in the documented order.
    unsafe {
        iocshRegisterCommon();
        let dir = cstr(dbd_dir);
        for f in dbd_files {
            let file = cstr(f);
            if dbLoadDatabase(file.as_ptr(), dir.as_ptr(), std::ptr::null()) != 0 {
                return Err(StartError::Dbd(format!("{dbd_dir}/{f}")));
            }
        }
        for f in extra {
            let file = cstr(f);
            if dbLoadDatabase(file.as_ptr(), std::ptr::null(), std::ptr::null()) != 0 {
                return Err(StartError::Dbd((*f).to_owned()));
            }
        }
        let names = [
            cstr("devFlyscanAo"),
            cstr("devFlyscanLongout"),
            cstr("devFlyscanInt64out"),
            cstr("devFlyscanMbbo"),
            cstr("devFlyscanBo"),
            cstr("devFlyscanWaveform"),
            cstr("devFlyscanStringout"),
        ];
        let tables: [*const Dset; 7] = [
            &DEV_AO,
            &DEV_LONGOUT,
            &DEV_INT64OUT,
            &DEV_MBBO,
            &DEV_BO,
            &DEV_WAVEFORM,
            &DEV_STRINGOUT,
        ];
        let name_ptrs: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
        registerDevices(pdbbase, 7, name_ptrs.as_ptr(), tables.as_ptr());
        // The registry keeps the name pointers: they must live for the process.
        std::mem::forget(names);
        if registerAllRecordDeviceDrivers(pdbbase) != 0 {
            return Err(StartError::Register);
        }
        // Access security checks the client's address, not the host name it claims.
        asCheckClientIP = 1;
        static VAR_NAME: &CStr = c"asCheckClientIP";
        let vars = Box::leak(Box::new([
            IocshVarDef {
                name: VAR_NAME.as_ptr(),
                ty: IOCSH_ARG_INT,
                pval: (&raw mut asCheckClientIP).cast(),
            },
            IocshVarDef {
                name: std::ptr::null(),
                ty: 0,
                pval: std::ptr::null_mut(),
            },
        ]));
        iocshRegisterVariable(vars.as_ptr());
    }
    Ok(())
}

/// An IOC shell command with string and integer arguments.
pub struct Command {
    /// Its name.
    pub name: &'static CStr,
    /// Its arguments: name and whether it is an integer (else a string).
    pub args: &'static [(&'static CStr, bool)],
    /// `help` text.
    pub usage: &'static CStr,
    /// Called with the arguments (strings; an absent string is empty).
    pub run: fn(&[String]),
}

static COMMANDS: OnceLock<std::sync::Mutex<Vec<&'static Command>>> = OnceLock::new();

unsafe extern "C" fn call_command(args: *const IocshArgBuf) {
    // iocsh calls back without saying which command; the one registered command of this
    // driver takes all arguments as described in its definition.
    let Some(cmds) = COMMANDS.get() else { return };
    let Ok(cmds) = cmds.lock() else { return };
    let Some(cmd) = cmds.first() else { return };
    let mut values = Vec::with_capacity(cmd.args.len());
    for (i, (_, int)) in cmd.args.iter().enumerate() {
        // SAFETY: iocsh passes one iocshArgBuf per declared argument, typed as declared.
        let a = unsafe { *args.add(i) };
        if *int {
            // SAFETY: declared iocshArgInt.
            values.push(unsafe { a.ival }.to_string());
        } else {
            // SAFETY: declared iocshArgString: a NUL-terminated string or NULL.
            let p = unsafe { a.sval };
            values.push(if p.is_null() {
                String::new()
            } else {
                // SAFETY: non-null, NUL-terminated by iocsh.
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            });
        }
    }
    (cmd.run)(&values);
}

/// Registers the driver's IOC shell command (one per process).
pub fn register_command(cmd: &'static Command) {
    let list = COMMANDS.get_or_init(|| std::sync::Mutex::new(Vec::new()));
    if let Ok(mut l) = list.lock() {
        l.push(cmd);
    }
    let args: Vec<*const IocshArg> = cmd
        .args
        .iter()
        .map(|(n, int)| {
            Box::leak(Box::new(IocshArg {
                name: n.as_ptr(),
                ty: if *int {
                    IOCSH_ARG_INT
                } else {
                    IOCSH_ARG_STRING
                },
            })) as *const IocshArg
        })
        .collect();
    let args: &'static [*const IocshArg] = Box::leak(args.into_boxed_slice());
    let def = Box::leak(Box::new(IocshFuncDef {
        name: cmd.name.as_ptr(),
        nargs: args.len() as c_int,
        args: args.as_ptr(),
        usage: cmd.usage.as_ptr(),
    }));
    // SAFETY: def and its strings are leaked ('static), as iocsh keeps the pointers.
    unsafe { iocshRegister(def, call_command) };
}

static HOOK: OnceLock<fn(i32)> = OnceLock::new();

unsafe extern "C" fn on_hook(state: c_int) {
    if let Some(f) = HOOK.get() {
        f(state);
    }
}

/// `initHookAfterInitDatabase`: records initialised, no client served yet.
pub const HOOK_AFTER_INIT_DATABASE: i32 = 7;
/// `initHookAfterIocRunning`: the IOC serves clients.
pub const HOOK_AFTER_IOC_RUNNING: i32 = 16;

/// Calls `f` at every IOC initialisation step (its number, initHooks.h).
pub fn on_init_hook(f: fn(i32)) {
    if HOOK.set(f).is_ok() {
        // SAFETY: on_hook is a plain extern "C" fn valid for the process.
        unsafe { initHookRegister(on_hook) };
    }
}

/// Runs an IOC shell script (`st.cmd`); returns iocsh's status.
pub fn run_script(path: &str) -> i32 {
    let p = cstr(path);
    // SAFETY: p is NUL-terminated and outlives the call.
    unsafe { iocsh(p.as_ptr()) }
}

/// Runs one IOC shell command line.
pub fn run_command(line: &str) -> i32 {
    let c = cstr(line);
    // SAFETY: as above.
    unsafe { iocshCmd(c.as_ptr()) }
}

/// The interactive IOC shell on stdin/stdout, until `exit` or end of input.
pub fn interactive_shell() -> i32 {
    // SAFETY: NULL asks iocsh for the interactive shell.
    unsafe { iocsh(std::ptr::null()) }
}

/// Ends the process through EPICS (runs its exit handlers, then exits with `status`).
pub fn exit(status: i32) -> ! {
    // SAFETY: epicsExit does not return.
    unsafe { epicsExit(status) };
    std::process::exit(status)
}
