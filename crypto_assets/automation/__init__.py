"""What runs without a person: the lineage job, the daily schedule, sensors and alerts."""
