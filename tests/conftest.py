import os
import sys

# The tests import the float64 oracle as `reference`, whatever pytest's import mode.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
