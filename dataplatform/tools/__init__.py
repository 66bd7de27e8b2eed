"""Command-line tools around the synthesized output: review reports, deploy wrappers."""
