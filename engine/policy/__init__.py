"""Policy data (runbooks, severity rules, escalation, mitigation defaults, fleet) and its loaders."""
