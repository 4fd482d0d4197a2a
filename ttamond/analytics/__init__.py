"""Streaming anomaly detection over the daemon's series, and its NAB yardstick."""
