"""The Starlette status page, JSON API and /metrics (issue: status page)."""
