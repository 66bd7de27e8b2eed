"""Local emulators the workload tests run against (127.0.0.1 only, started and stopped by the session)."""
