"""Mitigation primitives: circuit breakers, scaling, throttling, retries, the safety governor, actuators."""
