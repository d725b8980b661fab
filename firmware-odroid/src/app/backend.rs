//! Opening the FPGA connection for each backend, then handing over to the I/O loop.

use super::config::Options;
use super::run::{Exit, run};
use embedded_hal::digital::InputPin;
use embedded_hal::spi::SpiDevice;
use flyscan_firmware::fpga::sim_socket;
use flyscan_firmware::{Firmware, Fpga, InitError, Settings};
use tracing::{error, info};

/// Checks and resets the FPGA and builds the firmware on it (boxed: its buffers are large).
fn start<SPI, DRDY>(spi: SPI, drdy: DRDY) -> Result<Box<Firmware<SPI, DRDY>>, Exit>
where
    SPI: SpiDevice,
    DRDY: InputPin,
    InitError<SPI, DRDY>: core::fmt::Display,
{
    let settings = Settings {
        boot_id: flyscan_firmware::boot_id::random(),
        ..Settings::default()
    };
    Firmware::new(Fpga::new(spi, drdy), settings)
        .map(Box::new)
        .map_err(|e| {
            error!("FPGA start-up failed: {e}");
            Exit::FpgaInit
        })
}

/// The I/O loop on real hardware: FPGA errors are retried with backoff, never fatal.
fn run_hardware<SPI: SpiDevice, DRDY: InputPin>(
    fw: Box<Firmware<SPI, DRDY>>,
    opts: &Options,
) -> Exit {
    match run(fw, opts, |_| false) {
        Ok(_) => Exit::Clean,
        Err(code) => code,
    }
}

/// Simulator socket backend: a closed socket ends the program (exit 4).
pub fn sim(opts: &Options) -> Exit {
    let Some(path) = &opts.sim_socket else {
        return Exit::Usage;
    };
    let (spi, drdy) = match sim_socket::connect(path) {
        Ok(x) => x,
        Err(e) => {
            error!("cannot connect to the simulator at {}: {e}", path.display());
            return Exit::FpgaInit;
        }
    };
    info!("connected to the simulator at {}", path.display());
    let fw = match start(spi, drdy) {
        Ok(fw) => fw,
        Err(code) => return code,
    };
    let exit = run(fw, opts, |e| match e {
        flyscan_firmware::fpga::Error::Spi(e) | flyscan_firmware::fpga::Error::Pin(e) => {
            e.is_disconnect()
        }
        _ => false,
    })
    .map(|fw_back| {
        // Tell the simulator we are leaving (best effort).
        let (mut spi, _) = fw_back.release().release();
        let _ = spi.quit();
    });
    match exit {
        Ok(()) => Exit::Clean,
        Err(code) => code,
    }
}

/// spidev + GPIO character device backend (the ODROID).
pub fn spidev(opts: &Options) -> Exit {
    use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
    use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
    use linux_embedded_hal::{CdevPin, SpidevDevice};

    let mut spi = match SpidevDevice::open(&opts.spi) {
        Ok(s) => s,
        Err(e) => {
            error!("cannot open {}: {e:?}", opts.spi);
            return Exit::FpgaInit;
        }
    };
    let spi_opts = SpidevOptions::new()
        .bits_per_word(8)
        .max_speed_hz(opts.spi_hz)
        .mode(SpiModeFlags::SPI_MODE_0)
        .build();
    if let Err(e) = spi.configure(&spi_opts) {
        error!("cannot configure {}: {e}", opts.spi);
        return Exit::FpgaInit;
    }
    let pin = Chip::new(&opts.drdy_chip)
        .and_then(|mut chip| chip.get_line(opts.drdy_line))
        .and_then(|line| line.request(LineRequestFlags::INPUT, 0, "flyscan-drdy"))
        .and_then(CdevPin::new);
    let pin = match pin {
        Ok(p) => p,
        Err(e) => {
            error!(
                "cannot request data-ready line {} of {}: {e}",
                opts.drdy_line, opts.drdy_chip
            );
            return Exit::FpgaInit;
        }
    };
    info!(
        "FPGA on {} at {} Hz, data ready on {} line {}",
        opts.spi, opts.spi_hz, opts.drdy_chip, opts.drdy_line
    );
    match start(spi, pin) {
        Ok(fw) => run_hardware(fw, opts),
        Err(code) => code,
    }
}

/// rppal backend (Raspberry Pi boards only).
#[cfg(feature = "rppal")]
pub fn rppal(opts: &Options) -> Exit {
    use rppal::gpio::Gpio;
    use rppal::spi::{Bus, Mode, SimpleHalSpiDevice, SlaveSelect, Spi};
    let spi = match Spi::new(Bus::Spi0, SlaveSelect::Ss0, opts.spi_hz, Mode::Mode0) {
        // rppal's Spi drives chip select itself, so it is a whole SpiDevice.
        Ok(s) => SimpleHalSpiDevice::new(s),
        Err(e) => {
            error!("rppal SPI: {e}");
            return Exit::FpgaInit;
        }
    };
    let pin = match Gpio::new().and_then(|g| g.get(opts.drdy_line as u8)) {
        Ok(p) => p.into_input(),
        Err(e) => {
            error!("rppal GPIO (Raspberry Pi only): {e}");
            return Exit::FpgaInit;
        }
    };
    match start(spi, pin) {
        Ok(fw) => run_hardware(fw, opts),
        Err(code) => code,
    }
}

/// rppal backend placeholder when the feature is off.
#[cfg(not(feature = "rppal"))]
pub fn rppal(_opts: &Options) -> Exit {
    error!("this build has no rppal backend (rebuild with --features rppal; Raspberry Pi only)");
    Exit::Usage
}
