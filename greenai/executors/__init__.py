"""Executors run jobs behind opaque, JSON-able handles (``base``); the local one
(``local``) runs each job through a supervisor process (``supervisor``) that outlives the
daemon, so a restarted daemon re-attaches to its runs instead of re-running them.

Nothing is imported here: the supervisor imports this package on every job start.
"""
