"""The two faces of ggen: the command line (console.cli) and the Textual console (console.tui)."""
