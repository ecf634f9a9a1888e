"""Moves state through time: the clock, durable operations made of idempotent steps, and the
loop that runs due steps (runner.py). Step modules import context, followups, recovery and
operations, never each other."""
