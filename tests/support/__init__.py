"""Launchers for real servers used by the tests (started on 127.0.0.1, stopped at the end)."""
