"""Reports and standard exports: canvass data, CSV, NIST SP 1500-100 results JSON."""
