"""Policy as data: runbooks, severity rules, escalation policy, formats, scenarios, knowledge base.

This package holds no logic; `RUNBOOKS_DIR` tells loaders where the files are.
"""
from pathlib import Path

RUNBOOKS_DIR = Path(__file__).resolve().parent
