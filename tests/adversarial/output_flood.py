# Print without end.
import sys


def gd_step(theta, grad, lr):
    while True:
        sys.stdout.write("flood " * 10_000 + "\n")
        sys.stdout.flush()
