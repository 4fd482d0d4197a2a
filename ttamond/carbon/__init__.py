"""Carbon accounting of the host and of the AI work it runs: sessions, reports, advice."""
