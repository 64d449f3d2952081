"""On-call: the roster (who holds which role when), handoff records between shifts, and the
iCalendar export of the schedule. Headless; the CLI and the console both use it."""
