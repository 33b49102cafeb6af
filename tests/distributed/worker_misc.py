"""Small programs tests/test_distributed.py runs in subprocesses: `python worker_misc.py MODE`.

timeout     (2 processes) rank 1 never communicates; rank 0 must raise TimeoutError.
dies        (2 processes) rank 1 dies without a word; the job must end, not hang.
init        (1 process, launcher variables set by the test) init() warns, strict raises.
launch      (started by mx.launch) every process reports its rank and an all_sum.
"""
import json
import os
import sys
import time
import warnings

import mx.core as mx

mode = sys.argv[1]
d = mx.distributed

if mode == "init":
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = d.init()
    try:
        d.init(strict=True)
        strict = None
    except RuntimeError as e:
        strict = str(e)
    print(json.dumps({"size": g.size(), "warnings": [str(w.message) for w in caught],
                      "warning_types": [w.category.__name__ for w in caught], "strict": strict}))
    sys.exit(0)

g = d.init(strict=True)
r = g.rank()
if mode == "launch":
    total = d.all_sum(mx.array(r + 1)).item()
    print(json.dumps({"rank": r, "size": g.size(), "world": os.environ.get("MX_WORLD_SIZE"),
                      "argv": sys.argv[2:], "sum": total}), flush=True)
elif mode == "timeout":
    if r == 1:
        time.sleep(60)
    else:
        start = time.monotonic()
        try:
            mx.eval(d.all_sum(mx.ones(4)))
            print("NO TIMEOUT", flush=True)
        except TimeoutError as e:
            print(f"TIMEOUT after {time.monotonic() - start:.1f} s: {e}", flush=True)
        try:
            mx.eval(d.all_sum(mx.ones(4)))
        except RuntimeError as e:
            print(f"THEN: {e}", flush=True)
elif mode == "dies":
    if r == 1:
        os._exit(3)
    mx.eval(d.all_sum(mx.ones(4)))
    print("NO ERROR", flush=True)
