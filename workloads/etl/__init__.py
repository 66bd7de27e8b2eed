"""Landing-to-BigQuery ETL: an Apache Beam pipeline shipped as a Dataflow Flex Template."""
