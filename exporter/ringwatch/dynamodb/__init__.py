"""The only AWS code, read-only: the client with its deadlines, and the table reader."""
