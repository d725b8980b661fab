//! Command line and `--config file.toml` of the Linux binary. Command-line values win over the
//! file; the file wins over the defaults.

use clap::{Parser, ValueEnum};
use serde::Deserialize;
use std::path::PathBuf;

/// Which FPGA connection to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Linux spidev + GPIO character device (the ODROID).
    Spidev,
    /// The simulator's Unix socket.
    Sim,
    /// rppal (Raspberry Pi boards only; needs the `rppal` cargo feature).
    Rppal,
}

/// flyscan controller firmware: decodes the encoder via the FPGA, fires position-compare
/// triggers, latches detector counts and streams them over the serial line.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "flyscan controller firmware: encoder compare, count latching, serial streaming"
)]
pub struct Cli {
    /// TOML file with any of the options below (keys as the long option names, with `_`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Serial device to the host.
    #[arg(long)]
    pub serial: Option<String>,
    /// Serial baud rate.
    #[arg(long)]
    pub baud: Option<u32>,
    /// FPGA backend.
    #[arg(long, value_enum)]
    pub fpga: Option<Backend>,
    /// spidev device of the FPGA.
    #[arg(long)]
    pub spi: Option<String>,
    /// SPI clock, Hz.
    #[arg(long)]
    pub spi_hz: Option<u32>,
    /// GPIO chip of the data-ready line.
    #[arg(long)]
    pub drdy_chip: Option<String>,
    /// GPIO line offset of the data-ready line.
    #[arg(long)]
    pub drdy_line: Option<u32>,
    /// Unix socket of the simulator (with `--fpga sim`).
    #[arg(long)]
    pub sim_socket: Option<PathBuf>,
    /// Log filter (tracing env-filter syntax), e.g. `info` or `flyscan_firmware=debug`.
    #[arg(long)]
    pub log: Option<String>,
}

/// The same options as read from a TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    serial: Option<String>,
    baud: Option<u32>,
    fpga: Option<Backend>,
    spi: Option<String>,
    spi_hz: Option<u32>,
    drdy_chip: Option<String>,
    drdy_line: Option<u32>,
    sim_socket: Option<PathBuf>,
    log: Option<String>,
}

/// Resolved options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Serial device.
    pub serial: String,
    /// Baud rate.
    pub baud: u32,
    /// FPGA backend.
    pub fpga: Backend,
    /// spidev device.
    pub spi: String,
    /// SPI clock, Hz.
    pub spi_hz: u32,
    /// GPIO chip.
    pub drdy_chip: String,
    /// GPIO line.
    pub drdy_line: u32,
    /// Simulator socket.
    pub sim_socket: Option<PathBuf>,
    /// Log filter.
    pub log: String,
}

impl Options {
    /// Merges the command line over the file (if any) over the defaults.
    pub fn resolve(cli: Cli) -> Result<Self, String> {
        let file = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| format!("config file {}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let o = Self {
            serial: cli
                .serial
                .or(file.serial)
                .unwrap_or_else(|| "/dev/ttyS1".into()),
            baud: cli
                .baud
                .or(file.baud)
                .unwrap_or(flyscan_protocol::limits::DEFAULT_BAUD),
            fpga: cli.fpga.or(file.fpga).unwrap_or(Backend::Spidev),
            spi: cli
                .spi
                .or(file.spi)
                .unwrap_or_else(|| "/dev/spidev0.0".into()),
            spi_hz: cli.spi_hz.or(file.spi_hz).unwrap_or(10_000_000),
            drdy_chip: cli
                .drdy_chip
                .or(file.drdy_chip)
                .unwrap_or_else(|| "/dev/gpiochip0".into()),
            drdy_line: cli.drdy_line.or(file.drdy_line).unwrap_or(17),
            sim_socket: cli.sim_socket.or(file.sim_socket),
            log: cli.log.or(file.log).unwrap_or_else(|| "info".into()),
        };
        if o.fpga == Backend::Sim && o.sim_socket.is_none() {
            return Err("--fpga sim needs --sim-socket PATH".into());
        }
        if o.baud == 0 || o.spi_hz == 0 {
            return Err("--baud and --spi-hz must be positive".into());
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_wins_over_file_over_defaults() {
        let dir = std::env::temp_dir().join(format!("flyscan-cfg-{}.toml", std::process::id()));
        std::fs::write(
            &dir,
            "baud = 115200\nserial = \"/dev/ttyX\"\nfpga = \"sim\"\nsim_socket = \"/tmp/s\"\n",
        )
        .unwrap();
        let cli = Cli::parse_from([
            "firmware-odroid",
            "--config",
            dir.to_str().unwrap(),
            "--serial",
            "/dev/ttyY",
        ]);
        let o = Options::resolve(cli).unwrap();
        assert_eq!(o.serial, "/dev/ttyY");
        assert_eq!(o.baud, 115_200);
        assert_eq!(o.fpga, Backend::Sim);
        assert_eq!(o.spi_hz, 10_000_000);
        std::fs::write(&dir, "bogus = 1\n").unwrap();
        let cli = Cli::parse_from(["firmware-odroid", "--config", dir.to_str().unwrap()]);
        assert!(Options::resolve(cli).unwrap_err().contains("bogus"));
        let _ = std::fs::remove_file(&dir);
    }

    /// The configuration file we install on the ODROID must parse and must name the same
    /// data-ready line as the wiring document a board builder follows.
    #[test]
    fn shipped_config_parses_and_matches_the_wiring_document() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let shipped = root.join("deploy/firmware.toml");
        let cli = Cli::parse_from(["firmware-odroid", "--config", shipped.to_str().unwrap()]);
        let o = Options::resolve(cli).unwrap();
        let wiring = std::fs::read_to_string(root.join("../docs/wiring.md")).unwrap();
        let documented: u32 = wiring
            .lines()
            .find_map(|l| l.trim().strip_prefix("drdy_line = "))
            .expect("docs/wiring.md shows a drdy_line")
            .trim()
            .parse()
            .unwrap();
        assert_eq!(o.drdy_line, documented);
        assert_eq!(o.fpga, Backend::Spidev);
    }

    #[test]
    fn sim_needs_a_socket() {
        let cli = Cli::parse_from(["firmware-odroid", "--fpga", "sim"]);
        assert!(Options::resolve(cli).is_err());
    }
}
