"""Fit-able models of the course: autoencoders, VAEs and GANs."""
