"""charaid: learn to recognise the characters of an anime, from episodes to a face recogniser."""

__version__ = "0.1.0"
