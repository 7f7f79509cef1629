"""Analysis on a potential: minimisation, vibrations, saddle points, IRC, rates, thermodynamics,
elastic constants, crystal properties and the time step. Units: eV, Å, amu, fs at the API."""
