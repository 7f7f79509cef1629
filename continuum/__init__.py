"""continuum: finite-element bodies on DOLFINx (issue 4). Never imports torch."""
