"""Mixins shared by steps and models (distilabel's ``distilabel.mixins``)."""
