"""The health monitor: checks, component and dependency health, predictions."""
