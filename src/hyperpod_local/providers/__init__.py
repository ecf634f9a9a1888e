"""Where instances come from. The simulated provider arrives with the engine issue."""
