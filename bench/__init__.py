"""Benchmarks: accuracy and speed numbers, run by `make bench`, never by `make test`."""
