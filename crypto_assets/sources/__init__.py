"""Talking to Binance: the REST client, its pacing and the capstone's CSV export. No Dagster."""
