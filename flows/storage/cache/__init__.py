"""The Redis cache of the published lists: its URL, key layout, writer (warm, switch) and reader."""
