"""Browsing a study: the notes and artifacts optuna-dashboard shows, and ``studies report``."""

from studies.browse.observer import BrowseObserver, refresh_notes

__all__ = ["BrowseObserver", "refresh_notes"]
