"""Offline calibration and evaluation: recording every rung once on labelled data, Learn-then-Test thresholds,
the text gate's calibration, cost-quality reports. The server never imports this package; `frugalsense calibrate`
and `frugalsense bench` do, and they write the profiles `frugalsense.profiles` reads."""
