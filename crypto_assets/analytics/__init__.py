"""Market analytics computed from the warehouse: pure pandas modules and their assets."""
