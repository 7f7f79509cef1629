"""The potential: structures as tensors, neighbour lists, descriptors, models, autograd forces,
committees of models and model files. Units: eV, Å, amu."""
