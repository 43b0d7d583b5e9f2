# Connect to a server on the host's loopback, over TCP and over an abstract unix socket.
import socket


def gd_step(theta, grad, lr):
    outcomes = []
    for family, address in ((socket.AF_INET, ("127.0.0.1", int("$port"))), (socket.AF_UNIX, "\0$marker")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as connection:
                connection.settimeout(2)
                connection.connect(address)
                connection.sendall(b"$marker")
            outcomes.append("connected")
        except OSError as error:
            outcomes.append(type(error).__name__)
    raise RuntimeError("network: " + ", ".join(outcomes))
