"""Adapters: one module (or family of modules) per SDK, each implementing a port."""
