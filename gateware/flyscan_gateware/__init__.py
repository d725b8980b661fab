"""Reference gateware for the flyscan FPGA contract (firmware-odroid/FPGA.md), in Amaranth HDL.

Modules: ``contract`` (register map and timing constants), ``inputs`` (synchronisers, glitch
filter, edge detector), ``counters`` (timestamp, live-time and detector counters),
``edge_fifo`` (edge event FIFO with overrun accounting), ``snapshot`` (snapshot RAM),
``spi`` (oversampling SPI mode-0 target), ``core`` (the whole design: command engine and
register map), ``boards`` (pin constraints and top level for real boards), ``build``
(synthesis, place and route, bitstream) and ``verilog`` (Verilog for RTL simulators).
"""
