"""The immutable view of every watched table after a scan, and how it is built."""
