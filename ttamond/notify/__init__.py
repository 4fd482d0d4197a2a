"""Notification delivery: channel settings, payloads, senders, retries and rate limits."""
