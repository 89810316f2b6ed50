"""The integration suite's fixtures (engine, registry, ...), for the docs check."""

import importlib.util
import os
import sys

INTEGRATION = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration")
sys.path.insert(0, INTEGRATION)

_spec = importlib.util.spec_from_file_location("wr_integration_conftest", os.path.join(INTEGRATION, "conftest.py"))
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
globals().update({k: v for k, v in vars(_mod).items() if not k.startswith("_")})
