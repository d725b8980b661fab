"""Puts the gateware package on the path and provides the SPI host the testbenches share."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
