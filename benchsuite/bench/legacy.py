"""PYTHON 3.6 CODE: run by the legacy env's interpreter (OpenVINO 2021.4.2), never imported.

The only Python-3.6 code in benchsuite. Keep it 3.6-compatible: no annotations beyond 3.6,
no dataclasses, no walrus, standard library + openvino.inference_engine only.

    python3.6 legacy.py                          -> JSON {version, devices}
    python3.6 legacy.py DEVICE                   -> ... + load_error for a built-in probe net
    python3.6 legacy.py DEVICE MODEL.onnx        -> ... + load_error for MODEL

``load_error`` is the plugin's own message when the network cannot be loaded on DEVICE (e.g.
"Can not init Myriad device: NC_ERROR" with no Neural Compute Stick 2 plugged in), else null.
The built-in probe network (x -> ReLU, built with 2021.4's ngraph API) needs no model file.
"""

import json
import sys


def _probe_network():
    import ngraph as ng
    import numpy as np
    from openvino.inference_engine import IENetwork

    x = ng.parameter([1, 3, 8, 8], np.float32, name="x")
    func = ng.impl.Function([ng.relu(x)], [x], "probe")
    return IENetwork(ng.impl.Function.to_capsule(func))


def main(argv):
    from openvino.inference_engine import IECore, get_version

    core = IECore()
    out = {"version": get_version(), "devices": list(core.available_devices), "load_error": None}
    if argv:
        try:
            net = core.read_network(model=argv[1]) if len(argv) > 1 else _probe_network()
            core.load_network(network=net, device_name=argv[0], num_requests=1)
        except Exception as exc:  # the plugin's message is the point
            out["load_error"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
