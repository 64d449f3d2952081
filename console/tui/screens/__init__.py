"""Screens of the console: the main screen and the dialogs and views pushed over it."""
