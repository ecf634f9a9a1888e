"""Moves state through time: the clock now; durable operations come with the engine issue."""
