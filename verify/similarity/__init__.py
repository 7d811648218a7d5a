"""Recycled footage: has this clip, or a piece of it, been seen before?

``hashes`` holds the PDQ hashing and the index structure (no database); ``matching`` keeps the
per-process index in step with the database and decides which media items match.
"""
