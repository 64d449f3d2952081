"""Status page: components and their states from incidents, updates from templates with the
required fields, cadence timers, public and internal views, static HTML and a JSON feed."""
from __future__ import annotations

from engine.statuspage.model import StatusPolicy, StatusStore, StatusUpdate, load_status_policy
from engine.statuspage.page import PageState, cadence, check_publishable, draft_update, page_state, render_html

__all__ = ["PageState", "StatusPolicy", "StatusStore", "StatusUpdate", "cadence", "check_publishable", "draft_update", "load_status_policy", "page_state", "render_html"]
