"""Plain data and rules, no I/O. Imports nothing of ours but domain/."""
