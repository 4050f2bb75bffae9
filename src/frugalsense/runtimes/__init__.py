"""Runtimes: one small adapter per inference engine, all behind the `Session` protocol.

A model asks for a session by runtime name and file; it never imports an engine itself.
"""

from frugalsense.runtimes.base import Session, open_session

__all__ = ["Session", "open_session"]
