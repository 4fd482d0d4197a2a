"""Error events: grouping them by fingerprint and naming the groups."""
