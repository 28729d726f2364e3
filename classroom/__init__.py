"""classroom: a real-time online classroom server for tutoring platforms."""

__version__ = "0.1.0"
