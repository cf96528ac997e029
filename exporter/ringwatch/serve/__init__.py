"""`ringwatch serve`: the scan loop, its own metrics, the HTTP side and its web config."""
