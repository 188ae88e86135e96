"""What this process's fastconv build can run, for tests that skip an engine it cannot."""

import fastconv
import numpy as np


def winograd_available() -> bool:
    """The build has a Winograd engine and this process can run it (it needs a SIMD ISA)."""
    if "winograd" not in fastconv._core.ALGORITHMS:
        return False
    try:
        fastconv.conv2d(
            np.zeros((1, 1, 4, 4), np.float32), np.zeros((1, 1, 3, 3), np.float32), algorithm="winograd"
        )
    except ValueError:
        return False
    return True


WINOGRAD = winograd_available()
