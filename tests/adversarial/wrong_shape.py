# Right values, one extra axis (equal after broadcasting).
def gd_step(theta, grad, lr):
    return (theta - lr * grad)[None]
