"""Helpers shared by test modules of several folders (unit and integration): ``from tests.helpers.x import y``."""
