"""The live console: a Textual face over a running engine (``ggen console``).

The engine runs in its own thread (engine.live.LiveEngine); the console reads it under the
engine's lock from worker threads and shows what it read. Nothing here is imported by engine/ or
analyzer/.
"""
