"""continuum: finite-element bodies on DOLFINx (lengths Å, moduli GPa, energies eV). Never imports torch.

geometry (box and gmsh meshes as arrays, interface splitting) -> domain (the distributed mesh with
named bodies, boundaries and interfaces) -> materials + elasticity (linear anisotropic and
Cauchy-Born laws) + cohesive + interface (cohesive laws and the jump operator) + boundary ->
problem (the energy, PETSc SNES; its public contract lets a coupled problem drive it) +
stepping (load steps that halve on failure, for any problem) -> output (VTX/XDMF). ``backend`` is
the one place that imports the finite-element stack.
"""
