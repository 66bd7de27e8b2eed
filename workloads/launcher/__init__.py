"""Cloud Function that launches the ETL Flex Template when a file lands (see main.py)."""
