"""Turning shipped weights into ONNX (fp32, int8) and checking them against reference outputs."""
