"""CAST compatibility: its commands' flags, output and exit codes, and its basic regression buckets."""
