"""The alert escalator: rules, lifecycle, silences, inhibition, escalation and grouping."""
