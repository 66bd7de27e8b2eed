"""Workloads run by the data platform: the landing-to-BigQuery ETL, its launcher and its DAGs.

Kept import-free so the infrastructure code can import ``workloads.launcher.launch_request``
without the workloads' own dependencies being installed.
"""
