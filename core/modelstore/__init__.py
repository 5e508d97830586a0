"""The model store: files and their SQLite index, trust checks for foreign files, the memory cache,
format conversion and comparison."""
