"""A demo attncli plugin: one attention block, declared torch-free in ``zoo.py``."""
