"""Other MD engines driving our models: :mod:`atomistic.engines.lammps` (LAMMPS's domain
decomposition over MPI ranks, through ``fix external``). Each is an optional extra and is
imported only when used, so ``atomistic`` still imports without MPI."""
