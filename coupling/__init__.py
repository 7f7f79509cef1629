"""coupling: the energy-partitioned handshake between atomistic and continuum regions (issue 5)."""
