"""Reusable building blocks. Each owns one concern and takes one typed settings object."""
