"""Robot interface, controller runtime, safety filter, watchdog and robot drivers."""
