# Write one file larger than the size limit.
def minibatch_indices(n, batch_size, seed):
    with open("/tmp/big", "wb") as handle:
        for _ in range(64):
            handle.write(b"x" * (1 << 20))
