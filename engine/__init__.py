"""The live detection and mitigation engine: simulated fleet, detectors, runbooks, receipts.

Nothing in this package imports Textual or the console; the console and the CLI are faces over it.
"""
