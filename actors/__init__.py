"""Actors: each owns a loop, a mailbox and its state, and runs under the supervisor."""
