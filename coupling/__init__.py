"""coupling: the energy-partitioned handshake between atomistic and continuum regions (issue 5).

So far: ``cohesive_law`` (the interface law from the NN-PES), ``transfer`` (atoms <-> finite
elements, N and N^T, in parallel) and ``handshake`` (regions and blending weights). The coupled
energy and its solver follow.
"""
