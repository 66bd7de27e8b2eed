"""GCP data platform as CDK Terrain (cdktn) constructs, composed per environment."""
