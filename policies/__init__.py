"""Custom checkov policies for the data platform (loaded with --external-checks-dir policies)."""
