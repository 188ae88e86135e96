from typing import Any

import numpy as np

ALGORITHMS: dict[str, int]
LAYOUTS: dict[str, int]

class FastconvError(RuntimeError): ...

def unsupported_reason(layer: dict[str, Any], algorithm: str) -> str | None: ...
def load_blas(path: str) -> None: ...
def blas_available() -> bool: ...
def default_num_threads() -> int: ...
def isas() -> tuple[str, str, str]: ...

class Layer:
    def __init__(self, layer: dict[str, Any]) -> None: ...
    def run(
        self,
        weight: np.ndarray,
        bias: np.ndarray | None,
        x: np.ndarray,
        out: np.ndarray,
        batch: int,
        in_size: tuple[int, int, int],
        pad_begin: tuple[int, int, int],
        pad_end: tuple[int, int, int],
        num_threads: int,
        algorithm: str = "auto",
    ) -> None: ...

class Plan:
    memory: int
    def __init__(
        self,
        layer: dict[str, Any],
        weight: np.ndarray,
        bias: np.ndarray | None,
        algorithm: str,
        borrow: bool = False,
    ) -> None: ...
    def output_size(
        self,
        batch: int,
        in_size: tuple[int, int, int],
        pad_begin: tuple[int, int, int],
        pad_end: tuple[int, int, int],
    ) -> tuple[int, int, int]: ...
    def choose(
        self,
        batch: int,
        in_size: tuple[int, int, int],
        pad_begin: tuple[int, int, int],
        pad_end: tuple[int, int, int],
        num_threads: int,
    ) -> str: ...
    def explain(
        self,
        batch: int,
        in_size: tuple[int, int, int],
        pad_begin: tuple[int, int, int],
        pad_end: tuple[int, int, int],
        num_threads: int,
    ) -> str: ...
    def execute(
        self,
        x: np.ndarray,
        out: np.ndarray,
        batch: int,
        in_size: tuple[int, int, int],
        pad_begin: tuple[int, int, int],
        pad_end: tuple[int, int, int],
        num_threads: int,
        engine: str = "auto",
    ) -> str: ...
