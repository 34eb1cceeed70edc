"""Helpers at distilabel's ``distilabel.utils`` paths."""
