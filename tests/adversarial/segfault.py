# Crash the interpreter.
import ctypes


def momentum_step(theta, grad, velocity, lr, momentum=0.9):
    return ctypes.string_at(0)
