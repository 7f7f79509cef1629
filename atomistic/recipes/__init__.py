"""Dataset recipes: named generators of labelled frames (used by the case files)."""

from atomistic.recipes import cu_emt

RECIPES = {"cu_emt": cu_emt.build}
