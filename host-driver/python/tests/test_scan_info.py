"""Validation of fly-scan parameters before anything reaches the IOC."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flyscan_bluesky import FlyScanInfo, ScanDirection, ScanMode
from flyscan_bluesky.device import FlyScanError, channels_from_mask


def test_list_mode_from_positions():
    info = FlyScanInfo.from_positions([30, 20, 10], direction=ScanDirection.NEGATIVE,
                                      channel_mask=0b1001)
    assert info.mode is ScanMode.LIST and info.npoints == 3 and info.positions == (30, 20, 10)
    assert info.channels == [0, 3] and info.expected_points == 3


def test_bidirectional_passes_multiply_points():
    info = FlyScanInfo.start_step_count(0, 5, 10, direction=ScanDirection.BIDIRECTIONAL, passes=3)
    assert info.expected_points == 30


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: FlyScanInfo.start_step_count(0, 0, 10), "step must not be 0"),
        (lambda: FlyScanInfo.start_step_count(0, 1, 10, passes=2), "need direction Bidirectional"),
        (lambda: FlyScanInfo(mode=ScanMode.LIST, npoints=3, positions=(1, 2)), "npoints == len"),
        (lambda: FlyScanInfo.start_step_count(0, 1, 0), "greater than 0"),
        (lambda: FlyScanInfo.start_step_count(0, 1, 5, channel_mask=0), "greater than 0"),
    ],
)
def test_inconsistent_parameters_are_refused(build, message):
    with pytest.raises(ValidationError, match=message):
        build()


def test_fractional_positions_are_refused():
    with pytest.raises(ValueError, match="whole encoder counts"):
        FlyScanInfo.from_positions([1.0, 2.5])


def test_channel_mask_against_device():
    assert channels_from_mask(0b10100, 8) == [2, 4]
    with pytest.raises(FlyScanError, match="beyond the device's 4"):
        channels_from_mask(0b10000, 4)
