"""Files on disk: each user's storage folders (storage.py), content hashes (hashing.py), thumbnails, uploads."""
