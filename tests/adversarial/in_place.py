# Right values, but the input is updated in place (and a copy returned, so no alias to spot).
def gd_step(theta, grad, lr):
    theta -= lr * grad
    return theta.copy()
