"""Real local stand-ins for the cloud parts, shared by `make demo`, the tests and bench/.

Everything binds 127.0.0.1 and is stopped by whoever started it.
"""
