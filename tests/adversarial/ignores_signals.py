# Loop forever, ignoring every signal that can be ignored.
import signal


def momentum_step(theta, grad, velocity, lr, momentum=0.9):
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGXCPU):
        signal.signal(number, signal.SIG_IGN)
    while True:
        pass
