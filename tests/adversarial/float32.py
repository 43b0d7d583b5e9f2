# Right values, wrong dtype.
import numpy as np


def momentum_step(theta, grad, velocity, lr, momentum=0.9):
    velocity = momentum * velocity + grad
    return (theta - lr * velocity).astype(np.float32), velocity.astype(np.float32)
