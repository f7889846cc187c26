"""The review and agent console: server-rendered pages under /admin."""
