# An exception message that no UTF-8 file can hold.
def gd_step(theta, grad, lr):
    raise ValueError("lone surrogate \ud800 in the message")
