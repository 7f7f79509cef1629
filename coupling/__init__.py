"""coupling: the energy-partitioned handshake between atomistic and continuum regions (DESIGN section 5).

``problem`` (the coupled energy, its exact gradient and the quasi-static Newton solves),
``handshake`` (regions and blending weights), ``transfer`` (atoms <-> finite elements, N and N^T,
in parallel), ``interface_atoms`` (a cohesive interface's part under the atoms), ``precondition``
(the atoms' share of the preconditioner) and ``cohesive_law`` (the interface law from the NN-PES).
"""
