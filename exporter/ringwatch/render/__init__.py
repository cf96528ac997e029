"""Everything ringwatch shows: the exposition, /ring.json, the /ring page, the scan report."""
