"""Scenarios and drills: inject faults on a virtual clock and check what the engine did."""
