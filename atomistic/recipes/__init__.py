"""Dataset recipes: named generators of labelled frames (used by the case files)."""

from . import cu_emt

RECIPES = {"cu_emt": cu_emt.build}
