//! The firmware core (flyscan-firmware's `Firmware`) running in-process on the FPGA model.

use crate::fpga::{DrdyHandle, SpiHandle};
use crate::simulation::{Device, Simulation};
use flyscan_firmware::{Firmware, Fpga, Settings};

/// The firmware core on the model's SPI and data-ready handles.
pub struct InProcessFirmware {
    fw: Firmware<SpiHandle, DrdyHandle>,
}

impl core::fmt::Debug for InProcessFirmware {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("InProcessFirmware").finish_non_exhaustive()
    }
}

impl InProcessFirmware {
    /// Starts the firmware (its FPGA reset happens now, at the model's current clock) with a
    /// random session id, as a real board does at every start.
    pub fn new(sim: &Simulation) -> Result<Self, String> {
        Self::with_boot_id(sim, flyscan_firmware::boot_id::random())
    }

    /// Starts the firmware with a given session id (reproducible byte streams in tests).
    pub fn with_boot_id(sim: &Simulation, boot_id: u32) -> Result<Self, String> {
        let fpga = Fpga::new(SpiHandle(sim.fpga()), DrdyHandle(sim.fpga()));
        let settings = Settings {
            boot_id,
            ..Settings::default()
        };
        let fw = Firmware::new(fpga, settings)
            .map_err(|e| format!("firmware start-up failed: {e:?}"))?;
        Ok(Self { fw })
    }

    /// The firmware object (for counters in tests).
    pub fn firmware(&self) -> &Firmware<SpiHandle, DrdyHandle> {
        &self.fw
    }
}

/// Most consecutive polls in one step while the firmware reports more work.
const MAX_POLLS_PER_STEP: usize = 16;

impl Device for InProcessFirmware {
    fn receive(&mut self, bytes: &[u8]) {
        self.fw.receive(bytes);
    }

    fn poll(&mut self, now: u64) -> Result<(), String> {
        for _ in 0..MAX_POLLS_PER_STEP {
            let st = self.fw.poll(now).map_err(|e| format!("{e:?}"))?;
            if !st.more || st.edges == 0 {
                break;
            }
        }
        Ok(())
    }

    fn transmit(&mut self, out: &mut [u8]) -> usize {
        self.fw.transmit(out)
    }
}

/// The in-process firmware as a boxed [`Device`].
pub fn device(sim: &Simulation) -> Result<Box<dyn Device>, String> {
    Ok(Box::new(InProcessFirmware::new(sim)?))
}
